/* bench-scale: how many heartbeating connections does `vigil serve` hold on
 * this box, and what does each one cost? (issue 11, part 4)
 *
 * This process starts `vigil serve --workers K` and P client processes
 * (fork), each holding its share of N connections over its own epoll
 * (at most 19,000 each: the per-process descriptor limit here is 20,000).
 * Client p binds its sockets to 127.0.(p+1).2..127.0.(p+1).9 with
 * IP_BIND_ADDRESS_NO_PORT, so every (source, destination) pair has the whole
 * ephemeral range and ports never run out. Each client sends a PING every
 * PERIOD seconds (its connections spread evenly over the period) and
 * answers the server's PINGs; the HELLO proposes an interval of 1.5 x
 * PERIOD and the server is told the same (--interval, --timeout 4.5 x
 * PERIOD), as bench-connections does, so the server's own idle pings do
 * not fire while the clients are healthy.
 *
 * Phases: ramp (every client connects with at most 256 in flight), hold
 * (the window measured), then optionally freeze: F% of every client's
 * connections stop sending and reading at once (the application hangs, the
 * kernel still ACKs), and the benchmark waits for the server to close them
 * (EPOLLRDHUP on the frozen sockets), timing each close against the
 * connection's last PING + the timeout.
 *
 * Printed: connections held, connect rate (ramp), server RSS per connection
 * (VmRSS of the supervisor and its workers after the ramp minus before the
 * ramp), kernel slab per connection (/proc/meminfo Slab delta: both ends'
 * sockets are on this box, so this is the cost of a connection's two
 * sockets), server CPU per heartbeat over the hold (utime + stime of every
 * server process / heartbeats answered), and false deaths (connections the
 * server closed that were not frozen). Counters live in a shared mapping
 * the clients update.
 *
 * usage: bench-scale [-n N] [-p PROCS] [-w WORKERS] [-i PERIOD_S] [--hold S]
 *                    [--freeze PCT] [--vigil PATH]
 * defaults: -n 10000 -p ceil(N/19000) -w 1 -i 10 --hold 20 --freeze 0
 * The server runs with --metrics on a free port: after the ramp and after
 * the hold this reads its /metrics and prints accepts, opens, refusals by
 * reason, deaths by cause, loop stalls and the pings it sent.
 * Issue 11's runs: -i 60 --hold 120 and N = 100000, 250000, ...
 * Linux only (epoll, /proc). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util-bench.h"
#include "vigil.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PER_PROC_MAX 19000u
#define MAX_PROCS 128
#define MAX_INFLIGHT 256
#define RX_CAP 160 /* a WELCOME or a CLOSE is at most ~140 bytes here */
#define LATE_MS 100000

enum { C_IDLE, C_CONNECTING, C_HELLO, C_OPEN, C_FROZEN, C_DEAD };
enum { PH_RAMP, PH_HOLD, PH_FREEZE, PH_STOP };

typedef struct conn {
  int fd;
  uint8_t state;
  uint8_t ping_out;
  uint8_t rx_len;
  uint64_t last_ping_ns;
  uint8_t rx[RX_CAP];
} conn;

/* One client process's counters (written by it, read by the parent). */
typedef struct stats {
  volatile uint64_t open, failed, dead, pongs, server_pings, frozen, frozen_closed, early;
  volatile uint64_t refused;   /* of failed: closed by the server before its WELCOME */
  volatile uint64_t send_full; /* PINGs and PONGs the kernel would not take (EAGAIN, ENOBUFS) */
  volatile uint64_t ready;     /* 1 once every connection is open or failed */
  volatile uint32_t late_hist[LATE_MS / 10 + 1]; /* close - (last ping + timeout), 10 ms bins */
} stats;

typedef struct shared {
  volatile int phase;
  volatile int freeze_pct;
  stats st[MAX_PROCS];
} shared;

static shared *sh;
static unsigned period_s = 10, timeout_ms;
static uint16_t port;

