#ifndef VIGIL_SERVER_H
#define VIGIL_SERVER_H

/* The vigil server: accepts connections on one or more IPv4/IPv6 addresses,
 * runs a liveness session on each, keeps a presence table by peer id, and
 * reports every death with a cause drawn from evidence (docs/RUNTIME.md).
 *
 * This header also defines what the server and the client share: a
 * connection (vigil_conn), its callbacks, and the death record. The client
 * (vigil/client.h) includes it.
 *
 * Threading: a server lives on one loop and every function here must be
 * called from that loop's thread. Callbacks run on it too; a callback may
 * call any function of this header, including closing the connection it is
 * told about.
 *
 * Memory: the library owns vigil_server and vigil_conn. A vigil_conn pointer
 * is valid from its on_open (or the first callback naming it) until its
 * on_death / on_reject callback returns; never keep it past that. */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "keepalive.h"
#include "loop.h"
#include "session.h"
#include "version.h"

typedef struct vigil_server vigil_server;
typedef struct vigil_conn vigil_conn;

#ifndef VIGIL_ADDRSTRLEN
#define VIGIL_ADDRSTRLEN 72 /* room for "[v6addr%scope]:port" plus NUL (as loop.h) */
#endif

/* ---- shared with the client -------------------------------------------- */

/* What the OS said about the TCP connection when it died (Linux TCP_INFO;
 * other systems may leave available = 0). Times are milliseconds before the
 * snapshot; counts are the kernel's. */
typedef struct vigil_tcp_evidence {
  int available;              /* 0: no snapshot (OS lacks it, or socket gone) */
  uint8_t state;              /* kernel TCP state (1 = ESTABLISHED on Linux) */
  uint32_t unacked;           /* segments in flight, not yet acknowledged */
  uint32_t retransmits;       /* consecutive retransmissions of the head */
  uint32_t backoff;           /* RTO doublings */
  uint32_t probes;            /* unanswered zero-window / keepalive probes */
  uint32_t last_ack_recv_ms;  /* since the peer's kernel last ACKed us */
  uint32_t last_data_recv_ms; /* since the peer last sent us any byte */
  uint32_t snd_wnd;           /* window the peer advertises (UINT32_MAX: unknown) */
  uint32_t rtt_us;            /* kernel's smoothed RTT */
  uint32_t notsent_bytes;     /* in our send buffer, not yet sent */
} vigil_tcp_evidence;

/* Why a connection died. Every field is meaningful for every cause (zero or
 * NULL when it does not apply); the rules that choose `cause` are in
 * docs/RUNTIME.md ("Causes from evidence"). */
typedef struct vigil_death {
  vigil_cause cause;
  const char *detail;        /* static text: the rule, limit or event, or NULL */
  int error;                 /* VIGIL_E* the socket reported (ECONNRESET...), or 0 */
  uint64_t silent_ns;        /* since the last valid frame from the peer */
  uint64_t srtt_ns;          /* smoothed RTT of the heartbeat, 0 if none measured */
  uint64_t last_rtt_ns;      /* RTT of the last pong, 0 if none */
  uint32_t timeout_ms;       /* the silence bound that was in force */
  int close_received;        /* 1: the peer's CLOSE; 0: ours or none */
  int close_sent;            /* 1: we sent a CLOSE (policy, takeover, shutdown) */
  uint16_t close_code;       /* VIGIL_CLOSE_*, when close_received or close_sent */
  uint32_t retry_after_ms;   /* from the CLOSE, 0 if none */
  const char *reason;        /* CLOSE reason received or sent (borrowed during the
                                callback, not NUL-terminated when received), or NULL */
  size_t reason_len;
  vigil_tcp_evidence tcp;    /* kernel view at the moment of death */
} vigil_death;

/* Passed to on_open. Pointers are borrowed for the call. */
typedef struct vigil_open_info {
  const char *id;            /* peer id (server) / our id (client); not NUL-terminated */
  size_t id_len;
  const char *peer;          /* remote address, "1.2.3.4:5" or "[::1]:5", NUL-terminated */
  int rejoin;                /* server: this id replaced a live connection (takeover) */
  const char *old_peer;      /* server, rejoin: address of the replaced connection */
  unsigned attempt;          /* client: 1 for the first connection attempt, 2... */
  uint32_t interval_ms, timeout_ms, min_ping_ms, max_frame, max_message; /* agreed */
  int keepalive_error;       /* result of vigil_keepalive_apply, 0 when off */
  vigil_keepalive keepalive; /* what was asked of the kernel (enable 0: off) */
  vigil_keepalive_report keepalive_report; /* what the kernel took */
} vigil_open_info;

