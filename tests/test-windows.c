/* Windows-specific tests: the error mapping of src/win/error.c and what is
 * particular to the IOCP backend (an AcceptEx pool, ConnectEx, zero-byte
 * reads, cancellation on close, the interrupt-time clocks). The portable
 * loop tests (test-loop.c) run on IOCP as well; these cover what they
 * cannot see. On other systems every test skips.
 *
 * Every wait is bounded by a guard timer, as in test-loop.c. */
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "util-net.h"
#include "vigil.h"

#ifdef _WIN32
#include "keepalive-os.h"
#include "win/internal.h"

#define GUARD_MS 5000

/* NTSTATUS values (ntstatus.h), as a completed OVERLAPPED carries them. */
#define ST_SUCCESS 0x00000000L
#define ST_PENDING 0x00000103L
#define ST_IO_TIMEOUT ((long)0xC00000B5L)
#define ST_CANCELLED ((long)0xC0000120L)
#define ST_CONNECTION_RESET ((long)0xC000020DL)
#define ST_CONNECTION_REFUSED ((long)0xC0000236L)
#define ST_NETWORK_UNREACHABLE ((long)0xC000023CL)
#define ST_HOST_UNREACHABLE ((long)0xC000023DL)
#define ST_CONNECTION_ABORTED ((long)0xC0000241L)

static int guard_fired;

static void on_guard(vigil_loop *loop, vigil_loop_timer *t) {
  (void)t;
  guard_fired = 1;
  vigil_loop_stop(loop);
}

/* Runs iterations until *flag >= want; 0, or -1 after GUARD_MS. */
static int run_until(vigil_loop *loop, const int *flag, int want) {
  vigil_loop_timer guard;
  vigil_loop_timer_init(&guard);
  guard_fired = 0;
  vigil_loop_update_time(loop);
  vigil_loop_timer_arm(loop, &guard, vigil_loop_now_ms(loop) + GUARD_MS, on_guard);
  while (*flag < want && !guard_fired)
    (void)vigil_loop_run(loop, VIGIL_RUN_ONCE);
  vigil_loop_timer_cancel(loop, &guard);
  return *flag >= want ? 0 : -1;
}

static int run_to_end(vigil_loop *loop) {
  int i;
  for (i = 0; i < 1000 && vigil_loop_alive(loop); i++)
    (void)vigil_loop_run(loop, VIGIL_RUN_NOWAIT);
  return vigil_loop_alive(loop) ? -1 : 0;
}

static void loopback4(struct sockaddr_storage *ss, uint16_t port) {
  struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
  memset(ss, 0, sizeof *ss);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = htons(port);
}

/* ---- endpoints ------------------------------------------------------------ */

typedef struct endpoint {
  vigil_tcp tcp;
  char data[4096];
  size_t len;
  int status;
  int closed;
  int connected;
  int connect_status;
  char scratch[4096];
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
  if (n > sizeof ep->data - ep->len)
    n = sizeof ep->data - ep->len;
  memcpy(ep->data + ep->len, buf->base, n);
  ep->len += n;
}

static int order[8];
static int norder;

static void note(int ev) {
  if (norder < (int)(sizeof order / sizeof order[0]))
    order[norder++] = ev;
}

enum { EV_WRITE = 1, EV_CONNECT = 2, EV_CLOSE = 3 };

static void ep_closed(vigil_tcp *tcp) {
  endpoint *ep = vigil_container_of(tcp, endpoint, tcp);
  ep->closed = 1;
  note(EV_CLOSE);
}

static void on_connect(vigil_connect_req *req, int status) {
  endpoint *ep = req->data;
  ep->connect_status = status;
  ep->connected = status == 0 ? 1 : -1;
  note(EV_CONNECT);
}

static int write_status = 1;

static void on_write(vigil_write_req *req, int status) {
  (void)req;
  write_status = status;
  note(EV_WRITE);
}

