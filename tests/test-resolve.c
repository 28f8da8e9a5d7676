/* Name resolution off the loop thread and connection racing (src/resolve.c,
 * src/race.c), through the client on real loopback sockets.
 *
 * The slow and blocking resolvers are the client's resolver hook
 * (vigil_client_config.resolve), run on the library's worker threads, so
 * nothing here depends on a DNS server. Every wait is bounded. */
#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
#else
#include <sys/socket.h>
#include <time.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "resolve.h"
#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "vigil.h"

#define WAIT 10000u

static void sleep_ms(unsigned ms) {
#if defined(_WIN32)
  Sleep(ms);
#else
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
#endif
}

static struct sockaddr_storage ip(const char *text) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  (void)vigil_ip_parse(text, &ss);
  return ss;
}

/* ---- resolvers run on the worker threads ------------------------------- */

/* Answers with the addresses in `list`, after `sleep_ms` or once `gate` is
 * open, and counts calls and returns. */
typedef struct fake {
  const char *list[4];
  int status;
  unsigned delay_ms;
  atomic_int gate; /* 0: hold the lookup until it becomes 1 */
  atomic_int calls, returned;
} fake;

static void fake_init(fake *f, const char *a, const char *b) {
  memset(f, 0, sizeof *f);
  f->list[0] = a;
  f->list[1] = b;
  atomic_store(&f->gate, 1);
  atomic_store(&f->calls, 0);
  atomic_store(&f->returned, 0);
}

static int fake_resolve(void *arg, const char *host, struct sockaddr_storage *out, size_t max,
                        size_t *n) {
  fake *f = arg;
  size_t i;
  (void)host;
  atomic_fetch_add(&f->calls, 1);
  if (f->delay_ms != 0)
    sleep_ms(f->delay_ms);
  while (atomic_load(&f->gate) == 0)
    sleep_ms(2);
  *n = 0;
  for (i = 0; i < 4 && f->list[i] != NULL && *n < max; i++)
    out[(*n)++] = ip(f->list[i]);
  atomic_fetch_add(&f->returned, 1);
  return f->status;
}

/* ---- a client with its recorder ---------------------------------------- */

typedef struct probe {
  util_rec rec; /* first: util_rec's callbacks get this struct as their user */
  vigil_client *cli;
  vigil_client_config cfg;
  vigil_conn_callbacks inner;
  char reject_peer[VIGIL_ADDRSTRLEN];
  uint64_t last_rtt_ns, max_gap_ns, connect_ns;
} probe;

static void probe_rtt(vigil_conn *c, uint64_t rtt_ns, void *user) {
  probe *p = user;
  uint64_t now = util_now_ns();
  if (p->last_rtt_ns != 0 && now - p->last_rtt_ns > p->max_gap_ns)
    p->max_gap_ns = now - p->last_rtt_ns;
  p->last_rtt_ns = now;
  p->inner.on_rtt(c, rtt_ns, user);
}

static void probe_reject(vigil_conn *c, const vigil_death *d, void *user) {
  probe *p = user;
  vigil_conn_info ci;
  vigil_conn_get_info(c, &ci);
  memcpy(p->reject_peer, ci.peer, sizeof ci.peer);
  p->inner.on_reject(c, d, user);
}

static void probe_config(probe *p, const char *id, fake *resolver) {
  memset(p, 0, sizeof *p);
  util_rec_init(&p->rec);
  vigil_client_config_init(&p->cfg);
  p->cfg.session.interval_ms = 100;
  p->cfg.session.timeout_ms = 300;
  /* A measures the loop by its own pongs: it pings every interval, not only
   * when the server's pings leave its link idle (with per-connection jitter
   * the two ends no longer ping in step) */
  p->cfg.session.ping_on_schedule = 1;
  p->cfg.session.id = id;
  p->cfg.session.id_len = strlen(id);
  p->inner = util_rec_callbacks();
  p->cfg.cb = p->inner;
  p->cfg.cb.on_rtt = probe_rtt;
  p->cfg.cb.on_reject = probe_reject;
  p->cfg.user = p;
  p->cfg.on_reconnect = util_rec_on_reconnect;
  p->cfg.on_closed = util_rec_on_client_closed;
  p->cfg.no_reconnect = 1;
  if (resolver != NULL) {
    p->cfg.resolve = fake_resolve;
    p->cfg.resolve_arg = resolver;
  }
}

