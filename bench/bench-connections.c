/* bench-connections: what does it cost a server to watch N idle clients?
 *
 * One process (this one) opens N TCP connections to a server running in
 * ANOTHER process and sends each a PING every second (the clients drive the
 * heartbeat, so every server sees exactly the same load), answering any
 * PING the server sends with a PONG. Over a measured window it reads the
 * server's CPU time from /proc/PID/stat (utime + stime) and divides it by
 * the heartbeats handled in the window; memory per connection is the
 * server's VmRSS after connecting minus before, divided by N.
 *
 * The same run measures three servers one after the other, under the same
 * load, on the same (shared, noisy) machine, and prints the ratios:
 *   vigil     `vigil serve` (the CLI on libvigil's server); --vigil
 *             LABEL=PATH, repeated, measures several builds side by side
 *   baseline  bench/baseline-uv-heartbeat.c: the same protocol answered the
 *             way people write it on libuv (uv_tcp_t + a uv_timer_t read
 *             timeout restarted on every read)
 *   floor     bench/baseline-floor.c: bare epoll, no timers, no
 *             per-connection object: what any server pays. Each server's
 *             user-space CPU per heartbeat and RSS per connection are
 *             printed against it (issue 11's targets are ratios to it).
 *
 * The load generator speaks protocol v1 with libvigil's wire codec over its
 * own epoll. The proposed heartbeat interval is 1.5 x the ping period, so a
 * server whose own idle timer fires before hearing from a client (vigil's
 * fires after 75-100% of the interval) is not provoked into pinging; the
 * ping period is above the agreed minimum spacing (interval / 2), and a
 * client whose turn comes too soon after its last ping (the loop fell
 * behind) skips that turn rather than earn a strike.
 *
 * Connections are spread over source addresses 127.0.0.2..127.0.0.9 with
 * IP_BIND_ADDRESS_NO_PORT, so back-to-back runs never run out of ephemeral
 * ports. RLIMIT_NOFILE is raised to its hard limit (20,000 here: -n 19000
 * works).
 *
 * To keep other tenants of a shared machine out of the ratio, the servers
 * are measured alternately for several rounds and the least disturbed
 * round of each (least CPU per heartbeat) is compared.
 *
 * With --vs-metrics the baseline and the floor make way for `vigil serve
 * --metrics` (the HTTP endpoint of docs/OPERATIONS.md), scraped on /metrics
 * once a second by a thread of this process during the window (a busy
 * Prometheus; 15 s is usual), so the ratio is the endpoint's cost per
 * heartbeat; after each window it times /metrics and a 1000-connection
 * page of /connections (5 each, the median).
 *
 * With --workers N every `vigil serve` runs as N worker processes under
 * its supervisor (SO_REUSEPORT spreads the clients); CPU and memory are
 * then the supervisor's and its children's, and with --vs-metrics the
 * scrapes go to the whole server's endpoint (the workers' figures summed
 * in shared memory, docs/OPERATIONS.md), /connections to worker 0's own.
 *
 * With --vs-tls the second server is `vigil serve --tls-cert/--tls-key`
 * (docs/TLS.md) with a certificate this run makes with the openssl
 * command, and its clients speak TLS through libvigil's sans-I/O layer
 * (vigil/tls.h, verifying the certificate and its name): the ratio is what
 * TLS costs the server per heartbeat (each PING and PONG one record each
 * way); memory per connection includes the server's OpenSSL state.
 *
 * With --callgrind every server runs under valgrind's callgrind, which
 * counts the instructions the server executes in user space exactly,
 * whatever else the machine is doing: /proc counts CPU in 10 ms ticks and
 * the shared machine adds its own noise (rounds of one binary spread from
 * 2.8 to 5.0 us of user time per heartbeat, docs/SCALE.md), where an
 * instruction count moves only with what the server did. The
 * counters are zeroed after the warm-up and dumped after the window (vgdb
 * monitor commands, sent while the load keeps running); the heartbeats
 * are those answered in between, half of those answered while each
 * command was on its way counted in. It prints user-space instructions
 * per heartbeat against the floor's, the server's system calls and clock
 * reads per heartbeat, and its loop wake-ups (epoll_wait calls) per
 * heartbeat. Instructions are a proxy for user CPU, not a measure of it:
 * they leave out cache misses and stalls, the user-side cost of each
 * system call, and clock_gettime's vDSO (under valgrind a clock read is a
 * system call; natively each is ~70 ns of user time on this VM's
 * kvm-clock), hence the separate columns. The count per heartbeat depends
 * on how many heartbeats share a wake-up, which depends on timing; at the
 * default load (-n 200: one heartbeat every 5 ms, the server under
 * valgrind keeps up) nearly every heartbeat has a wake-up of its own
 * (waits/hb 0.97-1.00) for every server, and two rounds' counts agreed to
 * within 0.3% (vigil, libuv) and 1.5% (the floor's 134-136). That is
 * the costliest case per heartbeat (an idle server's, bench-scale's); the
 * time columns without --callgrind are at 10,000 heartbeats a second,
 * where several share a wake-up.
 *
 * usage: bench-connections [-n N] [-w SECONDS] [-r ROUNDS] [-i PING_MS]
 *                          [--only vigil|baseline|floor] [--vigil [LABEL=]PATH]...
 *                          [--baseline PATH] [--floor PATH] [--vs-metrics | --vs-tls]
 *                          [--workers N] [--callgrind | --callgrind-keep]
 * defaults: -n 10000 -w 10 -r 3 -i 1000 (about 100 s at 10,000);
 *           with --callgrind -n 200 -w 10 -r 1 (--callgrind-keep leaves the dumps
 *           for callgrind_annotate and says where)
 * Linux only (epoll, /proc). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "util-bench.h"
#include "vigil.h"

#define RX_CAP 256
#define MAX_INFLIGHT 256
#define HIST_US 100000 /* RTT histogram: 1 us buckets up to 100 ms */
#define MAX_ROUNDS 10

enum { C_IDLE, C_CONNECTING, C_TLS, C_HELLO, C_OPEN, C_DEAD };

