#ifndef VIGIL_CLIENT_H
#define VIGIL_CLIENT_H

/* The vigil client: connects with a timeout, performs the handshake, runs
 * the heartbeat, reports the death of each connection with its cause, and
 * reconnects with exponential backoff and full jitter:
 *
 *   delay(attempt) = random(0, min(backoff_cap, backoff_base * 2^(attempt-1)))
 *
 * but never less than a retry_after the server sent in its CLOSE. A
 * connection that stayed open for stable_ms resets the attempt count, so a
 * client that was healthy for a while starts again from a short delay.
 *
 * Messages not yet written when a connection dies are handed back through
 * on_unsent (never dropped silently); the application decides whether to
 * send them again on the next connection.
 *
 * Connections are vigil_conn (vigil/conn.h): the same callbacks, death
 * record and send/close functions as on the server. Threading: a client
 * lives on one loop and every function here must be called from that
 * loop's thread. Memory: the library owns vigil_client, and its connections
 * for as long as vigil/conn.h says. */

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "errno.h"
#include "keepalive.h"
#include "loop.h"
#include "metrics.h"
#include "session.h"
#include "tls.h"
#include "version.h"

typedef struct vigil_client vigil_client;

/* A host name resolver: writes up to `max` IPv4 / IPv6 addresses of host
 * (ports are ignored) into out and their count into *n, in the order it
 * prefers. Returns 0, or a negative VIGIL_E* (VIGIL_ENOENT: no such name).
 * The client calls it on a worker thread, never on the loop's: it may
 * block, and must be thread-safe; it may still be running after the client
 * that asked was closed and freed (its result is then dropped), so `arg`
 * must outlive that. Numeric addresses never reach it. */
typedef int (*vigil_resolve_fn)(void *arg, const char *host, struct sockaddr_storage *out,
                                size_t max, size_t *n);

/* The default resolver: the system's getaddrinfo (AF_UNSPEC, SOCK_STREAM).
 * A resolver of your own may call it. arg is ignored. */
VIGIL_EXTERN int vigil_resolve_os(void *arg, const char *host, struct sockaddr_storage *out,
                                  size_t max, size_t *n);

typedef struct vigil_client_config {
  size_t size; /* set by vigil_client_config_init: the struct's size as compiled (docs/ABI.md) */
  /* Proposed heartbeat (interval_ms, timeout_ms, max_frame, max_message,
   * handshake_timeout_ms) and our id (required). The id is copied. */
  vigil_session_config session;
  vigil_conn_callbacks cb;
  /* A reconnect was scheduled: `attempt` is the number of the attempt that
   * will be made (2 for the first retry), after delay_ms. */
  void (*on_reconnect)(vigil_client *cli, unsigned attempt, uint32_t delay_ms, void *user);
  /* The client stopped for good (vigil_client_close done, reconnect off, or
   * max_attempts reached): no more callbacks; vigil_client_free is allowed. */
  void (*on_closed)(vigil_client *cli, void *user);
  void *user;
  uint32_t connect_timeout_ms; /* lookup + TCP connect within (default 5000) */
  int no_reconnect;            /* 1: stop after the first death or failed attempt */
  uint32_t backoff_base_ms;    /* default 100 */
  uint32_t backoff_cap_ms;     /* default 30000 */
  uint32_t stable_ms;          /* open this long resets the attempt count (default 10000) */
  uint32_t max_attempts;       /* consecutive failed attempts before giving up (0: never) */
  size_t max_queue_bytes;      /* outbound queue cap (default 1 MiB) */
  vigil_keepalive_mode keepalive_mode;
  vigil_keepalive keepalive; /* EXPLICIT mode */
  /* Host names are resolved with resolve(resolve_arg, ...) on a worker
   * thread (NULL: vigil_resolve_os). */
  vigil_resolve_fn resolve;
  void *resolve_arg;
  /* Happy Eyeballs (RFC 8305): the next address is tried this long after
   * the previous attempt started, if that one has neither connected nor
   * failed (default 250, at least 10). */
  uint32_t attempt_delay_ms;
  /* TLS on every connection (vigil/tls.h, a client context), or NULL.
   * Borrowed: it must outlive the client. */
  vigil_tls *tls;
  /* The name TLS verifies and sends as SNI (copied; NULL: the host given
   * to vigil_client_connect). */
  const char *tls_name;
  /* A credential sent in every HELLO, on every reconnect (1..255 bytes,
   * copied; NULL: none): a token of vigil/token.h for a server with an
   * auth secret, or whatever the server's verify callback expects. With
   * it the HELLO is protocol version 2 (PROTOCOL.md section 4.1), which a
   * server older than this library refuses with CLOSE VERSION. A server
   * that refuses it answers CLOSE AUTH_FAILED (13) with a retry-after,
   * which the reconnect delay obeys (the client keeps trying: the server's
   * secret or the credential may change; stop it from on_reject if it
   * should not). */
  const void *credential;
  size_t credential_len;
} vigil_client_config;

