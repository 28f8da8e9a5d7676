/* One vigil connection: a sans-I/O session driven over a loop TCP handle.
 *
 * Shared by the server and the client. What it does, in the order bytes
 * and time flow:
 *
 * Reading. The loop asks for a buffer (alloc_cb) and then reports the bytes
 * (read_cb). A connection owns no read buffer: every read lands in one
 * 64 KiB scratch buffer of its owner, which is free again when read_cb
 * returns. The session may leave the tail of an incomplete control frame
 * unconsumed (at most VIGIL_SESSION_MAX_RETAIN bytes); that tail alone is
 * kept, in a small allocation that exists only while a frame is pending,
 * and is copied in front of the next read. DATA payload is streamed by the
 * session; a message that arrives whole in one read is delivered straight
 * from the scratch buffer, and only a message split across reads or chunks
 * is reassembled into a buffer that lives while that message is in flight.
 *
 * Writing. vigil_conn_send copies the message into the outbound queue
 * (capped: VIGIL_EQUEUEFULL is the backpressure signal). Frames are produced
 * at the end of the loop iteration (a vigil_defer), so the pong owed for a
 * ping, a ping of our own and queued messages leave in one write. Frames are
 * built in the owner's scratch buffer and offered to the kernel with
 * try_write; only what the kernel does not take is copied into a pending
 * write request, so an idle connection's heartbeat never allocates. We
 * count stream positions: a message leaves the queue once every byte of its
 * last chunk is in the kernel. Whatever is still queued when the connection
 * dies goes back to the application through on_unsent, never silently.
 *
 * Time. One loop timer per connection, re-armed half-lazily: traffic only
 * moves the session's deadline later, so the timer may fire early, in which
 * case expire() does nothing and the timer is armed again for the real
 * deadline. A frame moves it later only when it would otherwise fire before
 * half the way to the new deadline (conn_schedule): once per heartbeat for
 * a heartbeating peer, whose timer then never fires, at most twice per
 * deadline's distance under faster traffic. It is moved earlier whenever
 * the deadline moved earlier (end of handshake, a CLOSE written). The same
 * timer bounds a TCP connect, a graceful close and the lingering close of a
 * dead connection.
 *
 * Endings. A connection dies once: the death record is built (engine
 * verdict or socket error, refined by the kernel's TCP_INFO through
 * vigil_evidence_classify), the owner's bookkeeping runs, then on_death
 * (or on_reject if the handshake never completed), then on_unsent for each
 * queued message. The struct is freed later, from the tcp close callback:
 * a callback may therefore safely act on the connection it is told about.
 * After death, a CLOSE the session queued (our verdict, a takeover, a
 * limit) is written if the kernel takes it at once, our direction ends
 * (FIN), and the socket lingers, reading and discarding, until the peer
 * closes or VIGIL__LINGER_MS pass: closing with unread bytes in the
 * receive queue would send an RST that can overtake our CLOSE. A peer
 * convicted of silence sends nothing, so that socket is closed at once. */
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "budget.h"
#include "conn.h"
#include "metrics-internal.h"
#include "queue.h"
#include "session-internal.h"

struct vigil__wpend {
  vigil_write_req req;
  vigil_conn *conn;
  size_t len;
  uint8_t data[];
};

static void conn_flush(vigil_conn *c);
static void conn_schedule(vigil_conn *c);
static void conn_die(vigil_conn *c, vigil_death *d);

static uint64_t ns_to_ms_ceil(uint64_t ns) {
  return ns == VIGIL_NO_DEADLINE ? UINT64_MAX : ns / VIGIL_MS + (ns % VIGIL_MS != 0);
}

uint64_t vigil__after_ms(const vigil_loop *loop, uint32_t ms) {
  return ns_to_ms_ceil(vigil_loop_now_ns(loop) + (uint64_t)ms * VIGIL_MS);
}

static uint64_t loop_now(const vigil_conn *c) {
  return vigil_loop_now_ns(c->owner->loop);
}

/* ---- the rarely used state (vigil__conn_ext, conn.h) ------------------- */

const vigil__conn_ext vigil__no_ext; /* what cx() reads when there is none */

#define cx vigil__cx

/* c's ext, made if it has none; NULL when out of memory. A new ext counts
 * stream positions from here (a pending write lives in the ext, so there
 * is none to count). */
static vigil__conn_ext *conn_ext(vigil_conn *c) {
  if (c->x == NULL)
    c->x = calloc(1, sizeof *c->x);
  return c->x;
}

/* Frees c's ext once nothing in it is in use. A TLS connection keeps its
 * own (TLS output is counted there from the first byte); a dead one keeps
 * it until freed (the session borrows close_reason until written). */
static void conn_trim(vigil_conn *c) {
  const vigil__conn_ext *x = c->x;
  if (x == NULL || x->tls != NULL || c->phase == VIGIL__ZOMBIE || (c->flags & VIGIL__C_CLOSE_REQ) ||
      x->qhead != NULL || x->rx != NULL || x->retain != NULL || x->creq != NULL ||
      x->wpend != NULL || x->close_reason != NULL || x->qstrikes != 0 || x->tls_credit != 0 ||
      x->charged != 0)
    return;
  free(c->x);
  c->x = NULL;
}

static void ext_free(vigil_conn *c) {
  if (c->x == NULL)
    return;
  c->owner->budget_used -= c->x->charged; /* nothing should be left; never leak the account */
  free(c->x->close_reason);
  free(c->x->rx);
  free(c->x->retain);
  vigil_tls_conn_free(c->x->tls);
  free(c->x);
  c->x = NULL;
}

void vigil__conn_take_queue(vigil_conn *to, vigil_conn *from) {
  vigil__conn_ext *f = from->x, *t = to->x;
  if (f == NULL)
    return;
  if (t == NULL) {
    /* `from` is a placeholder that never connected: its ext holds the
     * queue alone. Positions start over for `to`, which has framed none
     * of these messages yet. */
    to->x = f;
    from->x = NULL;
    f->framed_pos = f->kernel_pos = 0;
    return;
  }
  t->qhead = f->qhead;
  t->qtail = f->qtail;
  t->qframe = f->qframe;
  t->qbytes = f->qbytes;
  t->qstrikes = f->qstrikes;
  t->charged += f->qbytes; /* the queue's charge goes with it */
  f->charged -= f->qbytes;
  f->qhead = f->qtail = f->qframe = NULL;
  f->qbytes = 0;
}

/* The gauge of connections in `phase`. */
static uint32_t *phase_gauge(vigil__owner *o, uint8_t phase) {
  switch (phase) {
  case VIGIL__CONNECTING:
    return &o->m.connecting;
  case VIGIL__HANDSHAKE:
    return &o->m.handshaking;
  case VIGIL__OPEN:
    return &o->m.open;
  default:
    return &o->m.closing;
  }
}

static void set_phase(vigil_conn *c, uint8_t phase) {
  (*phase_gauge(c->owner, c->phase))--;
  c->phase = phase;
  (*phase_gauge(c->owner, phase))++;
}

/* ---- flushing ---------------------------------------------------------- */

/* A connection with bytes to write joins its owner's flush list; one defer
 * of the owner writes the list at the end of the iteration (the loop's
 * phase 5), so the frames an iteration produces leave in one write. A list
 * link (8 B a connection) instead of a vigil_defer each (24 B). Asking
 * again while listed does nothing. */
static void conn_want_flush(vigil_conn *c) {
  vigil__owner *o = c->owner;
  if (c->flags & VIGIL__C_FLUSH)
    return;
  c->flags |= VIGIL__C_FLUSH;
  c->fnext = NULL;
  *o->flush_tail = c;
  o->flush_tail = &c->fnext;
  vigil_loop_defer(o->loop, &o->flush);
}