/* A listener that accepts into a fixed array of endpoints. */
enum { BURST = 24 }; /* three times the backend's AcceptEx pool */
static endpoint *accept_pool_eps;
static int accepted, accept_errors, accept_cap;

static void on_connection(vigil_tcp *server, int status) {
  if (status != 0) {
    accept_errors++;
    return;
  }
  if (accepted >= accept_cap)
    return; /* refused: the backend closes it */
  if (vigil_tcp_init(server->loop, &accept_pool_eps[accepted].tcp) != 0) {
    accept_errors++;
    return;
  }
  if (vigil_tcp_accept(server, &accept_pool_eps[accepted].tcp) == 0)
    accepted++;
  else
    accept_errors++;
}

static int listen_any(vigil_loop *loop, vigil_tcp *lst, struct sockaddr_storage *bound) {
  struct sockaddr_storage any;
  int len = (int)sizeof *bound;
  loopback4(&any, 0);
  ASSERT_EQ(vigil_tcp_init(loop, lst), 0);
  ASSERT_EQ(vigil_tcp_bind_listen(lst, (struct sockaddr *)&any, 64, 0, on_connection), 0);
  ASSERT_EQ(vigil_tcp_sockname(lst, (struct sockaddr *)bound, &len), 0);
  return 0;
}

static int open_loop(vigil_loop *loop) {
  ASSERT_EQ(util_net_init(), 0);
  ASSERT_EQ(vigil_loop_init(loop, NULL), 0);
  ASSERT_STR_EQ(vigil_loop_backend_name(loop), "iocp");
  return 0;
}

/* A connected pair: c connects through lst into *s (the first accept). */
static int make_pair(vigil_loop *loop, vigil_tcp *lst, endpoint *c, endpoint *s) {
  static vigil_connect_req req;
  struct sockaddr_storage bound;
  accept_pool_eps = s;
  accepted = 0;
  accept_cap = 1;
  ASSERT_EQ(listen_any(loop, lst, &bound), 0);
  ASSERT_EQ(vigil_tcp_init(loop, &c->tcp), 0);
  req.data = c;
  ASSERT_EQ(vigil_tcp_connect(&req, &c->tcp, (struct sockaddr *)&bound, on_connect), 0);
  ASSERT_EQ(run_until(loop, &c->connected, 1), 0);
  ASSERT_EQ(run_until(loop, &accepted, 1), 0);
  return 0;
}

/* ---- cases ---------------------------------------------------------------- */

