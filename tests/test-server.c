/* The server on real loopback sockets: each cause of death as the server
 * sees it, each limit and the close it produces, presence takeover,
 * backpressure, shutdown, EMFILE, and the stall guard.
 *
 * Peers are a vigil client on the same loop, a hand-driven raw socket
 * (util-proc.h) that can misbehave, or a child process that can be
 * SIGSTOPped. Heartbeat: interval 100 ms, timeout 300 ms. Every wait is
 * bounded (util_run_until); timing assertions are strict on the early
 * side (a verdict before `timeout` is a bug) and allow 20 ms on the late
 * side only where the brief demands it (the raw silent peer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

#include "conn.h"
#include "evidence.h"
#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "vigil.h"

#define INTERVAL 100u
#define TIMEOUT 300u
#define WAIT 3000u
/* A raw peer whose heartbeat is not what a test is about proposes this
 * one, which cannot convict it during the test: on a loaded machine a
 * test may take longer than TIMEOUT between two steps, and a heartbeat
 * verdict (peer_stalled) would then overtake the ending under test. */
#define QUIET_INTERVAL 2000u
#define QUIET_TIMEOUT 6000u

typedef struct fixture {
  vigil_loop loop;
  vigil_server *srv;
  util_rec rec;
  uint16_t port;
} fixture;

static void server_config(fixture *f, vigil_server_config *cfg) {
  util_rec_init(&f->rec);
  vigil_server_config_init(cfg);
  cfg->session.interval_ms = INTERVAL;
  cfg->session.timeout_ms = TIMEOUT;
  cfg->session.min_interval_ms = 50;
  cfg->cb = util_rec_callbacks();
  cfg->user = &f->rec;
  cfg->on_closed = util_rec_on_server_closed;
}

static int server_up(fixture *f, const vigil_server_config *cfg) {
  int rc;
  if ((rc = util_net_init()) != 0)
    return rc;
  if ((rc = vigil_loop_init(&f->loop, NULL)) != 0)
    return rc;
  if ((rc = vigil_server_new(&f->srv, &f->loop, cfg)) != 0)
    return rc;
  return vigil_server_listen(f->srv, "127.0.0.1", 0, &f->port);
}

/* Shuts the server down and checks that every socket and timer is gone. */
static int server_down(fixture *f) {
  int rc;
  (void)vigil_server_shutdown(f->srv, 500);
  if (!util_run_until(&f->loop, &f->rec.closed, WAIT))
    return VIGIL_ETIMEDOUT;
  util_run_for(&f->loop, 5);
  if ((rc = vigil_server_free(f->srv)) != 0)
    return rc;
  util_run_for(&f->loop, 5);
  return vigil_loop_close(&f->loop);
}

static void client_config(vigil_client_config *cfg, util_rec *rec, const char *id) {
  util_rec_init(rec);
  vigil_client_config_init(cfg);
  cfg->session.interval_ms = INTERVAL;
  cfg->session.timeout_ms = TIMEOUT;
  cfg->session.id = id;
  cfg->session.id_len = strlen(id);
  cfg->cb = util_rec_callbacks();
  cfg->user = rec;
  cfg->on_reconnect = util_rec_on_reconnect;
  cfg->on_closed = util_rec_on_client_closed;
  cfg->backoff_base_ms = 50;
  cfg->backoff_cap_ms = 400;
}

/* A raw peer that has done its handshake with the fixture's server,
 * proposing interval / timeout. */
static int raw_open_hb(fixture *f, const char *id, uint32_t interval, uint32_t timeout,
                       vigil_os_socket *s) {
  int opens = f->rec.opens + 1, rc;
  uint8_t buf[512];
  vigil_frame fr;
  if ((rc = util_raw_connect("127.0.0.1", f->port, s)) != 0)
    return rc;
  if ((rc = util_raw_hello(*s, id, interval, timeout)) != 0)
    return rc;
  if (!util_run_until_n(&f->loop, &f->rec.opens, opens, WAIT))
    return VIGIL_ETIMEDOUT;
  util_run_for(&f->loop, 2);
  return util_raw_expect(*s, VIGIL_FRAME_WELCOME, WAIT, &fr, buf, sizeof buf);
}

/* The same with the test heartbeat (INTERVAL / TIMEOUT). */
static int raw_open(fixture *f, const char *id, vigil_os_socket *s) {
  return raw_open_hb(f, id, INTERVAL, TIMEOUT, s);
}

/* The same with a heartbeat that stays out of the test's way. */
static int raw_open_quiet(fixture *f, const char *id, vigil_os_socket *s) {
  return raw_open_hb(f, id, QUIET_INTERVAL, QUIET_TIMEOUT, s);
}

/* ---- causes -------------------------------------------------------------- */