/* Takes c off the flush list (a walk: only a connection freed while
 * listed needs it, which the loop's phase order makes rare). */
static void flush_cancel(vigil_conn *c) {
  vigil__owner *o = c->owner;
  vigil_conn **pp = &o->flush_head;
  if (!(c->flags & VIGIL__C_FLUSH))
    return;
  while (*pp != c)
    pp = &(*pp)->fnext;
  *pp = c->fnext;
  if (o->flush_tail == &c->fnext)
    o->flush_tail = pp;
  c->flags &= (uint8_t)~VIGIL__C_FLUSH;
}

/* Writes the connections listed when it starts; one that asks again while
 * this runs (more to write than one turn allows) is written next
 * iteration, as a vigil_defer queued from phase 5 would be. */
static void on_owner_flush(vigil_loop *loop, vigil_defer *d) {
  vigil__owner *o = vigil_container_of(d, vigil__owner, flush);
  vigil_conn *last, *c;
  (void)loop;
  if (o->flush_head == NULL)
    return;
  last = vigil_container_of(o->flush_tail, vigil_conn, fnext);
  do {
    c = o->flush_head;
    o->flush_head = c->fnext;
    if (o->flush_head == NULL)
      o->flush_tail = &o->flush_head;
    c->flags &= (uint8_t)~VIGIL__C_FLUSH;
    conn_flush(c);
  } while (c != last && o->flush_head != NULL);
}

/* ---- owner ------------------------------------------------------------- */

int vigil__owner_init(vigil__owner *o, vigil_loop *loop) {
  o->loop = loop;
  o->rbuf = malloc(VIGIL__RBUF_SIZE + VIGIL_SESSION_MAX_RETAIN);
  o->wbuf = malloc(VIGIL__WBUF_SIZE);
  vigil__slab_init(&o->conns, sizeof(vigil_conn));
  vigil_defer_init(&o->flush, on_owner_flush);
  o->flush_head = NULL;
  o->flush_tail = &o->flush_head;
  memset(&o->stall, 0, sizeof o->stall); /* as vigil_loop_stall_start asks */
  o->nconns = 0;
  memset(&o->m, 0, sizeof o->m);
  o->m.size = sizeof o->m;
  if (o->rbuf == NULL || o->wbuf == NULL) {
    free(o->rbuf);
    free(o->wbuf);
    o->rbuf = o->wbuf = NULL;
    return VIGIL_ENOMEM;
  }
  return 0;
}

int vigil__owner_tls(vigil__owner *o, vigil_tls *tls, const char *name) {
  o->tls = tls;
  o->tls_name = name;
  if (tls != NULL && o->tbuf == NULL && (o->tbuf = malloc(VIGIL__TBUF_SIZE)) == NULL)
    return VIGIL_ENOMEM;
  return 0;
}

void vigil__owner_free(vigil__owner *o) {
  vigil_loop_stall_stop(o->loop, &o->stall);
  vigil_loop_defer_cancel(o->loop, &o->flush);
  vigil__slab_free_all(&o->conns);
  free(o->rbuf);
  free(o->wbuf);
  free(o->tbuf);
  o->rbuf = o->wbuf = o->tbuf = NULL;
}

static void on_stall(vigil_loop *loop, vigil_stall_watch *w, uint64_t stall_ns,
                     vigil_stall_kind kind) {
  vigil__owner *o = vigil_container_of(w, vigil__owner, stall);
  uint64_t now = vigil_loop_now_ns(loop);
  vigil__slab_cursor cur = {0};
  vigil_conn *c;
  (void)stall_ns;
  (void)kind;
  o->m.stalls++;
  while ((c = vigil__conn_next(o, &cur)) != NULL) {
    if (c->phase != VIGIL__HANDSHAKE && c->phase != VIGIL__OPEN)
      continue;
    vigil__session_stalled_lazy(&c->session, now); /* not a ping to every one */
    conn_want_flush(c);
    conn_schedule(c);
  }
}

void vigil__owner_stall_start(vigil__owner *o) {
  vigil_loop_stall_start(o->loop, &o->stall, on_stall);
}

/* ---- lifecycle --------------------------------------------------------- */

vigil_conn *vigil__conn_new(vigil__owner *o) {
  vigil_conn *c = vigil__slab_alloc(&o->conns);
  if (c == NULL)
    return NULL;
  c->owner = o;
  if (vigil__conn_register(c) != 0) {
    vigil__slab_free(&o->conns, c);
    return NULL;
  }
  if (vigil_tcp_init(o->loop, &c->tcp) != 0) {
    vigil__conn_unregister(c);
    vigil__slab_free(&o->conns, c);
    return NULL;
  }
  vigil_loop_timer_init(&c->timer);
  o->nconns++;
  o->m.connecting++; /* phase 0 until started or connected */
  return c;
}

static void conn_release(vigil_conn *c) {
  vigil__owner *o = c->owner;
  vigil_loop_timer_cancel(o->loop, &c->timer);
  flush_cancel(c);
  vigil__conn_unregister(c);
  o->nconns--;
  (*phase_gauge(o, c->phase))--;
  if (o->freed != NULL)
    o->freed(c);
  if (c->flags & VIGIL__C_ID_OWNED)
    free(c->id.ptr);
  ext_free(c);
  vigil__slab_free(&o->conns, c);
}

static void on_tcp_closed(vigil_tcp *tcp) {
  conn_release(vigil_container_of(tcp, vigil_conn, tcp));
}

void vigil__conn_discard(vigil_conn *c) {
  vigil_tcp_close(&c->tcp, on_tcp_closed);
}

static void conn_close_socket(vigil_conn *c) {
  vigil_loop_timer_cancel(c->owner->loop, &c->timer);
  vigil_tcp_close(&c->tcp, on_tcp_closed);
}

/* ---- the timer ---------------------------------------------------------- */

static void on_timer(vigil_loop *loop, vigil_loop_timer *t);

static void conn_arm(vigil_conn *c, uint64_t at_ms) {
  vigil_loop_timer_arm(c->owner->loop, &c->timer, at_ms, on_timer);
}

/* Arms the timer for the session's deadline (or the drain deadline) if that
 * is earlier than what it is armed for, or later by more than the time left
 * to what it is armed for.
 *
 * A timer armed too early is harmless (on_timer re-checks the session and
 * re-arms), so a deadline that moves later need not touch the wheel. But a
 * heartbeating peer moves it once per heartbeat, by about one ping period,
 * and the old expiry then comes before the next frame: left alone, the timer
 * fires once per heartbeat, and each firing is a loop wake-up of its own
 * (a wait, clock reads, the timer phase) for nothing. Moving the timer costs
 * an unlink and a link. So it moves when the armed expiry is nearer than
 * half the way to the new deadline: once per heartbeat for a heartbeating
 * peer (no wake-up), at most twice per deadline's distance for a peer whose
 * frames come much faster (data traffic), where moving on every frame would
 * cost more than the one firing it saves. */
static void conn_schedule(vigil_conn *c) {
  uint64_t at, armed, now;
  if (c->phase != VIGIL__HANDSHAKE && c->phase != VIGIL__OPEN)
    return;
  at = ns_to_ms_ceil(vigil_session_deadline(&c->session));
  if ((c->flags & VIGIL__C_CLOSE_REQ) && cx(c)->drain_ms < at)
    at = cx(c)->drain_ms;
  if (at == UINT64_MAX)
    return;
  if (!vigil_loop_timer_armed(&c->timer)) {
    conn_arm(c, at);
    return;
  }
  /* An armed timer's expiry is the ms it was armed for (vigil_wheel_arm
   * stores it as given). */
  armed = c->timer.node.expires;
  now = vigil_loop_now_ms(c->owner->loop);
  if (at < armed || (at > armed && (armed <= now || armed - now < (at - now) / 2)))
    conn_arm(c, at);
}