typedef struct conn {
  int fd;
  vigil_tls_conn *tls; /* --vs-tls, the TLS server's rounds: the client's TLS layer */
  uint8_t state;
  uint8_t ping_out;
  uint16_t rx_len;
  uint64_t last_ping_ns;
  uint8_t rx[RX_CAP];
} conn;

typedef struct run_result {
  const char *name;
  double seconds;
  uint64_t pongs, server_pings, skipped, lost;
  double cpu_s, user_s;
  long rss_before_kb, rss_after_kb;
  uint64_t rtt_p50_us, rtt_p99_us;
  unsigned conns;
  int ok;
  uint16_t mport;                   /* --vs-metrics: the endpoint, 0 if none */
  unsigned scrapes;                 /* during the window */
  double scrape_max_ms;             /* the slowest of them */
  double metrics_ms, conns_page_ms; /* after the window, medians of 5 */
  size_t metrics_bytes, page_bytes;
  double cg_hb;                      /* --callgrind: heartbeats in the counted window */
  uint64_t cg_ir, cg_sys, cg_clocks; /* instructions, system calls, clock_gettime calls */
  uint64_t cg_waits;                 /* epoll_wait calls: loop wake-ups */
} run_result;

static unsigned n_conns = 10000;
static unsigned window_s = 10;
static unsigned ping_ms = 1000;
static unsigned workers = 1; /* --workers: vigil serve as N processes */
static conn *conns;
static int epfd = -1;
static uint32_t *hist;
static int measuring;
static uint64_t n_pongs, n_server_pings, n_skipped, n_lost, n_open;
static unsigned n_inflight;       /* connecting or waiting for WELCOME */
static vigil_tls *tls_ctx;        /* set while the TLS server is measured */
static vigil_tls *tls_client_ctx; /* --vs-tls: trusts the run's certificate */
#define TLS_NAME "bench.test"

/* ---- the metrics endpoint (--vs-metrics) ---- */

/* GET path from 127.0.0.1:port; the milliseconds it took, -1 on failure;
 * *bytes gets the reply's size. */
static double http_get_ms(uint16_t port, const char *path, size_t *bytes) {
  static char buf[1 << 22];
  struct sockaddr_in a;
  char req[256];
  uint64_t t0 = bench_now_ns();
  size_t len = 0;
  ssize_t n;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
    close(fd);
    return -1;
  }
  while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0)
    len += (size_t)n;
  close(fd);
  *bytes = len;
  return len > 12 && strncmp(buf + 9, "200", 3) == 0 ? (double)(bench_now_ns() - t0) / 1e6 : -1;
}

static double median5(uint16_t port, const char *path, size_t *bytes) {
  double v[5], t;
  for (int k = 0; k < 5; k++)
    v[k] = http_get_ms(port, path, bytes);
  for (int i = 1; i < 5; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[2];
}

typedef struct scraper {
  pthread_t th;
  uint16_t port;
  volatile int stop;
  unsigned n, failed;
  double max_ms;
} scraper;

static void *scrape_loop(void *arg) {
  scraper *sc = arg;
  size_t bytes;
  while (!sc->stop) {
    double ms = http_get_ms(sc->port, "/metrics", &bytes);
    if (ms < 0) {
      sc->failed++;
    } else {
      sc->n++;
      if (ms > sc->max_ms)
        sc->max_ms = ms;
    }
    for (int k = 0; k < 20 && !sc->stop; k++)
      bench_sleep_ms(50);
  }
  return NULL;
}

/* ---- the load ---- */

static void conn_dead(conn *c) {
  if (c->state == C_DEAD)
    return;
  if (c->state == C_OPEN)
    n_open--;
  else if (c->state == C_CONNECTING || c->state == C_HELLO)
    n_inflight--;
  if (measuring)
    n_lost++;
  c->state = C_DEAD;
  if (c->fd >= 0) {
    struct linger lg = {1, 0}; /* RST: no TIME_WAIT left behind */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  vigil_tls_conn_free(c->tls);
  c->tls = NULL;
}

static int send_raw(conn *c, const uint8_t *b, size_t n) {
  ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
  if (w != (ssize_t)n) {
    conn_dead(c);
    return -1;
  }
  return 0;
}

/* Writes the ciphertext the TLS layer holds (a few hundred bytes at most
 * here: the socket buffer always takes it). */
static int flush_tls(conn *c) {
  uint8_t buf[16384];
  while (c->tls != NULL && vigil_tls_conn_pending(c->tls) > 0) {
    size_t n = vigil_tls_conn_take(c->tls, buf, sizeof(buf));
    if (send_raw(c, buf, n) != 0)
      return -1;
  }
  return 0;
}

static int send_all(conn *c, const uint8_t *b, size_t n) {
  if (c->tls == NULL)
    return send_raw(c, b, n);
  if (vigil_tls_conn_write(c->tls, b, n) != 0) {
    conn_dead(c);
    return -1;
  }
  return flush_tls(c);
}

static int start_connect(conn *c, unsigned i, uint16_t port) {
  struct epoll_event ev;

  c->fd = bench_loopback_connect(i, port);
  if (c->fd < 0)
    return c->fd;
  ev.events = EPOLLOUT;
  ev.data.u32 = i;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
    return -errno;
  c->state = C_CONNECTING;
  n_inflight++;
  return 0;
}

static void send_hello(conn *c, unsigned i) {
  uint8_t out[VIGIL_WIRE_MAX_CONTROL_FRAME];
  char id[16];
  vigil_hello h;
  struct epoll_event ev;
  int n;

  snprintf(id, sizeof(id), "b%u", i);
  memset(&h, 0, sizeof(h));
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = ping_ms * 3 / 2;
  h.timeout_ms = 3 * h.interval_ms;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(out, sizeof(out), &h);
  ev.events = EPOLLIN;
  ev.data.u32 = i;
  if (n <= 0 || epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
    conn_dead(c);
    return;
  }
  if (send_all(c, out, (size_t)n) == 0)
    c->state = C_HELLO;
}

/* The ClientHello; the HELLO follows once the handshake is done
 * (on_readable). */
static void start_tls(conn *c, unsigned i) {
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u32 = i;
  if (vigil_tls_conn_new(&c->tls, tls_ctx, TLS_NAME) != 0 ||
      epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0 ||
      vigil_tls_conn_read(c->tls, c->rx, RX_CAP) < 0) {
    conn_dead(c);
    return;
  }
  if (flush_tls(c) == 0)
    c->state = C_TLS;
}

static void on_frame(conn *c, const vigil_frame *f) {
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};

  switch (f->type) {
  case VIGIL_FRAME_WELCOME:
    if (c->state == C_HELLO) {
      c->state = C_OPEN;
      n_open++;
      n_inflight--;
    }
    break;
  case VIGIL_FRAME_PONG:
    if (c->ping_out) {
      uint64_t us = (bench_now_ns() - c->last_ping_ns) / 1000;
      c->ping_out = 0;
      if (measuring) {
        n_pongs++;
        hist[us < HIST_US ? us : HIST_US - 1]++;
      }
    }
    break;
  case VIGIL_FRAME_PING:
    if (measuring)
      n_server_pings++;
    send_all(c, pong, sizeof(pong));
    break;
  case VIGIL_FRAME_CLOSE:
    conn_dead(c);
    break;
  default:
    break;
  }
}

/* Plaintext from the TLS layer into c->rx, feeding it what the socket has;
 * sends the HELLO once the handshake is done. Returns as rx_more. */
static long rx_more_tls(conn *c, unsigned i) {
  uint8_t cipher[16384];
  for (;;) {
    long n = vigil_tls_conn_read(c->tls, c->rx + c->rx_len, RX_CAP - c->rx_len);
    ssize_t r;
    if (n < 0 || flush_tls(c) != 0)
      break;
    if (c->state == C_TLS && vigil_tls_conn_ready(c->tls)) {
      send_hello(c, i);
      if (c->state == C_DEAD)
        return -1;
    }
    if (n > 0)
      return n;
    r = recv(c->fd, cipher, sizeof(cipher), 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return 0;
    if (r <= 0 || vigil_tls_conn_feed(c->tls, cipher, (size_t)r) != 0)
      break;
  }
  conn_dead(c);
  return -1;
}

/* Plaintext into c->rx: from the socket, or through the TLS layer. Returns
 * the bytes added, 0 when nothing more is there now, -1 when c died. */
static long rx_more(conn *c, unsigned i) {
  ssize_t r;
  if (c->tls != NULL)
    return rx_more_tls(c, i);
  r = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, 0);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return 0;
    conn_dead(c);
    return -1;
  }
  return r;
}

