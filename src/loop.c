/* The portable half of the event loop.
 *
 * Why a loop of our own at all: vigil's liveness rules depend on the loop
 * in ways a general-purpose loop does not promise. A heartbeat timer must
 * never fire early (a verdict before `timeout` is a bug), every readable
 * byte must reach the session before its timers run (or a pong sitting in
 * the socket buffer loses the race with the deadline it answers), and the
 * loop must notice when it was itself not running -- a stopped process, a
 * long callback, a suspended laptop -- so that nobody is convicted for our
 * own silence. Hence the fixed order of one iteration (described in
 * include/vigil/loop.h): wait, read the clock and check for a stall, read
 * everything ready, run the wheel, run the deferred flushes, run
 * completions. The clock is read as soon as the wait returns (the platform
 * calls vigil__loop_awake before dispatching), because a frame stamped
 * with the time the wait began would look older than it is, and a verdict
 * computed from it would come early.
 *
 * Operations, not readiness. Like libuv, the public API starts operations
 * (listen, connect, read, write) and reports completions, because that is
 * the only model both readiness APIs (epoll, poll) and completion ports
 * (IOCP) can implement without contortions. The seam is
 * src/loop-internal.h: this file validates arguments, keeps handle flags
 * and the counters that decide whether the loop is alive, queues writes,
 * and runs callbacks for completed requests; the platform (src/unix/ or
 * src/win/) starts operations and reports their completion. On POSIX a
 * small readiness-to-completion layer (src/unix/tcp.c) sits on a poller
 * chosen at run time (epoll or poll), so one test suite covers both.
 *
 * Memory. The caller owns every handle and request. A write or connect
 * callback runs in the completion phase, never from inside the call that
 * started it, so a callback never re-enters the caller unexpectedly. A
 * closed handle's memory is the library's until its close callback, which
 * runs after every cancelled request's callback.
 *
 * Time. The loop caches CLOCK_MONOTONIC once per iteration (nanoseconds;
 * the wheel's ticks are that time in whole milliseconds). The wait before
 * the next timer is rounded up to the next millisecond, so the wheel, which
 * fires a timer when now_ms >= expiry, is never early; it may be late by
 * the scheduler's latency. Stalls are measured from one stall check to the
 * next, against the wait the loop planned in between: anything beyond
 * planned + threshold was time the loop was not running (slow callbacks,
 * SIGSTOP, an overloaded machine). A suspend does not advance MONOTONIC on
 * Linux, so it is seen instead as BOOTTIME - MONOTONIC growing. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif

#include "abi.h"
#include "loop-internal.h"

#define NS_PER_MS ((uint64_t)1000000)
#define DEFAULT_STALL_THRESHOLD_MS 500u
/* planned_timeout_ms after a run that left nothing to do. */
#define RESTART_BASELINE (-2)

/* ---- loop ----------------------------------------------------------------- */

void vigil_loop_options_init_sized(vigil_loop_options *opts, size_t size) {
  vigil_loop_options def;
  memset(&def, 0, sizeof def);
  vigil__opts_init(opts, size, &def, sizeof def);
}

/* VIGIL_BACKEND=epoll|poll|iocp picks the backend when the options leave
 * it to us; an unknown name is an error rather than a silent default, so a
 * test run meant for poll cannot quietly test epoll. */
static int resolve_backend(vigil_backend asked, vigil_backend *out) {
  const char *env;
  if (asked != VIGIL_BACKEND_DEFAULT) {
    if ((unsigned)asked > (unsigned)VIGIL_BACKEND_IOCP)
      return VIGIL_EINVAL;
    *out = asked;
    return 0;
  }
  env = getenv("VIGIL_BACKEND");
  if (env == NULL || env[0] == '\0')
    *out = vigil__plat_default_backend();
  else if (strcmp(env, "epoll") == 0)
    *out = VIGIL_BACKEND_EPOLL;
  else if (strcmp(env, "poll") == 0)
    *out = VIGIL_BACKEND_POLL;
  else if (strcmp(env, "iocp") == 0)
    *out = VIGIL_BACKEND_IOCP;
  else
    return VIGIL_EINVAL;
  return 0;
}

