/* libvigil-uv: a vigil session driven by libuv on a stream the application
 * owns (include/vigil/uv.h says who owns what).
 *
 * This is the same job as src/conn.c does on vigil's own loop, written
 * against libvigil's public API only -- the session, keepalive and evidence
 * functions -- so it shows what any embedding has to do, and libvigil never
 * links libuv.
 *
 * Reading. uv_read_start with a thread-local 64 KiB buffer: libuv calls
 * alloc_cb and read_cb back to back for one stream, so one buffer per
 * thread serves every connection of that thread's loop. The session may
 * leave the tail of an incomplete control frame unconsumed (at most
 * VIGIL_SESSION_MAX_RETAIN bytes); it is kept in the connection and copied
 * in front of the next read. A message that arrives whole in one read is
 * delivered straight from the buffer; only one split across reads is
 * reassembled, in memory that lives while that message is in flight.
 *
 * Writing. vigil_uv_send copies into a queue and "kicks" the timer (armed
 * for 0 ms), so sends made in one loop iteration leave in one write and a
 * send made from inside a callback never re-enters the framing code. After
 * each read the pong it may owe is written at once. Frames are built in a
 * thread-local buffer and offered with uv_try_write; only what the kernel
 * does not take is copied into a uv_write request, so an idle connection's
 * heartbeat allocates nothing. While such a request is in flight nothing
 * more is framed, so a pong waits behind at most one buffer of data, not
 * behind the whole queue (control frames jump the queue at chunk
 * boundaries, as the session promises). Stream positions tell when a
 * message is wholly in the kernel; what is not at death goes back through
 * on_unsent.
 *
 * Time. The session runs on uv_hrtime(). One uv_timer_t carries, in turn:
 * the session's deadline (handshake, ping, verdict), the drain bound of a
 * graceful close, the kick, and after death the linger bound. It is
 * re-armed only when the deadline moves earlier; traffic moves it later,
 * so the timer may fire early, expire() then does nothing and it is armed
 * again. The verdict itself is never early: expire() compares against the
 * clock, not the timer. A timer that fires more than stall_threshold_ms
 * late tells that the loop itself stalled; libuv runs timers before it
 * polls, so the peer's answers are still unread and the session is told
 * (vigil_session_stalled: a fresh ping, one interval to answer) before
 * expire() could convict it.
 *
 * Endings. A connection dies once. The death record is built as vigil's
 * runtime builds it: the session's verdict or the socket's error, then
 * the kernel's evidence (vigil_evidence_read, TCP_INFO on Linux) refined
 * by vigil_evidence_classify -- the same rules, so the same causes. Then
 * on_death / on_reject, on_unsent, and the CLOSE the session may have
 * queued is written. The adapter lingers, reading and discarding, until
 * that CLOSE is written and the peer closed (closing with unread bytes
 * would send an RST that can overtake the CLOSE), bounded by linger_ms. A
 * peer whose CLOSE we received, or one convicted of silence, sends
 * nothing more, so there is no linger then: both ends of a CLOSE exchange
 * let go at once, the receiver first, the sender on its FIN.
 * Finally reading stops, the timer is closed, and its close callback calls
 * on_detach: from then on the application may close its tcp handle.
 * Write requests still pending at that point are disowned (their conn
 * pointer cleared) and free themselves when libuv completes or cancels
 * them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../abi.h" /* header-only: option structs that can grow */
#include "vigil.h"
#include "vigil/uv.h"

#define RBUF_SIZE 65536u
#define WBUF_SIZE                                                                                  \
  (4u * (VIGIL_WIRE_MAX_CHUNK + VIGIL_WIRE_MAX_HEADER) + 2u * VIGIL_WIRE_MAX_CONTROL_FRAME)
#define DEFAULT_QUEUE_BYTES ((size_t)1 << 20)
#define DEFAULT_DRAIN_MS 1000u
#define DEFAULT_LINGER_MS 1000u
#define DEFAULT_STALL_MS 500u        /* as vigil's loop */
#define DEFAULT_AUTH_RETRY_MS 10000u /* as vigil's server */

static _Thread_local uint8_t rbuf[VIGIL_SESSION_MAX_RETAIN + RBUF_SIZE];
static _Thread_local uint8_t wbuf[WBUF_SIZE];

enum phase {
  PHASE_NONE = 0,  /* not attached */
  PHASE_HANDSHAKE, /* session in HANDSHAKE */
  PHASE_OPEN,      /* on_open was called */
  PHASE_DEAD,      /* death reported; lingering */
  PHASE_DETACHING, /* timer closing; on_detach next */
  PHASE_DETACHED
};

/* c->flags */
#define F_PEER_GONE 0x01u   /* EOF or socket error: nothing more to read */
#define F_CLOSE_REQ 0x02u   /* graceful local close pending */
#define F_READING 0x04u     /* uv_read_start is in force */
#define F_LINGER 0x08u      /* dead: wait for the peer's FIN */
#define F_LINGER_OVER 0x10u /* dead: the linger bound passed */