static void on_readable(conn *c, unsigned i) {
  for (;;) {
    long r = rx_more(c, i);
    size_t off = 0;
    if (r <= 0)
      return;
    c->rx_len = (uint16_t)(c->rx_len + r);
    while (off < c->rx_len && c->state != C_DEAD) {
      vigil_frame f;
      int n = vigil_wire_decode(c->rx + off, c->rx_len - off, VIGIL_WIRE_MAX_CHUNK, &f);
      if (n == VIGIL_ENEEDMORE)
        break;
      if (n < 0) {
        conn_dead(c);
        return;
      }
      on_frame(c, &f);
      off += (size_t)n;
    }
    if (c->state == C_DEAD)
      return;
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len = (uint16_t)(c->rx_len - off);
    if (c->rx_len == RX_CAP) { /* a DATA frame we do not want: give up on it */
      conn_dead(c);
      return;
    }
  }
}

static void on_event(const struct epoll_event *ev) {
  conn *c = &conns[ev->data.u32];

  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (ev->events & (EPOLLERR | EPOLLHUP)))
      conn_dead(c);
    else if (tls_ctx != NULL)
      start_tls(c, ev->data.u32);
    else
      send_hello(c, ev->data.u32);
    return;
  }
  if (c->state != C_DEAD)
    on_readable(c, ev->data.u32);
}

static void poll_once(int timeout_ms) {
  struct epoll_event evs[512];
  int n = epoll_wait(epfd, evs, 512, timeout_ms);

  for (int k = 0; k < n; k++)
    on_event(&evs[k]);
}

/* Sends the pings due by `now`: connection k's turn comes at
 * start + (round * N + k) * period / N, so N pings are spread evenly over
 * each period. */
static uint64_t ping_cursor;

static void send_due_pings(uint64_t start, uint64_t now) {
  static const uint8_t ping[2] = {VIGIL_FRAME_PING, 0};
  uint64_t period = (uint64_t)ping_ms * 1000000u;
  uint64_t due = (now - start) / period * n_conns + (now - start) % period * n_conns / period;

  while (ping_cursor < due) {
    conn *c = &conns[ping_cursor++ % n_conns];
    if (c->state != C_OPEN)
      continue;
    if (c->ping_out || now - c->last_ping_ns < period * 9 / 10) {
      if (measuring)
        n_skipped++;
      continue;
    }
    c->last_ping_ns = now;
    c->ping_out = 1;
    send_all(c, ping, sizeof(ping));
  }
}

static int connect_all(uint16_t port) {
  unsigned started = 0;
  uint64_t give_up = bench_now_ns() + 60ull * 1000000000u;

  while (n_open < n_conns && bench_now_ns() < give_up) {
    while (started < n_conns && n_inflight < MAX_INFLIGHT) {
      int rc = start_connect(&conns[started], started, port);
      if (rc != 0) {
        fprintf(stderr, "bench-connections: connection %u: %s\n", started, strerror(-rc));
        return -1;
      }
      started++;
    }
    poll_once(10);
    if (started == n_conns && n_inflight == 0 && n_open < n_conns)
      break;
  }
  return n_open == n_conns ? 0 : -1;
}

static void close_all(void) {
  measuring = 0;
  for (unsigned k = 0; k < n_conns; k++)
    conn_dead(&conns[k]);
}

static void run_for(uint64_t start, uint64_t until) {
  uint64_t t;

  while ((t = bench_now_ns()) < until) {
    send_due_pings(start, t);
    poll_once(1);
  }
}

/* ---- --callgrind: instructions instead of /proc ticks ---- */

static int cg_mode, cg_keep;
static char cg_valgrind[PATH_MAX], cg_vgdb[PATH_MAX], cg_dir[64] = "";

