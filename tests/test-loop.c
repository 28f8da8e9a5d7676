/* The event loop on real loopback sockets, once per backend this platform
 * has (epoll and poll on Linux; IOCP on Windows). Every wait is bounded by
 * a guard timer, so a broken loop fails a test instead of hanging it.
 * Timing checks are loose on the slow side (the machine is shared) and
 * strict on the early side (a timer must never fire early). */
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif
#if defined(HAVE_TCP_INFO)
#include <linux/tcp.h> /* tcpi_segs_out: glibc's struct tcp_info stops before it */
#include <stddef.h>
#endif

#include "loop-internal.h" /* the receive-stamp conversion */
#include "task.h"
#include "util-net.h"
#include "util-proc.h" /* util_cpu_wait_ns */
#include "vigil.h"

#define NS_PER_MS ((uint64_t)1000000)
#define GUARD_MS 5000 /* longest any single wait in this file may take */

/* ---- per-backend driver --------------------------------------------------- */

static int open_loop(vigil_loop *loop, vigil_backend b) {
  vigil_loop_options opts;
  vigil_loop_options_init(&opts);
  opts.backend = b;
  return vigil_loop_init(loop, &opts);
}

/* ---- bounded runs --------------------------------------------------------- */

static int guard_fired;

static void on_guard(vigil_loop *loop, vigil_loop_timer *t) {
  (void)t;
  guard_fired = 1;
  vigil_loop_stop(loop);
}

/* Runs iterations until done(arg) says so; 0, or -1 after GUARD_MS. */
static int run_while_not(vigil_loop *loop, int (*done)(const void *), const void *arg) {
  vigil_loop_timer guard;
  vigil_loop_timer_init(&guard);
  guard_fired = 0;
  vigil_loop_update_time(loop);
  vigil_loop_timer_arm(loop, &guard, vigil_loop_now_ms(loop) + GUARD_MS, on_guard);
  while (!done(arg) && !guard_fired)
    (void)vigil_loop_run(loop, VIGIL_RUN_ONCE);
  vigil_loop_timer_cancel(loop, &guard);
  return done(arg) ? 0 : -1;
}

static int flag_set(const void *flag) {
  return *(const int *)flag != 0;
}

/* Runs iterations until *flag is set. */
static int run_until(vigil_loop *loop, const int *flag) {
  return run_while_not(loop, flag_set, flag);
}

/* Runs until nothing is left (handles closed), bounded. */
static int run_to_end(vigil_loop *loop) {
  int i;
  for (i = 0; i < 1000 && vigil_loop_alive(loop); i++)
    (void)vigil_loop_run(loop, VIGIL_RUN_NOWAIT);
  return vigil_loop_alive(loop) ? -1 : 0;
}

/* ---- endpoints ------------------------------------------------------------ */

/* One side of a connection: collects what it reads. */
typedef struct endpoint {
  vigil_tcp tcp;
  char *data;
  size_t len, cap;
  int status; /* last negative read status, 0 if none */
  int closed; /* close callback ran */
  int connected;
  int connect_status;
  char scratch[65536];
} endpoint;

static void ep_alloc(vigil_tcp *tcp, size_t suggested, vigil_buf *buf) {
  endpoint *ep = vigil_container_of(tcp, endpoint, tcp);
  (void)suggested;
  *buf = vigil_buf_init(ep->scratch, sizeof ep->scratch);
}

static void ep_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  endpoint *ep = vigil_container_of(tcp, endpoint, tcp);
  size_t n;
  if (nread < 0) {
    ep->status = (int)nread;
    return;
  }
  n = (size_t)nread;
  if (ep->len + n > ep->cap) {
    size_t cap = ep->cap != 0 ? ep->cap : 4096;
    char *p;
    while (cap < ep->len + n)
      cap *= 2;
    p = realloc(ep->data, cap);
    if (p == NULL)
      abort();
    ep->data = p;
    ep->cap = cap;
  }
  memcpy(ep->data + ep->len, buf->base, n);
  ep->len += n;
}

static void ep_closed(vigil_tcp *tcp) {
  endpoint *ep = vigil_container_of(tcp, endpoint, tcp);
  ep->closed = 1;
}

static void ep_free(endpoint *ep) {
  free(ep->data);
  ep->data = NULL;
  ep->len = ep->cap = 0;
}

static endpoint *accept_into;
static int accept_status = 1;
static int accept_calls;

static void on_connection(vigil_tcp *server, int status) {
  accept_calls++;
  accept_status = status;
  if (status == 0 && accept_into != NULL) {
    accept_status = vigil_tcp_accept(server, &accept_into->tcp);
    if (accept_status == 0)
      accept_into->connected = 1;
    accept_into = NULL;
  }
}

static void on_connect(vigil_connect_req *req, int status) {
  endpoint *ep = req->data;
  ep->connect_status = status;
  ep->connected = status == 0 ? 1 : -1;
}

static void loopback4(struct sockaddr_storage *ss, uint16_t port) {
  struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
  memset(ss, 0, sizeof *ss);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = htons(port);
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
}

/* Listens on `bind_addr` (port 0) and leaves the bound address in *out. */
static int listen_on(vigil_loop *loop, vigil_tcp *lst, struct sockaddr_storage *bind_addr,
                     unsigned flags, struct sockaddr_storage *out) {
  int len = (int)sizeof *out, err;
  err = vigil_tcp_init(loop, lst);
  if (err != 0)
    return err;
  err = vigil_tcp_bind_listen(lst, (const struct sockaddr *)bind_addr, 16, flags, on_connection);
  if (err != 0)
    return err;
  return vigil_tcp_sockname(lst, (struct sockaddr *)out, &len);
}

/* A connected pair through `lst`: c (client side) and s (server side). */
static int connect_pair(vigil_loop *loop, vigil_tcp *lst, const struct sockaddr_storage *to,
                        endpoint *c, endpoint *s) {
  static vigil_connect_req req;
  ASSERT_EQ(vigil_tcp_init(loop, &c->tcp), 0);
  ASSERT_EQ(vigil_tcp_init(loop, &s->tcp), 0);
  accept_into = s;
  accept_status = 1;
  req.data = c;
  ASSERT_EQ(vigil_tcp_connect(&req, &c->tcp, (const struct sockaddr *)to, on_connect), 0);
  ASSERT_EQ(run_until(loop, &c->connected), 0);
  ASSERT_EQ(c->connect_status, 0);
  ASSERT_EQ(run_until(loop, &s->connected), 0);
  ASSERT_EQ(accept_status, 0);
  (void)lst;
  return 0;
}

/* Listener + pair on 127.0.0.1. */
static int make_pair(vigil_loop *loop, vigil_tcp *lst, endpoint *c, endpoint *s) {
  struct sockaddr_storage any, bound;
  loopback4(&any, 0);
  ASSERT_EQ(listen_on(loop, lst, &any, 0, &bound), 0);
  ASSERT_NE(port_of(&bound), 0);
  return connect_pair(loop, lst, &bound, c, s);
}

static int write_done_count, write_status = 1;

static void on_write(vigil_write_req *req, int status) {
  (void)req;
  write_done_count++;
  write_status = status;
}

/* Written bytes must outlive the write, so they are copied here. */
static char text_store[4][64];
static unsigned text_next;

static int send_text(vigil_tcp *tcp, vigil_write_req *req, const char *text) {
  char *copy = text_store[text_next++ % 4];
  vigil_buf b;
  size_t n = strlen(text);
  if (n >= sizeof text_store[0])
    return VIGIL_EINVAL;
  memcpy(copy, text, n + 1);
  b = vigil_buf_init(copy, n);
  return vigil_tcp_write(req, tcp, &b, 1, on_write);
}

static size_t bytes_wanted;

static int has_bytes(const void *arg) {
  const endpoint *ep = arg;
  return ep->len >= bytes_wanted || ep->status != 0;
}

static int has_status(const void *arg) {
  return ((const endpoint *)arg)->status != 0;
}

/* Runs until ep has at least n bytes (or a read error stops it). */
static int run_until_bytes(vigil_loop *loop, endpoint *ep, size_t n) {
  bytes_wanted = n;
  (void)run_while_not(loop, has_bytes, ep);
  return ep->len >= n ? 0 : -1;
}