/* ---- deaths ------------------------------------------------------------- */

static void death_init(vigil_conn *c, vigil_death *d) {
  vigil_session_info si;
  memset(d, 0, sizeof *d);
  vigil_session_get_info(&c->session, &si);
  d->srtt_ns = si.srtt_ns;
  d->last_rtt_ns = c->last_rtt_ns;
  d->timeout_ms = si.timeout_ms;
  if (c->phase == VIGIL__HANDSHAKE || c->phase == VIGIL__OPEN)
    d->silent_ns = loop_now(c) > si.last_recv_ns ? loop_now(c) - si.last_recv_ns : 0;
  (void)vigil_evidence_read(vigil_tcp_socket(&c->tcp), &d->tcp);
}

static void hand_back_queue(vigil_conn *c) {
  vigil__owner *o = c->owner;
  vigil__conn_ext *x = c->x;
  vigil__msg *m, *next;
  if (x == NULL)
    return;
  m = x->qhead;
  x->qhead = x->qtail = x->qframe = NULL;
  o->m.queued_bytes -= x->qbytes;
  vigil__budget_release(c, x->qbytes);
  x->qbytes = 0;
  for (; m != NULL; m = next) {
    next = m->next;
    if (o->cb.on_unsent != NULL)
      o->cb.on_unsent(c, m->data, m->len, m->framed, o->user);
    free(m);
  }
}

/* What write_final_close left to do. */
typedef enum {
  FINAL_UNSENT,   /* not everything we will ever send is in the kernel */
  FINAL_NOTHING,  /* nothing to write: our direction may end with a FIN */
  FINAL_WITH_FIN, /* written, and our direction has ended with it */
} final_write;

/* Writes a CLOSE still queued in the session, if the kernel takes it now,
 * with our FIN in the same segment (vigil_tcp_try_write_last: when
 * thousands die at once, a segment fewer per death is kernel time the next
 * verdicts get, issue 11). */
static final_write write_final_close(vigil_conn *c) {
  uint8_t buf[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CLOSE];
  size_t taken;
  long n;
  vigil_buf b;
  if (cx(c)->wpend != NULL || (c->flags & VIGIL__C_PEER_GONE) ||
      vigil_tcp_socket(&c->tcp) == VIGIL_INVALID_SOCKET)
    return FINAL_UNSENT;
  n = vigil_session_write(&c->session, loop_now(c), buf, sizeof buf, NULL, 0, &taken);
  if (cx(c)->tls != NULL) {
    /* Inside TLS (once it is up), then TLS's own close_notify; a failed
     * TLS has at most an alert to send. What the kernel does not take at
     * once is dropped: the connection is over. */
    if (n > 0 && vigil_tls_conn_ready(cx(c)->tls) &&
        vigil_tls_conn_write(cx(c)->tls, buf, (size_t)n) == 0)
      vigil_tls_conn_shutdown(cx(c)->tls);
    n = (long)vigil_tls_conn_take(cx(c)->tls, c->owner->tbuf, VIGIL__TBUF_SIZE);
    b = vigil_buf_init((char *)c->owner->tbuf, (size_t)n);
  } else {
    b = vigil_buf_init((char *)buf, n > 0 ? (size_t)n : 0);
  }
  if (n <= 0)
    return FINAL_NOTHING;
  return vigil_tcp_try_write_last(&c->tcp, &b, 1) == n ? FINAL_WITH_FIN : FINAL_UNSENT;
}

/* Whether a dead connection's socket may close now rather than linger.
 * The linger exists for one case: our CLOSE is on its way and the peer may
 * still send, so closing with its bytes unread would send an RST that can
 * destroy our CLOSE in flight. It ends as soon as the peer closes (on_read)
 * and is only a bound. Nothing is gained by lingering when:
 *  - the peer has closed or failed already (nothing more will come);
 *  - the peer's CLOSE was received and we answer none: a CLOSE is the last
 *    frame a peer sends, so nothing unread can follow it, and the peer,
 *    lingering for our FIN, closes as soon as it sees it. If we lingered
 *    here too, both ends would wait for the other for the whole linger;
 *  - a write is still pending or reading has stopped (no FIN can be told
 *    from the rest);
 *  - the peer was convicted of silence: it has had nothing in flight for
 *    `timeout`, closing sends FIN, and our CLOSE still waits in its receive
 *    queue should it wake up (a probe or a client that gives up would
 *    otherwise exit a linger late). */
static int close_at_once(const vigil_conn *c, const vigil_death *d) {
  /* A failed TLS has sent its alert, if any; nothing it reads means
   * anything now. */
  int tls_failed = cx(c)->tls != NULL && vigil_tls_conn_error(cx(c)->tls)[0] != '\0';
  return (c->flags & VIGIL__C_PEER_GONE) || d->close_received || cx(c)->wpend != NULL ||
         tls_failed || !vigil_tcp_is_reading(&c->tcp) ||
         d->cause == VIGIL_CAUSE_HEARTBEAT_TIMEOUT || d->cause == VIGIL_CAUSE_PEER_STALLED;
}

static void conn_die(vigil_conn *c, vigil_death *d) {
  vigil__owner *o = c->owner;
  int was_open = c->phase == VIGIL__OPEN;
  final_write final;
  if (c->phase == VIGIL__ZOMBIE)
    return;
  if (cx(c)->tls != NULL && !vigil_tls_conn_ready(cx(c)->tls))
    d->close_sent = 0; /* a CLOSE cannot travel before TLS is up */
  set_phase(c, VIGIL__ZOMBIE);
  c->flags &= (uint8_t)~VIGIL__C_CLOSE_REQ;
  if (o->died != NULL)
    o->died(c, d, was_open);
  if (was_open ? o->cb.on_death != NULL : o->cb.on_reject != NULL)
    (was_open ? o->cb.on_death : o->cb.on_reject)(c, d, o->user);
  hand_back_queue(c);
  if (c->x != NULL) {
    vigil__budget_release(c, c->x->rx_cap);
    free(c->x->rx);
    free(c->x->retain);
    c->x->rx = c->x->retain = NULL;
    c->x->rx_len = c->x->rx_cap = 0;
    c->x->retain_len = 0;
  }
  if (o->buried != NULL)
    o->buried(c, d, was_open);
  final = write_final_close(c);
  vigil_loop_timer_cancel(o->loop, &c->timer);
  if (close_at_once(c, d)) {
    conn_close_socket(c);
    return;
  }
  /* Lingering: our FIN goes now (with our last frame, when there was
   * one), and the socket closes at the peer's. Without it, two ends whose
   * CLOSEs crossed (a client says goodbye as the server shuts down) would
   * each wait for the other's FIN for the whole linger. */
  if (final == FINAL_NOTHING)
    (void)vigil_tcp_shutdown(&c->tcp);
  conn_arm(c, vigil__after_ms(o->loop, VIGIL__LINGER_MS));
}

