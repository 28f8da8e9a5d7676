#ifndef VIGIL_PRESENCE_REDIS_H
#define VIGIL_PRESENCE_REDIS_H

/* The Redis presence store (libvigil-redis, built where hiredis is
 * installed): every worker and node of a fleet writes its openings, deaths
 * and takeovers into one Redis, so `vigil who` and `vigil watch` (or any
 * Redis client) see the whole fleet. The data model, the ordering rules and
 * the failure behaviour are in docs/PRESENCE.md.
 *
 * It runs on vigil's loop with hiredis's asynchronous API: the loop never
 * blocks on Redis. While Redis is unreachable the server keeps detecting;
 * updates wait in a bounded queue (what overflows is counted in
 * `dropped`), and when Redis returns the queue is replayed and, if anything
 * was dropped, every record of this process is written again from its own
 * table, so Redis ends up agreeing with the node.
 *
 * Threading: the loop's thread only. */

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "presence.h"

#if defined(__GNUC__) && __GNUC__ >= 4 && !defined(_WIN32)
#define VIGIL_REDIS_EXTERN __attribute__((visibility("default")))
#else
#define VIGIL_REDIS_EXTERN
#endif

/* A parsed --presence URL: redis://HOST[:PORT][/DB] (HOST an IPv4 literal,
 * [IPv6] or localhost; PORT default 6379; DB default 0) or
 * unix:///absolute/path[?db=N]. */
typedef struct vigil_presence_url {
  int is_unix;
  char host[64]; /* numeric */
  uint16_t port;
  char path[108];
  unsigned db;
} vigil_presence_url;

/* Parses text strictly. Returns 0, or VIGIL_EINVAL with *why (may be NULL)
 * naming what is wrong. */
VIGIL_REDIS_EXTERN int vigil_presence_url_parse(const char *text, vigil_presence_url *out,
                                                const char **why);

typedef struct vigil_presence_redis vigil_presence_redis;

typedef struct vigil_presence_redis_config {
  size_t size; /* set by vigil_presence_redis_config_init (docs/ABI.md) */
  vigil_presence_url url;
  const char *node;  /* this process's node name (default: hostname), 1..64 bytes */
  uint32_t worker;   /* worker index within the node */
  size_t max_queue;  /* updates kept while Redis is away (default 10000) */
  uint32_t ttl_ms;   /* expiry of online records, refreshed every ttl/3 (default 15000) */
  uint32_t retry_ms; /* reconnect delay (default 250, doubling to 4 s) */
  /* This process's heartbeat in Redis: the ids of a process that stops
   * beating (killed, host gone) are marked offline with cause node_lost by
   * any other process within this bound (default 5000, at least 200;
   * docs/PRESENCE.md). Keep it well under ttl_ms. */
  uint32_t node_timeout_ms;
  /* Redis became reachable (up 1) or not (up 0, why says how). */
  void (*on_state)(vigil_presence_redis *r, int up, const char *why, void *user);
  void *user;
} vigil_presence_redis_config;

typedef struct vigil_presence_redis_stats {
  int up;             /* connected now */
  uint64_t sent;      /* updates Redis acknowledged */
  uint64_t queued;    /* waiting now (unsent or unacknowledged) */
  uint64_t dropped;   /* did not fit the queue */
  uint64_t errors;    /* updates Redis refused (a key of the wrong type...) */
  uint64_t bad_input; /* not ours: control messages, keys the reaper skipped */
  uint64_t evictions; /* our connections closed because another took the id */
  uint64_t syncs;     /* full rewrites after drops */
  uint64_t reconnects;
  uint64_t node_lost; /* ids of lost nodes this process marked offline */
} vigil_presence_redis_stats;

/* Defaults and cfg->size (a macro: the caller's sizeof; docs/ABI.md). */
VIGIL_REDIS_EXTERN void vigil_presence_redis_config_init_sized(vigil_presence_redis_config *cfg,
                                                               size_t size);
#define vigil_presence_redis_config_init(cfg)                                                      \
  vigil_presence_redis_config_init_sized((cfg), sizeof *(cfg))

/* Starts connecting (in the background) and returns. cfg is read as far
 * as its size goes (docs/ABI.md). Returns 0, VIGIL_EINVAL (bad config, or
 * never _init'ed), VIGIL_ENOTSUP (a field this library lacks is set),
 * VIGIL_ENOMEM. */
VIGIL_REDIS_EXTERN int vigil_presence_redis_new(vigil_presence_redis **out, vigil_loop *loop,
                                                const vigil_presence_redis_config *cfg);
VIGIL_REDIS_EXTERN vigil_presence_store *vigil_presence_redis_store(vigil_presence_redis *r);
/* The process's own table (what Redis is reconciled from). */
VIGIL_REDIS_EXTERN const vigil_presence_local *
vigil_presence_redis_table(const vigil_presence_redis *r);
VIGIL_REDIS_EXTERN void vigil_presence_redis_get_stats(const vigil_presence_redis *r,
                                                       vigil_presence_redis_stats *st);

/* Sends what is queued (waiting up to timeout_ms for Redis to acknowledge
 * it), disconnects, then calls cb from the loop; r is freed after cb. */
VIGIL_REDIS_EXTERN void vigil_presence_redis_close(vigil_presence_redis *r, uint32_t timeout_ms,
                                                   void (*cb)(void *user), void *user);

/* The reaper (a Lua script for EVAL with 0 keys and the arguments
 * "vigil:", the wall clock in Unix ms, and the TTL in ms of the records it
 * marks): every process whose node key is gone has its online ids marked
 * offline with cause node_lost and a `dead` event published. Returns an
 * array of two integers: the ids marked, and the entries skipped because a
 * key held something not ours (a wrong type), which never stops the rest.
 * Every store runs it with its heartbeat (skips count in bad_input); `vigil
 * who` runs it first, so a fleet whose last node died is still seen as
 * offline. */
VIGIL_REDIS_EXTERN extern const char vigil_presence_reap_lua[];

#endif