/* ---- a client process -------------------------------------------------- */

static conn *conns;
static unsigned ncon;
static int epfd;
static stats *me;

static void conn_dead(conn *c) {
  if (c->state == C_DEAD)
    return;
  if (c->state == C_OPEN) {
    me->dead++; /* closed by the server while healthy: a false death */
    me->open--;
  } else {
    me->failed++; /* refused before its WELCOME (server full, ...) */
    me->refused++;
  }
  c->state = C_DEAD;
  close(c->fd);
}

/* A PING or PONG the kernel would not take (its socket memory is over
 * net.ipv4.tcp_mem) is counted and skipped, not a reason to close: closing
 * would reset a healthy connection and show up as a server's false death.
 * Any other failure means the server closed it. */
static void send_small(conn *c, const uint8_t frame[2]) {
  if (send(c->fd, frame, 2, MSG_NOSIGNAL) == 2)
    return;
  if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
    me->send_full++;
  else
    conn_dead(c);
}

static void on_frame(conn *c, const vigil_frame *f) {
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};
  if (f->type == VIGIL_FRAME_WELCOME && c->state == C_HELLO) {
    c->state = C_OPEN;
    me->open++;
  } else if (f->type == VIGIL_FRAME_PONG && c->ping_out) {
    c->ping_out = 0;
    if (sh->phase == PH_HOLD)
      me->pongs++;
  } else if (f->type == VIGIL_FRAME_PING) {
    if (sh->phase == PH_HOLD)
      me->server_pings++;
    send_small(c, pong);
  } else if (f->type == VIGIL_FRAME_CLOSE) {
    conn_dead(c);
  }
}

static void on_readable(conn *c) {
  for (;;) {
    ssize_t r = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, 0);
    size_t off = 0;
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (r <= 0) {
      conn_dead(c);
      return;
    }
    c->rx_len = (uint8_t)(c->rx_len + r);
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
    c->rx_len = (uint8_t)(c->rx_len - off);
    if (c->rx_len == RX_CAP) {
      conn_dead(c);
      return;
    }
  }
}

static int start_connect(conn *c, unsigned i, unsigned proc) {
  struct sockaddr_in src, dst;
  struct epoll_event ev;
  int one = 1;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -1;
  setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  memset(&src, 0, sizeof(src));
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000000u | (proc + 1u) << 8 | (2u + i % 8u));
  memset(&dst, 0, sizeof(dst));
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons(port);
  if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
      (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)) {
    close(c->fd);
    return -1;
  }
  ev.events = EPOLLOUT;
  ev.data.u32 = i;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    close(c->fd);
    return -1;
  }
  c->state = C_CONNECTING;
  return 0;
}

static void send_hello(conn *c, unsigned i, unsigned proc) {
  uint8_t out[VIGIL_WIRE_MAX_CONTROL_FRAME];
  char id[24];
  vigil_hello h;
  struct epoll_event ev;
  int n;
  snprintf(id, sizeof(id), "s%u-%u", proc, i);
  memset(&h, 0, sizeof(h));
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = period_s * 1500u;
  h.timeout_ms = timeout_ms;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(out, sizeof(out), &h);
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = i;
  if (n <= 0 || epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0 ||
      send(c->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
    c->state = C_DEAD;
    close(c->fd);
    me->failed++;
    return;
  }
  c->state = C_HELLO;
}

/* A frozen connection's socket closed by the server: when, against its
 * last PING + the timeout. */
static void frozen_closed(conn *c) {
  int64_t late_ms =
      ((int64_t)bench_now_ns() - (int64_t)c->last_ping_ns) / 1000000 - (int64_t)timeout_ms;
  if (late_ms < 0)
    me->early++;
  else
    me->late_hist[late_ms / 10 < LATE_MS / 10 ? late_ms / 10 : LATE_MS / 10]++;
  me->frozen_closed++;
  me->open--;
  c->state = C_DEAD;
  close(c->fd);
}

static void on_event(const struct epoll_event *ev, unsigned proc) {
  conn *c = &conns[ev->data.u32];
  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (ev->events & (EPOLLERR | EPOLLHUP))) {
      c->state = C_DEAD;
      close(c->fd);
      me->failed++;
    } else {
      send_hello(c, ev->data.u32, proc);
    }
  } else if (c->state == C_FROZEN) {
    if (ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
      frozen_closed(c);
  } else if (c->state != C_DEAD) {
    on_readable(c);
  }
}

