#ifndef VIGIL_UV_H
#define VIGIL_UV_H

/* vigil's heartbeat on a libuv TCP handle the application owns.
 *
 * A program already built on libuv keeps its loop, its listener and its
 * connect code; once it holds a connected uv_tcp_t (after uv_accept, or in
 * its uv_connect_cb) it attaches vigil to it. From then on the adapter runs
 * a vigil session on that stream, client or server role, exactly as
 * vigil's own server and client do: it reads the stream, answers and sends
 * pings, frames messages, sets kernel keepalive from the agreed heartbeat,
 * and when the peer is gone reports the death with the same causes (the
 * kernel's evidence refines the verdict: a peer whose kernel still ACKs is
 * peer_stalled, not heartbeat_timeout). The other end may be vigil's own
 * server or client, or another adapter.
 *
 * This is a separate library, libvigil-uv (pkg-config vigil-uv, CMake
 * component vigil::vigil_uv); libvigil itself never depends on libuv.
 *
 * Who owns what:
 *  - the application allocates the vigil_uv_conn (embed it, or malloc it),
 *    and owns the uv_loop_t and the uv_tcp_t; the adapter never closes or
 *    frees the tcp handle.
 *  - the adapter owns one uv_timer_t inside vigil_uv_conn, its read
 *    callback on the stream (uv_read_start) and its own write requests.
 *  - the end, always in this order: on_death (or on_reject), one on_unsent
 *    per unwritten message, then -- once a CLOSE frame it owed has been
 *    written and the peer has closed, or linger_ms passed -- on_detach.
 *    on_detach is the adapter's close callback: reading is stopped, its
 *    timer is closed, and it will never touch the tcp or the vigil_uv_conn
 *    again. Only then may the application uv_close() the tcp handle and
 *    free the vigil_uv_conn; write requests of the adapter still pending
 *    are cancelled by that uv_close and free themselves.
 *  - never uv_close() the tcp while attached: call vigil_uv_close() and
 *    close it in on_detach.
 *  - while attached the adapter borrows tcp->data (libuv gives a read
 *    callback nothing else to find its connection by); keep your pointer in
 *    c->data. The app's tcp->data is put back before on_detach.
 *
 * Threading: everything runs on the loop's thread, like libuv itself.
 * Callbacks may call vigil_uv_send and vigil_uv_close, on this connection
 * or another; sends are written on the next loop iteration.
 *
 * Reading: the adapter calls uv_read_start on the stream; every byte on it
 * belongs to the vigil protocol (application messages travel as vigil
 * messages: vigil_uv_send / on_message). Reads land in one 64 KiB buffer
 * per thread (thread-local), so an idle connection holds no read buffer.
 *
 * Time: session time is uv_hrtime(); the timer is armed at most once per
 * deadline and may fire early, never late by more than libuv's timer
 * granularity (1 ms) plus the loop's own delays. When the timer comes back
 * more than stall_threshold_ms late, the loop stalled (a callback that
 * blocked, a suspended VM) and the peer's answers may sit unread: the
 * session re-probes (vigil_session_stalled) instead of convicting, as on
 * vigil's own loop.
 *
 * Errors are VIGIL_E* codes (negative; vigil_strerror). */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "conn.h"
#include "session.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libvigil-uv's own export marker: on Windows a DLL exports its own
 * symbols and imports libvigil's, so the two cannot share VIGIL_EXTERN. */
#if defined(_WIN32)
#if defined(VIGIL_UV_BUILDING_SHARED)
#define VIGIL_UV_EXTERN __declspec(dllexport)
#elif defined(VIGIL_UV_SHARED)
#define VIGIL_UV_EXTERN __declspec(dllimport)
#else
#define VIGIL_UV_EXTERN
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define VIGIL_UV_EXTERN __attribute__((visibility("default")))
#else
#define VIGIL_UV_EXTERN
#endif

typedef struct vigil_uv_conn vigil_uv_conn;

/* Every callback is optional (NULL). The order for one connection is that
 * of vigil_conn_callbacks (vigil/conn.h): on_open, any on_message and
 * on_rtt, exactly one on_death -- or on_reject when the connection ends
 * before the handshake completes -- then on_unsent per message, then
 * on_detach. */