static void conn_die_event(vigil_conn *c, const vigil_event *ev) {
  vigil_death d;
  vigil_verdict v;
  const char *detail = ev->detail;
  death_init(c, &d);
  d.silent_ns = ev->silent_ns;
  d.close_code = ev->close_code;
  d.retry_after_ms = ev->retry_after_ms;
  d.reason_len = 0;
  if (cx(c)->tls != NULL && !vigil_tls_conn_ready(cx(c)->tls) && c->phase == VIGIL__HANDSHAKE &&
      ev->cause != VIGIL_CAUSE_LOCAL)
    detail = "TLS handshake not completed within the handshake timeout";
  if (ev->cause == VIGIL_CAUSE_LOCAL) {
    d.close_sent = 1;
    detail = cx(c)->local_detail != NULL ? cx(c)->local_detail : ev->detail;
    d.reason = cx(c)->close_reason;
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
  v.handshake = c->phase == VIGIL__HANDSHAKE;
  if (ev->cause == VIGIL_CAUSE_HEARTBEAT_TIMEOUT && c->phase == VIGIL__OPEN)
    vigil__metrics_verdict(&c->owner->m, ev->silent_ns, d.timeout_ms);
  d.cause = vigil_evidence_classify(&v, &d.tcp, &detail);
  d.detail = detail;
  conn_die(c, &d);
}

void vigil__conn_fail(vigil_conn *c, int err, const char *detail) {
  vigil_death d;
  vigil_verdict v;
  const char *why = NULL;
  if (c->phase == VIGIL__ZOMBIE)
    return;
  c->flags |= VIGIL__C_PEER_GONE;
  death_init(c, &d);
  memset(&v, 0, sizeof v);
  v.error = err;
  v.connecting = c->phase == VIGIL__CONNECTING;
  v.silent_ns = d.silent_ns;
  d.error = err;
  d.cause = vigil_evidence_classify(&v, &d.tcp, &why);
  d.detail = detail != NULL ? detail : why;
  conn_die(c, &d);
}

void vigil__conn_kill(vigil_conn *c, vigil_cause cause, uint16_t code, const char *reason,
                      uint32_t retry_after_ms, const char *detail) {
  vigil_death d;
  if (c->phase == VIGIL__ZOMBIE)
    return;
  if (c->phase != VIGIL__CONNECTING) {
    /* The session borrows the reason until written: a static string or
     * one the connection owns. */
    if (reason != cx(c)->close_reason) {
      vigil__conn_ext *x = reason != NULL ? conn_ext(c) : c->x;
      if (x != NULL) {
        free(x->close_reason);
        x->close_reason = NULL;
        if (reason != NULL && (x->close_reason = malloc(strlen(reason) + 1)) != NULL)
          memcpy(x->close_reason, reason, strlen(reason) + 1);
      }
    }
    if (vigil_session_close(&c->session, code, cx(c)->close_reason, retry_after_ms) == 0 &&
        c->x != NULL)
      c->x->close_code = code;
  }
  death_init(c, &d);
  d.cause = cause;
  d.detail = detail;
  d.close_sent = c->phase != VIGIL__CONNECTING;
  d.close_code = code;
  d.retry_after_ms = retry_after_ms;
  if (d.close_sent && cx(c)->close_reason != NULL) {
    d.reason = cx(c)->close_reason;
    d.reason_len = strlen(d.reason);
  }
  conn_die(c, &d);
}

/* ---- reading ------------------------------------------------------------ */

static int deliver_data(vigil_conn *c, const vigil_event *ev) {
  vigil__owner *o = c->owner;
  vigil__conn_ext *x;
  size_t need;
  if (cx(c)->rx_len == 0 && ev->end_of_message) {
    if (o->cb.on_message != NULL)
      o->cb.on_message(c, ev->data, ev->len, o->user);
    return 0;
  }
  if ((x = conn_ext(c)) == NULL)
    return VIGIL_ENOMEM;
  need = (size_t)x->rx_len + ev->len;
  if (need > x->rx_cap) {
    size_t cap = x->rx_cap ? (size_t)x->rx_cap * 2 : 4096;
    size_t max_message = vigil_session_get_max_message(&c->session);
    uint8_t *p;
    if (cap < need)
      cap = need;
    if (cap > max_message)
      cap = need > max_message ? need : max_message;
    if (vigil__budget_charge(c, cap - x->rx_cap) != 0)
      return VIGIL_EPOLICY; /* closed for the memory budget */
    p = realloc(x->rx, cap);
    if (p == NULL) {
      vigil__budget_release(c, cap - x->rx_cap);
      return VIGIL_ENOMEM;
    }
    x->rx = p;
    x->rx_cap = (uint32_t)cap;
  }
  if (ev->len > 0)
    memcpy(x->rx + x->rx_len, ev->data, ev->len);
  x->rx_len = (uint32_t)need;
  if (ev->end_of_message) {
    uint8_t *msg = x->rx;
    size_t len = x->rx_len;
    x->rx = NULL; /* the buffer lives only while a message is in flight */
    vigil__budget_release(c, x->rx_cap);
    x->rx_len = x->rx_cap = 0;
    conn_trim(c);
    if (o->cb.on_message != NULL)
      o->cb.on_message(c, msg, len, o->user);
    free(msg);
  }
  return 0;
}

static void conn_opened(vigil_conn *c, const vigil_event *ev);

static void handle_event(vigil_conn *c, const vigil_event *ev) {
  vigil__owner *o = c->owner;
  switch (ev->type) {
  case VIGIL_EVENT_OPEN:
    conn_opened(c, ev);
    break;
  case VIGIL_EVENT_DATA:
    if (deliver_data(c, ev) != 0)
      vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                       "out of memory reassembling a message");
    break;
  case VIGIL_EVENT_PONG:
    c->last_rtt_ns = ev->rtt_ns;
    o->m.pongs_received++;
    vigil__hist_observe(&o->m.rtt, VIGIL_HIST_RTT, ev->rtt_ns);
    if (o->cb.on_rtt != NULL)
      o->cb.on_rtt(c, ev->rtt_ns, o->user);
    break;
  case VIGIL_EVENT_DEAD:
    conn_die_event(c, ev);
    break;
  default:
    break;
  }
}

static void keep_tail(vigil_conn *c, const uint8_t *p, size_t n) {
  vigil__conn_ext *x;
  if (n == 0) {
    if (c->x != NULL && c->x->retain != NULL) {
      free(c->x->retain);
      c->x->retain = NULL;
      c->x->retain_len = 0;
      conn_trim(c);
    }
    return;
  }
  if (n > VIGIL_SESSION_MAX_RETAIN) {
    /* The session promised never to leave this much; treat it as the
     * protocol error it would be rather than overflow. */
    vigil__conn_kill(c, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_PROTOCOL_ERROR, NULL, 0,
                     "incomplete frame larger than any control frame");
    return;
  }
  if ((x = conn_ext(c)) == NULL ||
      (x->retain == NULL && (x->retain = malloc(VIGIL_SESSION_MAX_RETAIN)) == NULL)) {
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                     "out of memory holding a partial frame");
    return;
  }
  memmove(x->retain, p, n);
  x->retain_len = (uint16_t)n;
}

static void conn_process(vigil_conn *c, const uint8_t *p, size_t n) {
  /* When the bytes reached this host (the kernel's stamp where there is
   * one), not when this busy loop got round to them: a frame dated late
   * would keep a dead peer alive for as long as the loop was behind. */
  uint64_t now = vigil_loop_rx_time_ns(c->owner->loop);
  vigil_event ev;
  while (c->phase == VIGIL__HANDSHAKE || c->phase == VIGIL__OPEN) {
    long r = vigil_session_recv(&c->session, now, p, n, &ev);
    if (r < 0) {
      if (ev.type == VIGIL_EVENT_DEAD)
        handle_event(c, &ev);
      else
        vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_PROTOCOL_ERROR, NULL, 0,
                         "session refused the bytes");
      return;
    }
    p += r;
    n -= (size_t)r;
    if (ev.type != VIGIL_EVENT_NONE)
      handle_event(c, &ev);
    else if (r == 0 || n == 0)
      break; /* no event and nothing left: another call would say so too */
  }
  if (c->phase == VIGIL__ZOMBIE)
    return;
  keep_tail(c, p, n);
  if (c->phase == VIGIL__ZOMBIE)
    return;
  if (vigil_session_want_write(&c->session))
    conn_want_flush(c);
  conn_schedule(c);
}