TEST_IMPL(open_message_rtt_close) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *cli;
  util_rec crec;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  f.rec.echo = 1;
  client_config(&ccfg, &crec, "alice");
  ASSERT_EQ(vigil_client_new(&cli, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(cli, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &crec.opens, WAIT));
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT_STR_EQ(f.rec.id, "alice");
  ASSERT_EQ(f.rec.rejoin, 0);
  ASSERT(strncmp(f.rec.peer, "127.0.0.1:", 10) == 0);
  ASSERT_EQ(crec.interval_ms, INTERVAL);
  ASSERT_EQ(crec.timeout_ms, TIMEOUT);
  ASSERT_EQ(crec.attempt, 1);
  /* A 100 KB message crosses in 16 KiB chunks, is reassembled, echoed. */
  {
    static uint8_t big[100000];
    size_t i;
    for (i = 0; i < sizeof big; i++)
      big[i] = (uint8_t)(i * 7);
    ASSERT_EQ(vigil_client_send(cli, big, sizeof big), 0);
    ASSERT(util_run_until(&f.loop, &crec.messages, WAIT));
    ASSERT_EQ(f.rec.messages, 1);
    ASSERT_EQ(f.rec.msg_len, sizeof big);
    ASSERT_EQ(crec.msg_len, sizeof big);
    ASSERT_MEM_EQ(crec.msg, big, sizeof crec.msg);
  }
  /* Sending by peer id through the presence table. */
  ASSERT_EQ(vigil_server_send_to(f.srv, "alice", 5, "by id", 5), 0);
  ASSERT_EQ(vigil_server_send_to(f.srv, "nobody", 6, "x", 1), VIGIL_ENOENT);
  ASSERT(util_run_until_n(&f.loop, &crec.messages, 2, WAIT));
  ASSERT_EQ(crec.msg_len, 5);
  ASSERT_MEM_EQ(crec.msg, "by id", 5);
  /* Idle: pings go out on receive-idle, so whichever side's jittered idle
   * period ends first pings and measures RTT; the other just answers. */
  util_run_for(&f.loop, 6 * INTERVAL);
  ASSERT_GE(f.rec.rtts + crec.rtts, 3);
  ASSERT_EQ(f.rec.deaths + crec.deaths, 0);
  ASSERT_EQ(f.rec.deaths + crec.deaths, 0);
  /* Goodbye: the server sees closed by CLOSE NORMAL, the client local. */
  ASSERT_EQ(vigil_client_close(cli, 0), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_CLOSED);
  ASSERT_EQ(f.rec.death.close_received, 1);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_NORMAL);
  ASSERT_STR_EQ(f.rec.reason, "goodbye");
  ASSERT(util_run_until(&f.loop, &crec.closed, WAIT));
  ASSERT_EQ(crec.deaths, 1);
  ASSERT_EQ(crec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(crec.death.close_sent, 1);
  ASSERT_EQ(crec.reconnects, 0);
  ASSERT_EQ(vigil_client_free(cli), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* A raw peer opens, then ends the connection with `end`; the server must
 * report `cause` with socket error `err`. */
static int raw_peer_ends(void (*end)(vigil_os_socket), vigil_cause cause, int err) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "ender", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  end(s);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(f.rec.death.cause, cause);
  ASSERT_EQ(f.rec.death.error, err);
  ASSERT_EQ(f.rec.death.close_received, 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(eof_is_closed) {
  return raw_peer_ends(util_raw_close, VIGIL_CAUSE_CLOSED, VIGIL_EOF);
}

TEST_IMPL(rst_is_reset) {
  return raw_peer_ends(util_raw_reset, VIGIL_CAUSE_RESET, VIGIL_ECONNRESET);
}

/* A raw peer completes the handshake and goes silent. Its kernel still
 * ACKs our pings, so the evidence rule says peer_stalled; the verdict time
 * is what the heartbeat guarantees: within [timeout, timeout + 20 ms] of
 * the last valid frame (the HELLO). The lower bound is strict. The upper
 * one is 20 ms past what the scheduler made us wait for a CPU meanwhile
 * (util_cpu_wait_ns: 0 on an idle machine, so there the bound is exactly
 * timeout + 20 ms; on an overloaded one the loop cannot convict before it
 * runs, and that delay is not the heartbeat's). */
TEST_IMPL(silent_peer_verdict_time) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  uint64_t hello_ns, since_hello_ms, wait0, waited;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (util_raw_connect("127.0.0.1", f.port, &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  hello_ns = util_now_ns();
  wait0 = util_cpu_wait_ns();
  ASSERT_EQ(util_raw_hello(s, "quiet", INTERVAL, TIMEOUT), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  since_hello_ms = (f.rec.death_ns - hello_ns) / 1000000u;
  waited = f.rec.death_wait_ns - wait0;
  fprintf(stderr,
          "verdict: silent_ms=%.3f (bound %u..%.3f), %llu ms after HELLO was sent, cause %s (%s)\n",
          (double)f.rec.death.silent_ns / 1e6, TIMEOUT, TIMEOUT + 20 + (double)waited / 1e6,
          (unsigned long long)since_hello_ms, vigil_cause_name(f.rec.death.cause), f.rec.detail);
  ASSERT_UGE(f.rec.death.silent_ns, (uint64_t)TIMEOUT * VIGIL_MS);
  ASSERT_ULE(f.rec.death.silent_ns, (uint64_t)(TIMEOUT + 20) * VIGIL_MS + waited);
  ASSERT_UGE(since_hello_ms, TIMEOUT);
  ASSERT_EQ(f.rec.death.cause, util_stalled_cause(&f.rec.death));
  if (f.rec.death.tcp.available)
    ASSERT_EQ(f.rec.death.tcp.unacked, 0);
  ASSERT_EQ(f.rec.death.close_sent, 1);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_TIMEOUT);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The verdict counts from when the peer's last frame reached this host,
 * not from when a busy loop got round to reading it (issue 11). A raw
 * peer sends one PING, the frame it is last heard from, while the server's
 * loop is busy for 100 ms in a timer callback; then it falls silent. With
 * the kernel's receive stamp the verdict comes at [timeout, timeout + 20
 * ms] after that PING was sent (plus what the scheduler made us wait for a
 * CPU); dated by the loop it would come 100 ms later. */
typedef struct busy_ping {
  vigil_loop_timer t;
  vigil_os_socket s;
  uint64_t sent_ns;
  int rc;
} busy_ping;

static void send_ping_while_busy(vigil_loop *loop, vigil_loop_timer *t) {
  busy_ping *b = vigil_container_of(t, busy_ping, t);
  static const uint8_t ping[2] = {VIGIL_FRAME_PING, 0};
  (void)loop;
  b->sent_ns = util_now_ns();
  b->rc = util_raw_send(b->s, ping, sizeof ping);
  while (util_now_ns() - b->sent_ns < 100 * VIGIL_MS)
    ; /* the loop is busy: nothing is read meanwhile */
}

TEST_IMPL(verdict_counts_from_kernel_arrival) {
  fixture f;
  vigil_server_config cfg;
  busy_ping b;
  uint64_t since_ping, wait0, waited;
#if !defined(HAVE_SO_TIMESTAMPNS)
  RETURN_SKIP("no kernel receive stamps here (SO_TIMESTAMPNS): reads are dated by the loop");
#endif
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open(&f, "busy", &b.s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  b.sent_ns = 0;
  b.rc = -1;
  vigil_loop_timer_init(&b.t);
  vigil_loop_timer_arm(&f.loop, &b.t, vigil_loop_now_ms(&f.loop) + 20, send_ping_while_busy);
  wait0 = util_cpu_wait_ns();
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(b.rc, 0);
  ASSERT(b.sent_ns != 0);
  since_ping = f.rec.death_ns - b.sent_ns;
  waited = f.rec.death_wait_ns - wait0;
  fprintf(stderr, "verdict %.3f ms after the PING (bound %u..%.3f), silent_ms=%.3f, cause %s\n",
          (double)since_ping / 1e6, TIMEOUT, TIMEOUT + 20 + (double)waited / 1e6,
          (double)f.rec.death.silent_ns / 1e6, vigil_cause_name(f.rec.death.cause));
  ASSERT_UGE(since_ping, (uint64_t)TIMEOUT * VIGIL_MS);
  ASSERT_ULE(since_ping, (uint64_t)(TIMEOUT + 20) * VIGIL_MS + waited);
  ASSERT_UGE(f.rec.death.silent_ns, (uint64_t)TIMEOUT * VIGIL_MS);
  ASSERT_ULE(f.rec.death.silent_ns, (uint64_t)(TIMEOUT + 20) * VIGIL_MS + waited);
  util_raw_close(b.s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- SIGSTOPped client process ------------------------------------------- */

static uint16_t child_port;

static int child_client(void *arg) {
  vigil_loop loop;
  vigil_client_config ccfg;
  vigil_client *cli;
  util_rec rec;
  (void)arg;
  if (vigil_loop_init(&loop, NULL) != 0)
    return 10;
  client_config(&ccfg, &rec, "stopped");
  ccfg.no_reconnect = 1;
  if (vigil_client_new(&cli, &loop, &ccfg) != 0 ||
      vigil_client_connect(cli, "127.0.0.1", child_port) != 0)
    return 11;
  util_run_for(&loop, 20000); /* the parent stops and then kills us */
  return 0;
}

static int stop_client_and_watch(fixture *f, long pid) {
  uint64_t stop_ns, wait0;
  ASSERT(util_run_until(&f->loop, &f->rec.opens, WAIT));
  util_run_for(&f->loop, 3 * INTERVAL); /* heartbeats flow, nobody dies */
  ASSERT_EQ(f->rec.deaths, 0);
  ASSERT_EQ(util_proc_stop(pid), 0);
  stop_ns = util_now_ns();
  wait0 = util_cpu_wait_ns();
  ASSERT(util_run_until(&f->loop, &f->rec.deaths, WAIT));
  fprintf(stderr, "SIGSTOP -> verdict in %.1f ms; silent_ms=%.1f; cause %s (%s)\n",
          (double)(f->rec.death_ns - stop_ns) / 1e6, (double)f->rec.death.silent_ns / 1e6,
          vigil_cause_name(f->rec.death.cause), f->rec.detail);
  ASSERT_EQ(f->rec.death.cause, util_stalled_cause(&f->rec.death));
  ASSERT_UGE(f->rec.death.silent_ns, (uint64_t)TIMEOUT * VIGIL_MS);
  /* The child's last frame came before the stop: the verdict follows
   * within timeout (+ slack, + our own wait for a CPU) of the SIGSTOP. */
  ASSERT_ULE(f->rec.death_ns - stop_ns,
             (uint64_t)(TIMEOUT + 100) * VIGIL_MS + (f->rec.death_wait_ns - wait0));
  return 0;
}

TEST_IMPL(sigstopped_client_is_peer_stalled) {
  fixture f;
  vigil_server_config cfg;
  long pid;
  int rc;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  child_port = f.port;
  rc = util_proc_spawn(child_client, NULL, &pid);
  if (rc == VIGIL_ENOTSUP) {
    ASSERT_EQ(server_down(&f), 0);
    RETURN_SKIP("needs fork() and SIGSTOP (POSIX)");
  }
  ASSERT_EQ(rc, 0);
  rc = stop_client_and_watch(&f, pid);
  (void)util_proc_kill(pid); /* whatever happened, the child goes */
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- blackholes in a private network namespace ------------------------------ */

/* On bare loopback a live peer's kernel always ACKs, so heartbeat_timeout,
 * user_timeout and keepalive_timeout (the causes that need silence from
 * the peer's kernel too) are produced in a child process that moves into a
 * network namespace of its own, where util_blackhole_cut makes nftables
 * drop every packet of both ends, as a pulled cable would. */
enum { BH_HEARTBEAT, BH_USER_TIMEOUT, BH_KEEPALIVE };

#define CHECK(e)                                                                                   \
  do {                                                                                             \
    if (!(e)) {                                                                                    \
      fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #e);                               \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

static void blackhole_config(fixture *f, vigil_server_config *cfg, int mode) {
  server_config(f, cfg);
  if (mode == BH_USER_TIMEOUT) {
    cfg->session.interval_ms = 1000;
    cfg->session.timeout_ms = 3000;
    cfg->keepalive_mode = VIGIL_KEEPALIVE_EXPLICIT;
    cfg->keepalive.enable = 1;
    cfg->keepalive.user_timeout_ms = 500;
  } else if (mode == BH_KEEPALIVE) {
    cfg->session.interval_ms = 5000;
    cfg->session.timeout_ms = 15000;
    cfg->keepalive_mode = VIGIL_KEEPALIVE_EXPLICIT;
    cfg->keepalive.enable = 1;
    cfg->keepalive.idle_ms = 1000;
    cfg->keepalive.interval_ms = 1000;
    cfg->keepalive.count = 1;
  }
}

static int blackhole_child(void *arg) {
  int mode = *(int *)arg;
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  uint8_t buf[256];
  vigil_frame fr;
  uint64_t t0, wait0;
  vigil_cause want;
  int n;
  CHECK(util_netns_enter() == 0);
  CHECK(util_blackhole_prepare() == 0);
  blackhole_config(&f, &cfg, mode);
  CHECK(server_up(&f, &cfg) == 0);
  CHECK(util_raw_connect("127.0.0.1", f.port, &s) == 0);
  CHECK(util_raw_hello(s, "cable", cfg.session.interval_ms, cfg.session.timeout_ms) == 0);
  CHECK(util_run_until(&f.loop, &f.rec.opens, WAIT));
  CHECK(util_raw_expect(s, VIGIL_FRAME_WELCOME, WAIT, &fr, buf, sizeof buf) == 0);
  util_run_for(&f.loop, 50); /* our WELCOME is ACKed before the cable goes */
  /* The peer's last valid frame goes out just before the cut (loopback
   * delivers it within send()): whatever the server sent earlier, and
   * the ACK for it, predate that frame, so the evidence at the verdict
   * can only show a peer whose kernel went silent too. */
  n = vigil_wire_encode_data_header(buf, sizeof buf, 0, 1);
  CHECK(n > 0);
  buf[n] = '!';
  CHECK(util_raw_send(s, buf, (size_t)n + 1) == 0);
  CHECK(util_blackhole_cut(s) == 0);
  CHECK(f.rec.conn != NULL && util_blackhole_cut(vigil_tcp_socket(&f.rec.conn->tcp)) == 0);
  t0 = util_now_ns();
  wait0 = util_cpu_wait_ns();
  if (mode == BH_USER_TIMEOUT)
    CHECK(vigil_conn_send(f.rec.conn, "stuck in flight", 15) == 0);
  CHECK(util_run_until(&f.loop, &f.rec.deaths, 6000));
  fprintf(stderr,
          "blackhole -> %s (%s) after %.1f ms, silent_ms=%.1f, error %s; tcp: unacked %u "
          "probes %u backoff %u last_ack %u ms; waited for a CPU %.1f ms\n",
          vigil_cause_name(f.rec.death.cause), f.rec.detail, (double)(f.rec.death_ns - t0) / 1e6,
          (double)f.rec.death.silent_ns / 1e6, vigil_err_name(f.rec.death.error),
          f.rec.death.tcp.unacked, f.rec.death.tcp.probes, f.rec.death.tcp.backoff,
          f.rec.death.tcp.last_ack_recv_ms, (double)(f.rec.death_wait_ns - wait0) / 1e6);
  /* Without TCP_INFO nothing says our data sat unacknowledged: the
   * kernel's ETIMEDOUT then reads as keepalive_timeout (docs/RUNTIME.md). */
  want = mode == BH_HEARTBEAT                           ? VIGIL_CAUSE_HEARTBEAT_TIMEOUT
         : mode == BH_USER_TIMEOUT && UTIL_TCP_EVIDENCE ? VIGIL_CAUSE_USER_TIMEOUT
                                                        : VIGIL_CAUSE_KEEPALIVE_TIMEOUT;
  CHECK(f.rec.messages == 1); /* the last frame did arrive */
  CHECK(f.rec.death.cause == want);
  if (mode == BH_HEARTBEAT) {
    CHECK(f.rec.death.silent_ns >= (uint64_t)TIMEOUT * VIGIL_MS);
    CHECK(f.rec.death.silent_ns <=
          (uint64_t)(TIMEOUT + 20) * VIGIL_MS + (f.rec.death_wait_ns - wait0));
    CHECK(f.rec.death.close_code == VIGIL_CLOSE_TIMEOUT);
  } else {
    CHECK(f.rec.death.error == VIGIL_ETIMEDOUT);
  }
  util_raw_reset(s);
  CHECK(server_down(&f) == 0);
  return 0;
}

/* Runs the case in a child (its own network namespace); the child's exit
 * status is the test's. */
static int run_blackhole(int mode) {
  long pid;
  int rc = util_proc_spawn(blackhole_child, &mode, &pid);
  if (rc != 0)
    return 1;
  rc = util_proc_wait(pid, 20000);
  if (rc < 0)
    (void)util_proc_kill(pid);
  return rc;
}

TEST_IMPL(blackhole_is_heartbeat_timeout) {
  const char *why = util_blackhole_unavailable();
  if (why != NULL)
    RETURN_SKIP("blackhole in a private network namespace: %s", why);
  ASSERT_EQ(run_blackhole(BH_HEARTBEAT), 0);
  return 0;
}

TEST_IMPL(blackhole_with_data_is_user_timeout) {
  const char *why = util_blackhole_unavailable();
  if (why != NULL)
    RETURN_SKIP("blackhole in a private network namespace: %s", why);
  ASSERT_EQ(run_blackhole(BH_USER_TIMEOUT), 0);
  return 0;
}

TEST_IMPL(blackhole_idle_is_keepalive_timeout) {
  const char *why = util_blackhole_unavailable();
  if (why != NULL)
    RETURN_SKIP("blackhole in a private network namespace: %s", why);
  ASSERT_EQ(run_blackhole(BH_KEEPALIVE), 0);
  return 0;
}

/* ---- policy --------------------------------------------------------------- */

static int expect_close_retry(vigil_os_socket s, uint16_t code, uint32_t retry_after_ms) {
  uint8_t buf[1024];
  vigil_frame fr;
  int rc = util_raw_expect(s, VIGIL_FRAME_CLOSE, WAIT, &fr, buf, sizeof buf);
  if (rc != 0)
    return rc;
  if (fr.u.close.code != code)
    return -1;
  return retry_after_ms == UINT32_MAX || fr.u.close.retry_after_ms == retry_after_ms ? 0 : -2;
}

/* Any retry-after. */
static int expect_close(vigil_os_socket s, uint16_t code) {
  return expect_close_retry(s, code, UINT32_MAX);
}

TEST_IMPL(ping_flood_is_policy) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  static const uint8_t pings[] = {3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0};
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open(&f, "flood", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(util_raw_send(s, pings, sizeof pings), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_sent, 1);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_PING_FLOOD);
  ASSERT_EQ(f.rec.death.retry_after_ms, TIMEOUT); /* documented: retry-after = timeout */
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_PING_FLOOD), 0);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(oversized_frame_is_policy) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  uint8_t hdr[8];
  int n;
  server_config(&f, &cfg);
  cfg.session.max_frame = 1024;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "big", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  n = vigil_wire_encode_data_header(hdr, sizeof hdr, 0, 4096);
  ASSERT_GT(n, 0);
  ASSERT_EQ(util_raw_send(s, hdr, (size_t)n), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_TOO_BIG);
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_TOO_BIG), 0);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(oversized_message_is_policy) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  static uint8_t buf[2 * (600 + VIGIL_WIRE_MAX_HEADER)];
  size_t n = 0;
  int i, h;
  server_config(&f, &cfg);
  cfg.session.max_message = 1000;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "chunky", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  for (i = 0; i < 2; i++) { /* two 600-byte chunks of one message */
    h = vigil_wire_encode_data_header(buf + n, sizeof buf - n, 1, 600);
    ASSERT_GT(h, 0);
    n += (size_t)h + 600;
  }
  ASSERT_EQ(util_raw_send(s, buf, n), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(f.rec.messages, 0);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_TOO_BIG);
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_TOO_BIG), 0);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The reading half of a raw peer that plays along: answers every PING with
 * a PONG. Returns the code of a CLOSE once one arrived, -1 before. */
typedef struct raw_reader {
  uint8_t buf[4096];
  size_t have;
} raw_reader;

static int raw_answer_pings(vigil_os_socket s, raw_reader *r) {
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};
  vigil_frame fr;
  long n;
  int d;
  while ((n = util_raw_recv(s, r->buf + r->have, sizeof r->buf - r->have, 0)) > 0)
    r->have += (size_t)n;
  while ((d = vigil_wire_decode(r->buf, r->have, VIGIL_WIRE_MAX_CHUNK, &fr)) > 0) {
    if (fr.type == VIGIL_FRAME_CLOSE)
      return fr.u.close.code;
    if (fr.type == VIGIL_FRAME_PING && util_raw_send(s, pong, sizeof pong) != 0)
      return -2;
    memmove(r->buf, r->buf + d, r->have - (size_t)d);
    r->have -= (size_t)d;
  }
  return -1;
}

/* The attack: 1008 KiB of a 1 MiB message in DATA_MORE chunks,
 * then one byte of it every 50 ms, every ping answered, never the last
 * chunk. Every chunk is a valid frame, so only the message deadline ends
 * it: CLOSE POLICY naming it, cause policy, and the reassembly buffer goes
 * with the connection. */
#define HALF_SENT_CHUNKS 63
TEST_IMPL(half_sent_message_closed_at_deadline) {
  fixture f;
  vigil_server_config cfg;
  vigil_server_stats st;
  vigil_os_socket s;
  static uint8_t chunk[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK];
  static raw_reader rr;
  uint8_t tiny[4];
  uint64_t t0, deadline;
  uint32_t held = 0;
  int i, h, code = -1;
  server_config(&f, &cfg);
  cfg.session.message_timeout_ms = 2000; /* room for 1008 KiB under ASan on a loaded machine */
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open(&f, "half", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  memset(&rr, 0, sizeof rr);
  h = vigil_wire_encode_data_header(chunk, sizeof chunk, 1, VIGIL_WIRE_MAX_CHUNK);
  ASSERT_GT(h, 0);
  memset(chunk + h, 'h', VIGIL_WIRE_MAX_CHUNK);
  t0 = util_now_ns();
  for (i = 0; i < HALF_SENT_CHUNKS; i++) {
    ASSERT_EQ(util_raw_send(s, chunk, (size_t)h + VIGIL_WIRE_MAX_CHUNK), 0);
    util_run_for(&f.loop, 1);
    ASSERT_EQ(raw_answer_pings(s, &rr), -1);
  }
  util_run_for(&f.loop, 20);
  if (f.rec.conn != NULL)
    held = vigil__cx(f.rec.conn)->rx_len;
  ASSERT_EQ(vigil_wire_encode_data_header(tiny, sizeof tiny, 1, 1), 2);
  tiny[2] = 'h';
  deadline = t0 + 2 * (uint64_t)WAIT * VIGIL_MS;
  while (f.rec.deaths == 0 && util_now_ns() < deadline) {
    ASSERT_EQ(util_raw_send(s, tiny, 3), 0);
    util_run_for(&f.loop, 50);
    if (f.rec.conn != NULL && vigil__cx(f.rec.conn)->rx_len > held)
      held = vigil__cx(f.rec.conn)->rx_len;
    code = raw_answer_pings(s, &rr);
  }
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_UGE(held, (uint32_t)HALF_SENT_CHUNKS * VIGIL_WIRE_MAX_CHUNK); /* it was held */
  ASSERT_UGE(f.rec.death_ns - t0, 2000 * VIGIL_MS);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_POLICY);
  ASSERT_STR_EQ(f.rec.detail, "message not finished within the message deadline");
  ASSERT_EQ(f.rec.messages, 0);
  if (code < 0) {
    ASSERT_EQ(expect_close(s, VIGIL_CLOSE_POLICY), 0);
  } else {
    ASSERT_EQ(code, VIGIL_CLOSE_POLICY);
  }
  util_raw_close(s);
  for (i = 0; i < 100; i++) { /* the lingering socket, and its memory, go */
    vigil_server_get_stats(f.srv, &st);
    if (st.connections == 0)
      break;
    util_run_for(&f.loop, 10);
  }
  ASSERT_EQ(st.connections, 0);
  ASSERT_EQ(st.deaths[VIGIL_CAUSE_POLICY], 1);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(garbage_hello_is_protocol_error) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (util_raw_connect("127.0.0.1", f.port, &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(util_raw_send(s, "GET / HTTP/1.1\r\n\r\n", 18), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  ASSERT_EQ(f.rec.opens, 0);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_EQ(f.rec.death.close_sent, 1);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Bytes arrive one at a time (the HELLO) and messages arrive split across
 * reads and chunks: the partial control frame is held back between reads
 * and the message is reassembled whole. */
TEST_IMPL(fragmented_input_reassembled) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME], data[64];
  vigil_hello h;
  size_t n = 0, i;
  int len, k;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (util_raw_connect("127.0.0.1", f.port, &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  memset(&h, 0, sizeof h);
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = QUIET_INTERVAL;
  h.timeout_ms = QUIET_TIMEOUT;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = "dribble";
  h.id_len = 7;
  len = vigil_wire_encode_hello(hello, sizeof hello, &h);
  ASSERT_GT(len, 0);
  for (k = 0; k < len; k++) {
    ASSERT_EQ(util_raw_send(s, hello + k, 1), 0);
    util_run_for(&f.loop, 2);
  }
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT_STR_EQ(f.rec.id, "dribble");
  /* "0123456789" + "abcdefghij" + "ABCDE" as three chunks of one message. */
  for (k = 0; k < 3; k++) {
    static const char *parts[] = {"0123456789", "abcdefghij", "ABCDE"};
    size_t pl = strlen(parts[k]);
    int hl = vigil_wire_encode_data_header(data + n, sizeof data - n, k < 2, (uint32_t)pl);
    ASSERT_GT(hl, 0);
    memcpy(data + n + (size_t)hl, parts[k], pl);
    n += (size_t)hl + pl;
  }
  for (i = 0; i < n; i += 7) { /* 7-byte slices cut across headers */
    ASSERT_EQ(util_raw_send(s, data + i, n - i < 7 ? n - i : 7), 0);
    util_run_for(&f.loop, 2);
  }
  ASSERT(util_run_until(&f.loop, &f.rec.messages, WAIT));
  ASSERT_EQ(f.rec.messages, 1);
  ASSERT_EQ(f.rec.msg_len, 25);
  ASSERT_MEM_EQ(f.rec.msg, "0123456789abcdefghijABCDE", 25);
  ASSERT_NOT_NULL(f.rec.conn);
  ASSERT_NULL(vigil__cx(f.rec.conn)->rx);     /* the reassembly buffer went with the message */
  ASSERT_NULL(vigil__cx(f.rec.conn)->retain); /* nothing held back between frames */
  ASSERT_NULL(f.rec.conn->x);                 /* and the rarely used state with them: idle again */
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(slow_handshake_is_policy) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  vigil_server_stats st;
  uint64_t t0;
  server_config(&f, &cfg);
  cfg.session.handshake_timeout_ms = 200;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  t0 = util_now_ns();
  if (util_raw_connect("127.0.0.1", f.port, &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  ASSERT_UGE(f.rec.death_ns - t0, 200 * VIGIL_MS);
  ASSERT_EQ(f.rec.deaths, 0);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_HANDSHAKE_TIMEOUT);
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_HANDSHAKE_TIMEOUT), 0);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.handshake_failed, 1);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- limits ----------------------------------------------------------------- */

TEST_IMPL(server_full_refuses_with_retry_after) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a, *b;
  util_rec ra, rb;
  vigil_server_stats st;
  server_config(&f, &cfg);
  cfg.max_connections = 1;
  cfg.retry_after_ms = 700;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  client_config(&ccfg, &ra, "first");
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &ra.opens, WAIT));
  client_config(&ccfg, &rb, "second");
  ASSERT_EQ(vigil_client_new(&b, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(b, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &rb.rejects, WAIT));
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  /* Server side: refused for the limit. */
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_SERVER_FULL);
  ASSERT_EQ(f.rec.death.retry_after_ms, 700);
  /* Client side: the CLOSE with its retry-after, then a reconnect that
   * honours it. */
  ASSERT_EQ(rb.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(rb.death.close_received, 1);
  ASSERT_EQ(rb.death.close_code, VIGIL_CLOSE_SERVER_FULL);
  ASSERT_EQ(rb.death.retry_after_ms, 700);
  ASSERT_EQ(rb.ndelays, 1);
  ASSERT_GE(rb.delays[0], 700);
  ASSERT_EQ(ra.deaths, 0);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_full, 1);
  ASSERT_EQ(vigil_client_close(a, 0), 0);
  ASSERT_EQ(vigil_client_close(b, 0), 0);
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT(util_run_until(&f.loop, &rb.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_client_free(b), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Opens n raw connections to the fixture's server (no HELLO) and runs the
 * loop until the server has accepted them all. */
static int raw_crowd(fixture *f, vigil_os_socket *s, int n) {
  vigil_server_stats st;
  int i, rc, rounds;
  for (i = 0; i < n; i++)
    if ((rc = util_raw_connect("127.0.0.1", f->port, &s[i])) != 0)
      return rc;
  for (rounds = 0; rounds < 100; rounds++) {
    vigil_server_get_stats(f->srv, &st);
    if (st.accepted >= (uint64_t)n)
      return 0;
    util_run_for(&f->loop, 10);
  }
  return VIGIL_ETIMEDOUT;
}

/* Past 2 x max_connections + 64 sockets (refused ones linger, waiting for
 * their peer's FIN) new connections are still told SERVER_FULL with the
 * retry-after (a bare close would bring them straight back), and closed
 * without lingering; and that cap must not wrap around for a large
 * max_connections. */
#define CROWD 70
TEST_IMPL(socket_cap_while_refusing) {
  fixture f;
  vigil_server_config cfg;
  vigil_server_stats st;
  static vigil_os_socket s[CROWD];
  uint64_t t0;
  int i, rc;
  server_config(&f, &cfg);
  cfg.max_connections = 1;
  cfg.retry_after_ms = 900;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  t0 = util_now_ns();
  rc = raw_crowd(&f, s, CROWD);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(rc, 0);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_full, CROWD - 1);
  ASSERT_EQ(f.rec.rejects, CROWD - 1);
  /* The first one is live; 2..66 got SERVER_FULL and linger; 67..70 were
   * over the cap: the same CLOSE and retry-after, and no linger. */
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_SERVER_FULL);
  ASSERT_EQ(f.rec.death.retry_after_ms, 900);
  ASSERT_EQ(expect_close_retry(s[1], VIGIL_CLOSE_SERVER_FULL, 900), 0);
  ASSERT_EQ(expect_close_retry(s[CROWD - 1], VIGIL_CLOSE_SERVER_FULL, 900), 0);
  /* Only if no lingering socket outlived its linger meanwhile (wine on a
   * loaded machine can take longer than that to accept 70) were the last
   * four surely over the cap. */
  if (util_now_ns() - t0 < (VIGIL__LINGER_MS - 200) * VIGIL_MS) {
    ASSERT_STR_EQ(f.rec.detail, "server full (too many sockets to linger)");
    util_run_for(&f.loop, 20); /* their close callbacks */
    vigil_server_get_stats(f.srv, &st);
    ASSERT_EQ(st.connections, CROWD - 4); /* the four over the cap are gone */
  }
  for (i = 0; i < CROWD; i++)
    util_raw_close(s[i]);
  ASSERT_EQ(server_down(&f), 0);

  /* max_connections near UINT32_MAX: 2 x max + 64 must not wrap to 62. */
  server_config(&f, &cfg);
  cfg.max_connections = UINT32_MAX;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  ASSERT_EQ(raw_crowd(&f, s, CROWD), 0);
  util_run_for(&f.loop, 10);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_full, 0);
  ASSERT_EQ(f.rec.rejects, 0);
  ASSERT_EQ(st.connections, CROWD);
  for (i = 0; i < CROWD; i++)
    util_raw_close(s[i]);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- memory budget ---------------------------------------------------------- */

#define GREEDY 50
#define HEALTHY 10
#define GREEDY_CHUNKS 16
#define BUDGET ((size_t)2 << 20)
/* At most budget / (what one greedy peer asks) of them fit. */
#define GREEDY_MIN_CLOSED (GREEDY - BUDGET / (GREEDY_CHUNKS * VIGIL_WIRE_MAX_CHUNK))

static void note_memory(fixture *f, uint64_t *max_used) {
  vigil_server_stats st;
  vigil_server_get_stats(f->srv, &st);
  if (st.memory_used > *max_used)
    *max_used = st.memory_used;
}

/* 50 raw peers each send 256 KiB of a message and never the end (12.5 MiB
 * asked of a 2 MiB budget) while 10 vigil clients heartbeat: the greedy are
 * closed with CLOSE POLICY "memory budget exceeded", cause policy; the
 * total charged never passes the budget; no healthy client dies, and each
 * still gets a two-chunk message through (reassembled within its share). */
TEST_IMPL(memory_budget_closes_the_greedy) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_server_stats st;
  static vigil_client *cli[HEALTHY];
  static util_rec rec[HEALTHY];
  static vigil_os_socket g[GREEDY];
  static uint8_t chunk[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK], msg[20000];
  static char ids[HEALTHY][16];
  uint64_t max_used = 0, t0;
  int i, j, h, opened = 0;
  server_config(&f, &cfg);
  cfg.memory_budget = BUDGET;
  cfg.session.message_timeout_ms = 60000; /* the budget, not the deadline, is under test */
  f.rec.echo = 1;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  for (i = 0; i < HEALTHY; i++) {
    snprintf(ids[i], sizeof ids[i], "healthy-%d", i);
    client_config(&ccfg, &rec[i], ids[i]);
    ccfg.session.timeout_ms = 2000; /* a loaded test thread must not fake a death */
    ASSERT_EQ(vigil_client_new(&cli[i], &f.loop, &ccfg), 0);
    ASSERT_EQ(vigil_client_connect(cli[i], "127.0.0.1", f.port), 0);
  }
  for (i = 0; i < HEALTHY; i++)
    ASSERT(util_run_until(&f.loop, &rec[i].opens, WAIT));
  for (i = 0; i < GREEDY; i++) {
    char id[16];
    snprintf(id, sizeof id, "greedy-%d", i);
    /* Their heartbeat outlasts the test even under wine on a loaded
     * machine: a greedy peer must be closed by the budget, not time. */
    if (raw_open_hb(&f, id, 60000, 180000, &g[i]) == VIGIL_ENOTSUP)
      RETURN_SKIP("raw sockets need POSIX");
    opened++;
  }
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.memory_budget, BUDGET);
  h = vigil_wire_encode_data_header(chunk, sizeof chunk, 1, VIGIL_WIRE_MAX_CHUNK);
  ASSERT_GT(h, 0);
  memset(chunk + h, 'g', VIGIL_WIRE_MAX_CHUNK);
  for (i = 0; i < GREEDY; i++) {
    for (j = 0; j < GREEDY_CHUNKS; j++) {
      if (util_raw_send(g[i], chunk, (size_t)h + VIGIL_WIRE_MAX_CHUNK) != 0)
        break; /* closed for the budget, and its linger is over */
      util_run_for(&f.loop, 1);
      note_memory(&f, &max_used);
    }
  }
  /* What the peers sent may still wait in the server's socket buffers
   * (wine on a loaded machine reads slowly): run until all of it counted. */
  for (t0 = util_now_ns(); util_now_ns() - t0 < (uint64_t)WAIT * VIGIL_MS;) {
    util_run_for(&f.loop, 10);
    note_memory(&f, &max_used);
    vigil_server_get_stats(f.srv, &st);
    if (st.budget_closes >= GREEDY_MIN_CLOSED)
      break;
  }
  util_run_for(&f.loop, 50);
  note_memory(&f, &max_used);
  memset(msg, 'm', sizeof msg);
  for (i = 0; i < HEALTHY; i++)
    ASSERT_EQ(vigil_client_send(cli[i], msg, sizeof msg), 0);
  for (i = 0; i < HEALTHY; i++) {
    ASSERT(util_run_until(&f.loop, &rec[i].messages, WAIT));
    note_memory(&f, &max_used);
  }
  vigil_server_get_stats(f.srv, &st);
  printf("budget %zu: most charged %llu, %llu greedy closed, %d healthy messages\n", BUDGET,
         (unsigned long long)max_used, (unsigned long long)st.budget_closes, f.rec.messages);
  ASSERT_ULE(max_used, BUDGET);
  ASSERT_UGE(st.budget_closes, GREEDY_MIN_CLOSED);
  ASSERT_EQ(st.deaths[VIGIL_CAUSE_POLICY], st.budget_closes);
  ASSERT_EQ(f.rec.messages, HEALTHY); /* every healthy message arrived whole */
  for (i = 0; i < HEALTHY; i++) {
    ASSERT_EQ(rec[i].deaths, 0);
    ASSERT_EQ(rec[i].msg_len, sizeof msg); /* echoed whole */
  }
  ASSERT_EQ(expect_close(g[0], VIGIL_CLOSE_POLICY), 0); /* the first was the first evicted */
  ASSERT_STR_EQ(f.rec.reason, "memory budget exceeded");
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  for (i = 0; i < opened; i++)
    util_raw_close(g[i]);
  for (i = 0; i < HEALTHY; i++) {
    ASSERT_EQ(vigil_client_close(cli[i], 0), 0);
    ASSERT(util_run_until(&f.loop, &rec[i].closed, WAIT));
    ASSERT_EQ(vigil_client_free(cli[i]), 0);
  }
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The same for the outbound side: the server's program sends 64 KiB
 * messages to 8 raw peers that never read (their kernels' buffers fill,
 * then their queues grow; the queue cap is far above the budget, so only
 * the budget can stop them) while 10 vigil clients heartbeat and get the
 * same messages. The total charged never passes the budget; every
 * never-reader is closed for it with cause policy; no healthy client dies
 * and each healthy one received every message sent to it. */
#define NEVER 8
#define NEVER_ROUNDS 200
#define BIG (64u << 10)

static vigil_conn *never_conn[NEVER];
static vigil_conn_callbacks never_cb; /* the recorder's, which we forward to */

static void never_death(vigil_conn *c, const vigil_death *d, void *user) {
  int i;
  for (i = 0; i < NEVER; i++)
    if (never_conn[i] == c)
      never_conn[i] = NULL; /* freed after this callback: never used again */
  never_cb.on_death(c, d, user);
}

TEST_IMPL(memory_budget_closes_never_readers) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_server_stats st;
  static vigil_client *cli[HEALTHY];
  static util_rec rec[HEALTHY];
  static vigil_conn *healthy_conn[HEALTHY];
  static vigil_os_socket g[NEVER];
  static uint8_t big[BIG];
  static char ids[HEALTHY][16];
  uint64_t max_used = 0;
  int i, r, sent = 0, alive;
  server_config(&f, &cfg);
  cfg.memory_budget = BUDGET;
  cfg.max_queue_bytes = (size_t)64 << 20; /* the budget, not the queue cap, is under test */
  never_cb = cfg.cb;
  cfg.cb.on_death = never_death;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  for (i = 0; i < HEALTHY; i++) {
    snprintf(ids[i], sizeof ids[i], "healthy-%d", i);
    client_config(&ccfg, &rec[i], ids[i]);
    ccfg.session.timeout_ms = 2000;
    ASSERT_EQ(vigil_client_new(&cli[i], &f.loop, &ccfg), 0);
    ASSERT_EQ(vigil_client_connect(cli[i], "127.0.0.1", f.port), 0);
    ASSERT(util_run_until_n(&f.loop, &f.rec.opens, i + 1, WAIT));
    healthy_conn[i] = f.rec.conn;
  }
  for (i = 0; i < HEALTHY; i++)
    ASSERT(util_run_until(&f.loop, &rec[i].opens, WAIT));
  for (i = 0; i < NEVER; i++) {
    char id[16];
    snprintf(id, sizeof id, "never-%d", i);
    if (raw_open_hb(&f, id, 60000, 180000, &g[i]) == VIGIL_ENOTSUP)
      RETURN_SKIP("raw sockets need POSIX");
    never_conn[i] = f.rec.conn;
  }
  memset(big, 'n', sizeof big);
  for (r = 0; r < NEVER_ROUNDS; r++) {
    for (i = 0, alive = 0; i < NEVER; i++)
      if (never_conn[i] != NULL) {
        alive++;
        (void)vigil_conn_send(never_conn[i], big, sizeof big); /* closed for the budget: ECLOSED */
      }
    if (r % 20 == 0) { /* the healthy get some too, within their share */
      for (i = 0; i < HEALTHY; i++)
        ASSERT_EQ(vigil_conn_send(healthy_conn[i], big, 100), 0);
      sent++;
    }
    util_run_for(&f.loop, 1);
    note_memory(&f, &max_used);
    if (alive == 0)
      break;
  }
  for (i = 0; i < HEALTHY; i++) {
    ASSERT(util_run_until_n(&f.loop, &rec[i].messages, sent, WAIT));
    note_memory(&f, &max_used);
  }
  vigil_server_get_stats(f.srv, &st);
  printf("budget %zu: most charged %llu, %llu never-readers closed after %d rounds\n", BUDGET,
         (unsigned long long)max_used, (unsigned long long)st.budget_closes, r);
  ASSERT_ULE(max_used, BUDGET);
  ASSERT_EQ(st.budget_closes, NEVER);
  ASSERT_EQ(st.deaths[VIGIL_CAUSE_POLICY], NEVER);
  for (i = 0; i < NEVER; i++)
    ASSERT_NULL(never_conn[i]);
  for (i = 0; i < HEALTHY; i++) {
    ASSERT_EQ(rec[i].deaths, 0);
    ASSERT_EQ(rec[i].messages, sent);
  }
  for (i = 0; i < NEVER; i++)
    util_raw_close(g[i]);
  for (i = 0; i < HEALTHY; i++) {
    ASSERT_EQ(vigil_client_close(cli[i], 0), 0);
    ASSERT(util_run_until(&f.loop, &rec[i].closed, WAIT));
    ASSERT_EQ(vigil_client_free(cli[i]), 0);
  }
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(per_address_limit) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s1, s2;
  vigil_server_stats st;
  server_config(&f, &cfg);
  cfg.max_per_address = 1;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "one", &s1) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(util_raw_connect("127.0.0.1", f.port, &s2), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_ADDRESS_LIMIT);
  ASSERT_EQ(expect_close(s2, VIGIL_CLOSE_ADDRESS_LIMIT), 0);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_address, 1);
  /* The first one is untouched, and once it is gone the address may come
   * back. */
  ASSERT_EQ(f.rec.deaths, 0);
  util_raw_close(s2);
  util_raw_close(s1);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT_EQ(raw_open_quiet(&f, "two", &s1), 0);
  util_raw_close(s1);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* --rate-limit 1/m,burst=2: two connections from one address are
 * admitted, the third is refused with CLOSE ADDRESS_LIMIT and a
 * retry-after of about the minute until the next token; closing the first
 * two does not help (a rate, not a count). */
TEST_IMPL(rate_limit_per_address) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s1, s2, s3;
  vigil_server_stats st;
  uint8_t buf[1024];
  vigil_frame fr;
  server_config(&f, &cfg);
  cfg.rate_per_minute = 1;
  cfg.rate_burst = 2;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "one", &s1) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(raw_open_quiet(&f, "two", &s2), 0);
  ASSERT_EQ(util_raw_connect("127.0.0.1", f.port, &s3), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_ADDRESS_LIMIT);
  ASSERT_STR_EQ(f.rec.detail, "connection rate limit");
  ASSERT_EQ(util_raw_expect(s3, VIGIL_FRAME_CLOSE, WAIT, &fr, buf, sizeof buf), 0);
  ASSERT_EQ(fr.u.close.code, VIGIL_CLOSE_ADDRESS_LIMIT);
  ASSERT_GT(fr.u.close.retry_after_ms, 50000); /* the next token is a minute after the first */
  ASSERT_LE(fr.u.close.retry_after_ms, 60001);
  util_raw_close(s3);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_address, 1);
  ASSERT_EQ(f.rec.deaths, 0);
  util_raw_close(s1);
  util_raw_close(s2);
  ASSERT(util_run_until_n(&f.loop, &f.rec.deaths, 2, WAIT));
  ASSERT_EQ(util_raw_connect("127.0.0.1", f.port, &s3), 0);
  ASSERT(util_run_until_n(&f.loop, &f.rec.rejects, 2, WAIT));
  ASSERT_STR_EQ(f.rec.detail, "connection rate limit");
  ASSERT_EQ(expect_close(s3, VIGIL_CLOSE_ADDRESS_LIMIT), 0);
  util_raw_close(s3);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(takeover_same_id) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a, *b;
  util_rec ra, rb;
  char first_peer[VIGIL_ADDRSTRLEN];
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  client_config(&ccfg, &ra, "same");
  ccfg.no_reconnect = 1;
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  memcpy(first_peer, f.rec.peer, sizeof first_peer);
  ASSERT_NOT_NULL(vigil_server_find(f.srv, "same", 4));
  client_config(&ccfg, &rb, "same");
  ASSERT_EQ(vigil_client_new(&b, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(b, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &rb.opens, WAIT));
  ASSERT_EQ(f.rec.opens, 2);
  ASSERT_EQ(f.rec.rejoin, 1);
  ASSERT_STR_EQ(f.rec.old_peer, first_peer);
  ASSERT_EQ(f.rec.deaths, 1); /* the old one, before the new on_open */
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_STR_EQ(f.rec.detail, "takeover");
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_TAKEOVER);
  ASSERT_STR_EQ(f.rec.reason, vigil_close_code_text(VIGIL_CLOSE_TAKEOVER));
  ASSERT_PTR_EQ(vigil_server_find(f.srv, "same", 4), f.rec.conn);
  /* The replaced client hears CLOSE TAKEOVER. */
  ASSERT(util_run_until(&f.loop, &ra.deaths, WAIT));
  ASSERT_EQ(ra.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(ra.death.close_received, 1);
  ASSERT_EQ(ra.death.close_code, VIGIL_CLOSE_TAKEOVER);
  ASSERT_EQ(vigil_client_close(b, 0), 0);
  ASSERT(util_run_until(&f.loop, &rb.closed, WAIT));
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_client_free(b), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Backpressure: sends beyond the cap fail with EQUEUEFULL; a sender that
 * keeps overflowing (queue_full_strikes times without the queue draining)
 * is closed with QUEUE_FULL; what was queued comes back via on_unsent. */
TEST_IMPL(queue_full_then_policy_close) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  static uint8_t msg[900];
  int i;
  server_config(&f, &cfg);
  cfg.max_queue_bytes = 1000;
  cfg.queue_full_strikes = 3;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "slow", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_NOT_NULL(f.rec.conn);
  ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, sizeof msg), 0);
  for (i = 0; i < 2; i++)
    ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, 200), VIGIL_EQUEUEFULL);
  ASSERT_EQ(f.rec.deaths, 0);
  ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, 200), VIGIL_EQUEUEFULL);
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_QUEUE_FULL);
  ASSERT_EQ(f.rec.unsent, 1);
  ASSERT_EQ(f.rec.unsent_bytes, sizeof msg);
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_QUEUE_FULL), 0);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* queue_full_strikes is a uint32: a limit above 255 must be honoured, not
 * silently turned into "never" by a narrower strike counter. */
