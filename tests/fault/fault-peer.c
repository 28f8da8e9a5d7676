/* fault-peer: one end of a plain TCP connection for the fault suite.
 *
 * The fault suite needs an observer whose only liveness machinery is the
 * kernel's (keepalive, TCP_USER_TIMEOUT), so it can measure what each kernel
 * mechanism catches and how fast, next to vigil's own heartbeat. This program
 * is that observer, and also the victim on the other side: it opens or
 * accepts one connection, keeps reading whatever arrives (so a healthy peer's
 * window never closes), optionally writes (periodic small writes put data in
 * flight; --flood fills a stopped peer's window), and reports on stdout, one
 * JSON object per line with a CLOCK_REALTIME timestamp, when the connection
 * opens and when and why it ends.
 *
 * The cause follows DESIGN.md's table, from what the socket says:
 *   read() = 0                -> closed
 *   ECONNRESET / EPIPE        -> reset
 *   ETIMEDOUT, bytes unacked  -> user_timeout (sampled before the error,
 *                                because the kernel purges the queue on it)
 *   ETIMEDOUT, nothing queued -> keepalive_timeout
 *   EHOSTUNREACH/ENETUNREACH  -> unreachable
 * The dead line also carries the socket's TCP_INFO as last sampled before
 * the error (tcp_state, tcp_probes = keepalive or zero-window probes out,
 * tcp_backoff, tcp_rto_ms, tcp_retransmits, tcp_unacked, tcp_lost,
 * tcp_total_retrans, tcp_last_data_recv_ms, tcp_last_ack_recv_ms), so a
 * death can be told apart: keepalive gave up (probes), retransmission gave
 * up (backoff, unacked), or the peer closed.
 *
 * Keepalive probe runs: the program samples tcpi_probes every loop (<= 20 ms)
 * and, each time it falls back to 0, counts one run of that many unanswered
 * probes. On SIGTERM it prints a "stats" line with the histogram
 * ("probe_runs":[runs with 1 unanswered probe, with 2, ...]) and
 * "max_probes", and exits 0: the fault suite's soak compares it with the
 * geometric law the keepalive sizing rule assumes (docs/KEEPALIVE.md). A
 * probe answered within one sample is not seen, so runs count only probes
 * that stayed unanswered for at least one loop.
 *
 * Kernel keepalive and TCP_USER_TIMEOUT are set with plain setsockopt here
 * (--ka, --uto) so the helper does not depend on libvigil; the suite can
 * instead run it under `vigil run` to exercise the library's settings.
 *
 * Usage:
 *   fault-peer (--listen | --connect) ADDR PORT [--ka IDLE,INTVL,CNT]
 *              [--uto MS] [--send BYTES,PERIOD_MS] [--flood] [--max-ms MS]
 * --max-ms (default 600000, 0 = none) ends the connection on purpose; the
 * soaks pass a longer one, since a peer leaving at 10 minutes is seen as a
 * "closed" death by the other end.
 * Exit status: 0 closed by --max-ms or SIGTERM, 1 connection died, 2 usage
 * or setup. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct options {
  int listen_mode;
  const char *addr;
  int port;
  int ka_idle, ka_intvl, ka_cnt; /* seconds, seconds, probes; 0: leave */
  int uto_ms;
  int send_bytes, send_period_ms;
  int flood;
  long max_ms;
};

static double now_real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long now_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(const char *event, const char *extra) {
  printf("{\"t_ms\":%.3f,\"event\":\"%s\"%s%s}\n", now_real_ms(), event, extra[0] ? "," : "",
         extra);
  fflush(stdout);
}

static int usage(void) {
  fprintf(stderr, "usage: fault-peer (--listen|--connect) ADDR PORT [--ka IDLE,INTVL,CNT] "
                  "[--uto MS] [--send BYTES,PERIOD_MS] [--flood] [--max-ms MS]\n");
  return 2;
}

static int parse_int(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 100000000)
    return -1;
  *out = (int)v;
  return 0;
}

