/* The per-connection layer shared by the server and the client: one
 * vigil_session driven over one vigil_tcp, with an outbound message queue,
 * message reassembly, the liveness timer, cause evidence, and the ending of
 * a connection (death, final CLOSE, lingering close). The design essay is
 * at the top of src/conn.c.
 *
 * The server and the client each embed a vigil__owner: the loop, the user's
 * callbacks, the shared read/write scratch buffers, the list of their
 * connections, and hooks through which conn.c tells them about openings,
 * deaths and freed connections. */
#ifndef VIGIL__CONN_INTERNAL_H
#define VIGIL__CONN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil.h"
#include "vigil/loop.h"
#include "vigil/tls.h"
#include "slab.h"

/* Scratch sizes, per owner (not per connection). */
#define VIGIL__RBUF_SIZE 65536u
#define VIGIL__WBUF_SIZE                                                                           \
  (4u * (VIGIL_WIRE_MAX_CHUNK + VIGIL_WIRE_MAX_HEADER) + 2u * VIGIL_WIRE_MAX_CONTROL_FRAME)
/* TLS ciphertext scratch: one fill of wbuf encrypted (records of at most
 * 16 KiB, each with less than 1 KiB of expansion), read in one piece. */
#define VIGIL__TBUF_SIZE (VIGIL__WBUF_SIZE + 8192u)
/* After our final CLOSE, how long we keep reading (and discarding) while
 * waiting for the peer to close first, so the kernel sends a FIN rather
 * than an RST that could destroy the CLOSE in flight. */
#define VIGIL__LINGER_MS 1000u
/* Default time a graceful local close may take to write what is queued. */
#define VIGIL__DRAIN_MS 1000u

typedef struct vigil__owner vigil__owner;

/* One outbound message. */
typedef struct vigil__msg {
  struct vigil__msg *next;
  size_t len;
  size_t framed;    /* bytes already framed into the stream */
  uint64_t end_pos; /* stream position just after its last chunk; 0 until framed */
  uint8_t data[];
} vigil__msg;

struct vigil__wpend; /* a write the kernel did not take at once (conn.c) */

enum vigil__phase {
  VIGIL__CONNECTING = 0, /* client: TCP connect in progress */
  VIGIL__HANDSHAKE,      /* session in HANDSHAKE */
  VIGIL__OPEN,           /* on_open was called */
  VIGIL__ZOMBIE          /* dead: final CLOSE, lingering close, then freed */
};

/* What a connection needs only now and then: an outbound queue with
 * messages in it, a message being reassembled, a partial control frame
 * held back, a write the kernel did not take at once, a graceful close
 * under way, a client's TCP connect, TLS output counted. Allocated when one of them starts
 * (conn_ext) and freed as soon as none is left (conn_trim), so an idle connection carries one NULL
 * pointer for all of it. A TLS connection keeps its ext for its whole life (the TLS state is in
 * it). Read through vigil__cx(), which gives an all-zero stand-in when there is none. */
typedef struct vigil__conn_ext {
  vigil__msg *qhead, *qtail; /* outbound queue */
  vigil__msg *qframe;        /* first message not completely framed */
  size_t qbytes;
  /* Bytes charged to the owner's budget (budget.h): reassembly, queue,
   * pending write, all of which live here, so an idle connection has none. */
  size_t charged;
  /* Stream positions, counted only while the ext exists: framed_pos -
   * kernel_pos is what was framed and is not in the kernel yet (at most a
   * pending write and TLS's credit), so both start over at each ext. */
  uint64_t framed_pos;
  uint64_t kernel_pos;
  uint8_t *rx;                /* reassembly, only while a message is in flight */
  uint8_t *retain;            /* incomplete control frame, only while pending */
  struct vigil__wpend *wpend; /* write the kernel has not taken yet */
  vigil_tls_conn *tls;        /* TLS between the socket and the session, or NULL */
  vigil_connect_req *creq;    /* client: connect in flight */
  char *close_reason;         /* requested local close: reason (owned) */
  const char *local_detail;   /* static: why we close ("takeover", ...) */
  uint64_t drain_ms;          /* graceful close must finish by then */
  uint32_t rx_len, rx_cap;
  uint32_t close_retry_ms;
  uint32_t tls_credit; /* TLS: plaintext bytes encrypted whose ciphertext is not
                          all in the kernel yet (counted into kernel_pos then) */
  uint32_t qstrikes;   /* EQUEUEFULL since the queue last drained (as wide
                          as the queue_full_strikes it is compared with) */
  uint16_t retain_len;
  uint16_t close_code;
} vigil__conn_ext;

/* The whole runtime connection; bench-sizes prints its size (docs/
 * ARCHITECTURE.md). The three public structs at its head (264 B) are fixed
 * by the ABI; everything after them is kept to what an idle, open
 * connection needs. The application's data pointer is tcp.data (the loop's
 * callbacks find the connection with vigil_container_of). */
