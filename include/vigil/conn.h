#ifndef VIGIL_CONN_H
#define VIGIL_CONN_H

/* A vigil connection: one TCP connection with a liveness session on it, as
 * the server accepts it (vigil/server.h) and the client makes it
 * (vigil/client.h). This header holds what both share: the connection
 * handle, its callbacks, the death record with the kernel's evidence, and
 * the functions that send on, close and describe a connection.
 *
 * Threading: a connection lives on its owner's loop and every function here
 * must be called from that loop's thread, except vigil_conn_send_threadsafe.
 * Callbacks run on it too; a callback may call any function of this header,
 * including closing the connection it is told about. Another thread names
 * a connection by its id (vigil_conn_id), never by pointer.
 *
 * Memory: the library owns vigil_conn. A vigil_conn pointer is valid from
 * its on_open (or the first callback naming it) until its on_death /
 * on_reject callback returns; never keep it past that. */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "keepalive.h"
#include "loop.h"
#include "session.h"
#include "tls.h"
#include "version.h"

typedef struct vigil_conn vigil_conn;

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

/* What ended a connection, before the kernel's evidence is consulted: the
 * session's verdict (a VIGIL_EVENT_DEAD's cause and silent_ns) or the
 * socket's error. Zero it, then fill what applies. */
typedef struct vigil_verdict {
  vigil_cause cause;  /* the session's cause, or VIGIL_CAUSE_NONE for a socket error */
  int error;          /* VIGIL_E* from the socket (VIGIL_EOF: end of stream), or 0 */
  uint64_t silent_ns; /* since the last valid frame from the peer */
  int connecting;     /* 1: the TCP connect itself failed */
  int handshake;      /* 1: the verdict came before the handshake completed */
} vigil_verdict;

/* Snapshots the kernel's view of a connected TCP socket into *ev (Linux:
 * TCP_INFO). Take it at the moment of death, before closing the socket.
 * Returns 0 with ev->available = 1, or VIGIL_ENOTSUP (this system offers
 * no such query) or the socket's error, with ev zeroed, ev->snd_wnd =
 * UINT32_MAX and ev->available = 0. */
VIGIL_EXTERN int vigil_evidence_read(vigil_os_socket sock, vigil_tcp_evidence *ev);

/* The cause vigil reports for a verdict and a snapshot: the rules of
 * docs/RUNTIME.md ("Causes from evidence"), the same ones vigil's server
 * and client apply, so a program that runs the session on its own socket
 * (an event loop of its own, libuv) reports the same causes. ev may be NULL
 * or unavailable; then only the verdict decides. When a rule decides,
 * *detail is set to a static text naming it; when the session's cause
 * stands as it is, *detail is left as it was (keep the session's detail). */
VIGIL_EXTERN vigil_cause vigil_evidence_classify(const vigil_verdict *v,
                                                 const vigil_tcp_evidence *ev, const char **detail);

/* Why a connection died. Every field is meaningful for every cause (zero or
 * NULL when it does not apply); the rules that choose `cause` are in
 * docs/RUNTIME.md ("Causes from evidence"). */
typedef struct vigil_death {
  vigil_cause cause;
  const char *detail;      /* static text: the rule, limit or event, or NULL */
  int error;               /* VIGIL_E* the socket reported (ECONNRESET...), or 0 */
  uint64_t silent_ns;      /* since the last valid frame from the peer */
  uint64_t srtt_ns;        /* smoothed RTT of the heartbeat, 0 if none measured */
  uint64_t last_rtt_ns;    /* RTT of the last pong, 0 if none */
  uint32_t timeout_ms;     /* the silence bound that was in force */
  int close_received;      /* 1: the peer's CLOSE; 0: ours or none */
  int close_sent;          /* 1: we sent a CLOSE (policy, takeover, shutdown) */
  uint16_t close_code;     /* VIGIL_CLOSE_*, when close_received or close_sent */
  uint32_t retry_after_ms; /* from the CLOSE, 0 if none */
  const char *reason;      /* CLOSE reason received or sent (borrowed during the
                              callback, not NUL-terminated when received), or NULL */
  size_t reason_len;
  vigil_tcp_evidence tcp; /* kernel view at the moment of death */
} vigil_death;