/* Runs until ep's reading ends with EOF or an error. */
static int run_until_status(vigil_loop *loop, endpoint *ep) {
  return run_while_not(loop, has_status, ep);
}

/* Completion order of writes and closes, for the tests that check it. */
static int order_log[8];
static int order_len;

static void log_event(int ev) {
  if (order_len < (int)(sizeof order_log / sizeof order_log[0]))
    order_log[order_len++] = ev;
}

/* ---- cases ---------------------------------------------------------------- */

static endpoint E1, E2;

/* Closes E1, E2 and their listener, runs the loop to its end, closes it. */
static int close_pair(vigil_loop *loop, vigil_tcp *lst) {
  vigil_tcp_close(&E1.tcp, NULL);
  vigil_tcp_close(&E2.tcp, NULL);
  vigil_tcp_close(lst, NULL);
  ASSERT_EQ(run_to_end(loop), 0);
  ASSERT_EQ(vigil_loop_close(loop), 0);
  ep_free(&E2);
  return 0;
}

static int case_echo(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w1, w2;
  struct sockaddr_storage name;
  char text[VIGIL_ADDRSTRLEN];
  int len = (int)sizeof name;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  write_done_count = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_nodelay(&E1.tcp, 1), 0);
  ASSERT_NE(vigil_tcp_socket(&E1.tcp), VIGIL_INVALID_SOCKET);
  ASSERT_EQ(vigil_tcp_peername(&E2.tcp, (struct sockaddr *)&name, &len), 0);
  ASSERT_GT(vigil_ip_format((struct sockaddr *)&name, text, sizeof text), 0);
  ASSERT_EQ(strncmp(text, "127.0.0.1:", 10), 0);

  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), VIGIL_EALREADY);
  ASSERT_EQ(vigil_tcp_read_start(&E1.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(send_text(&E1.tcp, &w1, "hello"), 0);
  ASSERT_EQ(write_done_count, 0); /* never from inside the call */
  ASSERT_EQ(run_until_bytes(&loop, &E2, 5), 0);
  ASSERT_MEM_EQ(E2.data, "hello", 5);
  ASSERT_EQ(write_done_count, 1);
  ASSERT_EQ(write_status, 0);
  ASSERT_EQ(send_text(&E2.tcp, &w2, "world!"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E1, 6), 0);
  ASSERT_MEM_EQ(E1.data, "world!", 6);

  /* A clean close reads as EOF on the other side. */
  vigil_tcp_close(&E1.tcp, ep_closed);
  ASSERT_EQ(vigil_tcp_is_closing(&E1.tcp), 1);
  ASSERT_EQ(send_text(&E1.tcp, &w1, "late"), VIGIL_EPIPE);
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_EOF);
  ASSERT_EQ(E1.closed, 1);
  vigil_tcp_close(&E2.tcp, ep_closed);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(vigil_loop_close(&loop), VIGIL_EBUSY); /* close callbacks pending */
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(E2.closed, 1);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ep_free(&E1);
  ep_free(&E2);
  return 0;
}

TEST_IMPL(loop_echo_and_eof) {
  return util_for_each_backend(case_echo, "echo");
}

/* vigil_tcp_shutdown ends one direction: the peer reads our last bytes
 * then EOF, and can still send to us (a lingering close depends on it). */
static int case_shutdown(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst, idle;
  vigil_write_req w1, w2;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(vigil_tcp_shutdown(NULL), VIGIL_EINVAL);
  ASSERT_EQ(vigil_tcp_init(&loop, &idle), 0);
  ASSERT_EQ(vigil_tcp_shutdown(&idle), VIGIL_ENOTCONN);
  vigil_tcp_close(&idle, NULL);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E1.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(send_text(&E1.tcp, &w1, "last"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E2, 4), 0);
  ASSERT_EQ(vigil_tcp_shutdown(&E1.tcp), 0);
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_EOF); /* after our bytes, not instead of them */
  ASSERT_MEM_EQ(E2.data, "last", 4);
  ASSERT_EQ(E1.status, 0); /* still reading */
  ASSERT_EQ(send_text(&E2.tcp, &w2, "after"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E1, 5), 0);
  ASSERT_MEM_EQ(E1.data, "after", 5);
  vigil_tcp_close(&E2.tcp, ep_closed);
  ASSERT_EQ(run_until_status(&loop, &E1), 0);
  ASSERT_EQ(E1.status, VIGIL_EOF);
  vigil_tcp_close(&E1.tcp, ep_closed);
  ASSERT_EQ(vigil_tcp_shutdown(&E1.tcp), VIGIL_EPIPE); /* closing */
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(E1.closed + E2.closed, 2);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ep_free(&E1);
  ep_free(&E2);
  return 0;
}

TEST_IMPL(loop_shutdown_ends_one_direction) {
  return util_for_each_backend(case_shutdown, "shutdown");
}

/* Segments the socket has sent (Linux TCP_INFO), -1 where the OS does not
 * say (the generic POSIX build has no TCP_INFO). */
static long segs_out(const vigil_tcp *tcp) {
#if defined(HAVE_TCP_INFO)
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(vigil_tcp_socket(tcp), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_segs_out) + sizeof ti.tcpi_segs_out)
    return -1;
  return (long)ti.tcpi_segs_out;
#else
  (void)tcp;
  return -1;
#endif
}

/* vigil_tcp_try_write_last: the peer reads the bytes, then EOF, and can
 * still send to us. On Linux the bytes and the FIN leave in one segment
 * (MSG_MORE, then the FIN tacked on); try_write + shutdown send two. */
static int case_write_last(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w;
  char bye_text[] = "bye";
  vigil_buf bye = vigil_buf_init(bye_text, 3), many[65];
  static char many_text[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!";
  long before, after;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E1.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_try_write_last(NULL, &bye, 1), VIGIL_EINVAL);
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, &bye, 0), VIGIL_EINVAL);
  /* More buffers than one call takes (64): what it writes is not the last,
   * so it is neither held back nor followed by a FIN. */
  for (unsigned i = 0; i < 65; i++)
    many[i] = vigil_buf_init(many_text + i, 1);
  before = segs_out(&E1.tcp);
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, many, 65), 64);
  after = segs_out(&E1.tcp);
  if (before >= 0)
    ASSERT_EQ(after - before, 1); /* sent now, not corked (Linux would send it 200 ms later) */
  ASSERT_EQ(run_until_bytes(&loop, &E2, 64), 0);
  ASSERT_MEM_EQ(E2.data, many_text, 64);
  ASSERT_EQ(E2.status, 0);
  before = segs_out(&E1.tcp);
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, &bye, 1), 3);
  after = segs_out(&E1.tcp);
#if defined(HAVE_TCP_INFO)
  ASSERT_GE(before, 0); /* Linux counts them */
#endif
  if (before >= 0)
    ASSERT_EQ(after - before, 1); /* "bye" and the FIN together */
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_EOF);
  ASSERT_UEQ(E2.len, 64 + 3);
  ASSERT_MEM_EQ(E2.data + 64, "bye", 3);
  ASSERT_EQ(E1.status, 0); /* our direction only */
  ASSERT_EQ(send_text(&E2.tcp, &w, "after"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E1, 5), 0);
  ASSERT_MEM_EQ(E1.data, "after", 5);
  vigil_tcp_close(&E1.tcp, NULL);
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, &bye, 1), VIGIL_EPIPE); /* closing */
  ep_free(&E1);
  return close_pair(&loop, &lst);
}

TEST_IMPL(loop_try_write_last_sends_fin_with_bytes) {
  return util_for_each_backend(case_write_last, "try_write_last");
}

/* When the kernel cannot take the last bytes, try_write_last ends nothing:
 * once the peer has read what was in the way, the same call goes through
 * (after a FIN it would fail with EPIPE) and the peer sees EOF after it. */
