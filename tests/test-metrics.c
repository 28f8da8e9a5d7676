/* Metrics (vigil/metrics.h): the histograms and the Prometheus text on
 * made-up snapshots (no sockets), then the counters a real server and
 * client keep on loopback, each checked against exactly what the test
 * did: opens, pings and pongs, a silent peer's verdict and its lateness,
 * refusals by reason, queued bytes, connections by state. */
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "vigil.h"

#define WAIT 3000u

/* ---- sans-I/O: histograms and the text ------------------------------------ */

static void metrics_zero(vigil_metrics *m) {
  memset(m, 0, sizeof *m);
  m->size = sizeof *m;
}

/* The line of text that starts with `prefix`, or NULL. */
static const char *line_of(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  const char *p = text;
  while (p != NULL && *p != '\0') {
    if (strncmp(p, prefix, n) == 0)
      return p;
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  return NULL;
}

/* The value of the sample whose name and labels are exactly `sample`, or
 * -1 when it is absent. */
static long long sample_of(const char *text, const char *sample) {
  char prefix[256];
  const char *l;
  snprintf(prefix, sizeof prefix, "%s ", sample);
  l = line_of(text, prefix);
  return l != NULL ? strtoll(l + strlen(prefix), NULL, 10) : -1;
}

TEST_IMPL(histogram_bounds_and_text) {
  vigil_metrics m;
  static char text[16384];
  long n;
  metrics_zero(&m);
  /* One RTT exactly on the 1 ms bound, one just above it, one above 10 s. */
  m.rtt.count = 3;
  m.rtt.sum_ns = 1000000u + 1000001u + 20000000000ull;
  m.rtt.buckets[3] = 1; /* le 0.001 */
  m.rtt.buckets[4] = 1; /* le 0.0025 */
  m.deaths[VIGIL_CAUSE_PEER_STALLED] = 3;
  m.refused[VIGIL_REFUSED_SERVER_FULL] = 2;
  m.open = 100;
  m.pings_sent = 7;
  n = vigil_metrics_format(&m, text, sizeof text);
  ASSERT_GT(n, 0);
  ASSERT_LT(n, (long)sizeof text);
  ASSERT_EQ((long)strlen(text), n);
  ASSERT_EQ(sample_of(text, "vigil_connections{state=\"open\"}"), 100);
  ASSERT_EQ(sample_of(text, "vigil_deaths_total{cause=\"peer_stalled\"}"), 3);
  ASSERT_EQ(sample_of(text, "vigil_deaths_total{cause=\"reset\"}"), 0);
  ASSERT_EQ(sample_of(text, "vigil_deaths_total{cause=\"none\"}"), -1);
  ASSERT_EQ(sample_of(text, "vigil_refused_total{reason=\"server_full\"}"), 2);
  ASSERT_EQ(sample_of(text, "vigil_pings_sent_total"), 7);
  /* Cumulative buckets, +Inf = count, exact decimal seconds. */
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_bucket{le=\"0.0005\"}"), 0);
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_bucket{le=\"0.001\"}"), 1);
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_bucket{le=\"0.0025\"}"), 2);
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_bucket{le=\"10\"}"), 2);
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_bucket{le=\"+Inf\"}"), 3);
  ASSERT_EQ(sample_of(text, "vigil_rtt_seconds_count"), 3);
  ASSERT_NOT_NULL(line_of(text, "vigil_rtt_seconds_sum 20.002000001\n"));
  ASSERT_NOT_NULL(line_of(text, "# TYPE vigil_rtt_seconds histogram\n"));
  ASSERT_NOT_NULL(line_of(text, "# TYPE vigil_deaths_total counter\n"));
  ASSERT_NOT_NULL(line_of(text, "# TYPE vigil_connections gauge\n"));
  ASSERT_EQ(sample_of(text, "vigil_verdict_lateness_seconds_count"), 0);
  ASSERT_EQ(text[n - 1], '\n');
  return 0;
}

/* The observe function the runtime uses, through a real server is below;
 * here the bucket edges, through vigil_histogram_bound_ns. */
TEST_IMPL(histogram_bounds_are_ordered) {
  unsigned i;
  ASSERT_UEQ(vigil_histogram_bound_ns(VIGIL_HIST_RTT, 0), 100000u);
  ASSERT_UEQ(vigil_histogram_bound_ns(VIGIL_HIST_LATENESS, VIGIL_HIST_BUCKETS - 1), 10000000000ull);
  ASSERT_UEQ(vigil_histogram_bound_ns(VIGIL_HIST_RTT, VIGIL_HIST_BUCKETS), 0);
  ASSERT_UEQ(vigil_histogram_bound_ns((vigil_histogram_kind)7, 0), 0);
  for (i = 1; i < VIGIL_HIST_BUCKETS; i++)
    ASSERT(vigil_histogram_bound_ns(VIGIL_HIST_RTT, i) >
           vigil_histogram_bound_ns(VIGIL_HIST_RTT, i - 1));
  ASSERT_STR_EQ(vigil_refusal_name(VIGIL_REFUSED_HANDSHAKE_TIMEOUT), "handshake_timeout");
  ASSERT_STR_EQ(vigil_refusal_name(VIGIL_REFUSAL_COUNT), "unknown");
  return 0;
}

