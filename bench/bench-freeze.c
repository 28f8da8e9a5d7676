/* bench-freeze: how precise are a server's verdicts when thousands of its
 * clients die at the same instant?
 *
 * N clients, spread over P child processes (at most 19,900 each: the
 * descriptor limit is 20,000), heartbeat a server in another process: a
 * PING every PING_MS, a PONG for every PING the server sends. Once every
 * client is open and a few heartbeats have gone by, the whole group of
 * client processes gets SIGSTOP at once: every client falls silent in the
 * same instant while its kernel still ACKs. The server must then convict
 * each of them TIMEOUT after the last frame it sent, and close its socket.
 *
 * Two clocks are read, both outside the server:
 *  - L, per client: CLOCK_MONOTONIC just before each send(), in memory
 *    shared with this process. (A client stopped between the clock and the
 *    send leaves `pending` different from `last`: that client is left out
 *    and counted as unsure, rather than guessed.)
 *  - C, per client: when its socket saw the server's FIN or RST. Each client
 *    process passes a duplicate of every open socket to this process
 *    (SCM_RIGHTS); this process watches them for EPOLLRDHUP alone, which
 *    the kernel raises when the server's FIN arrives, stopped client or not.
 * Per client, close - (L + TIMEOUT): negative is an early close (a frame
 * sent at L cannot have arrived before L). Its p50, p99 and max say when
 * each socket was closed relative to the timeout after its last frame.
 *
 * vigil's `serve --json` dead line also says how long the server itself
 * found the peer silent (silent_ms, integer milliseconds, at the loop time
 * of the verdict): silent - TIMEOUT is printed too. Its line's t is when
 * the line was written, later than that loop time, so t - silent_ms is not
 * when the peer was last heard and is not used.
 *
 * Servers, measured one after the other in the same run under the same
 * load: every --vigil LABEL=PATH (`vigil serve`; give two to compare a
 * build before a change with one after it), then the libuv read-timeout
 * baseline (bench/baseline-uv-heartbeat.c: a uv_timer_t restarted on every
 * read), unless --no-baseline.
 *
 * usage: bench-freeze [-n N] [-p PROCS] [-i PING_MS] [-t TIMEOUT_MS]
 *                     [--hold S] [--vigil LABEL=PATH]... [--baseline PATH]
 *                     [--no-baseline]
 * defaults: -n 19000 -p 4 -i 1000 -t 3000 --hold 3 (about 40 s a server);
 * vigil and the baseline next to this binary. Source addresses
 * 127.0.0.2..9 with IP_BIND_ADDRESS_NO_PORT; RLIMIT_NOFILE is raised to its
 * hard limit (this process holds N descriptors too). Linux only.
 * BENCH_FREEZE_KEEP=1 keeps each server's output (its --json lines; the
 * file is named on stderr) to see when the late verdicts came. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util-bench.h"
#include "vigil.h"

#define MAX_SERVERS 6
#define MAX_PROCS 64
#define RX_CAP 256
#define MAX_INFLIGHT 128

/* Shared with the children, per client. */
typedef struct slot {
  uint64_t pending_ns; /* CLOCK_MONOTONIC before the send in progress */
  uint64_t last_ns;    /* ... of the last send that returned */
  uint32_t key;        /* (last octet of the source address << 16) | port; 0 until open */
  uint32_t pad;
} slot;

typedef struct client {
  int fd;
  int state; /* 0 connecting, 1 HELLO sent, 2 open, 3 dead */
  size_t rx_len;
  uint8_t rx[RX_CAP];
} client;

typedef struct result {
  const char *label;
  unsigned frozen, closed, unsure, early, early_silent, verdicts;
  double late_min, late_p50, late_p99, late_max;
  double silent_p50, silent_p99, silent_max;
  double cpu_us; /* server CPU (user + system) from the freeze to the last close, per close;
                  * < 0: not measured */
  int has_silent;
} result;

static unsigned n_total = 19000, n_procs = 4, ping_ms = 1000, timeout_ms = 3000, hold_s = 3;
static slot *slots;
static uint64_t *close_ns; /* per client, 0 until its socket saw the server close */
static int *pfd;           /* per client, this process's duplicate, -1 none */
static volatile unsigned *n_failed;