typedef struct vigil_uv_callbacks {
  void (*on_open)(vigil_uv_conn *c, const vigil_open_info *info);
  /* A whole message (at most the agreed max_message), borrowed for the call. */
  void (*on_message)(vigil_uv_conn *c, const uint8_t *msg, size_t len);
  /* A pong answered our ping. */
  void (*on_rtt)(vigil_uv_conn *c, uint64_t rtt_ns);
  void (*on_death)(vigil_uv_conn *c, const vigil_death *d);
  void (*on_reject)(vigil_uv_conn *c, const vigil_death *d);
  /* A message given to vigil_uv_send that was not completely written:
   * written is how many of its bytes were; resend it whole elsewhere. */
  void (*on_unsent)(vigil_uv_conn *c, const uint8_t *msg, size_t len, size_t written);
  /* The adapter let go of the stream (see "Who owns what" above). */
  void (*on_detach)(vigil_uv_conn *c);
} vigil_uv_callbacks;

/* An option struct that can grow: initialise with vigil_uv_config_init. */
typedef struct vigil_uv_config {
  size_t size;     /* set by vigil_uv_config_init: the struct's size as compiled (docs/ABI.md) */
  vigil_role role; /* client: sends HELLO; server: answers it */
  /* Heartbeat settings (client: its proposal and id; server: its policy).
   * Copied at attach, the id included. */
  vigil_session_config session;
  vigil_uv_callbacks cb;
  vigil_keepalive_mode keepalive_mode; /* as vigil's server (default AUTO) */
  vigil_keepalive keepalive;           /* EXPLICIT mode */
  size_t max_queue_bytes;              /* outbound messages not yet written (default 1 MiB) */
  uint32_t drain_ms; /* vigil_uv_close: time to write what is queued (default 1000) */
  /* A timer that comes back this much later than armed means the loop
   * stalled (a blocking callback, a suspended VM): the session re-probes
   * instead of convicting peers whose answers sat unread (default 500, as
   * vigil's loop). */
  uint32_t stall_threshold_ms;
  uint32_t linger_ms; /* after death: wait this long at most for our CLOSE to
                         be written and the peer to close (default 1000) */
  /* Client: a credential for its HELLO (1..255 bytes, copied; NULL: none),
   * as vigil_client_config's (vigil/client.h): a token for a vigil server
   * with an auth secret. A refusal is on_reject with close code 13
   * (AUTH_FAILED). */
  const void *credential;
  size_t credential_len;
  /* Server: ids bound to credentials, as vigil_server_config's (vigil/
   * server.h, docs/SECURITY.md). With verify or auth_secret set, the HELLO's
   * id counts (on_open) only if it carries a credential that passes; else
   * the connection is refused with CLOSE AUTH_FAILED (13), retry-after
   * auth_retry_after_ms, reason "credential required", "authentication
   * failed" or "credential expired" (never the credential), and reported
   * through on_reject (cause policy, that reason as detail). Without either,
   * any id is taken on its word.
   *
   * verify: the program's check (c->data is the application's): 0 admits,
   * VIGIL_EEXPIRED for a genuine but expired credential, anything else
   * refuses. It runs inside the read callback: keep it quick.
   * auth_secret: the built-in check, tokens of vigil/token.h minted under
   * this secret (auth_secret_len >= VIGIL_TOKEN_SECRET_MIN), against the
   * wall clock. Borrowed, not copied: it must stay valid while any
   * connection attached with it is. vigil_uv_attach returns VIGIL_EINVAL for
   * both set, a short secret, or either on a client; VIGIL_ENOTSUP for a
   * secret where libvigil has no OpenSSL (vigil_token_available() is 0). */
  int (*verify)(vigil_uv_conn *c, const char *id, size_t id_len, const uint8_t *cred,
                size_t cred_len);
  const void *auth_secret;
  size_t auth_secret_len;
  uint32_t auth_retry_after_ms; /* with AUTH_FAILED (default 10000) */
} vigil_uv_config;

/* Private state: allocated by the application, touched only through the
 * functions below (`data` excepted). Its size may change between
 * versions (recompile). */
