/* The metrics endpoint of `vigil serve --metrics` (tools/metrics-http.h),
 * from the outside: a real `vigil serve` process, real clients in child
 * processes, HTTP over loopback, promtool on the scrape and headless
 * Chromium on the status page. Also the endpoint's JSON and parameter
 * checks called directly (they are untrusted input).
 *
 * Needs POSIX (fork, posix_spawn) and a vigil built with libmicrohttpd;
 * skips with the reason otherwise. promtool and chromium are skipped with
 * the reason when missing, except under CI=true, where they must be there
 * (scripts/install-deps.sh installs them). Every wait is bounded; every
 * process started here is killed by its pid at the end, even on failure. */
#include "../tools/args.c"
#include "../tools/cli.c"
#include "../tools/events.c"
#include "../tools/metrics-shared.c"
#include "../tools/status-json.c"

#include <stdlib.h>

#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "util-redis.h"

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---- without HTTP: the parameters and the JSON -------------------------- */

TEST_IMPL(page_params_checked) {
  vigil_cli_page q;
  const char *why = NULL;
  static char long_id[300];
  ASSERT_EQ(vigil_cli_page_parse(NULL, NULL, NULL, &q, &why), 0);
  ASSERT_EQ(q.offset, 0);
  ASSERT_EQ(q.limit, VIGIL_CLI_PAGE_DEFAULT);
  ASSERT_EQ(q.id_len, 0);
  ASSERT_EQ(vigil_cli_page_parse("4294967295", "1000", "gw-", &q, &why), 0);
  ASSERT_UEQ(q.offset, 4294967295u);
  ASSERT_EQ(q.limit, 1000);
  ASSERT_STR_EQ(q.id, "gw-");
  ASSERT_EQ(vigil_cli_page_parse("4294967296", NULL, NULL, &q, &why), -1);
  ASSERT_STR_EQ(why, "offset must be a whole number 0..4294967295");
  ASSERT_EQ(vigil_cli_page_parse("99999999999999999999", NULL, NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse("-1", NULL, NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse("0x10", NULL, NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse(" 1", NULL, NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse("", NULL, NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse(NULL, "0", NULL, &q, &why), -1);
  ASSERT_STR_EQ(why, "limit must be a whole number 1..1000");
  ASSERT_EQ(vigil_cli_page_parse(NULL, "1001", NULL, &q, &why), -1);
  ASSERT_EQ(vigil_cli_page_parse(NULL, "abc", NULL, &q, &why), -1);
  memset(long_id, 'x', 255);
  ASSERT_EQ(vigil_cli_page_parse(NULL, NULL, long_id, &q, &why), 0);
  ASSERT_EQ(q.id_len, 255);
  long_id[255] = 'x';
  ASSERT_EQ(vigil_cli_page_parse(NULL, NULL, long_id, &q, &why), -1);
  ASSERT_STR_EQ(why, "id is at most 255 bytes");
  return 0;
}

/* Ids and peers are the peer's bytes: escaped, never raw, in the JSON; the
 * ring keeps the newest 64 deaths. */
TEST_IMPL(status_json_escapes_and_bounds) {
  static vigil_cli_deaths ring;
  vigil_cli_buf b;
  vigil_metrics m;
  vigil_death d;
  int i;
  memset(&m, 0, sizeof(m));
  m.size = sizeof(m);
  memset(&d, 0, sizeof(d));
  d.cause = VIGIL_CAUSE_PEER_STALLED;
  d.silent_ns = 301500000u;
  d.timeout_ms = 300;
  for (i = 0; i < 70; i++)
    vigil_cli_deaths_add(&ring, 1.0 + i, "a\"b\\c\n\xff", 7, "127.0.0.1:1", &d);
  vigil_cli_buf_init(&b, 1 << 20);
  vigil_cli_status_json(&b, &m, 100.0, 90.0, &ring, NULL);
  ASSERT(!b.failed);
  ASSERT_NOT_NULL(strstr(b.p, "\"id\":\"a\\\"b\\\\c\\n\\ufffd\""));
  ASSERT_NOT_NULL(strstr(b.p, "\"deaths_recorded\":70"));
  ASSERT_NULL(strstr(b.p, "\"t\":6.000")); /* the 6 oldest were overwritten */
  ASSERT_NOT_NULL(strstr(b.p, "\"t\":7.000"));
  ASSERT_NOT_NULL(strstr(b.p, "\"cause\":\"peer_stalled\",\"silent_ms\":301.500"));
  ASSERT_NOT_NULL(strstr(b.p, "\"uptime_s\":10.000"));
  ASSERT_NOT_NULL(strstr(b.p, "\"presence\":null}"));
  vigil_cli_buf_free(&b);
  /* The cap holds: a buffer that may not grow past 100 bytes fails cleanly. */
  vigil_cli_buf_init(&b, 100);
  vigil_cli_status_json(&b, &m, 100.0, 90.0, &ring, NULL);
  ASSERT(b.failed);
  ASSERT(b.len < 100);
  vigil_cli_buf_free(&b);
  return 0;
}

/* `vigil status` reads a scrape back into the struct it was made from. */
TEST_IMPL(scrape_parse_round_trip) {
  vigil_metrics m, back;
  vigil_cli_presence_figures pf, pback;
  static char text[16384];
  unsigned i;
  long n, p;
  memset(&m, 0, sizeof(m));
  m.size = sizeof(m);
  m.connecting = 1;
  m.handshaking = 2;
  m.open = 3;
  m.closing = 4;
  m.peers = 5;
  m.queued_bytes = 6;
  m.accepted = 7;
  m.opened = 8;
  m.takeovers = 9;
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    m.refused[i] = 10 + i;
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++)
    m.deaths[i] = 20 + i;
  m.pings_sent = 31;
  m.pongs_received = 32;
  m.stalls = 33;
  m.queue_full_closes = 34;
  m.accept_emfile = 35;
  m.verdicts_early = 36;
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++) {
    m.rtt.buckets[i] = i * 3;
    m.lateness.buckets[i] = i % 2;
  }
  m.rtt.count = 1000;
  m.rtt.sum_ns = 1234567000u;
  m.lateness.count = 9;
  m.lateness.sum_ns = 5000000u;
  n = vigil_metrics_format(&m, text, sizeof(text));
  ASSERT_GT(n, 0);
  ASSERT_EQ(vigil_cli_scrape_parse(text, (size_t)n, &back, &pback), 0);
  ASSERT_MEM_EQ(&back, &m, sizeof(m));
  ASSERT_EQ(pback.present, 0); /* no presence samples: "off" */
  /* The presence store's figures come back too, each in its own field. */
  memset(&pf, 0, sizeof(pf));
  pf.present = 1;
  pf.processes = 2;
  pf.up = 1;
  pf.queued = 3;
  pf.sent = 4;
  pf.dropped = 5;
  pf.errors = 6;
  pf.bad_input = 7;
  pf.evictions = 8;
  pf.syncs = 9;
  pf.reconnects = 10;
  pf.node_lost = 11;
  p = vigil_cli_presence_format(&pf, text + n, sizeof(text) - (size_t)n);
  ASSERT_GT(p, 0);
  ASSERT_EQ(vigil_cli_scrape_parse(text, (size_t)(n + p), &back, &pback), 0);
  ASSERT_MEM_EQ(&back, &m, sizeof(m));
  ASSERT_MEM_EQ(&pback, &pf, sizeof(pf));
  ASSERT_EQ(vigil_cli_scrape_parse("garbage\n# x\n", 12, &back, NULL), -1);
  ASSERT_EQ(
      vigil_cli_scrape_parse("vigil_connections{state=\"open\" 5\nvigil_peers", 45, &back, NULL),
      0);
  ASSERT_EQ(back.open, 0);
  return 0;
}

/* The workers' shared figures (tools/metrics-shared.h) in one process: the
 * sum of two slots; a worker that ends keeps its counts in the sum (its
 * gauges go), and its successor counts on top; a worker killed in the
 * middle of a write leaves its last whole copy readable; deaths merge by
 * time. */
TEST_IMPL(workers_shared_sum) {
#if defined(VIGIL_HAVE_MICROHTTPD) && defined(MAP_ANONYMOUS)
  static vigil_cli_deaths d0, d1, out;
  vigil_cli_shared *sh;
  vigil_cli_presence_figures pf, pfs;
  vigil_metrics a, b, sum;
  vigil_death d;
  shared_slot *s0;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  b = a;
  memset(&d, 0, sizeof(d));
  memset(&pf, 0, sizeof(pf));
  pf.present = 1;
  pf.processes = 1;
  pf.up = 1;
  pf.sent = 40;
  d.cause = VIGIL_CAUSE_CLOSED;
  a.open = 7;
  a.opened = 10;
  a.deaths[VIGIL_CAUSE_CLOSED] = 3;
  a.rtt.count = 5;
  a.rtt.buckets[2] = 5;
  b.open = 4;
  b.opened = 6;
  b.rtt.count = 1;
  b.rtt.buckets[0] = 1;
  vigil_cli_deaths_add(&d0, 1.0, "w0-a", 4, "p", &d);
  vigil_cli_deaths_add(&d0, 3.0, "w0-b", 4, "p", &d);
  vigil_cli_deaths_add(&d1, 2.0, "w1-a", 4, "p", &d);
  ASSERT_EQ(vigil_cli_shared_new(&sh, 0), -1);
  ASSERT_EQ(vigil_cli_shared_new(&sh, 257), -1);
  ASSERT_EQ(vigil_cli_shared_new(&sh, 2), 0);
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), 0); /* nothing published: zeros */
  ASSERT_EQ(sum.opened, 0);
  ASSERT_EQ(out.total, 0);
  vigil_cli_shared_publish(sh, 0, &a, &d0, &pf);
  vigil_cli_shared_publish(sh, 1, &b, &d1, &pf);
  vigil_cli_shared_publish(sh, 2, &b, &d1, &pf); /* no such worker: ignored */
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), 0);
  ASSERT_EQ(sum.open, 11);
  ASSERT_EQ(sum.opened, 16);
  ASSERT_EQ(sum.rtt.count, 6);
  ASSERT_EQ(sum.rtt.buckets[0], 1);
  ASSERT_EQ(sum.rtt.buckets[2], 5);
  ASSERT_EQ(out.total, 3);
  ASSERT_EQ(pfs.present, 1);
  ASSERT_EQ(pfs.up, 2); /* both workers connected to the store */
  ASSERT_EQ(pfs.sent, 80);
  ASSERT_STR_EQ(out.rec[2].id, "w0-b"); /* newest at (total - 1) % N */
  ASSERT_STR_EQ(out.rec[1].id, "w1-a");
  ASSERT_STR_EQ(out.rec[0].id, "w0-a");
  /* Worker 0 dies in the middle of a write: the copy readers are pointed
   * at stays whole. */
  s0 = &sh->slots[0];
  s0->c[s0->current ^ 1u].seq |= 1u;
  memset(&s0->c[s0->current ^ 1u].u, 0xee, sizeof(shared_snap));
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), 0);
  ASSERT_EQ(sum.opened, 16);
  /* ... and is retired: its counts stay, its 7 open go. */
  vigil_cli_shared_retire(sh, 0);
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), 0);
  ASSERT_EQ(sum.open, 4);
  ASSERT_EQ(sum.opened, 16);
  ASSERT_EQ(sum.deaths[VIGIL_CAUSE_CLOSED], 3);
  ASSERT_EQ(sum.rtt.count, 6);
  ASSERT_EQ(out.total, 3);
  ASSERT_EQ(pfs.up, 1); /* a gauge: gone with the worker */
  ASSERT_EQ(pfs.processes, 1);
  ASSERT_EQ(pfs.present, 1);
  ASSERT_EQ(pfs.sent, 80); /* a counter: kept */
  /* Its successor starts from 0 and adds on top. */
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.open = 2;
  a.opened = 2;
  memset(&d0, 0, sizeof(d0));
  vigil_cli_deaths_add(&d0, 4.0, "w0-c", 4, "p", &d);
  vigil_cli_shared_publish(sh, 0, &a, &d0, &pf);
  vigil_cli_shared_publish(sh, 0, &a, &d0, &pf); /* both copies written once */
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), 0);
  ASSERT_EQ(sum.open, 6);
  ASSERT_EQ(sum.opened, 18);
  ASSERT_EQ(sum.deaths[VIGIL_CAUSE_CLOSED], 3);
  ASSERT_EQ(out.total, 4);
  ASSERT_STR_EQ(out.rec[3].id, "w0-c");
  ASSERT_STR_EQ(out.rec[2].id, "w0-b"); /* the retired worker's deaths are kept */
  /* A slot that never settles (a writer always mid-copy) makes the read
   * give up after its bounded tries instead of spinning. */
  s0->c[0].seq |= 1u;
  s0->c[1].seq |= 1u;
  ASSERT_EQ(vigil_cli_shared_read(sh, &sum, &out, &pfs), -1);
  vigil_cli_shared_free(sh);
  return 0;