static uint64_t hb_count(void) {
  return n_pongs + n_server_pings;
}

/* The first `name` on $PATH that can be run, into out; 0 or -1. */
static int find_in_path(const char *name, char *out, size_t cap) {
  const char *p = getenv("PATH");
  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, ':');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    snprintf(out, cap, "%.*s/%s", (int)len, p, name);
    if (len > 0 && access(out, X_OK) == 0)
      return 0;
    p = end != NULL ? end + 1 : NULL;
  }
  return -1;
}

/* Sends callgrind monitor command `cmd` to the server through vgdb and
 * keeps the load running until vgdb returns (it takes ~0.3 s); *during
 * gets the heartbeats answered meanwhile. 0, or -1 if vgdb failed. */
static int vgdb_command(pid_t server, const char *cmd, uint64_t start, uint64_t *during) {
  char pid_s[32];
  uint64_t h0 = hb_count(), give_up = bench_now_ns() + 30000000000ull;
  pid_t p;
  int st = -1;

  snprintf(pid_s, sizeof(pid_s), "--pid=%d", (int)server);
  p = fork();
  if (p == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(cg_vgdb, cg_vgdb, pid_s, cmd, (char *)NULL);
    _exit(127);
  }
  if (p < 0)
    return -1;
  while (waitpid(p, &st, WNOHANG) != p) {
    if (bench_now_ns() > give_up) {
      kill(p, SIGKILL);
      waitpid(p, &st, 0);
      return -1;
    }
    send_due_pings(start, bench_now_ns());
    poll_once(1);
  }
  *during = hb_count() - h0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* What a callgrind function name (after "fn=(id) " or "cfn=(id) ") is:
 * CG_CLOCK (clock_gettime), CG_WAIT (epoll_wait) or 0; names[id] remembers
 * it for the compressed references that follow. */
enum { CG_CLOCK = 1, CG_WAIT = 2 };

static int cg_kind(const char *name) {
  return strstr(name, "clock_gettime") != NULL ? CG_CLOCK
         : strstr(name, "epoll_wait") != NULL && strstr(name, "vigil") == NULL &&
                 strstr(name, "_ready") == NULL
             ? CG_WAIT
             : 0;
}

static int cg_name_kind(char *rest, unsigned char **names, size_t *nnames) {
  unsigned long id;
  char *end;
  if (rest[0] != '(')
    return cg_kind(rest);
  id = strtoul(rest + 1, &end, 10);
  if (id >= *nnames) {
    size_t want = id * 2 + 64;
    unsigned char *n = realloc(*names, want);
    if (n == NULL)
      return 0;
    memset(n + *nnames, 0, want - *nnames);
    *names = n;
    *nnames = want;
  }
  if (*end == ')' && end[1] == ' ')
    (*names)[id] = (unsigned char)cg_kind(end + 2);
  return (*names)[id];
}

/* Reads a callgrind dump: its totals of Ir and sysCount, and the calls to
 * clock_gettime and epoll_wait from outside them. 0, or -1 if unreadable. */
static int cg_read(const char *path, run_result *r) {
  char line[8192];
  unsigned char *names = NULL;
  size_t nnames = 0;
  int col_ir = -1, col_sys = -1, fn_kind = 0, cfn_kind = 0, got = 0;
  FILE *f = fopen(path, "r");

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "events:", 7) == 0) {
      char *tok = strtok(line + 7, " ");
      for (int i = 0; tok != NULL; i++, tok = strtok(NULL, " ")) {
        if (strcmp(tok, "Ir") == 0)
          col_ir = i;
        else if (strcmp(tok, "sysCount") == 0)
          col_sys = i;
      }
    } else if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0) {
      char *p = strchr(line, ':') + 1;
      for (int i = 0; *p != '\0'; i++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p)
          break;
        if (i == col_ir)
          r->cg_ir = v;
        else if (i == col_sys)
          r->cg_sys = v;
        p = end;
      }
      got = 1;
    } else if (strncmp(line, "fn=", 3) == 0) {
      fn_kind = cg_name_kind(line + 3, &names, &nnames);
    } else if (strncmp(line, "cfn=", 4) == 0) {
      cfn_kind = cg_name_kind(line + 4, &names, &nnames);
    } else if (strncmp(line, "calls=", 6) == 0 && cfn_kind != 0 && cfn_kind != fn_kind) {
      *(cfn_kind == CG_CLOCK ? &r->cg_clocks : &r->cg_waits) += strtoull(line + 6, NULL, 10);
    }
  }
  fclose(f);
  free(names);
  return got && col_ir >= 0 ? 0 : -1;
}

/* The measured window under callgrind: counters zeroed, the window run,
 * counters dumped to cg_dir/cg.PID.1 and read. 0 or -1. */
static int cg_window(pid_t pid, uint64_t start, run_result *r) {
  uint64_t during_zero, during_dump, h1, h2;
  char path[PATH_MAX];

  if (vgdb_command(pid, "zero", start, &during_zero) != 0)
    return -1;
  h1 = hb_count();
  run_for(start, bench_now_ns() + (uint64_t)window_s * 1000000000u);
  h2 = hb_count();
  if (vgdb_command(pid, "dump", start, &during_dump) != 0)
    return -1;
  r->cg_hb = (double)(h2 - h1) + (double)(during_zero + during_dump) / 2.0;
  snprintf(path, sizeof(path), "%s/cg.%d.1", cg_dir, (int)pid);
  return cg_read(path, r);
}

static void cg_cleanup(void) {
  DIR *d;
  struct dirent *e;
  char path[PATH_MAX];
  if (cg_dir[0] == '\0')
    return;
  if (cg_keep) {
    printf("\ncallgrind's dumps are kept in %s (cg.PID.1: the window; callgrind_annotate)\n",
           cg_dir);
    return;
  }
  if ((d = opendir(cg_dir)) == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof(path), "%s/%s", cg_dir, e->d_name);
      unlink(path);
    }
  closedir(d);
  rmdir(cg_dir);
}

static uint64_t percentile(uint64_t total, double p) {
  uint64_t want = (uint64_t)((double)total * p), seen = 0;
  for (unsigned us = 0; us < HIST_US; us++) {
    seen += hist[us];
    if (seen > want)
      return us;
  }
  return HIST_US;
}