/* Callbacks for connections; every one is optional (NULL). `user` is the
 * pointer given in the config. Order for one connection: on_open, then any
 * number of on_message / on_rtt, then exactly one on_death, then one
 * on_unsent per message that was not completely written. A connection that
 * ends before its handshake completes gets on_reject instead of on_death
 * (server: refused for a limit, handshake too slow or malformed; client: a
 * failed attempt), followed by its on_unsent calls. */
typedef struct vigil_conn_callbacks {
  void (*on_open)(vigil_conn *c, const vigil_open_info *info, void *user);
  /* A whole message, reassembled (at most the agreed max_message bytes). */
  void (*on_message)(vigil_conn *c, const uint8_t *msg, size_t len, void *user);
  /* A pong answered our ping. */
  void (*on_rtt)(vigil_conn *c, uint64_t rtt_ns, void *user);
  void (*on_death)(vigil_conn *c, const vigil_death *d, void *user);
  void (*on_reject)(vigil_conn *c, const vigil_death *d, void *user);
  /* A message given to send() that was not completely written before the
   * connection died: msg is the whole message (borrowed for the call);
   * written is how many of its bytes had already been framed and written
   * (the peer discards a partial message, so resend it whole). */
  void (*on_unsent)(vigil_conn *c, const uint8_t *msg, size_t len, size_t written,
                    void *user);
} vigil_conn_callbacks;

/* Kernel keepalive on vigil sockets. AUTO (the default): derived from the
 * agreed heartbeat once the handshake completes, with budget = agreed
 * timeout (at least 3 s, the least the OS's 1 s granularity can express
 * with one lost probe) and 1 lost probe tolerated, so the
 * kernel's TCP_USER_TIMEOUT also catches data stuck in flight. EXPLICIT: the
 * `keepalive` values as given. OFF: the socket is left as the OS made it. */
typedef enum vigil_keepalive_mode {
  VIGIL_KEEPALIVE_AUTO = 0,
  VIGIL_KEEPALIVE_EXPLICIT,
  VIGIL_KEEPALIVE_OFF
} vigil_keepalive_mode;

typedef struct vigil_conn_info {
  vigil_session_info session;
  const char *id;            /* peer id (server) / our id (client), or NULL before HELLO */
  size_t id_len;
  char peer[VIGIL_ADDRSTRLEN];
  size_t queued_bytes;       /* outbound, not yet written */
  size_t queued_messages;
  uint64_t last_rtt_ns;
} vigil_conn_info;

/* Queues a message for the peer; the bytes are copied. Messages go out in
 * order, in chunks of at most the agreed max_frame. Returns 0, or
 *   VIGIL_EQUEUEFULL  the outbound queue would exceed its cap: nothing was
 *                     queued; wait for the queue to drain (backpressure). On
 *                     the server, a peer whose queue keeps overflowing
 *                     (queue_full_strikes rejections without the queue ever
 *                     draining) is closed with CLOSE QUEUE_FULL, cause policy.
 *   VIGIL_EMSGSIZE    len is larger than the peer accepts (agreed max_message)
 *   VIGIL_ENOTCONN    the handshake is not done yet (server side)
 *   VIGIL_ECLOSED     the connection is closing or dead
 *   VIGIL_ENOMEM */
VIGIL_EXTERN int vigil_conn_send(vigil_conn *c, const void *msg, size_t len);

/* Closes the connection from our side: a CLOSE with code and reason (NULL
 * for the code's text; copied) is written after what is queued, then the
 * socket is closed; on_death follows with cause local. Returns 0 or
 * VIGIL_ECLOSED (already closing), VIGIL_EINVAL (reason over 123 bytes). */
VIGIL_EXTERN int vigil_conn_close(vigil_conn *c, uint16_t code, const char *reason);

VIGIL_EXTERN void vigil_conn_set_data(vigil_conn *c, void *data);
VIGIL_EXTERN void *vigil_conn_get_data(const vigil_conn *c);
VIGIL_EXTERN void vigil_conn_get_info(const vigil_conn *c, vigil_conn_info *info);
/* The server this connection belongs to, or NULL for a client connection. */
VIGIL_EXTERN vigil_server *vigil_conn_server(const vigil_conn *c);

/* ---- server ------------------------------------------------------------ */

