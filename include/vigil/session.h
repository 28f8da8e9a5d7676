#ifndef VIGIL_SESSION_H
#define VIGIL_SESSION_H

/* The liveness engine: one per connection, sans-I/O.
 *
 * It never touches a socket and never reads a clock. The caller feeds it the
 * bytes it received and the current time (uint64 nanoseconds from any
 * monotonic origin), and asks it for the bytes to write and for its next
 * deadline. Rules it implements (docs/ARCHITECTURE.md, "Liveness"):
 *  - only complete, valid frames from the peer refresh liveness; our own
 *    sends never do;
 *  - a ping goes out only when nothing valid arrived for the idle period
 *    (interval shortened by a random 0-25%), at most one outstanding; or,
 *    with ping_on_schedule (a probe), every interval whatever arrives;
 *  - the verdict "dead" comes when nothing valid arrived for `timeout`:
 *    never earlier, and exactly then if expire() is called on time;
 *  - control frames go ahead of queued data at the next chunk boundary;
 *  - a peer pinging faster than the agreed minimum gets strikes, then CLOSE;
 *  - a message begun must be finished within the message deadline;
 *  - vigil_session_stalled() re-probes instead of convicting.
 *
 * Usage, in order, for each turn of the caller's loop:
 *   stalled() if the loop noticed it did not run for a while (a tick gap,
 *           a suspend), before anything else;
 *   recv()  for each block of received bytes, until it consumes nothing and
 *           reports no event (it reports at most one event per call);
 *   expire() when now >= deadline();
 *   write() while it produces bytes (it frames at most one DATA chunk per
 *           call, after any pending control frame).
 * After a DEAD event, write() out the CLOSE it may have queued (want_write)
 * and then close the connection; every other call returns VIGIL_ECLOSED.
 * The design essay is at the top of src/session.c.
 */

#include <stddef.h>
#include <stdint.h>

#include "detector.h"
#include "errno.h"
#include "version.h"
#include "wire.h"

#define VIGIL_NO_DEADLINE UINT64_MAX
#define VIGIL_MS ((uint64_t)1000000) /* nanoseconds per millisecond */
/* A caller never needs to hold back more than this many received bytes
 * between recv() calls (one incomplete control frame). */
#define VIGIL_SESSION_MAX_RETAIN VIGIL_WIRE_MAX_CONTROL_FRAME
/* Strikes a peer may collect for pinging too fast before it is closed. */
#define VIGIL_PING_STRIKES 3

typedef enum vigil_role { VIGIL_ROLE_CLIENT = 0, VIGIL_ROLE_SERVER = 1 } vigil_role;

typedef enum vigil_session_state {
  VIGIL_SESSION_HANDSHAKE = 0, /* client: HELLO queued/sent; server: awaiting HELLO */
  VIGIL_SESSION_OPEN,          /* agreed values in force */
  VIGIL_SESSION_CLOSING,       /* CLOSE queued; write() it, then close */
  VIGIL_SESSION_DEAD           /* verdict given; nothing more happens */
} vigil_session_state;

/* Settings. Zero means "default" for every field but `size`, and
 * vigil_session_config_init() writes the defaults into the fields that have
 * a fixed one (interval, max_frame, max_message, handshake, the server's
 * interval range and longest timeout), so a program can read them there.
 * timeout_ms, min_timeout_ms and min_ping_ms stay 0: their defaults follow
 * the agreed interval. An option struct that can grow: initialise it with
 * vigil_session_config_init(). */
