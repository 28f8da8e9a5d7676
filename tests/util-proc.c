/* See util-proc.h. Raw sockets work on POSIX and Winsock alike (errors
 * through util_net_error, so both speak VIGIL_E*); child processes,
 * namespaces and shell commands are POSIX only and report VIGIL_ENOTSUP on
 * Windows, where the tests that need them skip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef int raw_socklen;
#define RAW_NOSIGNAL 0
#define RAW_CLOEXEC 0
#define RAW_LEN(n) (int)(n) /* Winsock lengths are int */
#else
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
typedef socklen_t raw_socklen;
#define RAW_NOSIGNAL MSG_NOSIGNAL
#define RAW_CLOEXEC SOCK_CLOEXEC
#define RAW_LEN(n) (size_t)(n)
#endif

#include "util-net.h"
#include "util-proc.h"

/* ---- loop runner ---------------------------------------------------------- */

typedef struct watchdog {
  vigil_loop_timer t;
  int fired;
} watchdog;

static void on_watchdog(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop;
  ((watchdog *)(void *)t)->fired = 1;
}

int util_for_each_backend(int (*fn)(vigil_backend), const char *name) {
  static const vigil_backend all[] = {VIGIL_BACKEND_EPOLL, VIGIL_BACKEND_POLL, VIGIL_BACKEND_IOCP};
  vigil_loop probe;
  vigil_loop_options opts;
  size_t i;
  int ran = 0, rc;

  if (util_net_init() != 0) {
    fprintf(stderr, "SKIP: no sockets\n");
    return 77;
  }
  for (i = 0; i < sizeof all / sizeof all[0]; i++) {
    vigil_loop_options_init(&opts);
    opts.backend = all[i];
    if (vigil_loop_init(&probe, &opts) != 0)
      continue;
    fprintf(stderr, "[%s on %s]\n", name, vigil_loop_backend_name(&probe));
    (void)vigil_loop_close(&probe);
    rc = fn(all[i]);
    if (rc == 77)
      continue;
    if (rc != 0)
      return rc;
    ran++;
  }
  if (ran == 0) {
    fprintf(stderr, "SKIP: no loop backend runs %s here\n", name);
    return 77;
  }
  return 0;
}

int util_run_until(vigil_loop *loop, const int *flag, uint32_t ms) {
  return util_run_until_n(loop, flag, 1, ms);
}

int util_run_until_n(vigil_loop *loop, const int *counter, int target, uint32_t ms) {
  watchdog w;
  vigil_loop_timer_init(&w.t);
  w.fired = 0;
  vigil_loop_update_time(loop);
  vigil_loop_timer_arm(loop, &w.t, vigil_loop_now_ms(loop) + ms, on_watchdog);
  while ((counter == NULL || *counter < target) && !w.fired)
    (void)vigil_loop_run(loop, VIGIL_RUN_ONCE);
  vigil_loop_timer_cancel(loop, &w.t);
  return counter != NULL && *counter >= target;
}

void util_run_for(vigil_loop *loop, uint32_t ms) {
  (void)util_run_until(loop, NULL, ms);
}

/* ---- raw sockets (POSIX and Winsock) --------------------------------------- */

static vigil_os_socket raw_socket(int family) {
#if defined(_WIN32)
  SOCKET s = socket(family, SOCK_STREAM, 0);
  return s == INVALID_SOCKET ? VIGIL_INVALID_SOCKET : (vigil_os_socket)s;
#else
  return socket(family, SOCK_STREAM | RAW_CLOEXEC, 0);
#endif
}

static int fill_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, raw_socklen *len) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    *len = (raw_socklen)sizeof *a;
    return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1 ? 0 : VIGIL_EINVAL;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    *len = (raw_socklen)sizeof *a;
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : VIGIL_EINVAL;
  }
}

static void nodelay(vigil_os_socket s) {
  int one = 1;
  (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, (raw_socklen)sizeof one);
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                         : ((const struct sockaddr_in *)ss)->sin_port);
}