struct vigil_uv__msg {
  struct vigil_uv__msg *next;
  size_t len;
  size_t framed;    /* bytes already framed into the stream */
  uint64_t end_pos; /* stream position just after its last chunk; 0 until framed */
  uint8_t data[];
};

struct vigil_uv__wreq {
  uv_write_t req;
  struct vigil_uv__wreq *next;
  vigil_uv_conn *conn; /* NULL once the connection detached */
  size_t len;
  uint8_t data[];
};

static void flush(vigil_uv_conn *c);
static void schedule(vigil_uv_conn *c);
static void conn_fail(vigil_uv_conn *c, int err);
static void conn_kill(vigil_uv_conn *c, vigil_cause cause, uint16_t code, const char *reason,
                      uint32_t retry_after_ms, const char *detail);

static uint64_t now_ns(void) {
  return uv_hrtime();
}

static int live(const vigil_uv_conn *c) {
  return c->phase == PHASE_HANDSHAKE || c->phase == PHASE_OPEN;
}

static uv_stream_t *stream(const vigil_uv_conn *c) {
  return (uv_stream_t *)c->tcp;
}

/* libuv's error codes equal -errno on POSIX, as vigil's do; naming the ones
 * the cause rules look at keeps that an explicit choice, not a coincidence. */
static int from_uv(long e) {
  switch (e) {
  case UV_EOF:
    return VIGIL_EOF;
  case UV_ECONNRESET:
    return VIGIL_ECONNRESET;
  case UV_EPIPE:
    return VIGIL_EPIPE;
  case UV_ECONNABORTED:
    return VIGIL_ECONNABORTED;
  case UV_ECONNREFUSED:
    return VIGIL_ECONNREFUSED;
  case UV_ETIMEDOUT:
    return VIGIL_ETIMEDOUT;
  case UV_EHOSTUNREACH:
    return VIGIL_EHOSTUNREACH;
  case UV_ENETUNREACH:
    return VIGIL_ENETUNREACH;
  case UV_ENETDOWN:
    return VIGIL_ENETDOWN;
  case UV_ENOMEM:
    return VIGIL_ENOMEM;
  case UV_ENOBUFS:
    return VIGIL_ENOBUFS;
  case UV_ECANCELED:
    return VIGIL_ECANCELED;
  case UV_EINVAL:
    return VIGIL_EINVAL;
  case UV_EBADF:
    return VIGIL_EBADF;
  case UV_ENOTCONN:
    return VIGIL_ENOTCONN;
  default:
    return (int)e;
  }
}

/* ---- the timer ---------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(vigil_uv_conn *c, uint64_t at_ns) {
  uint64_t now = now_ns(), delay_ms = 0;
  if (at_ns > now)
    delay_ms = (at_ns - now + VIGIL_MS - 1) / VIGIL_MS;
  c->timer_at_ns = at_ns;
  (void)uv_timer_start(&c->timer, on_timer, delay_ms, 0);
}

/* Run on_timer on the next loop iteration: writes what was queued since. */
static void kick(vigil_uv_conn *c) {
  if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_at_ns > 0)
    arm(c, 0);
}

/* Arms the timer for the session's deadline (or the drain bound) if that is
 * earlier than what it is armed for. */
static void schedule(vigil_uv_conn *c) {
  uint64_t at;
  if (!live(c))
    return;
  at = vigil_session_deadline(&c->session);
  if ((c->flags & F_CLOSE_REQ) && c->drain_at_ns < at)
    at = c->drain_at_ns;
  if (at == VIGIL_NO_DEADLINE)
    return;
  if (!uv_is_active((uv_handle_t *)&c->timer) || at < c->timer_at_ns)
    arm(c, at);
}

/* ---- detaching ---------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  vigil_uv_conn *c = h->data;
  c->phase = PHASE_DETACHED;
  if (c->cb.on_detach != NULL)
    c->cb.on_detach(c);
}

static void detach(vigil_uv_conn *c) {
  struct vigil_uv__wreq *w;
  c->phase = PHASE_DETACHING;
  if (c->flags & F_READING)
    (void)uv_read_stop(stream(c));
  c->flags &= (uint8_t)~F_READING;
  c->tcp->data = c->tcp_data;
  for (w = c->wreqs; w != NULL; w = w->next)
    w->conn = NULL; /* completed or cancelled later by libuv: frees itself */
  c->wreqs = NULL;
  free(c->id);
  free(c->close_reason);
  free(c->rx);
  c->id = c->close_reason = NULL;
  c->rx = NULL;
  (void)uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* After death: let go once our CLOSE is out and the peer closed, or when
 * the linger bound passed. */
static void maybe_detach(vigil_uv_conn *c) {
  if (c->phase != PHASE_DEAD)
    return;
  if (!(c->flags & F_LINGER_OVER)) {
    if (c->wreqs != NULL && !(c->flags & F_PEER_GONE))
      return;
    if ((c->flags & F_LINGER) && !(c->flags & F_PEER_GONE))
      return;
  }
  detach(c);
}