typedef struct vigil_client_stats {
  unsigned attempt;       /* current / last attempt number (1-based) */
  uint64_t attempts;      /* connection attempts made */
  uint64_t opened;        /* handshakes completed */
  uint32_t last_delay_ms; /* the last backoff delay chosen */
  unsigned addresses;     /* addresses the last attempt had to try */
  uint64_t tcp_connects;  /* TCP connects started (one attempt may race several) */
  uint64_t deaths[VIGIL_CAUSE_COUNT];
} vigil_client_stats;

/* Defaults and cfg->size (a macro: the caller's sizeof; docs/ABI.md). */
VIGIL_EXTERN void vigil_client_config_init_sized(vigil_client_config *cfg, size_t size);
#define vigil_client_config_init(cfg) vigil_client_config_init_sized((cfg), sizeof *(cfg))

/* Allocates a client on `loop`. cfg is read only as far as its size goes
 * (docs/ABI.md): VIGIL_EINVAL if never _init'ed, VIGIL_ENOTSUP if it sets a
 * field this library lacks. Returns 0, VIGIL_EINVAL (no id, or a config
 * the session refuses), VIGIL_ENOMEM. */
VIGIL_EXTERN int vigil_client_new(vigil_client **out, vigil_loop *loop,
                                  const vigil_client_config *cfg);

/* Starts connecting to host:port (numeric IPv4/IPv6, or a name resolved
 * at each attempt on a worker thread, every address tried: IPv6 and IPv4
 * interleaved, a new one every attempt_delay_ms until one connects) and
 * keeps the connection up until vigil_client_close. connect_timeout_ms
 * bounds each attempt from its start (lookup included) to a TCP
 * connection. Returns 0, or VIGIL_EINVAL (bad host or port 0),
 * VIGIL_EALREADY (already started), VIGIL_ECLOSED (closing). Failures of
 * the attempts themselves arrive as on_reject. */
VIGIL_EXTERN int vigil_client_connect(vigil_client *cli, const char *host, uint16_t port);

/* vigil_conn_send on the current connection; while it is still connecting
 * or in its handshake the message waits in the queue. Returns its results,
 * or VIGIL_ENOTCONN when there is no connection (between attempts, and
 * from the on_death / on_reject / on_unsent of the one that died), or
 * VIGIL_ECLOSED once the client stopped (closed, gave up, no_reconnect). */
VIGIL_EXTERN int vigil_client_send(vigil_client *cli, const void *msg, size_t len);

/* The current connection once its TCP connection is up (handshaking or
 * open), or NULL (between attempts, and while resolving and connecting:
 * the connection that wins the race is not known yet). */
VIGIL_EXTERN vigil_conn *vigil_client_conn(vigil_client *cli);

/* Stops: no more reconnects; an open connection gets CLOSE NORMAL after its
 * queued messages, written within timeout_ms (0: 1000), then on_death
 * (cause local, detail "client closed") and on_closed. Returns 0 or
 * VIGIL_EALREADY. */
VIGIL_EXTERN int vigil_client_close(vigil_client *cli, uint32_t timeout_ms);

/* Replaces the credential (cred[0..len), 1..255 bytes, copied; NULL and 0:
 * none) for the HELLOs of the attempts that start after this call, for a
 * program that renews a token before it expires. Returns 0, VIGIL_EINVAL
 * (len above 255, NULL cred with len > 0), VIGIL_ENOMEM. */
VIGIL_EXTERN int vigil_client_set_credential(vigil_client *cli, const void *cred, size_t len);

VIGIL_EXTERN void vigil_client_get_stats(const vigil_client *cli, vigil_client_stats *st);

/* A snapshot of the client's metrics (vigil/metrics.h): its connection by
 * state, opens, deaths by cause, pings, pongs, RTT and verdict-lateness
 * histograms, stalls, queued bytes (the server-only fields stay 0). Fills
 * at most `size` bytes (the macro passes the caller's sizeof) and sets
 * m->size to what it filled. Returns 0 or VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_client_get_metrics_sized(const vigil_client *cli, vigil_metrics *m,
                                                size_t size);
#define vigil_client_get_metrics(cli, m) vigil_client_get_metrics_sized((cli), (m), sizeof *(m))

/* Frees the client once it has no connection: before vigil_client_connect,
 * after on_closed, or after a failed attempt while no new one is under way
 * (a pending reconnect is cancelled). No callback runs after this call.
 * Returns 0, or VIGIL_EBUSY while a connection (or its lingering close)
 * exists: call vigil_client_close and wait for on_closed. */
VIGIL_EXTERN int vigil_client_free(vigil_client *cli);

#endif
