#ifndef VIGIL_SERVER_H
#define VIGIL_SERVER_H

/* The vigil server: accepts connections on one or more IPv4/IPv6 addresses,
 * runs a liveness session on each, keeps a presence table by peer id, and
 * reports every death with a cause drawn from evidence (docs/RUNTIME.md).
 *
 * Connections are vigil_conn (vigil/conn.h): their callbacks, death record
 * and send/close functions are shared with the client.
 *
 * Threading: a server lives on one loop and every function here must be
 * called from that loop's thread. Callbacks run on it too; a callback may
 * call any function of this header, including closing the connection it is
 * told about.
 *
 * Memory: the library owns vigil_server, and its connections for as long
 * as vigil/conn.h says. */

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "errno.h"
#include "keepalive.h"
#include "loop.h"
#include "metrics.h"
#include "presence.h"
#include "session.h"
#include "tls.h"
#include "version.h"

typedef struct vigil_server vigil_server;

/* The server this connection belongs to, or NULL for a client connection. */
VIGIL_EXTERN vigil_server *vigil_conn_server(const vigil_conn *c);

typedef struct vigil_server_config {
  size_t size; /* set by vigil_server_config_init: the struct's size as compiled (docs/ABI.md) */
  /* Heartbeat policy: a client's proposal is clamped to it (session.h). The
   * id field is ignored. */
  vigil_session_config session;
  vigil_conn_callbacks cb;
  /* The server finished shutting down (after vigil_server_shutdown): every
   * connection is gone; vigil_server_free is now allowed. */
  void (*on_closed)(vigil_server *srv, void *user);
  void *user;
  /* Limits. Zero means the default. */
  uint32_t max_connections;     /* default 10000; more get CLOSE SERVER_FULL */
  uint32_t max_per_address;     /* default 0 = no limit; more get CLOSE ADDRESS_LIMIT */
  uint32_t retry_after_ms;      /* sent with SERVER_FULL / ADDRESS_LIMIT (default 1000) */
  size_t max_queue_bytes;       /* outbound queue cap per connection (default 1 MiB) */
  uint32_t queue_full_strikes;  /* default 8; VIGIL_NO_LIMIT: never close for it */
  uint32_t shutdown_timeout_ms; /* default for vigil_server_shutdown (1000) */
  int backlog;                  /* listen() backlog (default 511) */
  vigil_keepalive_mode keepalive_mode;
  vigil_keepalive keepalive; /* EXPLICIT mode */
  /* Where openings, deaths and takeovers are reported (vigil/presence.h),
   * or NULL. Borrowed: it must outlive the server. */
  vigil_presence_store *presence;
  /* One memory budget for every connection's reassembly buffers, outbound
   * queues and pending writes (docs/RUNTIME.md, "Memory budget"). When a
   * connection would take the total past it, a connection above its share
   * (budget / connections) is closed with CLOSE POLICY "memory budget
   * exceeded", cause policy. Default (0): a quarter of the machine's
   * memory, or max_connections x (max_message + max_queue_bytes + 66 KiB)
   * if that is less. SIZE_MAX: no budget. */
  size_t memory_budget;
  /* 1: listeners set SO_REUSEPORT, so several processes (vigil/workers.h)
   * can listen on the same port and the kernel spreads connections over
   * them. VIGIL_ENOTSUP from vigil_server_listen where the system lacks it
   * (Windows). Default 0. */
  int reuseport;
  /* TLS on every connection (vigil/tls.h, a server context), or NULL.
   * Borrowed: it must outlive the server. A client that speaks plaintext
   * is answered CLOSE POLICY "this server requires TLS" (on_reject cause
   * protocol_error). */
  vigil_tls *tls;
  /* Connection rate limit per source address (docs/SECURITY.md): a token
   * bucket per address that refills at rate_per_minute and holds at most
   * rate_burst connections (default: one second's worth, at least 1).
   * Past it a connection gets CLOSE ADDRESS_LIMIT with retry_after = the
   * time until its next token (counted in refused_address). The table of
   * addresses holds rate_sources of them (default 16384, 32 bytes each);
   * a new address that finds no room is refused the same way. Default
   * rate_per_minute 0: no rate limit. */
  uint32_t rate_per_minute;
  uint32_t rate_burst;
  uint32_t rate_sources;
  /* Ids bound to credentials (docs/SECURITY.md). With verify or
   * auth_secret set, a HELLO's id counts (on_open, the presence table, a
   * takeover of a connection holding the id) only if the HELLO carries a
   * credential (protocol version 2, PROTOCOL.md section 4.1) that passes;
   * else the connection is refused with CLOSE AUTH_FAILED (13), retry-after
   * auth_retry_after_ms, reason "credential required", "authentication
   * failed" or "credential expired" (never the credential), and reported
   * through on_reject (cause policy, that reason as detail). Without
   * either, credentials are ignored and any id is taken on its word.
   *
   * verify: the program's own check. id is the HELLO's id (or the client
   * certificate's with vigil_tls_server's id_from_cert), cred the bytes the
   * client sent; c is the handshaking connection (vigil_conn_get_info gives
   * its peer; it has no id yet). Return 0 to admit, VIGIL_EEXPIRED for a
   * genuine but expired credential, anything else (VIGIL_EAUTH) to refuse.
   * It runs on the loop's thread, inside the read: keep it quick.
   *
   * auth_secret: the built-in check, tokens of vigil/token.h minted under
   * this secret (auth_secret_len >= VIGIL_TOKEN_SECRET_MIN bytes, copied),
   * against the wall clock. VIGIL_ENOTSUP from vigil_server_new where the
   * library has no OpenSSL (vigil_token_available() is 0); VIGIL_EINVAL
   * with verify set too (one judge) or a short secret. */
  int (*verify)(vigil_conn *c, const char *id, size_t id_len, const uint8_t *cred, size_t cred_len,
                void *user);
  const void *auth_secret;
  size_t auth_secret_len;
  uint32_t auth_retry_after_ms; /* with AUTH_FAILED (default 10000) */
} vigil_server_config;