/* ---- TLS ----------------------------------------------------------------
 * With TLS, reads land in the owner's ciphertext scratch (tbuf) and are
 * decrypted into rbuf, where conn_process finds them as it would the
 * plaintext of a read; framed output is encrypted and its ciphertext is
 * written instead. A message leaves the queue once all the ciphertext
 * that carries it is in the kernel (tls_credit). */

static int tls_drain(vigil_conn *c);
static int write_rest(vigil_conn *c, const uint8_t *p, size_t n);
static void release_written(vigil_conn *c);

/* TLS failed (vigil_tls_conn_read / _write returned rc): the death. */
static void tls_failed(vigil_conn *c, long rc) {
  const char *why = vigil_tls_conn_error(cx(c)->tls);
  if (rc == VIGIL_EOF) {
    vigil__conn_fail(c, VIGIL_EOF, "the peer closed TLS");
  } else if (rc == VIGIL_ENOBUFS) {
    vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_POLICY, "TLS output not read", 0, why);
  } else if (rc == VIGIL_EPROTO) {
    vigil__conn_kill(c, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_PROTOCOL_ERROR, NULL, 0, why);
  } else {
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, NULL, 0, vigil_strerror((int)rc));
  }
}

/* A plaintext client on a TLS server: answered in plaintext, so it reads
 * why (a TLS alert would mean nothing to it). */
static void tls_refuse_plaintext(vigil_conn *c) {
  vigil_tls_conn_free(c->x->tls);
  c->x->tls = NULL;
  vigil__conn_kill(c, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_POLICY, "this server requires TLS", 0,
                   "plaintext client on a TLS server");
}

/* Ciphertext arrived in tbuf: decrypt it and give the session the
 * plaintext, as much as there is. */
static void tls_recv(vigil_conn *c, size_t n) {
  uint8_t *rb = c->owner->rbuf;
  long r;
  if (vigil_tls_conn_feed(cx(c)->tls, c->owner->tbuf, n) != 0) {
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                     "out of memory buffering TLS input");
    return;
  }
  if (vigil_session_get_role(&c->session) == VIGIL_ROLE_SERVER &&
      !vigil_tls_conn_ready(cx(c)->tls) && vigil_tls_conn_plaintext_peer(cx(c)->tls)) {
    tls_refuse_plaintext(c);
    return;
  }
  while (c->phase == VIGIL__HANDSHAKE || c->phase == VIGIL__OPEN) {
    size_t kept = cx(c)->retain_len;
    if (kept > 0)
      memcpy(rb, cx(c)->retain, kept);
    r = vigil_tls_conn_read(cx(c)->tls, rb + kept, VIGIL__RBUF_SIZE);
    if (r < 0) {
      tls_failed(c, r);
      return;
    }
    if (r == 0)
      break;
    conn_process(c, rb, kept + (size_t)r);
  }
  if ((c->phase == VIGIL__HANDSHAKE || c->phase == VIGIL__OPEN) &&
      (vigil_tls_conn_pending(cx(c)->tls) > 0 || vigil_session_want_write(&c->session)))
    conn_want_flush(c);
}

/* Hands the ciphertext TLS produced to the kernel, until it is all there
 * or a write is pending. Returns 0, or -1 once c died. */
static int tls_drain(vigil_conn *c) {
  uint8_t *tb = c->owner->tbuf;
  while (cx(c)->wpend == NULL && vigil_tls_conn_pending(cx(c)->tls) > 0) {
    size_t n = vigil_tls_conn_take(cx(c)->tls, tb, VIGIL__TBUF_SIZE);
    vigil_buf b = vigil_buf_init((char *)tb, n);
    long w = vigil_tcp_try_write(&c->tcp, &b, 1);
    int rc;
    if (w == VIGIL_EAGAIN)
      w = 0;
    if (w < 0) {
      vigil__conn_fail(c, (int)w, NULL);
      return -1;
    }
    if ((size_t)w < n && (rc = write_rest(c, tb + w, n - (size_t)w)) != 0) {
      vigil__conn_fail(c, rc, NULL);
      return -1;
    }
  }
  if (cx(c)->wpend == NULL && c->x != NULL && c->x->tls_credit != 0) {
    c->x->kernel_pos += c->x->tls_credit; /* every byte that carried it is in the kernel */
    c->x->tls_credit = 0;
    release_written(c);
  }
  return 0;
}

static void on_alloc(vigil_tcp *tcp, size_t suggested, vigil_buf *buf) {
  vigil_conn *c = vigil_container_of(tcp, vigil_conn, tcp);
  uint8_t *base = c->owner->rbuf;
  size_t kept = cx(c)->retain_len;
  (void)suggested;
  if (cx(c)->tls != NULL) {
    *buf = vigil_buf_init((char *)c->owner->tbuf, VIGIL__TBUF_SIZE);
    return;
  }
  if (kept > 0)
    memcpy(base, cx(c)->retain, kept);
  *buf = vigil_buf_init((char *)base + kept, VIGIL__RBUF_SIZE);
}

static void on_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  vigil_conn *c = vigil_container_of(tcp, vigil_conn, tcp);
  (void)buf;
  if (c->phase == VIGIL__ZOMBIE) {
    if (nread < 0) {
      c->flags |= VIGIL__C_PEER_GONE;
      conn_close_socket(c); /* the peer closed: the linger is over */
    }
    return;
  }
  if (nread < 0) {
    vigil__conn_fail(c, (int)nread, NULL);
    return;
  }
  if (nread == 0)
    return;
  if (cx(c)->tls != NULL) {
    tls_recv(c, (size_t)nread);
    return;
  }
  if (c->phase == VIGIL__HANDSHAKE && cx(c)->retain_len == 0 && c->owner->rbuf[0] == 0x16 &&
      vigil_session_get_role(&c->session) == VIGIL_ROLE_SERVER) {
    /* 0x16 starts a TLS handshake record, never a vigil frame. */
    vigil__conn_kill(c, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_PROTOCOL_ERROR,
                     "this server does not speak TLS", 0, "TLS client on a plaintext server");
    return;
  }
  conn_process(c, c->owner->rbuf, (size_t)cx(c)->retain_len + (size_t)nread);
}

/* ---- writing ------------------------------------------------------------ */

static void release_written(vigil_conn *c) {
  vigil__conn_ext *x = c->x;
  if (x == NULL)
    return;
  while (x->qhead != NULL && x->qhead->end_pos != 0 && x->qhead->end_pos <= x->kernel_pos) {
    vigil__msg *m = x->qhead;
    x->qhead = m->next;
    if (x->qhead == NULL)
      x->qtail = NULL;
    x->qbytes -= m->len;
    c->owner->m.queued_bytes -= m->len;
    vigil__budget_release(c, m->len);
    free(m);
  }
  if (x->qhead == NULL) {
    x->qstrikes = 0; /* drained: backpressure was honoured */
    conn_trim(c);
  }
}

/* A message the session refuses (larger than the agreed max_message) goes
 * back to the application instead of blocking the queue. */
static void refuse_head(vigil_conn *c, vigil__msg *m) {
  vigil__owner *o = c->owner;
  vigil__conn_ext *x = c->x; /* m is queued: there is one */
  vigil__msg **pp = &x->qhead, *prev = NULL;
  while (*pp != m) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  *pp = m->next;
  if (x->qtail == m)
    x->qtail = prev;
  x->qframe = m->next;
  x->qbytes -= m->len;
  o->m.queued_bytes -= m->len;
  vigil__budget_release(c, m->len);
  if (o->cb.on_unsent != NULL)
    o->cb.on_unsent(c, m->data, m->len, 0, o->user);
  free(m);
}

/* Frames control frames and queued messages into out. Returns the bytes
 * produced, or a negative error other than EMSGSIZE. */