/* Freezes every connection k with k % 100 < pct: no more pings, no more
 * reads (the kernel still ACKs what arrives); only the server's FIN or RST
 * is watched. */
static void freeze(unsigned pct) {
  for (unsigned k = 0; k < ncon; k++) {
    conn *c = &conns[k];
    struct epoll_event ev;
    if (c->state != C_OPEN || k % 100 >= pct)
      continue;
    ev.events = EPOLLRDHUP;
    ev.data.u32 = k;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = C_FROZEN;
    me->frozen++;
  }
}

static int client_main(unsigned proc, unsigned n) {
  static const uint8_t ping[2] = {VIGIL_FRAME_PING, 0};
  uint64_t period = (uint64_t)period_s * 1000000000u, start = 0, cursor = 0;
  unsigned started = 0, inflight;
  int frozen = 0;
  me = &sh->st[proc];
  ncon = n;
  conns = calloc(n, sizeof(*conns));
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || epfd < 0)
    return 1;
  while (sh->phase != PH_STOP) {
    struct epoll_event evs[512];
    int got;
    uint64_t now = bench_now_ns();
    inflight = started - (unsigned)(me->open + me->failed + me->dead);
    while (started < n && inflight < MAX_INFLIGHT) {
      if (start_connect(&conns[started], started, proc) != 0)
        me->failed++;
      else
        inflight++;
      started++;
    }
    if (!me->ready && started == n && inflight == 0) {
      me->ready = 1;
      start = now;
    }
    if (sh->phase == PH_FREEZE && !frozen) {
      freeze((unsigned)sh->freeze_pct);
      frozen = 1;
    }
    if (start != 0) { /* every connection's turn comes once a period */
      uint64_t due = (now - start) / period * n + (now - start) % period * n / period;
      while (cursor < due) {
        conn *c = &conns[cursor++ % n];
        if (c->state != C_OPEN || c->ping_out || now - c->last_ping_ns < period * 9 / 10)
          continue;
        c->last_ping_ns = now;
        c->ping_out = 1;
        send_small(c, ping);
      }
    }
    got = epoll_wait(epfd, evs, 512, 5);
    for (int k = 0; k < got; k++)
      on_event(&evs[k], proc);
  }
  return 0;
}

/* ---- the parent -------------------------------------------------------- */

static long meminfo_kb(const char *key) {
  char line[256];
  long v = -1;
  size_t klen = strlen(key);
  FILE *f = fopen("/proc/meminfo", "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtol(line + klen + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static uint64_t sum_stat(size_t off, unsigned procs) {
  uint64_t s = 0;
  for (unsigned p = 0; p < procs; p++)
    s += *(volatile uint64_t *)((char *)&sh->st[p] + off);
  return s;
}

#define SUM(field, procs) sum_stat(offsetof(stats, field), (procs))

/* The server's /metrics (--metrics: with --workers, the whole server's
 * figures), read into buf; 0 on success. */
static int fetch_metrics(uint16_t mport, char *buf, size_t cap) {
  static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  struct sockaddr_in a;
  size_t got = 0;
  ssize_t r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {10, 0};
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(mport);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
    close(fd);
    return -1;
  }
  while (got + 1 < cap && (r = recv(fd, buf + got, cap - 1 - got, 0)) > 0)
    got += (size_t)r;
  buf[got] = '\0';
  close(fd);
  return got > 0 ? 0 : -1;
}