typedef struct vigil_session_config {
  size_t size; /* set by vigil_session_config_init: the struct's size as compiled (docs/ABI.md) */
  uint32_t interval_ms;          /* heartbeat interval; client proposes it (default 1000) */
  uint32_t timeout_ms;           /* silence that means dead (default 3 x the agreed
                                    interval: the client's HELLO proposes 0) */
  uint32_t max_frame;            /* largest DATA chunk we accept (default 16384) */
  uint32_t max_message;          /* largest message we accept (default 1 MiB) */
  uint32_t handshake_timeout_ms; /* HELLO/WELCOME must arrive within (default 5000) */
  /* Server policy: what a client's proposal is clamped to. */
  uint32_t min_interval_ms; /* default 100 */
  uint32_t max_interval_ms; /* default 600000 */
  uint32_t min_timeout_ms;  /* default 2 x agreed interval */
  uint32_t max_timeout_ms;  /* default 3600000 */
  uint32_t min_ping_ms;     /* a peer may not ping faster (default interval / 2) */
  /* Client identity, sent in HELLO. Borrowed: must stay valid until the
   * HELLO has been written (the first write() after init). */
  const char *id;
  size_t id_len;
  /* Seeds the ping jitter. The session never reads a random source: give
   * each connection its own seed (vigil_random() in vigil/loop.h), or all
   * of them draw the same idle periods and ping in lock-step. The server,
   * the client and libvigil-uv do so when this is 0 (the default); a
   * non-zero seed is used as given, for every connection (tests). */
  uint32_t seed;
  /* Adaptive mode: when non-NULL, the verdict comes from phi-accrual over the
   * arrival history kept here (owned by the caller) instead of the fixed
   * timeout; still never before 2 x interval after the last valid frame and
   * never after timeout. */
  vigil_phi *phi;
  /* Ping on schedule (a probe, a measurement): once OPEN, ping at once and
   * then every agreed interval (no jitter) after the previous ping was
   * written, whatever arrives in between; still at most one outstanding (a
   * late pong delays the next ping until it comes). Without it a ping goes
   * out only after receive-idle, so a peer that pings us first (or sends
   * data) means we never ping: right for liveness, useless for measuring.
   * Verdicts are unchanged: never before `timeout` of silence. */
  int ping_on_schedule;
  /* Message deadline: a message the peer has begun (its first DATA_MORE
   * chunk) must be complete within this, or the peer is closed (CLOSE
   * POLICY, cause policy). Without it a peer that sends most of a message
   * and never the end, while answering pings, holds the reassembly buffer
   * for ever. Default (0): the agreed timeout plus the time the agreed
   * max_message takes at VIGIL_MIN_MESSAGE_RATE (1 MiB: 3 s + 64 s). */
  uint32_t message_timeout_ms;
} vigil_session_config;

/* Bytes per second the default message deadline assumes of the slowest
 * legitimate sender (128 kbit/s). */
#define VIGIL_MIN_MESSAGE_RATE 16384u

typedef enum vigil_event_type {
  VIGIL_EVENT_NONE = 0,
  VIGIL_EVENT_OPEN, /* handshake done. Server: data/len = the peer's id */
  VIGIL_EVENT_DATA, /* data/len = message bytes; end_of_message on the last */
  VIGIL_EVENT_PONG, /* our ping was answered: rtt_ns */
  VIGIL_EVENT_DEAD  /* verdict: cause, detail; close fields if by CLOSE */
} vigil_event_type;

typedef struct vigil_event {
  vigil_event_type type;
  vigil_cause cause;   /* DEAD */
  const char *detail;  /* DEAD: the rule or limit, a static string */
  const uint8_t *data; /* DATA, OPEN: borrowed, valid during the call */
  size_t len;
  int end_of_message;      /* DATA */
  uint64_t rtt_ns;         /* PONG */
  uint64_t silent_ns;      /* DEAD: time since the last valid frame */
  uint16_t close_code;     /* DEAD by a CLOSE frame (received or sent) */
  uint32_t retry_after_ms; /* DEAD by a CLOSE frame */
  const char *reason;      /* DEAD by a received CLOSE: borrowed */
  size_t reason_len;
  /* OPEN (server): the credential of a version 2 HELLO, borrowed like data
   * (NULL and 0 for a version 1 HELLO). The session does not judge it: the
   * server verifies it before the id counts (vigil/server.h). */
  const uint8_t *credential;
  size_t credential_len;
} vigil_event;

/* Read-only snapshot of a session's agreed values and measurements. */
typedef struct vigil_session_info {
  vigil_role role;
  vigil_session_state state;
  uint32_t interval_ms, timeout_ms, min_ping_ms, max_frame, max_message;
  uint32_t message_timeout_ms; /* OPEN: the message deadline in force */
  uint64_t last_recv_ns;       /* time of the last valid frame */
  uint64_t srtt_ns, rttvar_ns; /* 0 until the first pong */
  unsigned ping_outstanding;
  unsigned strikes;
} vigil_session_info;

/* The session itself. Allocated by the caller (embed it in your connection
 * struct); the fields are private. sizeof(vigil_session) is part of the
 * performance budget: at most 128 bytes (checked in src/session.c). */