static long conn_fill(vigil_conn *c, uint8_t *out, size_t cap) {
  uint64_t now = loop_now(c);
  size_t pos = 0, taken;
  long r;
  while (cap - pos >= (size_t)2 * VIGIL_WIRE_MAX_CONTROL_FRAME) {
    vigil__msg *m = cx(c)->qframe;
    int ping_out = vigil__session_ping_out(&c->session);
    r = vigil_session_write(&c->session, now, out + pos, cap - pos, NULL, 0, &taken);
    if (r < 0)
      return r == VIGIL_ECLOSED && pos > 0 ? (long)pos : r;
    /* A ping written leaves one outstanding where none was (a re-probe
     * after a stall withdraws the old one first): counted through the
     * accessor, not the session's private fields. */
    if (!ping_out && vigil__session_ping_out(&c->session))
      c->owner->m.pings_sent++;
    pos += (size_t)r;
    if (m == NULL || vigil_session_get_state(&c->session) != VIGIL_SESSION_OPEN) {
      /* Control frames only: done once the session has nothing more. */
      if (r == 0 || !vigil_session_want_write(&c->session))
        break;
      continue;
    }
    r = vigil_session_write(&c->session, now, out + pos, cap - pos, m->data + m->framed,
                            m->len - m->framed, &taken);
    if (r == VIGIL_EMSGSIZE) {
      refuse_head(c, m);
      continue;
    }
    if (r < 0)
      return r;
    if (r == 0)
      break;
    pos += (size_t)r;
    m->framed += taken;
    if (m->framed == m->len) {
      m->end_pos = c->x->framed_pos + pos;
      c->x->qframe = m->next;
    }
  }
  if (c->x != NULL)
    c->x->framed_pos += pos;
  return (long)pos;
}

static void on_write_done(vigil_write_req *req, int status) {
  struct vigil__wpend *w = req->data;
  vigil_conn *c = w->conn;
  c->x->wpend = NULL; /* the ext stays while a write is pending */
  if (status == 0 && c->x->tls == NULL)
    c->x->kernel_pos += w->len; /* with TLS, tls_drain counts plaintext */
  vigil__budget_release(c, w->len);
  free(w);
  if (c->phase == VIGIL__ZOMBIE)
    return;
  if (status < 0) {
    vigil__conn_fail(c, status, NULL);
    return;
  }
  release_written(c);
  conn_flush(c);
}

static int write_rest(vigil_conn *c, const uint8_t *p, size_t n) {
  struct vigil__wpend *w;
  vigil_buf b;
  int rc, fresh = c->x == NULL;
  if (conn_ext(c) == NULL)
    return VIGIL_ENOMEM;
  if (fresh)
    c->x->framed_pos = n; /* framed before there was an ext to count it, not in the kernel yet */
  if ((rc = vigil__budget_charge(c, n)) != 0)
    return rc;
  if ((w = malloc(sizeof *w + n)) == NULL) {
    vigil__budget_release(c, n);
    return VIGIL_ENOMEM;
  }
  memcpy(w->data, p, n);
  w->len = n;
  w->conn = c;
  w->req.data = w;
  b = vigil_buf_init((char *)w->data, n);
  rc = vigil_tcp_write(&w->req, &c->tcp, &b, 1, on_write_done);
  if (rc != 0) {
    vigil__budget_release(c, n);
    free(w);
    return rc;
  }
  c->x->wpend = w;
  return 0;
}

/* A graceful close proceeds once everything queued is in the kernel. */
static void maybe_finish_drain(vigil_conn *c) {
  const vigil__conn_ext *x = cx(c);
  if (!(c->flags & VIGIL__C_CLOSE_REQ) || x->qhead != NULL || cx(c)->wpend != NULL ||
      vigil_session_get_state(&c->session) == VIGIL_SESSION_CLOSING)
    return;
  (void)vigil_session_close(&c->session, x->close_code, x->close_reason, x->close_retry_ms);
}

static void conn_flush(vigil_conn *c) {
  int round;
  if (c->phase != VIGIL__HANDSHAKE && c->phase != VIGIL__OPEN)
    return;
  for (round = 0; round < 16 && cx(c)->wpend == NULL; round++) {
    vigil_buf b;
    long n, w;
    maybe_finish_drain(c);
    if (cx(c)->tls != NULL) {
      if (tls_drain(c) != 0)
        return;
      if (cx(c)->wpend != NULL || !vigil_tls_conn_ready(cx(c)->tls))
        break; /* the session's frames wait for TLS */
    }
    n = conn_fill(c, c->owner->wbuf, VIGIL__WBUF_SIZE);
    if (n < 0 && n != VIGIL_ECLOSED) {
      vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, NULL, 0, "cannot frame output");
      return;
    }
    if (n <= 0)
      break;
    if (cx(c)->tls != NULL) {
      int rc = vigil_tls_conn_write(cx(c)->tls, c->owner->wbuf, (size_t)n);
      if (rc != 0) {
        tls_failed(c, rc);
        return;
      }
      c->x->tls_credit += (uint32_t)n; /* a TLS connection has its ext (tls_start) */
      continue;                        /* drained at the top of the next round */
    }
    b = vigil_buf_init((char *)c->owner->wbuf, (size_t)n);
    w = vigil_tcp_try_write(&c->tcp, &b, 1);
    if (w == VIGIL_EAGAIN)
      w = 0;
    if (w < 0) {
      vigil__conn_fail(c, (int)w, NULL);
      return;
    }
    if (c->x != NULL)
      c->x->kernel_pos += (uint64_t)w;
    if (w < n) {
      int rc = write_rest(c, c->owner->wbuf + w, (size_t)(n - w));
      if (rc != 0) {
        vigil__conn_fail(c, rc, NULL);
        return;
      }
    }
    release_written(c);
    /* Nothing left to frame and no close waiting for the queue to drain:
     * another round would only find that out again. */
    if (!vigil_session_want_write(&c->session) && cx(c)->qframe == NULL &&
        !(c->flags & VIGIL__C_CLOSE_REQ))
      break;
  }
  if (round == 16)
    conn_want_flush(c); /* fairness: more next turn */
  /* Writing moves an open session's deadline only later (a PING written
   * has no ping deadline until its PONG), which the timer finds out when it
   * fires; a CLOSE written, or one waiting to be, can move it earlier. */
  if (vigil_session_get_state(&c->session) != VIGIL_SESSION_OPEN || (c->flags & VIGIL__C_CLOSE_REQ))
    conn_schedule(c);
}

/* ---- opening ------------------------------------------------------------ */

/* The keepalive the owner's policy asks for at this agreed timeout: 0 and
 * *ka, or VIGIL_EINVAL; ka->enable 0 when the policy is OFF. */
static int keepalive_policy(const vigil__owner *o, uint32_t timeout_ms, vigil_keepalive *ka) {
  vigil_keepalive_init(ka);
  switch (o->ka_mode) {
  case VIGIL_KEEPALIVE_OFF:
    return 0;
  case VIGIL_KEEPALIVE_EXPLICIT:
    *ka = o->ka;
    return 0;
  default:
    /* Budget = the agreed timeout, but at least the 3 s that 1 lost probe
     * at the kernel's 1 s granularity needs: the heartbeat convicts first
     * on silence, and TCP_USER_TIMEOUT catches data stuck in flight even
     * while the peer's own heartbeats keep arriving. */
    return vigil_keepalive_from_budget(ka, timeout_ms > 3000 ? timeout_ms : 3000, 1) != 0
               ? VIGIL_EINVAL
               : 0;
  }
}

int vigil__conn_keepalive(vigil_conn *c, uint32_t timeout_ms, vigil_keepalive *ka,
                          vigil_keepalive_report *report) {
  memset(report, 0, sizeof *report);
  if (keepalive_policy(c->owner, timeout_ms, ka) != 0)
    return VIGIL_EINVAL;
  if (c->owner->ka_mode == VIGIL_KEEPALIVE_OFF)
    return 0;
  return vigil_keepalive_apply(vigil_tcp_socket(&c->tcp), ka, report);
}