static int case_write_last_full(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  static char chunk[65536];
  char bye_text[] = "bye";
  vigil_buf fill = vigil_buf_init(chunk, sizeof chunk), bye = vigil_buf_init(bye_text, 3);
  size_t queued = 0;
  long n = 0;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  /* Nobody reads yet (the loop is not run): the kernel's buffers fill. */
  for (unsigned i = 0; i < 100000 && (n = vigil_tcp_try_write(&E1.tcp, &fill, 1)) > 0; i++)
    queued += (size_t)n;
  ASSERT_EQ(n, VIGIL_EAGAIN);
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, &bye, 1), VIGIL_EAGAIN);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E2, queued), 0);
  ASSERT_EQ(E2.status, 0); /* no FIN came */
  ASSERT_EQ(vigil_tcp_try_write_last(&E1.tcp, &bye, 1), 3);
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_EOF);
  ASSERT_UEQ(E2.len, queued + 3);
  ASSERT_MEM_EQ(E2.data + queued, "bye", 3);
  ep_free(&E1);
  return close_pair(&loop, &lst);
}

TEST_IMPL(loop_try_write_last_ends_nothing_when_not_taken) {
  return util_for_each_backend(case_write_last_full, "try_write_last, full");
}

static int case_reset(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  /* SO_LINGER 0: the peer sees a reset, not an EOF. */
  vigil_tcp_close_reset(&E1.tcp, ep_closed);
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_ECONNRESET);
  vigil_tcp_close(&E2.tcp, ep_closed);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(E1.closed + E2.closed, 2);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_reset_reads_econnreset) {
  return util_for_each_backend(case_reset, "reset");
}

static int case_refused(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  vigil_connect_req req;
  struct sockaddr_storage any, bound;

  memset(&E1, 0, sizeof E1);
  ASSERT_EQ(open_loop(&loop, b), 0);
  /* A port that was just free: bind, note it, close. */
  loopback4(&any, 0);
  ASSERT_EQ(listen_on(&loop, &lst, &any, 0, &bound), 0);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);

  ASSERT_EQ(vigil_tcp_init(&loop, &E1.tcp), 0);
  req.data = &E1;
  ASSERT_EQ(vigil_tcp_connect(&req, &E1.tcp, (struct sockaddr *)&bound, on_connect), 0);
  ASSERT_EQ(vigil_tcp_connect(&req, &E1.tcp, (struct sockaddr *)&bound, on_connect),
            VIGIL_EINVAL); /* already connecting */
  ASSERT_EQ(E1.connected, 0);
  ASSERT_EQ(run_until(&loop, &E1.connected), 0);
  ASSERT_EQ(E1.connected, -1);
  ASSERT_EQ(E1.connect_status, VIGIL_ECONNREFUSED);
  vigil_tcp_close(&E1.tcp, ep_closed);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_connect_refused) {
  return util_for_each_backend(case_refused, "refused");
}

/* Timers. */

typedef struct tracked_timer {
  vigil_loop_timer t;
  uint64_t expires_ms;
  uint64_t fired_ns; /* real monotonic time at the callback */
  int fired;
} tracked_timer;

static size_t timers_fired;
static int64_t worst_early_ns; /* > 0: some timer fired this early */
static uint64_t max_late_ns, prev_expiry;
static int out_of_order;

static void on_tracked(vigil_loop *loop, vigil_loop_timer *t) {
  tracked_timer *tt = vigil_container_of(t, tracked_timer, t);
  int64_t early;
  vigil_loop_update_time(loop); /* the real time, not the cached one */
  tt->fired_ns = vigil_loop_now_ns(loop);
  tt->fired++;
  timers_fired++;
  early = (int64_t)(tt->expires_ms * NS_PER_MS) - (int64_t)tt->fired_ns;
  if (early > worst_early_ns)
    worst_early_ns = early;
  if (early < 0 && (uint64_t)-early > max_late_ns)
    max_late_ns = (uint64_t)-early;
  if (tt->expires_ms < prev_expiry)
    out_of_order = 1;
  prev_expiry = tt->expires_ms;
}

static void reset_timer_stats(void) {
  timers_fired = 0;
  worst_early_ns = 0;
  max_late_ns = 0;
  prev_expiry = 0;
  out_of_order = 0;
}

static int case_timers(vigil_backend b) {
  static const unsigned delays[] = {1, 5, 10, 25, 50, 100};
  tracked_timer tt[sizeof delays / sizeof delays[0]];
  vigil_loop loop;
  size_t i, n = sizeof delays / sizeof delays[0];
  uint64_t start, wait0;

  reset_timer_stats();
  ASSERT_EQ(open_loop(&loop, b), 0);
  start = vigil_loop_now_ms(&loop);
  for (i = 0; i < n; i++) {
    vigil_loop_timer_init(&tt[i].t);
    tt[i].fired = 0;
    tt[i].expires_ms = start + delays[i];
    vigil_loop_timer_arm(&loop, &tt[i].t, tt[i].expires_ms, on_tracked);
    ASSERT_EQ(vigil_loop_timer_armed(&tt[i].t), 1);
  }
  ASSERT_EQ(vigil_loop_alive(&loop), 1);
  wait0 = util_cpu_wait_ns();
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0); /* returns when all fired */
  ASSERT_EQ(timers_fired, n);
  for (i = 0; i < n; i++)
    ASSERT_EQ(tt[i].fired, 1);
  ASSERT_LE(worst_early_ns, 0); /* never early */
  /* Late by at most 50 ms beyond the time the scheduler kept us off the
   * CPU (util_cpu_wait_ns: zero on an idle machine). */
  ASSERT_ULE(max_late_ns, 50 * NS_PER_MS + (util_cpu_wait_ns() - wait0));
  ASSERT_EQ(out_of_order, 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_timers_fire_on_time) {
  return util_for_each_backend(case_timers, "timers");
}

static void on_cancel_me(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop;
  (void)t;
  timers_fired += 1000; /* must never run */
}

static int case_many_timers(vigil_backend b) {
  enum { N = 20000 };
  static tracked_timer tt[N];
  vigil_loop_timer cancelled;
  vigil_loop loop;
  uint64_t start, seed = 12345;
  size_t i;

  reset_timer_stats();
  ASSERT_EQ(open_loop(&loop, b), 0);
  start = vigil_loop_now_ms(&loop);
  for (i = 0; i < N; i++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    vigil_loop_timer_init(&tt[i].t);
    tt[i].fired = 0;
    tt[i].expires_ms = start + 1 + (seed >> 33) % 300;
    vigil_loop_timer_arm(&loop, &tt[i].t, tt[i].expires_ms, on_tracked);
  }
  vigil_loop_timer_init(&cancelled);
  vigil_loop_timer_arm(&loop, &cancelled, start + 10, on_cancel_me);
  vigil_loop_timer_cancel(&loop, &cancelled);
  vigil_loop_timer_cancel(&loop, &cancelled); /* harmless twice */
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0);
  ASSERT_EQ(timers_fired, N);
  ASSERT_LE(worst_early_ns, 0);
  ASSERT_EQ(out_of_order, 0);
  for (i = 0; i < N; i++)
    ASSERT_EQ(tt[i].fired, 1);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_many_timers) {
  return util_for_each_backend(case_many_timers, "many timers");
}

/* 10 MB through two queued writes: partial writes, completion only when
 * all of a request is in the kernel, requests completed in order, bytes
 * intact and in order. */
static void on_write_ordered(vigil_write_req *req, int status) {
  write_status = status != 0 ? status : write_status;
  write_done_count++;
  log_event(*(const int *)req->data);
}

static int two_done(const void *count) {
  return *(const int *)count >= 2;
}