/* ---- the clients (in the children) ---- */

static int send_frame(client *c, slot *s, const uint8_t *b, size_t n) {
  s->pending_ns = bench_now_ns();
  if (send(c->fd, b, n, MSG_NOSIGNAL) != (ssize_t)n)
    return -1;
  s->last_ns = s->pending_ns;
  return 0;
}

static int start_client(client *c, unsigned i, uint16_t port, int ep) {
  struct epoll_event ev;
  c->fd = bench_loopback_connect(i, port);
  if (c->fd < 0)
    return -1;
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u32 = i;
  return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int client_connected(client *c, unsigned i, int ep) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  struct epoll_event ev;
  uint8_t hello[512];
  vigil_hello h;
  char id[32];
  int n;
  if (getsockname(c->fd, (struct sockaddr *)&a, &len) != 0)
    return -1;
  snprintf(id, sizeof id, "f%u", i);
  memset(&h, 0, sizeof h);
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = ping_ms;
  h.timeout_ms = timeout_ms;
  h.max_frame = 16384;
  h.max_message = 65536;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(hello, sizeof hello, &h);
  if (n <= 0 || send_frame(c, &slots[i], hello, (size_t)n) != 0)
    return -1;
  slots[i].key = ((ntohl(a.sin_addr.s_addr) & 0xffu) << 16) | ntohs(a.sin_port);
  ev.events = EPOLLIN;
  ev.data.u32 = i;
  c->state = 1;
  return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Passes a duplicate of client i's socket to the parent. */
static int pass_fd(int chan, unsigned i, int fd) {
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&i, sizeof i};
  struct msghdr mh;
  struct cmsghdr *cm;
  memset(&mh, 0, sizeof mh);
  memset(ctl, 0, sizeof ctl);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof ctl;
  cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  return sendmsg(chan, &mh, 0) == (ssize_t)sizeof i ? 0 : -1;
}

/* Frames from the server: WELCOME opens, PING gets a PONG, CLOSE ends. */
static int client_read(client *c, unsigned i, int chan) {
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};
  ssize_t n = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, 0);
  size_t off = 0;
  if (n <= 0)
    return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
  c->rx_len += (size_t)n;
  for (;;) {
    vigil_frame f;
    int r = vigil_wire_decode(c->rx + off, c->rx_len - off, VIGIL_WIRE_MAX_CHUNK, &f);
    if (r == VIGIL_ENEEDMORE)
      break;
    if (r < 0)
      return -1;
    off += (size_t)r;
    if (f.type == VIGIL_FRAME_WELCOME && c->state == 1) {
      c->state = 2;
      if (pass_fd(chan, i, c->fd) != 0)
        return -1;
    } else if (f.type == VIGIL_FRAME_PING) {
      if (send_frame(c, &slots[i], pong, sizeof pong) != 0)
        return -1;
    } else if (f.type == VIGIL_FRAME_CLOSE) {
      return -1;
    }
  }
  memmove(c->rx, c->rx + off, c->rx_len - off);
  c->rx_len -= off;
  return 0;
}

static void client_dead(client *c) {
  if (c->state == 3)
    return;
  c->state = 3;
  close(c->fd);
  __sync_fetch_and_add(n_failed, 1);
}

/* Client j of this child pings at phase j * ping_ms / n of each period, so
 * the load is even and one millisecond's clients are one index range. */
static void send_pings(client *cs, unsigned lo, unsigned n, uint64_t ms) {
  static const uint8_t ping[2] = {VIGIL_FRAME_PING, 0};
  uint64_t b = ms % ping_ms;
  unsigned j = (unsigned)((b * n + ping_ms - 1) / ping_ms);
  unsigned end = (unsigned)(((b + 1) * n + ping_ms - 1) / ping_ms);
  for (; j < end && j < n; j++)
    if (cs[j].state == 2 && send_frame(&cs[j], &slots[lo + j], ping, sizeof ping) != 0)
      client_dead(&cs[j]);
}