TEST_IMPL(queue_full_strikes_above_255) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  static uint8_t msg[900];
  int i;
  server_config(&f, &cfg);
  cfg.max_queue_bytes = 1000;
  cfg.queue_full_strikes = 300;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "patient", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_NOT_NULL(f.rec.conn);
  ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, sizeof msg), 0);
  for (i = 0; i < 299; i++)
    ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, 200), VIGIL_EQUEUEFULL);
  ASSERT_EQ(f.rec.deaths, 0);
  ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, 200), VIGIL_EQUEUEFULL);
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(f.rec.death.close_code, VIGIL_CLOSE_QUEUE_FULL);
  ASSERT_EQ(expect_close(s, VIGIL_CLOSE_QUEUE_FULL), 0);
  util_raw_close(s);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- ping jitter ---------------------------------------------------------- */

/* Defect 1 of issue 8: the server handed one config, seed 0, to every
 * connection, so every connection drew the same jitter sequence and
 * clients connected together were pinged in lock-step for ever. Each
 * connection now seeds its session from the OS. Observed here at on_open:
 * the server's first ping falls due at last_recv + idle, idle drawn from
 * [0.75, 1] x interval; that offset is where the ping of a connection opened
 * at the same instant as the others would go. */
#define HERD_INTERVAL 1000u
#define HERD_BINS 25 /* 10 ms each over the 250 ms window */