static int case_big_write(vigil_backend b) {
  enum { SIZE = 10 * 1024 * 1024 };
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req req1, req2;
  vigil_buf bufs[6];
  static char payload[SIZE];
  size_t i, queued, cut[7] = {0, 1, 1000, 65536, 4000000, 9999999, SIZE};

  for (i = 0; i < SIZE; i++)
    payload[i] = (char)(i * 7 + (i >> 16));
  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  write_done_count = 0;
  write_status = 0;
  order_len = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  /* Five buffers (more than the inline four) in one request, uneven sizes,
   * and the last byte in a second request queued behind it. */
  for (i = 0; i < 6; i++)
    bufs[i] = vigil_buf_init(payload + cut[i], cut[i + 1] - cut[i]);
  static int one = 1, two = 2;
  req1.data = &one;
  req2.data = &two;
  ASSERT_EQ(vigil_tcp_write(&req1, &E1.tcp, bufs, 5, on_write_ordered), 0);
  ASSERT_EQ(vigil_tcp_write(&req2, &E1.tcp, bufs + 5, 1, on_write_ordered), 0);
  queued = vigil_tcp_write_queue_size(&E1.tcp);
  /* The kernel cannot take 10 MB at once while nobody reads. */
  ASSERT_GT(queued, 0);
  ASSERT_LT(queued, SIZE + 1);
  ASSERT_EQ(vigil_tcp_try_write(&E1.tcp, bufs, 1), VIGIL_EAGAIN); /* queue not empty */
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E2, SIZE), 0);
  ASSERT_EQ(run_while_not(&loop, two_done, &write_done_count), 0);
  ASSERT_EQ(write_status, 0);
  ASSERT_EQ(order_log[0], 1);
  ASSERT_EQ(order_log[1], 2);
  ASSERT_EQ(vigil_tcp_write_queue_size(&E1.tcp), 0);
  ASSERT_UEQ(E2.len, SIZE);
  ASSERT(memcmp(E2.data, payload, SIZE) == 0);

  /* With the queue empty, try_write goes straight to the kernel. */
  ASSERT_EQ(vigil_tcp_try_write(&E1.tcp, bufs + 1, 1), (long)(cut[2] - cut[1]));
  ASSERT_EQ(run_until_bytes(&loop, &E2, SIZE + cut[2] - cut[1]), 0);

  return close_pair(&loop, &lst);
}

TEST_IMPL(loop_write_10mb) {
  return util_for_each_backend(case_big_write, "10 MB");
}

/* Closing with writes queued cancels them, before the close callback. */
static void on_write_logged(vigil_write_req *req, int status) {
  (void)req;
  write_status = status;
  log_event(1);
}

static void on_close_logged(vigil_tcp *tcp) {
  (void)tcp;
  log_event(2);
}

static int case_close_cancels(vigil_backend b) {
  enum { SIZE = 16 * 1024 * 1024 };
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req req;
  vigil_buf buf;
  static char payload[SIZE];

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  order_len = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  buf = vigil_buf_init(payload, SIZE);
  ASSERT_EQ(vigil_tcp_write(&req, &E1.tcp, &buf, 1, on_write_logged), 0);
  ASSERT_GT(vigil_tcp_write_queue_size(&E1.tcp), 0);
  vigil_tcp_close(&E1.tcp, on_close_logged);
  ASSERT_EQ(order_len, 0); /* callbacks come from the loop */
  ASSERT_EQ(vigil_tcp_write_queue_size(&E1.tcp), 0);
  vigil_tcp_close(&E2.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(order_len, 2);
  ASSERT_EQ(order_log[0], 1);
  ASSERT_EQ(order_log[1], 2);
  ASSERT_EQ(write_status, VIGIL_ECANCELED);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_close_cancels_writes) {
  return util_for_each_backend(case_close_cancels, "close cancels");
}

/* One iteration runs reads, then timers, then deferred callbacks. */
enum { EV_READ = 10, EV_TIMER = 11, EV_DEFER = 12 };

static void phase_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  if (nread > 0)
    log_event(EV_READ);
  ep_read(tcp, nread, buf);
}

static void phase_timer(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop;
  (void)t;
  log_event(EV_TIMER);
}

static void phase_defer(vigil_loop *loop, vigil_defer *d) {
  (void)loop;
  (void)d;
  log_event(EV_DEFER);
}

/* Waits (bounded) until sock has bytes to read, outside the loop. */
static int wait_readable(vigil_os_socket sock) {
  fd_set rd;
  struct timeval tv;
  FD_ZERO(&rd);
#ifdef _WIN32
  FD_SET((SOCKET)sock, &rd);
#else
  FD_SET(sock, &rd);
#endif
  tv.tv_sec = GUARD_MS / 1000;
  tv.tv_usec = 0;
  return select((int)sock + 1, &rd, NULL, NULL, &tv) == 1 ? 0 : -1;
}

static int case_phase_order(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w;
  vigil_loop_timer timer;
  vigil_defer d;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  order_len = 0;
  write_done_count = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(send_text(&E1.tcp, &w, "ping"), 0);
  ASSERT_EQ(run_until(&loop, &write_done_count), 0);
  ASSERT_EQ(wait_readable(vigil_tcp_socket(&E2.tcp)), 0);

  /* Queue all three before one iteration: the order is the loop's. */
  vigil_defer_init(&d, phase_defer);
  vigil_loop_defer(&loop, &d);
  vigil_loop_defer(&loop, &d); /* once only */
  ASSERT_EQ(vigil_defer_queued(&d), 1);
  vigil_loop_timer_init(&timer);
  vigil_loop_timer_arm(&loop, &timer, vigil_loop_now_ms(&loop), phase_timer);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, phase_read), 0);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_ONCE), 1);
  ASSERT_EQ(order_len, 3);
  ASSERT_EQ(order_log[0], EV_READ);
  ASSERT_EQ(order_log[1], EV_TIMER);
  ASSERT_EQ(order_log[2], EV_DEFER);
  ASSERT_EQ(vigil_defer_queued(&d), 0);
  ASSERT_MEM_EQ(E2.data, "ping", 4);

  /* A cancelled defer does not run. */
  vigil_loop_defer(&loop, &d);
  vigil_loop_defer_cancel(&loop, &d);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(order_len, 3);

  return close_pair(&loop, &lst);
}

TEST_IMPL(loop_phase_order) {
  return util_for_each_backend(case_phase_order, "phase order");
}

/* A defer re-queued from its own callback runs in the next iteration (one
 * per iteration, never a busy inner loop), and keeps the loop alive. */
static int requeue_left;

static void requeue_defer(vigil_loop *loop, vigil_defer *d) {
  log_event(EV_DEFER);
  if (--requeue_left > 0)
    vigil_loop_defer(loop, d);
}

static int case_defer_requeue(vigil_backend b) {
  vigil_loop loop;
  vigil_defer d;

  order_len = 0;
  requeue_left = 3;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(vigil_loop_alive(&loop), 0);
  vigil_defer_init(&d, requeue_defer);
  vigil_loop_defer(&loop, &d);
  ASSERT_EQ(vigil_loop_alive(&loop), 1);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(order_len, 1);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0);
  ASSERT_EQ(order_len, 3);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_defer_requeue) {
  return util_for_each_backend(case_defer_requeue, "defer requeue");
}

/* Stall detection with an injected clock: real time plus offsets the test
 * adds, so a "2 s stall" takes no 2 s. */
static uint64_t fake_mono_off, fake_boot_off;

static uint64_t fake_clock(void *arg, vigil_clock_id id) {
  (void)arg;
  return vigil_clock_os(NULL, id) + (id == VIGIL_CLOCK_MONOTONIC ? fake_mono_off : fake_boot_off);
}

static uint64_t stall_ns;
static vigil_stall_kind stall_kind;
static int stalls;

static void on_stall(vigil_loop *loop, vigil_stall_watch *w, uint64_t ns, vigil_stall_kind kind) {
  (void)loop;
  (void)w;
  stalls++;
  stall_ns = ns;
  stall_kind = kind;
  log_event((int)kind);
}

static void stall_timer(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop;
  (void)t;
  log_event(EV_TIMER);
}

