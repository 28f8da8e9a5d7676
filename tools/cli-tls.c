/* The TLS options shared by serve, connect and probe (docs/TLS.md). */
#include <stdio.h>
#include <string.h>

#include "cli-tls.h"
#include "vigil.h"

static void opt(vigil_cli_opt *o, const char *name, vigil_cli_kind kind, void *dst) {
  memset(o, 0, sizeof *o);
  o->name = name;
  o->kind = kind;
  o->dst = dst;
}

void vigil_cli_tls_opts(vigil_cli_tls *t, vigil_role role, vigil_cli_opt *own) {
  size_t n = 0;
  while (own[n].name != NULL)
    n++;
  opt(&own[n++], "tls-cert", VIGIL_CLI_STRING, &t->cert);
  opt(&own[n++], "tls-key", VIGIL_CLI_STRING, &t->key);
  if (role == VIGIL_ROLE_SERVER) {
    opt(&own[n++], "tls-client-ca", VIGIL_CLI_STRING, &t->ca);
    opt(&own[n++], "tls-id-from-cert", VIGIL_CLI_FLAG, &t->id_from_cert);
  } else {
    opt(&own[n++], "tls", VIGIL_CLI_FLAG, &t->on);
    opt(&own[n++], "tls-ca", VIGIL_CLI_STRING, &t->ca);
    opt(&own[n++], "tls-name", VIGIL_CLI_STRING, &t->name);
    opt(&own[n++], "tls-no-verify", VIGIL_CLI_FLAG, &t->no_verify);
  }
  opt(&own[n], NULL, VIGIL_CLI_FLAG, NULL);
}

int vigil_cli_tls_setup(const char *cmd, vigil_role role, vigil_cli_tls *t) {
  vigil_tls_config cfg;
  char err[512];
  int rc;
  if (role == VIGIL_ROLE_CLIENT &&
      (t->cert != NULL || t->key != NULL || t->ca != NULL || t->name != NULL || t->no_verify))
    t->on = 1;
  if (role == VIGIL_ROLE_SERVER) {
    t->on = t->cert != NULL || t->key != NULL;
    if (!t->on && (t->ca != NULL || t->id_from_cert))
      return vigil_cli_usage(cmd, "--tls-client-ca and --tls-id-from-cert need --tls-cert and "
                                  "--tls-key");
  }
  if (!t->on)
    return 0;
  if (!vigil_tls_available())
    return vigil_cli_usage(cmd, "TLS: built without TLS (no OpenSSL when this vigil was built; "
                                "docs/WINDOWS.md)");
  if ((t->cert == NULL) != (t->key == NULL))
    return vigil_cli_usage(cmd, "--tls-cert and --tls-key go together");
  if (t->id_from_cert && t->ca == NULL)
    return vigil_cli_usage(cmd, "--tls-id-from-cert needs --tls-client-ca");
  vigil_tls_config_init(&cfg);
  cfg.cert_file = t->cert;
  cfg.key_file = t->key;
  cfg.ca_file = t->ca;
  cfg.no_verify = t->no_verify;
  cfg.id_from_cert = t->id_from_cert;
  err[0] = '\0';
  rc = vigil_tls_new(&t->ctx, role, &cfg, err, sizeof err);
  if (rc == VIGIL_EINVAL)
    return vigil_cli_usage(cmd, "TLS: %s", err[0] != '\0' ? err : vigil_strerror(rc));
  if (rc != 0) {
    fprintf(stderr, "vigil %s: TLS: %s\n", cmd, err[0] != '\0' ? err : vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  return 0;
}

void vigil_cli_line_tls(vigil_cli_line *l, const vigil_conn *c) {
  const vigil_tls_conn *t = vigil_conn_tls(c);
  if (t != NULL)
    vigil_cli_line_cstr(l, "tls", vigil_tls_conn_version(t));
}