static int probe_connect(probe *p, vigil_loop *loop, const char *host, uint16_t port) {
  int rc = vigil_client_new(&p->cli, loop, &p->cfg);
  if (rc != 0)
    return rc;
  p->connect_ns = util_now_ns();
  return vigil_client_connect(p->cli, host, port);
}

static int probe_end(probe *p, vigil_loop *loop) {
  if (!p->rec.closed)
    (void)vigil_client_close(p->cli, 200);
  if (!util_run_until(loop, &p->rec.closed, WAIT))
    return VIGIL_ETIMEDOUT;
  return vigil_client_free(p->cli);
}

/* A vigil server on 127.0.0.1 only. */
typedef struct srv {
  vigil_server *s;
  util_rec rec;
} srv;

static int srv_up(vigil_loop *loop, srv *sv, uint16_t *port) {
  vigil_server_config cfg;
  int rc;
  util_rec_init(&sv->rec);
  vigil_server_config_init(&cfg);
  cfg.session.min_interval_ms = 50;
  cfg.cb = util_rec_callbacks();
  cfg.user = &sv->rec;
  cfg.on_closed = util_rec_on_server_closed;
  if ((rc = vigil_server_new(&sv->s, loop, &cfg)) != 0)
    return rc;
  return vigil_server_listen(sv->s, "127.0.0.1", *port, port);
}

static int srv_down(vigil_loop *loop, srv *sv) {
  (void)vigil_server_shutdown(sv->s, 200);
  if (!util_run_until(loop, &sv->rec.closed, WAIT))
    return VIGIL_ETIMEDOUT;
  util_run_for(loop, 2);
  return vigil_server_free(sv->s);
}

static int loop_up(vigil_loop *loop) {
  int rc = util_net_init();
  return rc != 0 ? rc : vigil_loop_init(loop, NULL);
}

static int loop_down(vigil_loop *loop) {
  util_run_for(loop, 5);
  return vigil_loop_close(loop);
}

/* ---- order ----------------------------------------------------------------- */

/* RFC 8305 section 4: IPv6 first, families interleaved, each in the
 * resolver's order; duplicates dropped. */
TEST_IMPL(order_interleaves_ipv6_first) {
  struct sockaddr_storage a[6];
  char text[VIGIL_ADDRSTRLEN];
  static const char *want[] = {"[2001:db8::1]:0", "10.0.0.1:0", "[2001:db8::2]:0", "10.0.0.2:0",
                               "10.0.0.3:0"};
  size_t n, i;
  a[0] = ip("10.0.0.1:0");
  a[1] = ip("10.0.0.2:0");
  a[2] = ip("[2001:db8::1]:0");
  a[3] = ip("10.0.0.1:0"); /* duplicate */
  a[4] = ip("[2001:db8::2]:0");
  a[5] = ip("10.0.0.3:0");
  n = vigil__resolve_order(a, 6);
  ASSERT_EQ(n, 5);
  for (i = 0; i < n; i++) {
    ASSERT_GT(vigil_ip_format((const struct sockaddr *)&a[i], text, sizeof text), 0);
    ASSERT_STR_EQ(text, want[i]);
  }
  a[0] = ip("10.0.0.9:0");
  ASSERT_EQ(vigil__resolve_order(a, 1), 1); /* one family alone stays as it is */
  return 0;
}

TEST_IMPL(numeric_needs_no_lookup) {
  struct sockaddr_storage ss;
  ASSERT_EQ(util_net_init(), 0);
  ASSERT_EQ(vigil__resolve_numeric("127.0.0.1", &ss), 0);
  ASSERT_EQ(ss.ss_family, AF_INET);
  ASSERT_EQ(vigil__resolve_numeric("::1", &ss), 0);
  ASSERT_EQ(ss.ss_family, AF_INET6);
  ASSERT_EQ(vigil__resolve_numeric("localhost", &ss), VIGIL_EINVAL);
  return 0;
}