/* One child: clients [lo, hi) until killed. */
static void run_clients(unsigned lo, unsigned hi, uint16_t port, int chan) {
  unsigned n = hi - lo, started = 0, inflight = 0;
  client *cs = calloc(n, sizeof *cs);
  struct epoll_event evs[256];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  uint64_t last_ms = bench_now_ns() / 1000000u;
  if (cs == NULL || ep < 0)
    _exit(1);
  for (;;) {
    uint64_t now_ms;
    int m;
    while (started < n && inflight < MAX_INFLIGHT) {
      if (start_client(&cs[started], lo + started, port, ep) != 0) {
        cs[started].state = 3;
        __sync_fetch_and_add(n_failed, 1);
      } else {
        inflight++;
      }
      started++;
    }
    m = epoll_wait(ep, evs, 256, 1);
    for (int k = 0; k < m; k++) {
      unsigned i = evs[k].data.u32;
      client *c = &cs[i - lo];
      int was = c->state, err = 0;
      socklen_t len = sizeof err;
      if (was == 3)
        continue;
      if (was == 0) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || client_connected(c, i, ep) != 0) {
          inflight--;
          client_dead(c);
        }
        continue;
      }
      if (client_read(c, i, chan) != 0)
        client_dead(c);
      if (was == 1 && c->state != 1)
        inflight--; /* opened, or died in the handshake */
    }
    now_ms = bench_now_ns() / 1000000u;
    while (last_ms < now_ms)
      send_pings(cs, lo, n, ++last_ms);
  }
}

/* ---- this process: the sockets' duplicates ---- */