static int measure(const char *name, char *const argv[], uint16_t port, run_result *r) {
  pid_t pid;
  uint64_t start, t0;
  double cpu0, cpu1, user0 = 0, user1 = 0;

  {
    uint16_t mport = r->mport;
    memset(r, 0, sizeof(*r));
    r->mport = mport;
  }
  r->name = name;
  memset(conns, 0, sizeof(*conns) * n_conns);
  for (unsigned k = 0; k < n_conns; k++)
    conns[k].fd = -1;
  memset(hist, 0, sizeof(*hist) * HIST_US);
  n_pongs = n_server_pings = n_skipped = n_lost = n_open = 0;
  n_inflight = 0;
  ping_cursor = 0;
  pid = bench_spawn(argv, NULL);
  if (pid < 0 || bench_wait_listening(pid, port) != 0) {
    fprintf(stderr, "bench-connections: %s did not start listening on port %u\n", name, port);
    if (pid > 0)
      bench_stop(pid);
    return -1;
  }
  bench_sleep_ms(300);
  r->rss_before_kb = bench_tree_rss_kb(pid);
  if (connect_all(port) != 0) {
    fprintf(stderr, "bench-connections: %s: only %llu of %u connections opened\n", name,
            (unsigned long long)n_open, n_conns);
    close_all();
    bench_stop(pid);
    return -1;
  }
  r->conns = (unsigned)n_open;
  start = bench_now_ns();
  run_for(start, start + 2000000000ull); /* warm-up: every client pinged twice */
  r->rss_after_kb = bench_tree_rss_kb(pid);
  if (cg_mode) {
    measuring = 1;
    r->ok = cg_window(pid, start, r) == 0 && r->cg_hb > 0;
    measuring = 0;
    r->pongs = n_pongs;
    r->server_pings = n_server_pings;
    r->skipped = n_skipped;
    r->lost = n_lost;
    close_all();
    bench_stop(pid);
    return r->ok ? 0 : -1;
  }
  {
    scraper sc;
    memset(&sc, 0, sizeof(sc));
    sc.port = r->mport;
    if (sc.port != 0 && pthread_create(&sc.th, NULL, scrape_loop, &sc) != 0)
      sc.port = 0;
    measuring = 1;
    cpu0 = bench_tree_cpu_seconds(pid, &user0);
    t0 = bench_now_ns();
    run_for(start, t0 + (uint64_t)window_s * 1000000000u);
    cpu1 = bench_tree_cpu_seconds(pid, &user1);
    r->seconds = (double)(bench_now_ns() - t0) / 1e9; /* the window, not the timings after it */
    if (sc.port != 0) {
      sc.stop = 1;
      pthread_join(sc.th, NULL);
      r->scrapes = sc.n;
      r->scrape_max_ms = sc.max_ms;
      r->metrics_ms = median5(r->mport, "/metrics", &r->metrics_bytes);
      /* With --workers the whole server's endpoint has no /connections:
       * worker 0's own, on the next port, has. */
      r->conns_page_ms = median5(workers > 1 ? (uint16_t)(r->mport + 1) : r->mport,
                                 "/connections?limit=1000", &r->page_bytes);
    }
  }
  measuring = 0;
  r->cpu_s = cpu1 - cpu0;
  r->user_s = user1 - user0;
  r->pongs = n_pongs;
  r->server_pings = n_server_pings;
  r->skipped = n_skipped;
  r->lost = n_lost;
  r->rtt_p50_us = percentile(n_pongs, 0.50);
  r->rtt_p99_us = percentile(n_pongs, 0.99);
  r->ok = cpu0 >= 0 && cpu1 >= 0 && n_pongs > 0;
  close_all();
  bench_stop(pid);
  return r->ok ? 0 : -1;
}

static double cpu_us_per_hb(const run_result *r) {
  return r->cpu_s * 1e6 / (double)(r->pongs + r->server_pings);
}

static double bytes_per_conn(const run_result *r) {
  return (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / (double)r->conns;
}

static void print_row(unsigned round, const run_result *r) {
  double hb = (double)(r->pongs + r->server_pings);
  if (round == 0)
    printf("%-5s ", "best");
  else
    printf("%-5u ", round);
  printf("%-16s %6u %8.0f %7.2f %5.2f/%-5.2f %6.1f%% %10.0f %7llu/%-7llu %6llu %5llu %4llu\n",
         r->name, r->conns, hb / r->seconds, cpu_us_per_hb(r), r->user_s * 1e6 / hb,
         (r->cpu_s - r->user_s) * 1e6 / hb, r->cpu_s * 100.0 / r->seconds, bytes_per_conn(r),
         (unsigned long long)r->rtt_p50_us, (unsigned long long)r->rtt_p99_us,
         (unsigned long long)r->server_pings, (unsigned long long)r->skipped,
         (unsigned long long)r->lost);
}

static void raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n_conns + 64) {
    fprintf(stderr, "bench-connections: -n %u needs %u descriptors; the limit is %llu\n", n_conns,
            n_conns + 64, (unsigned long long)rl.rlim_cur);
    exit(2);
  }
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench-connections [-n N] [-w SECONDS] [-r ROUNDS] [-i PING_MS]\n"
          "                         [--only vigil|baseline|floor] [--vigil [LABEL=]PATH]...\n"
          "                         [--baseline PATH] [--floor PATH] "
          "[--vs-metrics | --vs-tls]\n"
          "                         [--workers N] [--callgrind[-keep]]\n");
  return 2;
}

static double cg_ir_per_hb(const run_result *r) {
  return (double)r->cg_ir / r->cg_hb;
}

/* What ranks the rounds: CPU per heartbeat, or with --callgrind
 * instructions per heartbeat. */
static double round_cost(const run_result *r) {
  return cg_mode ? cg_ir_per_hb(r) : cpu_us_per_hb(r);
}

/* The round with the least CPU per heartbeat: on a shared machine other
 * tenants only ever add CPU time, so the minimum is the least disturbed. */