#else
  RETURN_SKIP("this vigil was built without libmicrohttpd (no --metrics)");
#endif
}

/* 100 deaths merged from two rings keep the newest 64, in time order. */
TEST_IMPL(deaths_merge_keeps_newest) {
  static vigil_cli_deaths a, b;
  vigil_death d;
  int i;
  memset(&d, 0, sizeof(d));
  d.cause = VIGIL_CAUSE_RESET;
  for (i = 0; i < 100; i++) { /* a: even seconds, b: odd */
    char id[8];
    snprintf(id, sizeof(id), "%d", i);
    vigil_cli_deaths_add(i % 2 == 0 ? &a : &b, (double)i, id, strlen(id), "p", &d);
  }
  vigil_cli_deaths_merge(&a, &b);
  ASSERT_EQ(a.total, 100);
  for (i = 0; i < VIGIL_CLI_RECENT_DEATHS; i++) /* oldest kept: 36 */
    ASSERT_EQ((int)a.rec[(100 - 64 + i) % VIGIL_CLI_RECENT_DEATHS].t, 36 + i);
  return 0;
}

#if !defined(_WIN32)

#define SERVE_WAIT_MS 10000

extern char **environ;

static const char *vigil_bin(void) {
  static char path[1024];
  const char *dir = getenv("VIGIL_BINARY_DIR");
  if (dir == NULL)
    return NULL;
  snprintf(path, sizeof(path), "%s/vigil", dir);
  return access(path, X_OK) == 0 ? path : NULL;
}

static int on_ci(void) {
  const char *ci = getenv("CI");
  return ci != NULL && strcmp(ci, "true") == 0;
}

/* A `vigil serve` process with --metrics; its stdout goes to a file. With
 * --workers, mport is the whole server's endpoint and wport[K] worker K's. */
typedef struct served {
  pid_t pid;
  char out[200];
  uint16_t port, mport, wport[2];
} served;

static long json_num(const char *line, const char *key) {
  char k[64];
  const char *p;
  snprintf(k, sizeof(k), "\"%s\":", key);
  p = strstr(line, k);
  return p != NULL ? strtol(p + strlen(k), NULL, 10) : -1;
}

/* Reads the lines serve printed so far: 1 once the ports are known (the
 * listening line, or with `workers` the metrics_listening line and one
 * listening line per worker). */
