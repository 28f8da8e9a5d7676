#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

/* What a server (or client) has seen, as counters, gauges and histograms,
 * and the same rendered in the Prometheus text exposition format 0.0.4.
 *
 * The counters are kept by the runtime as it works, at the cost of an
 * increment (a histogram: a scan of 16 bounds, once per pong or verdict);
 * nothing is measured per heartbeat that was not already there.
 * vigil_server_get_metrics (vigil/server.h) and vigil_client_get_metrics
 * (vigil/client.h) copy them into a vigil_metrics, from the loop's thread.
 * vigil_metrics_format needs no server: a program with its own HTTP
 * endpoint (or none) formats a snapshot it took. docs/OPERATIONS.md lists
 * every metric with its meaning and an alert on it.
 *
 * ABI: vigil_metrics can grow at its end. The getters take the caller's
 * sizeof (the macros pass it), fill that many bytes at most and set `size`
 * to what they filled; a field beyond `size` was not filled. */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "version.h"

/* Finite bucket bounds per histogram; above the last one an observation
 * is only in `count` (the +Inf bucket). */
#define VIGIL_HIST_BUCKETS 16

typedef struct vigil_histogram {
  uint64_t count;                       /* observations */
  uint64_t sum_ns;                      /* their sum */
  uint64_t buckets[VIGIL_HIST_BUCKETS]; /* NOT cumulative: bucket i holds
                                           bound(i-1) < x <= bound(i) */
} vigil_histogram;

typedef enum vigil_histogram_kind {
  VIGIL_HIST_RTT = 0, /* heartbeat round trip: 100 us .. 10 s */
  VIGIL_HIST_LATENESS /* verdict lateness: 100 us .. 10 s */
} vigil_histogram_kind;

/* Upper bound (inclusive) of bucket i of a histogram of `kind`, in ns; 0
 * for an i or kind out of range. */
VIGIL_EXTERN uint64_t vigil_histogram_bound_ns(vigil_histogram_kind kind, unsigned i);

/* Why the server turned a connection away before (or during) its
 * handshake. Names (vigil_refusal_name) are a contract: Prometheus labels. */
#define VIGIL_REFUSAL_MAP(X)                                                                       \
  X(SERVER_FULL, "server_full")             /* CLOSE SERVER_FULL: max_connections */               \
  X(ADDRESS_LIMIT, "address_limit")         /* CLOSE ADDRESS_LIMIT: max_per_address */             \
  X(OVERLOAD, "overload")                   /* dropped without a word: 2 x max_connections */      \
  X(HANDSHAKE_TIMEOUT, "handshake_timeout") /* no HELLO in time */                                 \
  X(BAD_HANDSHAKE, "bad_handshake")         /* anything else that ended a handshake */             \
  X(AUTH_FAILED, "auth_failed") /* CLOSE AUTH_FAILED: credential missing/wrong/expired */

typedef enum vigil_refusal {
#define VIGIL__REFUSAL_ENUM(name, str) VIGIL_REFUSED_##name,
  VIGIL_REFUSAL_MAP(VIGIL__REFUSAL_ENUM)
#undef VIGIL__REFUSAL_ENUM
      VIGIL_REFUSAL_COUNT
} vigil_refusal;

VIGIL_EXTERN const char *vigil_refusal_name(vigil_refusal r);

typedef struct vigil_metrics {
  size_t size; /* bytes filled by the getter (see ABI above) */
  /* Gauges: now. */
  uint32_t connecting;   /* client: TCP connect in flight */
  uint32_t handshaking;  /* socket up, handshake not done */
  uint32_t open;         /* on_open called, not dead */
  uint32_t closing;      /* dead, socket lingering for the peer's FIN */
  uint32_t peers;        /* server: entries in the presence table */
  uint64_t queued_bytes; /* outbound, not yet in the kernel, all connections */
  /* Counters: since the server (client) was created. */
  uint64_t accepted;  /* server: sockets accepted */
  uint64_t opened;    /* handshakes completed */
  uint64_t takeovers; /* server: an id came back and replaced its old connection */
  uint64_t refused[VIGIL_REFUSAL_COUNT]; /* server, by vigil_refusal */
  uint64_t deaths[VIGIL_CAUSE_COUNT];    /* on_death calls, by cause */
  uint64_t pings_sent;                   /* heartbeat pings written */
  uint64_t pongs_received;               /* answers to them */
  uint64_t stalls;                       /* loop stalls the stall guard reported */
  uint64_t queue_full_closes;            /* server: CLOSE QUEUE_FULL */
  uint64_t accept_emfile;                /* server: EMFILE survived with the spare descriptor */
  uint64_t verdicts_early;               /* heartbeat verdicts before `timeout` (adaptive mode
                                            only; in fixed mode this stays 0 or it is a bug) */
  vigil_histogram rtt;                   /* each pong's RTT */
  vigil_histogram lateness;              /* each heartbeat verdict: silence minus timeout */
} vigil_metrics;

/* Adds src's counters, gauges and histograms into dst (several servers,
 * one per worker, shown as one). dst->size becomes the smaller size. */
VIGIL_EXTERN void vigil_metrics_add(vigil_metrics *dst, const vigil_metrics *src);

/* Renders m in the Prometheus text exposition format 0.0.4 into buf
 * (at most cap bytes, NUL-terminated when cap > 0), every metric named
 * vigil_*. Returns the length the whole text needs, without the NUL (as
 * snprintf: a result >= cap means it was cut; call again with more), or
 * VIGIL_EINVAL (m NULL, or m->size smaller than the struct this library
 * was built with: take the snapshot with this library's getter). */
VIGIL_EXTERN long vigil_metrics_format(const vigil_metrics *m, char *buf, size_t cap);

#endif