static int case_error_mapping(void) {
  static const struct {
    unsigned long code;
    int want;
  } table[] = {
      /* The conditions vigil names a cause for, in both spellings. */
      {WSAECONNRESET, VIGIL_ECONNRESET},
      {ERROR_NETNAME_DELETED, VIGIL_ECONNRESET},
      {WSAETIMEDOUT, VIGIL_ETIMEDOUT},
      {ERROR_SEM_TIMEOUT, VIGIL_ETIMEDOUT},
      {WSAENETRESET, VIGIL_ETIMEDOUT}, /* keep-alive detected a failure */
      {WSAEHOSTUNREACH, VIGIL_EHOSTUNREACH},
      {ERROR_HOST_UNREACHABLE, VIGIL_EHOSTUNREACH},
      {WSAENETUNREACH, VIGIL_ENETUNREACH},
      {ERROR_NETWORK_UNREACHABLE, VIGIL_ENETUNREACH},
      {WSAECONNABORTED, VIGIL_ECONNABORTED},
      {ERROR_CONNECTION_ABORTED, VIGIL_ECONNABORTED},
      {WSAECONNREFUSED, VIGIL_ECONNREFUSED},
      {ERROR_CONNECTION_REFUSED, VIGIL_ECONNREFUSED},
      {ERROR_PORT_UNREACHABLE, VIGIL_ECONNREFUSED},
      {ERROR_OPERATION_ABORTED, VIGIL_ECANCELED},
      {WSAESHUTDOWN, VIGIL_EPIPE},
      {WSAEWOULDBLOCK, VIGIL_EAGAIN},
      {WSAEADDRINUSE, VIGIL_EADDRINUSE},
      {WSAEMFILE, VIGIL_EMFILE},
      {WSAENOBUFS, VIGIL_ENOBUFS},
      {WSAENOTSOCK, VIGIL_EBADF},
      {WSAENOTCONN, VIGIL_ENOTCONN},
      {WSAEAFNOSUPPORT, VIGIL_EAFNOSUPPORT},
      {ERROR_NOT_ENOUGH_MEMORY, VIGIL_ENOMEM},
      {0, 0},
  };
  size_t i;
  for (i = 0; i < sizeof table / sizeof table[0]; i++)
    if (vigil__win_error(table[i].code) != table[i].want)
      TEST_FAIL_AT("code %lu -> %s, want %s", table[i].code,
                   vigil_err_name(vigil__win_error(table[i].code)), vigil_err_name(table[i].want));
  /* Unknown codes are an error, never success or a crash. */
  ASSERT_EQ(vigil__win_error(123456789ul), VIGIL_EPROTO);
  /* The private range: no Windows code is mistaken for another. */
  ASSERT_NE(VIGIL_ECONNRESET, -WSAECONNRESET);
  ASSERT_NE(VIGIL_ECONNRESET, -ECONNRESET);
  WSASetLastError(WSAECONNRESET);
  ASSERT_EQ(vigil__win_sock_error(), VIGIL_ECONNRESET);
  return 0;
}

/* The keepalive code reports a failed setsockopt through the same table
 * as the loop (they once had two, which drifted: WSAEHOSTDOWN was
 * EHOSTUNREACH to the loop and EPROTO to keepalive). Every Winsock code
 * either table ever named must agree. */
static int case_keepalive_errors(void) {
  static const int codes[] = {
      WSAEWOULDBLOCK,     WSAEINVAL,          WSAEFAULT,       WSAENOBUFS,
      WSAEMSGSIZE,        WSAECONNRESET,      WSAECONNREFUSED, WSAECONNABORTED,
      WSAETIMEDOUT,       WSAEHOSTUNREACH,    WSAEHOSTDOWN,    WSAENETUNREACH,
      WSAENETDOWN,        WSAENETRESET,       WSAEADDRINUSE,   WSAEADDRNOTAVAIL,
      WSAEAFNOSUPPORT,    WSAEPFNOSUPPORT,    WSAEMFILE,       WSAEOPNOTSUPP,
      WSAEPROTONOSUPPORT, WSAESOCKTNOSUPPORT, WSAENOPROTOOPT,  WSAENOTSOCK,
      WSAEBADF,           WSA_INVALID_HANDLE, WSAENOTCONN,     WSAEISCONN,
      WSAEALREADY,        WSAEINPROGRESS,     WSAEINTR,        WSA_OPERATION_ABORTED,
      WSAEACCES,          WSANOTINITIALISED,  WSASYSNOTREADY,  WSAESHUTDOWN,
      WSAEDISCON,
  };
  size_t i;
  for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    int loop_err = vigil__win_error((unsigned long)codes[i]), ka_err;
    WSASetLastError(codes[i]);
    ka_err = vigil__keepalive_os_last_error();
    if (ka_err != loop_err)
      TEST_FAIL_AT("Winsock %d: keepalive says %s, the loop %s", codes[i], vigil_err_name(ka_err),
                   vigil_err_name(loop_err));
  }
  return 0;
}