typedef struct herd {
  util_rec rec; /* first: the other callbacks take user as a util_rec */
  int n;
  uint64_t idle_ms[1000];
} herd;

static void herd_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  herd *h = user;
  vigil_session_info si;
  (void)info;
  h->rec.opens++;
  vigil_session_get_info(&c->session, &si);
  if (h->n < (int)(sizeof h->idle_ms / sizeof h->idle_ms[0]))
    h->idle_ms[h->n++] = (vigil_session_deadline(&c->session) - si.last_recv_ns) / VIGIL_MS;
}

/* Opens n raw connections (in batches, so the accept backlog never
 * overflows) to a server of the default seed; fills h->idle_ms. */
static int herd_open_n(herd *h, int n, vigil_os_socket *s) {
  fixture f;
  vigil_server_config cfg;
  char id[24];
  int i, rc, done = 0;
  memset(h, 0, sizeof *h);
  server_config(&f, &cfg);
  cfg.cb.on_open = herd_open;
  cfg.user = h;
  if ((rc = server_up(&f, &cfg)) != 0)
    return rc;
  while (done < n) {
    int batch = n - done < 100 ? n - done : 100;
    for (i = done; i < done + batch; i++) {
      snprintf(id, sizeof id, "herd-%d", i);
      if ((rc = util_raw_connect("127.0.0.1", f.port, &s[i])) != 0 ||
          (rc = util_raw_hello(s[i], id, HERD_INTERVAL, 3 * HERD_INTERVAL)) != 0)
        return rc;
    }
    done += batch;
    if (!util_run_until_n(&f.loop, &h->rec.opens, done, 10000))
      return VIGIL_ETIMEDOUT;
  }
  for (i = 0; i < n; i++)
    util_raw_close(s[i]);
  (void)vigil_server_shutdown(f.srv, 500);
  if (!util_run_until(&f.loop, &h->rec.closed, WAIT) || vigil_server_free(f.srv) != 0)
    return VIGIL_ETIMEDOUT;
  util_run_for(&f.loop, 5);
  rc = vigil_loop_close(&f.loop);
  return rc != 0 ? rc : h->n == n ? 0 : VIGIL_EPROTO;
}

