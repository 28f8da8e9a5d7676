/* bench-presence: what does presence in Redis cost, and how fast is it?
 *
 * Three figures (issue 9), from one run against a redis-server of the
 * bench's own (a unix socket in a temp dir, --save "" --appendonly no,
 * killed by pid at the end, on failure, and by the kernel should the bench
 * itself die: PR_SET_PDEATHSIG):
 *
 * 1. Churn, side by side. C client slots connect, send HELLO, wait for the
 *    WELCOME and close at once (a FIN: the server sees the peer close),
 *    then connect again with the next id (ids b0..b9999, reused), as fast
 *    as the server answers. The same load runs against `vigil serve` and
 *    `vigil serve --presence unix://...`, alternately for R rounds of W
 *    seconds each; a cycle is one opening and one death. Over each window
 *    the server's CPU (utime + stime from /proc/PID/stat) is divided by the
 *    cycles completed: the difference between the two servers is the added
 *    CPU per open + death. The least disturbed round of each (least CPU per
 *    cycle) is compared, to keep other tenants of a shared machine out.
 *
 * 2. Updates per second. During the --presence windows a subscriber in this
 *    process (a plain socket and hiredis's reply parser, in a thread) counts
 *    the open and dead events Redis publishes: every update is one EVAL
 *    that publishes one event, so events per second are the updates per
 *    second that reached Redis. After the load stops, the time until the
 *    last event arrives is the backlog the server still had queued. The
 *    events of the whole run (warm-up and drain included) are printed next
 *    to 2 x the cycles: fewer would be updates dropped from a full queue
 *    (handshakes cut short when the load stops can add a few of each).
 *    redis-server's own CPU per update is read like the server's.
 *
 * 3. Death to `vigil watch`. N clients connect to `vigil serve --presence`
 *    and stay; once `vigil watch` (a child process, its stdout a pipe read by
 *    a thread of this process) printed their N open events, the bench closes
 *    them one every P ms, noting the time of each close(); the time from a
 *    close to the `dead` line of its id on watch's stdout is the latency
 *    (p50 / p99 / max). The in-process subscriber times the same events, so
 *    the share of watch itself (hiredis, printing, the pipe) shows.
 *
 * The clients, the servers, Redis and watch share this machine's cores:
 * figures are for loopback and a unix socket, not a network.
 *
 * usage: bench-presence [-c SLOTS] [-w SECONDS] [-r ROUNDS] [-n CLIENTS]
 *                       [-p CLOSE_MS] [--vigil PATH] [--redis-server PATH]
 * defaults: -c 32 -w 5 -r 2 -n 1000 -p 2 (about 40 s)
 * Linux only (epoll, /proc). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util-bench.h"
#include "vigil.h"

#define ID_POOL 10000u
#define RX_CAP 256
#define MAX_ROUNDS 10

/* ---- processes of the bench's own ---------------------------------------- */

static pid_t redis_pid = -1;
static char redis_dir[64], redis_sock[96], presence_url[160];

/* fork + exec with stdout to out_fd (-1: /dev/null), stderr too if quiet;
 * the child dies with the bench (PR_SET_PDEATHSIG), so nothing outlives a
 * crashed run. */