/* ---- writing ------------------------------------------------------------ */

static void on_write_done(uv_write_t *req, int status) {
  struct vigil_uv__wreq *w = req->data, **pp;
  vigil_uv_conn *c = w->conn;
  if (c == NULL) {
    free(w);
    return;
  }
  for (pp = &c->wreqs; *pp != NULL && *pp != w; pp = &(*pp)->next)
    ;
  if (*pp == w)
    *pp = w->next;
  if (status == 0)
    c->kernel_pos += w->len;
  free(w);
  if (c->phase == PHASE_DEAD) {
    if (status < 0)
      c->flags |= F_PEER_GONE;
    maybe_detach(c);
    return;
  }
  if (!live(c))
    return;
  if (status < 0) {
    conn_fail(c, from_uv(status));
    return;
  }
  flush(c);
}

/* Hands p[0..n) to libuv in a request of our own (copied). */
static int write_copy(vigil_uv_conn *c, const uint8_t *p, size_t n) {
  struct vigil_uv__wreq *w = malloc(sizeof *w + n), **pp;
  uv_buf_t b;
  int rc;
  if (w == NULL)
    return VIGIL_ENOMEM;
  memcpy(w->data, p, n);
  w->len = n;
  w->conn = c;
  w->next = NULL;
  w->req.data = w;
  b = uv_buf_init((char *)w->data, (unsigned)n);
  rc = uv_write(&w->req, stream(c), &b, 1, on_write_done);
  if (rc != 0) {
    free(w);
    return from_uv(rc);
  }
  for (pp = &c->wreqs; *pp != NULL; pp = &(*pp)->next)
    ;
  *pp = w;
  return 0;
}

/* Offers p[0..n) to the kernel now, the rest through a write request.
 * Returns 0 or the socket's error. */
static int write_bytes(vigil_uv_conn *c, const uint8_t *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int w = c->wreqs == NULL ? uv_try_write(stream(c), &b, 1) : UV_EAGAIN;
  if (w == UV_EAGAIN || w == UV_ENOSYS)
    w = 0;
  if (w < 0)
    return from_uv(w);
  c->kernel_pos += (uint64_t)w;
  return (size_t)w < n ? write_copy(c, p + w, n - (size_t)w) : 0;
}

static void release_written(vigil_uv_conn *c) {
  while (c->qhead != NULL && c->qhead->end_pos != 0 && c->qhead->end_pos <= c->kernel_pos) {
    struct vigil_uv__msg *m = c->qhead;
    c->qhead = m->next;
    if (c->qhead == NULL)
      c->qtail = NULL;
    c->qbytes -= m->len;
    free(m);
  }
}

/* A message the session refuses (over the agreed max_message) goes back to
 * the application instead of blocking the queue. */
static void refuse(vigil_uv_conn *c, struct vigil_uv__msg *m) {
  struct vigil_uv__msg **pp = &c->qhead, *prev = NULL;
  while (*pp != m) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  *pp = m->next;
  if (c->qtail == m)
    c->qtail = prev;
  c->qframe = m->next;
  c->qbytes -= m->len;
  if (c->cb.on_unsent != NULL)
    c->cb.on_unsent(c, m->data, m->len, 0);
  free(m);
}

/* Frames control frames and queued messages into out. Returns the bytes
 * produced, or a negative error other than EMSGSIZE. */
static long fill(vigil_uv_conn *c, uint8_t *out, size_t cap) {
  uint64_t now = now_ns();
  size_t pos = 0, taken;
  long r;
  while (cap - pos >= (size_t)2 * VIGIL_WIRE_MAX_CONTROL_FRAME) {
    struct vigil_uv__msg *m = c->qframe;
    r = vigil_session_write(&c->session, now, out + pos, cap - pos, NULL, 0, &taken);
    if (r < 0)
      return r == VIGIL_ECLOSED && pos > 0 ? (long)pos : r;
    pos += (size_t)r;
    if (m == NULL || vigil_session_get_state(&c->session) != VIGIL_SESSION_OPEN) {
      if (r == 0)
        break;
      continue;
    }
    r = vigil_session_write(&c->session, now, out + pos, cap - pos, m->data + m->framed,
                            m->len - m->framed, &taken);
    if (r == VIGIL_EMSGSIZE) {
      refuse(c, m);
      continue;
    }
    if (r < 0)
      return r;
    if (r == 0)
      break;
    pos += (size_t)r;
    m->framed += taken;
    if (m->framed == m->len) {
      m->end_pos = c->framed_pos + pos;
      c->qframe = m->next;
    }
  }
  c->framed_pos += pos;
  return (long)pos;
}