TEST_IMPL(jitter_differs_per_connection) {
  static herd h;
  vigil_os_socket s[4];
  int rc = herd_open_n(&h, 4, s);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(rc, 0);
  fprintf(stderr, "first idle periods: %llu %llu %llu %llu ms\n", (unsigned long long)h.idle_ms[0],
          (unsigned long long)h.idle_ms[1], (unsigned long long)h.idle_ms[2],
          (unsigned long long)h.idle_ms[3]);
  /* 251 possible values: four equal draws by chance is 1 in 251^3. */
  ASSERT(h.idle_ms[0] != h.idle_ms[1] || h.idle_ms[0] != h.idle_ms[2] ||
         h.idle_ms[0] != h.idle_ms[3]);
  return 0;
}

/* 1,000 connections: their first pings spread over the whole 25% window,
 * no 10 ms bin holding more than 3 x its share (40). Prints the histogram:
 * the dispersion figure of docs/ARCHITECTURE.md. */
TEST_IMPL(jitter_disperses_a_herd) {
  static herd h;
  static vigil_os_socket s[1000];
  int bins[HERD_BINS] = {0}, i, max = 0, share = 1000 / HERD_BINS, rc;
  rc = herd_open_n(&h, 1000, s);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(rc, 0);
  for (i = 0; i < 1000; i++) {
    uint64_t off = h.idle_ms[i];
    int b;
    ASSERT_UGE(off, HERD_INTERVAL * 3 / 4);
    ASSERT_ULE(off, HERD_INTERVAL);
    b = (int)((off - HERD_INTERVAL * 3 / 4) / 10);
    b = b < HERD_BINS ? b : HERD_BINS - 1; /* 1000 ms itself */
    bins[b]++;
  }
  fprintf(stderr, "1000 connections, first ping offsets in 10 ms bins over 750-1000 ms:");
  for (i = 0; i < HERD_BINS; i++) {
    max = bins[i] > max ? bins[i] : max;
    fprintf(stderr, " %d", bins[i]);
  }
  fprintf(stderr, "\n");
  fprintf(stderr, "fullest bin %d (share %d, limit 3 x share = %d)\n", max, share, 3 * share);
  ASSERT_LE(max, 3 * share);
  return 0;
}