static int serve_ready(served *s, int workers) {
  char line[1024];
  int listening = 0;
  FILE *f = fopen(s->out, "r");
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL && strchr(line, '\n') != NULL) {
    if (strstr(line, "\"event\":\"metrics_listening\"") != NULL)
      s->mport = (uint16_t)json_num(line, "metrics_port");
    if (strstr(line, "\"event\":\"listening\"") == NULL)
      continue;
    listening++;
    s->port = (uint16_t)json_num(line, "port");
    if (workers == 0)
      s->mport = (uint16_t)json_num(line, "metrics_port");
    else if (json_num(line, "worker") >= 0 && json_num(line, "worker") < 2)
      s->wport[json_num(line, "worker")] = (uint16_t)json_num(line, "metrics_port");
  }
  fclose(f);
  return s->port > 0 && s->mport > 0 && listening >= (workers > 0 ? workers : 1);
}

static int serve_start_n(served *s, const char *const *extra, int workers) {
  const char *bin = vigil_bin();
  char *argv[32];
  int n = 0, i;
  posix_spawn_file_actions_t fa;
  uint64_t end = util_now_ns() + (uint64_t)SERVE_WAIT_MS * 1000000u;
  memset(s, 0, sizeof(*s));
  if (bin == NULL)
    return -1;
  snprintf(s->out, sizeof(s->out), "/tmp/vigil-endpoint-%ld.out", (long)getpid());
  argv[n++] = (char *)(uintptr_t)bin;
  argv[n++] = "serve";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--metrics";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--json";
  if (workers > 0) {
    argv[n++] = "--workers";
    argv[n++] = workers == 2 ? "2" : "1";
  }
  for (i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
    argv[n++] = (char *)(uintptr_t)extra[i];
  argv[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, s->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  i = posix_spawn(&s->pid, bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (i != 0)
    return -1;
  while (util_now_ns() < end) {
    if (serve_ready(s, workers))
      return 0;
    usleep(10000);
  }
  return -1;
}

static int serve_start(served *s, const char *const *extra) {
  return serve_start_n(s, extra, 0);
}

/* SIGTERM first: with --workers the supervisor stops every worker and its
 * endpoint before it exits. A SIGKILL of the supervisor leaves them running
 * where the kernel has no PR_SET_PDEATHSIG (the generic POSIX build: the
 * CI's generic run left a supervisor's three processes behind). SIGKILL
 * only after a bounded wait. */
static void serve_stop(served *s) {
  if (s->pid > 0) {
    uint64_t end = util_now_ns() + 5000000000ull;
    kill(s->pid, SIGTERM);
    while (waitpid(s->pid, NULL, WNOHANG) == 0) {
      if (util_now_ns() > end) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        break;
      }
      usleep(10000);
    }
    s->pid = 0;
  }
  if (s->out[0] != '\0')
    unlink(s->out);
}

/* GET path (the request line and headers given whole in req when not
 * NULL); the response into buf. Returns the HTTP status, or -1. */
static int http_req(uint16_t port, const char *req, char *buf, size_t cap, uint32_t timeout_ms) {
  vigil_os_socket s;
  size_t len = 0;
  long n;
  uint64_t end = util_now_ns() + (uint64_t)timeout_ms * 1000000u;
  buf[0] = '\0';
  if (util_raw_connect("127.0.0.1", port, &s) != 0)
    return -1;
  if (util_raw_send(s, req, strlen(req)) != 0) {
    util_raw_close(s);
    return -1;
  }
  while (len + 1 < cap && util_now_ns() < end) {
    n = util_raw_recv(s, buf + len, cap - 1 - len, 200);
    if (n == VIGIL_EAGAIN)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  util_raw_close(s);
  if (strncmp(buf, "HTTP/1.", 7) != 0)
    return -1;
  return atoi(buf + 9);
}

static int http_get(uint16_t port, const char *path, char *buf, size_t cap) {
  char req[1024];
  snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  return http_req(port, req, buf, cap, 5000);
}

static const char *body_of(const char *resp) {
  const char *p = strstr(resp, "\r\n\r\n");
  return p != NULL ? p + 4 : "";
}

/* The value of sample `name` (name and labels exactly) in a scrape, or -1. */
static long long sample(const char *text, const char *name) {
  size_t n = strlen(name);
  const char *p = text;
  while ((p = strstr(p, name)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtoll(p + n + 1, NULL, 10);
    p += n;
  }
  return -1;
}

/* The text of a file (at most 1 MiB), or "" when it cannot be read. */
static const char *file_text(const char *path) {
  static char text[1 << 20];
  FILE *f = fopen(path, "r");
  size_t n = 0;
  if (f != NULL) {
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
  }
  text[n] = '\0';
  return text;
}

static int file_has(const char *path, const char *needle) {
  return strstr(file_text(path), needle) != NULL;
}

/* Scrapes until sample `name` reaches at least want (bounded); its value. */
static long long scrape_until(uint16_t port, const char *name, long long want, char *buf,
                              size_t cap, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * 1000000u;
  long long v = -1;
  do {
    if (http_get(port, "/metrics", buf, cap) == 200 && (v = sample(body_of(buf), name)) >= want)
      return v;
    usleep(20000);
  } while (util_now_ns() < end);
  return v;
}

/* ---- clients in child processes ---- */

typedef struct clients_arg {
  uint16_t port;
  int n;
  const char *prefix;
} clients_arg;

/* Child: n vigil clients (ids PREFIX-0..n-1), heartbeat 100 ms, forever. */
static int clients_main(void *p) {
  clients_arg *a = p;
  static vigil_client *cli[64];
  static char ids[64][32];
  vigil_loop loop;
  int i;
  if (vigil_loop_init(&loop, NULL) != 0)
    return 1;
  for (i = 0; i < a->n && i < 64; i++) {
    vigil_client_config cfg;
    vigil_client_config_init(&cfg);
    snprintf(ids[i], sizeof(ids[i]), "%s-%d", a->prefix, i);
    cfg.session.interval_ms = 100;
    cfg.session.id = ids[i];
    cfg.session.id_len = strlen(ids[i]);
    cfg.no_reconnect = 1;
    if (vigil_client_new(&cli[i], &loop, &cfg) != 0 ||
        vigil_client_connect(cli[i], "127.0.0.1", a->port) != 0)
      return 1;
  }
  for (;;)
    (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
}

static int clients_spawn(uint16_t port, int n, const char *prefix, long *pid) {
  clients_arg a;
  a.port = port;
  a.n = n;
  a.prefix = prefix;
  return util_proc_spawn(clients_main, &a, pid); /* fork: a is copied */
}

#define SKIP_WITHOUT_ENDPOINT()                                                                    \
  do {                                                                                             \
    if (vigil_bin() == NULL)                                                                       \
      RETURN_SKIP("VIGIL_BINARY_DIR/vigil not built");                                             \
    if (!vigil_cli_http_built())                                                                   \
      RETURN_SKIP("this vigil was built without libmicrohttpd (no --metrics)");                    \
  } while (0)

static int vigil_cli_http_built(void) {
#if defined(VIGIL_HAVE_MICROHTTPD)
  return 1;
#else
  return 0;
#endif
}

/* promtool check metrics on a scrape body (when promtool is there: the
 * caller failed already under CI without it). 0 when it passes. */
static int promtool_check(int promtool, const char *base, const char *body) {
  char cmd[600], path[300];
  FILE *f;
  int rc;
  if (!promtool) {
    fprintf(stderr, "promtool not installed: exposition not checked by it\n");
    return 0;
  }
  snprintf(path, sizeof(path), "%s.prom", base);
  if ((f = fopen(path, "w")) == NULL)
    return -1;
  fputs(body, f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
  rc = util_sh(cmd);
  unlink(path);
  if (rc != 0)
    fprintf(stderr, "promtool check metrics failed on:\n%s\n", body);
  return rc != 0 ? -1 : 0;
}

/* A scripted run, each step checked on /metrics by exactly what it did:
 * 4 clients open; a flood of 10 sockets over --max-conns is refused; one
 * client is SIGSTOPped and dies (peer_stalled, or heartbeat_timeout without TCP_INFO), its verdict
 * in the lateness histogram. promtool accepts every scrape. */
static int scrape_run(void) {
  static char buf[65536];
  const char *extra[] = {"--interval", "100ms", "--timeout", "300ms", "--max-conns", "4", NULL};
  served s;
  long three = -1, stopped = -1;
  const char *cause;
  char want[64];
  vigil_os_socket flood[10];
  int i, promtool;
  char cmd[1600], path[300];
  SKIP_WITHOUT_ENDPOINT();
  promtool = util_sh("command -v promtool >/dev/null") == 0;
  if (!promtool && on_ci())
    TEST_FAIL_AT("promtool missing under CI (scripts/install-deps.sh installs prometheus)");
  ASSERT_EQ(serve_start(&s, extra), 0);
  if (clients_spawn(s.port, 3, "steady", &three) != 0 ||
      clients_spawn(s.port, 1, "stopped", &stopped) != 0)
    goto fail;
  if (scrape_until(s.mport, "vigil_opens_total", 4, buf, sizeof(buf), 5000) != 4)
    goto fail;
  if (sample(body_of(buf), "vigil_connections{state=\"open\"}") != 4 ||
      sample(body_of(buf), "vigil_accepted_total") != 4 ||
      sample(body_of(buf), "vigil_refused_total{reason=\"server_full\"}") != 0)
    goto fail;
  /* The flood: 10 more sockets while 4 are live, each refused SERVER_FULL. */
  for (i = 0; i < 10; i++)
    if (util_raw_connect("127.0.0.1", s.port, &flood[i]) != 0)
      goto fail;
  if (scrape_until(s.mport, "vigil_refused_total{reason=\"server_full\"}", 10, buf, sizeof(buf),
                   5000) != 10 ||
      sample(body_of(buf), "vigil_accepted_total") != 14 ||
      sample(body_of(buf), "vigil_opens_total") != 4 ||
      sample(body_of(buf), "vigil_connections{state=\"open\"}") != 4)
    goto fail;
  for (i = 0; i < 10; i++)
    util_raw_close(flood[i]);
  /* A SIGSTOPped client: its kernel still ACKs, its heartbeat stops. */
  if (util_proc_stop(stopped) != 0)
    goto fail;
  /* Its cause is peer_stalled where the kernel's view (TCP_INFO) shows the
   * frozen client's kernel ACKing the server's ping; without TCP_INFO (the
   * generic POSIX build), or when a delayed ACK is still pending at a
   * 300 ms verdict, silence is all there is: heartbeat_timeout. Exactly one
   * of the two, and `vigil status` must name the same one. */
  if (scrape_until(s.mport, "vigil_verdict_lateness_seconds_count", 1, buf, sizeof(buf), 5000) != 1)
    goto fail;
  cause = sample(body_of(buf), "vigil_deaths_total{cause=\"peer_stalled\"}") == 1
              ? "peer_stalled"
              : "heartbeat_timeout";
  if (sample(body_of(buf), "vigil_deaths_total{cause=\"peer_stalled\"}") +
              sample(body_of(buf), "vigil_deaths_total{cause=\"heartbeat_timeout\"}") !=
          1 ||
      sample(body_of(buf), "vigil_verdicts_early_total") != 0 ||
      sample(body_of(buf), "vigil_connections{state=\"open\"}") != 3 ||
      sample(body_of(buf), "vigil_opens_total") != 4 ||
      sample(body_of(buf), "vigil_deaths_total{cause=\"closed\"}") != 0 ||
      sample(body_of(buf), "vigil_pongs_received_total") <= 0 ||
      sample(body_of(buf), "vigil_rtt_seconds_count") !=
          sample(body_of(buf), "vigil_pongs_received_total"))
    goto fail;
  if (promtool_check(promtool, s.out, body_of(buf)) != 0)
    goto fail;
  /* `vigil status` says the same. */
  snprintf(path, sizeof(path), "%s.status", s.out);
  snprintf(cmd, sizeof(cmd), "'%s' status 127.0.0.1:%u --json > %s", vigil_bin(), (unsigned)s.mport,
           path);
  i = util_sh(cmd);
  snprintf(want, sizeof(want), "\"%s\":1,", cause);
  if (i != 0 || !file_has(path, want) || !file_has(path, "\"open\":3,") ||
      !file_has(path, "\"server_full\":10,") || !file_has(path, "\"opens\":4,") ||
      !file_has(path, "\"presence\":null")) {
    fprintf(stderr, "vigil status --json disagrees with the scrape (%s)\n", path);
    goto fail;
  }
  unlink(path);
  snprintf(cmd, sizeof(cmd), "'%s' status 127.0.0.1:%u > %s", vigil_bin(), (unsigned)s.mport, path);
  i = util_sh(cmd);
  snprintf(want, sizeof(want), "deaths       %s 1\n", cause);
  if (i != 0 || !file_has(path, "connections  open 3  handshaking 0") || !file_has(path, want) ||
      !file_has(path, "presence     off\n")) {
    fprintf(stderr, "vigil status disagrees with the scrape (%s)\n", path);
    goto fail;
  }
  unlink(path);
  util_proc_kill(three);
  util_proc_kill(stopped);
  serve_stop(&s);
  return 0;
fail:
  fprintf(stderr, "last scrape:\n%s\n", buf);
  if (three > 0)
    util_proc_kill(three);
  if (stopped > 0)
    util_proc_kill(stopped);
  serve_stop(&s);
  TEST_FAIL_AT("see above");
}

/* ---- bad requests ---- */

/* Opens n raw connections to port; each sends `prefix` (may be ""). */
static int raw_many(uint16_t port, vigil_os_socket *socks, int n, const char *prefix) {
  int i;
  for (i = 0; i < n; i++) {
    if (util_raw_connect("127.0.0.1", port, &socks[i]) != 0)
      return -1;
    if (prefix[0] != '\0' && util_raw_send(socks[i], prefix, strlen(prefix)) != 0)
      return -1;
  }
  return 0;
}

/* How many of socks the server closed within ms (EOF or reset). */
static int closed_by_server(vigil_os_socket *socks, int n, uint32_t ms) {
  char b[512];
  int i, k = 0;
  for (i = 0; i < n; i++) {
    long r = util_raw_recv(socks[i], b, sizeof(b), i == 0 ? ms : 20);
    while (r > 0)
      r = util_raw_recv(socks[i], b, sizeof(b), 20);
    if (r == 0 || (r < 0 && r != VIGIL_EAGAIN))
      k++;
  }
  return k;
}

/* Unknown paths, methods, parameters, huge headers, a crowd of sockets and
 * slow clients each get a clear answer (or are cut off), the endpoint keeps
 * serving, and no heartbeat suffers: the 5 clients stay open throughout. */
static int bad_run(void) {
  static char buf[65536], req[40000];
  static vigil_os_socket crowd[40], slow[6];
  const char *extra[] = {"--interval", "200ms", "--timeout", "2s", NULL};
  served s;
  long pids = 0;
  int st, k, ok = 0;
  SKIP_WITHOUT_ENDPOINT();
  ASSERT_EQ(serve_start(&s, extra), 0);
  if (clients_spawn(s.port, 5, "steady", &pids) != 0 ||
      scrape_until(s.mport, "vigil_connections{state=\"open\"}", 5, buf, sizeof(buf), 10000) != 5)
    goto out;
#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: %s\n%.400s\n", __FILE__, __LINE__, #cond, buf);                      \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  EXPECT(http_get(s.mport, "/nope", buf, sizeof(buf)) == 404);
  EXPECT(http_get(s.mport, "/metrics/../etc/passwd", buf, sizeof(buf)) == 404);
  EXPECT(http_req(s.mport, "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", buf,
                  sizeof(buf), 5000) == 405);
  EXPECT(http_req(s.mport, "DELETE / HTTP/1.0\r\n\r\n", buf, sizeof(buf), 5000) == 405);
  EXPECT(http_get(s.mport, "/connections?limit=0", buf, sizeof(buf)) == 400 &&
         strstr(buf, "limit must be a whole number 1..1000") != NULL);
  EXPECT(http_get(s.mport, "/connections?offset=-5", buf, sizeof(buf)) == 400);
  EXPECT(http_get(s.mport, "/connections?offset=99999999999999999999999", buf, sizeof(buf)) == 400);
  memset(req, 0, sizeof(req));
  strcpy(req, "/connections?id=");
  memset(req + strlen(req), 'x', 300);
  EXPECT(http_get(s.mport, req, buf, sizeof(buf)) == 400);
  EXPECT(http_get(s.mport, "/connections?id=%FF%22%5C", buf, sizeof(buf)) == 200 &&
         strstr(buf, "\"id\":\"\\ufffd\\\"\\\\\"") != NULL && strstr(buf, "\"matched\":0") != NULL);
  EXPECT(http_get(s.mport, "/connections?id=steady&limit=2&offset=1", buf, sizeof(buf)) == 200 &&
         strstr(buf, "\"matched\":5") != NULL && strstr(buf, "\"open\":5") != NULL);
  /* A header far over the 16 KiB a connection may use: 431, or cut off. */
  strcpy(req, "GET /metrics HTTP/1.0\r\nX-Big: ");
  memset(req + strlen(req), 'a', 30000);
  strcat(req, "\r\n\r\n");
  st = http_req(s.mport, req, buf, sizeof(buf), 5000);
  EXPECT(st == 431 || st == -1);
  /* Slow clients: 6 half-sent requests do not hold up a whole one. */
  EXPECT(raw_many(s.mport, slow, 6, "GET /metr") == 0);
  EXPECT(http_get(s.mport, "/metrics", buf, sizeof(buf)) == 200);
  for (k = 0; k < 6; k++)
    util_raw_close(slow[k]);
  usleep(100000);
  /* A crowd: 40 idle sockets from one address; beyond 8 they are closed at
   * once (the per-address limit), and the endpoint serves again after. */
  EXPECT(raw_many(s.mport, crowd, 40, "") == 0);
  k = closed_by_server(crowd, 40, 1000);
  fprintf(stderr, "crowd of 40: %d closed by the endpoint at once\n", k);
  EXPECT(k >= 40 - 8);
  for (k = 0; k < 40; k++)
    util_raw_close(crowd[k]);
  usleep(100000);
  EXPECT(http_get(s.mport, "/metrics", buf, sizeof(buf)) == 200);
  /* The heartbeats never noticed. */
  EXPECT(sample(body_of(buf), "vigil_connections{state=\"open\"}") == 5);
  EXPECT(sample(body_of(buf), "vigil_opens_total") == 5);
  EXPECT(sample(body_of(buf), "vigil_deaths_total{cause=\"peer_stalled\"}") == 0);
  EXPECT(sample(body_of(buf), "vigil_deaths_total{cause=\"heartbeat_timeout\"}") == 0);
  EXPECT(sample(body_of(buf), "vigil_deaths_total{cause=\"closed\"}") == 0);
#undef EXPECT
  ok = 1;
out:
  if (pids > 0)
    util_proc_kill(pids);
  serve_stop(&s);
  return ok ? 0 : 1;
}

/* ---- the status page in a real browser ---- */

/* The number after `"key":` in a JSON text, or -1. */
static long long json_ll(const char *text, const char *key) {
  char k[64];
  const char *p;
  snprintf(k, sizeof(k), "\"%s\":", key);
  p = strstr(text, k);
  return p != NULL ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/* The data-count the page shows for cause `cause`, or -1. */
static long dom_cause_count(const char *path, const char *cause) {
  char k[96];
  const char *p;
  snprintf(k, sizeof(k), "data-cause=\"%s\" data-count=\"", cause);
  p = strstr(file_text(path), k);
  return p != NULL ? strtol(p + strlen(k), NULL, 10) : -1;
}

static int dom_count(const char *path, const char *needle) {
  const char *p = file_text(path);
  int k = 0;
  for (; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    k++;
  return k;
}

/* Headless Chromium on the page, bounded by timeout(1), with its own
 * profile directory; what = "--dump-dom > FILE" or "--screenshot=FILE".
 * Chromium itself (not the page) fails now and then on a loaded machine
 * (a crash, or timeout's 120 s): one more try then, saying so; what the
 * page shows is checked by the caller either way. */
static int chromium(uint16_t port, const char *profile, const char *what) {
  char cmd[2400];
  int rc, tries;
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
           "--user-data-dir=%s --window-size=1400,1300 --virtual-time-budget=3000 %s "
           "http://127.0.0.1:%u/ 2>/dev/null",
           profile, what, (unsigned)port);
  for (tries = 0; tries < 2; tries++) {
    rc = util_sh(cmd);
    if (rc == 0)
      return 0;
    fprintf(stderr, "chromium exited %d (try %d of 2)\n", rc, tries + 1);
  }
  return rc;
}

#define PAGE_GROUPS 10
#define PAGE_PER_GROUP 10
/* The bound: deaths by cause show the 10 within 2 s of the kill. */
#define PAGE_DEATHS_MS 2000

static uint64_t wall_ms(void) {
  return util_now_ns() / 1000000u;
}

/* Reads frames from a raw vigil connection until one of `type` arrives
 * (1) or ms pass (0). */
static int raw_await_frame(vigil_os_socket sock, uint8_t type, uint32_t ms) {
  static uint8_t in[4096];
  static size_t have;
  uint64_t end = wall_ms() + ms;
  vigil_frame f;
  int n;
  for (;;) {
    while ((n = vigil_wire_decode(in, have, 0, &f)) > 0) {
      memmove(in, in + n, have - (size_t)n);
      have -= (size_t)n;
      if (f.type == type)
        return 1;
    }
    if (n != VIGIL_ENEEDMORE || have == sizeof(in) || wall_ms() >= end)
      return 0;
    long r = util_raw_recv(sock, in + have, sizeof(in) - have, (uint32_t)(end - wall_ms()));
    if (r > 0)
      have += (size_t)r;
    else if (r != VIGIL_EAGAIN)
      return 0;
  }
}

/* /connections says null for an RTT it has not measured (no pong yet), not
 * 0, and the figure once the peer has answered a ping. */
static int rtt_null_run(void) {
  static char buf[65536];
  const char *extra[] = {"--interval", "300ms", "--timeout", "5s", NULL};
  uint8_t out[64];
  vigil_hello h;
  vigil_os_socket raw = VIGIL_INVALID_SOCKET;
  served s;
  int n, ok = 0;
  SKIP_WITHOUT_ENDPOINT();
  ASSERT_EQ(serve_start(&s, extra), 0);
  memset(&h, 0, sizeof h);
  h.version = 1;
  h.interval_ms = 300;
  h.timeout_ms = 5000;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = "no-rtt-yet";
  h.id_len = 10;
  n = vigil_wire_encode_hello(out, sizeof out, &h);
  if (n <= 0 || util_raw_connect("127.0.0.1", s.port, &raw) != 0 ||
      util_raw_send(raw, out, (size_t)n) != 0 || !raw_await_frame(raw, VIGIL_FRAME_WELCOME, 5000)) {
    fprintf(stderr, "raw HELLO: no WELCOME\n");
    goto out;
  }
  /* The server's ping comes after its 300 ms interval; unanswered, there is
   * no RTT sample. */
  if (!raw_await_frame(raw, VIGIL_FRAME_PING, 5000) ||
      http_get(s.mport, "/connections?id=no-rtt-yet", buf, sizeof(buf)) != 200 ||
      strstr(buf, "\"srtt_ms\":null,\"rttvar_ms\":null,\"last_rtt_ms\":null") == NULL) {
    fprintf(stderr, "before the pong: %.600s\n", buf);
    goto out;
  }
  n = vigil_wire_encode_pong(out, sizeof out);
  if (n <= 0 || util_raw_send(raw, out, (size_t)n) != 0)
    goto out;
  /* The pong is measured: a number, for srtt and the last RTT alike. */
  for (int tries = 0; tries < 50; tries++) {
    usleep(20000);
    if (http_get(s.mport, "/connections?id=no-rtt-yet", buf, sizeof(buf)) == 200 &&
        strstr(buf, "\"srtt_ms\":null") == NULL && json_ll(buf, "srtt_ms") >= 0 &&
        strstr(buf, "\"last_rtt_ms\":null") == NULL) {
      ok = 1;
      break;
    }
  }
  if (!ok)
    fprintf(stderr, "after the pong: %.600s\n", buf);
out:
  if (raw != VIGIL_INVALID_SOCKET)
    util_raw_close(raw);
  serve_stop(&s);
  return ok ? 0 : 1;
}

/* 100 clients (10 processes of 10); the page shows 100 up. 10 die at once
 * (one process killed: cause closed, or reset for a client whose kernel
 * still held an unread frame when it died, so it answered with RST; under
 * load that happens); the endpoint reports them within 2 s, and the page,
 * which polls every 500 ms, shows 90 up and 10 closed or reset deaths in
 * its table and its recent deaths. A screenshot is saved as
 * $VIGIL_BINARY_DIR/status-page.png. */
static int page_run(void) {
  static char buf[65536];
  /* A 1 s heartbeat (3 s timeout): Chromium loads two cores hard, and the
   * clients must not convict a server whose loop it starves. */
  const char *extra[] = {"--interval", "1s", NULL};
  const char *bin_dir = getenv("VIGIL_BINARY_DIR");
  served s;
  long pids[PAGE_GROUPS];
  char profile[300], dom1[300], dom2[300], shot[1200], prefix[PAGE_GROUPS][8], what[1700];
  uint64_t t0, t1 = 0;
  int i, ok = 0;
  memset(pids, 0, sizeof(pids));
  SKIP_WITHOUT_ENDPOINT();
  if (util_sh("command -v chromium >/dev/null 2>&1") != 0) {
    if (on_ci())
      TEST_FAIL_AT("chromium missing under CI (scripts/install-deps.sh installs it)");
    RETURN_SKIP("chromium not installed");
  }
  ASSERT_EQ(serve_start(&s, extra), 0);
  snprintf(profile, sizeof(profile), "%s.chromium", s.out);
  snprintf(dom1, sizeof(dom1), "%s.dom1", s.out);
  snprintf(dom2, sizeof(dom2), "%s.dom2", s.out);
  snprintf(shot, sizeof(shot), "%s/status-page.png", bin_dir != NULL ? bin_dir : "/tmp");
  for (i = 0; i < PAGE_GROUPS; i++) {
    snprintf(prefix[i], sizeof(prefix[i]), "g%d", i);
    if (clients_spawn(s.port, PAGE_PER_GROUP, prefix[i], &pids[i]) != 0)
      goto out;
  }
  if (scrape_until(s.mport, "vigil_connections{state=\"open\"}", 100, buf, sizeof(buf), 20000) !=
      100) {
    fprintf(stderr, "the 100 clients did not open\n");
    goto out;
  }
  snprintf(what, sizeof(what), "--dump-dom > %s", dom1);
  if (chromium(s.mport, profile, what) != 0 || !file_has(dom1, "id=\"open\">100<") ||
      !file_has(dom1, "data-cause=\"closed\" data-count=\"0\"")) {
    fprintf(stderr, "first page load does not show 100 up (%s)\n", dom1);
    goto out;
  }
  /* Kill 10. */
  t0 = wall_ms();
  util_proc_kill(pids[3]);
  pids[3] = 0;
  while (wall_ms() - t0 < 5000) {
    if (http_get(s.mport, "/api/status", buf, sizeof(buf)) == 200 &&
        json_ll(body_of(buf), "closed") + json_ll(body_of(buf), "reset") == 10) {
      t1 = wall_ms();
      break;
    }
    usleep(20000);
  }
  if (t1 == 0) {
    fprintf(stderr,
            "no 10 closed or reset deaths in /api/status within 5 s of the kill; last body: "
            "%.400s\n",
            body_of(buf));
    goto out;
  }
  fprintf(stderr, "10 deaths in /api/status %llu ms after the kill; the page polls every 500 ms\n",
          (unsigned long long)(t1 - t0));
  if (t1 - t0 > PAGE_DEATHS_MS) {
    fprintf(stderr, "deaths reported after %llu ms, bound %d ms\n", (unsigned long long)(t1 - t0),
            PAGE_DEATHS_MS);
    goto out;
  }
  snprintf(what, sizeof(what), "--screenshot=%s --dump-dom > %s", shot, dom2);
  if (chromium(s.mport, profile, what) != 0 || !file_has(dom2, "id=\"open\">90<") ||
      dom_cause_count(dom2, "closed") + dom_cause_count(dom2, "reset") != 10 ||
      dom_count(dom2, "<tr data-cause=\"closed\"><td>") +
              dom_count(dom2, "<tr data-cause=\"reset\"><td>") !=
          10) {
    fprintf(stderr, "second page load does not show 90 up and 10 closed or reset (%s)\n", dom2);
    goto out;
  }
  if (dom_count(dom2, "<li data-t=") < 2) {
    fprintf(stderr, "the page did not poll more than once (%s)\n", dom2);
    goto out;
  }
  if (access(shot, R_OK) != 0) {
    fprintf(stderr, "no screenshot at %s\n", shot);
    goto out;
  }
  fprintf(stderr, "screenshot: %s\n", shot);
  ok = 1;
out:
  for (i = 0; i < PAGE_GROUPS; i++)
    if (pids[i] > 0)
      util_proc_kill(pids[i]);
  serve_stop(&s);
  if (ok) {
    unlink(dom1);
    unlink(dom2);
  }
  snprintf(what, sizeof(what), "rm -rf '%s'", profile);
  (void)util_sh(what);
  return ok ? 0 : 1;
}

/* ---- --workers 2: one scrape for the whole server ---- */

/* The pid of worker w's latest start (w -1: the whole server's endpoint
 * process), and *starts how many it had. */
static long worker_pid(const served *s, int w, int *starts) {
  char line[1024];
  long pid = -1;
  FILE *f = fopen(s->out, "r");
  *starts = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if ((w < 0 && strstr(line, "\"event\":\"metrics_start\"") != NULL) ||
        (w >= 0 && strstr(line, "\"event\":\"worker_start\"") != NULL &&
         json_num(line, "worker") == w)) {
      pid = json_num(line, "pid");
      ++*starts;
    }
  fclose(f);
  return pid;
}

/* The counters that must never go back in the whole server's scrape. */
static const char *const monotonic_names[] = {
    "vigil_accepted_total",
    "vigil_opens_total",
    "vigil_pings_sent_total",
    "vigil_pongs_received_total",
    "vigil_rtt_seconds_count",
    "vigil_verdict_lateness_seconds_count",
    "vigil_deaths_total{cause=\"closed\"}",
    "vigil_deaths_total{cause=\"reset\"}",
    "vigil_deaths_total{cause=\"heartbeat_timeout\"}",
    "vigil_refused_total{reason=\"handshake_timeout\"}",
};
#define NMONO (sizeof(monotonic_names) / sizeof(monotonic_names[0]))

/* Scrapes the whole server once; every counter at least what it was.
 * Returns 1 (and the scrape in buf) when it read and nothing went back,
 * 0 when the scrape failed, -1 when a counter decreased. */
static int scrape_monotonic(uint16_t port, long long *prev, char *buf, size_t cap) {
  size_t i;
  if (http_get(port, "/metrics", buf, cap) != 200)
    return 0;
  for (i = 0; i < NMONO; i++) {
    long long v = sample(body_of(buf), monotonic_names[i]);
    if (v < prev[i]) {
      fprintf(stderr, "%s went from %lld to %lld\n", monotonic_names[i], prev[i], v);
      return -1;
    }
    prev[i] = v;
  }
  return 1;
}

/* Open connections on worker w's own endpoint, or -1. */
static long long worker_open(const served *s, int w, char *buf, size_t cap) {
  if (http_get(s->wport[w], "/metrics", buf, cap) != 200)
    return -1;
  return sample(body_of(buf), "vigil_connections{state=\"open\"}");
}

#define WORKERS_GROUPS 4
#define WORKERS_PER_GROUP 5
#define WORKERS_CLIENTS (WORKERS_GROUPS * WORKERS_PER_GROUP)
#define WORKERS_LATE 6

/* serve --workers 2 --metrics: 20 clients land on both workers (each
 * worker's own endpoint shows some) and one scrape of the whole server's
 * endpoint counts all 20; worker 0 is killed with SIGKILL and restarted,
 * and no counter of the whole server's scrape ever goes back (scraped
 * every 20 ms from before the kill until the restarted worker listens);
 * its clients' connections are gone from the gauge, and 6 clients that
 * come after are counted on top. promtool accepts the scrapes. Last, the
 * endpoint's own process is killed with SIGKILL: restarted, it serves the
 * same counts on the same port. */
static int workers_run(void) {
  static char buf[65536], wbuf[65536];
  const char *extra[] = {"--interval", "100ms", "--timeout", "1s", NULL};
  served s;
  long pids[WORKERS_GROUPS + 1], pid0;
  long long prev[NMONO], w0 = -1, w1 = -1;
  char prefix[WORKERS_GROUPS][8];
  uint64_t end;
  int i, starts = 0, promtool, ok = 0, scrapes = 0, r;
  memset(pids, 0, sizeof(pids));
  memset(prev, 0, sizeof(prev));
  SKIP_WITHOUT_ENDPOINT();
  promtool = util_sh("command -v promtool >/dev/null") == 0;
  if (!promtool && on_ci())
    TEST_FAIL_AT("promtool missing under CI (scripts/install-deps.sh installs prometheus)");
  ASSERT_EQ(serve_start_n(&s, extra, 2), 0);
#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: %s\nlast scrape:\n%.3000s\n", __FILE__, __LINE__, #cond,             \
              body_of(buf));                                                                       \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  for (i = 0; i < WORKERS_GROUPS; i++) {
    snprintf(prefix[i], sizeof(prefix[i]), "w%d", i);
    EXPECT(clients_spawn(s.port, WORKERS_PER_GROUP, prefix[i], &pids[i]) == 0);
  }
  EXPECT(scrape_until(s.mport, "vigil_opens_total", WORKERS_CLIENTS, buf, sizeof(buf), 10000) ==
         WORKERS_CLIENTS);
  EXPECT(scrape_until(s.mport, "vigil_connections{state=\"open\"}", WORKERS_CLIENTS, buf,
                      sizeof(buf), 5000) == WORKERS_CLIENTS);
  EXPECT(sample(body_of(buf), "vigil_accepted_total") == WORKERS_CLIENTS);
  EXPECT(sample(body_of(buf), "vigil_peers") == WORKERS_CLIENTS);
  EXPECT(promtool_check(promtool, s.out, body_of(buf)) == 0);
  EXPECT(scrape_monotonic(s.mport, prev, buf, sizeof(buf)) == 1);
  /* Both workers have clients, and their own endpoints add up to the sum. */
  end = util_now_ns() + 5000000000ull;
  do {
    w0 = worker_open(&s, 0, wbuf, sizeof(wbuf));
    w1 = worker_open(&s, 1, wbuf, sizeof(wbuf));
  } while (w0 + w1 != WORKERS_CLIENTS && util_now_ns() < end && usleep(20000) == 0);
  fprintf(stderr, "worker 0 holds %lld clients, worker 1 %lld\n", w0, w1);
  EXPECT(w0 > 0 && w1 > 0 && w0 + w1 == WORKERS_CLIENTS);
  /* kill -9 worker 0; scrape until it is back, nothing may go back. */
  pid0 = worker_pid(&s, 0, &starts);
  EXPECT(pid0 > 0 && starts == 1);
  EXPECT(kill((pid_t)pid0, SIGKILL) == 0);
  end = util_now_ns() + 10000000000ull;
  while (util_now_ns() < end) {
    EXPECT((r = scrape_monotonic(s.mport, prev, buf, sizeof(buf))) >= 0);
    scrapes += r;
    (void)worker_pid(&s, 0, &starts);
    if (starts == 2 && serve_ready(&s, 3))
      break;
    usleep(20000);
  }
  EXPECT(starts == 2);
  fprintf(stderr, "%d scrapes from the kill to the restart, no counter went back\n", scrapes);
  /* The killed worker's clients are gone from the gauge, not the counts. */
  end = util_now_ns() + 5000000000ull;
  do {
    EXPECT(scrape_monotonic(s.mport, prev, buf, sizeof(buf)) >= 0);
  } while (sample(body_of(buf), "vigil_connections{state=\"open\"}") != WORKERS_CLIENTS - w0 &&
           util_now_ns() < end && usleep(20000) == 0);
  EXPECT(sample(body_of(buf), "vigil_connections{state=\"open\"}") == WORKERS_CLIENTS - w0);
  EXPECT(sample(body_of(buf), "vigil_opens_total") == WORKERS_CLIENTS);
  /* Clients that come after are counted on top of the retired worker's. */
  EXPECT(clients_spawn(s.port, WORKERS_LATE, "late", &pids[WORKERS_GROUPS]) == 0);
  end = util_now_ns() + 10000000000ull;
  do {
    EXPECT(scrape_monotonic(s.mport, prev, buf, sizeof(buf)) >= 0);
  } while (sample(body_of(buf), "vigil_opens_total") != WORKERS_CLIENTS + WORKERS_LATE &&
           util_now_ns() < end && usleep(20000) == 0);
  EXPECT(sample(body_of(buf), "vigil_opens_total") == WORKERS_CLIENTS + WORKERS_LATE);
  EXPECT(sample(body_of(buf), "vigil_accepted_total") == WORKERS_CLIENTS + WORKERS_LATE);
  EXPECT(scrape_until(s.mport, "vigil_connections{state=\"open\"}",
                      WORKERS_CLIENTS - w0 + WORKERS_LATE, buf, sizeof(buf),
                      5000) == WORKERS_CLIENTS - w0 + WORKERS_LATE);
  EXPECT(promtool_check(promtool, s.out, body_of(buf)) == 0);
  /* /connections is each worker's; the whole server's endpoint says so. */
  EXPECT(http_get(s.mport, "/connections", buf, sizeof(buf)) == 404 &&
         strstr(buf, "per worker") != NULL);
  EXPECT(http_get(s.wport[1], "/connections", buf, sizeof(buf)) == 200);
  EXPECT(http_get(s.mport, "/api/status", buf, sizeof(buf)) == 200 &&
         strstr(buf, "\"opens\":26,") != NULL);
  EXPECT(http_get(s.mport, "/", buf, sizeof(buf)) == 200 && strstr(buf, "<html") != NULL);
  /* kill -9 the endpoint's own process: it is restarted on the same port
   * (the supervisor holds the socket) and reads the same figures. */
  pid0 = worker_pid(&s, -1, &starts);
  EXPECT(pid0 > 0 && starts == 1);
  EXPECT(kill((pid_t)pid0, SIGKILL) == 0);
  end = util_now_ns() + 10000000000ull;
  while (util_now_ns() < end && (worker_pid(&s, -1, &starts), starts) < 2)
    usleep(20000);
  EXPECT(starts == 2);
  EXPECT(scrape_until(s.mport, "vigil_opens_total", WORKERS_CLIENTS + WORKERS_LATE, buf,
                      sizeof(buf), 5000) == WORKERS_CLIENTS + WORKERS_LATE);
  EXPECT(scrape_monotonic(s.mport, prev, buf, sizeof(buf)) == 1);
#undef EXPECT
  ok = 1;
out:
  for (i = 0; i <= WORKERS_GROUPS; i++)
    if (pids[i] > 0)
      util_proc_kill(pids[i]);
  serve_stop(&s);
  return ok ? 0 : 1;
}

/* ---- the presence store's health ---- */

#if defined(VIGIL_HAVE_HIREDIS)
/* Scrapes until sample `name` equals want (bounded); its value. */
static long long scrape_until_eq(uint16_t port, const char *name, long long want, char *buf,
                                 size_t cap, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * 1000000u;
  long long v = -1;
  do {
    if (http_get(port, "/metrics", buf, cap) == 200 && (v = sample(body_of(buf), name)) == want)
      return v;
    usleep(20000);
  } while (util_now_ns() < end);
  return v;
}

/* serve --presence --metrics: the scrape shows the Redis store connected
 * and updates acknowledged (3 opens at least); Redis killed, the store
 * shows down within 5 s while the 3 heartbeats go on; promtool accepts
 * both scrapes. */
/* `vigil status` against s's endpoint (with `flags`) printed `needle`. */
static int status_says(const served *s, const char *flags, const char *needle) {
  char cmd[1500], path[300];
  int rc;
  snprintf(path, sizeof(path), "%s.status", s->out);
  snprintf(cmd, sizeof(cmd), "'%s' status 127.0.0.1:%u %s > %s", vigil_bin(), (unsigned)s->mport,
           flags, path);
  rc = util_sh(cmd) == 0 && file_has(path, needle);
  if (!rc)
    fprintf(stderr, "vigil status %s: no \"%s\" in:\n%s\n", flags, needle, file_text(path));
  unlink(path);
  return rc;
}

static int presence_run(void) {
  static char buf[65536];
  static util_redis rd;
  char url[160];
  const char *extra[] = {"--interval", "100ms", "--timeout", "1s", "--presence", url, NULL};
  served s;
  long pids = 0;
  int promtool, ok = 0;
  SKIP_WITHOUT_ENDPOINT();
  promtool = util_sh("command -v promtool >/dev/null") == 0;
  if (!promtool && on_ci())
    TEST_FAIL_AT("promtool missing under CI (scripts/install-deps.sh installs prometheus)");
  memset(&rd, 0, sizeof(rd));
  if (util_redis_start(&rd) != 0)
    RETURN_SKIP("redis-server not installed or did not start");
  snprintf(url, sizeof(url), "unix://%s", rd.sock);
  memset(&s, 0, sizeof(s));
#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: %s\nlast scrape:\n%.3000s\n", __FILE__, __LINE__, #cond,             \
              body_of(buf));                                                                       \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  EXPECT(serve_start(&s, extra) == 0);
  EXPECT(clients_spawn(s.port, 3, "pres", &pids) == 0);
  EXPECT(scrape_until(s.mport, "vigil_opens_total", 3, buf, sizeof(buf), 10000) == 3);
  EXPECT(scrape_until(s.mport, "vigil_presence_sent_total", 3, buf, sizeof(buf), 5000) >= 3);
  EXPECT(sample(body_of(buf), "vigil_presence_store_up") == 1);
  EXPECT(sample(body_of(buf), "vigil_presence_store_processes") == 1);
  EXPECT(sample(body_of(buf), "vigil_presence_dropped_total") == 0);
  EXPECT(http_get(s.mport, "/api/status", buf, sizeof(buf)) == 200 &&
         strstr(body_of(buf), "\"presence\":{\"processes\":1,\"up\":1,") != NULL);
  EXPECT(scrape_until(s.mport, "vigil_presence_sent_total", 3, buf, sizeof(buf), 5000) >= 3);
  EXPECT(sample(body_of(buf), "vigil_presence_errors_total") == 0);
  EXPECT(promtool_check(promtool, s.out, body_of(buf)) == 0);
  EXPECT(status_says(&s, "", "presence     ok: 1 of 1 connected  queued "));
  EXPECT(status_says(&s, "--json", "\"presence\":{\"health\":\"ok\",\"processes\":1,\"up\":1,"));
  util_redis_stop(&rd);
  EXPECT(scrape_until_eq(s.mport, "vigil_presence_store_up", 0, buf, sizeof(buf), 5000) == 0);
  EXPECT(status_says(&s, "", "presence     DEGRADED: 0 of 1 connected  queued "));
  EXPECT(sample(body_of(buf), "vigil_connections{state=\"open\"}") == 3);
  EXPECT(sample(body_of(buf), "vigil_deaths_total{cause=\"heartbeat_timeout\"}") == 0);
  EXPECT(promtool_check(promtool, s.out, body_of(buf)) == 0);
#undef EXPECT
  ok = 1;
out:
  if (pids > 0)
    util_proc_kill(pids);
  serve_stop(&s);
  util_redis_cleanup(&rd);
  return ok ? 0 : 1;
}
#endif

#endif

TEST_IMPL(presence_store_health) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#elif !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  return presence_run();
#endif
}

TEST_IMPL(workers_one_scrape) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#else
  return workers_run();
#endif
}

TEST_IMPL(scrape_counts_exactly) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#else
  return scrape_run();
#endif
}

TEST_IMPL(bad_requests_answered) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#else
  return bad_run();
#endif
}

TEST_IMPL(connections_rtt_null_until_measured) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#else
  return rtt_null_run();
#endif
}