/* Keeps the peer's id: in the connection when it fits (most ids are
 * short, and a malloc'd one costs at least 32 B), else malloc'd. Returns 0
 * or VIGIL_ENOMEM. */
static int conn_store_id(vigil_conn *c, const uint8_t *id, size_t id_len) {
  char *p = c->id.in;
  if (id_len < sizeof c->id.in) {
    c->flags |= VIGIL__C_ID_INLINE;
  } else {
    if ((p = malloc(id_len + 1)) == NULL)
      return VIGIL_ENOMEM;
    c->id.ptr = p;
    c->flags |= VIGIL__C_ID_OWNED;
  }
  memcpy(p, id, id_len);
  p[id_len] = '\0';
  c->id_len = (uint8_t)id_len;
  return 0;
}

static void conn_opened(vigil_conn *c, const vigil_event *ev) {
  vigil__owner *o = c->owner;
  vigil_open_info info;
  vigil_session_info si;
  char peer[VIGIL_ADDRSTRLEN];
  memset(&info, 0, sizeof info);
  if (vigil_session_get_role(&c->session) == VIGIL_ROLE_SERVER) {
    const uint8_t *id = ev->data;
    size_t id_len = ev->len;
    char cn[VIGIL_WIRE_MAX_ID + 1];
    if (cx(c)->tls != NULL && vigil_tls_conn_id_from_cert(cx(c)->tls)) {
      /* Mutual TLS vouches for the id: the certificate's, not the HELLO's. */
      long n = vigil_tls_conn_peer_cn(cx(c)->tls, cn, sizeof cn);
      if (n <= 0 || !vigil_utf8_valid((const uint8_t *)cn, (size_t)n)) {
        vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_POLICY,
                         "client certificate has no usable subject CN", 0,
                         "client certificate has no usable subject CN");
        return;
      }
      id = (const uint8_t *)cn;
      id_len = (size_t)n;
    }
    /* The credential is judged before the id goes anywhere: a refused
     * HELLO never reaches the presence table, on_open or a takeover. */
    if (o->admit != NULL && o->admit(c, id, id_len, ev->credential, ev->credential_len) != 0)
      return;
    if (conn_store_id(c, id, id_len) != 0) {
      vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_POLICY, "out of memory", 0,
                       "out of memory storing the peer id");
      return;
    }
  }
  set_phase(c, VIGIL__OPEN);
  c->opened_ns = loop_now(c);
  vigil_session_get_info(&c->session, &si);
  vigil__conn_peer_text(c, peer, sizeof peer);
  info.id = vigil__conn_peer_id(c);
  info.id_len = c->id_len;
  info.peer = peer;
  info.interval_ms = si.interval_ms;
  info.timeout_ms = si.timeout_ms;
  info.min_ping_ms = si.min_ping_ms;
  info.max_frame = si.max_frame;
  info.max_message = si.max_message;
  info.keepalive_error =
      vigil__conn_keepalive(c, si.timeout_ms, &info.keepalive, &info.keepalive_report);
  if (o->opened != NULL)
    o->opened(c, &info);
  if (c->phase != VIGIL__OPEN)
    return;
  if (o->cb.on_open != NULL)
    o->cb.on_open(c, &info, o->user);
  if (c->phase == VIGIL__OPEN && cx(c)->qframe != NULL)
    conn_want_flush(c);
}

static void on_timer(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_conn *c = vigil_container_of(t, vigil_conn, timer);
  vigil_event ev;
  switch (c->phase) {
  case VIGIL__CONNECTING:
    vigil__conn_fail(c, VIGIL_ETIMEDOUT, NULL);
    return;
  case VIGIL__ZOMBIE:
    conn_close_socket(c);
    return;
  default:
    break;
  }
  if ((c->flags & VIGIL__C_CLOSE_REQ) && vigil_loop_now_ms(loop) >= cx(c)->drain_ms) {
    const vigil__conn_ext *x = cx(c);
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, x->close_code, x->close_reason, x->close_retry_ms,
                     x->local_detail);
    return;
  }
  if (vigil_session_expire(&c->session, vigil_loop_now_ns(loop), &ev) == 0 &&
      ev.type != VIGIL_EVENT_NONE) {
    handle_event(c, &ev);
    if (c->phase == VIGIL__ZOMBIE)
      return;
  }
  if (vigil_session_want_write(&c->session))
    conn_want_flush(c);
  conn_schedule(c);
}

uint32_t vigil__random_u32(const void *salt, uint64_t now) {
  uint32_t r;
  if (vigil_random(&r, sizeof r) == 0)
    return r;
  return (uint32_t)(uintptr_t)salt ^ (uint32_t)now ^ (uint32_t)(now >> 32);
}

/* TLS under the session: the session's handshake deadline, already
 * running, covers the TLS handshake and the HELLO together. A client
 * writes its ClientHello at once. */
static int tls_start(vigil_conn *c, vigil_role role) {
  long r;
  int rc;
  if (conn_ext(c) == NULL) /* TLS output is counted in it from the first byte */
    return VIGIL_ENOMEM;
  rc = vigil_tls_conn_new(&c->x->tls, c->owner->tls,
                          role == VIGIL_ROLE_CLIENT ? c->owner->tls_name : NULL);
  if (rc != 0)
    return rc;
  if (role == VIGIL_ROLE_CLIENT && (r = vigil_tls_conn_read(cx(c)->tls, c->owner->rbuf, 0)) < 0)
    return (int)r;
  return 0;
}

int vigil__conn_start(vigil_conn *c, vigil_role role, const vigil_session_config *cfg) {
  vigil_session_config own = *cfg;
  int rc;
  /* Each connection its own ping jitter: the server and the client hand
   * one config to every connection, and one seed would make them all draw
   * the same idle periods, so a thousand clients connected together would
   * ping in lock-step for ever (issue 8, defect 1). A non-zero seed is a
   * test's and is used as given. */
  if (own.seed == 0)
    own.seed = vigil__random_u32(c, loop_now(c));
  rc = vigil_session_init(&c->session, role, &own, loop_now(c));
  if (rc == 0 && role == VIGIL_ROLE_CLIENT && c->owner->cred_len != 0)
    rc = vigil_session_set_credential(&c->session, c->owner->cred, c->owner->cred_len);
  if (rc != 0)
    return rc;
  set_phase(c, VIGIL__HANDSHAKE);
  vigil__conn_peer_load(c);
  (void)vigil_tcp_nodelay(&c->tcp, 1);
  if (c->owner->tls != NULL && (rc = tls_start(c, role)) != 0)
    return rc;
  rc = vigil_tcp_read_start(&c->tcp, on_alloc, on_read);
  if (rc != 0)
    return rc;
  if (vigil_session_want_write(&c->session) ||
      (cx(c)->tls != NULL && vigil_tls_conn_pending(cx(c)->tls) > 0))
    conn_want_flush(c);
  conn_schedule(c);
  return 0;
}

