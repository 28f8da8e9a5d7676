/* Test certificates made with OpenSSL's API (util-tls.h). */
#include "util-tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

#if defined(VIGIL_HAVE_OPENSSL) && !defined(_WIN32)

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

static EVP_PKEY *new_key(void) {
  return EVP_EC_gen("P-256");
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509_EXTENSION *e;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (e == NULL)
    return -1;
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return 0;
}

/* A certificate for key with subject CN=cn, signed by issuer_key (itself
 * when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, int ca, const char *san, const char *eku) {
  X509 *x = X509_new();
  X509_NAME *name;
  if (x == NULL)
    return NULL;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
  if (add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
              ca ? "critical,CA:TRUE" : "CA:FALSE") != 0 ||
      (ca && add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0) ||
      (san != NULL && add_ext(x, issuer, NID_subject_alt_name, san) != 0) ||
      (eku != NULL && add_ext(x, issuer, NID_ext_key_usage, eku) != 0) ||
      X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) == 0) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  int ok;
  if (f == NULL)
    return -1;
  ok = x != NULL ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

int util_tls_certs_make(util_tls_certs *c) {
  EVP_PKEY *ca_key = new_key(), *srv_key = new_key(), *cli_key = new_key(), *o_key = new_key();
  X509 *ca = NULL, *srv = NULL, *cli = NULL, *other = NULL;
  int rc = VIGIL_ENOMEM;
  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "/tmp/vigil-tls-XXXXXX");
  if (mkdtemp(c->dir) == NULL) {
    c->dir[0] = '\0';
    rc = VIGIL_EACCES;
    goto out;
  }
  snprintf(c->ca, sizeof c->ca, "%s/ca.pem", c->dir);
  snprintf(c->ca_key, sizeof c->ca_key, "%s/ca.key", c->dir);
  snprintf(c->server, sizeof c->server, "%s/server.pem", c->dir);
  snprintf(c->server_key, sizeof c->server_key, "%s/server.key", c->dir);
  snprintf(c->client, sizeof c->client, "%s/client.pem", c->dir);
  snprintf(c->client_key, sizeof c->client_key, "%s/client.key", c->dir);
  snprintf(c->other_ca, sizeof c->other_ca, "%s/other-ca.pem", c->dir);
  if (ca_key == NULL || srv_key == NULL || cli_key == NULL || o_key == NULL)
    goto out;
  ca = make_cert(ca_key, "vigil test CA", NULL, NULL, 1, 1, NULL, NULL);
  other = make_cert(o_key, "another CA", NULL, NULL, 2, 1, NULL, NULL);
  if (ca == NULL || other == NULL)
    goto out;
  srv = make_cert(srv_key, "localhost", ca, ca_key, 3, 0, "DNS:localhost,IP:127.0.0.1,IP:::1",
                  "serverAuth");
  cli = make_cert(cli_key, "gw-17", ca, ca_key, 4, 0, NULL, "clientAuth");
  if (srv == NULL || cli == NULL)
    goto out;
  rc = VIGIL_EACCES;
  if (write_pem(c->ca, ca, NULL) != 0 || write_pem(c->ca_key, NULL, ca_key) != 0 ||
      write_pem(c->server, srv, NULL) != 0 || write_pem(c->server_key, NULL, srv_key) != 0 ||
      write_pem(c->client, cli, NULL) != 0 || write_pem(c->client_key, NULL, cli_key) != 0 ||
      write_pem(c->other_ca, other, NULL) != 0)
    goto out;
  rc = 0;
out:
  X509_free(ca);
  X509_free(srv);
  X509_free(cli);
  X509_free(other);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(srv_key);
  EVP_PKEY_free(cli_key);
  EVP_PKEY_free(o_key);
  if (rc != 0)
    util_tls_certs_remove(c);
  return rc;
}

void util_tls_certs_remove(util_tls_certs *c) {
  const char *files[] = {c->ca,     c->ca_key,     c->server,  c->server_key,
                         c->client, c->client_key, c->other_ca};
  size_t i;
  if (c->dir[0] == '\0')
    return;
  for (i = 0; i < sizeof files / sizeof files[0]; i++)
    if (files[i][0] != '\0')
      (void)unlink(files[i]);
  (void)rmdir(c->dir);
  c->dir[0] = '\0';
}

#else

int util_tls_certs_make(util_tls_certs *c) {
  memset(c, 0, sizeof *c);
  return VIGIL_ENOTSUP;
}

void util_tls_certs_remove(util_tls_certs *c) {
  (void)c;
}

#endif
