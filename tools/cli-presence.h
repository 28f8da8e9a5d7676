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

/* The presence store's health for the metrics endpoint: what
 * vigil_presence_redis_get_stats says, without its header (a build without
 * hiredis has the struct, always zero). */
typedef struct vigil_cli_presence_figures {
  uint64_t present;   /* 1: serve runs with --presence (0: the rest is zero) */
  uint64_t processes; /* processes with a store now: 1 (summed over workers) */
  uint64_t up;        /* of them, connected to Redis now */
  uint64_t queued;    /* updates waiting now */
  uint64_t sent, dropped, errors, bad_input, evictions, syncs, reconnects, node_lost;
} vigil_cli_presence_figures;

/* p's figures now (all zero when p is NULL). From the loop's thread. */
void vigil_cli_presence_get(const vigil_cli_presence *p, vigil_cli_presence_figures *f);

/* After the server is freed: sends what is queued (1 s at most), closes,
 * frees p. Runs the loop meanwhile. p may be NULL. */
void vigil_cli_presence_close(vigil_cli_presence *p, vigil_loop *loop);

#endif