struct vigil_uv_conn {
  void *data; /* the application's: the adapter never touches it */
  /* ---- private ---- */
  vigil_session session;
  uv_timer_t timer;
  uv_tcp_t *tcp;
  void *tcp_data; /* the app's tcp->data, while we borrow it */
  uv_loop_t *loop;
  vigil_uv_callbacks cb;
  struct vigil_uv__msg *qhead, *qtail, *qframe; /* outbound queue */
  struct vigil_uv__wreq *wreqs;                 /* our uv_writes in flight */
  char *id;                                     /* ours (client) or the peer's (server) */
  int (*verify)(vigil_uv_conn *c, const char *id, size_t id_len, const uint8_t *cred,
                size_t cred_len); /* server: the credential's judge, or NULL */
  const void *auth_secret;        /* server: borrowed token secret, or NULL */
  size_t auth_secret_len;
  uint32_t auth_retry_ms;
  char *close_reason;       /* owned */
  const char *local_detail; /* static */
  uint8_t *rx;              /* reassembly of a split message */
  size_t qbytes, max_queue_bytes;
  uint64_t framed_pos, kernel_pos; /* stream positions */
  uint64_t timer_at_ns;            /* what the timer is armed for */
  uint64_t drain_at_ns;
  uint64_t last_rtt_ns;
  vigil_keepalive ka;
  vigil_keepalive_mode ka_mode;
  uint32_t rx_len, rx_cap;
  uint32_t drain_ms, linger_ms, stall_ms;
  uint16_t close_code;
  uint16_t retain_len;
  uint8_t phase, flags, id_len;
  uint8_t retain[VIGIL_SESSION_MAX_RETAIN]; /* incomplete control frame */
};

/* Defaults: client role, vigil_session_config_init's heartbeat, AUTO
 * keepalive, 1 MiB queue, 1 s drain and linger, 500 ms stall threshold. */
VIGIL_UV_EXTERN void vigil_uv_config_init_sized(vigil_uv_config *cfg, size_t size);
#define vigil_uv_config_init(cfg) vigil_uv_config_init_sized((cfg), sizeof *(cfg))

/* Attaches vigil to a connected tcp handle on loop: starts the session
 * (a client queues its HELLO), starts reading, arms the handshake deadline.
 * The tcp must be connected and not reading; it must stay open until
 * on_detach. On error nothing was started and no callback will run.
 * Returns 0 or VIGIL_EINVAL (NULL argument, a config the session refuses),
 * VIGIL_ENOMEM, or the error of uv_read_start / uv_timer_init (VIGIL_E*). */
VIGIL_UV_EXTERN int vigil_uv_attach(vigil_uv_conn *c, uv_loop_t *loop, uv_tcp_t *tcp,
                                    const vigil_uv_config *cfg);

/* Queues a message; the bytes are copied, written on the next loop
 * iteration in chunks of at most the agreed max_frame. Before the
 * handshake completes (client) it waits in the queue. Returns 0 or
 *   VIGIL_EQUEUEFULL  the queue would exceed max_queue_bytes (backpressure)
 *   VIGIL_EMSGSIZE    larger than the peer accepts (agreed max_message)
 *   VIGIL_ENOTCONN    server role, handshake not done
 *   VIGIL_ECLOSED     closing or dead
 *   VIGIL_EINVAL, VIGIL_ENOMEM */
VIGIL_UV_EXTERN int vigil_uv_send(vigil_uv_conn *c, const void *msg, size_t len);

/* Closes from our side: what is queued is written (within drain_ms), then a
 * CLOSE with code and reason (NULL: the code's text; copied), then on_death
 * with cause local, then on_detach once the peer has closed (or linger_ms).
 * Before the handshake completes the end is immediate and on_reject runs.
 * Returns 0, VIGIL_ECLOSED (already closing or dead), VIGIL_EINVAL (reason
 * over 123 bytes or not UTF-8), VIGIL_ENOMEM. */
VIGIL_UV_EXTERN int vigil_uv_close(vigil_uv_conn *c, uint16_t code, const char *reason);

/* The session's agreed values and measurements. */
VIGIL_UV_EXTERN void vigil_uv_get_info(const vigil_uv_conn *c, vigil_session_info *info);

#ifdef __cplusplus
}
#endif

#endif