static const run_result *best(const run_result *r, int n) {
  const run_result *b = NULL;
  for (int k = 0; k < n; k++)
    if (r[k].ok && (b == NULL || round_cost(&r[k]) < round_cost(b)))
      b = &r[k];
  return b;
}

static double user_us_per_hb(const run_result *r) {
  return r->user_s * 1e6 / (double)(r->pongs + r->server_pings);
}

/* --vs-tls: a certificate for TLS_NAME in a new directory `dir`, and the
 * clients' context that trusts it. Returns 0, or -1 having said why. */
static char tls_dir[64] = "";
static char tls_cert[128], tls_key[128];

static int tls_setup(void) {
  char cmd[1024], err[256];
  vigil_tls_config cfg;
  if (!vigil_tls_available()) {
    fprintf(stderr, "bench-connections: --vs-tls: libvigil was built without TLS\n");
    return -1;
  }
  snprintf(tls_dir, sizeof(tls_dir), "/tmp/bench-tls.XXXXXX");
  if (mkdtemp(tls_dir) == NULL) {
    tls_dir[0] = '\0';
    return -1;
  }
  snprintf(tls_cert, sizeof(tls_cert), "%s/cert.pem", tls_dir);
  snprintf(tls_key, sizeof(tls_key), "%s/key.pem", tls_dir);
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=" TLS_NAME " -addext subjectAltName=DNS:" TLS_NAME
           " -keyout %s -out %s >/dev/null 2>&1",
           tls_key, tls_cert);
  if (system(cmd) != 0) {
    fprintf(stderr, "bench-connections: --vs-tls: `openssl req` could not make a certificate "
                    "(is the openssl command installed?)\n");
    return -1;
  }
  vigil_tls_config_init(&cfg);
  cfg.ca_file = tls_cert;
  if (vigil_tls_new(&tls_client_ctx, VIGIL_ROLE_CLIENT, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench-connections: --vs-tls: %s\n", err);
    return -1;
  }
  return 0;
}

static void tls_cleanup(void) {
  vigil_tls_free(tls_client_ctx);
  tls_client_ctx = NULL;
  if (tls_dir[0] != '\0') {
    unlink(tls_cert);
    unlink(tls_key);
    rmdir(tls_dir);
  }
}

/* The servers one run measures, in the order they run each round. */
enum { S_VIGIL, S_METRICS, S_TLS, S_UV, S_FLOOR };
#define MAX_SERVERS 8

typedef struct server {
  int kind;
  char label[24];
  char path[PATH_MAX + 32];
  run_result r[MAX_ROUNDS];
  const run_result *best;
} server;

static server servers[MAX_SERVERS];
static int nservers;

static server *add_server(int kind, const char *label, const char *path) {
  server *s;
  if (nservers == MAX_SERVERS)
    return NULL;
  s = &servers[nservers++];
  memset(s, 0, sizeof(*s));
  s->kind = kind;
  snprintf(s->label, sizeof(s->label), "%s", label);
  snprintf(s->path, sizeof(s->path), "%s", path);
  return s;
}

static void print_cg_row(unsigned round, const run_result *r) {
  if (round == 0)
    printf("%-5s ", "best");
  else
    printf("%-5u ", round);
  printf("%-16s %6u %10.0f %9.0f %11.2f %11.2f %8.2f %6llu %5llu %4llu\n", r->name, r->conns,
         r->cg_hb, cg_ir_per_hb(r), (double)r->cg_sys / r->cg_hb, (double)r->cg_clocks / r->cg_hb,
         (double)r->cg_waits / r->cg_hb, (unsigned long long)r->server_pings,
         (unsigned long long)r->skipped, (unsigned long long)r->lost);
}

/* One round of server s. */
static void run_server(server *s, unsigned k) {
  char port_s[16], addr_s[32], iv_s[32], to_s[32], max_s[32], to_ms_s[32], mport_s[32], w_s[16];
  uint16_t port = bench_free_port();
  run_result *r = &s->r[k];
  char *av[32], cg_out[96], cg_log[96];
  int n = 0;

  snprintf(port_s, sizeof(port_s), "%u", port);
  snprintf(addr_s, sizeof(addr_s), "127.0.0.1:%u", port);
  snprintf(iv_s, sizeof(iv_s), "%ums", ping_ms * 3 / 2);
  snprintf(to_s, sizeof(to_s), "%ums", ping_ms * 9 / 2);
  snprintf(to_ms_s, sizeof(to_ms_s), "%u", ping_ms * 9 / 2);
  snprintf(max_s, sizeof(max_s), "%u", n_conns + 100);
  if (cg_mode) {
    snprintf(cg_out, sizeof(cg_out), "--callgrind-out-file=%s/cg.%%p", cg_dir);
    snprintf(cg_log, sizeof(cg_log), "--log-file=%s/vg.%%p", cg_dir);
    av[n++] = cg_valgrind;
    av[n++] = "--tool=callgrind";
    av[n++] = "--collect-systime=yes";
    av[n++] = cg_out;
    av[n++] = cg_log;
  }
  av[n++] = s->path;
  if (s->kind == S_UV || s->kind == S_FLOOR) {
    av[n++] = "--host";
    av[n++] = "127.0.0.1";
    av[n++] = "--port";
    av[n++] = port_s;
    if (s->kind == S_UV) {
      av[n++] = "--timeout-ms";
      av[n++] = to_ms_s;
    }
  } else {
    char *const common[] = {"serve",     addr_s, "--interval",  iv_s,
                            "--timeout", to_s,   "--max-conns", max_s};
    for (size_t j = 0; j < sizeof(common) / sizeof(common[0]); j++)
      av[n++] = common[j];
    if (workers > 1) {
      snprintf(w_s, sizeof(w_s), "%u", workers);
      av[n++] = "--workers";
      av[n++] = w_s;
    }
    if (s->kind == S_METRICS) {
      r->mport = bench_free_port();
      snprintf(mport_s, sizeof(mport_s), "127.0.0.1:%u", r->mport);
      av[n++] = "--metrics";
      av[n++] = mport_s;
    } else if (s->kind == S_TLS) {
      av[n++] = "--tls-cert";
      av[n++] = tls_cert;
      av[n++] = "--tls-key";
      av[n++] = tls_key;
    }
  }
  av[n] = NULL;
  tls_ctx = s->kind == S_TLS ? tls_client_ctx : NULL;
  if (measure(s->label, av, port, r) == 0 && cg_mode) {
    print_cg_row(k + 1, r);
  } else if (r->ok) {
    print_row(k + 1, r);
    if (s->kind == S_METRICS)
      printf("      scrapes in the window %u (slowest %.1f ms); after it: /metrics %.2f ms "
             "(%zu B), /connections?limit=1000 %.1f ms (%zu B)\n",
             r->scrapes, r->scrape_max_ms, r->metrics_ms, r->metrics_bytes, r->conns_page_ms,
             r->page_bytes);
  }
  tls_ctx = NULL;
}