uint64_t vigil_clock_os(void *arg, vigil_clock_id id) {
  return vigil__plat_clock(arg, id);
}

static uint64_t read_clock(const vigil_loop *loop, vigil_clock_id id) {
  return loop->clock(loop->clock_arg, id);
}

static uint64_t boot_offset(const vigil_loop *loop, uint64_t mono) {
  uint64_t boot = read_clock(loop, VIGIL_CLOCK_BOOTTIME);
  return boot > mono ? boot - mono : 0;
}

int vigil_loop_init(vigil_loop *loop, const vigil_loop_options *opts) {
  vigil_loop_options defaults;
  vigil_backend backend;
  int err;

  if (loop == NULL)
    return VIGIL_EINVAL;
  vigil_loop_options_init(&defaults);
  if (opts != NULL && (err = vigil__opts_read(&defaults, sizeof defaults, opts)) != 0)
    return err;
  opts = &defaults;
  err = resolve_backend(opts->backend, &backend);
  if (err != 0)
    return err;
  memset(loop, 0, sizeof *loop);
  loop->clock = opts->clock != NULL ? opts->clock : vigil__plat_clock;
  loop->clock_arg = opts->clock_arg;
  loop->stall_threshold_ns =
      (uint64_t)(opts->stall_threshold_ms != 0 ? opts->stall_threshold_ms
                                               : DEFAULT_STALL_THRESHOLD_MS) *
      NS_PER_MS;
  loop->planned_timeout_ms = -1;
  vigil__queue_init(&loop->done_reqs);
  loop->closing = NULL;
  loop->closing_tail = &loop->closing;
  vigil__queue_init(&loop->defers);
  vigil__queue_init(&loop->stall_watchers);
  vigil__queue_init(&loop->asyncs);
  loop->wake_fd[0] = -1;
  loop->wake_fd[1] = -1;
  loop->now_ns = read_clock(loop, VIGIL_CLOCK_MONOTONIC);
  loop->last_check_ns = loop->now_ns;
  loop->boot_offset_ns = boot_offset(loop, loop->now_ns);
  vigil_wheel_init(&loop->wheel, loop->now_ns / NS_PER_MS);
  loop->backend = backend;
  err = vigil__posts_init(loop, opts->post_queue_max);
  if (err != 0)
    return err;
  err = vigil__plat_init(loop, backend);
  if (err != 0)
    vigil__posts_free(loop);
  return err;
}

int vigil_loop_close(vigil_loop *loop) {
  if (loop->nhandles != 0 || !vigil__queue_empty(&loop->done_reqs) || loop->closing != NULL ||
      vigil__posts_waiting(loop))
    return VIGIL_EBUSY;
  vigil__plat_close(loop);
  vigil__posts_free(loop);
  loop->plat = NULL;
  loop->plat_ops = NULL;
  return 0;
}

static int has_pending(const vigil_loop *loop) {
  return !vigil__queue_empty(&loop->defers) || !vigil__queue_empty(&loop->done_reqs) ||
         loop->closing != NULL;
}

int vigil_loop_alive(const vigil_loop *loop) {
  return loop->active_handles != 0 || loop->active_reqs != 0 || loop->wheel.count != 0 ||
         has_pending(loop) || vigil__posts_waiting(loop);
}

void vigil_loop_stop(vigil_loop *loop) {
  loop->stop_flag = 1;
}

uint64_t vigil_loop_now_ns(const vigil_loop *loop) {
  return loop->now_ns;
}

uint64_t vigil_loop_now_ms(const vigil_loop *loop) {
  return loop->now_ns / NS_PER_MS;
}

void vigil_loop_update_time(vigil_loop *loop) {
  uint64_t t = read_clock(loop, VIGIL_CLOCK_MONOTONIC);
  if (t > loop->now_ns)
    loop->now_ns = t;
}

const char *vigil_loop_backend_name(const vigil_loop *loop) {
  return vigil__plat_name(loop);
}

/* How long the next wait may block: 0 when something is already waiting
 * to run, -1 (forever) when no timer is armed, else the time to the wheel's
 * next expiry rounded up to whole milliseconds. */