/* ---- shutdown, addresses, descriptors, stalls ------------------------------ */

/* Shutdown against a peer that does not read: the queue cannot drain, the
 * deadline ends it, and what was not written comes back via on_unsent. */
TEST_IMPL(shutdown_deadline_hands_back_unsent) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket s;
  static uint8_t msg[65536];
  uint64_t t0, wait0;
  int i;
  server_config(&f, &cfg);
  cfg.max_queue_bytes = (size_t)32 << 20;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  if (raw_open_quiet(&f, "deaf", &s) == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  for (i = 0; i < 256; i++) /* 16 MiB: more than loopback buffers hold */
    ASSERT_EQ(vigil_conn_send(f.rec.conn, msg, sizeof msg), 0);
  util_run_for(&f.loop, 50);
  t0 = util_now_ns();
  wait0 = util_cpu_wait_ns();
  ASSERT_EQ(vigil_server_shutdown(f.srv, 200), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.closed, WAIT));
  fprintf(stderr, "shutdown took %.1f ms; %d messages (%zu bytes) handed back\n",
          (double)(util_now_ns() - t0) / 1e6, f.rec.unsent, f.rec.unsent_bytes);
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_STR_EQ(f.rec.detail, "shutdown");
  ASSERT_GT(f.rec.unsent, 0);
  ASSERT_UGE(util_now_ns() - t0, 200 * VIGIL_MS);
  ASSERT_ULE(util_now_ns() - t0, 1000 * VIGIL_MS + (util_cpu_wait_ns() - wait0));
  util_raw_close(s);
  ASSERT_EQ(vigil_server_free(f.srv), 0);
  util_run_for(&f.loop, 5);
  ASSERT_EQ(vigil_loop_close(&f.loop), 0);
  return 0;
}

