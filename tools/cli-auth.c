/* The credential options shared by serve, connect and probe, and the
 * secret-file reader of `vigil token` (docs/SECURITY.md).
 *
 * Secrets and tokens are read from files so that neither shows in ps or a
 * shell history; --token exists for quick tests and says so in --help.
 * Error lines name the file, never its bytes, and the buffers are wiped
 * when the command ends. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli-auth.h"
#include "vigil.h"

static void opt(vigil_cli_opt *o, const char *name, void *dst) {
  memset(o, 0, sizeof *o);
  o->name = name;
  o->kind = VIGIL_CLI_STRING;
  o->dst = dst;
}

void vigil_cli_auth_opts(vigil_cli_auth *a, vigil_role role, vigil_cli_opt *own) {
  size_t n = 0;
  while (own[n].name != NULL)
    n++;
  if (role == VIGIL_ROLE_SERVER) {
    opt(&own[n++], "auth-secret", &a->secret_file);
  } else {
    opt(&own[n++], "token", &a->token);
    opt(&own[n++], "token-file", &a->token_file);
  }
  memset(&own[n], 0, sizeof own[n]);
}

long vigil_cli_read_secret(const char *cmd, const char *opt_name, const char *path,
                           unsigned char *buf, size_t cap, size_t min) {
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL) {
    fprintf(stderr, "vigil %s: --%s %s: %s\n", cmd, opt_name, path, strerror(errno));
    return -1;
  }
  n = fread(buf, 1, cap, f);
  if (n == cap || ferror(f)) {
    fprintf(stderr, "vigil %s: --%s %s: %s\n", cmd, opt_name, path,
            n == cap ? "too large" : "read error");
    fclose(f);
    return -1;
  }
  fclose(f);
  if (n > 0 && buf[n - 1] == '\n')
    n--;
  if (n > 0 && buf[n - 1] == '\r')
    n--;
  if (n < min) {
    fprintf(stderr, "vigil %s: --%s %s: %zu bytes, at least %zu needed\n", cmd, opt_name, path, n,
            min);
    return -1;
  }
  return (long)n;
}

static int setup_client(const char *cmd, vigil_cli_auth *a) {
  long n;
  if (a->token != NULL && a->token_file != NULL)
    return vigil_cli_usage(cmd, "give --token or --token-file, not both");
  if (a->token != NULL) {
    n = (long)strlen(a->token);
    if (n == 0 || n > 255)
      return vigil_cli_usage(cmd, "--token: 1 to 255 bytes");
    memcpy(a->cred, a->token, (size_t)n);
  } else if (a->token_file != NULL) {
    n = vigil_cli_read_secret(cmd, "token-file", a->token_file, (unsigned char *)a->cred,
                              sizeof a->cred, 1);
    if (n < 0)
      return VIGIL_CLI_FAIL;
  } else {
    return 0;
  }
  a->cred_len = (size_t)n;
  return 0;
}

int vigil_cli_auth_setup(const char *cmd, vigil_role role, vigil_cli_auth *a) {
  long n;
  if (role != VIGIL_ROLE_SERVER)
    return setup_client(cmd, a);
  if (a->secret_file == NULL)
    return 0;
  if (!vigil_token_available())
    return vigil_cli_usage(cmd, "--auth-secret: this vigil was built without OpenSSL, so it has "
                                "no tokens (docs/WINDOWS.md)");
  n = vigil_cli_read_secret(cmd, "auth-secret", a->secret_file, a->secret, sizeof a->secret,
                            VIGIL_TOKEN_SECRET_MIN);
  if (n < 0)
    return VIGIL_CLI_FAIL;
  a->secret_len = (size_t)n;
  return 0;
}

void vigil_cli_auth_wipe(vigil_cli_auth *a) {
  volatile unsigned char *p = a->secret;
  volatile char *q = a->cred;
  size_t i;
  for (i = 0; i < sizeof a->secret; i++)
    p[i] = 0;
  for (i = 0; i < sizeof a->cred; i++)
    q[i] = 0;
  a->secret_len = a->cred_len = 0;
}