static int case_stall(vigil_backend b) {
  vigil_loop loop;
  vigil_loop_options opts;
  vigil_stall_watch watch;
  vigil_loop_timer timer;
  vigil_defer keepalive;

  fake_mono_off = fake_boot_off = 0;
  stalls = 0;
  order_len = 0;
  vigil_loop_options_init(&opts);
  opts.backend = b;
  opts.clock = fake_clock;
  opts.stall_threshold_ms = 300;
  ASSERT_EQ(vigil_loop_init(&loop, &opts), 0);
  memset(&watch, 0, sizeof watch);
  vigil_loop_stall_start(&loop, &watch, on_stall);
  vigil_defer_init(&keepalive, requeue_defer);

  /* A normal iteration, then one that waits 100 ms as planned: no stall. */
  requeue_left = 1000;
  vigil_loop_defer(&loop, &keepalive);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  vigil_loop_timer_init(&timer);
  vigil_loop_timer_arm(&loop, &timer, vigil_loop_now_ms(&loop) + 100, stall_timer);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  vigil_loop_defer_cancel(&loop, &keepalive);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0); /* sleeps ~100 ms, timer fires */
  ASSERT_EQ(stalls, 0);
  order_len = 0;

  /* Time between runs while the loop had nothing to do is no stall. */
  fake_mono_off += 2000 * NS_PER_MS;
  fake_boot_off += 2000 * NS_PER_MS;
  vigil_loop_defer(&loop, &keepalive);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(stalls, 0);

  /* The process was away for 2 s with a timer due in 1 s: the stall is
   * reported first, then the timer runs. */
  vigil_loop_timer_arm(&loop, &timer, vigil_loop_now_ms(&loop) + 1000, stall_timer);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  order_len = 0;
  fake_mono_off += 2000 * NS_PER_MS;
  fake_boot_off += 2000 * NS_PER_MS;
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(stalls, 1);
  ASSERT_EQ(stall_kind, VIGIL_STALL_GAP);
  ASSERT_UGE(stall_ns, 2000 * NS_PER_MS);
  ASSERT_ULE(stall_ns, 2500 * NS_PER_MS);
  ASSERT_EQ(order_len, 3);
  ASSERT_EQ(order_log[0], VIGIL_STALL_GAP);
  ASSERT_EQ(order_log[1], EV_TIMER);
  ASSERT_EQ(order_log[2], EV_DEFER);

  /* Suspend: BOOTTIME ran 5 s ahead while MONOTONIC stood still. */
  order_len = 0;
  fake_boot_off += 5000 * NS_PER_MS;
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(stalls, 2);
  ASSERT_EQ(stall_kind, VIGIL_STALL_SUSPEND);
  ASSERT_UGE(stall_ns, 4900 * NS_PER_MS); /* the two clocks are read apart */
  ASSERT_ULE(stall_ns, 5100 * NS_PER_MS);

  /* A stopped watcher hears nothing. */
  vigil_loop_stall_stop(&loop, &watch);
  fake_mono_off += 3000 * NS_PER_MS;
  fake_boot_off += 3000 * NS_PER_MS;
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
  ASSERT_EQ(stalls, 2);

  vigil_loop_defer_cancel(&loop, &keepalive);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_stall_detection) {
  return util_for_each_backend(case_stall, "stall");
}

/* IPv6 loopback, and IPV6_V6ONLY both ways. */
static int case_ipv6(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst, lst2;
  vigil_write_req w;
  struct sockaddr_storage any, bound, v4;
  vigil_connect_req req;
  vigil_os_socket hold4;
  int err;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(vigil_ip_parse("[::1]:0", &any), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &lst), 0);
  err = vigil_tcp_bind_listen(&lst, (struct sockaddr *)&any, 16, 0, on_connection);
  if (err == VIGIL_EADDRNOTAVAIL || err == VIGIL_EAFNOSUPPORT) {
    vigil_tcp_close(&lst, NULL);
    (void)run_to_end(&loop);
    (void)vigil_loop_close(&loop);
    RETURN_SKIP("no IPv6 loopback here (%s)", vigil_strerror(err));
  }
  ASSERT_EQ(err, 0);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);

  ASSERT_EQ(listen_on(&loop, &lst, &any, VIGIL_TCP_IPV6ONLY, &bound), 0);
  ASSERT_EQ(bound.ss_family, AF_INET6);
  ASSERT_EQ(connect_pair(&loop, &lst, &bound, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(send_text(&E1.tcp, &w, "six"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E2, 3), 0);
  ASSERT_MEM_EQ(E2.data, "six", 3);
  ep_free(&E2);
  vigil_tcp_close(&E1.tcp, ep_closed);
  vigil_tcp_close(&E2.tcp, ep_closed);
  ASSERT_EQ(run_until(&loop, &E1.closed), 0);
  ASSERT_EQ(run_until(&loop, &E2.closed), 0);

  /* [::]:p dual stack takes IPv4 clients; with V6ONLY it refuses them. */
  ASSERT_EQ(vigil_ip_parse("[::]:0", &any), 0);
  ASSERT_EQ(listen_on(&loop, &lst2, &any, 0, &bound), 0);
  loopback4(&v4, port_of(&bound));
  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  ASSERT_EQ(connect_pair(&loop, &lst2, &v4, &E1, &E2), 0);
  vigil_tcp_close(&E1.tcp, ep_closed);
  vigil_tcp_close(&E2.tcp, ep_closed);
  vigil_tcp_close(&lst2, NULL);
  ASSERT_EQ(run_until(&loop, &E1.closed), 0);
  ASSERT_EQ(run_until(&loop, &E2.closed), 0);

  /* 127.0.0.1 at that port must have no listener for the refusal, but the
   * port is free for IPv4 and other tests run alongside: hold it with a
   * bound, never listening IPv4 socket (a connect to it is refused too),
   * choosing another port while one of theirs has it. */
  for (int tries = 0;; tries++) {
    ASSERT_EQ(listen_on(&loop, &lst2, &any, VIGIL_TCP_IPV6ONLY, &bound), 0);
    loopback4(&v4, port_of(&bound));
    hold4 = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(hold4 != VIGIL_INVALID_SOCKET);
    if (bind(hold4, (struct sockaddr *)&v4, (int)sizeof(struct sockaddr_in)) == 0)
      break;
    util_net_close(hold4);
    vigil_tcp_close(&lst2, NULL);
    ASSERT_EQ(run_to_end(&loop), 0);
    ASSERT(tries < 20);
  }
  memset(&E1, 0, sizeof E1);
  ASSERT_EQ(vigil_tcp_init(&loop, &E1.tcp), 0);
  req.data = &E1;
  ASSERT_EQ(vigil_tcp_connect(&req, &E1.tcp, (struct sockaddr *)&v4, on_connect), 0);
  ASSERT_EQ(run_until(&loop, &E1.connected), 0);
  ASSERT_EQ(E1.connect_status, VIGIL_ECONNREFUSED);
  util_net_close(hold4);
  vigil_tcp_close(&E1.tcp, NULL);
  vigil_tcp_close(&lst2, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ep_free(&E2);
  return 0;
}

TEST_IMPL(loop_ipv6_loopback) {
  return util_for_each_backend(case_ipv6, "ipv6");
}

/* Accept errors reach on_connection; accept_drop refuses the waiting peer
 * once a descriptor is free again (the spare descriptor trick). */
static int case_emfile(vigil_backend b) {
#ifdef _WIN32
  (void)b;
  RETURN_SKIP("descriptor limits are a POSIX notion");
#else
  vigil_loop loop;
  vigil_tcp lst;
  vigil_connect_req req;
  struct sockaddr_storage any, bound;
  struct rlimit old, low;
  int spare;

  memset(&E1, 0, sizeof E1);
  ASSERT_EQ(open_loop(&loop, b), 0);
  loopback4(&any, 0);
  ASSERT_EQ(listen_on(&loop, &lst, &any, 0, &bound), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &E1.tcp), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E1.tcp, ep_alloc, ep_read), VIGIL_ENOTCONN);
  req.data = &E1;
  ASSERT_EQ(vigil_tcp_connect(&req, &E1.tcp, (struct sockaddr *)&bound, on_connect), 0);

  /* dup returns the lowest free descriptor, so every one below the spare
   * is in use; a limit of spare + 1 leaves accept nothing to take. */
  spare = dup(0);
  ASSERT_GE(spare, 0);
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = (rlim_t)spare + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  accept_into = NULL;
  accept_calls = 0;
  ASSERT_EQ(run_until(&loop, &accept_calls), 0);
  ASSERT_EQ(accept_status, VIGIL_EMFILE);
  ASSERT_EQ(E1.connected, 1); /* the kernel completed the handshake */
  ASSERT_EQ(vigil_tcp_read_start(&E1.tcp, ep_alloc, ep_read), 0);
  /* Still listening; the trick: free the spare, refuse the peer. */
  close(spare);
  ASSERT_EQ(vigil_tcp_accept_drop(&lst), 0);
  ASSERT_EQ(vigil_tcp_accept_drop(&lst), VIGIL_EAGAIN);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_EQ(run_until_status(&loop, &E1), 0);
  ASSERT(E1.status == VIGIL_EOF || E1.status == VIGIL_ECONNRESET);
  vigil_tcp_close(&E1.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
#endif
}

TEST_IMPL(loop_accept_emfile) {
  return util_for_each_backend(case_emfile, "emfile");
}

/* read_stop holds bytes back; an empty buffer from alloc_cb is ENOBUFS. */
static void alloc_nothing(vigil_tcp *tcp, size_t suggested, vigil_buf *buf) {
  (void)tcp;
  (void)suggested;
  buf->base = NULL;
  buf->len = 0;
}

static int case_read_stop(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w1, w2;
  int i;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  write_done_count = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(send_text(&E1.tcp, &w1, "a"), 0);
  ASSERT_EQ(run_until_bytes(&loop, &E2, 1), 0);
  ASSERT_EQ(vigil_tcp_read_stop(&E2.tcp), 0);
  ASSERT_EQ(vigil_tcp_read_stop(&E2.tcp), 0); /* harmless twice */
  ASSERT_EQ(send_text(&E1.tcp, &w2, "b"), 0);
  ASSERT_EQ(run_while_not(&loop, two_done, &write_done_count), 0);
  ASSERT_EQ(wait_readable(vigil_tcp_socket(&E2.tcp)), 0);
  for (i = 0; i < 5; i++)
    (void)vigil_loop_run(&loop, VIGIL_RUN_NOWAIT);
  ASSERT_UEQ(E2.len, 1); /* "b" waits in the kernel */

  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, alloc_nothing, ep_read), 0);
  ASSERT_EQ(run_until_status(&loop, &E2), 0);
  ASSERT_EQ(E2.status, VIGIL_ENOBUFS);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, ep_read), 0); /* stopped, so allowed */
  E2.status = 0;
  ASSERT_EQ(run_until_bytes(&loop, &E2, 2), 0);
  ASSERT_MEM_EQ(E2.data, "ab", 2);

  return close_pair(&loop, &lst);
}