TEST_IMPL(shutdown_says_going_away) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a;
  util_rec ra;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  client_config(&ccfg, &ra, "leaver");
  ccfg.no_reconnect = 1;
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT_EQ(vigil_conn_send(f.rec.conn, "last words", 10), 0);
  ASSERT_EQ(vigil_server_shutdown(f.srv, 1000), 0);
  ASSERT_EQ(vigil_server_shutdown(f.srv, 1000), VIGIL_EALREADY);
  ASSERT(util_run_until(&f.loop, &ra.deaths, WAIT));
  ASSERT_EQ(ra.messages, 1); /* queued data went out before the CLOSE */
  ASSERT_EQ(ra.death.cause, VIGIL_CAUSE_CLOSED);
  ASSERT_EQ(ra.death.close_code, VIGIL_CLOSE_GOING_AWAY);
  ASSERT(util_run_until(&f.loop, &f.rec.closed, WAIT));
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_STR_EQ(f.rec.detail, "shutdown");
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_server_free(f.srv), 0);
  util_run_for(&f.loop, 5);
  ASSERT_EQ(vigil_loop_close(&f.loop), 0);
  return 0;
}

/* Defect 4 of issue 8: after the CLOSE exchange both ends used to wait for
 * the other to close first, so every close took the whole 1 s linger. The
 * end that receives a CLOSE now closes at once and the end that sent it
 * closes on that FIN. Bound: well under the linger, with room for a loaded
 * machine (util_cpu_wait_ns: time this test waited for a CPU). */
#define PROMPT_CLOSE_MS 400u

static int closed_within(fixture *f, const int *closed, uint64_t t0, uint64_t wait0,
                         const char *what) {
  uint64_t took, slack;
  if (!util_run_until(&f->loop, closed, WAIT))
    TEST_FAIL_AT("%s: never closed", what);
  took = util_now_ns() - t0;
  slack = util_cpu_wait_ns() - wait0;
  fprintf(stderr, "%s: closed after %.1f ms (bound %u ms + %.1f ms waiting for a CPU)\n", what,
          (double)took / 1e6, PROMPT_CLOSE_MS, (double)slack / 1e6);
  ASSERT_ULE(took, (uint64_t)PROMPT_CLOSE_MS * VIGIL_MS + slack);
  return 0;
}

TEST_IMPL(close_exchange_ends_at_once) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a, *b;
  util_rec ra, rb;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  /* the client says goodbye */
  client_config(&ccfg, &ra, "goodbye");
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &ra.opens, WAIT));
  ASSERT(util_run_until_n(&f.loop, &f.rec.opens, 1, WAIT));
  ASSERT_EQ(vigil_client_close(a, 1000), 0);
  ASSERT_EQ(closed_within(&f, &ra.closed, util_now_ns(), util_cpu_wait_ns(), "client close"), 0);
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_CLOSED);
  ASSERT_EQ(f.rec.death.close_received, 1);
  ASSERT_EQ(vigil_client_free(a), 0);
  /* the server shuts down */
  client_config(&ccfg, &rb, "stayer");
  ccfg.no_reconnect = 1;
  ASSERT_EQ(vigil_client_new(&b, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(b, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until_n(&f.loop, &f.rec.opens, 2, WAIT));
  ASSERT(util_run_until(&f.loop, &rb.opens, WAIT));
  ASSERT_EQ(vigil_server_shutdown(f.srv, 1000), 0);
  ASSERT_EQ(closed_within(&f, &f.rec.closed, util_now_ns(), util_cpu_wait_ns(), "shutdown"), 0);
  ASSERT_EQ(rb.deaths, 1);
  ASSERT_EQ(rb.death.cause, VIGIL_CAUSE_CLOSED);
  ASSERT_EQ(rb.death.close_code, VIGIL_CLOSE_GOING_AWAY);
  ASSERT(util_run_until(&f.loop, &rb.closed, WAIT));
  ASSERT_EQ(vigil_client_free(b), 0);
  ASSERT_EQ(vigil_server_free(f.srv), 0);
  util_run_for(&f.loop, 5);
  ASSERT_EQ(vigil_loop_close(&f.loop), 0);
  return 0;
}

/* The rest of defect 4: both ends send CLOSE at once (a client says goodbye
 * while the server shuts down). Each had sent its CLOSE before the other's
 * arrived, so each lingered for the other's FIN for the whole 1 s linger.
 * An end whose CLOSE is in the kernel now ends its direction (FIN) and
 * keeps reading until the peer's FIN, so crossing CLOSEs cost a round
 * trip. */
TEST_IMPL(simultaneous_close_ends_at_once) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a;
  util_rec ra;
  uint64_t t0, wait0;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  client_config(&ccfg, &ra, "both");
  ccfg.no_reconnect = 1;
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &ra.opens, WAIT));
  ASSERT(util_run_until_n(&f.loop, &f.rec.opens, 1, WAIT));
  t0 = util_now_ns();
  wait0 = util_cpu_wait_ns();
  /* both CLOSEs are written in the same loop iteration, before either
   * end has read the other's */
  ASSERT_EQ(vigil_client_close(a, 1000), 0);
  ASSERT_EQ(vigil_server_shutdown(f.srv, 1000), 0);
  ASSERT_EQ(closed_within(&f, &ra.closed, t0, wait0, "client of a simultaneous close"), 0);
  ASSERT_EQ(closed_within(&f, &f.rec.closed, t0, wait0, "server of a simultaneous close"), 0);
  ASSERT_EQ(ra.deaths, 1);
  ASSERT_EQ(ra.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(ra.death.close_sent, 1);
  ASSERT_EQ(f.rec.deaths, 1);
  ASSERT_EQ(f.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(f.rec.death.close_sent, 1);
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_server_free(f.srv), 0);
  util_run_for(&f.loop, 5);
  ASSERT_EQ(vigil_loop_close(&f.loop), 0);
  return 0;
}

TEST_IMPL(listen_ipv4_and_ipv6) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a;
  util_rec ra;
  uint16_t port6 = 0;
  int rc;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  rc = vigil_server_listen(f.srv, "::1", 0, &port6);
  if (rc == VIGIL_EAFNOSUPPORT || rc == VIGIL_EADDRNOTAVAIL) {
    ASSERT_EQ(server_down(&f), 0);
    RETURN_SKIP("no IPv6 loopback here");
  }
  ASSERT_EQ(rc, 0);
  client_config(&ccfg, &ra, "six");
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "[::1]", port6), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT(strncmp(f.rec.peer, "[::1]:", 6) == 0);
  ASSERT_EQ(vigil_client_close(a, 0), 0);
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Defect 3 of issue 8: with another socket on 127.0.0.1:P, listening on
 * every interface on P used to bind [::]:P alone and report success. It
 * must fail, name the address, and keep nothing bound. */