int util_raw_connect(const char *ip, uint16_t port, vigil_os_socket *out) {
  struct sockaddr_storage ss;
  raw_socklen len;
  vigil_os_socket fd;
  int err = util_net_init();
  *out = VIGIL_INVALID_SOCKET;
  if (err != 0)
    return err;
  if (fill_addr(ip, port, &ss, &len) != 0)
    return VIGIL_EINVAL;
  if ((fd = raw_socket(ss.ss_family)) == VIGIL_INVALID_SOCKET)
    return util_net_error();
  if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
    err = util_net_error();
    util_net_close(fd);
    return err;
  }
  nodelay(fd);
  *out = fd;
  return 0;
}

int util_raw_listen(const char *ip, uint16_t *port, vigil_os_socket *out) {
  return util_raw_listen_n(ip, port, 16, out);
}

int util_raw_listen_n(const char *ip, uint16_t *port, int backlog, vigil_os_socket *out) {
  struct sockaddr_storage ss;
  raw_socklen len;
  vigil_os_socket fd;
  int err = util_net_init();
  *out = VIGIL_INVALID_SOCKET;
  if (err != 0)
    return err;
  if (fill_addr(ip, *port, &ss, &len) != 0)
    return VIGIL_EINVAL;
  if ((fd = raw_socket(ss.ss_family)) == VIGIL_INVALID_SOCKET)
    return util_net_error();
#if !defined(_WIN32)
  {
    int one = 1; /* rebinding a port a previous test used */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
#endif
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    err = util_net_error();
    util_net_close(fd);
    return err;
  }
  *port = port_of(&ss);
  *out = fd;
  return 0;
}

static int wait_readable(vigil_os_socket fd, uint32_t timeout_ms) {
#if defined(_WIN32)
  fd_set set;
  struct timeval tv;
  int rc;
  FD_ZERO(&set);
  FD_SET((SOCKET)fd, &set);
  tv.tv_sec = (long)(timeout_ms / 1000);
  tv.tv_usec = (long)(timeout_ms % 1000) * 1000;
  rc = select(0, &set, NULL, NULL, &tv);
#else
  struct pollfd p;
  int rc;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  do
    rc = poll(&p, 1, (int)timeout_ms);
  while (rc < 0 && errno == EINTR);
#endif
  return rc > 0 ? 0 : rc == 0 ? VIGIL_EAGAIN : util_net_error();
}

int util_raw_accept(vigil_os_socket l, uint32_t timeout_ms, vigil_os_socket *out) {
  int rc = wait_readable(l, timeout_ms);
  *out = VIGIL_INVALID_SOCKET;
  if (rc != 0)
    return rc;
#if defined(_WIN32)
  {
    SOCKET a = accept((SOCKET)l, NULL, NULL);
    *out = a == INVALID_SOCKET ? VIGIL_INVALID_SOCKET : (vigil_os_socket)a;
  }
#else
  *out = accept(l, NULL, NULL);
#endif
  if (*out == VIGIL_INVALID_SOCKET)
    return util_net_error();
  nodelay(*out);
  return 0;
}