/* A graceful close proceeds once everything queued is in the kernel. */
static void maybe_finish_drain(vigil_uv_conn *c) {
  if (!(c->flags & F_CLOSE_REQ) || c->qhead != NULL || c->wreqs != NULL)
    return;
  if (vigil_session_get_state(&c->session) != VIGIL_SESSION_CLOSING)
    (void)vigil_session_close(&c->session, c->close_code, c->close_reason, 0);
}

static void flush(vigil_uv_conn *c) {
  while (live(c) && c->wreqs == NULL) {
    long n;
    int rc;
    maybe_finish_drain(c);
    n = fill(c, wbuf, sizeof wbuf);
    if (n < 0 && n != VIGIL_ECLOSED) {
      conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, NULL, 0, "cannot frame output");
      return;
    }
    if (n <= 0)
      break;
    rc = write_bytes(c, wbuf, (size_t)n);
    if (rc != 0) {
      conn_fail(c, rc);
      return;
    }
    release_written(c);
  }
  schedule(c);
}

/* Writes a CLOSE still queued in the session (our verdict, a limit). */
static void write_final_close(vigil_uv_conn *c) {
  uint8_t buf[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CLOSE];
  long n;
  if (c->flags & F_PEER_GONE)
    return;
  n = vigil_session_write(&c->session, now_ns(), buf, sizeof buf, NULL, 0, NULL);
  if (n > 0 && write_bytes(c, buf, (size_t)n) != 0)
    c->flags |= F_PEER_GONE;
}

/* ---- deaths ------------------------------------------------------------- */

static void death_init(vigil_uv_conn *c, vigil_death *d) {
  vigil_session_info si;
  uv_os_fd_t fd;
  uint64_t now = now_ns();
  memset(d, 0, sizeof *d);
  vigil_session_get_info(&c->session, &si);
  d->srtt_ns = si.srtt_ns;
  d->last_rtt_ns = c->last_rtt_ns;
  d->timeout_ms = si.timeout_ms;
  d->silent_ns = now > si.last_recv_ns ? now - si.last_recv_ns : 0;
  if (uv_fileno((const uv_handle_t *)c->tcp, &fd) != 0 ||
      vigil_evidence_read((vigil_os_socket)fd, &d->tcp) != 0)
    d->tcp.available = 0;
}

static void hand_back_queue(vigil_uv_conn *c) {
  struct vigil_uv__msg *m = c->qhead, *next;
  c->qhead = c->qtail = c->qframe = NULL;
  c->qbytes = 0;
  for (; m != NULL; m = next) {
    next = m->next;
    if (c->cb.on_unsent != NULL)
      c->cb.on_unsent(c, m->data, m->len, m->framed);
    free(m);
  }
}

static void conn_die(vigil_uv_conn *c, const vigil_death *d) {
  int was_open = c->phase == PHASE_OPEN;
  if (!live(c))
    return;
  c->phase = PHASE_DEAD;
  c->flags &= (uint8_t)~F_CLOSE_REQ;
  if (was_open ? c->cb.on_death != NULL : c->cb.on_reject != NULL)
    (was_open ? c->cb.on_death : c->cb.on_reject)(c, d);
  hand_back_queue(c);
  free(c->rx);
  c->rx = NULL;
  c->rx_len = c->rx_cap = 0;
  c->retain_len = 0;
  write_final_close(c);
  /* Wait for the peer's FIN, so that closing sends FIN, not an RST that
   * could overtake our CLOSE -- unless the peer has nothing more to send:
   * it sent its CLOSE (the exchange is over), or it was convicted of
   * silence. */
  if (!d->close_received && d->cause != VIGIL_CAUSE_HEARTBEAT_TIMEOUT &&
      d->cause != VIGIL_CAUSE_PEER_STALLED)
    c->flags |= F_LINGER;
  arm(c, now_ns() + (uint64_t)c->linger_ms * VIGIL_MS);
  maybe_detach(c);
}

static void conn_die_event(vigil_uv_conn *c, const vigil_event *ev) {
  vigil_death d;
  vigil_verdict v;
  const char *detail = ev->detail;
  death_init(c, &d);
  d.silent_ns = ev->silent_ns;
  d.close_code = ev->close_code;
  d.retry_after_ms = ev->retry_after_ms;
  if (ev->cause == VIGIL_CAUSE_LOCAL) {
    d.close_sent = 1;
    detail = c->local_detail != NULL ? c->local_detail : ev->detail;
    d.reason = c->close_reason;
  } else if (vigil_session_want_write(&c->session)) {
    d.close_sent = 1; /* our verdict; the session queued a CLOSE saying why */
    d.reason = ev->detail;
  } else {
    d.close_received = 1;
    d.reason = ev->reason;
    d.reason_len = ev->reason_len;
  }
  if (!d.close_received && d.reason != NULL)
    d.reason_len = strlen(d.reason);
  memset(&v, 0, sizeof v);
  v.cause = ev->cause;
  v.silent_ns = ev->silent_ns;
  v.handshake = c->phase == PHASE_HANDSHAKE;
  d.cause = vigil_evidence_classify(&v, &d.tcp, &detail);
  d.detail = detail;
  conn_die(c, &d);
}