static pid_t spawn(char *const argv[], int out_fd, int quiet) {
  pid_t pid = fork();
  if (pid == 0) {
    int out = out_fd >= 0 ? out_fd : open("/dev/null", O_WRONLY);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (quiet) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0 && dup2(null, 2) >= 0)
        close(null);
    }
    if (out >= 0 && out != 1) {
      dup2(out, 1);
      close(out);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "bench-presence: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

static int redis_answers(void) {
  redisContext *c = redisConnectUnix(redis_sock);
  redisReply *r;
  int ok;
  if (c == NULL || c->err != 0) {
    redisFree(c);
    return 0;
  }
  r = redisCommand(c, "PING");
  ok = r != NULL && r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  redisFree(c);
  return ok;
}

/* 0 once it answers PING; -2 if it is not installed, -1 otherwise. */
static int redis_start(const char *exe) {
  char *argv[] = {(char *)exe,    "--port", "0",     "--unixsocket", redis_sock,   "--save",  "",
                  "--appendonly", "no",     "--dir", redis_dir,      "--loglevel", "warning", NULL};
  snprintf(redis_dir, sizeof redis_dir, "/tmp/vigil-bench-redis-XXXXXX");
  if (mkdtemp(redis_dir) == NULL)
    return -1;
  snprintf(redis_sock, sizeof redis_sock, "%s/redis.sock", redis_dir);
  snprintf(presence_url, sizeof presence_url, "unix://%s", redis_sock);
  argv[4] = redis_sock;
  argv[10] = redis_dir;
  if ((redis_pid = spawn(argv, -1, 0)) < 0)
    return -1;
  for (int k = 0; k < 200; k++) {
    int status;
    if (redis_answers())
      return 0;
    if (waitpid(redis_pid, &status, WNOHANG) == redis_pid) {
      redis_pid = -1;
      return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -2 : -1;
    }
    bench_sleep_ms(10);
  }
  return -1;
}

/* Kills Redis by its pid and removes its directory; every exit path of
 * main comes through here. */
static void redis_cleanup(void) {
  if (redis_pid > 0) {
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = -1;
  }
  if (redis_dir[0] != '\0') {
    unlink(redis_sock);
    rmdir(redis_dir);
    redis_dir[0] = '\0';
  }
}

/* One command on a fresh connection; the integer reply, -1 on failure. */
static long long redis_int(const char *cmd) {
  redisContext *c = redisConnectUnix(redis_sock);
  redisReply *r;
  long long v = -1;
  if (c == NULL || c->err != 0) {
    redisFree(c);
    return -1;
  }
  r = redisCommand(c, cmd);
  if (r != NULL && r->type == REDIS_REPLY_INTEGER)
    v = r->integer;
  else if (r != NULL && r->type == REDIS_REPLY_STATUS)
    v = 0;
  else if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[1]->type == REDIS_REPLY_INTEGER)
    v = r->element[1]->integer; /* PUBSUB NUMSUB channel */
  freeReplyObject(r);
  redisFree(c);
  return v;
}

/* ---- the subscriber in this process ----------------------------------------- */

typedef struct events {
  pthread_t th;
  volatile int stop;
  int fd;
  pthread_mutex_t mu;
  uint64_t opens, deads, last_ns;
  uint64_t *dead_at; /* latency phase: arrival of "dead" of L<i>, 0 if not yet */
  uint64_t *open_at;
  unsigned n_lat;
  unsigned long long junk; /* lines that were not an event of ours */
} events;

/* "event":"open"|"dead" and, for ids L<i>, records when it arrived. */
static void note_event(events *e, const char *s, size_t len, uint64_t now) {
  const char *id;
  int dead;
  char buf[1024];
  if (len >= sizeof buf) {
    e->junk++;
    return;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  dead = strstr(buf, "\"event\":\"dead\"") != NULL;
  if (!dead && strstr(buf, "\"event\":\"open\"") == NULL) {
    e->junk++;
    return;
  }
  pthread_mutex_lock(&e->mu);
  if (dead)
    e->deads++;
  else
    e->opens++;
  e->last_ns = now;
  if ((id = strstr(buf, "\"id\":\"L")) != NULL && e->n_lat > 0) {
    unsigned long i = strtoul(id + 7, NULL, 10);
    uint64_t *at = dead ? e->dead_at : e->open_at;
    if (i < e->n_lat && at[i] == 0)
      at[i] = now;
  }
  pthread_mutex_unlock(&e->mu);
}

static void *subscriber(void *arg) {
  events *e = arg;
  redisReader *rd = redisReaderCreate();
  char buf[65536];
  while (!e->stop && rd != NULL) {
    struct pollfd p = {e->fd, POLLIN, 0};
    ssize_t n;
    void *reply;
    if (poll(&p, 1, 100) <= 0)
      continue;
    if ((n = read(e->fd, buf, sizeof buf)) <= 0)
      break;
    uint64_t now = bench_now_ns();
    if (redisReaderFeed(rd, buf, (size_t)n) != REDIS_OK)
      break;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
      const redisReply *m = reply;
      if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
          m->element[2]->type == REDIS_REPLY_STRING)
        note_event(e, m->element[2]->str, m->element[2]->len, now);
      freeReplyObject(reply);
    }
  }
  redisReaderFree(rd);
  return NULL;
}