TEST_IMPL(loop_read_stop_and_enobufs) {
  return util_for_each_backend(case_read_stop, "read stop");
}

/* A read callback sees the time its data arrived, not the time the wait
 * began: a child process sends a byte 200 ms into the loop's wait. */
#ifndef _WIN32
static uint64_t read_seen_ns;

static void stamp_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  if (nread > 0 && read_seen_ns == 0)
    read_seen_ns = vigil_loop_now_ns(tcp->loop);
  ep_read(tcp, nread, buf);
}
#endif

static int case_fresh_time(vigil_backend b) {
#ifdef _WIN32
  (void)b;
  RETURN_SKIP("uses fork");
#else
  vigil_loop loop;
  vigil_tcp lst;
  vigil_loop_timer guard;
  uint64_t before, after;
  pid_t pid;
  int wstatus;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  read_seen_ns = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, ep_alloc, stamp_read), 0);
  vigil_loop_timer_init(&guard);
  vigil_loop_update_time(&loop);
  vigil_loop_timer_arm(&loop, &guard, vigil_loop_now_ms(&loop) + GUARD_MS, on_guard);
  before = vigil_clock_os(NULL, VIGIL_CLOCK_MONOTONIC);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct timespec ts = {0, 200L * 1000 * 1000};
    nanosleep(&ts, NULL);
    _exit(send(vigil_tcp_socket(&E1.tcp), "x", 1, 0) == 1 ? 0 : 1);
  }
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_ONCE), 1);
  after = vigil_clock_os(NULL, VIGIL_CLOCK_MONOTONIC);
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  ASSERT_NE(read_seen_ns, 0);
  ASSERT_UGE(read_seen_ns, before + 150 * NS_PER_MS);
  ASSERT_ULE(read_seen_ns, after);
  vigil_loop_timer_cancel(&loop, &guard);
  return close_pair(&loop, &lst);
#endif
}

TEST_IMPL(loop_read_sees_arrival_time) {
  return util_for_each_backend(case_fresh_time, "fresh time");
}

/* Bytes sent after the loop's now and read in the same iteration are dated
 * no earlier than their send. The loop's now is when the wait returned; the
 * read's alloc callback, called just before recv, plays the busy iteration:
 * it moves the clock on 50 ms (an injected clock) and sends one more byte,
 * which the same recv returns. While the date was capped at the loop's now
 * (issue 11), that read was dated before its last byte was sent, and a
 * verdict counted from it came early. Once on an injected clock (no kernel
 * stamps: the date is a clock reading) and once on the OS clocks (on Linux,
 * the kernel's stamp). */
#ifndef _WIN32
static vigil_clock_fn late_clock;
static vigil_os_socket late_sender;
static uint64_t late_sent_ns, late_dated_ns;
static long late_nread;
static int late_queued;

/* Whether the socket holds n bytes, waiting at most 3 s for loopback (on a
 * loaded machine the kernel may hand the delivery to ksoftirqd). */
static int wait_inq(vigil_os_socket s, int n) {
  uint64_t until = vigil_clock_os(NULL, VIGIL_CLOCK_MONOTONIC) + 3000 * NS_PER_MS;
  struct timespec nap = {0, 100 * 1000};
  int avail = 0;
  while (ioctl(s, FIONREAD, &avail) == 0 && avail < n &&
         vigil_clock_os(NULL, VIGIL_CLOCK_MONOTONIC) < until)
    nanosleep(&nap, NULL);
  return avail >= n;
}

static void late_alloc(vigil_tcp *tcp, size_t suggested, vigil_buf *buf) {
  ep_alloc(tcp, suggested, buf);
  if (late_sent_ns != 0)
    return;
  fake_mono_off += 50 * NS_PER_MS; /* only late_clock == fake_clock sees it */
  fake_boot_off += 50 * NS_PER_MS;
  late_sent_ns = late_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  late_queued = send(late_sender, "b", 1, 0) == 1 && wait_inq(vigil_tcp_socket(tcp), 2);
}

static void late_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  if (nread > 0 && late_nread == 0) {
    late_nread = nread;
    late_dated_ns = vigil_loop_rx_time_ns(tcp->loop);
  }
  ep_read(tcp, nread, buf);
}

static int read_after_now(vigil_backend b, vigil_clock_fn clock) {
  vigil_loop loop;
  vigil_loop_options opts;
  vigil_tcp lst;

  memset(&E1, 0, sizeof E1);
  memset(&E2, 0, sizeof E2);
  fake_mono_off = fake_boot_off = 0;
  late_clock = clock != NULL ? clock : vigil_clock_os;
  late_sent_ns = late_dated_ns = 0;
  late_nread = 0;
  late_queued = 0;
  vigil_loop_options_init(&opts);
  opts.backend = b;
  opts.clock = clock;
  ASSERT_EQ(vigil_loop_init(&loop, &opts), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &E1, &E2), 0);
  late_sender = vigil_tcp_socket(&E1.tcp);
  ASSERT_EQ(send(late_sender, "a", 1, 0), 1);
  ASSERT_EQ(vigil_tcp_read_start(&E2.tcp, late_alloc, late_read), 0);
  bytes_wanted = 2;
  ASSERT_EQ(run_while_not(&loop, has_bytes, &E2), 0);
  ASSERT(late_queued);
  ASSERT_EQ(late_nread, 2); /* "b" came in the read the callback preceded */
  ASSERT_UGE(late_dated_ns, late_sent_ns);
  ASSERT_ULE(late_dated_ns, late_clock(NULL, VIGIL_CLOCK_MONOTONIC));
  return close_pair(&loop, &lst);
}

