/* The TLS options of `vigil serve`, `vigil connect` and `vigil probe`
 * (tools/cli-tls.c): one table entry each, and the context they build. */
#ifndef VIGIL_TOOLS_CLI_TLS_H
#define VIGIL_TOOLS_CLI_TLS_H

#include "cli.h"
#include "vigil/tls.h"

/* The --help lines of the client options (connect, probe). */
#define VIGIL_CLI_TLS_CLIENT_HELP                                                                  \
  "  --tls              speak TLS 1.2+, verifying the server's certificate and name\n"             \
  "                     (any --tls-* option implies it; docs/TLS.md)\n"                            \
  "  --tls-ca FILE      CAs that may sign the server's certificate (default: the\n"                \
  "                     system's)\n"                                                               \
  "  --tls-cert FILE    client certificate for mutual TLS, with --tls-key FILE\n"                  \
  "  --tls-name NAME    name to verify and send as SNI (default: HOST)\n"                          \
  "  --tls-no-verify    do not verify the server's certificate (testing only)\n"

typedef struct vigil_cli_tls {
  int on;                 /* client: --tls (any other --tls-* option implies it) */
  const char *cert, *key; /* --tls-cert, --tls-key */
  const char *ca;         /* client --tls-ca; server --tls-client-ca */
  const char *name;       /* client --tls-name */
  int no_verify;          /* client --tls-no-verify */
  int id_from_cert;       /* server --tls-id-from-cert */
  vigil_tls *ctx;         /* built by vigil_cli_tls_setup; NULL: plaintext */
} vigil_cli_tls;

/* Appends the options of role to the table own (ended by a NULL name,
 * with room for 6 more entries), which stays NULL-terminated. */
void vigil_cli_tls_opts(vigil_cli_tls *t, vigil_role role, vigil_cli_opt *own);

/* After parsing: the context the options ask for (t->ctx; NULL when TLS
 * is off). Returns 0, VIGIL_CLI_USAGE (inconsistent options, or built
 * without TLS) or VIGIL_CLI_FAIL (a file that cannot be loaded), after
 * printing one line why. */
int vigil_cli_tls_setup(const char *cmd, vigil_role role, vigil_cli_tls *t);

/* Adds "tls" (the protocol version) to an open line when c runs TLS. */
void vigil_cli_line_tls(vigil_cli_line *l, const vigil_conn *c);

#endif