static int wait_timeout(const vigil_loop *loop) {
  uint64_t next, deadline, ms;
  if (loop->stop_flag || has_pending(loop))
    return 0;
  next = vigil_wheel_next_expiry(&loop->wheel);
  if (next == UINT64_MAX)
    return -1;
  if (next > UINT64_MAX / NS_PER_MS)
    return INT_MAX;
  deadline = next * NS_PER_MS;
  if (deadline <= loop->now_ns)
    return 0;
  ms = (deadline - loop->now_ns + NS_PER_MS - 1) / NS_PER_MS;
  return ms > (uint64_t)INT_MAX ? INT_MAX : (int)ms;
}

static void notify_stall(vigil_loop *loop, uint64_t stall_ns, vigil_stall_kind kind) {
  vigil__queue todo, *q;
  vigil_stall_watch *w;
  /* Walk a detached copy so a callback may stop any watcher (it is then
   * unlinked from `todo`) or start one (it joins the loop's list and waits
   * for the next stall). */
  vigil__queue_move(&loop->stall_watchers, &todo);
  while (!vigil__queue_empty(&todo)) {
    q = todo.next;
    vigil__queue_remove(q);
    vigil__queue_insert_tail(&loop->stall_watchers, q);
    w = vigil_container_of(q, vigil_stall_watch, link);
    w->cb(loop, w, stall_ns, kind);
  }
}

static void check_stall(vigil_loop *loop) {
  uint64_t elapsed = loop->now_ns - loop->last_check_ns;
  uint64_t planned, offset;

  if (loop->planned_timeout_ms >= 0) {
    planned = (uint64_t)loop->planned_timeout_ms * NS_PER_MS;
    if (elapsed > planned + loop->stall_threshold_ns)
      notify_stall(loop, elapsed - planned, VIGIL_STALL_GAP);
  }
  offset = boot_offset(loop, loop->now_ns);
  if (offset > loop->boot_offset_ns + loop->stall_threshold_ns)
    notify_stall(loop, offset - loop->boot_offset_ns, VIGIL_STALL_SUSPEND);
  loop->boot_offset_ns = offset;
  loop->last_check_ns = loop->now_ns;
}

void vigil__loop_awake(vigil_loop *loop) {
  if (loop->awake)
    return;
  loop->awake = 1;
  vigil_loop_update_time(loop);
  check_stall(loop);
}

static void fire_timer(vigil_timer *node, void *arg) {
  vigil_loop_timer *t = vigil_container_of(node, vigil_loop_timer, node);
  t->cb((vigil_loop *)arg, t);
}

static void run_defers(vigil_loop *loop) {
  vigil__queue todo, *q;
  vigil_defer *d;
  /* Detached, so a defer queued from here runs in the next iteration and a
   * callback that keeps re-queueing itself cannot starve the loop. */
  vigil__queue_move(&loop->defers, &todo);
  while (!vigil__queue_empty(&todo)) {
    q = todo.next;
    vigil__queue_remove(q);
    d = vigil_container_of(q, vigil_defer, link);
    d->cb(loop, d);
  }
}

static void complete_req(vigil_loop *loop, vigil__req *r) {
  vigil_write_req *w;
  vigil_connect_req *c;

  loop->active_reqs--;
  if (r->type == VIGIL__REQ_WRITE) {
    w = vigil_container_of(r, vigil_write_req, req);
    if (w->bufs != w->bufsml)
      free(w->bufs);
    w->bufs = NULL;
    if (w->cb != NULL)
      w->cb(w, r->status);
  } else {
    c = vigil_container_of(r, vigil_connect_req, req);
    c->cb(c, r->status);
  }
}

/* Completions of this iteration: request callbacks first, then close
 * callbacks, so a handle's cancelled writes are reported before it is
 * declared closed (and its memory may go). */
static void run_completions(vigil_loop *loop) {
  vigil__queue reqs, *q;
  vigil_tcp *tcp, *closed = loop->closing;

  vigil__queue_move(&loop->done_reqs, &reqs);
  loop->closing = NULL;
  loop->closing_tail = &loop->closing;
  while (!vigil__queue_empty(&reqs)) {
    q = reqs.next;
    vigil__queue_remove(q);
    complete_req(loop, vigil_container_of(q, vigil__req, link));
  }
  while (closed != NULL) {
    tcp = closed;
    closed = tcp->close_next;
    tcp->flags |= VIGIL__TCP_CLOSED;
    loop->nhandles--;
    if (tcp->close_cb != NULL)
      tcp->close_cb(tcp);
  }
}