#define VIGIL_NO_LIMIT UINT32_MAX

typedef struct vigil_server_stats {
  uint32_t connections; /* sockets open now, handshaking included */
  uint32_t peers;       /* entries in the presence table */
  uint64_t accepted;
  uint64_t opened;                    /* handshakes completed */
  uint64_t rejoins;                   /* takeovers of an id already present */
  uint64_t refused_full;              /* CLOSE SERVER_FULL */
  uint64_t refused_address;           /* CLOSE ADDRESS_LIMIT */
  uint64_t handshake_failed;          /* timeout or bad HELLO */
  uint64_t queue_full_closes;         /* CLOSE QUEUE_FULL */
  uint64_t accept_emfile;             /* EMFILE/ENFILE survived with the spare descriptor */
  uint64_t deaths[VIGIL_CAUSE_COUNT]; /* on_death calls by cause */
  uint64_t budget_closes;             /* closed for the memory budget */
  uint64_t memory_used;               /* bytes charged to the budget now */
  uint64_t memory_budget;             /* the budget in force (UINT64_MAX: none) */
  uint64_t refused_auth;              /* CLOSE AUTH_FAILED (also in handshake_failed) */
} vigil_server_stats;

/* Defaults and cfg->size (a macro: the caller's sizeof; docs/ABI.md). */
VIGIL_EXTERN void vigil_server_config_init_sized(vigil_server_config *cfg, size_t size);
#define vigil_server_config_init(cfg) vigil_server_config_init_sized((cfg), sizeof *(cfg))

/* Allocates a server on `loop`. cfg (and every option struct) is read only
 * as far as its size goes (docs/ABI.md): VIGIL_EINVAL if it was never
 * _init'ed, VIGIL_ENOTSUP if it sets a field this library lacks. Returns 0 or VIGIL_EINVAL (a
 * config the session refuses), VIGIL_ENOMEM. Nothing listens until vigil_server_listen. */
VIGIL_EXTERN int vigil_server_new(vigil_server **out, vigil_loop *loop,
                                  const vigil_server_config *cfg);