static int case_ntstatus_mapping(void) {
  ASSERT_EQ(vigil__win_ntstatus(ST_SUCCESS), 0);
  ASSERT_EQ(vigil__win_ntstatus(ST_PENDING), 0); /* informational, not failure */
  ASSERT_EQ(vigil__win_ntstatus(ST_CONNECTION_RESET), VIGIL_ECONNRESET);
  ASSERT_EQ(vigil__win_ntstatus(ST_IO_TIMEOUT), VIGIL_ETIMEDOUT);
  ASSERT_EQ(vigil__win_ntstatus(ST_CANCELLED), VIGIL_ECANCELED);
  ASSERT_EQ(vigil__win_ntstatus(ST_CONNECTION_REFUSED), VIGIL_ECONNREFUSED);
  ASSERT_EQ(vigil__win_ntstatus(ST_HOST_UNREACHABLE), VIGIL_EHOSTUNREACH);
  ASSERT_EQ(vigil__win_ntstatus(ST_NETWORK_UNREACHABLE), VIGIL_ENETUNREACH);
  ASSERT_EQ(vigil__win_ntstatus(ST_CONNECTION_ABORTED), VIGIL_ECONNABORTED);
  return 0;
}

/* BOOTTIME - MONOTONIC (read BOOTTIME second, so it cannot be behind). */
static uint64_t boot_offset(void) {
  uint64_t m = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  return vigil__plat_clock(NULL, VIGIL_CLOCK_BOOTTIME) - m;
}

static int case_clocks(void) {
  uint64_t m0, m1, b0, b1, off0, off1;
  int i;
  m0 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  b0 = vigil__plat_clock(NULL, VIGIL_CLOCK_BOOTTIME);
  for (i = 0; i < 1000; i++) {
    m1 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
    b1 = vigil__plat_clock(NULL, VIGIL_CLOCK_BOOTTIME);
    ASSERT_UGE(m1, m0); /* never backwards */
    ASSERT_UGE(b1, b0);
    m0 = m1;
    b0 = b1;
  }
  /* Resolution: a 20 ms sleep is seen as at least ~20 ms, not as zero or a
   * 15.6 ms tick's multiple below it. */
  m0 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  Sleep(20);
  m1 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  ASSERT_UGE(m1 - m0, 19 * 1000000u);
  ASSERT_ULE(m1 - m0, 2000 * 1000000u);
  fprintf(stderr, "BOOTTIME is %s\n",
          vigil__win_has_boottime() ? "QueryInterruptTimePrecise (counts suspend)"
                                    : "the MONOTONIC fallback (QPC)");
  /* Without a suspend, BOOTTIME - MONOTONIC is constant. */
  off0 = boot_offset();
  Sleep(20);
  off1 = boot_offset();
  ASSERT_ULE(off1 > off0 ? off1 - off0 : off0 - off1, 1000000u);
  return 0;
}

/* More simultaneous connections than the AcceptEx pool holds: all are
 * accepted, and each accepted socket knows its peer (SO_UPDATE_ACCEPT_CONTEXT). */