int util_raw_send(vigil_os_socket s, const void *p, size_t n) {
  const char *b = p;
  while (n > 0) {
    int chunk = n > 65536 ? 65536 : (int)n;
    long w = (long)send(s, b, RAW_LEN(chunk), RAW_NOSIGNAL);
    if (w < 0) {
      int err = util_net_error();
      if (err == VIGIL_EINTR)
        continue;
      return err;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

long util_raw_recv(vigil_os_socket s, void *p, size_t n, uint32_t timeout_ms) {
  long r;
  int rc = wait_readable(s, timeout_ms), chunk = n > 65536 ? 65536 : (int)n;
  if (rc != 0)
    return rc;
  do
    r = (long)recv(s, p, RAW_LEN(chunk), 0);
  while (r < 0 && util_net_error() == VIGIL_EINTR);
  return r < 0 ? util_net_error() : r;
}

uint16_t util_raw_local_port(vigil_os_socket s) {
  struct sockaddr_storage ss;
  raw_socklen len = (raw_socklen)sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(s, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return port_of(&ss);
}

void util_raw_close(vigil_os_socket s) {
  util_net_close(s);
}

void util_raw_reset(vigil_os_socket s) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = 0;
  (void)setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, (raw_socklen)sizeof lg);
  util_net_close(s);
}

/* ---- time, processes, namespaces ------------------------------------------ */

#if !defined(_WIN32)

uint64_t util_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t util_cpu_wait_ns(void) {
  /* Fields: time on CPU (ns), time waiting on a run queue (ns), slices. */
  char line[128], *p, *end;
  unsigned long long waited;
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  if (f == NULL)
    return 0;
  p = fgets(line, sizeof line, f);
  fclose(f);
  if (p == NULL)
    return 0;
  (void)strtoull(line, &end, 10);
  waited = strtoull(end, &p, 10);
  return p != end ? (uint64_t)waited : 0;
}

int util_netns_enter(void) {
  if (unshare(CLONE_NEWNET) != 0)
    return errno == EPERM ? VIGIL_EPERM : VIGIL_ENOTSUP;
  return util_sh("ip link set lo up") == 0 ? 0 : VIGIL_ENOTSUP;
}

int util_sh(const char *cmd) {
  return system(cmd) == 0 ? 0 : -1;
}

#define BLACKHOLE_MARK 0x5647 /* "VG" */

const char *util_blackhole_unavailable(void) {
#if defined(__linux__) && defined(SO_MARK)
  if (geteuid() != 0)
    return "not root: a private network namespace and nftables need root";
  if (util_sh("command -v nft >/dev/null 2>&1") != 0)
    return "nft (nftables) is not installed";
  return NULL;
#else
  return "needs Linux (network namespaces, nftables, SO_MARK)";
#endif
}

int util_blackhole_prepare(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "nft add table inet vigil_bh && "
           "nft add chain inet vigil_bh in '{ type filter hook input priority 0; }' && "
           "nft add rule inet vigil_bh in meta mark 0x%x drop",
           (unsigned)BLACKHOLE_MARK);
  return util_sh(cmd) == 0 ? 0 : VIGIL_ENOTSUP;
}

int util_blackhole_cut(vigil_os_socket s) {
#if defined(SO_MARK)
  int mark = BLACKHOLE_MARK;
  return setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0 ? 0 : -errno;
#else
  (void)s;
  return VIGIL_ENOTSUP;
#endif
}

int util_proc_spawn(int (*fn)(void *arg), void *arg, long *pid) {
  pid_t p = fork();
  if (p < 0)
    return -errno;
  if (p == 0)
    _exit(fn(arg));
  *pid = (long)p;
  return 0;
}

int util_proc_stop(long pid) {
  return kill((pid_t)pid, SIGSTOP) == 0 ? 0 : -errno;
}
int util_proc_cont(long pid) {
  return kill((pid_t)pid, SIGCONT) == 0 ? 0 : -errno;
}

int util_proc_wait(long pid, uint32_t timeout_ms) {
  uint64_t end = util_now_ns() + (uint64_t)timeout_ms * 1000000u;
  int status;
  for (;;) {
    pid_t r = waitpid((pid_t)pid, &status, WNOHANG);
    if (r == (pid_t)pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || util_now_ns() >= end)
      return -1;
    usleep(2000);
  }
}

int util_proc_kill(long pid) {
  (void)kill((pid_t)pid, SIGCONT);
  (void)kill((pid_t)pid, SIGKILL);
  return util_proc_wait(pid, 5000);
}

#else /* Windows: no fork, no namespaces */

uint64_t util_now_ns(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (uint64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}
uint64_t util_cpu_wait_ns(void) {
  return 0;
}
int util_netns_enter(void) {
  return VIGIL_ENOTSUP;
}
const char *util_blackhole_unavailable(void) {
  return "needs Linux (network namespaces, nftables, SO_MARK)";
}
int util_blackhole_prepare(void) {
  return VIGIL_ENOTSUP;
}
int util_blackhole_cut(vigil_os_socket s) {
  (void)s;
  return VIGIL_ENOTSUP;
}
int util_sh(const char *cmd) {
  (void)cmd;
  return -1;
}
int util_proc_spawn(int (*fn)(void *arg), void *arg, long *pid) {
  (void)fn, (void)arg;
  *pid = -1;
  return VIGIL_ENOTSUP;
}
int util_proc_stop(long pid) {
  (void)pid;
  return VIGIL_ENOTSUP;
}
int util_proc_cont(long pid) {
  (void)pid;
  return VIGIL_ENOTSUP;
}
int util_proc_kill(long pid) {
  (void)pid;
  return -1;
}
int util_proc_wait(long pid, uint32_t timeout_ms) {
  (void)pid, (void)timeout_ms;
  return -1;
}

#endif

/* ---- raw vigil peer (portable on top of the helpers above) ---------------- */

int util_raw_hello(vigil_os_socket s, const char *id, uint32_t interval_ms, uint32_t timeout_ms) {
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME];
  vigil_hello h;
  int n;
  memset(&h, 0, sizeof h);
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = interval_ms;
  h.timeout_ms = timeout_ms;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(buf, sizeof buf, &h);
  if (n < 0)
    return n;
  return util_raw_send(s, buf, (size_t)n);
}

int util_raw_expect(vigil_os_socket s, uint8_t type, uint32_t timeout_ms, vigil_frame *f,
                    uint8_t *buf, size_t cap) {
  size_t have = 0;
  for (;;) {
    int n = vigil_wire_decode(buf, have, VIGIL_WIRE_MAX_CHUNK, f);
    long r;
    if (n > 0) {
      if (f->type == type)
        return 0;
      memmove(buf, buf + n, have - (size_t)n);
      have -= (size_t)n;
      continue;
    }
    if (n != VIGIL_ENEEDMORE)
      return n;
    if (have == cap)
      return VIGIL_ENOSPACE;
    r = util_raw_recv(s, buf + have, cap - have, timeout_ms);
    if (r == 0)
      return VIGIL_EOF;
    if (r < 0)
      return (int)r;
    have += (size_t)r;
  }
}

int util_raw_welcome(vigil_os_socket s, uint32_t interval_ms, uint32_t timeout_ms,
                     uint32_t timeout_wait_ms) {
  uint8_t buf[1024];
  vigil_frame f;
  vigil_welcome w;
  int rc = util_raw_expect(s, VIGIL_FRAME_HELLO, timeout_wait_ms, &f, buf, sizeof buf), n;
  if (rc != 0)
    return rc;
  memset(&w, 0, sizeof w);
  w.version = VIGIL_WIRE_VERSION;
  w.interval_ms = interval_ms;
  w.timeout_ms = timeout_ms;
  w.min_ping_ms = interval_ms / 2;
  w.max_frame = f.u.hello.max_frame;
  w.max_message = f.u.hello.max_message;
  n = vigil_wire_encode_welcome(buf, sizeof buf, &w);
  if (n < 0)
    return n;
  return util_raw_send(s, buf, (size_t)n);
}

vigil_cause util_stalled_cause(const vigil_death *d) {
#if defined(VIGIL_HAVE_TCP_EVIDENCE)
  (void)d;
  return VIGIL_CAUSE_PEER_STALLED;
#else
  return d->tcp.available ? VIGIL_CAUSE_PEER_STALLED : VIGIL_CAUSE_HEARTBEAT_TIMEOUT;
#endif
}

/* ---- callback recorder ---------------------------------------------------- */

void util_rec_init(util_rec *r) {
  memset(r, 0, sizeof *r);
}

static void copy_text(char *dst, size_t cap, const char *src, size_t len) {
  if (src == NULL)
    len = 0;
  if (len >= cap)
    len = cap - 1;
  if (len > 0)
    memcpy(dst, src, len);
  dst[len] = '\0';
}

static void rec_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  util_rec *r = user;
  r->opens++;
  r->conn = c;
  r->rejoin = info->rejoin;
  r->attempt = info->attempt;
  r->interval_ms = info->interval_ms;
  r->timeout_ms = info->timeout_ms;
  r->open_ns = util_now_ns();
  r->open_wait_ns = util_cpu_wait_ns();
  r->ka_error = info->keepalive_error;
  r->ka = info->keepalive;
  r->ka_report = info->keepalive_report;
  copy_text(r->peer, sizeof r->peer, info->peer, strlen(info->peer));
  copy_text(r->old_peer, sizeof r->old_peer, info->old_peer,
            info->old_peer ? strlen(info->old_peer) : 0);
  copy_text(r->id, sizeof r->id, info->id, info->id_len);
}