static int events_start(events *e, unsigned n_lat) {
  struct sockaddr_un a;
  static const char sub[] = "SUBSCRIBE vigil:events\r\n";
  memset(e, 0, sizeof *e);
  pthread_mutex_init(&e->mu, NULL);
  e->n_lat = n_lat;
  if (n_lat > 0) {
    e->dead_at = calloc(n_lat, sizeof(uint64_t));
    e->open_at = calloc(n_lat, sizeof(uint64_t));
    if (e->dead_at == NULL || e->open_at == NULL)
      return -1;
  }
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", redis_sock);
  if ((e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
      connect(e->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(e->fd, sub, sizeof sub - 1) != (ssize_t)(sizeof sub - 1))
    return -1;
  return pthread_create(&e->th, NULL, subscriber, e) == 0 ? 0 : -1;
}

static void events_stop(events *e) {
  e->stop = 1;
  pthread_join(e->th, NULL);
  close(e->fd);
  free(e->dead_at);
  free(e->open_at);
  pthread_mutex_destroy(&e->mu);
}

static void events_read(events *e, uint64_t *opens, uint64_t *deads, uint64_t *last_ns) {
  pthread_mutex_lock(&e->mu);
  *opens = e->opens;
  *deads = e->deads;
  if (last_ns != NULL)
    *last_ns = e->last_ns;
  pthread_mutex_unlock(&e->mu);
}

/* ---- vigil watch, timed from its stdout --------------------------------------- */

typedef struct watcher {
  pthread_t th;
  pid_t pid;
  int fd; /* the read end of its stdout */
  volatile int stop;
  events ev; /* the same bookkeeping, fed by lines */
} watcher;

static void *watch_reader(void *arg) {
  watcher *w = arg;
  char buf[65536];
  size_t have = 0;
  while (!w->stop) {
    struct pollfd p = {w->fd, POLLIN, 0};
    ssize_t n;
    char *nl, *line;
    if (poll(&p, 1, 100) <= 0)
      continue;
    if ((n = read(w->fd, buf + have, sizeof buf - have)) <= 0)
      break;
    uint64_t now = bench_now_ns();
    have += (size_t)n;
    line = buf;
    while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
      note_event(&w->ev, line, (size_t)(nl - line), now);
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf)
      have = 0; /* a line longer than the buffer is not ours */
  }
  return NULL;
}

static int watch_start(watcher *w, const char *vigil, unsigned n_lat) {
  int p[2];
  char *argv[] = {(char *)vigil, "watch", "--presence", presence_url, NULL};
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->ev.mu, NULL);
  w->ev.n_lat = n_lat;
  w->ev.dead_at = calloc(n_lat, sizeof(uint64_t));
  w->ev.open_at = calloc(n_lat, sizeof(uint64_t));
  if (w->ev.dead_at == NULL || w->ev.open_at == NULL || pipe2(p, O_CLOEXEC) != 0)
    return -1;
  w->pid = spawn(argv, p[1], 1);
  close(p[1]);
  w->fd = p[0];
  if (w->pid < 0)
    return -1;
  return pthread_create(&w->th, NULL, watch_reader, w) == 0 ? 0 : -1;
}

static void watch_stop(watcher *w) {
  if (w->pid > 0) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
  }
  w->stop = 1;
  pthread_join(w->th, NULL);
  close(w->fd);
  free(w->ev.dead_at);
  free(w->ev.open_at);
}

/* ---- the clients ------------------------------------------------------------- */

enum { S_IDLE, S_CONNECTING, S_HELLO, S_OPEN };

typedef struct slot {
  int fd;
  uint8_t state;
  uint16_t rx_len;
  unsigned id;
  char prefix;
  uint8_t rx[RX_CAP];
} slot;

static int epfd = -1;
static slot *slots;
static unsigned n_slots;
static uint64_t cycles, failures;
static unsigned next_id, n_open;
static int churning; /* a WELCOME closes the slot and starts the next */