struct vigil_conn {
  vigil_session session;
  vigil_tcp tcp;          /* tcp.data: the application's (vigil_conn_set_data) */
  vigil_loop_timer timer; /* connect, session deadline, drain, linger */
  vigil__owner *owner;
  vigil_conn *fnext; /* in the owner's flush list, while VIGIL__C_FLUSH */
  vigil_conn *hnext; /* server: presence-table chain */
  union {            /* the peer id (vigil__conn_peer_id) */
    char *ptr;       /* server: malloc'd (ID_OWNED); client: the client's */
    char in[16];     /* server: an id of up to 15 bytes (ID_INLINE) */
  } id;
  vigil__conn_ext *x; /* the rarely used state, or NULL */
  uint64_t opened_ns;
  uint64_t last_rtt_ns;
  uint64_t ref;  /* vigil_conn_id (src/conn-id.c), 0 once unregistered */
  uint64_t pgen; /* server: presence generation, from on_open */
  union {
    uint32_t align;
    uint8_t b[28]; /* sockaddr_in / sockaddr_in6 of the peer */
  } peer;
  uint8_t phase;
  uint8_t flags;
  uint8_t id_len;
};

/* The connection's rarely used state, or a shared all-zero one when it has
 * none (read only). */
extern const vigil__conn_ext vigil__no_ext;
static inline const vigil__conn_ext *vigil__cx(const vigil_conn *c) {
  return c->x != NULL ? c->x : &vigil__no_ext;
}

/* Moves the outbound queue of `from` (a client's placeholder) to `to`. */
void vigil__conn_take_queue(vigil_conn *to, vigil_conn *from);

/* conn->flags */
#define VIGIL__C_PEER_GONE 0x01u /* EOF or socket error: nothing more to read */
#define VIGIL__C_CLOSE_REQ 0x02u /* graceful local close pending */
#define VIGIL__C_ID_OWNED 0x04u  /* conn->id is ours to free */
#define VIGIL__C_COUNTED 0x08u   /* server: counted against the limits */
#define VIGIL__C_PRESENT 0x10u   /* server: in the presence table */
#define VIGIL__C_FLUSH 0x20u     /* in the owner's flush list */
#define VIGIL__C_ID_INLINE 0x40u /* conn->id.in holds the id */

/* The peer id (NUL-terminated, id_len bytes), or NULL before there is one. */
static inline const char *vigil__conn_peer_id(const vigil_conn *c) {
  return (c->flags & VIGIL__C_ID_INLINE) ? c->id.in : c->id.ptr;
}

struct vigil__owner {
  vigil_loop *loop;
  vigil_conn_callbacks cb;
  void *user;
  vigil_server *server; /* NULL for a client */
  size_t max_queue_bytes;
  uint32_t queue_full_strikes;
  size_t budget;          /* memory budget (budget.h); 0: none */
  size_t budget_used;     /* bytes charged by every connection */
  uint64_t budget_closes; /* connections closed for it */
  vigil_keepalive_mode ka_mode;
  vigil_keepalive ka;
  uint8_t *rbuf, *wbuf; /* scratch, allocated with the owner */
  vigil_tls *tls;       /* TLS context of every connection, or NULL (borrowed) */
  const char *tls_name; /* client: the server name TLS verifies */
  uint8_t *tbuf;        /* TLS: ciphertext scratch, VIGIL__TBUF_SIZE */
  vigil__slab conns;    /* every connection, zombies included (walk: vigil__conn_next) */
  unsigned nconns;
  /* Connections with bytes to write, written at the end of the iteration
   * by one defer (src/conn.c, "flushing"), in the order they asked. */
  vigil_defer flush;
  vigil_conn *flush_head, **flush_tail;
  /* Counters and gauges of src/conn.c: connections by phase, queued bytes,
   * pings, pongs, RTT, verdict lateness, stalls (vigil/metrics.h). */
  vigil_metrics m;
  vigil_stall_watch stall;
  const vigil_session_config *session_cfg; /* client: used when a connect succeeds */
  const uint8_t *cred;                     /* client: sent in each HELLO (owned by it) */
  size_t cred_len;
  /* Hooks (may be NULL). opened: before on_open, may fill rejoin/old_peer.
   * died: before the user's on_death / on_reject. buried: after them and
   * the on_unsent calls. freed: the socket is closed, memory goes next. */
  void (*opened)(vigil_conn *c, vigil_open_info *info);
  /* admit (server): the HELLO of c names id and carries cred (NULL, 0:
   * none); before the id is stored or counts anywhere. Returns 0 to go on,
   * else it has killed c (refused). */
  int (*admit)(vigil_conn *c, const uint8_t *id, size_t id_len, const uint8_t *cred,
               size_t cred_len);
  void (*died)(vigil_conn *c, const vigil_death *d, int was_open);
  void (*buried)(vigil_conn *c, const vigil_death *d, int was_open);
  void (*freed)(vigil_conn *c);
};