int vigil__conn_close(vigil_conn *c, uint16_t code, const char *reason, const char *detail,
                      uint32_t timeout_ms) {
  size_t n = reason != NULL ? strlen(reason) : 0;
  vigil__conn_ext *x;
  if (c->phase == VIGIL__ZOMBIE || (c->flags & VIGIL__C_CLOSE_REQ))
    return VIGIL_ECLOSED;
  if (n > VIGIL_WIRE_MAX_REASON || (n > 0 && !vigil_utf8_valid((const uint8_t *)reason, n)))
    return VIGIL_EINVAL;
  if (c->phase != VIGIL__OPEN) {
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, code, reason, 0, detail);
    return 0;
  }
  if ((x = conn_ext(c)) == NULL)
    return VIGIL_ENOMEM;
  free(x->close_reason);
  x->close_reason = NULL;
  if (reason != NULL) {
    if ((x->close_reason = malloc(n + 1)) == NULL) {
      conn_trim(c);
      return VIGIL_ENOMEM;
    }
    memcpy(x->close_reason, reason, n + 1);
  }
  x->close_code = code;
  x->close_retry_ms = 0;
  x->local_detail = detail;
  c->flags |= VIGIL__C_CLOSE_REQ;
  x->drain_ms = vigil__after_ms(c->owner->loop, timeout_ms ? timeout_ms : VIGIL__DRAIN_MS);
  conn_want_flush(c);
  conn_schedule(c);
  return 0;
}

/* ---- addresses ---------------------------------------------------------- */

void vigil__conn_peer_load(vigil_conn *c) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (vigil_tcp_peername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (len > (int)sizeof c->peer.b)
    len = (int)sizeof c->peer.b;
  memcpy(c->peer.b, &ss, (size_t)len);
}

void vigil__conn_peer_text(const vigil_conn *c, char *buf, size_t size) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, c->peer.b, sizeof c->peer.b);
  if (vigil_ip_format((const struct sockaddr *)&ss, buf, size) < 0 && size > 1) {
    buf[0] = '?';
    buf[1] = '\0';
  }
}

size_t vigil__conn_addr_key(const vigil_conn *c, uint8_t key[17]) {
  struct sockaddr_storage ss;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, c->peer.b, sizeof c->peer.b);
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    key[0] = 4;
    memcpy(key + 1, &in->sin_addr, 4);
    return 5;
  }
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    const uint8_t *a = (const uint8_t *)&in6->sin6_addr;
    if (memcmp(a, mapped, sizeof mapped) == 0) {
      key[0] = 4;
      memcpy(key + 1, a + 12, 4);
      return 5;
    }
    key[0] = 6;
    memcpy(key + 1, a, 16);
    return 17;
  }
  return 0;
}

/* ---- public connection API ---------------------------------------------- */

int vigil_conn_send(vigil_conn *c, const void *msg, size_t len) {
  vigil__owner *o;
  vigil__conn_ext *x;
  vigil__msg *m;
  if (c == NULL || (msg == NULL && len > 0))
    return VIGIL_EINVAL;
  o = c->owner;
  if (c->phase == VIGIL__ZOMBIE || (c->flags & VIGIL__C_CLOSE_REQ))
    return VIGIL_ECLOSED;
  if (o->server != NULL && c->phase != VIGIL__OPEN)
    return VIGIL_ENOTCONN;
  if (c->phase != VIGIL__CONNECTING && len > vigil_session_get_max_message(&c->session))
    return VIGIL_EMSGSIZE; /* while connecting, checked when framed */
  if ((x = conn_ext(c)) == NULL)
    return VIGIL_ENOMEM;
  if (x->qbytes + len > o->max_queue_bytes || len > o->max_queue_bytes) {
    if (x->qstrikes < UINT32_MAX)
      x->qstrikes++;
    if (o->server != NULL && o->queue_full_strikes != VIGIL_NO_LIMIT &&
        x->qstrikes >= o->queue_full_strikes)
      vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_QUEUE_FULL, NULL, 0,
                       "outbound queue kept overflowing");
    return VIGIL_EQUEUEFULL;
  }
  if (vigil__budget_charge(c, len) != 0)
    return VIGIL_ECLOSED; /* closed for the memory budget */
  if ((m = malloc(sizeof *m + len)) == NULL) {
    vigil__budget_release(c, len);
    conn_trim(c);
    return VIGIL_ENOMEM;
  }
  m->next = NULL;
  m->len = len;
  m->framed = 0;
  m->end_pos = 0;
  if (len > 0)
    memcpy(m->data, msg, len);
  if (x->qtail != NULL)
    x->qtail->next = m;
  else
    x->qhead = m;
  x->qtail = m;
  if (x->qframe == NULL)
    x->qframe = m;
  x->qbytes += len;
  o->m.queued_bytes += len;
  if (c->phase == VIGIL__OPEN)
    conn_want_flush(c);
  return 0;
}

int vigil_conn_close(vigil_conn *c, uint16_t code, const char *reason) {
  if (c == NULL)
    return VIGIL_EINVAL;
  return vigil__conn_close(c, code, reason != NULL ? reason : vigil_close_code_text(code),
                           "closed by the application", 0);
}

void vigil_conn_set_data(vigil_conn *c, void *data) {
  if (c != NULL)
    c->tcp.data = data;
}

void *vigil_conn_get_data(const vigil_conn *c) {
  return c != NULL ? c->tcp.data : NULL;
}

const vigil_tls_conn *vigil_conn_tls(const vigil_conn *c) {
  return c != NULL ? cx(c)->tls : NULL;
}

vigil_server *vigil_conn_server(const vigil_conn *c) {
  return c != NULL ? c->owner->server : NULL;
}

void vigil_conn_get_info(const vigil_conn *c, vigil_conn_info *info) {
  const vigil__msg *m;
  if (c == NULL || info == NULL)
    return;
  memset(info, 0, sizeof *info);
  vigil_session_get_info(&c->session, &info->session);
  info->id = vigil__conn_peer_id(c);
  info->id_len = c->id_len;
  vigil__conn_peer_text(c, info->peer, sizeof info->peer);
  info->queued_bytes = cx(c)->qbytes;
  for (m = cx(c)->qhead; m != NULL; m = m->next)
    info->queued_messages++;
  info->last_rtt_ns = c->last_rtt_ns;
  info->opened_ns = c->phase == VIGIL__OPEN ? c->opened_ns : 0;
  if (c->phase == VIGIL__OPEN)
    (void)keepalive_policy(c->owner, info->session.timeout_ms, &info->keepalive);
}

/* ---- client connect and forced ends -------------------------------------- */

static void on_connect(vigil_connect_req *req, int status) {
  vigil_conn *c = req->data;
  int rc;
  free(req);
  c->x->creq = NULL; /* it was there while connecting */
  conn_trim(c);
  if (c->phase != VIGIL__CONNECTING)
    return; /* killed meanwhile (connect timeout, client closed) */
  vigil_loop_timer_cancel(c->owner->loop, &c->timer);
  if (status != 0) {
    vigil__conn_fail(c, status, NULL);
    return;
  }
  rc = vigil__conn_start(c, VIGIL_ROLE_CLIENT, c->owner->session_cfg);
  if (rc != 0)
    vigil__conn_fail(c, rc, "could not start the session");
}

int vigil__conn_connect(vigil_conn *c, const struct sockaddr *sa, uint32_t timeout_ms) {
  vigil__conn_ext *x = conn_ext(c);
  int rc;
  if (x == NULL || (x->creq = malloc(sizeof *x->creq)) == NULL) {
    conn_trim(c);
    return VIGIL_ENOMEM;
  }
  x->creq->data = c;
  set_phase(c, VIGIL__CONNECTING);
  rc = vigil_tcp_connect(x->creq, &c->tcp, sa, on_connect);
  if (rc != 0) {
    free(x->creq);
    x->creq = NULL;
    conn_trim(c);
    return rc;
  }
  conn_arm(c, vigil__after_ms(c->owner->loop, timeout_ms));
  return 0;
}

void vigil__conn_abort(vigil_conn *c, const char *detail) {
  if (c->phase != VIGIL__ZOMBIE)
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_GOING_AWAY, NULL, 0, detail);
  if (c->phase == VIGIL__ZOMBIE && !vigil_tcp_is_closing(&c->tcp))
    conn_close_socket(c);
}