static int case_accept_burst(void) {
  static endpoint clients[BURST], servers[BURST];
  static vigil_connect_req reqs[BURST];
  struct sockaddr_storage bound, peer, name;
  vigil_loop loop;
  vigil_tcp lst;
  int i, j, connected = 0, len, found;

  memset(clients, 0, sizeof clients);
  memset(servers, 0, sizeof servers);
  ASSERT_EQ(open_loop(&loop), 0);
  accept_pool_eps = servers;
  accepted = accept_errors = 0;
  accept_cap = BURST;
  ASSERT_EQ(listen_any(&loop, &lst, &bound), 0);
  for (i = 0; i < BURST; i++) {
    ASSERT_EQ(vigil_tcp_init(&loop, &clients[i].tcp), 0);
    reqs[i].data = &clients[i];
    ASSERT_EQ(vigil_tcp_connect(&reqs[i], &clients[i].tcp, (struct sockaddr *)&bound, on_connect),
              0);
  }
  ASSERT_EQ(run_until(&loop, &accepted, BURST), 0);
  ASSERT_EQ(accept_errors, 0);
  for (i = 0; i < BURST; i++) {
    ASSERT_EQ(run_until(&loop, &clients[i].connected, 1), 0);
    connected += clients[i].connected == 1;
  }
  ASSERT_EQ(connected, BURST);
  for (i = 0; i < BURST; i++) {
    len = (int)sizeof peer;
    ASSERT_EQ(vigil_tcp_peername(&servers[i].tcp, (struct sockaddr *)&peer, &len), 0);
    for (found = 0, j = 0; j < BURST && !found; j++) {
      len = (int)sizeof name;
      ASSERT_EQ(vigil_tcp_sockname(&clients[j].tcp, (struct sockaddr *)&name, &len), 0);
      found = memcmp(&peer, &name, sizeof(struct sockaddr_in)) == 0;
    }
    ASSERT(found);
    /* SO_UPDATE_CONNECT_CONTEXT: the connecting side knows its peer too. */
    len = (int)sizeof peer;
    ASSERT_EQ(vigil_tcp_peername(&clients[i].tcp, (struct sockaddr *)&peer, &len), 0);
  }
  for (i = 0; i < BURST; i++) {
    vigil_tcp_close(&clients[i].tcp, NULL);
    vigil_tcp_close(&servers[i].tcp, NULL);
  }
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

/* A listener's close does not wait for its cancelled AcceptEx calls: the
 * close callback runs in the same iteration and the handle can be reused
 * at once; the loop still closes cleanly (the orphaned pool is drained). */
static int lst_closed;

static void on_lst_closed(vigil_tcp *tcp) {
  (void)tcp;
  lst_closed++;
}

static int case_listener_close(void) {
  struct sockaddr_storage bound;
  vigil_loop loop;
  vigil_tcp lst;
  uint64_t t0;
  int round;

  ASSERT_EQ(open_loop(&loop), 0);
  lst_closed = 0;
  for (round = 0; round < 3; round++) {
    ASSERT_EQ(listen_any(&loop, &lst, &bound), 0);
    ASSERT_EQ(vigil_tcp_accept_drop(&lst), VIGIL_ENOTSUP);
    vigil_tcp_close(&lst, on_lst_closed);
    ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 0);
    ASSERT_EQ(lst_closed, round + 1);
  }
  /* Nothing is left to drain (the iteration above took the cancelled
   * accepts), so closing the loop does not wait. */
  t0 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ASSERT_ULE(vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC) - t0, 500 * 1000000u);

  /* Closed with the loop never run again: the loop's close takes the
   * cancelled accepts itself, and still promptly. */
  ASSERT_EQ(open_loop(&loop), 0);
  ASSERT_EQ(listen_any(&loop, &lst, &bound), 0);
  vigil_tcp_close(&lst, on_lst_closed);
  ASSERT_EQ(run_until(&loop, &lst_closed, 4), 0);
  t0 = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  ASSERT_ULE(vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC) - t0, 500 * 1000000u);
  return 0;
}

static int case_reuseport(void) {
  struct sockaddr_storage any;
  vigil_loop loop;
  vigil_tcp lst;

  ASSERT_EQ(open_loop(&loop), 0);
  loopback4(&any, 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &lst), 0);
  ASSERT_EQ(
      vigil_tcp_bind_listen(&lst, (struct sockaddr *)&any, 1, VIGIL_TCP_REUSEPORT, on_connection),
      VIGIL_ENOTSUP);
  ASSERT_EQ(vigil_tcp_socket(&lst), VIGIL_INVALID_SOCKET);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

/* read_stop leaves the zero-byte WSARecv out; read_start reuses it rather
 * than posting a second one, so bytes arrive once and in order. */