/* A socket-level failure (read, write): evidence, cause, death. */
static void conn_fail(vigil_uv_conn *c, int err) {
  vigil_death d;
  vigil_verdict v;
  const char *detail = NULL;
  if (!live(c))
    return;
  c->flags |= F_PEER_GONE;
  death_init(c, &d);
  memset(&v, 0, sizeof v);
  v.error = err;
  v.silent_ns = d.silent_ns;
  d.error = err;
  d.cause = vigil_evidence_classify(&v, &d.tcp, &detail);
  d.detail = detail;
  conn_die(c, &d);
}

/* Kills c at once from our side: a CLOSE with code is written if the
 * socket takes it; the death has the given cause and detail. */
static void conn_kill(vigil_uv_conn *c, vigil_cause cause, uint16_t code, const char *reason,
                      uint32_t retry_after_ms, const char *detail) {
  vigil_death d;
  if (!live(c))
    return;
  if (reason != c->close_reason) {
    free(c->close_reason);
    c->close_reason = NULL;
    if (reason != NULL && (c->close_reason = malloc(strlen(reason) + 1)) != NULL)
      memcpy(c->close_reason, reason, strlen(reason) + 1);
  }
  if (vigil_session_close(&c->session, code, c->close_reason, retry_after_ms) == 0)
    c->close_code = code;
  death_init(c, &d);
  d.cause = cause;
  d.detail = detail;
  d.close_sent = 1;
  d.close_code = code;
  d.retry_after_ms = retry_after_ms;
  if (c->close_reason != NULL) {
    d.reason = c->close_reason;
    d.reason_len = strlen(c->close_reason);
  }
  conn_die(c, &d);
}

/* ---- opening ------------------------------------------------------------ */

static int apply_keepalive(vigil_uv_conn *c, uint32_t timeout_ms, vigil_keepalive *ka,
                           vigil_keepalive_report *report) {
  uv_os_fd_t fd;
  vigil_keepalive_init(ka);
  memset(report, 0, sizeof *report);
  switch (c->ka_mode) {
  case VIGIL_KEEPALIVE_OFF:
    return 0;
  case VIGIL_KEEPALIVE_EXPLICIT:
    *ka = c->ka;
    break;
  default:
    /* As vigil's runtime (docs/RUNTIME.md): budget = the agreed timeout,
     * at least the 3 s one lost probe needs at 1 s granularity. */
    if (vigil_keepalive_from_budget(ka, timeout_ms > 3000 ? timeout_ms : 3000, 1) != 0)
      return VIGIL_EINVAL;
    break;
  }
  if (uv_fileno((const uv_handle_t *)c->tcp, &fd) != 0)
    return VIGIL_EBADF;
  return vigil_keepalive_apply((vigil_os_socket)fd, ka, report);
}

static void peer_text(const vigil_uv_conn *c, char *buf, size_t size) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (uv_tcp_getpeername(c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
      vigil_ip_format((const struct sockaddr *)&ss, buf, size) < 0) {
    buf[0] = '?';
    buf[1] = '\0';
  }
}

/* With auth configured, the HELLO's credential must pass before its id
 * counts: 1, or 0 after refusing the connection (CLOSE AUTH_FAILED with a
 * fixed reason, never the credential; on_reject). As vigil's own server. */
static int admitted(vigil_uv_conn *c, const vigil_event *ev) {
  const char *why = "credential required";
  int rc = VIGIL_EAUTH;
  if (c->verify == NULL && c->auth_secret == NULL)
    return 1;
  if (ev->credential_len != 0 && c->verify != NULL)
    rc = c->verify(c, (const char *)ev->data, ev->len, ev->credential, ev->credential_len);
  else if (ev->credential_len != 0)
    rc = vigil_token_verify(c->auth_secret, c->auth_secret_len, (const char *)ev->data, ev->len,
                            (const char *)ev->credential, ev->credential_len, (uint64_t)time(NULL));
  if (rc == 0)
    return 1;
  if (ev->credential_len != 0)
    why = rc == VIGIL_EEXPIRED ? "credential expired" : "authentication failed";
  conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_AUTH_FAILED, why, c->auth_retry_ms, why);
  return 0;
}