int vigil_loop_run(vigil_loop *loop, vigil_run_mode mode) {
  int alive, timeout, err = 0;

  alive = vigil_loop_alive(loop);
  if (!alive || loop->planned_timeout_ms == RESTART_BASELINE) {
    vigil_loop_update_time(loop);
    loop->last_check_ns = loop->now_ns;
    loop->boot_offset_ns = boot_offset(loop, loop->now_ns);
    loop->planned_timeout_ms = -1;
  }
  while (alive && !loop->stop_flag) {
    vigil_loop_update_time(loop);
    timeout = mode == VIGIL_RUN_NOWAIT ? 0 : wait_timeout(loop);
    loop->planned_timeout_ms = timeout;
    loop->awake = 0;
    err = vigil__plat_poll(loop, timeout);
    vigil__loop_awake(loop);
    /* Reading may have taken a while: timers go by the time now. */
    vigil_loop_update_time(loop);
    vigil_wheel_advance(&loop->wheel, loop->now_ns / NS_PER_MS, fire_timer, loop);
    run_defers(loop);
    run_completions(loop);
    alive = vigil_loop_alive(loop);
    if (err != 0 || mode != VIGIL_RUN_DEFAULT)
      break;
  }
  loop->stop_flag = 0;
  /* With nothing left there is nobody to protect: the time until the next
   * run (maybe much later) is not a stall, so that run starts afresh. */
  if (!alive)
    loop->planned_timeout_ms = RESTART_BASELINE;
  if (err != 0)
    return err;
  return alive ? 1 : 0;
}

/* ---- timers, defers, stall watchers --------------------------------------- */

void vigil_loop_timer_init(vigil_loop_timer *t) {
  vigil_timer_init(&t->node);
  t->cb = NULL;
}

void vigil_loop_timer_arm(vigil_loop *loop, vigil_loop_timer *t, uint64_t expires_ms,
                          vigil_loop_timer_cb cb) {
  t->cb = cb;
  vigil_wheel_arm(&loop->wheel, &t->node, expires_ms);
}

void vigil_loop_timer_cancel(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_wheel_cancel(&loop->wheel, &t->node);
}

int vigil_loop_timer_armed(const vigil_loop_timer *t) {
  return vigil_timer_armed(&t->node);
}

void vigil_defer_init(vigil_defer *d, vigil_defer_cb cb) {
  vigil__queue_init(&d->link);
  d->cb = cb;
}

void vigil_loop_defer(vigil_loop *loop, vigil_defer *d) {
  if (vigil__queue_empty(&d->link))
    vigil__queue_insert_tail(&loop->defers, &d->link);
}

void vigil_loop_defer_cancel(vigil_loop *loop, vigil_defer *d) {
  (void)loop;
  vigil__queue_remove(&d->link);
}

int vigil_defer_queued(const vigil_defer *d) {
  return !vigil__queue_empty(&d->link);
}

void vigil_loop_stall_start(vigil_loop *loop, vigil_stall_watch *w, vigil_stall_cb cb) {
  w->cb = cb;
  if (w->link.next == NULL)
    vigil__queue_init(&w->link);
  if (vigil__queue_empty(&w->link))
    vigil__queue_insert_tail(&loop->stall_watchers, &w->link);
}

void vigil_loop_stall_stop(vigil_loop *loop, vigil_stall_watch *w) {
  (void)loop;
  if (w->link.next != NULL)
    vigil__queue_remove(&w->link);
}

/* ---- TCP ------------------------------------------------------------------ */

vigil_buf vigil_buf_init(char *base, size_t len) {
  vigil_buf b;
  b.base = base;
#if defined(_WIN32)
  b.len = len > (size_t)ULONG_MAX ? ULONG_MAX : (unsigned long)len;
#else
  b.len = len;
#endif
  return b;
}

