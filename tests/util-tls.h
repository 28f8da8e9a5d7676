/* Certificates for the TLS tests, made at test time with OpenSSL's API
 * (no files in the repository, no openssl command needed): a test CA, a
 * server certificate it signs for localhost / 127.0.0.1 / ::1, a client
 * certificate with subject CN "gw-17", and a second, unrelated CA. They
 * are written as PEM into a fresh temporary directory that
 * util_tls_certs_remove deletes. Where the build has no OpenSSL, util_tls_certs
 * returns VIGIL_ENOTSUP and the tests that need it skip. */
#ifndef VIGIL_TEST_UTIL_TLS_H
#define VIGIL_TEST_UTIL_TLS_H

#include <stddef.h>

typedef struct util_tls_certs {
  char dir[256];
  char ca[300], ca_key[300];         /* the CA that signs the two below */
  char server[300], server_key[300]; /* CN localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1 */
  char client[300], client_key[300]; /* CN gw-17 (clientAuth) */
  char other_ca[300];                /* an unrelated CA */
} util_tls_certs;

/* Makes the directory and the files. Returns 0, VIGIL_ENOTSUP (no
 * OpenSSL in this build), or another VIGIL_E* error. */
int util_tls_certs_make(util_tls_certs *c);

/* Deletes the files and the directory. */
void util_tls_certs_remove(util_tls_certs *c);

#endif