/* "A,B,C" -> n non-negative integers, nothing else allowed. */
static int parse_list(const char *s, int *out, int n) {
  for (int i = 0; i < n; i++) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 100000000 || *end != (i + 1 < n ? ',' : '\0'))
      return -1;
    out[i] = (int)v;
    s = end + 1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, struct options *o) {
  int i;
  memset(o, 0, sizeof(*o));
  o->max_ms = 600000;
  if (argc < 4)
    return -1;
  if (strcmp(argv[1], "--listen") == 0)
    o->listen_mode = 1;
  else if (strcmp(argv[1], "--connect") != 0)
    return -1;
  o->addr = argv[2];
  if (parse_int(argv[3], &o->port) != 0 || o->port > 65535)
    return -1;
  for (i = 4; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--flood") == 0) {
      o->flood = 1;
      continue;
    }
    if (v == NULL)
      return -1;
    i++;
    if (strcmp(a, "--ka") == 0) {
      int ka[3];
      if (parse_list(v, ka, 3) != 0 || ka[0] < 1 || ka[1] < 1 || ka[2] < 1)
        return -1;
      o->ka_idle = ka[0];
      o->ka_intvl = ka[1];
      o->ka_cnt = ka[2];
    } else if (strcmp(a, "--uto") == 0) {
      if (parse_int(v, &o->uto_ms) != 0)
        return -1;
    } else if (strcmp(a, "--send") == 0) {
      int sp[2];
      if (parse_list(v, sp, 2) != 0 || sp[0] < 1 || sp[0] > 65536 || sp[1] < 1)
        return -1;
      o->send_bytes = sp[0];
      o->send_period_ms = sp[1];
    } else if (strcmp(a, "--max-ms") == 0) {
      int m;
      if (parse_int(v, &m) != 0)
        return -1;
      o->max_ms = m;
    } else {
      return -1;
    }
  }
  return 0;
}

static int apply_settings(int fd, const struct options *o) {
  if (o->ka_idle > 0) {
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &o->ka_idle, sizeof(o->ka_idle)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &o->ka_intvl, sizeof(o->ka_intvl)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &o->ka_cnt, sizeof(o->ka_cnt)) != 0)
      return -1;
  }
  if (o->uto_ms > 0 &&
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &o->uto_ms, sizeof(o->uto_ms)) != 0)
    return -1;
  return 0;
}