static int is_active(unsigned flags) {
  return (flags & VIGIL__TCP_CLOSING) == 0 &&
         (flags & (VIGIL__TCP_LISTENING | VIGIL__TCP_READING | VIGIL__TCP_WATCH_R |
                   VIGIL__TCP_WATCH_W)) != 0;
}

/* Every flag change goes through here so loop->active_handles stays the
 * number of handles that keep the loop alive. */
static void set_flags(vigil_tcp *tcp, unsigned set, unsigned clear) {
  int was = is_active(tcp->flags);
  int now;
  tcp->flags = (tcp->flags | set) & ~clear;
  now = is_active(tcp->flags);
  if (now && !was)
    tcp->loop->active_handles++;
  else if (was && !now)
    tcp->loop->active_handles--;
}

int vigil_tcp_init(vigil_loop *loop, vigil_tcp *tcp) {
  if (loop == NULL || tcp == NULL)
    return VIGIL_EINVAL;
  memset(tcp, 0, sizeof *tcp);
  tcp->loop = loop;
  tcp->socket = VIGIL_INVALID_SOCKET;
  vigil__queue_init(&tcp->write_queue);
  vigil__tcp_plat_init(tcp);
  loop->nhandles++;
  return 0;
}

int vigil_tcp_bind_listen(vigil_tcp *tcp, const struct sockaddr *addr, int backlog, unsigned flags,
                          vigil_connection_cb cb) {
  int len, err;
  if (tcp == NULL || addr == NULL || cb == NULL || tcp->flags != 0 ||
      tcp->socket != VIGIL_INVALID_SOCKET ||
      (flags & ~(VIGIL_TCP_REUSEPORT | VIGIL_TCP_IPV6ONLY)) != 0)
    return VIGIL_EINVAL;
  len = vigil_ip_len(addr);
  if (len == 0)
    return VIGIL_EAFNOSUPPORT;
  tcp->on.connection = cb;
  set_flags(tcp, VIGIL__TCP_LISTENING, 0);
  err = vigil__tcp_listen(tcp, addr, len, backlog, flags);
  if (err != 0) {
    set_flags(tcp, 0, VIGIL__TCP_LISTENING);
    tcp->on.connection = NULL;
  }
  return err;
}

int vigil_tcp_accept(vigil_tcp *server, vigil_tcp *client) {
  int err;
  if (server == NULL || client == NULL || (server->flags & VIGIL__TCP_LISTENING) == 0 ||
      client->flags != 0 || client->socket != VIGIL_INVALID_SOCKET)
    return VIGIL_EINVAL;
  err = vigil__tcp_accept(server, client);
  if (err == 0)
    set_flags(client, VIGIL__TCP_CONNECTED, 0);
  return err;
}

int vigil_tcp_accept_drop(vigil_tcp *server) {
  if (server == NULL || (server->flags & VIGIL__TCP_LISTENING) == 0)
    return VIGIL_EINVAL;
  return vigil__tcp_accept_drop(server);
}

int vigil_tcp_connect(vigil_connect_req *req, vigil_tcp *tcp, const struct sockaddr *addr,
                      vigil_connect_cb cb) {
  int len, err;
  if (req == NULL || tcp == NULL || addr == NULL || cb == NULL ||
      (tcp->flags & (VIGIL__TCP_LISTENING | VIGIL__TCP_CONNECTING | VIGIL__TCP_CONNECTED |
                     VIGIL__TCP_CLOSING)) != 0)
    return VIGIL_EINVAL;
  len = vigil_ip_len(addr);
  if (len == 0)
    return VIGIL_EAFNOSUPPORT;
  memset(&req->req, 0, sizeof req->req);
  vigil__queue_init(&req->req.link);
  req->req.type = VIGIL__REQ_CONNECT;
  req->handle = tcp;
  req->cb = cb;
  tcp->connect_req = req;
  set_flags(tcp, VIGIL__TCP_CONNECTING, 0);
  tcp->loop->active_reqs++;
  err = vigil__tcp_connect(req, addr, len);
  if (err != 0) {
    tcp->loop->active_reqs--;
    tcp->connect_req = NULL;
    set_flags(tcp, 0, VIGIL__TCP_CONNECTING);
  }
  return err;
}