static const server *find_kind(int kind) {
  for (int i = 0; i < nservers; i++)
    if (servers[i].kind == kind && servers[i].best != NULL)
      return &servers[i];
  return NULL;
}

/* Each server's best round against the floor's: user-space CPU per
 * heartbeat (the kernel's share is the same loopback path for all) and
 * RSS per connection. */
static void print_floor_ratios(void) {
  const server *f = find_kind(S_FLOOR);
  if (f == NULL)
    return;
  printf("\nagainst the bare-epoll floor (best rounds): floor %.2f us/hb in user space, "
         "%.0f B/conn\n",
         user_us_per_hb(f->best), bytes_per_conn(f->best));
  for (int i = 0; i < nservers; i++) {
    const server *s = &servers[i];
    if (s == f || s->best == NULL)
      continue;
    printf("  %-16s user us/hb %.2f = %.2fx floor, RSS %.0f B/conn = %+.0f B over floor", s->label,
           user_us_per_hb(s->best), user_us_per_hb(s->best) / user_us_per_hb(f->best),
           bytes_per_conn(s->best), bytes_per_conn(s->best) - bytes_per_conn(f->best));
    if (bytes_per_conn(f->best) >= 16) /* a ratio to (nearly) nothing says nothing */
      printf(" (%.1fx)", bytes_per_conn(s->best) / bytes_per_conn(f->best));
    printf("\n");
  }
}

/* --callgrind: each server's instructions per heartbeat against the
 * floor's. */
static void print_cg_ratios(void) {
  const server *f = find_kind(S_FLOOR);
  printf("\ninstr/hb: instructions the server ran in user space (valgrind's Ir) per heartbeat "
         "in the\n       window; a proxy for user CPU that the machine's load does not move "
         "(it leaves out\n       cache misses, and clock_gettime's vDSO: see clock rd/hb)\n"
         "syscalls/hb, clock rd/hb: the server's system calls (clock reads among them under "
         "valgrind)\n       and clock_gettime calls per heartbeat\n"
         "waits/hb: epoll_wait calls per heartbeat (1.00: every heartbeat paid a loop wake-up "
         "of its own)\n");
  if (f == NULL)
    return;
  printf("\nagainst the bare-epoll floor: floor %.0f instructions per heartbeat in user space\n",
         cg_ir_per_hb(f->best));
  for (int i = 0; i < nservers; i++) {
    const server *s = &servers[i];
    if (s == f || s->best == NULL)
      continue;
    printf("  %-16s instr/hb %.0f = %.2fx floor\n", s->label, cg_ir_per_hb(s->best),
           cg_ir_per_hb(s->best) / cg_ir_per_hb(f->best));
  }
}

static int have_kind(int kind) {
  for (int i = 0; i < nservers; i++)
    if (servers[i].kind == kind)
      return 1;
  return 0;
}

static int runnable(const char *path) {
  return access(path, X_OK) == 0;
}