/* Takes every socket the children passed so far; returns how many. */
static unsigned take_fds(int chan, int ep) {
  unsigned got = 0;
  for (;;) {
    char ctl[CMSG_SPACE(sizeof(int))];
    unsigned i;
    struct iovec iov = {&i, sizeof i};
    struct msghdr mh;
    struct cmsghdr *cm;
    struct epoll_event ev;
    int fd;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    if (recvmsg(chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != (ssize_t)sizeof i)
      return got;
    cm = CMSG_FIRSTHDR(&mh);
    if (cm == NULL || cm->cmsg_type != SCM_RIGHTS || i >= n_total)
      continue;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    ev.events = EPOLLRDHUP; /* not EPOLLIN: the server's frames are the child's to read */
    ev.data.u32 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    pfd[i] = fd;
    got++;
  }
}

/* Records the close of every socket the server closed; returns how many. */
static unsigned watch_closes(int ep, int wait_ms) {
  struct epoll_event evs[512];
  unsigned got = 0;
  int m = epoll_wait(ep, evs, 512, wait_ms);
  uint64_t now = bench_now_ns();
  for (int k = 0; k < m; k++) {
    unsigned i = evs[k].data.u32;
    if (i >= n_total || pfd[i] < 0)
      continue; /* the children's channel, or already seen */
    close_ns[i] = now;
    epoll_ctl(ep, EPOLL_CTL_DEL, pfd[i], NULL);
    close(pfd[i]);
    pfd[i] = -1;
    got++;
  }
  return got;
}

/* ---- the verdicts of vigil serve --json ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, unsigned n, double p) {
  unsigned k;
  if (n == 0)
    return 0;
  k = (unsigned)(p * (double)(n - 1) + 0.5);
  return v[k < n ? k : n - 1];
}

/* "127.0.0.X:PORT" -> key, 0 if not one of ours. */
static uint32_t peer_key(const char *p) {
  unsigned a, b, c, d, port;
  if (sscanf(p, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5 || a != 127)
    return 0;
  return (d << 16) | (port & 0xffffu);
}

/* Reads the dead lines of verdicts: silent - timeout, early count. */
static void read_verdicts(const char *path, result *r) {
  FILE *f = fopen(path, "r");
  char line[4096];
  double *silent = calloc(n_total, sizeof *silent);
  unsigned ns = 0;
  if (f == NULL || silent == NULL)
    goto out;
  while (fgets(line, sizeof line, f) != NULL) {
    const char *p;
    double sil;
    if (strstr(line, "\"event\":\"dead\"") == NULL ||
        (strstr(line, "\"cause\":\"heartbeat_timeout\"") == NULL &&
         strstr(line, "\"cause\":\"peer_stalled\"") == NULL) ||
        (p = strstr(line, "\"peer\":\"")) == NULL || peer_key(p + 8) == 0)
      continue;
    r->verdicts++;
    if ((p = strstr(line, "\"silent_ms\":")) == NULL || ns >= n_total)
      continue;
    sil = strtod(p + 12, NULL);
    r->has_silent = 1;
    silent[ns++] = sil - timeout_ms;
    if (sil < timeout_ms)
      r->early_silent++;
  }
  qsort(silent, ns, sizeof *silent, cmp_double);
  r->silent_p50 = pct(silent, ns, 0.50);
  r->silent_p99 = pct(silent, ns, 0.99);
  r->silent_max = ns ? silent[ns - 1] : 0;
out:
  if (f != NULL)
    fclose(f);
  free(silent);
}

/* close - (last send + timeout), per client the server closed. */
static void close_lateness(result *r) {
  double *late = calloc(n_total, sizeof *late);
  unsigned nl = 0;
  if (late == NULL)
    return;
  for (unsigned i = 0; i < n_total; i++) {
    if (close_ns[i] == 0)
      continue;
    r->closed++;
    if (slots[i].pending_ns != slots[i].last_ns) {
      r->unsure++;
      continue;
    }
    late[nl] = ((double)close_ns[i] - (double)slots[i].last_ns) / 1e6 - timeout_ms;
    if (late[nl] < 0)
      r->early++;
    nl++;
  }
  qsort(late, nl, sizeof *late, cmp_double);
  r->late_min = nl ? late[0] : 0;
  r->late_p50 = pct(late, nl, 0.50);
  r->late_p99 = pct(late, nl, 0.99);
  r->late_max = nl ? late[nl - 1] : 0;
  free(late);
}

/* ---- one server ---- */

static pid_t start_clients(uint16_t port, int chan_w, pid_t kids[]) {
  pid_t pgid = 0;
  for (unsigned p = 0; p < n_procs; p++) {
    unsigned lo = n_total * p / n_procs, hi = n_total * (p + 1) / n_procs;
    kids[p] = fork();
    if (kids[p] == 0) {
      setpgid(0, pgid);
      run_clients(lo, hi, port, chan_w);
      _exit(0);
    }
    setpgid(kids[p], pgid); /* both sides, so it holds before either runs */
    if (pgid == 0)
      pgid = kids[p];
  }
  return pgid;
}

/* Starts the server, the clients, holds, freezes them, collects closes. */
static int measure(const char *label, char *const argv[], uint16_t port, result *r) {
  char out_path[] = "/tmp/bench-freeze-XXXXXX";
  pid_t srv, kids[MAX_PROCS], pgid;
  uint64_t t0, freeze;
  int chan[2], ep, fd = mkstemp(out_path);
  unsigned open = 0, closed = 0, closed_before;
  double cpu0;
  memset(r, 0, sizeof *r);
  r->label = label;
  r->cpu_us = -1;
  if (fd < 0)
    return -1;
  close(fd);
  memset(slots, 0, n_total * sizeof *slots);
  memset(close_ns, 0, n_total * sizeof *close_ns);
  *n_failed = 0;
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, chan) != 0 ||
      (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
    return -1;
  {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, chan[0], &ev) != 0)
      return -1;
  }
  srv = bench_spawn(argv, out_path);
  if (srv < 0 || bench_wait_listening(srv, port) != 0) {
    fprintf(stderr, "bench-freeze: %s did not start listening on port %u\n", label, port);
    unlink(out_path);
    return -1;
  }
  pgid = start_clients(port, chan[1], kids);
  t0 = bench_now_ns();
  while (open + *n_failed < n_total && bench_now_ns() - t0 < 120000000000ull) {
    open += take_fds(chan[0], ep);
    closed += watch_closes(ep, 20);
  }
  if (open < n_total || closed > 0)
    fprintf(stderr, "bench-freeze: %s: %u of %u clients open, %u closed before the freeze\n", label,
            open, n_total, closed);
  t0 = bench_now_ns();
  while (bench_now_ns() - t0 < (uint64_t)hold_s * 1000000000u)
    closed += watch_closes(ep, 100);
  memset(close_ns, 0, n_total * sizeof *close_ns); /* closes before the freeze do not count */
  r->frozen = open - closed;
  closed_before = closed;
  cpu0 = bench_proc_cpu_seconds(srv, NULL);
  freeze = bench_now_ns();
  killpg(pgid, SIGSTOP);
  fprintf(stderr, "bench-freeze: %s (pid %d): %u clients frozen\n", label, (int)srv, r->frozen);
  while (closed < open && bench_now_ns() - freeze < (uint64_t)(timeout_ms + 3000) * 1000000u)
    closed += watch_closes(ep, 50);
  if (closed > closed_before && cpu0 >= 0)
    r->cpu_us = (bench_proc_cpu_seconds(srv, NULL) - cpu0) * 1e6 / (closed - closed_before);
  bench_stop(srv);
  killpg(pgid, SIGKILL);
  for (unsigned p = 0; p < n_procs; p++)
    waitpid(kids[p], NULL, 0);
  for (unsigned i = 0; i < n_total; i++)
    if (pfd[i] >= 0) {
      close(pfd[i]);
      pfd[i] = -1;
    }
  close(ep);
  close(chan[0]);
  close(chan[1]);
  close_lateness(r);
  read_verdicts(out_path, r);
  if (getenv("BENCH_FREEZE_KEEP") == NULL)
    unlink(out_path);
  else
    fprintf(stderr, "bench-freeze: %s's output kept in %s\n", label, out_path);
  return 0;
}