int vigil_tcp_read_start(vigil_tcp *tcp, vigil_alloc_cb alloc_cb, vigil_read_cb read_cb) {
  int err;
  if (tcp == NULL || alloc_cb == NULL || read_cb == NULL ||
      (tcp->flags & (VIGIL__TCP_CLOSING | VIGIL__TCP_LISTENING)) != 0)
    return VIGIL_EINVAL;
  if ((tcp->flags & VIGIL__TCP_CONNECTED) == 0)
    return VIGIL_ENOTCONN;
  if ((tcp->flags & VIGIL__TCP_READING) != 0)
    return VIGIL_EALREADY;
  tcp->alloc_cb = alloc_cb;
  tcp->on.read = read_cb;
  set_flags(tcp, VIGIL__TCP_READING, 0);
  err = vigil__tcp_read_start(tcp);
  if (err != 0)
    set_flags(tcp, 0, VIGIL__TCP_READING);
  return err;
}

int vigil_tcp_read_stop(vigil_tcp *tcp) {
  if (tcp == NULL || (tcp->flags & VIGIL__TCP_READING) == 0)
    return 0;
  set_flags(tcp, 0, VIGIL__TCP_READING);
  if ((tcp->flags & VIGIL__TCP_CLOSING) == 0)
    vigil__tcp_read_stop(tcp);
  return 0;
}

void vigil__read_cb_at(vigil_tcp *tcp, long nread, const vigil_buf *buf, uint64_t rx_ns) {
  vigil_loop *loop = tcp->loop;
  vigil_buf empty;
  if (nread < 0)
    vigil_tcp_read_stop(tcp);
  if (buf == NULL) {
    memset(&empty, 0, sizeof empty);
    buf = &empty;
  }
  /* Not simply capped at now_ns: bytes read late in a busy iteration may
   * have arrived, even been sent, after it (src/rxstamp.c). */
  loop->rx_ns =
      nread > 0 ? vigil__rx_date(rx_ns, loop->now_ns, loop->clock, loop->clock_arg) : loop->now_ns;
  tcp->on.read(tcp, nread, buf);
  loop->rx_ns = 0;
}

void vigil__read_cb(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  vigil__read_cb_at(tcp, nread, buf, 0);
}

uint64_t vigil_loop_rx_time_ns(const vigil_loop *loop) {
  return loop->rx_ns != 0 ? loop->rx_ns : loop->now_ns;
}

static int stream_state(const vigil_tcp *tcp) {
  if ((tcp->flags & VIGIL__TCP_LISTENING) != 0)
    return VIGIL_EINVAL;
  if ((tcp->flags & VIGIL__TCP_CLOSING) != 0)
    return VIGIL_EPIPE;
  if ((tcp->flags & (VIGIL__TCP_CONNECTED | VIGIL__TCP_CONNECTING)) == 0)
    return VIGIL_ENOTCONN;
  return 0;
}

int vigil_tcp_write(vigil_write_req *req, vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs,
                    vigil_write_cb cb) {
  size_t total = 0;
  unsigned i;
  int err;

  if (req == NULL || tcp == NULL || bufs == NULL || nbufs == 0)
    return VIGIL_EINVAL;
  err = stream_state(tcp);
  if (err != 0)
    return err;
  req->bufs = req->bufsml;
  if (nbufs > VIGIL_WRITE_INLINE_BUFS) {
    req->bufs = malloc(nbufs * sizeof *req->bufs);
    if (req->bufs == NULL)
      return VIGIL_ENOMEM;
  }
  for (i = 0; i < nbufs; i++) {
    if (bufs[i].base == NULL && bufs[i].len != 0) {
      if (req->bufs != req->bufsml)
        free(req->bufs);
      req->bufs = NULL;
      return VIGIL_EINVAL;
    }
    req->bufs[i] = bufs[i];
    total += bufs[i].len;
  }
  memset(&req->req, 0, sizeof req->req);
  vigil__queue_init(&req->req.link);
  req->req.type = VIGIL__REQ_WRITE;
  req->handle = tcp;
  req->cb = cb;
  req->nbufs = nbufs;
  req->index = 0;
  vigil__queue_insert_tail(&tcp->write_queue, &req->req.link);
  tcp->write_queue_size += total;
  tcp->loop->active_reqs++;
  vigil__tcp_write(req);
  return 0;
}