static void slot_close(slot *s, int reset) {
  if (s->fd >= 0) {
    if (reset) {
      struct linger lg = {1, 0};
      setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
  }
  if (s->state == S_OPEN)
    n_open--;
  s->state = S_IDLE;
  s->rx_len = 0;
}

static int slot_connect(slot *s, unsigned i, uint16_t port) {
  struct epoll_event ev;
  s->fd = bench_loopback_connect(i, port);
  if (s->fd < 0) {
    int err = s->fd;
    s->fd = -1;
    return err;
  }
  ev.events = EPOLLOUT;
  ev.data.u32 = i;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0)
    return -errno;
  s->state = S_CONNECTING;
  return 0;
}

static void send_hello(slot *s, unsigned i) {
  uint8_t out[VIGIL_WIRE_MAX_CONTROL_FRAME];
  char id[16];
  vigil_hello h;
  struct epoll_event ev;
  int n;
  snprintf(id, sizeof id, "%c%u", s->prefix, s->id);
  memset(&h, 0, sizeof h);
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = 5000;
  h.timeout_ms = 15000;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(out, sizeof out, &h);
  ev.events = EPOLLIN;
  ev.data.u32 = i;
  if (n <= 0 || epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0 ||
      send(s->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
    failures++;
    slot_close(s, 1);
    return;
  }
  s->state = S_HELLO;
}

static void start_next(slot *s, unsigned i, uint16_t port) {
  s->prefix = 'b';
  s->id = next_id++ % ID_POOL;
  if (slot_connect(s, i, port) != 0)
    failures++;
}

static void on_frame(slot *s, unsigned i, const vigil_frame *f, uint16_t port) {
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};
  if (f->type == VIGIL_FRAME_WELCOME && s->state == S_HELLO) {
    s->state = S_OPEN;
    n_open++;
    if (churning) {
      cycles++;
      slot_close(s, 0);
      start_next(s, i, port);
    }
  } else if (f->type == VIGIL_FRAME_PING) {
    (void)send(s->fd, pong, sizeof pong, MSG_NOSIGNAL);
  } else if (f->type == VIGIL_FRAME_CLOSE) {
    failures++;
    slot_close(s, 1);
    if (churning)
      start_next(s, i, port);
  }
}

static void on_readable(slot *s, unsigned i, uint16_t port) {
  ssize_t r = recv(s->fd, s->rx + s->rx_len, RX_CAP - s->rx_len, 0);
  size_t off = 0;
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    failures++;
    slot_close(s, 1);
    if (churning)
      start_next(s, i, port);
    return;
  }
  s->rx_len = (uint16_t)(s->rx_len + r);
  while (off < s->rx_len && s->fd >= 0) {
    vigil_frame f;
    int n = vigil_wire_decode(s->rx + off, s->rx_len - off, VIGIL_WIRE_MAX_CHUNK, &f);
    if (n == VIGIL_ENEEDMORE)
      break;
    if (n < 0) {
      failures++;
      slot_close(s, 1);
      return;
    }
    off += (size_t)n;
    on_frame(s, i, &f, port); /* may close s, and reopen it empty */
    if (s->state == S_CONNECTING || s->state == S_IDLE)
      return;
  }
  memmove(s->rx, s->rx + off, s->rx_len - off);
  s->rx_len = (uint16_t)(s->rx_len - off);
}

static void poll_once(int timeout_ms, uint16_t port) {
  struct epoll_event evs[256];
  int n = epoll_wait(epfd, evs, 256, timeout_ms);
  for (int k = 0; k < n; k++) {
    unsigned i = evs[k].data.u32;
    slot *s = &slots[i];
    if (s->state == S_CONNECTING) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
        failures++;
        slot_close(s, 1);
        if (churning)
          start_next(s, i, port);
      } else {
        send_hello(s, i);
      }
    } else if (s->state != S_IDLE) {
      on_readable(s, i, port);
    }
  }
}

static void close_all(void) {
  for (unsigned i = 0; i < n_slots; i++)
    slot_close(&slots[i], 1);
}

/* ---- the server under test ------------------------------------------------------ */

