/* `vigil token`: mints (or checks) a credential that binds an id to a
 * server secret (include/vigil/token.h, docs/PROTOCOL.md section 12).
 *
 * The secret is read from a file, never from the command line (where ps
 * and shell history would show it), and is never printed: error lines
 * name the file, not its bytes. One trailing newline is ignored so that
 * `openssl rand -hex 32 > secret` works as well as raw random bytes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-auth.h"
#include "cli.h"
#include "commands.h"
#include "vigil.h"

#define CMD "token"
#define SECRET_MAX VIGIL_CLI_SECRET_MAX
#define TTL_MAX_S (3650ull * 86400ull) /* ten years */

static const char usage_text[] =
    "usage: vigil token --secret FILE --id ID --ttl D\n"
    "       vigil token --secret FILE --id ID --check TOKEN\n"
    "\n"
    "Prints a token that lets a client use the id ID until now + D, signed with\n"
    "HMAC-SHA256 under the secret in FILE (at least 16 bytes; one trailing newline\n"
    "is ignored; make one with: head -c 32 /dev/urandom > FILE). With --check,\n"
    "says whether TOKEN is valid for ID now instead.\n"
    "\n"
    "options:\n"
    "  --secret FILE  the server secret (never printed)\n"
    "  --id ID        the id the token is for (1..255 bytes)\n"
    "  --ttl D        how long the token is valid: N followed by s, m, h or d\n"
    "                 (e.g. 30d; at most 3650d)\n"
    "  --check TOKEN  verify TOKEN instead of minting one\n"
    "\n"
    "A client presents it with connect/probe --token-file FILE to a server started\n"
    "with serve --auth-secret FILE (the same secret). It is a bearer credential:\n"
    "send it only over TLS on untrusted networks.\n"
    "Exit status: 0 printed (or valid), 1 refused or failed, 2 bad usage.\n";

/* "30d" into seconds; 0 or -1. */
static int parse_ttl(const char *s, uint64_t *out) {
  char *end;
  unsigned long long n;
  uint64_t mult;
  if (s[0] < '0' || s[0] > '9')
    return -1;
  errno = 0;
  n = strtoull(s, &end, 10);
  if (errno != 0 || end[0] == '\0' || end[1] != '\0')
    return -1;
  mult = end[0] == 's'   ? 1u
         : end[0] == 'm' ? 60u
         : end[0] == 'h' ? 3600u
         : end[0] == 'd' ? 86400u
                         : 0u;
  if (mult == 0 || n == 0 || n > TTL_MAX_S / mult)
    return -1;
  *out = n * mult;
  return 0;
}

int vigil_cmd_token(int argc, char **argv) {
  static const struct option longs[] = {
      {"secret", required_argument, NULL, 's'}, {"id", required_argument, NULL, 'i'},
      {"ttl", required_argument, NULL, 't'},    {"check", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  const char *secret_path = NULL, *id = NULL, *ttl = NULL, *check = NULL;
  unsigned char secret[SECRET_MAX];
  char out[VIGIL_TOKEN_MAX + 1];
  uint64_t ttl_s = 0, now = (uint64_t)time(NULL);
  long sl;
  int c, rc;
  if (argc > 1 && vigil_cli_is_help(argv[1])) {
    fputs(usage_text, stdout);
    return VIGIL_CLI_OK;
  }
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 's':
      secret_path = optarg;
      break;
    case 'i':
      id = optarg;
      break;
    case 't':
      ttl = optarg;
      break;
    case 'c':
      check = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return VIGIL_CLI_OK;
    default:
      return vigil_cli_usage(CMD, "unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return vigil_cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
  if (secret_path == NULL || id == NULL)
    return vigil_cli_usage(CMD, "--secret FILE and --id ID are required");
  if (id[0] == '\0' || strlen(id) > 255)
    return vigil_cli_usage(CMD, "--id: 1 to 255 bytes");
  if ((ttl == NULL) == (check == NULL))
    return vigil_cli_usage(CMD, "give either --ttl D (mint) or --check TOKEN (verify)");
  if (ttl != NULL && parse_ttl(ttl, &ttl_s) != 0)
    return vigil_cli_usage(CMD, "--ttl '%s': want N followed by s, m, h or d, at most 3650d", ttl);
  if (!vigil_token_available()) {
    fprintf(stderr, "vigil token: this vigil was built without OpenSSL, so it has no tokens "
                    "(docs/WINDOWS.md)\n");
    return VIGIL_CLI_FAIL;
  }
  if ((sl = vigil_cli_read_secret(CMD, "secret", secret_path, secret, sizeof secret,
                                  VIGIL_TOKEN_SECRET_MIN)) < 0)
    return VIGIL_CLI_FAIL;
  if (check != NULL) {
    rc = vigil_token_verify(secret, (size_t)sl, id, strlen(id), check, strlen(check), now);
    memset(secret, 0, sizeof secret);
    if (rc != 0) {
      fprintf(stderr, "vigil token: refused: %s\n", vigil_strerror(rc));
      return VIGIL_CLI_FAIL;
    }
    puts("valid");
    return VIGIL_CLI_OK;
  }
  rc = vigil_token_mint(secret, (size_t)sl, id, strlen(id), now + ttl_s, out, sizeof out);
  memset(secret, 0, sizeof secret);
  if (rc != 0) {
    fprintf(stderr, "vigil token: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  puts(out);
  return VIGIL_CLI_OK;
}