TEST_IMPL(status_page_in_chromium) {
#if defined(_WIN32)
  RETURN_SKIP("needs POSIX (fork, posix_spawn)");
#else
  return page_run();
#endif
}

/* docs/prometheus/vigil-alerts.yml, the rules docs/OPERATIONS.md explains,
 * is valid for Prometheus. */
TEST_IMPL(alert_rules_check) {
  const char *src = getenv("VIGIL_SOURCE_DIR");
  char cmd[1024];
#if defined(_WIN32)
  /* The rules file is the same on every platform; promtool is a Linux
   * binary the Linux run uses. */
  (void)src;
  (void)cmd;
  RETURN_SKIP("promtool checks the rules on the Linux run");
#endif
  if (src == NULL)
    src = VIGIL_SOURCE_DIR;
  if (util_sh("command -v promtool >/dev/null 2>&1") != 0) {
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0)
      TEST_FAIL_AT("promtool missing under CI (scripts/install-deps.sh installs prometheus)");
    RETURN_SKIP("promtool not installed (Debian: prometheus)");
  }
  snprintf(cmd, sizeof(cmd), "promtool check rules '%s/docs/prometheus/vigil-alerts.yml' >&2", src);
  ASSERT_EQ(util_sh(cmd), 0);
  return 0;
}