/* Passed to on_open. Pointers are borrowed for the call. */
typedef struct vigil_open_info {
  const char *id; /* peer id (server) / our id (client); not NUL-terminated */
  size_t id_len;
  const char *peer;     /* remote address, "1.2.3.4:5" or "[::1]:5", NUL-terminated */
  int rejoin;           /* server: this id replaced a live connection (takeover) */
  const char *old_peer; /* server, rejoin: address of the replaced connection */
  unsigned attempt;     /* client: 1 for the first connection attempt, 2... */
  uint32_t interval_ms, timeout_ms, min_ping_ms, max_frame, max_message; /* agreed */
  int keepalive_error;                     /* result of vigil_keepalive_apply, 0 when off */
  vigil_keepalive keepalive;               /* what was asked of the kernel (enable 0: off) */
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
  void (*on_unsent)(vigil_conn *c, const uint8_t *msg, size_t len, size_t written, void *user);
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
  const char *id; /* peer id (server) / our id (client), or NULL before HELLO */
  size_t id_len;
  char peer[VIGIL_ADDRSTRLEN];
  size_t queued_bytes; /* outbound, not yet written */
  size_t queued_messages;
  uint64_t last_rtt_ns;
  uint64_t opened_ns;        /* loop time of on_open (0 before) */
  vigil_keepalive keepalive; /* open: what was asked of the kernel at on_open */
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

/* The connection's id: a number that names this connection and no other,
 * ever (an id is not reused after the connection goes), for use from other
 * threads. Loop thread; valid from the first callback naming c. */
VIGIL_EXTERN uint64_t vigil_conn_id(const vigil_conn *c);

/* The outcome of a vigil_conn_send_threadsafe, on the connection's loop
 * thread: vigil_conn_send's result (0 queued, VIGIL_EQUEUEFULL,
 * VIGIL_EMSGSIZE, VIGIL_ENOTCONN, VIGIL_ECLOSED, VIGIL_ENOMEM), or
 * VIGIL_ENOENT when the connection was gone by the time the loop got to it
 * (the message was dropped, nothing was touched). */
typedef void (*vigil_send_done_cb)(uint64_t conn_id, int status, void *arg);

/* vigil_conn_send from any thread: copies msg, and has the connection's loop
 * give it to vigil_conn_send (in call order, through vigil_loop_post). A
 * connection that dies in between is never touched: done (may be NULL)
 * then gets VIGIL_ENOENT. done runs on the loop's thread, with arg.
 * Returns 0 (queued: done will be called), or
 *   VIGIL_ENOENT      no live connection has this id (it died, or never was)
 *   VIGIL_EQUEUEFULL  the loop's post queue is full (post_queue_max calls
 *                     waiting): nothing was queued; the loop is behind
 *   VIGIL_EINVAL      msg NULL with len > 0
 *   VIGIL_ENOMEM */
VIGIL_EXTERN int vigil_conn_send_threadsafe(uint64_t conn_id, const void *msg, size_t len,
                                            vigil_send_done_cb done, void *arg);

VIGIL_EXTERN void vigil_conn_set_data(vigil_conn *c, void *data);
VIGIL_EXTERN void *vigil_conn_get_data(const vigil_conn *c);
VIGIL_EXTERN void vigil_conn_get_info(const vigil_conn *c, vigil_conn_info *info);

/* The TLS layer of c (vigil/tls.h: protocol, cipher, the peer's
 * certificate CN), or NULL when c runs without TLS. */
VIGIL_EXTERN const vigil_tls_conn *vigil_conn_tls(const vigil_conn *c);

#endif
