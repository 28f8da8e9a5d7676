#ifndef VIGIL_PRESENCE_H
#define VIGIL_PRESENCE_H

/* Presence: who is online, where, since when, and why they dropped.
 *
 * A vigil server reports every opening, death and takeover of a peer id to
 * a presence store through the small vtable below. Two stores exist:
 *
 *   - the local store (this header): a table in the process, keeping one
 *     record per id it has seen, online or offline, with the last cause
 *     and RTT. It is what a single process needs, and what the Redis store
 *     keeps as its own truth to reconcile from.
 *   - the Redis store (vigil/presence-redis.h, libvigil-redis, built where
 *     hiredis is installed): the same records in Redis, shared by every
 *     worker and node (docs/PRESENCE.md).
 *
 * Generations. Every connection that completes its handshake gets a
 * generation from its server: a number unique in the process and
 * increasing. An update names (id, generation): a death applies only if
 * the record still belongs to that generation, so a late death of an old
 * connection never overwrites a newer opening, and replaying an update
 * changes nothing (idempotent). Across processes the token (node, worker,
 * generation) plays that role (docs/PRESENCE.md).
 *
 * Threading: a store lives on its server's loop; nothing here is
 * thread-safe. */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "version.h"

typedef enum vigil_presence_kind {
  VIGIL_PRESENCE_OPEN = 1, /* the id is online on this connection */
  VIGIL_PRESENCE_DEAD      /* this connection of the id died */
} vigil_presence_kind;

typedef enum vigil_presence_state {
  VIGIL_PRESENCE_UNKNOWN = 0,
  VIGIL_PRESENCE_ONLINE,
  VIGIL_PRESENCE_OFFLINE
} vigil_presence_state;

/* One update. Strings are borrowed for the call. */
typedef struct vigil_presence_event {
  vigil_presence_kind kind;
  const char *id; /* not NUL-terminated */
  size_t id_len;
  uint64_t gen;     /* the connection's generation (> 0) */
  const char *peer; /* remote address, NUL-terminated */
  uint64_t at_ms;   /* wall clock (Unix ms) of the event */
  /* DEAD only. */
  vigil_cause cause;
  const char *detail; /* static text, or NULL */
  uint64_t silent_ns;
  uint64_t rtt_ns; /* smoothed heartbeat RTT, 0 if none */
  int takeover;    /* replaced by a newer connection of the same id */
} vigil_presence_event;

typedef struct vigil_presence_store vigil_presence_store;
struct vigil_server; /* vigil/server.h */

/* The vtable. report must not fail the connection: a store that cannot
 * record an update now keeps or counts it itself (the Redis store queues
 * it). bind tells the store which server reports to it (NULL: unbound), so
 * a shared store can make that server evict a connection another process
 * took over (vigil_server_evict). */
typedef struct vigil_presence_ops {
  int (*report)(vigil_presence_store *st, const vigil_presence_event *ev);
  void (*bind)(vigil_presence_store *st, struct vigil_server *srv);
} vigil_presence_ops;

struct vigil_presence_store {
  const vigil_presence_ops *ops;
};

/* A record as the local store keeps it. */
typedef struct vigil_presence_record {
  vigil_presence_state state;
  uint64_t gen;
  uint64_t since_ms; /* wall clock of the last change */
  vigil_cause last_cause;
  uint64_t last_rtt_ns;
  uint64_t silent_ns;
  int takeover; /* the last death was a takeover */
  char peer[72];
} vigil_presence_record;

/* ---- the local store ----------------------------------------------------- */

typedef struct vigil_presence_local vigil_presence_local;

/* A local store keeping at most max_ids records (0: 100000). When full, an
 * offline record is forgotten to make room; with every record online a new
 * id is not recorded and counted in vigil_presence_local_dropped. Returns
 * 0, VIGIL_EINVAL or VIGIL_ENOMEM. */
VIGIL_EXTERN int vigil_presence_local_new(vigil_presence_local **out, size_t max_ids);
VIGIL_EXTERN void vigil_presence_local_free(vigil_presence_local *t);
/* The store interface of t, for vigil_server_config.presence. */
VIGIL_EXTERN vigil_presence_store *vigil_presence_local_store(vigil_presence_local *t);

/* Applies ev (the store's report). Returns 1 when the record changed, 0
 * when ev was stale or a repeat (the record belongs to a newer generation,
 * or already says this), VIGIL_EINVAL (bad event), VIGIL_ENOSPACE (full). */
VIGIL_EXTERN int vigil_presence_local_apply(vigil_presence_local *t,
                                            const vigil_presence_event *ev);

/* The record of id into *rec. Returns 0 or VIGIL_ENOENT. */
VIGIL_EXTERN int vigil_presence_local_get(const vigil_presence_local *t, const char *id,
                                          size_t id_len, vigil_presence_record *rec);

/* Calls fn for every record (in no order); fn returns non-zero to stop.
 * fn must not change t. */
VIGIL_EXTERN void vigil_presence_local_each(const vigil_presence_local *t,
                                            int (*fn)(const char *id, size_t id_len,
                                                      const vigil_presence_record *rec, void *arg),
                                            void *arg);

/* Records, and records refused because the table was full of online ids. */
VIGIL_EXTERN size_t vigil_presence_local_count(const vigil_presence_local *t);
VIGIL_EXTERN uint64_t vigil_presence_local_dropped(const vigil_presence_local *t);

/* The text of a state: "online", "offline", "unknown". */
VIGIL_EXTERN const char *vigil_presence_state_name(vigil_presence_state s);

#endif