static long try_write(vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs, int last) {
  int err;
  if (tcp == NULL || bufs == NULL || nbufs == 0)
    return VIGIL_EINVAL;
  err = stream_state(tcp);
  if (err != 0)
    return err;
  if ((tcp->flags & VIGIL__TCP_CONNECTING) != 0 || !vigil__queue_empty(&tcp->write_queue))
    return VIGIL_EAGAIN;
  return vigil__tcp_try_write(tcp, bufs, nbufs, last);
}

long vigil_tcp_try_write(vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs) {
  return try_write(tcp, bufs, nbufs, 0);
}

long vigil_tcp_try_write_last(vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs) {
  size_t total = 0;
  long n = try_write(tcp, bufs, nbufs, 1);
  if (n <= 0)
    return n;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  if ((size_t)n == total)
    (void)vigil__tcp_shutdown(tcp); /* the bytes and the FIN leave together */
  return n;
}

size_t vigil_tcp_write_queue_size(const vigil_tcp *tcp) {
  return tcp->write_queue_size;
}

static void close_handle(vigil_tcp *tcp, vigil_close_cb cb, int reset) {
  if (tcp == NULL || (tcp->flags & VIGIL__TCP_CLOSING) != 0)
    return;
  tcp->close_cb = cb;
  set_flags(tcp, VIGIL__TCP_CLOSING, VIGIL__TCP_READING | VIGIL__TCP_LISTENING);
  vigil__tcp_close(tcp, reset);
}

void vigil_tcp_close(vigil_tcp *tcp, vigil_close_cb cb) {
  close_handle(tcp, cb, 0);
}

void vigil_tcp_close_reset(vigil_tcp *tcp, vigil_close_cb cb) {
  close_handle(tcp, cb, 1);
}

int vigil_tcp_is_closing(const vigil_tcp *tcp) {
  return (tcp->flags & VIGIL__TCP_CLOSING) != 0;
}

int vigil_tcp_is_reading(const vigil_tcp *tcp) {
  return (tcp->flags & VIGIL__TCP_READING) != 0;
}

vigil_os_socket vigil_tcp_socket(const vigil_tcp *tcp) {
  return tcp->socket;
}

int vigil_tcp_shutdown(vigil_tcp *tcp) {
  int err;
  if (tcp == NULL)
    return VIGIL_EINVAL;
  err = stream_state(tcp);
  if (err != 0)
    return err;
  if (tcp->socket == VIGIL_INVALID_SOCKET)
    return VIGIL_EBADF;
  if ((tcp->flags & VIGIL__TCP_CONNECTING) != 0 || !vigil__queue_empty(&tcp->write_queue))
    return VIGIL_EAGAIN;
  return vigil__tcp_shutdown(tcp);
}

int vigil_tcp_nodelay(vigil_tcp *tcp, int enable) {
  if (tcp == NULL || tcp->socket == VIGIL_INVALID_SOCKET)
    return VIGIL_EBADF;
  return vigil__tcp_nodelay(tcp, enable != 0);
}

static int tcp_name(const vigil_tcp *tcp, int peer, struct sockaddr *name, int *len) {
  if (tcp == NULL || name == NULL || len == NULL || *len <= 0)
    return VIGIL_EINVAL;
  if (tcp->socket == VIGIL_INVALID_SOCKET)
    return VIGIL_EBADF;
  return vigil__tcp_name(tcp, peer, name, len);
}

int vigil_tcp_sockname(const vigil_tcp *tcp, struct sockaddr *name, int *len) {
  return tcp_name(tcp, 0, name, len);
}

int vigil_tcp_peername(const vigil_tcp *tcp, struct sockaddr *name, int *len) {
  return tcp_name(tcp, 1, name, len);
}

/* ---- completions reported by the platform --------------------------------- */

void vigil__write_progress(vigil_write_req *req, size_t n) {
  req->handle->write_queue_size -= n;
}