TEST_IMPL(listen_every_address_all_or_nothing) {
  fixture f;
  vigil_server_config cfg;
  vigil_os_socket other, probe6, probe4;
  uint16_t port = 0, got = 0, p6;
  char want[64];
  int rc;
  server_config(&f, &cfg);
  ASSERT_EQ(util_net_init(), 0);
  ASSERT_EQ(vigil_loop_init(&f.loop, NULL), 0);
  ASSERT_EQ(vigil_server_new(&f.srv, &f.loop, &cfg), 0);
  ASSERT_EQ(util_raw_listen("127.0.0.1", &port, &other), 0);
  rc = vigil_server_listen(f.srv, NULL, port, &got);
  ASSERT_EQ(rc, VIGIL_EADDRINUSE);
  ASSERT_EQ(got, 0);
  snprintf(want, sizeof want, "0.0.0.0:%u", (unsigned)port);
  ASSERT_STR_EQ(vigil_server_listen_failed(f.srv), want);
  util_run_for(&f.loop, 5);
  /* nothing left behind: no listener answers on [::1]:P (refused, or no
   * IPv6 at all) */
  ASSERT_NE(util_raw_connect("::1", port, &probe6), 0);
  /* once the other process is gone the same call binds both families */
  util_raw_close(other);
  ASSERT_EQ(vigil_server_listen(f.srv, NULL, port, &got), 0);
  ASSERT_EQ(got, port);
  ASSERT_STR_EQ(vigil_server_listen_failed(f.srv), "");
  p6 = port;
  rc = util_raw_listen("127.0.0.1", &p6, &probe4);
#if defined(_WIN32)
  /* Windows refuses a bind onto a SO_EXCLUSIVEADDRUSE listener with WSAEACCES */
  ASSERT(rc == VIGIL_EADDRINUSE || rc == VIGIL_EACCES);
#else
  ASSERT_EQ(rc, VIGIL_EADDRINUSE);
#endif
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

static int child_connector(void *arg) {
  vigil_os_socket s[8];
  uint8_t b;
  int i, answered = 0;
  (void)arg;
  for (i = 0; i < 8; i++)
    if (util_raw_connect("127.0.0.1", child_port, &s[i]) != 0 ||
        util_raw_hello(s[i], "many", INTERVAL, TIMEOUT) != 0)
      return 100;
  /* Every connection must be answered (welcome, CLOSE, EOF or RST) rather
   * than left hanging in the backlog. */
  for (i = 0; i < 8; i++) {
    if (util_raw_recv(s[i], &b, 1, 3000) != VIGIL_EAGAIN)
      answered++;
  }
  return answered;
}

TEST_IMPL(emfile_survived_with_spare) {
#if defined(_WIN32)
  (void)child_connector;
  RETURN_SKIP("IOCP drops failed accepts itself; no descriptor limit to test");
#else
  fixture f;
  vigil_server_config cfg;
  vigil_server_stats st;
  struct rlimit old, low;
  long pid;
  int fd, status;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  child_port = f.port;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  fd = dup(0); /* the lowest free descriptor tells how many are in use */
  ASSERT_GE(fd, 0);
  close(fd);
  low = old;
  low.rlim_cur = (rlim_t)fd + 3; /* room for three accepted connections */
  ASSERT_EQ(util_proc_spawn(child_connector, NULL, &pid), 0);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  util_run_for(&f.loop, 1500);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  status = util_proc_wait(pid, 5000);
  vigil_server_get_stats(f.srv, &st);
  fprintf(stderr, "accepted %llu, EMFILE survived %llu, child saw %d of 8 answered\n",
          (unsigned long long)st.accepted, (unsigned long long)st.accept_emfile, status);
  ASSERT_GE(st.accept_emfile, 1);
  ASSERT_LE(st.accepted, 3);
  ASSERT_EQ(status, 8);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
#endif
}

/* A loop stall longer than the timeout must not convict the peer: the
 * stall watcher re-probes every session instead. */
static void stall_cb(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop, (void)t;
#if defined(_WIN32)
  Sleep(2 * TIMEOUT);
#else
  usleep(2 * TIMEOUT * 1000);
#endif
}

TEST_IMPL(loop_stall_does_not_convict) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *a;
  util_rec ra;
  vigil_loop_options opts;
  vigil_loop_timer t;
  server_config(&f, &cfg);
  ASSERT_EQ(util_net_init(), 0);
  vigil_loop_options_init(&opts);
  opts.stall_threshold_ms = 100;
  ASSERT_EQ(vigil_loop_init(&f.loop, &opts), 0);
  ASSERT_EQ(vigil_server_new(&f.srv, &f.loop, &cfg), 0);
  ASSERT_EQ(vigil_server_listen(f.srv, "127.0.0.1", 0, &f.port), 0);
  client_config(&ccfg, &ra, "stall");
  ASSERT_EQ(vigil_client_new(&a, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(a, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  vigil_loop_timer_init(&t);
  vigil_loop_timer_arm(&f.loop, &t, vigil_loop_now_ms(&f.loop) + 10, stall_cb);
  util_run_for(&f.loop, 4 * TIMEOUT);
  ASSERT_EQ(f.rec.deaths, 0);
  ASSERT_EQ(ra.deaths, 0);
  ASSERT_EQ(vigil_client_close(a, 0), 0);
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- evidence rules (pure) and footprint ------------------------------------ */

static vigil_cause classify(vigil_cause engine, int err, uint32_t silent_ms,
                            const vigil_tcp_evidence *ev) {
  vigil_verdict v;
  const char *detail = "engine";
  memset(&v, 0, sizeof v);
  v.cause = engine;
  v.error = err;
  v.silent_ns = (uint64_t)silent_ms * VIGIL_MS;
  return vigil_evidence_classify(&v, ev, &detail);
}

TEST_IMPL(evidence_rules) {
  vigil_tcp_evidence ev;
  memset(&ev, 0, sizeof ev);
  ev.available = 1;
  ev.state = VIGIL__TCP_ESTABLISHED;
  ev.snd_wnd = 65535;
  /* Silence, and our ping sits unacknowledged: the host is gone. */
  ev.unacked = 1;
  ev.last_ack_recv_ms = 310;
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, &ev), VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  /* Silence, but the kernel ACKed our ping after the last frame. */
  ev.unacked = 0;
  ev.last_ack_recv_ms = 200;
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, &ev), VIGIL_CAUSE_PEER_STALLED);
  /* An ACK after the last frame (the delayed ACK of our pong), but our
   * ping never left the send queue (the route went with the link): the
   * fault suite's vanish case, tcp_last_ack_ms 1444 of silent 1500. */
  ev.notsent_bytes = 2;
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, &ev), VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ev.notsent_bytes = 0;
  /* ... data stuck behind a zero window: stalled as well. */
  ev.unacked = 2;
  ev.snd_wnd = 0;
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, &ev), VIGIL_CAUSE_PEER_STALLED);
  /* No ACK since the last frame (within the jiffy slack): not stalled. */
  ev.snd_wnd = 65535;
  ev.unacked = 0;
  ev.last_ack_recv_ms = 295;
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, &ev), VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  /* No evidence at all: the engine's verdict stands. */
  ASSERT_EQ(classify(VIGIL_CAUSE_HEARTBEAT_TIMEOUT, 0, 300, NULL), VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  /* Socket errors. */
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_EOF, 0, NULL), VIGIL_CAUSE_CLOSED);
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_ECONNRESET, 0, NULL), VIGIL_CAUSE_RESET);
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_EPIPE, 0, NULL), VIGIL_CAUSE_RESET);
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_EHOSTUNREACH, 0, NULL), VIGIL_CAUSE_UNREACHABLE);
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_ENETUNREACH, 0, NULL), VIGIL_CAUSE_UNREACHABLE);
  memset(&ev, 0, sizeof ev);
  ev.available = 1;
  ev.snd_wnd = 65535;
  ev.unacked = 3;
  ev.backoff = 4;
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_ETIMEDOUT, 0, &ev), VIGIL_CAUSE_USER_TIMEOUT);
  ev.unacked = 0;
  ev.backoff = 0;
  ev.probes = 2;
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_ETIMEDOUT, 0, &ev), VIGIL_CAUSE_KEEPALIVE_TIMEOUT);
  ev.snd_wnd = 0;
  ev.notsent_bytes = 5000;
  ASSERT_EQ(classify(VIGIL_CAUSE_NONE, VIGIL_ETIMEDOUT, 0, &ev), VIGIL_CAUSE_PEER_STALLED);
  /* The engine's own verdicts pass through. */
  ASSERT_EQ(classify(VIGIL_CAUSE_POLICY, 0, 0, &ev), VIGIL_CAUSE_POLICY);
  ASSERT_EQ(classify(VIGIL_CAUSE_CLOSED, 0, 0, &ev), VIGIL_CAUSE_CLOSED);
  return 0;
}

/* The public snapshot on a live loopback connection: a platform with a
 * TCP_INFO reader (VIGIL_HAVE_TCP_EVIDENCE, set by the build) reports the
 * connection established with nothing in flight; any other says ENOTSUP
 * and leaves a snapshot the rules read as "no evidence". */
TEST_IMPL(evidence_read) {
  vigil_os_socket a, b;
  vigil_tcp_evidence ev;
  const char *detail = "engine";
  vigil_verdict v;
  int r;
  ASSERT_EQ(util_net_tcp_pair(&a, &b), 0);
  memset(&ev, 0xff, sizeof ev);
  r = vigil_evidence_read(a, &ev);
#if defined(VIGIL_HAVE_TCP_EVIDENCE)
  ASSERT_EQ(r, 0);
  ASSERT_EQ(ev.available, 1);
  ASSERT_EQ(ev.state, VIGIL__TCP_ESTABLISHED);
  ASSERT_EQ(ev.unacked, 0);
  ASSERT_GT(ev.snd_wnd, 0);
#else
  ASSERT_EQ(r, VIGIL_ENOTSUP);
  ASSERT_EQ(ev.available, 0);
  ASSERT_EQ(ev.unacked, 0);
  ASSERT_UEQ(ev.snd_wnd, UINT32_MAX);
#endif
  /* A heartbeat verdict on this socket: its peer's kernel answered (the
   * connect's ACK came after the "last frame" 300 ms ago) though its
   * application said nothing, which the snapshot shows as a stall; without
   * a snapshot the session's verdict and detail stand. */
  memset(&v, 0, sizeof v);
  v.cause = VIGIL_CAUSE_HEARTBEAT_TIMEOUT;
  v.silent_ns = 300 * VIGIL_MS;
#if defined(VIGIL_HAVE_TCP_EVIDENCE)
  ASSERT_EQ(vigil_evidence_classify(&v, &ev, &detail), VIGIL_CAUSE_PEER_STALLED);
  ASSERT(strcmp(detail, "engine") != 0);
#else
  ASSERT_EQ(vigil_evidence_classify(&v, &ev, &detail), VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_STR_EQ(detail, "engine");
#endif
  util_net_close(a);
  util_net_close(b);
  return 0;
}

TEST_IMPL(connection_footprint) {
  size_t total = sizeof(vigil_conn);
  fprintf(stderr,
          "sizeof vigil_conn %zu (session %zu, tcp %zu, timer %zu); "
          "idle heap per connection: the struct + peer id\n",
          total, sizeof(vigil_session), sizeof(vigil_tcp), sizeof(vigil_loop_timer));
  ASSERT_LE(sizeof(vigil_session), 128);
  ASSERT_LT(total, 1024);
#if defined(__linux__) && defined(__x86_64__)
  /* The memory diet (docs/SCALE.md): 376 B, an id of up to 15 bytes
   * included, from a slab (no allocator header). A field added here costs
   * every idle connection; rarely used state belongs in vigil__conn_ext. */
  ASSERT_LE(total, 376);
#endif
  ASSERT_LE(sizeof(vigil__conn_ext), 144); /* glibc's chunk: 160 */
  return 0;
}

/* Peer ids of up to 15 bytes live in the connection, longer ones are
 * malloc'd (the memory diet, docs/SCALE.md): both sides of the boundary
 * and the longest id are stored whole, found by id, reported by
 * vigil_conn_get_info, and freed with the connection (ASan, `make test`). */
TEST_IMPL(peer_ids_inline_and_malloced) {
  static const size_t lens[] = {1, 15, 16, 255};
  char ids[4][256];
  vigil_os_socket s[4];
  fixture f;
  vigil_server_config cfg;
  size_t i;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  for (i = 0; i < 4; i++) {
    memset(ids[i], 'a' + (int)i, lens[i]);
    ids[i][lens[i]] = '\0';
    if (raw_open_quiet(&f, ids[i], &s[i]) == VIGIL_ENOTSUP)
      RETURN_SKIP("raw sockets need POSIX");
  }
  for (i = 0; i < 4; i++) {
    vigil_conn *c = vigil_server_find(f.srv, ids[i], lens[i]);
    vigil_conn_info info;
    ASSERT_NOT_NULL(c);
    vigil_conn_get_info(c, &info);
    ASSERT_UEQ(info.id_len, lens[i]);
    ASSERT_STR_EQ(info.id, ids[i]);
    ASSERT_EQ(!!(c->flags & VIGIL__C_ID_INLINE), lens[i] <= 15);
    ASSERT_EQ(!!(c->flags & VIGIL__C_ID_OWNED), lens[i] > 15);
  }
  ASSERT_NULL(vigil_server_find(f.srv, ids[1], 14)); /* a prefix is not the id */
  for (i = 0; i < 4; i++)
    util_raw_close(s[i]);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}