static int case_read_restart(void) {
  static endpoint c, s;
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w;
  static char abc[] = "abc";
  vigil_buf b = vigil_buf_init(abc, 3);
  int i;

  memset(&c, 0, sizeof c);
  memset(&s, 0, sizeof s);
  ASSERT_EQ(open_loop(&loop), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &c, &s), 0);
  ASSERT_EQ(vigil_tcp_read_start(&s.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_read_stop(&s.tcp), 0);
  ASSERT_EQ(vigil_tcp_write(&w, &c.tcp, &b, 1, on_write), 0);
  for (i = 0; i < 20; i++)
    (void)vigil_loop_run(&loop, VIGIL_RUN_NOWAIT);
  Sleep(50);
  for (i = 0; i < 20; i++)
    (void)vigil_loop_run(&loop, VIGIL_RUN_NOWAIT);
  ASSERT_EQ(s.len, 0); /* not reading: nothing delivered */
  ASSERT_EQ(vigil_tcp_read_start(&s.tcp, ep_alloc, ep_read), 0);
  ASSERT_EQ(vigil_tcp_read_stop(&s.tcp), 0);
  ASSERT_EQ(vigil_tcp_read_start(&s.tcp, ep_alloc, ep_read), 0);
  {
    vigil_loop_timer guard;
    vigil_loop_timer_init(&guard);
    guard_fired = 0;
    vigil_loop_timer_arm(&loop, &guard, vigil_loop_now_ms(&loop) + GUARD_MS, on_guard);
    while (s.len < 3 && !guard_fired)
      (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
    vigil_loop_timer_cancel(&loop, &guard);
  }
  ASSERT_EQ(s.len, 3);
  ASSERT_MEM_EQ(s.data, "abc", 3);
  /* try_write on an IOCP socket: a plain non-blocking send. */
  ASSERT_EQ(vigil_tcp_try_write(&c.tcp, &b, 1), 3);
  {
    vigil_loop_timer guard;
    vigil_loop_timer_init(&guard);
    guard_fired = 0;
    vigil_loop_timer_arm(&loop, &guard, vigil_loop_now_ms(&loop) + GUARD_MS, on_guard);
    while (s.len < 6 && !guard_fired)
      (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
    vigil_loop_timer_cancel(&loop, &guard);
  }
  ASSERT_EQ(s.len, 6);
  ASSERT_MEM_EQ(s.data, "abcabc", 6);
  vigil_tcp_close(&c.tcp, NULL);
  vigil_tcp_close(&s.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

/* A write queued while connecting goes out once connected. */
static int case_write_while_connecting(void) {
  static endpoint c, s;
  static vigil_connect_req req;
  struct sockaddr_storage bound;
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w;
  static char early[] = "early";
  vigil_buf b = vigil_buf_init(early, 5);
  vigil_loop_timer guard;

  memset(&c, 0, sizeof c);
  memset(&s, 0, sizeof s);
  norder = 0;
  write_status = 1;
  ASSERT_EQ(open_loop(&loop), 0);
  accept_pool_eps = &s;
  accepted = 0;
  accept_cap = 1;
  ASSERT_EQ(listen_any(&loop, &lst, &bound), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &c.tcp), 0);
  req.data = &c;
  ASSERT_EQ(vigil_tcp_connect(&req, &c.tcp, (struct sockaddr *)&bound, on_connect), 0);
  ASSERT_EQ(vigil_tcp_write(&w, &c.tcp, &b, 1, on_write), 0);
  ASSERT_EQ(vigil_tcp_try_write(&c.tcp, &b, 1), VIGIL_EAGAIN); /* still connecting */
  ASSERT_EQ(run_until(&loop, &accepted, 1), 0);
  ASSERT_EQ(vigil_tcp_read_start(&s.tcp, ep_alloc, ep_read), 0);
  vigil_loop_timer_init(&guard);
  guard_fired = 0;
  vigil_loop_timer_arm(&loop, &guard, vigil_loop_now_ms(&loop) + GUARD_MS, on_guard);
  while ((s.len < 5 || write_status == 1) && !guard_fired)
    (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
  vigil_loop_timer_cancel(&loop, &guard);
  ASSERT_EQ(s.len, 5);
  ASSERT_MEM_EQ(s.data, "early", 5);
  ASSERT_EQ(write_status, 0);
  ASSERT_EQ(order[0], EV_CONNECT); /* the connect callback comes first */
  ASSERT_EQ(order[1], EV_WRITE);
  vigil_tcp_close(&c.tcp, NULL);
  vigil_tcp_close(&s.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

/* Closing while ConnectEx is out: the connect and the queued write report
 * ECANCELED, both before the close callback. */
static int case_close_while_connecting(void) {
  static endpoint c;
  static vigil_connect_req req;
  struct sockaddr_storage bound;
  vigil_loop loop;
  vigil_tcp lst;
  vigil_write_req w;
  static char never[] = "never";
  vigil_buf b = vigil_buf_init(never, 5);

  memset(&c, 0, sizeof c);
  norder = 0;
  write_status = 1;
  ASSERT_EQ(open_loop(&loop), 0);
  accepted = 0;
  accept_cap = 0; /* the listener refuses whatever completes */
  ASSERT_EQ(listen_any(&loop, &lst, &bound), 0);
  ASSERT_EQ(vigil_tcp_init(&loop, &c.tcp), 0);
  req.data = &c;
  ASSERT_EQ(vigil_tcp_connect(&req, &c.tcp, (struct sockaddr *)&bound, on_connect), 0);
  ASSERT_EQ(vigil_tcp_write(&w, &c.tcp, &b, 1, on_write), 0);
  vigil_tcp_close(&c.tcp, ep_closed);
  ASSERT_EQ(norder, 0); /* callbacks only from the loop */
  ASSERT_EQ(vigil_tcp_write_queue_size(&c.tcp), 0);
  ASSERT_EQ(run_until(&loop, &c.closed, 1), 0);
  ASSERT_EQ(norder, 3);
  ASSERT_EQ(order[2], EV_CLOSE);
  ASSERT_EQ(write_status, VIGIL_ECANCELED);
  /* The ConnectEx may have finished in the kernel before the cancel; it is
   * still reported cancelled: the handle was closed first. */
  ASSERT_EQ(c.connect_status, VIGIL_ECANCELED);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}

/* Kernel keepalive (SIO_KEEPALIVE_VALS) on a socket the loop owns. */
static int case_keepalive_on_loop_socket(void) {
  static endpoint c, s;
  vigil_loop loop;
  vigil_tcp lst;
  vigil_keepalive ka;
  vigil_keepalive_report rep;

  memset(&c, 0, sizeof c);
  memset(&s, 0, sizeof s);
  ASSERT_EQ(open_loop(&loop), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &c, &s), 0);
  vigil_keepalive_init(&ka);
  ka.enable = 1;
  ka.idle_ms = 2000;
  ka.interval_ms = 1000;
  (void)vigil_keepalive_apply(vigil_tcp_socket(&c.tcp), &ka, &rep);
  ASSERT_EQ(rep.status[VIGIL_KEEPALIVE_OPT_ENABLE], VIGIL_KEEPALIVE_APPLIED);
  ASSERT_EQ(rep.status[VIGIL_KEEPALIVE_OPT_IDLE], VIGIL_KEEPALIVE_APPLIED);
  ASSERT_EQ(rep.status[VIGIL_KEEPALIVE_OPT_INTERVAL], VIGIL_KEEPALIVE_APPLIED);
  ASSERT_EQ(rep.applied[VIGIL_KEEPALIVE_OPT_IDLE], 2000);
  vigil_tcp_close(&c.tcp, NULL);
  vigil_tcp_close(&s.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}
/* A read callback sees the time its bytes arrived, not the time the wait
 * began (vigil__loop_awake right after GetQueuedCompletionStatusEx): a
 * thread sends one byte 200 ms into the loop's wait. The Windows twin of
 * loop_read_sees_arrival_time, which forks. */
static uint64_t read_seen_ns;

static void stamp_read(vigil_tcp *tcp, long nread, const vigil_buf *buf) {
  if (nread > 0 && read_seen_ns == 0)
    read_seen_ns = vigil_loop_now_ns(tcp->loop);
  ep_read(tcp, nread, buf);
}

static DWORD WINAPI send_later(LPVOID arg) {
  SOCKET s = *(const SOCKET *)arg;
  Sleep(200);
  return send(s, "x", 1, 0) == 1 ? 0 : 1;
}

static int case_arrival_time(void) {
  static endpoint c, s;
  vigil_loop loop;
  vigil_tcp lst;
  vigil_loop_timer guard;
  uint64_t before, after;
  SOCKET csock;
  HANDLE th;
  DWORD code = 1;

  memset(&c, 0, sizeof c);
  memset(&s, 0, sizeof s);
  read_seen_ns = 0;
  ASSERT_EQ(open_loop(&loop), 0);
  ASSERT_EQ(make_pair(&loop, &lst, &c, &s), 0);
  ASSERT_EQ(vigil_tcp_read_start(&s.tcp, ep_alloc, stamp_read), 0);
  vigil_loop_timer_init(&guard);
  vigil_loop_update_time(&loop);
  vigil_loop_timer_arm(&loop, &guard, vigil_loop_now_ms(&loop) + GUARD_MS, on_guard);
  csock = (SOCKET)vigil_tcp_socket(&c.tcp);
  before = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  th = CreateThread(NULL, 0, send_later, &csock, 0, NULL);
  ASSERT_NOT_NULL(th);
  ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_ONCE), 1);
  after = vigil__plat_clock(NULL, VIGIL_CLOCK_MONOTONIC);
  ASSERT_EQ(WaitForSingleObject(th, GUARD_MS), WAIT_OBJECT_0);
  ASSERT(GetExitCodeThread(th, &code));
  CloseHandle(th);
  ASSERT_EQ(code, 0);
  ASSERT_NE(read_seen_ns, 0);
  ASSERT_UGE(read_seen_ns, before + (uint64_t)150 * 1000000u);
  ASSERT_ULE(read_seen_ns, after);
  vigil_loop_timer_cancel(&loop, &guard);
  vigil_tcp_close(&c.tcp, NULL);
  vigil_tcp_close(&s.tcp, NULL);
  vigil_tcp_close(&lst, NULL);
  ASSERT_EQ(run_to_end(&loop), 0);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
}
#endif /* _WIN32 */

#ifdef _WIN32
#define WINDOWS_ONLY(call) return call
#else
#define WINDOWS_ONLY(call) RETURN_SKIP("Windows only (IOCP backend, Winsock errors)")
#endif

TEST_IMPL(windows_error_mapping) {
  WINDOWS_ONLY(case_error_mapping());
}

TEST_IMPL(windows_keepalive_errors_match_loop) {
  WINDOWS_ONLY(case_keepalive_errors());
}

TEST_IMPL(windows_ntstatus_mapping) {
  WINDOWS_ONLY(case_ntstatus_mapping());
}

TEST_IMPL(windows_clocks) {
  WINDOWS_ONLY(case_clocks());
}

TEST_IMPL(windows_accept_burst) {
  WINDOWS_ONLY(case_accept_burst());
}

TEST_IMPL(windows_listener_close_is_immediate) {
  WINDOWS_ONLY(case_listener_close());
}

TEST_IMPL(windows_reuseport_unsupported) {
  WINDOWS_ONLY(case_reuseport());
}

TEST_IMPL(windows_read_restart_and_try_write) {
  WINDOWS_ONLY(case_read_restart());
}

TEST_IMPL(windows_write_while_connecting) {
  WINDOWS_ONLY(case_write_while_connecting());
}

TEST_IMPL(windows_close_while_connecting) {
  WINDOWS_ONLY(case_close_while_connecting());
}

TEST_IMPL(windows_keepalive_on_loop_socket) {
  WINDOWS_ONLY(case_keepalive_on_loop_socket());
}

TEST_IMPL(windows_read_sees_arrival_time) {
  WINDOWS_ONLY(case_arrival_time());
}