static pid_t serve_start(const char *vigil, uint16_t port, int presence) {
  char addr[32];
  char *argv[] = {(char *)vigil, "serve",  addr,    "--presence",
                  presence_url,  "--node", "bench", (char *)NULL};
  pid_t pid;
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  if (!presence)
    argv[3] = NULL;
  if ((pid = spawn(argv, -1, 0)) < 0)
    return -1;
  if (bench_wait_listening(pid, port) != 0) {
    bench_stop(pid);
    return -1;
  }
  if (presence) { /* connected to Redis: its node heartbeat is there */
    for (int k = 0; k < 200 && redis_int("HLEN vigil:holders") < 1; k++)
      bench_sleep_ms(10);
    if (redis_int("HLEN vigil:holders") < 1) {
      fprintf(stderr, "bench-presence: vigil serve --presence never reached Redis\n");
      bench_stop(pid);
      return -1;
    }
  }
  return pid;
}

/* ---- 1 + 2: churn ------------------------------------------------------------------ */

typedef struct churn_result {
  double seconds, cpu_s, redis_cpu_s;
  uint64_t cycles, all_cycles, events, all_events;
  double drain_ms;
  int ok;
} churn_result;

static int churn_round(const char *vigil, int presence, unsigned window_s, churn_result *res) {
  uint16_t port = bench_free_port();
  pid_t pid;
  events ev;
  uint64_t t0, t1, c0, o0, d0, o1, d1, last;
  double cpu0, rcpu0;
  memset(res, 0, sizeof *res);
  if (presence && redis_int("FLUSHALL") != 0)
    return -1;
  if (port == 0 || (pid = serve_start(vigil, port, presence)) < 0)
    return -1;
  if (presence && events_start(&ev, 0) != 0) {
    bench_stop(pid);
    return -1;
  }
  churning = 1;
  cycles = failures = 0;
  for (unsigned i = 0; i < n_slots; i++)
    start_next(&slots[i], i, port);
  t0 = bench_now_ns() + 1000000000ull; /* one second of warm-up */
  while (bench_now_ns() < t0)
    poll_once(1, port);
  c0 = cycles;
  cpu0 = bench_proc_cpu_seconds(pid, NULL);
  rcpu0 = bench_proc_cpu_seconds(redis_pid, NULL);
  if (presence)
    events_read(&ev, &o0, &d0, NULL);
  t1 = t0 + (uint64_t)window_s * 1000000000ull;
  while (bench_now_ns() < t1)
    poll_once(1, port);
  res->seconds = (double)(bench_now_ns() - t0) / 1e9;
  res->cycles = cycles - c0;
  res->cpu_s = bench_proc_cpu_seconds(pid, NULL) - cpu0;
  res->redis_cpu_s = bench_proc_cpu_seconds(redis_pid, NULL) - rcpu0;
  if (presence) {
    events_read(&ev, &o1, &d1, NULL);
    res->events = o1 + d1 - o0 - d0;
  }
  churning = 0;
  close_all();
  t1 = bench_now_ns();
  res->all_cycles = cycles;
  if (presence) { /* the backlog: until no event came for 500 ms (10 s at most) */
    uint64_t give_up = t1 + 10000000000ull;
    do {
      bench_sleep_ms(50);
      events_read(&ev, &o1, &d1, &last);
    } while (bench_now_ns() < give_up && bench_now_ns() - last < 500000000ull);
    res->all_events = o1 + d1;
    res->drain_ms = last > t1 ? (double)(last - t1) / 1e6 : 0;
    events_stop(&ev);
  }
  bench_stop(pid);
  res->ok = res->cycles > 0 && res->cpu_s >= 0;
  return res->ok ? 0 : -1;
}

static double us_per_cycle(const churn_result *r) {
  return r->cycles > 0 ? r->cpu_s * 1e6 / (double)r->cycles : 0;
}

/* ---- 3: death to watch ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* p50 / p99 / max of at[i] - closed[i] in ms; the count that arrived. */
static unsigned latencies(const uint64_t *at, const uint64_t *closed, unsigned n, double out[3]) {
  uint64_t *d = calloc(n, sizeof(uint64_t));
  unsigned k = 0;
  if (d == NULL)
    return 0;
  for (unsigned i = 0; i < n; i++)
    if (at[i] != 0 && closed[i] != 0)
      d[k++] = at[i] > closed[i] ? at[i] - closed[i] : 0;
  qsort(d, k, sizeof(uint64_t), cmp_u64);
  if (k > 0) {
    out[0] = (double)d[k / 2] / 1e6;
    out[1] = (double)d[(size_t)((double)k * 0.99) < k ? (size_t)((double)k * 0.99) : k - 1] / 1e6;
    out[2] = (double)d[k - 1] / 1e6;
  }
  free(d);
  return k;
}