/* Like snprintf: a short buffer gets a cut, NUL-terminated text and the
 * full length; nothing is written past cap. */
TEST_IMPL(format_never_overflows) {
  vigil_metrics m;
  static char full[16384], cut[300];
  long n, k;
  size_t cap;
  metrics_zero(&m);
  m.deaths[VIGIL_CAUSE_CLOSED] = UINT64_MAX;
  m.lateness.sum_ns = UINT64_MAX;
  n = vigil_metrics_format(&m, full, sizeof full);
  ASSERT_GT(n, 0);
  ASSERT_EQ(vigil_metrics_format(&m, NULL, 0), n);
  ASSERT_NOT_NULL(strstr(full, "vigil_deaths_total{cause=\"closed\"} 18446744073709551615\n"));
  ASSERT_NOT_NULL(strstr(full, "vigil_verdict_lateness_seconds_sum 18446744073.709551615\n"));
  for (cap = 1; cap < sizeof cut; cap += 37) {
    memset(cut, 'X', sizeof cut);
    k = vigil_metrics_format(&m, cut, cap);
    ASSERT_EQ(k, n);
    ASSERT_EQ(cut[cap - 1], '\0');
    ASSERT_EQ(memcmp(cut, full, cap - 1), 0);
    if (cap < sizeof cut)
      ASSERT_EQ(cut[cap], 'X');
  }
  /* A snapshot from an older, smaller struct is refused, not misread. */
  m.size = sizeof m - 8;
  ASSERT_EQ(vigil_metrics_format(&m, full, sizeof full), VIGIL_EINVAL);
  ASSERT_EQ(vigil_metrics_format(NULL, full, sizeof full), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(metrics_add_sums) {
  vigil_metrics a, b;
  unsigned i;
  metrics_zero(&a);
  metrics_zero(&b);
  a.open = 3;
  b.open = 4;
  a.deaths[VIGIL_CAUSE_RESET] = 1;
  b.deaths[VIGIL_CAUSE_RESET] = 2;
  a.rtt.buckets[5] = 10;
  b.rtt.buckets[5] = 5;
  b.rtt.count = 5;
  b.refused[VIGIL_REFUSED_OVERLOAD] = 9;
  b.size = 64;
  vigil_metrics_add(&a, &b);
  ASSERT_EQ(a.open, 7);
  ASSERT_EQ(a.deaths[VIGIL_CAUSE_RESET], 3);
  ASSERT_EQ(a.rtt.buckets[5], 15);
  ASSERT_EQ(a.rtt.count, 5);
  ASSERT_EQ(a.refused[VIGIL_REFUSED_OVERLOAD], 9);
  ASSERT_EQ(a.size, 64);
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++)
    if (i != 5)
      ASSERT_EQ(a.rtt.buckets[i], 0);
  return 0;
}

/* ---- a real server ------------------------------------------------------ */

typedef struct fixture {
  vigil_loop loop;
  vigil_server *srv;
  util_rec rec;
  uint16_t port;
} fixture;

/* server_and_client_counters checks pongs on both ends, so there each end
 * pings every interval: with per-connection jitter one end's pings would
 * keep the other's link busy and its own pings unsent. */
static int server_pings_on_schedule;

static int server_up(fixture *f, uint32_t max_conns, uint32_t handshake_ms) {
  vigil_server_config cfg;
  int rc;
  util_rec_init(&f->rec);
  vigil_server_config_init(&cfg);
  cfg.session.interval_ms = 100;
  cfg.session.timeout_ms = 300;
  cfg.session.min_interval_ms = 50;
  cfg.session.ping_on_schedule = server_pings_on_schedule;
  cfg.session.handshake_timeout_ms = handshake_ms;
  cfg.max_connections = max_conns;
  cfg.cb = util_rec_callbacks();
  cfg.user = &f->rec;
  cfg.on_closed = util_rec_on_server_closed;
  if ((rc = util_net_init()) != 0 || (rc = vigil_loop_init(&f->loop, NULL)) != 0)
    return rc;
  if ((rc = vigil_server_new(&f->srv, &f->loop, &cfg)) != 0)
    return rc;
  return vigil_server_listen(f->srv, "127.0.0.1", 0, &f->port);
}

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

static vigil_metrics snap(const fixture *f) {
  vigil_metrics m;
  memset(&m, 0xAB, sizeof m);
  (void)vigil_server_get_metrics(f->srv, &m);
  return m;
}

static int count_open(vigil_conn *c, void *arg) {
  vigil_conn_info ci;
  vigil_conn_get_info(c, &ci);
  if (ci.id != NULL)
    (*(int *)arg)++;
  return 0;
}

static int stop_at_first(vigil_conn *c, void *arg) {
  (void)c;
  (*(int *)arg)++;
  return 42;
}

/* A vigil client on the same loop: one open, pings both ways, every pong
 * in the RTT histogram; its own metrics say the same from its side. */
TEST_IMPL(server_and_client_counters) {
  fixture f;
  vigil_client_config ccfg;
  vigil_client *cli;
  util_rec crec;
  vigil_metrics m, cm;
  int visited = 0;
  server_pings_on_schedule = 1;
  ASSERT_EQ(server_up(&f, 0, 0), 0);
  m = snap(&f);
  ASSERT_UEQ(m.size, sizeof m);
  ASSERT_EQ(m.open + m.handshaking + m.closing + m.connecting, 0);
  ASSERT_UEQ(m.opened, 0);
  util_rec_init(&crec);
  vigil_client_config_init(&ccfg);
  ccfg.session.interval_ms = 100;
  ccfg.session.ping_on_schedule = 1;
  ccfg.session.id = "m1";
  ccfg.session.id_len = 2;
  ccfg.cb = util_rec_callbacks();
  ccfg.user = &crec;
  ccfg.on_closed = util_rec_on_client_closed;
  ASSERT_EQ(vigil_client_new(&cli, &f.loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(cli, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  /* Both sides ping on schedule: wait for a few pongs on each. */
  ASSERT(util_run_until_n(&f.loop, &f.rec.rtts, 3, WAIT));
  ASSERT(util_run_until_n(&f.loop, &crec.rtts, 3, WAIT));
  m = snap(&f);
  ASSERT_EQ(m.open, 1);
  ASSERT_EQ(m.peers, 1);
  ASSERT_UEQ(m.accepted, 1);
  ASSERT_UEQ(m.opened, 1);
  ASSERT_UEQ(m.pongs_received, (uint64_t)f.rec.rtts);
  ASSERT_UEQ(m.rtt.count, m.pongs_received);
  ASSERT_UGE(m.pings_sent, m.pongs_received);
  ASSERT_ULE(m.pings_sent, m.pongs_received + 1); /* one outstanding at most */
  ASSERT_GT(m.rtt.sum_ns, 0);
  ASSERT_UEQ(vigil_server_foreach(f.srv, count_open, &visited), 0);
  ASSERT_EQ(visited, 1);
  visited = 0;
  ASSERT_EQ(vigil_server_foreach(f.srv, stop_at_first, &visited), 42);
  ASSERT_EQ(visited, 1);
  ASSERT_EQ(vigil_client_get_metrics(cli, &cm), 0);
  ASSERT_UEQ(cm.size, sizeof cm);
  ASSERT_EQ(cm.open, 1);
  ASSERT_UEQ(cm.opened, 1);
  ASSERT_UEQ(cm.pongs_received, (uint64_t)crec.rtts);
  ASSERT_UEQ(cm.rtt.count, cm.pongs_received);
  ASSERT_UEQ(cm.accepted, 0);
  /* A closed client: one death, cause closed (the client's CLOSE NORMAL). */
  ASSERT_EQ(vigil_client_close(cli, 0), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  ASSERT(util_run_until(&f.loop, &crec.closed, WAIT));
  m = snap(&f);
  ASSERT_EQ(m.open, 0);
  ASSERT_EQ(m.peers, 0);
  ASSERT_UEQ(m.deaths[f.rec.died_cause], 1);
  ASSERT_UEQ(m.lateness.count, 0); /* not a heartbeat verdict */
  ASSERT_EQ(vigil_client_free(cli), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The snapshot honours the caller's size (an older, smaller struct). */
TEST_IMPL(get_metrics_honours_size) {
  fixture f;
  unsigned char buf[sizeof(vigil_metrics) + 16];
  vigil_metrics *m = (vigil_metrics *)(void *)buf;
  size_t small = offsetof(vigil_metrics, accepted);
  ASSERT_EQ(server_up(&f, 0, 0), 0);
  memset(buf, 0xEE, sizeof buf);
  ASSERT_EQ(vigil_server_get_metrics_sized(f.srv, m, small), 0);
  ASSERT_UEQ(m->size, small);
  ASSERT_EQ(buf[small], 0xEE);
  ASSERT_EQ(vigil_server_get_metrics_sized(f.srv, m, 2), VIGIL_EINVAL);
  ASSERT_EQ(vigil_server_get_metrics_sized(NULL, m, sizeof *m), VIGIL_EINVAL);
  ASSERT_EQ(vigil_server_get_metrics_sized(f.srv, m, sizeof buf), 0);
  ASSERT_UEQ(m->size, sizeof *m);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* A raw peer (util-proc.h) that has done its handshake with f's server. */
static int raw_open(fixture *f, const char *id, uint32_t interval, uint32_t timeout,
                    vigil_os_socket *s) {
  uint8_t buf[512];
  vigil_frame fr;
  int rc, opens = f->rec.opens + 1;
  if ((rc = util_raw_connect("127.0.0.1", f->port, s)) != 0)
    return rc;
  if ((rc = util_raw_hello(*s, id, interval, timeout)) != 0)
    return rc;
  if (!util_run_until_n(&f->loop, &f->rec.opens, opens, WAIT))
    return VIGIL_ETIMEDOUT;
  util_run_for(&f->loop, 2);
  return util_raw_expect(*s, VIGIL_FRAME_WELCOME, WAIT, &fr, buf, sizeof buf);
}

/* A raw peer that handshakes and then says nothing: one heartbeat verdict
 * at timeout (300 ms), so the lateness histogram gets exactly one entry and
 * no verdict is early. Then refusals: a full server, a slow handshake. */
TEST_IMPL(verdict_lateness_and_refusals) {
  fixture f;
  vigil_os_socket s, s2, s3;
  vigil_metrics m;
  int rc;
  ASSERT_EQ(server_up(&f, 1, 200), 0);
  rc = raw_open(&f, "silent", 100, 300, &s);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(rc, 0);
  m = snap(&f);
  ASSERT_EQ(m.open, 1);
  /* While it is open, the server is full: a second socket is refused. */
  ASSERT_EQ(util_raw_connect("127.0.0.1", f.port, &s2), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.rejects, WAIT));
  m = snap(&f);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_SERVER_FULL], 1);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_HANDSHAKE_TIMEOUT], 0);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  m = snap(&f);
  ASSERT_UEQ(m.deaths[util_stalled_cause(&f.rec.death)], 1);
  ASSERT_UEQ(m.lateness.count, 1);
  ASSERT_UEQ(m.verdicts_early, 0);
  ASSERT_UEQ(m.pings_sent, (uint64_t)1 + m.pongs_received); /* the last ping was not answered */
  ASSERT_UEQ(m.pongs_received, 0);
  ASSERT_EQ(m.open, 0);
  /* A socket that never says HELLO: refused for the handshake timeout. */
  ASSERT_EQ(util_raw_connect("127.0.0.1", f.port, &s3), 0);
  ASSERT(util_run_until_n(&f.loop, &f.rec.rejects, 2, WAIT));
  m = snap(&f);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_HANDSHAKE_TIMEOUT], 1);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_BAD_HANDSHAKE], 0);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_SERVER_FULL], 1);
  ASSERT_UEQ(m.accepted, 3);
  ASSERT_UEQ(m.opened, 1);
  util_raw_close(s);
  util_raw_close(s2);
  util_raw_close(s3);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Bytes sent to a peer that does not read pile up in the queue gauge (to
 * the queue's cap, past what the kernel's buffers took) and leave it when
 * the connection dies (handed back). */