/* Sets up the owner's fields and scratch buffers. Returns 0 or VIGIL_ENOMEM. */
int vigil__owner_init(vigil__owner *o, vigil_loop *loop);
/* Every connection of o runs TLS with context tls (borrowed; NULL: none);
 * name: the server name a client verifies (borrowed). Returns 0 or
 * VIGIL_ENOMEM. */
int vigil__owner_tls(vigil__owner *o, vigil_tls *tls, const char *name);
/* Releases the scratch buffers and stops the stall watcher. */
void vigil__owner_free(vigil__owner *o);

/* A new connection on the owner's list, with its tcp handle initialised
 * (no socket yet). NULL when out of memory. */
vigil_conn *vigil__conn_new(vigil__owner *o);
/* The process-wide id table (src/conn-id.c): register sets c->ref
 * (returns 0 or VIGIL_ENOMEM); unregister frees the id for good (harmless
 * twice). Loop thread. */
int vigil__conn_register(vigil_conn *c);
void vigil__conn_unregister(vigil_conn *c);

/* The owner's next connection after *cur (a zeroed cursor: the first),
 * zombies included, or NULL at the end. A connection made or freed during
 * the walk may be missed; every other one is seen once. */
static inline vigil_conn *vigil__conn_next(vigil__owner *o, vigil__slab_cursor *cur) {
  return (vigil_conn *)vigil__slab_next(&o->conns, cur);
}

/* Frees a connection whose tcp handle never got a socket. */
void vigil__conn_discard(vigil_conn *c);

/* 32 bits from the OS's random source (vigil_random); should the OS
 * refuse, salt (an object's address) mixed with now, which still differ
 * between objects. Seeds what must differ between connections and between
 * processes: ping jitter, reconnect backoff, the presence table's hash. */
uint32_t vigil__random_u32(const void *salt, uint64_t now);

/* Starts the session (role, cfg) on a connected socket: reads, the
 * handshake deadline, and for a client the HELLO. Returns 0 or the session
 * / loop error (the caller then kills or discards the connection). */
int vigil__conn_start(vigil_conn *c, vigil_role role, const vigil_session_config *cfg);

/* Kills c at once from our side: a CLOSE with code is written if the
 * socket takes it, then a lingering close. The death has cause `cause`
 * (local or policy) and detail. Harmless on a zombie. */
void vigil__conn_kill(vigil_conn *c, vigil_cause cause, uint16_t code, const char *reason,
                      uint32_t retry_after_ms, const char *detail);

/* Graceful local close: the queue is written first (within timeout_ms),
 * then CLOSE code, then on_death cause local with detail. Returns 0,
 * VIGIL_ECLOSED (already closing or dead), VIGIL_EINVAL (bad reason),
 * VIGIL_ENOMEM. */
int vigil__conn_close(vigil_conn *c, uint16_t code, const char *reason, const char *detail,
                      uint32_t timeout_ms);

/* Client: connects c to sa, failing it (on_reject) if the TCP connect does
 * not complete within timeout_ms; on success starts the client session
 * with owner->session_cfg. Returns 0 or an immediate error (the caller
 * then fails the connection with it). */
int vigil__conn_connect(vigil_conn *c, const struct sockaddr *sa, uint32_t timeout_ms);

/* Ends c now, whatever its phase: a live connection is killed (cause local,
 * detail), a lingering one has its socket closed. */
void vigil__conn_abort(vigil_conn *c, const char *detail);

/* A socket-level failure (read, write, connect): evidence, cause, death. */
void vigil__conn_fail(vigil_conn *c, int err, const char *detail);

/* The remote address as text into buf (VIGIL_ADDRSTRLEN bytes); "?" when
 * unknown. */
void vigil__conn_peer_text(const vigil_conn *c, char *buf, size_t size);
/* Records the peer address from the socket. */
void vigil__conn_peer_load(vigil_conn *c);
/* Family byte + address bytes of the peer (IPv4-mapped IPv6 folded to
 * IPv4) into key; returns the key length (0 when unknown). */
size_t vigil__conn_addr_key(const vigil_conn *c, uint8_t key[17]);

/* Delivers loop stalls to every live session of the owner. */
void vigil__owner_stall_start(vigil__owner *o);

/* Applies the owner's keepalive policy to c for the agreed timeout. */
int vigil__conn_keepalive(vigil_conn *c, uint32_t timeout_ms, vigil_keepalive *ka,
                          vigil_keepalive_report *report);

/* The loop tick (ms) at which `ms` from now has fully elapsed: rounded up,
 * so a timer armed for it never fires early. */
uint64_t vigil__after_ms(const vigil_loop *loop, uint32_t ms);

/* Wall clock, Unix milliseconds (presence records; src/presence.c). */
uint64_t vigil__wall_ms(void);

/* The client's full-jitter backoff (src/client.c; declared here for its
 * unit test): a random delay in [0, min(cap, base * 2^(attempt-1))] for
 * attempt >= 1, drawn from *rng (xorshift32 state, never 0). */
uint32_t vigil__backoff(uint32_t base_ms, uint32_t cap_ms, unsigned attempt, uint32_t *rng);

#endif