/* ---- localhost ------------------------------------------------------------- */

/* The system's resolver (a hosts-file name) reaches a server that listens
 * on 127.0.0.1 alone, whatever order and families it answers with. */
TEST_IMPL(localhost_reaches_ipv4_only_server) {
  vigil_loop loop;
  srv sv;
  probe p;
  uint16_t port = 0;
  ASSERT_EQ(loop_up(&loop), 0);
  ASSERT_EQ(srv_up(&loop, &sv, &port), 0);
  probe_config(&p, "r-localhost", NULL);
  ASSERT_EQ(probe_connect(&p, &loop, "localhost", port), 0);
  ASSERT(util_run_until(&loop, &p.rec.opens, WAIT));
  ASSERT_EQ(strncmp(p.rec.peer, "127.0.0.1:", 10), 0);
  ASSERT_EQ(probe_end(&p, &loop), 0);
  ASSERT_EQ(srv_down(&loop, &sv), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* "localhost" as a hosts file with both lines gives it (IPv4 first): ::1
 * is tried first and refused (nothing listens there), and 127.0.0.1 starts
 * at once, not after the attempt delay. */
TEST_IMPL(localhost_ipv6_refused_then_ipv4) {
  vigil_loop loop;
  srv sv;
  probe p;
  fake hosts;
  vigil_client_stats st;
  uint16_t port = 0;
  uint64_t took;
  ASSERT_EQ(loop_up(&loop), 0);
  ASSERT_EQ(srv_up(&loop, &sv, &port), 0);
  fake_init(&hosts, "127.0.0.1:0", "[::1]:0");
  probe_config(&p, "r-dual", &hosts);
  p.cfg.attempt_delay_ms = 2000; /* a refusal must not wait for it */
  ASSERT_EQ(probe_connect(&p, &loop, "localhost", port), 0);
  ASSERT(util_run_until(&loop, &p.rec.opens, WAIT));
  took = p.rec.open_ns - p.connect_ns;
  vigil_client_get_stats(p.cli, &st);
  fprintf(stderr, "localhost: %u addresses, %llu connects, open after %.1f ms via %s\n",
          st.addresses, (unsigned long long)st.tcp_connects, (double)took / 1e6, p.rec.peer);
  ASSERT_EQ(strncmp(p.rec.peer, "127.0.0.1:", 10), 0);
  ASSERT_EQ(st.addresses, 2);
  ASSERT_UEQ(st.tcp_connects, 2); /* ::1 first (had 127.0.0.1 gone first, it alone) */
  ASSERT_ULE(took, 1500 * VIGIL_MS);
  ASSERT_EQ(atomic_load(&hosts.calls), 1);
  ASSERT_EQ(probe_end(&p, &loop), 0);
  ASSERT_EQ(srv_down(&loop, &sv), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* Every address refused: one reject, naming the last address and error. */
TEST_IMPL(all_addresses_fail_names_the_last) {
  vigil_loop loop;
  probe p;
  fake hosts;
  vigil_client_stats st;
  vigil_os_socket l;
  uint16_t port = 0;
  char want[VIGIL_ADDRSTRLEN];
  ASSERT_EQ(util_raw_listen("127.0.0.1", &port, &l), 0);
  util_raw_close(l); /* nothing listens on 127.0.0.1:port now */
  ASSERT_EQ(loop_up(&loop), 0);
  fake_init(&hosts, "127.0.0.1:0", "[::1]:0");
  probe_config(&p, "r-allfail", &hosts);
  ASSERT_EQ(probe_connect(&p, &loop, "localhost", port), 0);
  ASSERT(util_run_until(&loop, &p.rec.rejects, WAIT));
  vigil_client_get_stats(p.cli, &st);
  snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
  fprintf(stderr, "all failed: %s %s (%s), peer %s\n", vigil_cause_name(p.rec.death.cause),
          vigil_err_name(p.rec.death.error), p.rec.detail, p.reject_peer);
  ASSERT_EQ(p.rec.rejects, 1);
  ASSERT_UEQ(st.tcp_connects, 2);
  ASSERT_STR_EQ(p.reject_peer, want);
  ASSERT_EQ(p.rec.death.error, VIGIL_ECONNREFUSED);
  ASSERT_EQ(p.rec.death.cause, VIGIL_CAUSE_RESET);
  ASSERT_STR_EQ(p.rec.detail, "every address failed (error and peer are the last attempt's)");
  ASSERT_EQ(probe_end(&p, &loop), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* ---- the stagger ------------------------------------------------------------ */

/* The first address never answers (a listener on 127.0.0.2 whose accept
 * queue is full drops our SYN, as a blackhole would); the second, tried
 * attempt_delay_ms later, wins, and the first attempt is closed. */
TEST_IMPL(blackhole_loses_to_next_after_delay) {
  vigil_loop loop;
  srv sv;
  probe p;
  fake hosts;
  vigil_client_stats st;
  vigil_os_socket hole, fill;
  uint16_t port = 0, hole_port;
  uint64_t took, wait0;
  ASSERT_EQ(loop_up(&loop), 0);
  ASSERT_EQ(srv_up(&loop, &sv, &port), 0);
  hole_port = port;
  if (util_raw_listen_n("127.0.0.2", &hole_port, 0, &hole) != 0) {
    ASSERT_EQ(srv_down(&loop, &sv), 0);
    ASSERT_EQ(loop_down(&loop), 0);
    RETURN_SKIP("cannot listen on 127.0.0.2 here");
  }
  ASSERT_EQ(util_raw_connect("127.0.0.2", port, &fill), 0); /* the queue is now full */
  fake_init(&hosts, "127.0.0.2:0", "127.0.0.1:0");
  probe_config(&p, "r-hole", &hosts);
  p.cfg.attempt_delay_ms = 300;
  wait0 = util_cpu_wait_ns();
  ASSERT_EQ(probe_connect(&p, &loop, "blackhole.test", port), 0);
  ASSERT(util_run_until(&loop, &p.rec.opens, WAIT));
  took = p.rec.open_ns - p.connect_ns;
  vigil_client_get_stats(p.cli, &st);
  fprintf(stderr, "blackhole first: open after %.1f ms via %s (%llu connects)\n",
          (double)took / 1e6, p.rec.peer, (unsigned long long)st.tcp_connects);
  if (strncmp(p.rec.peer, "127.0.0.2:", 10) == 0) {
    util_raw_close(fill);
    util_raw_close(hole);
    (void)probe_end(&p, &loop);
    (void)srv_down(&loop, &sv);
    RETURN_SKIP("this kernel accepted past the backlog; cannot make a SYN blackhole");
  }
  ASSERT_EQ(strncmp(p.rec.peer, "127.0.0.1:", 10), 0);
  ASSERT_UEQ(st.tcp_connects, 2);
  ASSERT_UGE(took, 300 * VIGIL_MS);
  ASSERT_ULE(took, 1300 * VIGIL_MS + (p.rec.open_wait_ns - wait0));
  ASSERT_EQ(p.rec.rejects, 0);
  ASSERT_EQ(probe_end(&p, &loop), 0);
  util_raw_close(fill);
  util_raw_close(hole);
  ASSERT_EQ(srv_down(&loop, &sv), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* ---- a slow resolver does not stop the loop -------------------------------- */

static int stalls;
static uint64_t stalled_ns;

static void count_stall(vigil_loop *loop, vigil_stall_watch *w, uint64_t stall_ns,
                        vigil_stall_kind kind) {
  (void)loop, (void)w, (void)kind;
  fprintf(stderr, "stall of %.1f ms\n", (double)stall_ns / 1e6);
  stalls++;
  stalled_ns += stall_ns;
}

/* Client A runs a 100 ms heartbeat; client B, on the same loop, resolves
 * through a resolver that takes 2 s. A's pongs keep coming every ~100 ms,
 * the loop's stall guard (500 ms) never fires, and B connects after the
 * lookup. Resolving on the loop thread (as before) froze A for 2 s. On an
 * overloaded machine the time this thread waited for a CPU meanwhile
 * (util_cpu_wait_ns, 0 on an idle one) is not counted against us: a
 * stall or a gap may be that long beyond the bounds. */
TEST_IMPL(slow_resolver_does_not_stall_the_loop) {
  vigil_loop loop;
  vigil_stall_watch watch;
  srv sv;
  probe a, b;
  fake slow;
  uint16_t port = 0;
  uint64_t wait0, waited;
  int rtts0;
  ASSERT_EQ(loop_up(&loop), 0);
  memset(&watch, 0, sizeof watch);
  stalls = 0;
  stalled_ns = 0;
  vigil_loop_stall_start(&loop, &watch, count_stall);
  ASSERT_EQ(srv_up(&loop, &sv, &port), 0);
  probe_config(&a, "r-beats", NULL);
  ASSERT_EQ(probe_connect(&a, &loop, "127.0.0.1", port), 0);
  ASSERT(util_run_until_n(&loop, &a.rec.rtts, 2, WAIT));
  fake_init(&slow, "127.0.0.1:0", NULL);
  slow.delay_ms = 2000;
  probe_config(&b, "r-slow", &slow);
  a.max_gap_ns = 0;
  rtts0 = a.rec.rtts;
  stalls = 0;
  stalled_ns = 0;
  wait0 = util_cpu_wait_ns();
  ASSERT_EQ(probe_connect(&b, &loop, "slow.test", port), 0);
  ASSERT(util_run_until(&loop, &b.rec.opens, WAIT));
  waited = util_cpu_wait_ns() - wait0;
  fprintf(stderr, "slow lookup: B open after %.1f ms; A meanwhile %d pongs, max gap %.1f ms\n",
          (double)(b.rec.open_ns - b.connect_ns) / 1e6, a.rec.rtts - rtts0,
          (double)a.max_gap_ns / 1e6);
  ASSERT_UGE(b.rec.open_ns - b.connect_ns, 2000 * VIGIL_MS);
  ASSERT(stalls == 0 || stalled_ns <= waited);
  ASSERT_EQ(a.rec.deaths, 0);
  ASSERT_GE(a.rec.rtts - rtts0, 10);
  ASSERT_ULE(a.max_gap_ns, 400 * VIGIL_MS + waited);
  vigil_loop_stall_stop(&loop, &watch);
  ASSERT_EQ(probe_end(&b, &loop), 0);
  ASSERT_EQ(probe_end(&a, &loop), 0);
  ASSERT_EQ(srv_down(&loop, &sv), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* ---- cancellation and limits ------------------------------------------------ */

/* Closed and freed while its lookup runs: the result, arriving later, is
 * dropped without touching the client (ASan would see it), and the loop
 * can close at once, without waiting for the worker. */
TEST_IMPL(closed_during_lookup_is_not_touched) {
  vigil_loop loop;
  probe p;
  static fake held; /* outlives the test body: the worker finishes late */
  uint64_t t0;
  ASSERT_EQ(loop_up(&loop), 0);
  fake_init(&held, "127.0.0.1:0", NULL);
  atomic_store(&held.gate, 0);
  probe_config(&p, "r-cancel", &held);
  ASSERT_EQ(probe_connect(&p, &loop, "held.test", 9), 0);
  t0 = util_now_ns();
  while (atomic_load(&held.calls) == 0 && util_now_ns() - t0 < WAIT * VIGIL_MS)
    util_run_for(&loop, 5);
  ASSERT_EQ(atomic_load(&held.calls), 1); /* the lookup is running */
  ASSERT_EQ(vigil_client_close(p.cli, 100), 0);
  ASSERT(util_run_until(&loop, &p.rec.closed, WAIT));
  ASSERT_EQ(p.rec.rejects, 1);
  ASSERT_EQ(p.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(vigil_client_free(p.cli), 0);
  ASSERT_EQ(loop_down(&loop), 0); /* nothing waits for the worker */
  ASSERT_EQ(atomic_load(&held.returned), 0);
  atomic_store(&held.gate, 1); /* now the result comes, to nobody */
  t0 = util_now_ns();
  while (atomic_load(&held.returned) == 0 && util_now_ns() - t0 < WAIT * VIGIL_MS)
    sleep_ms(5);
  ASSERT_EQ(atomic_load(&held.returned), 1);
  sleep_ms(20); /* the worker stores the result and drops it */
  return 0;
}

/* Past the cap on lookups in flight the attempt fails at once, with a
 * detail that says why; the lookup already running is unaffected. */
TEST_IMPL(lookups_over_the_cap_are_refused) {
  vigil_loop loop;
  srv sv;
  probe a, b;
  static fake held;
  uint16_t port = 0;
  unsigned old;
  ASSERT_EQ(loop_up(&loop), 0);
  ASSERT_EQ(srv_up(&loop, &sv, &port), 0);
  old = vigil__resolve_set_limit(1);
  fake_init(&held, "127.0.0.1:0", NULL);
  atomic_store(&held.gate, 0);
  probe_config(&a, "r-first", &held);
  probe_config(&b, "r-second", &held);
  ASSERT_EQ(probe_connect(&a, &loop, "one.test", port), 0);
  ASSERT_EQ(probe_connect(&b, &loop, "two.test", port), 0);
  ASSERT(util_run_until(&loop, &b.rec.rejects, WAIT));
  fprintf(stderr, "over the cap: %s (%s)\n", vigil_cause_name(b.rec.death.cause), b.rec.detail);
  ASSERT_EQ(b.rec.death.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_STR_EQ(b.rec.detail, "too many host name lookups in flight");
  atomic_store(&held.gate, 1);
  ASSERT(util_run_until(&loop, &a.rec.opens, WAIT));
  ASSERT_EQ(atomic_load(&held.calls), 1);
  (void)vigil__resolve_set_limit(old == VIGIL__RESOLVE_MAX_PENDING ? 0 : old);
  ASSERT_EQ(probe_end(&a, &loop), 0);
  ASSERT_EQ(probe_end(&b, &loop), 0);
  ASSERT_EQ(srv_down(&loop, &sv), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

TEST_IMPL(unknown_name_is_unreachable) {
  vigil_loop loop;
  probe p;
  static fake none;
  ASSERT_EQ(loop_up(&loop), 0);
  fake_init(&none, NULL, NULL);
  none.status = VIGIL_ENOENT;
  probe_config(&p, "r-none", &none);
  ASSERT_EQ(probe_connect(&p, &loop, "nowhere.test", 9), 0);
  ASSERT(util_run_until(&loop, &p.rec.rejects, WAIT));
  ASSERT_EQ(p.rec.death.cause, VIGIL_CAUSE_UNREACHABLE);
  ASSERT_STR_EQ(p.rec.detail, "host name did not resolve");
  ASSERT_EQ(probe_end(&p, &loop), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}

/* connect_timeout_ms bounds the lookup too. */
TEST_IMPL(lookup_longer_than_connect_timeout) {
  vigil_loop loop;
  probe p;
  static fake slow;
  uint64_t took;
  ASSERT_EQ(loop_up(&loop), 0);
  fake_init(&slow, "127.0.0.1:0", NULL);
  slow.delay_ms = 1500;
  probe_config(&p, "r-lookup-slow", &slow);
  p.cfg.connect_timeout_ms = 200;
  ASSERT_EQ(probe_connect(&p, &loop, "slow.test", 9), 0);
  ASSERT(util_run_until(&loop, &p.rec.rejects, WAIT));
  took = p.rec.death_ns - p.connect_ns;
  ASSERT_EQ(p.rec.death.cause, VIGIL_CAUSE_UNREACHABLE);
  ASSERT_EQ(p.rec.death.error, VIGIL_ETIMEDOUT);
  ASSERT_STR_EQ(p.rec.detail, "host name lookup outlasted the connect timeout");
  ASSERT_UGE(took, 200 * VIGIL_MS);
  ASSERT_ULE(took, 1200 * VIGIL_MS);
  ASSERT_EQ(probe_end(&p, &loop), 0);
  ASSERT_EQ(loop_down(&loop), 0);
  return 0;
}