/* The value of the sample line that starts with `name` (a metric name with
 * its labels), or -1. */
static double metric(const char *text, const char *name) {
  size_t len = strlen(name);
  for (const char *l = text; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l ? l + 1 : l)
    if (strncmp(l, name, len) == 0 && l[len] == ' ')
      return strtod(l + len + 1, NULL);
  return -1;
}

/* Prints every nonzero sample of a labelled family: `  family{...} value`. */
static void print_family(const char *text, const char *family) {
  size_t len = strlen(family);
  for (const char *l = text; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l ? l + 1 : l) {
    const char *end = strchr(l, '\n'), *sp;
    if (strncmp(l, family, len) != 0 || l[len] != '{')
      continue;
    sp = memchr(l, ' ', end != NULL ? (size_t)(end - l) : strlen(l));
    if (sp != NULL && strtod(sp + 1, NULL) != 0)
      printf("  %.*s\n", (int)(end != NULL ? end - l : (long)strlen(l)), l);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: bench-scale [-n N] [-p PROCS] [-w WORKERS] [-i PERIOD_S] [--hold S]\n"
                  "                   [--freeze PCT] [--vigil PATH]\n");
  return 2;
}

static void late_percentiles(unsigned procs, uint64_t total, double *p50, double *p99,
                             double *max) {
  uint64_t seen = 0;
  *p50 = *p99 = *max = -1;
  for (unsigned b = 0; b <= LATE_MS / 10; b++) {
    uint64_t here = 0;
    for (unsigned p = 0; p < procs; p++)
      here += sh->st[p].late_hist[b];
    if (here == 0)
      continue;
    seen += here;
    if (*p50 < 0 && seen * 2 >= total)
      *p50 = b * 10.0;
    if (*p99 < 0 && seen * 100 >= total * 99)
      *p99 = b * 10.0;
    *max = b * 10.0 + 10;
  }
}