typedef struct vigil_session {
  uint64_t last_recv_ns;      /* last complete valid frame; handshake: start */
  uint64_t ping_sent_ns;      /* when the outstanding ping was written */
  uint64_t last_peer_ping_ns; /* for the minimum ping spacing; MAX = none */
  uint64_t srtt_ns, rttvar_ns;
  vigil_phi *phi;
  const char *close_reason; /* static or borrowed reason of a queued CLOSE */
  union {
    struct { /* server, HANDSHAKE: the clamping policy */
      uint32_t min_interval_ms, max_interval_ms, min_timeout_ms, max_timeout_ms;
      uint32_t message_ms; /* cfg.message_timeout_ms (0: derived at OPEN) */
    } policy;
    struct {               /* client, HANDSHAKE */
      const char *id;      /* borrowed until written */
      uint32_t message_ms; /* cfg.message_timeout_ms (0: derived at OPEN) */
      uint8_t cred_len;    /* 0: HELLO version 1 */
      const uint8_t *cred; /* borrowed until written */
    } hello;
    struct {                    /* OPEN: message state both ways */
      uint32_t rx_msg_bytes;    /* bytes of the message being received */
      uint32_t rx_frame_left;   /* payload bytes left in a DATA frame */
      uint32_t tx_msg_bytes;    /* bytes of the message being sent */
      uint32_t message_ms;      /* a message begun must end within this */
      uint64_t rx_msg_deadline; /* for the message being received; NO_DEADLINE: none */
    } xfer;
  } u;
  uint32_t interval_ms, timeout_ms, min_ping_ms, handshake_ms;
  uint32_t max_frame, max_message; /* agreed (before: what we accept) */
  uint32_t idle_ms;                /* jittered idle period before the next ping */
  uint32_t rng;
  uint32_t close_retry_ms;
  uint16_t close_code;
  uint8_t role, state, flags, strikes, rx_frame_type, id_len, reason_len;
  uint8_t pongs_owed;
  uint8_t schedule; /* cfg.ping_on_schedule */
} vigil_session;

/* Writes the defaults and cfg->size. A macro, so that the size is the one
 * the caller was compiled with; the library writes no byte past it. */
VIGIL_EXTERN void vigil_session_config_init_sized(vigil_session_config *cfg, size_t size);
#define vigil_session_config_init(cfg) vigil_session_config_init_sized((cfg), sizeof *(cfg))

/* Checks cfg for `role` against the rules vigil_session_init (and the
 * server's and client's _new) enforce, defaults applied: a client id of 1 to
 * 255 bytes of UTF-8; a client timeout, when set, at least 2 x interval (a
 * server raises anything shorter); max_frame 0 or 64..16384; a server's
 * policy minimums not above their maximums, and its longest timeout at
 * least 2 x its shortest interval. Returns 0, or VIGIL_EINVAL with the
 * first broken rule as one line of text in why[0..n) (when why != NULL),
 * for example "timeout 1500ms must be at least 2 x interval 1000ms". */
VIGIL_EXTERN int vigil_session_config_check(const vigil_session_config *cfg, vigil_role role,
                                            char *why, size_t n);

/* Returns 0, VIGIL_ENOTSUP (cfg sets a field of a newer vigil.h that this
 * library lacks; docs/ABI.md), or VIGIL_EINVAL for a config that cannot
 * work (never _init'ed: no size; every rule of
 * vigil_session_config_check, which says which one). A client
 * queues its HELLO here. The server's policy fields are copied; `cfg` need
 * not outlive the call except for `id` (see above) and `phi`. In adaptive
 * mode the session re-seeds `phi` at OPEN with vigil_phi_init(phi,
 * phi->threshold, agreed interval, 0): set the threshold, the session sets
 * the expected interval. */
VIGIL_EXTERN int vigil_session_init(vigil_session *s, vigil_role role,
                                    const vigil_session_config *cfg, uint64_t now);

/* Client: the credential to send in HELLO (cred[0..len), 1..255 opaque
 * bytes, for example a token of vigil/token.h), which makes it a HELLO of
 * version 2 (PROTOCOL.md section 4.1); NULL and 0 go back to version 1.
 * Call it after vigil_session_init and before the first write(); cred is
 * borrowed until that write. Not a config field because vigil_session_config
 * is embedded in the server's and client's configs (docs/ABI.md); the
 * client's config carries it instead. Returns 0, or VIGIL_EINVAL (a server
 * session, a HELLO already written, len above 255, NULL cred with len > 0). */
VIGIL_EXTERN int vigil_session_set_credential(vigil_session *s, const void *cred, size_t len);

/* Feeds received bytes. Returns the number of bytes of buf consumed (maybe 0)
 * and fills *ev (type NONE if nothing to report). An incomplete control frame
 * is not consumed: keep the tail and present it again with what arrives next
 * (never more than VIGIL_SESSION_MAX_RETAIN bytes). DATA payload is consumed
 * and reported as it arrives. On a protocol or policy violation returns the
 * specific negative error (VIGIL_EBADTYPE, VIGIL_EBADVARINT,
 * VIGIL_EFRAMESIZE, VIGIL_EBADMAGIC, VIGIL_EVERSION, VIGIL_EBADID,
 * VIGIL_EBADFIELD, VIGIL_ETRAILING, VIGIL_EUNEXPECTED, VIGIL_EMSGTOOBIG,
 * VIGIL_EPOLICY) with *ev a DEAD event, and queues a CLOSE for write().
 * While CLOSING (after vigil_session_close) received bytes are consumed and
 * ignored; once that CLOSE has been written, recv() (like expire()) reports
 * the DEAD event of cause local, consuming nothing. VIGIL_ECLOSED once the
 * session is dead; VIGIL_EINVAL for NULL s or ev, or NULL buf with len > 0.
 * `now` is when the bytes arrived; it may be earlier than the time given to
 * an earlier call (the peer's last-heard time then stays where it was). */