static void rec_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  util_rec *r = user;
  r->messages++;
  r->msg_len = len;
  memcpy(r->msg, msg, len < sizeof r->msg ? len : sizeof r->msg);
  if (r->echo)
    (void)vigil_conn_send(c, msg, len);
}

static void rec_rtt(vigil_conn *c, uint64_t rtt_ns, void *user) {
  (void)c, (void)rtt_ns;
  ((util_rec *)user)->rtts++;
}

static void rec_end(util_rec *r, vigil_conn *c, const vigil_death *d) {
  r->death = *d;
  r->death_ns = util_now_ns();
  r->death_wait_ns = util_cpu_wait_ns();
  copy_text(r->detail, sizeof r->detail, d->detail, d->detail ? strlen(d->detail) : 0);
  copy_text(r->reason, sizeof r->reason, d->reason, d->reason_len);
  r->death.detail = r->detail;
  r->death.reason = r->reason;
  if (r->conn == c)
    r->conn = NULL;
}

static void rec_death(vigil_conn *c, const vigil_death *d, void *user) {
  util_rec *r = user;
  r->deaths++;
  r->died_cause = d->cause;
  r->died_close_code = d->close_code;
  rec_end(r, c, d);
}

static void rec_reject(vigil_conn *c, const vigil_death *d, void *user) {
  util_rec *r = user;
  if (r->rejects < 64 && r->loop != NULL)
    r->reject_ns[r->rejects] = vigil_loop_now_ns(r->loop);
  r->rejects++;
  rec_end(r, c, d);
}