int main(int argc, char **argv) {
  static char dir[PATH_MAX], path[PATH_MAX + 32];
  const char *only = NULL;
  unsigned rounds = 3;
  int vs_metrics = 0, vs_tls = 0, vigils = 0, ok = 1, n_given = 0, r_given = 0;
  const server *v0, *b;

  bench_self_dir(dir, sizeof(dir));
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--vs-metrics") == 0) {
      vs_metrics = 1;
      continue;
    }
    if (strcmp(argv[i], "--vs-tls") == 0) {
      vs_tls = 1;
      continue;
    }
    if (strcmp(argv[i], "--callgrind") == 0 || strcmp(argv[i], "--callgrind-keep") == 0) {
      cg_mode = 1;
      cg_keep = strcmp(argv[i], "--callgrind-keep") == 0;
      continue;
    }
    if (v == NULL)
      return usage();
    if (strcmp(argv[i], "-n") == 0) {
      n_conns = (unsigned)strtoul(v, NULL, 10);
      n_given = 1;
    } else if (strcmp(argv[i], "-w") == 0) {
      window_s = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "-r") == 0) {
      rounds = (unsigned)strtoul(v, NULL, 10);
      r_given = 1;
    } else if (strcmp(argv[i], "-i") == 0) {
      ping_ms = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--workers") == 0) {
      workers = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--only") == 0) {
      only = v;
    } else if (strcmp(argv[i], "--vigil") == 0) {
      /* PATH (labelled "vigil serve") or LABEL=PATH, repeatable */
      const char *eq = strchr(v, '=');
      char label[24];
      snprintf(label, sizeof(label), "%.*s", eq != NULL ? (int)(eq - v) : 11,
               eq != NULL ? v : "vigil serve");
      if (add_server(S_VIGIL, label, eq != NULL ? eq + 1 : v) == NULL)
        return usage();
      vigils++;
    } else if (strcmp(argv[i], "--baseline") == 0) {
      if (add_server(S_UV, "libuv baseline", v) == NULL)
        return usage();
    } else if (strcmp(argv[i], "--floor") == 0) {
      if (add_server(S_FLOOR, "epoll floor", v) == NULL)
        return usage();
    } else {
      return usage();
    }
    i++;
  }
  if (cg_mode && !n_given)
    n_conns = 200;
  if (cg_mode && !r_given)
    rounds = 1;
  if (n_conns == 0 || n_conns > 1000000 || window_s == 0 || ping_ms < 200 || rounds == 0 ||
      rounds > MAX_ROUNDS || (vs_metrics && vs_tls) || (vigils > 1 && (vs_metrics || vs_tls)) ||
      workers == 0 || workers > 256 || (cg_mode && (vs_metrics || vs_tls || workers > 1)))
    return usage();
  if (cg_mode && (find_in_path("valgrind", cg_valgrind, sizeof(cg_valgrind)) != 0 ||
                  find_in_path("vgdb", cg_vgdb, sizeof(cg_vgdb)) != 0)) {
    printf("bench-connections --callgrind: valgrind (with vgdb) is not installed: no instruction "
           "counts\n");
    return 0;
  }
  snprintf(cg_dir, sizeof(cg_dir), "/tmp/bench-cg.XXXXXX");
  if (cg_mode && mkdtemp(cg_dir) == NULL)
    return 1;
  if (!cg_mode)
    cg_dir[0] = '\0';
  if (vigils == 0) {
    snprintf(path, sizeof(path), "%s/vigil", dir);
    add_server(S_VIGIL, "vigil serve", path);
  }
  if (vs_metrics) {
    add_server(S_METRICS, "serve --metrics", servers[0].path);
  } else if (vs_tls) {
    add_server(S_TLS, "serve --tls-*", servers[0].path);
  } else {
    snprintf(path, sizeof(path), "%s/baseline-uv-heartbeat", dir);
    if (!have_kind(S_UV) && runnable(path))
      add_server(S_UV, "libuv baseline", path);
    else if (!have_kind(S_UV))
      printf("bench-connections: no %s (libuv not installed?): no libuv column\n", path);
    snprintf(path, sizeof(path), "%s/baseline-floor", dir);
    if (!have_kind(S_FLOOR) && runnable(path))
      add_server(S_FLOOR, "epoll floor", path);
  }
  if (vs_tls && tls_setup() != 0) {
    tls_cleanup();
    return 1;
  }
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  conns = calloc(n_conns, sizeof(*conns));
  hist = calloc(HIST_US, sizeof(*hist));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || hist == NULL || epfd < 0)
    return 1;

  printf("bench-connections: %u connections, each client pings every %u ms; %u rounds of a "
         "%u s window per server, alternating\n",
         n_conns, ping_ms, rounds, window_s);
  if (cg_mode)
    printf("under valgrind --tool=callgrind: user-space instructions per heartbeat\n"
           "\n%-5s %-16s %6s %10s %9s %11s %11s %8s %6s %5s %4s\n",
           "round", "server", "conns", "heartbeats", "instr/hb", "syscalls/hb", "clock rd/hb",
           "waits/hb", "s-ping", "skip", "lost");
  else
    printf("\n%-5s %-16s %6s %8s %7s %11s %7s %10s %15s %6s %5s %4s\n", "round", "server", "conns",
           "hb/s", "us/hb", "user/sys", "cpu", "RSS B/conn", "rtt p50/p99 us", "s-ping", "skip",
           "lost");
  for (unsigned k = 0; k < rounds; k++)
    for (int i = 0; i < nservers; i++) {
      const char *kind = servers[i].kind == S_UV      ? "baseline"
                         : servers[i].kind == S_FLOOR ? "floor"
                                                      : "vigil";
      if (only == NULL || strcmp(only, kind) == 0)
        run_server(&servers[i], k);
    }
  for (int i = 0; i < nservers; i++) {
    servers[i].best = best(servers[i].r, (int)rounds);
    if (servers[i].best != NULL && cg_mode)
      print_cg_row(0, servers[i].best);
    else if (servers[i].best != NULL)
      print_row(0, servers[i].best);
    else if (only == NULL || servers[i].kind == S_VIGIL)
      ok = 0;
  }
  if (cg_mode) {
    cg_cleanup();
    print_cg_ratios();
    return ok ? 0 : 1;
  }
  printf("\nus/hb: server CPU time (utime+stime, /proc/PID/stat) per heartbeat answered in "
         "the window,\n       split into user/sys (on loopback, sys includes the kernel's "
         "delivery of each\n       pong to the client socket, the same for every server)\n"
         "RSS B/conn: server VmRSS after connecting minus before, per connection\n"
         "best: the round with the least CPU per heartbeat (other tenants only add CPU)\n");
  tls_cleanup();
  v0 = find_kind(S_VIGIL);
  b = vs_tls ? find_kind(S_TLS) : vs_metrics ? find_kind(S_METRICS) : find_kind(S_UV);
  if (vs_tls && v0 != NULL && b != NULL) {
    printf("\nTLS on / off (best rounds): CPU per heartbeat %.3fx (%+.1f%%; user space alone "
           "%.2fx), memory per connection %.2fx\n",
           cpu_us_per_hb(b->best) / cpu_us_per_hb(v0->best),
           (cpu_us_per_hb(b->best) / cpu_us_per_hb(v0->best) - 1.0) * 100.0,
           user_us_per_hb(b->best) / user_us_per_hb(v0->best),
           bytes_per_conn(b->best) / bytes_per_conn(v0->best));
  } else if (vs_metrics && v0 != NULL && b != NULL) {
    printf("\nmetrics on / off (best rounds): CPU per heartbeat %.3fx (%+.1f%%)\n",
           cpu_us_per_hb(b->best) / cpu_us_per_hb(v0->best),
           (cpu_us_per_hb(b->best) / cpu_us_per_hb(v0->best) - 1.0) * 100.0);
  } else if (v0 != NULL && b != NULL) {
    for (int i = 0; i < nservers; i++)
      if (servers[i].kind == S_VIGIL && servers[i].best != NULL)
        printf("\nratio baseline / %s (best rounds): CPU per heartbeat %.2fx (user space alone "
               "%.2fx), memory per connection %.2fx",
               servers[i].label, cpu_us_per_hb(b->best) / cpu_us_per_hb(servers[i].best),
               user_us_per_hb(b->best) / user_us_per_hb(servers[i].best),
               bytes_per_conn(b->best) / bytes_per_conn(servers[i].best));
    printf("\n");
  } else if (only == NULL) {
    printf("\nno ratio: %s did not complete\n", v0 != NULL ? "the second server" : "vigil");
  }
  print_floor_ratios();
  return ok ? 0 : 1;
}