/* Listens on host:port; may be called several times (IPv4 and IPv6, several
 * addresses). host is a numeric address ("0.0.0.0", "::", "::1") or a name
 * (every address it resolves to is bound); NULL or "" means every interface,
 * IPv6 and IPv4. IPv6 sockets are V6ONLY so "::" and "0.0.0.0" can both be
 * bound. Port 0 lets the kernel choose: *bound_port (may be NULL) receives
 * the port actually bound.
 *
 * All or nothing: every address is bound, or the call fails and closes what
 * it had bound, and vigil_server_listen_failed names the address that could
 * not be bound (another process on 127.0.0.1:P fails "every interface" on P
 * rather than leaving IPv4 clients to that process). An address family the
 * system has no support for at all is skipped. This call resolves a name
 * with the system's blocking resolver: give a numeric address on a loop
 * that is already serving.
 *
 * Returns 0 or VIGIL_EADDRINUSE, VIGIL_EADDRNOTAVAIL, VIGIL_EACCES,
 * VIGIL_EAFNOSUPPORT, VIGIL_EINVAL (bad host), VIGIL_ENOENT (name did not
 * resolve), VIGIL_EMFILE, VIGIL_ENOMEM, VIGIL_ENOSPACE (more than 16
 * listening sockets), VIGIL_ECLOSED (shutting down). */
VIGIL_EXTERN int vigil_server_listen(vigil_server *srv, const char *host, uint16_t port,
                                     uint16_t *bound_port);

/* After vigil_server_listen failed: the address it could not bind, as
 * "0.0.0.0:7000" or "[::]:7000"; "" when it failed before trying one (the
 * name did not resolve, shutting down) or when the last listen succeeded.
 * The string belongs to the server and lives until the next listen. */
VIGIL_EXTERN const char *vigil_server_listen_failed(const vigil_server *srv);

/* The live connection whose client said this id, or NULL. */
VIGIL_EXTERN vigil_conn *vigil_server_find(vigil_server *srv, const char *id, size_t id_len);

/* vigil_conn_send to the connection with this id. Returns its results, or
 * VIGIL_ENOENT when no such peer is present. */
VIGIL_EXTERN int vigil_server_send_to(vigil_server *srv, const char *id, size_t id_len,
                                      const void *msg, size_t len);

/* Ends the connection of id if it is generation gen (vigil/presence.h):
 * CLOSE TAKEOVER, on_death cause local, detail "takeover". For a presence
 * store shared by several processes, when another one took the id over.
 * Returns 0, or VIGIL_ENOENT (no such id, or a different generation: the
 * connection it meant is already gone). */
VIGIL_EXTERN int vigil_server_evict(vigil_server *srv, const char *id, size_t id_len, uint64_t gen);

/* The presence generation of a server connection (0 for a client's, or
 * before on_open). */
VIGIL_EXTERN uint64_t vigil_conn_generation(const vigil_conn *c);

/* Graceful shutdown: stops listening, sends CLOSE GOING_AWAY to every peer
 * (after what is already queued for it), waits up to timeout_ms (0: the
 * config's shutdown_timeout_ms) for those bytes to be written, then closes
 * whatever remains. Each open connection gets on_death (cause local, detail
 * "shutdown"); then on_closed. Returns 0 or VIGIL_EALREADY. */
VIGIL_EXTERN int vigil_server_shutdown(vigil_server *srv, uint32_t timeout_ms);

VIGIL_EXTERN void vigil_server_get_stats(const vigil_server *srv, vigil_server_stats *st);

/* A snapshot of the server's metrics (vigil/metrics.h): connections by
 * state, opens, takeovers, refusals by reason, deaths by cause, pings,
 * pongs, the RTT and verdict-lateness histograms, stalls, queued bytes.
 * Fills at most `size` bytes of *m (the macro passes the caller's sizeof)
 * and sets m->size to what it filled. Returns 0 or VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_server_get_metrics_sized(const vigil_server *srv, vigil_metrics *m,
                                                size_t size);
#define vigil_server_get_metrics(srv, m) vigil_server_get_metrics_sized((srv), (m), sizeof *(m))

/* Calls fn for each open connection (handshake done, not dead), in no
 * particular order, until fn returns nonzero (that value is returned; 0
 * when every connection was visited). fn must not close, kill or send on
 * any connection, nor call back into the server: it looks. Costs one step
 * per open connection: for an occasional snapshot, not per heartbeat. */
VIGIL_EXTERN int vigil_server_foreach(vigil_server *srv, int (*fn)(vigil_conn *c, void *arg),
                                      void *arg);

/* Frees the server once it has no connections (before any client came, or
 * after on_closed). Listeners still open are closed; their memory, and the
 * server's, is released from their close callbacks, so run the loop until
 * it has nothing left (vigil_loop_close says VIGIL_EBUSY until then). No
 * callback runs after this call. Returns 0, or VIGIL_EBUSY while
 * connections exist (call vigil_server_shutdown first). */
VIGIL_EXTERN int vigil_server_free(vigil_server *srv);

#endif