static unsigned count_set(events *e, const uint64_t *at) {
  unsigned k = 0;
  pthread_mutex_lock(&e->mu);
  for (unsigned i = 0; i < e->n_lat; i++)
    k += at[i] != 0;
  pthread_mutex_unlock(&e->mu);
  return k;
}

static int latency_run(const char *vigil, unsigned n, unsigned every_ms) {
  uint16_t port = bench_free_port();
  uint64_t *closed = calloc(n, sizeof(uint64_t)), give_up;
  double w[3] = {0}, s[3] = {0};
  unsigned got_w, got_s, started = 0;
  watcher wt;
  events ev;
  pid_t pid = -1;
  int rc = -1;
  if (closed == NULL || redis_int("FLUSHALL") != 0 || port == 0)
    goto out;
  if (watch_start(&wt, vigil, n) != 0)
    goto out;
  if (events_start(&ev, n) != 0)
    goto out_watch;
  for (int k = 0; k < 200 && redis_int("PUBSUB NUMSUB vigil:events") < 2; k++)
    bench_sleep_ms(10);
  if ((pid = serve_start(vigil, port, 1)) < 0)
    goto out_ev;
  churning = 0;
  failures = 0;
  n_open = 0;
  give_up = bench_now_ns() + 20000000000ull;
  while ((n_open < n || count_set(&wt.ev, wt.ev.open_at) < n) && bench_now_ns() < give_up) {
    while (started < n && started - n_open < 128) {
      slots[started].prefix = 'L';
      slots[started].id = started;
      if (slot_connect(&slots[started], started, port) != 0)
        goto out_serve;
      started++;
    }
    poll_once(5, port);
  }
  if (n_open < n || count_set(&wt.ev, wt.ev.open_at) < n) {
    fprintf(stderr, "bench-presence: %u of %u clients open, %u opens on watch\n", n_open, n,
            count_set(&wt.ev, wt.ev.open_at));
    goto out_serve;
  }
  for (unsigned i = 0; i < n; i++) { /* one close every every_ms */
    uint64_t due = bench_now_ns() + (uint64_t)every_ms * 1000000u;
    closed[i] = bench_now_ns();
    slot_close(&slots[i], 0);
    while (bench_now_ns() < due)
      poll_once(1, port);
  }
  give_up = bench_now_ns() + 10000000000ull;
  while (count_set(&wt.ev, wt.ev.dead_at) < n && bench_now_ns() < give_up)
    bench_sleep_ms(20);
  got_w = latencies(wt.ev.dead_at, closed, n, w);
  got_s = latencies(ev.dead_at, closed, n, s);
  printf("\ndeath to event: %u clients of vigil serve --presence closed one every %u ms\n", n,
         every_ms);
  printf("  %-28s %8s %8s %8s %8s\n", "", "arrived", "p50 ms", "p99 ms", "max ms");
  printf("  %-28s %8u %8.2f %8.2f %8.2f\n", "vigil watch (its stdout)", got_w, w[0], w[1], w[2]);
  printf("  %-28s %8u %8.2f %8.2f %8.2f\n", "subscriber in the bench", got_s, s[0], s[1], s[2]);
  rc = got_w == n ? 0 : -1;
out_serve:
  close_all();
  bench_stop(pid);
out_ev:
  events_stop(&ev);
out_watch:
  watch_stop(&wt);
out:
  free(closed);
  return rc;
}

/* ---- main ------------------------------------------------------------------------------ */

static int usage(void) {
  fprintf(stderr, "usage: bench-presence [-c SLOTS] [-w SECONDS] [-r ROUNDS] [-n CLIENTS]\n"
                  "                      [-p CLOSE_MS] [--vigil PATH] [--redis-server PATH]\n");
  return 2;
}

