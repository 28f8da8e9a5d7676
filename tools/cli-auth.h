/* The credential options of `vigil serve` (--auth-secret) and of `vigil
 * connect` / `vigil probe` (--token, --token-file), and the secret-file
 * reader `vigil token` shares (tools/cli-auth.c; docs/SECURITY.md). */
#ifndef VIGIL_TOOLS_CLI_AUTH_H
#define VIGIL_TOOLS_CLI_AUTH_H

#include <stddef.h>

#include "cli.h"

/* The --help lines of the client options (connect, probe). */
#define VIGIL_CLI_AUTH_CLIENT_HELP                                                                 \
  "  --token-file FILE  send the token in FILE (vigil token) in HELLO, for a\n"                    \
  "                     server with --auth-secret (one trailing newline ignored)\n"                \
  "  --token TOKEN      the same from the command line (visible in ps: prefer\n"                   \
  "                     --token-file)\n"

#define VIGIL_CLI_SECRET_MAX 4096

typedef struct vigil_cli_auth {
  const char *secret_file;        /* serve --auth-secret */
  const char *token, *token_file; /* connect / probe --token, --token-file */
  unsigned char secret[VIGIL_CLI_SECRET_MAX];
  size_t secret_len; /* 0: no auth */
  char cred[256];    /* the token's text */
  size_t cred_len;   /* 0: none */
} vigil_cli_auth;

/* Appends the options of role to the table own (ended by a NULL name,
 * with room for 2 more entries), which stays NULL-terminated. */
void vigil_cli_auth_opts(vigil_cli_auth *a, vigil_role role, vigil_cli_opt *own);

/* After parsing: reads the secret or the token. Returns 0, VIGIL_CLI_USAGE
 * (--token with --token-file, a token over 255 bytes, or this vigil has no
 * tokens) or VIGIL_CLI_FAIL (a file that cannot be read, a short secret),
 * after printing one line that names the file, never its bytes. */
int vigil_cli_auth_setup(const char *cmd, vigil_role role, vigil_cli_auth *a);

/* Zeroes the secret and the token. */
void vigil_cli_auth_wipe(vigil_cli_auth *a);

/* Reads up to cap - 1 bytes of path into buf, one trailing newline (and
 * carriage return) dropped: their count, or -1 after printing "vigil CMD:
 * --OPT PATH: why". At least min bytes are required. */
long vigil_cli_read_secret(const char *cmd, const char *opt, const char *path, unsigned char *buf,
                           size_t cap, size_t min);

#endif