int main(int argc, char **argv) {
  static char dir[PATH_MAX], vigil_path[PATH_MAX + 32];
  char addr_s[32], iv_s[32], to_s[32], max_s[32], workers_s[16], out_path[64], maddr_s[32];
  static char m_ramp[1 << 18], m_hold[1 << 18];
  uint16_t mport;
  unsigned n = 10000, procs = 0, workers = 1, hold_s = 20, freeze_pct = 0;
  pid_t server, kids[MAX_PROCS];
  long rss0, rss1, slab0, slab1, avail0, avail1;
  uint64_t t0, t_ramp, hb0, hb1, held, frozen_closed_total = 0;
  double cpu0, cpu1, ramp_s;

  bench_self_dir(dir, sizeof(dir));
  snprintf(vigil_path, sizeof(vigil_path), "%s/vigil", dir);
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      return usage();
    if (strcmp(argv[i], "-n") == 0)
      n = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-p") == 0)
      procs = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-w") == 0)
      workers = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-i") == 0)
      period_s = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "--hold") == 0)
      hold_s = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "--freeze") == 0)
      freeze_pct = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "--vigil") == 0)
      snprintf(vigil_path, sizeof(vigil_path), "%s", v);
    else
      return usage();
    i++;
  }
  if (procs == 0)
    procs = (n + PER_PROC_MAX - 1) / PER_PROC_MAX;
  if (n == 0 || procs == 0 || procs > MAX_PROCS || (n + procs - 1) / procs > PER_PROC_MAX ||
      workers == 0 || workers > 256 || period_s == 0 || freeze_pct > 100)
    return usage();
  timeout_ms = period_s * 4500u;
  bench_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    return 1;
  memset(sh, 0, sizeof(*sh));

  port = bench_free_port();
  mport = bench_free_port();
  snprintf(addr_s, sizeof(addr_s), "127.0.0.1:%u", port);
  snprintf(maddr_s, sizeof(maddr_s), "127.0.0.1:%u", mport);
  snprintf(iv_s, sizeof(iv_s), "%ums", period_s * 1500u);
  snprintf(to_s, sizeof(to_s), "%ums", timeout_ms);
  snprintf(max_s, sizeof(max_s), "%u", n + 1000);
  snprintf(workers_s, sizeof(workers_s), "%u", workers);
  snprintf(out_path, sizeof(out_path), "/tmp/bench-scale-%d.out", (int)getpid());
  {
    char *const av[] = {vigil_path,  "serve",  addr_s,        "--interval", iv_s,
                        "--timeout", to_s,     "--max-conns", max_s,        "--workers",
                        workers_s,   "--json", "--metrics",   maddr_s,      NULL};
    server = bench_spawn(av, out_path);
  }
  if (server < 0 || bench_wait_listening(server, port) != 0) {
    fprintf(stderr, "bench-scale: %s did not start listening on %u\n", vigil_path, port);
    if (server > 0)
      bench_stop(server);
    return 1;
  }
  bench_sleep_ms(500);
  rss0 = bench_tree_rss_kb(server);
  slab0 = meminfo_kb("Slab");
  avail0 = meminfo_kb("MemAvailable");
  printf("bench-scale: %u connections over %u client processes, vigil serve --workers %u, "
         "a PING every %u s per connection, hold %u s\n",
         n, procs, workers, period_s, hold_s);
  fflush(stdout);

  t0 = bench_now_ns();
  for (unsigned p = 0; p < procs; p++) {
    unsigned share = n / procs + (p < n % procs);
    kids[p] = fork();
    if (kids[p] == 0)
      _exit(client_main(p, share));
  }
  for (;;) { /* the ramp */
    uint64_t ready = SUM(ready, procs);
    bench_sleep_ms(100);
    if (ready == procs)
      break;
    if (bench_now_ns() - t0 > 600ull * 1000000000u) {
      fprintf(stderr, "bench-scale: the ramp took over 600 s\n");
      break;
    }
  }
  t_ramp = bench_now_ns();
  ramp_s = (double)(t_ramp - t0) / 1e9;
  held = SUM(open, procs);
  bench_sleep_ms(1000); /* the server's last accepts and opens */
  rss1 = bench_tree_rss_kb(server);
  slab1 = meminfo_kb("Slab");
  avail1 = meminfo_kb("MemAvailable");
  printf("ramp: %llu of %u open in %.1f s (%.0f connections/s), %llu failed (%llu closed by the "
         "server before their WELCOME)\n",
         (unsigned long long)held, n, ramp_s, (double)held / ramp_s,
         (unsigned long long)SUM(failed, procs), (unsigned long long)SUM(refused, procs));
  if (fetch_metrics(mport, m_ramp, sizeof(m_ramp)) == 0) {
    printf("server after the ramp: %.0f accepted, %.0f opened, %.0f loop stalls, %.0f pings sent, "
           "%.0f accepts refused for descriptors (EMFILE)\n",
           metric(m_ramp, "vigil_accepted_total"), metric(m_ramp, "vigil_opens_total"),
           metric(m_ramp, "vigil_stalls_total"), metric(m_ramp, "vigil_pings_sent_total"),
           metric(m_ramp, "vigil_accept_emfile_total"));
    print_family(m_ramp, "vigil_refused_total");
    print_family(m_ramp, "vigil_deaths_total");
  }
  printf("memory: server RSS %.1f MiB = %.0f B/conn; kernel slab +%.1f MiB = %.0f B/conn "
         "(both ends' sockets); MemAvailable -%.1f MiB = %.0f B/conn (both ends)\n",
         (double)(rss1 - rss0) / 1024, (double)(rss1 - rss0) * 1024 / (double)held,
         (double)(slab1 - slab0) / 1024, (double)(slab1 - slab0) * 1024 / (double)held,
         (double)(avail0 - avail1) / 1024, (double)(avail0 - avail1) * 1024 / (double)held);
  fflush(stdout);

  sh->phase = PH_HOLD;
  cpu0 = bench_tree_cpu_seconds(server, NULL);
  hb0 = SUM(pongs, procs) + SUM(server_pings, procs);
  t0 = bench_now_ns();
  for (unsigned s = 0; s < hold_s; s++) {
    bench_sleep_ms(1000);
    if ((s + 1) % 30 == 0) {
      printf("  hold %3u s: %llu open, %llu false deaths\n", s + 1,
             (unsigned long long)SUM(open, procs), (unsigned long long)SUM(dead, procs));
      fflush(stdout);
    }
  }
  cpu1 = bench_tree_cpu_seconds(server, NULL);
  hb1 = SUM(pongs, procs) + SUM(server_pings, procs);
  {
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    printf("hold %.0f s: %llu open at the end, %llu heartbeats (%.0f/s; %llu server pings), "
           "server CPU %.2f s = %.1f us/heartbeat (%.1f%% of one core), false deaths %llu, "
           "client sends refused by the kernel %llu\n",
           secs, (unsigned long long)SUM(open, procs), (unsigned long long)(hb1 - hb0),
           (double)(hb1 - hb0) / secs, (unsigned long long)SUM(server_pings, procs), cpu1 - cpu0,
           (cpu1 - cpu0) * 1e6 / (double)(hb1 - hb0 ? hb1 - hb0 : 1), (cpu1 - cpu0) * 100 / secs,
           (unsigned long long)SUM(dead, procs), (unsigned long long)SUM(send_full, procs));
  }
  if (m_ramp[0] != '\0' && fetch_metrics(mport, m_hold, sizeof(m_hold)) == 0) {
    printf("server over the hold: %.0f loop stalls, %.0f pings sent; deaths since the start:\n",
           metric(m_hold, "vigil_stalls_total") - metric(m_ramp, "vigil_stalls_total"),
           metric(m_hold, "vigil_pings_sent_total") - metric(m_ramp, "vigil_pings_sent_total"));
    print_family(m_hold, "vigil_deaths_total");
  }
  fflush(stdout);

  if (freeze_pct > 0) {
    uint64_t frozen, closed, deadline;
    double p50, p99, max;
    sh->freeze_pct = (int)freeze_pct;
    sh->phase = PH_FREEZE;
    bench_sleep_ms(200);
    frozen = SUM(frozen, procs);
    deadline = bench_now_ns() + ((uint64_t)period_s * 1000 + timeout_ms + 30000) * 1000000u;
    while ((closed = SUM(frozen_closed, procs)) < frozen && bench_now_ns() < deadline)
      bench_sleep_ms(200);
    frozen_closed_total = closed;
    late_percentiles(procs, closed - SUM(early, procs), &p50, &p99, &max);
    printf("freeze %u%%: %llu frozen, %llu closed by the server, %llu early; close - (last "
           "ping + timeout) p50/p99/max %.0f/%.0f/%.0f ms (10 ms bins); false deaths %llu\n",
           freeze_pct, (unsigned long long)frozen, (unsigned long long)closed,
           (unsigned long long)SUM(early, procs), p50, p99, max,
           (unsigned long long)SUM(dead, procs));
  }
  sh->phase = PH_STOP;
  for (unsigned p = 0; p < procs; p++)
    waitpid(kids[p], NULL, 0);
  bench_stop(server);
  if (freeze_pct > 0) {
    /* The frozen connections' deaths come first; the rest die at the stop. */
    char cmd[512];
    printf("causes on the server's first %llu dead lines (the frozen ones):\n",
           (unsigned long long)frozen_closed_total);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd),
             "grep '\"event\":\"dead\"' %s 2>/dev/null | head -n %llu | grep -o "
             "'\"cause\":\"[a-z_]*\"' | "
             "sort | uniq -c",
             out_path, (unsigned long long)frozen_closed_total);
    if (system(cmd) != 0)
      printf("  (none)\n");
  }
  unlink(out_path);
  return 0;
}