static void print_result(const result *r) {
  printf("%-14s %6u %6u %6u %5u %7.1f %8.1f %7.1f %7.1f", r->label, r->frozen, r->closed, r->unsure,
         r->early, r->late_min, r->late_p50, r->late_p99, r->late_max);
  if (r->cpu_us >= 0)
    printf(" %6.1f", r->cpu_us);
  else
    printf(" %6s", "-");
  if (r->has_silent)
    printf("   %6u %5u %4.0f/%-4.0f/%-5.0f\n", r->verdicts, r->early_silent, r->silent_p50,
           r->silent_p99, r->silent_max);
  else
    printf("   %6s %5s %16s\n", "-", "-", "-");
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench-freeze [-n N] [-p PROCS] [-i PING_MS] [-t TIMEOUT_MS] [--hold S]\n"
          "                    [--vigil LABEL=PATH]... [--baseline PATH] [--no-baseline]\n");
  return 2;
}

static int parse_args(int argc, char **argv, char **labels, char **paths, unsigned *nv,
                      const char **base_path) {
  for (int a = 1; a < argc; a++) {
    const char *v = a + 1 < argc ? argv[a + 1] : NULL;
    if (strcmp(argv[a], "--no-baseline") == 0) {
      *base_path = "";
      continue;
    }
    if (v == NULL)
      return -1;
    if (strcmp(argv[a], "-n") == 0)
      n_total = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[a], "-p") == 0)
      n_procs = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[a], "-i") == 0)
      ping_ms = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[a], "-t") == 0)
      timeout_ms = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[a], "--hold") == 0)
      hold_s = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[a], "--baseline") == 0)
      *base_path = v;
    else if (strcmp(argv[a], "--vigil") == 0 && *nv < MAX_SERVERS && strchr(v, '=') != NULL) {
      labels[*nv] = strdup(v);
      paths[*nv] = strchr(labels[*nv], '=');
      *paths[*nv]++ = '\0';
      (*nv)++;
    } else
      return -1;
    a++;
  }
  return n_total == 0 || n_procs == 0 || n_procs > MAX_PROCS || ping_ms == 0 ||
                 timeout_ms < 2 * ping_ms
             ? -1
             : 0;
}