typedef struct vigil_server_config {
  /* Heartbeat policy: a client's proposal is clamped to it (session.h). The
   * id field is ignored. */
  vigil_session_config session;
  vigil_conn_callbacks cb;
  /* The server finished shutting down (after vigil_server_shutdown): every
   * connection is gone; vigil_server_free is now allowed. */
  void (*on_closed)(vigil_server *srv, void *user);
  void *user;
  /* Limits. Zero means the default. */
  uint32_t max_connections;   /* default 10000; more get CLOSE SERVER_FULL */
  uint32_t max_per_address;   /* default 0 = no limit; more get CLOSE ADDRESS_LIMIT */
  uint32_t retry_after_ms;    /* sent with SERVER_FULL / ADDRESS_LIMIT (default 1000) */
  size_t max_queue_bytes;     /* outbound queue cap per connection (default 1 MiB) */
  uint32_t queue_full_strikes;/* default 8; VIGIL_NO_LIMIT: never close for it */
  uint32_t shutdown_timeout_ms; /* default for vigil_server_shutdown (1000) */
  int backlog;                /* listen() backlog (default 511) */
  vigil_keepalive_mode keepalive_mode;
  vigil_keepalive keepalive;  /* EXPLICIT mode */
} vigil_server_config;

#define VIGIL_NO_LIMIT UINT32_MAX

typedef struct vigil_server_stats {
  uint32_t connections;        /* sockets open now, handshaking included */
  uint32_t peers;              /* entries in the presence table */
  uint64_t accepted;
  uint64_t opened;             /* handshakes completed */
  uint64_t rejoins;            /* takeovers of an id already present */
  uint64_t refused_full;       /* CLOSE SERVER_FULL */
  uint64_t refused_address;    /* CLOSE ADDRESS_LIMIT */
  uint64_t handshake_failed;   /* timeout or bad HELLO */
  uint64_t queue_full_closes;  /* CLOSE QUEUE_FULL */
  uint64_t accept_emfile;      /* EMFILE/ENFILE survived with the spare descriptor */
  uint64_t deaths[VIGIL_CAUSE_COUNT]; /* on_death calls by cause */
} vigil_server_stats;

VIGIL_EXTERN void vigil_server_config_init(vigil_server_config *cfg);

/* Allocates a server on `loop`. Returns 0 or VIGIL_EINVAL (a config the
 * session refuses), VIGIL_ENOMEM. Nothing listens until vigil_server_listen. */
VIGIL_EXTERN int vigil_server_new(vigil_server **out, vigil_loop *loop,
                                  const vigil_server_config *cfg);

/* Listens on host:port; may be called several times (IPv4 and IPv6, several
 * addresses). host is a numeric address ("0.0.0.0", "::", "::1") or a name
 * (every address it resolves to is bound); NULL or "" means every interface,
 * IPv6 and IPv4. IPv6 sockets are V6ONLY so "::" and "0.0.0.0" can both be
 * bound. Port 0 lets the kernel choose: *bound_port (may be NULL) receives
 * the port actually bound. Returns 0 or VIGIL_EADDRINUSE, VIGIL_EADDRNOTAVAIL,
 * VIGIL_EACCES, VIGIL_EAFNOSUPPORT, VIGIL_EINVAL (bad host), VIGIL_ENOENT
 * (name did not resolve), VIGIL_EMFILE, VIGIL_ENOMEM, VIGIL_ENOSPACE (more
 * than 16 listening sockets), VIGIL_ECLOSED (shutting down). */
VIGIL_EXTERN int vigil_server_listen(vigil_server *srv, const char *host, uint16_t port,
                                     uint16_t *bound_port);

/* The live connection whose client said this id, or NULL. */
VIGIL_EXTERN vigil_conn *vigil_server_find(vigil_server *srv, const char *id, size_t id_len);

/* vigil_conn_send to the connection with this id. Returns its results, or
 * VIGIL_ENOENT when no such peer is present. */
VIGIL_EXTERN int vigil_server_send_to(vigil_server *srv, const char *id, size_t id_len,
                                      const void *msg, size_t len);

/* Graceful shutdown: stops listening, sends CLOSE GOING_AWAY to every peer
 * (after what is already queued for it), waits up to timeout_ms (0: the
 * config's shutdown_timeout_ms) for those bytes to be written, then closes
 * whatever remains. Each open connection gets on_death (cause local, detail
 * "shutdown"); then on_closed. Returns 0 or VIGIL_EALREADY. */
VIGIL_EXTERN int vigil_server_shutdown(vigil_server *srv, uint32_t timeout_ms);

VIGIL_EXTERN void vigil_server_get_stats(const vigil_server *srv, vigil_server_stats *st);

/* Frees the server once it has no connections (before any client came, or
 * after on_closed). Listeners still open are closed; their memory, and the
 * server's, is released from their close callbacks, so run the loop until
 * it has nothing left (vigil_loop_close says VIGIL_EBUSY until then). No
 * callback runs after this call. Returns 0, or VIGIL_EBUSY while
 * connections exist (call vigil_server_shutdown first). */
VIGIL_EXTERN int vigil_server_free(vigil_server *srv);

#endif