static void conn_opened(vigil_uv_conn *c, const vigil_event *ev) {
  vigil_open_info info;
  vigil_session_info si;
  char peer[VIGIL_ADDRSTRLEN];
  memset(&info, 0, sizeof info);
  if (vigil_session_get_role(&c->session) == VIGIL_ROLE_SERVER) {
    /* Judged before the id is stored or reported anywhere. */
    if (!admitted(c, ev))
      return;
    if ((c->id = malloc(ev->len + 1)) == NULL) {
      conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                "out of memory storing the peer id");
      return;
    }
    memcpy(c->id, ev->data, ev->len);
    c->id[ev->len] = '\0';
    c->id_len = (uint8_t)ev->len;
  } else {
    info.attempt = 1;
  }
  c->phase = PHASE_OPEN;
  vigil_session_get_info(&c->session, &si);
  peer_text(c, peer, sizeof peer);
  info.id = c->id;
  info.id_len = c->id_len;
  info.peer = peer;
  info.interval_ms = si.interval_ms;
  info.timeout_ms = si.timeout_ms;
  info.min_ping_ms = si.min_ping_ms;
  info.max_frame = si.max_frame;
  info.max_message = si.max_message;
  info.keepalive_error = apply_keepalive(c, si.timeout_ms, &info.keepalive, &info.keepalive_report);
  if (c->cb.on_open != NULL)
    c->cb.on_open(c, &info);
  if (c->phase == PHASE_OPEN && c->qframe != NULL)
    kick(c);
}

/* ---- reading ------------------------------------------------------------ */

static int deliver_data(vigil_uv_conn *c, const vigil_event *ev) {
  size_t need;
  if (c->rx_len == 0 && ev->end_of_message) {
    if (c->cb.on_message != NULL)
      c->cb.on_message(c, ev->data, ev->len);
    return 0;
  }
  need = (size_t)c->rx_len + ev->len;
  if (need > c->rx_cap) {
    /* The session bounds a message by the agreed max_message. */
    size_t cap = c->rx_cap ? (size_t)c->rx_cap * 2 : 4096;
    uint8_t *p;
    if (cap < need)
      cap = need;
    if ((p = realloc(c->rx, cap)) == NULL)
      return VIGIL_ENOMEM;
    c->rx = p;
    c->rx_cap = (uint32_t)cap;
  }
  if (ev->len > 0)
    memcpy(c->rx + c->rx_len, ev->data, ev->len);
  c->rx_len = (uint32_t)need;
  if (ev->end_of_message) {
    uint8_t *msg = c->rx;
    c->rx = NULL; /* the buffer lives only while a message is in flight */
    c->rx_len = c->rx_cap = 0;
    if (c->cb.on_message != NULL)
      c->cb.on_message(c, msg, need);
    free(msg);
  }
  return 0;
}

static void handle_event(vigil_uv_conn *c, const vigil_event *ev) {
  switch (ev->type) {
  case VIGIL_EVENT_OPEN:
    conn_opened(c, ev);
    break;
  case VIGIL_EVENT_DATA:
    if (deliver_data(c, ev) != 0)
      conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                "out of memory reassembling a message");
    break;
  case VIGIL_EVENT_PONG:
    c->last_rtt_ns = ev->rtt_ns;
    if (c->cb.on_rtt != NULL)
      c->cb.on_rtt(c, ev->rtt_ns);
    break;
  case VIGIL_EVENT_DEAD:
    conn_die_event(c, ev);
    break;
  default:
    break;
  }
}

static void process(vigil_uv_conn *c, const uint8_t *p, size_t n) {
  uint64_t now = now_ns();
  vigil_event ev;
  while (live(c)) {
    long r = vigil_session_recv(&c->session, now, p, n, &ev);
    if (r < 0) {
      if (ev.type == VIGIL_EVENT_DEAD)
        handle_event(c, &ev);
      else
        conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_PROTOCOL_ERROR, NULL, 0,
                  "session refused the bytes");
      return;
    }
    p += r;
    n -= (size_t)r;
    if (ev.type != VIGIL_EVENT_NONE)
      handle_event(c, &ev);
    else if (r == 0)
      break;
  }
  if (!live(c))
    return;
  if (n > sizeof c->retain) {
    /* The session promised never to leave this much. */
    conn_kill(c, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_PROTOCOL_ERROR, NULL, 0,
              "incomplete frame larger than any control frame");
    return;
  }
  memmove(c->retain, p, n);
  c->retain_len = (uint16_t)n;
  flush(c); /* the pong we may owe leaves now, not next iteration */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  vigil_uv_conn *c = h->data;
  (void)suggested;
  if (c->retain_len > 0)
    memcpy(rbuf, c->retain, c->retain_len);
  *buf = uv_buf_init((char *)rbuf + c->retain_len, RBUF_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  vigil_uv_conn *c = s->data;
  (void)buf;
  if (nread == 0)
    return;
  if (c->phase == PHASE_DEAD) { /* lingering: discard until the peer closes */
    if (nread < 0) {
      c->flags |= F_PEER_GONE;
      maybe_detach(c);
    }
    return;
  }
  if (!live(c))
    return;
  if (nread < 0) {
    conn_fail(c, from_uv((long)nread));
    return;
  }
  process(c, rbuf, (size_t)c->retain_len + (size_t)nread);
}