static int run(const char *vigil, unsigned window_s, unsigned rounds, unsigned n_lat,
               unsigned every_ms) {
  churn_result off[MAX_ROUNDS], on[MAX_ROUNDS];
  const churn_result *bo = NULL, *bn = NULL;
  printf("churn: %u client slots, each connect + HELLO + WELCOME + close, then the next id;\n"
         "%u rounds of %u s per server, alternating; server CPU from /proc/PID/stat\n\n",
         n_slots, rounds, window_s);
  printf("  %-6s %-7s %9s %12s %10s %11s %10s %10s %11s\n", "round", "server", "cycles/s",
         "us CPU/cycle", "updates/s", "backlog ms", "2 x cycles", "events", "redis us/u");
  for (unsigned r = 0; r < rounds; r++) {
    for (int presence = 0; presence <= 1; presence++) {
      churn_result *res = presence ? &on[r] : &off[r];
      if (churn_round(vigil, presence, window_s, res) != 0) {
        fprintf(stderr, "bench-presence: churn round failed (%s)\n", presence ? "redis" : "local");
        return 1;
      }
      printf("  %-6u %-7s %9.0f %12.2f", r + 1, presence ? "redis" : "local",
             (double)res->cycles / res->seconds, us_per_cycle(res));
      if (presence)
        printf(" %10.0f %11.0f %10llu %10llu %11.2f", (double)res->events / res->seconds,
               res->drain_ms, 2 * (unsigned long long)res->all_cycles,
               (unsigned long long)res->all_events,
               res->events > 0 ? res->redis_cpu_s * 1e6 / (double)res->events : 0);
      printf("\n");
      fflush(stdout);
      if (!presence && (bo == NULL || us_per_cycle(res) < us_per_cycle(bo)))
        bo = res;
      if (presence && (bn == NULL || us_per_cycle(res) < us_per_cycle(bn)))
        bn = res;
    }
  }
  printf("\nleast disturbed rounds: local %.2f us, redis %.2f us of server CPU per open + death:\n"
         "presence in Redis adds %.2f us per open + death (%.2fx)\n",
         us_per_cycle(bo), us_per_cycle(bn), us_per_cycle(bn) - us_per_cycle(bo),
         us_per_cycle(bo) > 0 ? us_per_cycle(bn) / us_per_cycle(bo) : 0);
  fflush(stdout);
  return latency_run(vigil, n_lat, every_ms) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  char vigil[4200], self[4096];
  const char *redis_exe = "redis-server";
  unsigned window_s = 5, rounds = 2, n_lat = 1000, every_ms = 2;
  int rc;
  n_slots = 32;
  bench_self_dir(self, sizeof self);
  snprintf(vigil, sizeof vigil, "%s/vigil", self);
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      return usage();
    if (strcmp(argv[i], "-c") == 0)
      n_slots = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-w") == 0)
      window_s = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-r") == 0)
      rounds = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-n") == 0)
      n_lat = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "-p") == 0)
      every_ms = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(argv[i], "--vigil") == 0)
      snprintf(vigil, sizeof vigil, "%s", v);
    else if (strcmp(argv[i], "--redis-server") == 0)
      redis_exe = v;
    else
      return usage();
    i++;
  }
  if (n_slots == 0 || n_slots > 4096 || window_s == 0 || rounds == 0 || rounds > MAX_ROUNDS ||
      n_lat == 0 || n_lat > 100000)
    return usage();
  signal(SIGPIPE, SIG_IGN);
  (void)bench_raise_nofile();
  slots = calloc(n_slots > n_lat ? n_slots : n_lat, sizeof(slot));
  if (slots == NULL || (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    return 1;
  for (unsigned i = 0; i < (n_slots > n_lat ? n_slots : n_lat); i++)
    slots[i].fd = -1;
  if ((rc = redis_start(redis_exe)) != 0) {
    redis_cleanup();
    if (rc == -2) { /* `make bench` goes on to the other benchmarks */
      printf("bench-presence: skipped, %s is not installed (Debian: redis-server)\n", redis_exe);
      return 0;
    }
    fprintf(stderr, "bench-presence: %s did not start\n", redis_exe);
    return 1;
  }
  rc = run(vigil, window_s, rounds, n_lat, every_ms);
  redis_cleanup();
  free(slots);
  return rc;
}