static int case_read_after_now(vigil_backend b) {
  ASSERT_EQ(read_after_now(b, fake_clock), 0);
  return read_after_now(b, NULL);
}
#endif

TEST_IMPL(loop_read_never_dated_before_its_send) {
#ifdef _WIN32
  RETURN_SKIP("sends from inside a read's alloc callback on POSIX sockets");
#else
  return util_for_each_backend(case_read_after_now, "read after now");
#endif
}

/* vigil_loop_stop ends a DEFAULT run after the current iteration. */
static void stop_timer(vigil_loop *loop, vigil_loop_timer *t) {
  (void)t;
  log_event(EV_TIMER);
  vigil_loop_stop(loop);
}

static int case_stop(vigil_backend b) {
  vigil_loop loop;
  vigil_loop_timer soon, later;

  order_len = 0;
  ASSERT_EQ(open_loop(&loop, b), 0);
  vigil_loop_timer_init(&soon);
  vigil_loop_timer_init(&later);
  vigil_loop_timer_arm(&loop, &soon, vigil_loop_now_ms(&loop) + 5, stop_timer);
  vigil_loop_timer_arm(&loop, &later, vigil_loop_now_ms(&loop) + 60000, stop_timer);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 1); /* stopped; `later` remains */
  ASSERT_EQ(order_len, 1);
  ASSERT_EQ(vigil_loop_timer_armed(&later), 1);
  ASSERT_EQ(vigil_loop_timer_armed(&soon), 0);
  vigil_loop_timer_cancel(&loop, &later);
  ASSERT_EQ(vigil_loop_alive(&loop), 0);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_stop) {
  return util_for_each_backend(case_stop, "stop");
}

/* A taken port is EADDRINUSE; with REUSEPORT on both, two listeners
 * share it (the several-worker-processes setup). */
static int case_reuseport(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp a, c, d;
  struct sockaddr_storage any, bound;
  int err;

  ASSERT_EQ(open_loop(&loop, b), 0);
  loopback4(&any, 0);
  ASSERT_EQ(listen_on(&loop, &a, &any, 0, &bound), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &c), 0);
  ASSERT_EQ(vigil_tcp_bind_listen(&c, (struct sockaddr *)&bound, 16, 0, on_connection),
            VIGIL_EADDRINUSE);
  ASSERT_EQ(vigil_tcp_socket(&c), VIGIL_INVALID_SOCKET); /* nothing left behind */
  vigil_tcp_close(&a, NULL);
  vigil_tcp_close(&c, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);

  ASSERT_EQ(vigil_tcp_init(&loop, &c), 0);
  err = vigil_tcp_bind_listen(&c, (struct sockaddr *)&any, 16, VIGIL_TCP_REUSEPORT, on_connection);
  if (err == VIGIL_ENOTSUP) {
    vigil_tcp_close(&c, NULL);
    ASSERT_EQ(run_to_end(&loop), 0);
    ASSERT_EQ(vigil_loop_close(&loop), 0);
    RETURN_SKIP("no SO_REUSEPORT on this backend");
  }
  ASSERT_EQ(err, 0);
  {
    int len = (int)sizeof bound;
    ASSERT_EQ(vigil_tcp_sockname(&c, (struct sockaddr *)&bound, &len), 0);
  }
  ASSERT_EQ(vigil_tcp_init(&loop, &d), 0);
  ASSERT_EQ(
      vigil_tcp_bind_listen(&d, (struct sockaddr *)&bound, 16, VIGIL_TCP_REUSEPORT, on_connection),
      0);
  vigil_tcp_close(&c, NULL);
  vigil_tcp_close(&d, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_reuseport_and_addrinuse) {
  return util_for_each_backend(case_reuseport, "reuseport");
}

/* Argument and state errors, without the network. */
static int case_misuse(vigil_backend b) {
  vigil_loop loop;
  vigil_tcp t;
  vigil_write_req w;
  static char x[] = "x";
  vigil_buf buf = vigil_buf_init(x, 1);
  struct sockaddr_storage ss;

  ASSERT_EQ(open_loop(&loop, b), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &t), 0);
  ASSERT_EQ(vigil_tcp_socket(&t), VIGIL_INVALID_SOCKET);
  ASSERT_EQ(vigil_tcp_write(&w, &t, &buf, 1, on_write), VIGIL_ENOTCONN);
  ASSERT_EQ(vigil_tcp_write(&w, &t, &buf, 0, on_write), VIGIL_EINVAL);
  ASSERT_EQ(vigil_tcp_try_write(&t, &buf, 1), VIGIL_ENOTCONN);
  ASSERT_EQ(vigil_tcp_nodelay(&t, 1), VIGIL_EBADF);
  ASSERT_EQ(vigil_tcp_accept_drop(&t), VIGIL_EINVAL);
  memset(&ss, 0, sizeof ss);
  ss.ss_family = AF_UNIX; /* neither IPv4 nor IPv6 */
  ASSERT_EQ(vigil_tcp_bind_listen(&t, (struct sockaddr *)&ss, 1, 0, on_connection),
            VIGIL_EAFNOSUPPORT);
  ASSERT_EQ(vigil_tcp_bind_listen(&t, NULL, 1, 0, on_connection), VIGIL_EINVAL);
  ASSERT_EQ(vigil_loop_close(&loop), VIGIL_EBUSY);
  vigil_tcp_close(&t, NULL);
  vigil_tcp_close(&t, NULL); /* twice is harmless */
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

TEST_IMPL(loop_misuse_errors) {
  return util_for_each_backend(case_misuse, "misuse");
}

TEST_IMPL(loop_ip_parse_format) {
  struct sockaddr_storage ss;
  char buf[VIGIL_ADDRSTRLEN];
  static const char *const good[] = {"127.0.0.1:80", "[::1]:443", "0.0.0.0:0",
                                     "[2001:db8::1]:65535", "[fe80::1%3]:7"};
  static const char *const bad[] = {
      "",           "127.0.0.1",  "127.0.0.1:",  ":80",      "1.2.3.4:65536",
      "1.2.3.4:-1", "1.2.3.4:8a", "[::1]",       "[::1]80",  "::1:80",
      "[::1:80",    "[]:80",      "300.1.1.1:1", "[::1%]:1", "example.com:80"};
  size_t i;

  ASSERT_EQ(util_net_init(), 0);
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    ASSERT_EQ(vigil_ip_parse(good[i], &ss), 0);
    ASSERT_EQ(vigil_ip_format((struct sockaddr *)&ss, buf, sizeof buf), (int)strlen(good[i]));
    ASSERT_STR_EQ(buf, good[i]);
  }
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (vigil_ip_parse(bad[i], &ss) != VIGIL_EINVAL)
      TEST_FAIL_AT("accepted \"%s\"", bad[i]);
  ASSERT_EQ(vigil_ip_parse("localhost:8080", &ss), 0);
  ASSERT_EQ(vigil_ip_format((struct sockaddr *)&ss, buf, sizeof buf), 14);
  ASSERT_STR_EQ(buf, "127.0.0.1:8080");
  ASSERT_EQ(vigil_ip_len((struct sockaddr *)&ss), (int)sizeof(struct sockaddr_in));
  ASSERT_EQ(vigil_ip_format((struct sockaddr *)&ss, buf, 5), VIGIL_ENOSPACE);
  ASSERT_EQ(vigil_ip_parse(NULL, &ss), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(loop_backend_selection) {
  vigil_loop loop;
  vigil_loop_options opts;

  ASSERT_EQ(util_net_init(), 0);
  vigil_loop_options_init(&opts);
  opts.backend = (vigil_backend)42;
  ASSERT_EQ(vigil_loop_init(&loop, &opts), VIGIL_EINVAL);
#ifdef _WIN32
  RETURN_SKIP("VIGIL_BACKEND choices are POSIX ones");
#else
  ASSERT_EQ(setenv("VIGIL_BACKEND", "poll", 1), 0);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
  ASSERT_STR_EQ(vigil_loop_backend_name(&loop), "poll");
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ASSERT_EQ(setenv("VIGIL_BACKEND", "bogus", 1), 0);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), VIGIL_EINVAL);
  ASSERT_EQ(setenv("VIGIL_BACKEND", "iocp", 1), 0);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), VIGIL_ENOTSUP);
  /* An explicit option wins over the environment. */
  vigil_loop_options_init(&opts);
  opts.backend = VIGIL_BACKEND_POLL;
  ASSERT_EQ(vigil_loop_init(&loop, &opts), 0);
  ASSERT_STR_EQ(vigil_loop_backend_name(&loop), "poll");
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ASSERT_EQ(unsetenv("VIGIL_BACKEND"), 0);
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
#ifdef HAVE_EPOLL
  ASSERT_STR_EQ(vigil_loop_backend_name(&loop), "epoll");