static void on_timer(uv_timer_t *t) {
  vigil_uv_conn *c = t->data;
  uint64_t now = now_ns();
  vigil_event ev;
  uint64_t at = c->timer_at_ns;
  c->timer_at_ns = VIGIL_NO_DEADLINE;
  if (c->phase == PHASE_DEAD) {
    /* libuv counts from the loop's cached time, which lags the clock:
     * the timer can fire a little early. The linger is a bound we keep. */
    if (now < at) {
      arm(c, at);
      return;
    }
    c->flags |= F_LINGER_OVER;
    maybe_detach(c);
    return;
  }
  if (!live(c))
    return;
  /* Late by more than the threshold: the loop stalled, and what the peer
   * sent meanwhile is still unread (libuv runs timers before polling). */
  if (at != 0 && at != VIGIL_NO_DEADLINE && now > at + (uint64_t)c->stall_ms * VIGIL_MS)
    vigil_session_stalled(&c->session, now);
  if ((c->flags & F_CLOSE_REQ) && now >= c->drain_at_ns) {
    conn_kill(c, VIGIL_CAUSE_LOCAL, c->close_code, c->close_reason, 0, c->local_detail);
    return;
  }
  if (vigil_session_expire(&c->session, now, &ev) == 0 && ev.type != VIGIL_EVENT_NONE) {
    handle_event(c, &ev);
    if (!live(c))
      return;
  }
  flush(c);
}

/* ---- public API --------------------------------------------------------- */

static void config_defaults(vigil_uv_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
  cfg->role = VIGIL_ROLE_CLIENT;
  vigil_session_config_init(&cfg->session);
  vigil_keepalive_init(&cfg->keepalive);
  cfg->keepalive_mode = VIGIL_KEEPALIVE_AUTO;
  cfg->max_queue_bytes = DEFAULT_QUEUE_BYTES;
  cfg->drain_ms = DEFAULT_DRAIN_MS;
  cfg->linger_ms = DEFAULT_LINGER_MS;
  cfg->stall_threshold_ms = DEFAULT_STALL_MS;
}

