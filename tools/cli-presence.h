/* Presence in the CLI (tools/presence.c): the Redis store behind
 * `vigil serve --presence URL`. `vigil who` and `vigil watch` are declared
 * in commands.h. */
#ifndef VIGIL_TOOLS_CLI_PRESENCE_H
#define VIGIL_TOOLS_CLI_PRESENCE_H

#include <stdint.h>

#include "vigil.h"

typedef struct vigil_cli_presence vigil_cli_presence;

/* Parses url strictly and starts the Redis store on loop (node may be
 * NULL: the host name; node_timeout_ms 0: the store's default). Prints why and returns
 * VIGIL_CLI_USAGE (bad URL or node) or VIGIL_CLI_FAIL (no Redis support in this build, no memory);
 * 0 with *store for the server's config. Redis being unreachable is not an
 * error: serve starts degraded and says so. */
int vigil_cli_presence_start(const char *cmd, const char *url, const char *node, uint32_t worker,
                             uint32_t node_timeout_ms, vigil_loop *loop, int json,
                             vigil_presence_store **store, vigil_cli_presence **out);

/* After the server is freed: sends what is queued (1 s at most), closes,
 * frees p. Runs the loop meanwhile. p may be NULL. */
void vigil_cli_presence_close(vigil_cli_presence *p, vigil_loop *loop);

#endif