VIGIL_EXTERN long vigil_session_recv(vigil_session *s, uint64_t now, const uint8_t *buf, size_t len,
                                     vigil_event *ev);

/* Handles deadlines reached by `now`: queues a ping, or gives the verdict
 * (a DEAD event in *ev), or reports the DEAD (cause local) of a session whose
 * CLOSE has been written. Returns 0, VIGIL_ECLOSED once the DEAD event has
 * been reported, or VIGIL_EINVAL for NULL arguments. Calling it early is
 * harmless. */
VIGIL_EXTERN int vigil_session_expire(vigil_session *s, uint64_t now, vigil_event *ev);

/* The next time expire() has work, or VIGIL_NO_DEADLINE (also while a local
 * CLOSE waits to be written: bound that flush yourself). 0 when a DEAD event
 * is ready to be reported. */
VIGIL_EXTERN uint64_t vigil_session_deadline(const vigil_session *s);

/* Non-zero when control frames are waiting to be written. */
VIGIL_EXTERN int vigil_session_want_write(const vigil_session *s);

/* Produces bytes to send into out[0..cap): pending control frames first, then
 * (if msg != NULL and the session is OPEN) one DATA chunk carrying the first
 * bytes of msg[0..msg_len), which must be the rest of the message being sent.
 * *msg_taken is set to the message bytes framed; the chunk ends the message
 * when *msg_taken == msg_len. A queued CLOSE goes out alone: nothing follows
 * it, and a HELLO or WELCOME not yet written is dropped in its favour.
 * Returns bytes written (0: nothing to send or cap too small for the next
 * frame; cap >= VIGIL_WIRE_MAX_CONTROL_FRAME always suffices for control
 * frames; a chunk is shortened to fit cap but not below 64 bytes unless it
 * ends the message). Errors: VIGIL_EMSGSIZE if the message (bytes already
 * sent + msg_len) exceeds the agreed max_message, checked before anything is
 * written; VIGIL_ECLOSED once dead with no CLOSE left to write; VIGIL_EINVAL
 * for NULL s or out, or a NULL msg_taken with a message (msg_taken may be
 * NULL when msg is NULL: only control frames are written then). */
VIGIL_EXTERN long vigil_session_write(vigil_session *s, uint64_t now, uint8_t *out, size_t cap,
                                      const uint8_t *msg, size_t msg_len, size_t *msg_taken);

/* Queues a CLOSE (code, reason: NUL-terminated UTF-8 <= 123 bytes or NULL,
 * borrowed until written, retry-after). Any state before DEAD; the session
 * becomes CLOSING and reports no more events except its own DEAD (cause
 * local, with this code) from the next expire() or recv() after write() has
 * emitted the CLOSE. Returns 0; VIGIL_EINVAL for a bad reason; VIGIL_EALREADY
 * if already CLOSING (the first CLOSE stands); VIGIL_ECLOSED once dead. */
VIGIL_EXTERN int vigil_session_close(vigil_session *s, uint16_t code, const char *reason,
                                     uint32_t retry_after_ms);

/* Tells the engine that our own side stalled (loop gap, suspend) until
 * `now`: a pending verdict is withdrawn, a fresh ping is queued, and the peer
 * gets one interval from now to answer. Call it before expire(now). Precisely
 * (OPEN): last_recv = max(last_recv, now + interval - timeout) (adaptive
 * mode: now - interval, so its 2 x interval floor lands at now + interval),
 * the outstanding ping is forgotten (its late pong counts as unsolicited) and
 * a new one queued. During the handshake its deadline moves to at least
 * now + interval. No effect once CLOSING or DEAD. */
VIGIL_EXTERN void vigil_session_stalled(vigil_session *s, uint64_t now);

VIGIL_EXTERN void vigil_session_get_info(const vigil_session *s, vigil_session_info *info);

/* Single fields of vigil_session_get_info, for callers that ask on every
 * message (the runtime checks the state and max_message per send). The
 * max_message is the agreed one once OPEN, before that what we accept. */
VIGIL_EXTERN vigil_session_state vigil_session_get_state(const vigil_session *s);
VIGIL_EXTERN vigil_role vigil_session_get_role(const vigil_session *s);
VIGIL_EXTERN uint32_t vigil_session_get_max_message(const vigil_session *s);

#endif