int main(int argc, char **argv) {
  char dir[4096], def_vigil[4200], def_base[4200];
  char *labels[MAX_SERVERS], *paths[MAX_SERVERS];
  const char *base_path = NULL;
  unsigned nv = 0, nres = 0;
  result res[MAX_SERVERS + 1];
  unsigned long lim;

  bench_self_dir(dir, sizeof dir);
  snprintf(def_vigil, sizeof def_vigil, "%s/vigil", dir);
  snprintf(def_base, sizeof def_base, "%s/baseline-uv-heartbeat", dir);
  if (parse_args(argc, argv, labels, paths, &nv, &base_path) != 0)
    return usage();
  if (nv == 0) {
    labels[0] = "vigil";
    paths[0] = def_vigil;
    nv = 1;
  }
  if (base_path == NULL)
    base_path = access(def_base, X_OK) == 0 ? def_base : "";
  lim = bench_raise_nofile();
  if (lim < (unsigned long)n_total + 64 || lim < n_total / n_procs + 64) {
    fprintf(stderr, "bench-freeze: -n %u needs %u descriptors; the limit is %lu\n", n_total,
            n_total + 64, lim);
    return 2;
  }
  slots = mmap(NULL, n_total * sizeof *slots + 64, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  close_ns = calloc(n_total, sizeof *close_ns);
  pfd = malloc(n_total * sizeof *pfd);
  if (slots == MAP_FAILED || close_ns == NULL || pfd == NULL)
    return 1;
  n_failed = (volatile unsigned *)(void *)(slots + n_total);
  for (unsigned i = 0; i < n_total; i++)
    pfd[i] = -1;
  for (unsigned i = 0; i <= nv; i++) {
    char port_s[16], addr_s[40], iv_s[32], to_s[32], max_s[32], to_ms_s[32];
    uint16_t port = bench_free_port();
    snprintf(port_s, sizeof port_s, "%u", port);
    snprintf(addr_s, sizeof addr_s, "127.0.0.1:%u", port);
    snprintf(iv_s, sizeof iv_s, "%ums", ping_ms);
    snprintf(to_s, sizeof to_s, "%ums", timeout_ms);
    snprintf(max_s, sizeof max_s, "%u", n_total + 100);
    snprintf(to_ms_s, sizeof to_ms_s, "%u", timeout_ms);
    if (i < nv) {
      char *const av[] = {paths[i], "serve",       addr_s, "--interval", iv_s, "--timeout",
                          to_s,     "--max-conns", max_s,  "--json",     NULL};
      if (measure(labels[i], av, port, &res[nres]) == 0)
        nres++;
    } else if (base_path[0] != '\0') {
      char *const av[] = {(char *)base_path, "--host", "127.0.0.1", "--port", port_s,
                          "--timeout-ms",    to_ms_s,  NULL};
      if (measure("libuv-timeout", av, port, &res[nres]) == 0)
        nres++;
    }
  }
  printf("\nbench-freeze: %u clients in %u processes frozen at once (SIGSTOP); ping every %u ms, "
         "interval %u ms, timeout %u ms\n",
         n_total, n_procs, ping_ms, ping_ms, timeout_ms);
  printf("close-to: when the client's socket saw the server close, minus (its last frame sent + "
         "timeout), ms: min, p50, p99, max; < 0 is early\n"
         "silent-to: vigil's own silent_ms - timeout on its dead lines (heartbeat_timeout, "
         "peer_stalled; integer ms, measured at the loop's time of the verdict)\n"
         "cpu us: the server's CPU time (user + system, /proc, 10 ms ticks) from the freeze to "
         "the last close, per socket it closed\n");
  printf("%-14s %6s %6s %6s %5s %7s %8s %7s %7s %6s   %6s %5s %16s\n", "server", "frozen", "closed",
         "unsure", "early", "min", "close-to", "p99", "max", "cpu us", "dead", "early",
         "silent-to 50/99/max");
  for (unsigned i = 0; i < nres; i++)
    print_result(&res[i]);
  return nres == nv + (base_path[0] != '\0') ? 0 : 1;
}