#else
  ASSERT_STR_EQ(vigil_loop_backend_name(&loop), "poll");
#endif
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
#endif
}

/* vigil_random: the OS's random source behind each connection's jitter
 * seed. Two 32-byte draws never agree (2^-256), every byte value turns up
 * in 64 KiB, odd lengths are filled to the last byte, and NULL with a
 * length is refused. */
TEST_IMPL(random_fills_from_the_os) {
  static uint8_t big[65536];
  uint8_t a[32], b[32], odd[7] = {0};
  int seen[256] = {0}, i, distinct = 0;
  ASSERT_EQ(vigil_random(a, sizeof a), 0);
  ASSERT_EQ(vigil_random(b, sizeof b), 0);
  ASSERT(memcmp(a, b, sizeof a) != 0);
  ASSERT_EQ(vigil_random(big, sizeof big), 0);
  for (i = 0; i < (int)sizeof big; i++)
    seen[big[i]] = 1;
  for (i = 0; i < 256; i++)
    distinct += seen[i];
  ASSERT_EQ(distinct, 256);
  for (i = 0; i < 8 && odd[6] == 0; i++) /* 1 in 256 that a byte stays 0 */
    ASSERT_EQ(vigil_random(odd, sizeof odd), 0);
  ASSERT(odd[6] != 0);
  ASSERT_EQ(vigil_random(NULL, 0), 0);
  ASSERT_EQ(vigil_random(NULL, 1), VIGIL_EINVAL);
  return 0;
}

/* ---- receive stamps: realtime -> loop clock (src/rxstamp.c) ---------------- */

/* Made-up readings, no clock, no sleep. The offset is realtime minus the
 * end of the narrowest (mono before, mono after) window, the smallest it
 * can be, so converted stamps err late; a wider, preempted sample must not
 * win even when it comes first. */
TEST_IMPL(rx_clock_offset_from_samples) {
  const uint64_t e9 = 1000000000u;
  uint64_t s[3][3] = {
      {1000 * e9, 1700000000 * e9 + 900000, 1000 * e9 + 900000},             /* 900 us window */
      {1000 * e9 + 2000000, 1700000000 * e9 + 2000100, 1000 * e9 + 2000200}, /* 200 ns */
      {1000 * e9 + 3000000, 1700000000 * e9 + 3000400, 1000 * e9 + 3000600}, /* 600 ns */
  };
  int64_t off = vigil__clock_offset((const uint64_t(*)[3])s, 3);
  /* sample 1: realtime ...2000100 read no later than mono ...2000200 */
  ASSERT_EQ(off, (int64_t)(1700000000 * e9 - 1000 * e9) - 100);
  /* One sample: its own window's end. */
  ASSERT_EQ(vigil__clock_offset((const uint64_t(*)[3])s, 1),
            (int64_t)(1700000000 * e9 + 900000 - (1000 * e9 + 900000)));
  /* Realtime behind monotonic (a machine up longer than the epoch is
   * old, or a clock set to 1970): a negative offset. */
  {
    uint64_t t[1][3] = {{5000 * e9, 10 * e9, 5000 * e9}};
    ASSERT_EQ(vigil__clock_offset((const uint64_t(*)[3])t, 1),
              (int64_t)(10 * e9) - (int64_t)(5000 * e9));
  }
  return 0;
}

/* Converting a stamp: real - offset, whatever the loop's now (the cap is
 * vigil__rx_date's); 0 (no stamp) for a missing stamp or an out-of-range
 * result. */
TEST_IMPL(rx_clock_stamp_to_loop_time) {
  const uint64_t e9 = 1000000000u;
  int64_t off = (int64_t)(1700000000 * e9 - 1000 * e9);
  ASSERT_UEQ(vigil__rx_mono(1700000000 * e9 + 400 * 1000000u, off), 1000 * e9 + 400 * 1000000u);
  ASSERT_UEQ(vigil__rx_mono(0, off), 0);
  /* Before monotonic zero: unusable. */
  ASSERT_UEQ(vigil__rx_mono(5, off), 0);
  /* Negative offset: real + |offset|, overflow guarded. */
  ASSERT_UEQ(vigil__rx_mono(10 * e9, -(int64_t)(4990 * e9)), 5000 * e9);
  ASSERT_UEQ(vigil__rx_mono(UINT64_MAX - 5, -(int64_t)(10 * e9)), 0);
  return 0;
}

static uint64_t later_ns;
static int later_reads;

static uint64_t later_clock(void *arg, vigil_clock_id id) {
  (void)arg;
  (void)id;
  later_reads++;
  return later_ns;
}

/* Dating a read (made-up readings, no sleep): the loop's now is 1000 ms,
 * when the wait returned; the read returned at 1012 ms. */
TEST_IMPL(rx_date_bounded_by_the_read_not_the_wait) {
  const uint64_t ms = 1000000u, now = 1000 * ms;
  later_ns = 1012 * ms;
  later_reads = 0;
  /* Stamped before the wait returned: the stamp, and no clock read. */
  ASSERT_UEQ(vigil__rx_date(990 * ms, now, later_clock, NULL), 990 * ms);
  ASSERT_UEQ(vigil__rx_date(now, now, later_clock, NULL), now);
  ASSERT_EQ(later_reads, 0);
  /* Stamped during the busy iteration: the stamp. Capped at now, as it
   * was, the frame was dated 5 ms before it arrived (issue 11). */
  ASSERT_UEQ(vigil__rx_date(1005 * ms, now, later_clock, NULL), 1005 * ms);
  ASSERT_EQ(later_reads, 1);
  /* A stamp after the read returned (conversion error): the reading. */
  ASSERT_UEQ(vigil__rx_date(1012 * ms + 1, now, later_clock, NULL), 1012 * ms);
  /* No stamp: the reading, which no byte of the read postdates. */
  ASSERT_UEQ(vigil__rx_date(0, now, later_clock, NULL), 1012 * ms);
  ASSERT_EQ(later_reads, 3);
  /* An injected clock that went back: not before the loop's now. */
  later_ns = 999 * ms;
  ASSERT_UEQ(vigil__rx_date(0, now, later_clock, NULL), now);
  return 0;
}

/* A slew is not a step: 1 ms + 1000 ppm of the time between samples. */
TEST_IMPL(rx_clock_step_detection) {
  const uint64_t ms = 1000000u;
  int64_t off = 123456789;
  ASSERT_EQ(vigil__clock_offset_steady(0, 0, off, 10 * ms), 1); /* first sample */
  /* 10 ms apart: 1 ms + 10 us allowed, either way. */
  ASSERT_EQ(vigil__clock_offset_steady(off, 10 * ms, off + 1010000, 20 * ms), 1);
  ASSERT_EQ(vigil__clock_offset_steady(off, 10 * ms, off - 1010000, 20 * ms), 1);
  ASSERT_EQ(vigil__clock_offset_steady(off, 10 * ms, off + 1010001, 20 * ms), 0);
  ASSERT_EQ(vigil__clock_offset_steady(off, 10 * ms, off - 1010001, 20 * ms), 0);
  /* 500 ppm over 10 s is 5 ms: allowed (1 ms + 10 ms). */
  ASSERT_EQ(vigil__clock_offset_steady(off, ms, off + 5 * (int64_t)ms, ms + 10000 * ms), 1);
  /* A 1 s step 60 ms after the last sample. */
  ASSERT_EQ(vigil__clock_offset_steady(off, ms, off + 1000 * (int64_t)ms, ms + 60 * ms), 0);
  return 0;
}