TEST_IMPL(queued_bytes_gauge) {
  fixture f;
  vigil_os_socket s;
  vigil_metrics m;
  static uint8_t msg[4000];
  int rc, i, sent = 0;
  ASSERT_EQ(server_up(&f, 0, 0), 0);
  rc = raw_open(&f, "sink", 2000, 6000, &s);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("raw sockets need POSIX");
  ASSERT_EQ(rc, 0);
  /* Fill the kernel buffers, then the queue; a few MB at most. */
  for (i = 0; i < 20000; i++) {
    rc = vigil_conn_send(f.rec.conn, msg, sizeof msg);
    if (rc == VIGIL_EQUEUEFULL)
      break; /* one strike of queue_full_strikes: the queue is at its cap */
    ASSERT_EQ(rc, 0);
    sent++;
    if (i % 50 == 0)
      util_run_for(&f.loop, 1);
  }
  ASSERT_EQ(rc, VIGIL_EQUEUEFULL);
  ASSERT_GT(sent, 0);
  util_run_for(&f.loop, 5);
  m = snap(&f);
  ASSERT_GT(m.queued_bytes, 0);
  ASSERT_ULE(m.queued_bytes, (uint64_t)sent * sizeof msg);
  {
    vigil_conn_info ci;
    vigil_conn_get_info(f.rec.conn, &ci);
    ASSERT_UEQ(m.queued_bytes, ci.queued_bytes);
  }
  util_raw_reset(s);
  ASSERT(util_run_until(&f.loop, &f.rec.deaths, WAIT));
  m = snap(&f);
  ASSERT_UEQ(m.queued_bytes, 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}