static void rec_unsent(vigil_conn *c, const uint8_t *msg, size_t len, size_t written, void *user) {
  util_rec *r = user;
  (void)c, (void)msg;
  r->unsent++;
  r->unsent_bytes += len;
  r->unsent_written += written;
}

vigil_conn_callbacks util_rec_callbacks(void) {
  vigil_conn_callbacks cb;
  cb.on_open = rec_open;
  cb.on_message = rec_message;
  cb.on_rtt = rec_rtt;
  cb.on_death = rec_death;
  cb.on_reject = rec_reject;
  cb.on_unsent = rec_unsent;
  return cb;
}

void util_rec_on_reconnect(vigil_client *cli, unsigned attempt, uint32_t delay_ms, void *user) {
  util_rec *r = user;
  (void)cli;
  r->reconnects++;
  if (r->ndelays < 64) {
    r->delays[r->ndelays] = delay_ms;
    r->attempts[r->ndelays] = attempt;
    r->reconnect_ns[r->ndelays] = r->loop != NULL ? vigil_loop_now_ns(r->loop) : 0;
    r->ndelays++;
  }
}

void util_rec_on_client_closed(vigil_client *cli, void *user) {
  (void)cli;
  ((util_rec *)user)->closed++;
}

void util_rec_on_server_closed(vigil_server *srv, void *user) {
  (void)srv;
  ((util_rec *)user)->closed++;
}
