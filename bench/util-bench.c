/* The helpers of util-bench.h. */
#include "util-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

uint16_t bench_free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  uint16_t port = 0;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

pid_t bench_spawn(char *const argv[], const char *out_path) {
  pid_t pid = fork();

  if (pid == 0) {
    int out = out_path != NULL ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)
                               : open("/dev/null", O_WRONLY);
    if (out >= 0) {
      dup2(out, 1);
      close(out);
    }
    execv(argv[0], argv);
    fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int bench_wait_listening(pid_t pid, uint16_t port) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  for (int k = 0; k < 100; k++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0)
      return -1;
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    if (ok)
      return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return -1;
    bench_sleep_ms(50);
  }
  return -1;
}

void bench_stop(pid_t pid) {
  kill(pid, SIGTERM);
  for (int k = 0; k < 100; k++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    bench_sleep_ms(50);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

void bench_self_dir(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  char *slash;
  if (n <= 0) {
    snprintf(out, cap, ".");
    return;
  }
  out[n] = '\0';
  if ((slash = strrchr(out, '/')) != NULL)
    *slash = '\0';
}

double bench_proc_cpu_seconds(pid_t pid, double *user_s) {
  char path[64], buf[1024];
  unsigned long long ticks = 0, user = 0;
  FILE *f;
  char *p;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  if (p == NULL || (p = strrchr(buf, ')')) == NULL)
    return -1;
  /* after "pid (comm)" comes field 3 (state); utime and stime are 14, 15 */
  for (int field = 3; field <= 15; field++) {
    char *end;
    unsigned long long v;
    while (*p == ' ' || *p == ')')
      p++;
    v = strtoull(p, &end, 10);
    if (field >= 14) {
      if (end == p)
        return -1;
      ticks += v;
      if (field == 14)
        user = v;
    }
    while (*end != ' ' && *end != '\0')
      end++;
    p = end;
  }
  if (user_s != NULL)
    *user_s = (double)user / (double)sysconf(_SC_CLK_TCK);
  return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_rss_kb(pid_t pid) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* pid's children, at most cap of them; how many. */
static unsigned children(pid_t pid, pid_t *out, unsigned cap) {
  char path[64];
  unsigned n = 0;
  long v;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return 0;
  while (n < cap && fscanf(f, "%ld", &v) == 1)
    out[n++] = (pid_t)v;
  fclose(f);
  return n;
}

double bench_tree_cpu_seconds(pid_t pid, double *user_s) {
  pid_t kids[1024];
  unsigned n = children(pid, kids, 1024), i;
  double total = bench_proc_cpu_seconds(pid, user_s);
  if (total < 0)
    return -1;
  for (i = 0; i < n; i++) {
    double u = 0, c = bench_proc_cpu_seconds(kids[i], &u);
    if (c >= 0) {
      total += c;
      if (user_s != NULL)
        *user_s += u;
    }
  }
  return total;
}

long bench_tree_rss_kb(pid_t pid) {
  pid_t kids[1024];
  unsigned n = children(pid, kids, 1024), i;
  long total = bench_proc_rss_kb(pid);
  if (total < 0)
    return -1;
  for (i = 0; i < n; i++) {
    long kb = bench_proc_rss_kb(kids[i]);
    if (kb > 0)
      total += kb;
  }
  return total;
}

unsigned long bench_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  rl.rlim_cur = rl.rlim_max;
  (void)setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return (unsigned long)rl.rlim_cur;
}

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#define BENCH_SOURCE_ADDRS 8

int bench_loopback_connect(unsigned source, uint16_t port) {
  struct sockaddr_in src, dst;
  int one = 1, err;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + source % BENCH_SOURCE_ADDRS);
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons(port);
  if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
      (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS)) {
    err = errno;
    close(fd);
    return -err;
  }
  return fd;
}