void vigil__write_done(vigil_write_req *req, int status) {
  vigil_tcp *tcp = req->handle;
  unsigned i;
  /* Bytes never written leave the queue's count with the request. */
  for (i = req->index; i < req->nbufs; i++)
    tcp->write_queue_size -= req->bufs[i].len;
  req->index = req->nbufs;
  req->req.status = status;
  vigil__queue_remove(&req->req.link);
  vigil__queue_insert_tail(&tcp->loop->done_reqs, &req->req.link);
}

void vigil__connect_done(vigil_connect_req *req, int status) {
  vigil_tcp *tcp = req->handle;
  tcp->connect_req = NULL;
  set_flags(tcp, status == 0 ? VIGIL__TCP_CONNECTED : 0, VIGIL__TCP_CONNECTING);
  req->req.status = status;
  vigil__queue_insert_tail(&tcp->loop->done_reqs, &req->req.link);
}

void vigil__tcp_closed(vigil_tcp *tcp) {
  tcp->close_next = NULL;
  *tcp->loop->closing_tail = tcp;
  tcp->loop->closing_tail = &tcp->close_next;
}

/* ---- descriptor watches ------------------------------------------------- */

int vigil_fd_watch_init(vigil_loop *loop, vigil_fd_watch *w, vigil_os_socket fd) {
  int err;
  if (loop == NULL || w == NULL || fd == VIGIL_INVALID_SOCKET)
    return VIGIL_EINVAL;
  memset(w, 0, sizeof *w);
  vigil_tcp_init(loop, &w->tcp);
  w->tcp.socket = fd;
  w->tcp.flags = VIGIL__TCP_WATCH;
  err = vigil__fd_watch_sync(&w->tcp);
  if (err != 0) { /* no readiness API: the handle never existed */
    w->tcp.socket = VIGIL_INVALID_SOCKET;
    w->tcp.flags = 0;
    loop->nhandles--;
  }
  return err;
}

int vigil_fd_watch_set(vigil_fd_watch *w, unsigned events, vigil_fd_watch_cb cb) {
  unsigned set = 0;
  if (w == NULL || (w->tcp.flags & (VIGIL__TCP_WATCH | VIGIL__TCP_CLOSING)) != VIGIL__TCP_WATCH ||
      (events & ~(VIGIL_FD_READABLE | VIGIL_FD_WRITABLE)) != 0 || (events != 0 && cb == NULL))
    return VIGIL_EINVAL;
  if (events & VIGIL_FD_READABLE)
    set |= VIGIL__TCP_WATCH_R;
  if (events & VIGIL_FD_WRITABLE)
    set |= VIGIL__TCP_WATCH_W;
  w->cb = cb;
  set_flags(&w->tcp, set, (VIGIL__TCP_WATCH_R | VIGIL__TCP_WATCH_W) & ~set);
  return vigil__fd_watch_sync(&w->tcp);
}

void vigil__fd_watch_ready(vigil_tcp *tcp, unsigned events) {
  vigil_fd_watch *w = vigil_container_of(tcp, vigil_fd_watch, tcp);
  unsigned ev = 0;
  if ((tcp->flags & VIGIL__TCP_WATCH_R) != 0 && (events & VIGIL_FD_READABLE) != 0)
    ev |= VIGIL_FD_READABLE;
  if ((tcp->flags & VIGIL__TCP_WATCH_W) != 0 && (events & VIGIL_FD_WRITABLE) != 0)
    ev |= VIGIL_FD_WRITABLE;
  if (ev != 0 && w->cb != NULL)
    w->cb(w, ev);
}

static void fd_watch_closed(vigil_tcp *tcp) {
  vigil_fd_watch *w = vigil_container_of(tcp, vigil_fd_watch, tcp);
  if (w->close_cb != NULL)
    w->close_cb(w);
}

void vigil_fd_watch_close(vigil_fd_watch *w, vigil_fd_watch_close_cb cb) {
  if (w == NULL || (w->tcp.flags & VIGIL__TCP_WATCH) == 0)
    return;
  if ((w->tcp.flags & VIGIL__TCP_CLOSING) == 0)
    w->close_cb = cb;
  close_handle(&w->tcp, fd_watch_closed, 0);
}