static int open_connection(const struct options *o) {
  struct sockaddr_in sa;
  int fd, one = 1;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)o->port);
  if (inet_pton(AF_INET, o->addr, &sa.sin_addr) != 1) {
    fprintf(stderr, "fault-peer: bad IPv4 address %s\n", o->addr);
    return -1;
  }
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  if (o->listen_mode) {
    int lfd = fd;
    char extra[64];
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0) {
      perror("fault-peer: listen");
      close(lfd);
      return -1;
    }
    snprintf(extra, sizeof(extra), "\"port\":%d", o->port);
    emit("listening", extra);
    fd = accept(lfd, NULL, NULL);
    close(lfd);
    if (fd < 0)
      return -1;
  } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    perror("fault-peer: connect");
    close(fd);
    return -1;
  }
  if (apply_settings(fd, o) != 0) {
    perror("fault-peer: setsockopt");
    close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static const char *cause_of(int err, int outq) {
  switch (err) {
  case 0:
    return "closed";
  case ECONNRESET:
  case EPIPE:
    return "reset";
  case ETIMEDOUT:
    return outq > 0 ? "user_timeout" : "keepalive_timeout";
  case EHOSTUNREACH:
  case ENETUNREACH:
    return "unreachable";
  default:
    return "local";
  }
}

#define MAX_RUN 128 /* Linux TCP_KEEPCNT is at most 127 */

static volatile sig_atomic_t stop_requested;
static struct tcp_info last_ti; /* the latest TCP_INFO sample */
static unsigned long probe_runs[MAX_RUN + 1];
static unsigned run_max, max_probes;

static void on_term(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* Samples TCP_INFO; a run of unanswered probes ends when tcpi_probes falls
 * back to 0. */
static void sample_tcp_info(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return;
  last_ti = ti;
  if (ti.tcpi_probes > run_max)
    run_max = ti.tcpi_probes > MAX_RUN ? MAX_RUN : ti.tcpi_probes;
  if (run_max > max_probes)
    max_probes = run_max;
  if (ti.tcpi_probes == 0 && run_max > 0) {
    probe_runs[run_max]++;
    run_max = 0;
  }
}

static void report_stats(void) {
  char extra[MAX_RUN * 12 + 64];
  size_t n, last = 0;
  int len;
  for (n = 1; n <= MAX_RUN; n++)
    if (probe_runs[n] > 0)
      last = n;
  len = snprintf(extra, sizeof(extra), "\"max_probes\":%u,\"probe_runs\":[", max_probes);
  for (n = 1; n <= last && len > 0 && (size_t)len < sizeof(extra); n++)
    len += snprintf(extra + len, sizeof(extra) - (size_t)len, "%s%lu", n > 1 ? "," : "",
                    probe_runs[n]);
  if (len > 0 && (size_t)len < sizeof(extra))
    snprintf(extra + len, sizeof(extra) - (size_t)len, "]");
  emit("stats", extra);
}

static int report_death(int err, int outq) {
  char extra[512];
  const struct tcp_info *t = &last_ti;
  snprintf(extra, sizeof(extra),
           "\"cause\":\"%s\",\"errno\":%d,\"error\":\"%s\",\"outq\":%d,\"tcp_state\":%u,"
           "\"tcp_probes\":%u,\"tcp_backoff\":%u,\"tcp_rto_ms\":%u,\"tcp_retransmits\":%u,"
           "\"tcp_unacked\":%u,\"tcp_lost\":%u,\"tcp_total_retrans\":%u,"
           "\"tcp_last_data_recv_ms\":%u,\"tcp_last_ack_recv_ms\":%u,\"max_probes\":%u",
           cause_of(err, outq), err, err ? strerror(err) : "eof", outq, t->tcpi_state,
           t->tcpi_probes, t->tcpi_backoff, t->tcpi_rto / 1000, t->tcpi_retransmits,
           t->tcpi_unacked, t->tcpi_lost, t->tcpi_total_retrans, t->tcpi_last_data_recv,
           t->tcpi_last_ack_recv, max_probes);
  emit("dead", extra);
  return 1;
}

/* Reads everything pending. Returns -1 with *err set when the connection
 * ended (0 for EOF), 0 otherwise. */
static int drain(int fd, int *err) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0)
      continue;
    if (n == 0) {
      *err = 0;
      return -1;
    }
    if (errno == EAGAIN || errno == EINTR)
      return 0;
    *err = errno;
    return -1;
  }
}

static int send_some(int fd, size_t len, int *err) {
  static const char junk[65536];
  ssize_t n = send(fd, junk, len, MSG_NOSIGNAL);
  if (n >= 0 || errno == EAGAIN || errno == EINTR)
    return 0;
  *err = errno;
  return -1;
}

static int run(int fd, const struct options *o) {
  long start = now_mono_ms(), next_send = start + o->send_period_ms;
  int outq = 0, err = 0;
  emit("open", "");
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long now = now_mono_ms();
    int q = 0;
    if (o->max_ms > 0 && now - start >= o->max_ms) {
      emit("max_time", "");
      return 0;
    }
    if (stop_requested) {
      report_stats();
      return 0;
    }
    if (o->flood)
      p.events |= POLLOUT;
    if (poll(&p, 1, 20) < 0 && errno != EINTR)
      return report_death(errno, outq);
    if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && drain(fd, &err) != 0)
      return report_death(err, outq);
    if ((p.revents & POLLOUT) && send_some(fd, 65536, &err) != 0)
      return report_death(err, outq);
    if (o->send_bytes > 0 && now >= next_send) {
      next_send = now + o->send_period_ms;
      if (send_some(fd, (size_t)o->send_bytes, &err) != 0)
        return report_death(err, outq);
    }
    /* Sampled last: on the iteration that sees the error, the kernel has
     * already purged the queue, so the previous sample is the evidence. */
    if (ioctl(fd, SIOCOUTQ, &q) == 0)
      outq = q;
    sample_tcp_info(fd);
  }
}

int main(int argc, char **argv) {
  struct options o;
  int fd, rc;
  struct sigaction sa;
  if (parse_args(argc, argv, &o) != 0)
    return usage();
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  fd = open_connection(&o);
  if (fd < 0)
    return 2;
  rc = run(fd, &o);
  close(fd);
  return rc;
}