void vigil_uv_config_init_sized(vigil_uv_config *cfg, size_t size) {
  vigil_uv_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

/* The auth settings: a server's, one judge, a secret tokens accept. */
static int auth_config(const vigil_uv_config *cfg) {
  if (cfg->auth_secret == NULL && cfg->verify == NULL)
    return cfg->auth_secret_len == 0 ? 0 : VIGIL_EINVAL;
  if (cfg->role != VIGIL_ROLE_SERVER || (cfg->auth_secret != NULL && cfg->verify != NULL))
    return VIGIL_EINVAL;
  if (cfg->auth_secret == NULL)
    return cfg->auth_secret_len == 0 ? 0 : VIGIL_EINVAL;
  if (cfg->auth_secret_len < VIGIL_TOKEN_SECRET_MIN)
    return VIGIL_EINVAL;
  return vigil_token_available() ? 0 : VIGIL_ENOTSUP;
}

int vigil_uv_attach(vigil_uv_conn *c, uv_loop_t *loop, uv_tcp_t *tcp,
                    const vigil_uv_config *cfg_in) {
  vigil_uv_config full;
  const vigil_uv_config *cfg = &full;
  vigil_session_config scfg;
  void *data;
  size_t cred_len;
  int rc;
  if (c == NULL || loop == NULL || tcp == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  config_defaults(&full); /* fields an older caller lacks keep their default */
  if ((rc = vigil__opts_read(&full, sizeof full, cfg_in)) != 0)
    return rc;
  if (cfg->role != VIGIL_ROLE_CLIENT && cfg->role != VIGIL_ROLE_SERVER)
    return VIGIL_EINVAL;
  data = c->data;
  memset(c, 0, sizeof *c);
  c->data = data;
  c->loop = loop;
  c->tcp = tcp;
  c->cb = cfg->cb;
  c->ka_mode = cfg->keepalive_mode;
  c->ka = cfg->keepalive;
  c->max_queue_bytes = cfg->max_queue_bytes ? cfg->max_queue_bytes : DEFAULT_QUEUE_BYTES;
  c->drain_ms = cfg->drain_ms ? cfg->drain_ms : DEFAULT_DRAIN_MS;
  c->linger_ms = cfg->linger_ms ? cfg->linger_ms : DEFAULT_LINGER_MS;
  c->stall_ms = cfg->stall_threshold_ms ? cfg->stall_threshold_ms : DEFAULT_STALL_MS;
  if ((rc = auth_config(cfg)) != 0)
    return rc;
  c->verify = cfg->verify;
  c->auth_secret = cfg->auth_secret;
  c->auth_secret_len = cfg->auth_secret_len;
  c->auth_retry_ms = cfg->auth_retry_after_ms ? cfg->auth_retry_after_ms : DEFAULT_AUTH_RETRY_MS;
  scfg = cfg->session;
  cred_len = cfg->role == VIGIL_ROLE_CLIENT ? cfg->credential_len : 0;
  if (cred_len > VIGIL_WIRE_MAX_CRED || (cred_len != 0 && cfg->credential == NULL))
    return VIGIL_EINVAL;
  if (cfg->role == VIGIL_ROLE_CLIENT && scfg.id != NULL && scfg.id_len <= 255) {
    /* The session borrows the id (and the credential) until its HELLO is
     * written: keep a copy, the credential right after the id's NUL. */
    if ((c->id = malloc(scfg.id_len + 1 + cred_len)) == NULL)
      return VIGIL_ENOMEM;
    memcpy(c->id, scfg.id, scfg.id_len);
    c->id[scfg.id_len] = '\0';
    if (cred_len != 0)
      memcpy(c->id + scfg.id_len + 1, cfg->credential, cred_len);
    c->id_len = (uint8_t)scfg.id_len;
    scfg.id = c->id;
  }
  /* Each connection its own ping jitter (0: drawn from the OS; a non-zero
   * seed is a test's, used as given), as vigil's own runtime does. */
  if (scfg.seed == 0 && vigil_random(&scfg.seed, sizeof scfg.seed) != 0)
    scfg.seed = (uint32_t)(uintptr_t)c ^ (uint32_t)now_ns();
  rc = vigil_session_init(&c->session, cfg->role, &scfg, now_ns());
  if (rc == 0 && cred_len != 0)
    rc = vigil_session_set_credential(&c->session, c->id + c->id_len + 1, cred_len);
  if (rc == 0) {
    c->tcp_data = tcp->data;
    tcp->data = c;
    rc = from_uv(uv_read_start((uv_stream_t *)tcp, on_alloc, on_read));
    if (rc != 0)
      tcp->data = c->tcp_data;
  }
  if (rc == 0 && (rc = from_uv(uv_timer_init(loop, &c->timer))) != 0) {
    (void)uv_read_stop((uv_stream_t *)tcp);
    tcp->data = c->tcp_data;
  }
  if (rc != 0) {
    free(c->id);
    c->id = NULL;
    return rc;
  }
  c->timer.data = c;
  c->timer_at_ns = VIGIL_NO_DEADLINE;
  c->flags = F_READING;
  c->phase = PHASE_HANDSHAKE;
  (void)uv_tcp_nodelay(tcp, 1);
  if (vigil_session_want_write(&c->session))
    kick(c);
  schedule(c);
  return 0;
}

int vigil_uv_send(vigil_uv_conn *c, const void *msg, size_t len) {
  struct vigil_uv__msg *m;
  if (c == NULL || (msg == NULL && len > 0))
    return VIGIL_EINVAL;
  if (!live(c) || (c->flags & F_CLOSE_REQ))
    return VIGIL_ECLOSED;
  if (vigil_session_get_role(&c->session) == VIGIL_ROLE_SERVER && c->phase != PHASE_OPEN)
    return VIGIL_ENOTCONN;
  if (len > vigil_session_get_max_message(&c->session))
    return VIGIL_EMSGSIZE; /* client before OPEN: what it accepts; checked again when framed */
  if (len > c->max_queue_bytes || c->qbytes + len > c->max_queue_bytes)
    return VIGIL_EQUEUEFULL;
  if ((m = malloc(sizeof *m + len)) == NULL)
    return VIGIL_ENOMEM;
  m->next = NULL;
  m->len = len;
  m->framed = 0;
  m->end_pos = 0;
  if (len > 0)
    memcpy(m->data, msg, len);
  if (c->qtail != NULL)
    c->qtail->next = m;
  else
    c->qhead = m;
  c->qtail = m;
  if (c->qframe == NULL)
    c->qframe = m;
  c->qbytes += len;
  if (c->phase == PHASE_OPEN)
    kick(c);
  return 0;
}

int vigil_uv_close(vigil_uv_conn *c, uint16_t code, const char *reason) {
  size_t n;
  if (c == NULL)
    return VIGIL_EINVAL;
  if (reason == NULL)
    reason = vigil_close_code_text(code);
  n = strlen(reason);
  if (!live(c) || (c->flags & F_CLOSE_REQ))
    return VIGIL_ECLOSED;
  if (n > VIGIL_WIRE_MAX_REASON || (n > 0 && !vigil_utf8_valid((const uint8_t *)reason, n)))
    return VIGIL_EINVAL;
  if (c->phase != PHASE_OPEN) {
    conn_kill(c, VIGIL_CAUSE_LOCAL, code, reason, 0, "closed by the application");
    return 0;
  }
  free(c->close_reason);
  if ((c->close_reason = malloc(n + 1)) == NULL)
    return VIGIL_ENOMEM;
  memcpy(c->close_reason, reason, n + 1);
  c->close_code = code;
  c->local_detail = "closed by the application";
  c->flags |= F_CLOSE_REQ;
  c->drain_at_ns = now_ns() + (uint64_t)c->drain_ms * VIGIL_MS;
  kick(c);
  return 0;
}

void vigil_uv_get_info(const vigil_uv_conn *c, vigil_session_info *info) {
  if (c == NULL || info == NULL)
    return;
  vigil_session_get_info(&c->session, info);
}
