/* `vigil status HOST:PORT`: one screen about a running server, read from
 * its metrics endpoint (`vigil serve --metrics`), in the manner of `ss -s`.
 *
 * It fetches /metrics (the Prometheus text, a stable contract) rather than
 * /api/status, reads it back into a vigil_metrics, and prints connections
 * by state, totals, refusals and deaths by reason, the heartbeat counters,
 * RTT and verdict lateness as count, mean and the bucket holding the 50th
 * and 99th percentile, and the presence store's health. --watch redraws it every --every (default 1
 * s) with opens and deaths per second; --json prints one JSON object per fetch instead.
 *
 * The answer is untrusted: one HTTP/1.0 GET over a socket with a 5 s
 * deadline for the whole exchange, at most 1 MiB read, and a reply that is
 * not a 200 with vigil samples is an error (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "metrics-http.h"
#include "vigil.h"

#define CMD "status"

static const char usage_text[] =
    "usage: vigil status HOST:PORT [options]\n"
    "\n"
    "Prints a one-screen summary of a vigil server from its metrics endpoint\n"
    "(vigil serve --metrics HOST:PORT): connections, opens, refusals, deaths by\n"
    "cause, pings and pongs, RTT and verdict lateness, and the presence store's\n"
    "health (ok, or DEGRADED when a process has lost the store; off without\n"
    "--presence).\n"
    "\n"
    "options:\n"
    "  --watch           redraw every --every, with opens/s and deaths/s\n"
    "  --every D         refresh period of --watch (default 1s)\n"
    "  -j, --json        one JSON object per fetch\n"
    "  -h, --help        this text\n"
    "\n"
    "Exit status: 0 ok, 1 the endpoint could not be read, 2 bad usage.\n";

#if defined(_WIN32)

int vigil_cmd_status(int argc, char **argv) {
  if (argc > 1 && vigil_cli_is_help(argv[1])) {
    fputs(usage_text, stdout);
    return VIGIL_CLI_OK;
  }
  fprintf(stderr, "vigil status: not built for Windows (see docs/WINDOWS.md)\n");
  return VIGIL_CLI_FAIL;
}

#else

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLY ((size_t)1 << 20)
#define DEADLINE_MS 5000

typedef struct status_opts {
  vigil_cli_common c;
  int watch;
  uint32_t every_ms;
} status_opts;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for fd to be ready for `events` until deadline; 0 or -1. */
static int wait_fd(int fd, short events, uint64_t deadline) {
  struct pollfd p;
  uint64_t now = mono_ms();
  if (now >= deadline)
    return -1;
  p.fd = fd;
  p.events = events;
  p.revents = 0;
  return poll(&p, 1, (int)(deadline - now)) == 1 ? 0 : -1;
}

static int connect_to(const vigil_cli_addr *a, uint64_t deadline, const char **why) {
  struct addrinfo *res = NULL, *ai;
  int fd = -1;
  if (vigil_cli_resolve(a, 0, &res, why) != 0)
    return -1;
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    int err = 0;
    socklen_t len = sizeof(err);
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
      continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0))
      break;
    *why = err != 0 ? strerror(err) : errno == EINPROGRESS ? "timed out" : strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

/* GET /metrics; the body into *body (malloc'd). 0, or -1 with *why. */
static int fetch(const vigil_cli_addr *a, char **body, size_t *blen, const char **why) {
  uint64_t deadline = mono_ms() + DEADLINE_MS;
  char req[512], *buf = NULL, *p;
  size_t len = 0, sent = 0, n;
  int fd = connect_to(a, deadline, why);
  if (fd < 0)
    return -1;
  n = (size_t)snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", a->host);
  while (sent < n) {
    ssize_t w = write(fd, req + sent, n - sent);
    if (w > 0)
      sent += (size_t)w;
    else if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0)
      continue;
    else
      goto fail_io;
  }
  if ((buf = malloc(MAX_REPLY + 1)) == NULL) {
    *why = "out of memory";
    goto fail;
  }
  for (;;) {
    ssize_t r = read(fd, buf + len, MAX_REPLY - len);
    if (r > 0) {
      len += (size_t)r;
      if (len == MAX_REPLY) {
        *why = "reply larger than 1 MiB";
        goto fail;
      }
    } else if (r == 0) {
      break;
    } else if (errno == EAGAIN && wait_fd(fd, POLLIN, deadline) == 0) {
      continue;
    } else {
      goto fail_io;
    }
  }
  close(fd);
  buf[len] = '\0';
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 9, "200", 3) != 0) {
    *why = len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 ? "not an HTTP reply" : "HTTP error";
    free(buf);
    return -1;
  }
  if ((p = strstr(buf, "\r\n\r\n")) == NULL) {
    *why = "HTTP reply without a body";
    free(buf);
    return -1;
  }
  p += 4;
  *blen = len - (size_t)(p - buf);
  memmove(buf, p, *blen + 1);
  *body = buf;
  return 0;
fail_io:
  *why = mono_ms() >= deadline ? "timed out" : strerror(errno);
fail:
  free(buf);
  close(fd);
  return -1;
}

/* The upper bound (ms) of the bucket holding quantile q; -1 for +Inf, -2
 * when empty. */
static double quantile_ms(const vigil_histogram *h, vigil_histogram_kind kind, double q) {
  uint64_t cum = 0;
  unsigned i;
  if (h->count == 0)
    return -2;
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++) {
    cum += h->buckets[i];
    if ((double)cum >= q * (double)h->count)
      return (double)vigil_histogram_bound_ns(kind, i) / 1e6;
  }
  return -1;
}

static uint64_t deaths_total(const vigil_metrics *m) {
  uint64_t t = 0;
  unsigned i;
  for (i = 0; i < VIGIL_CAUSE_COUNT; i++)
    t += m->deaths[i];
  return t;
}

static void print_hist_text(const char *name, const vigil_histogram *h, vigil_histogram_kind k) {
  double p50 = quantile_ms(h, k, 0.5), p99 = quantile_ms(h, k, 0.99);
  if (h->count == 0) {
    printf("%-12s none yet\n", name);
    return;
  }
  printf("%-12s n=%llu  mean %.3f ms  p50 <= ", name, (unsigned long long)h->count,
         (double)h->sum_ns / 1e6 / (double)h->count);
  printf(p50 < 0 ? "10 s+" : "%g ms", p50);
  printf("  p99 <= ");
  printf(p99 < 0 ? "10 s+\n" : "%g ms\n", p99);
}

/* The presence store's health as the status page says it: ok when every
 * process that keeps presence is connected to the store, DEGRADED if not. */
static const char *presence_health(const vigil_cli_presence_figures *pf) {
  return pf->up == pf->processes ? "ok" : "DEGRADED";
}

static void print_text(const char *where, const vigil_metrics *m, const vigil_metrics *prev,
                       double dt, const vigil_cli_presence_figures *pf) {
  unsigned i;
  int any = 0;
  printf("vigil at %s\n", where);
  printf("%-12s open %lu  handshaking %lu  closing %lu  queued %llu bytes\n", "connections",
         (unsigned long)m->open, (unsigned long)m->handshaking, (unsigned long)m->closing,
         (unsigned long long)m->queued_bytes);
  printf("%-12s accepted %llu  opens %llu  takeovers %llu  deaths %llu\n", "totals",
         (unsigned long long)m->accepted, (unsigned long long)m->opened,
         (unsigned long long)m->takeovers, (unsigned long long)deaths_total(m));
  if (prev != NULL && dt > 0)
    printf("%-12s opens %.1f/s  deaths %.1f/s\n", "rates", (double)(m->opened - prev->opened) / dt,
           (double)(deaths_total(m) - deaths_total(prev)) / dt);
  printf("%-12s", "deaths");
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++)
    if (m->deaths[i] != 0) {
      printf(" %s %llu", vigil_cause_name((vigil_cause)i), (unsigned long long)m->deaths[i]);
      any = 1;
    }
  printf(any ? "\n" : " none\n");
  any = 0;
  printf("%-12s", "refused");
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    if (m->refused[i] != 0) {
      printf(" %s %llu", vigil_refusal_name((vigil_refusal)i), (unsigned long long)m->refused[i]);
      any = 1;
    }
  printf(any ? "\n" : " none\n");
  printf("%-12s pings %llu  pongs %llu  stalls %llu  early verdicts %llu  queue-full closes "
         "%llu  emfile %llu\n",
         "heartbeat", (unsigned long long)m->pings_sent, (unsigned long long)m->pongs_received,
         (unsigned long long)m->stalls, (unsigned long long)m->verdicts_early,
         (unsigned long long)m->queue_full_closes, (unsigned long long)m->accept_emfile);
  print_hist_text("rtt", &m->rtt, VIGIL_HIST_RTT);
  print_hist_text("lateness", &m->lateness, VIGIL_HIST_LATENESS);
  if (!pf->present)
    printf("%-12s off\n", "presence");
  else
    printf("%-12s %s: %llu of %llu connected  queued %llu  sent %llu  dropped %llu  errors %llu  "
           "reconnects %llu\n",
           "presence", presence_health(pf), (unsigned long long)pf->up,
           (unsigned long long)pf->processes, (unsigned long long)pf->queued,
           (unsigned long long)pf->sent, (unsigned long long)pf->dropped,
           (unsigned long long)pf->errors, (unsigned long long)pf->reconnects);
}

static void json_hist(vigil_cli_buf *b, const char *name, const vigil_histogram *h,
                      vigil_histogram_kind k) {
  double p50 = quantile_ms(h, k, 0.5), p99 = quantile_ms(h, k, 0.99);
  vigil_cli_buf_printf(b, ",\"%s\":{\"count\":%llu,\"mean_ms\":%.3f", name,
                       (unsigned long long)h->count,
                       h->count ? (double)h->sum_ns / 1e6 / (double)h->count : 0.0);
  if (p50 >= 0)
    vigil_cli_buf_printf(b, ",\"p50_le_ms\":%g", p50);
  else
    vigil_cli_buf_printf(b, ",\"p50_le_ms\":null");
  if (p99 >= 0)
    vigil_cli_buf_printf(b, ",\"p99_le_ms\":%g}", p99);
  else
    vigil_cli_buf_printf(b, ",\"p99_le_ms\":null}");
}

static int print_json(const char *where, const vigil_metrics *m,
                      const vigil_cli_presence_figures *pf) {
  vigil_cli_buf b;
  unsigned i;
  int rc;
  vigil_cli_buf_init(&b, 1 << 16);
  vigil_cli_buf_printf(&b, "{\"t\":%.3f,\"endpoint\":", vigil_cli_unix_time());
  vigil_cli_buf_json_str(&b, where, strlen(where));
  vigil_cli_buf_printf(&b,
                       ",\"connections\":{\"connecting\":%lu,\"handshaking\":%lu,\"open\":%lu,"
                       "\"closing\":%lu},\"queued_bytes\":%llu,\"accepted\":%llu,\"opens\":%llu,"
                       "\"takeovers\":%llu,\"deaths\":{",
                       (unsigned long)m->connecting, (unsigned long)m->handshaking,
                       (unsigned long)m->open, (unsigned long)m->closing,
                       (unsigned long long)m->queued_bytes, (unsigned long long)m->accepted,
                       (unsigned long long)m->opened, (unsigned long long)m->takeovers);
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++)
    vigil_cli_buf_printf(&b, "%s\"%s\":%llu", i > 1 ? "," : "", vigil_cause_name((vigil_cause)i),
                         (unsigned long long)m->deaths[i]);
  vigil_cli_buf_printf(&b, "},\"refused\":{");
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    vigil_cli_buf_printf(&b, "%s\"%s\":%llu", i ? "," : "", vigil_refusal_name((vigil_refusal)i),
                         (unsigned long long)m->refused[i]);
  vigil_cli_buf_printf(&b,
                       "},\"pings_sent\":%llu,\"pongs_received\":%llu,\"stalls\":%llu,"
                       "\"verdicts_early\":%llu",
                       (unsigned long long)m->pings_sent, (unsigned long long)m->pongs_received,
                       (unsigned long long)m->stalls, (unsigned long long)m->verdicts_early);
  json_hist(&b, "rtt", &m->rtt, VIGIL_HIST_RTT);
  json_hist(&b, "lateness", &m->lateness, VIGIL_HIST_LATENESS);
  if (!pf->present)
    vigil_cli_buf_printf(&b, ",\"presence\":null");
  else
    vigil_cli_buf_printf(&b,
                         ",\"presence\":{\"health\":\"%s\",\"processes\":%llu,\"up\":%llu,"
                         "\"queued\":%llu,\"sent\":%llu,\"dropped\":%llu,\"errors\":%llu,"
                         "\"reconnects\":%llu}",
                         presence_health(pf), (unsigned long long)pf->processes,
                         (unsigned long long)pf->up, (unsigned long long)pf->queued,
                         (unsigned long long)pf->sent, (unsigned long long)pf->dropped,
                         (unsigned long long)pf->errors, (unsigned long long)pf->reconnects);
  vigil_cli_buf_printf(&b, "}\n");
  rc = b.failed ? -1 : (fputs(b.p, stdout) < 0 ? -1 : 0);
  vigil_cli_buf_free(&b);
  return rc;
}

static int once(const status_opts *o, const char *where, vigil_metrics *m,
                vigil_cli_presence_figures *pf) {
  char *body = NULL;
  size_t len = 0;
  const char *why = "no answer";
  if (fetch(&o->c.addr, &body, &len, &why) != 0) {
    fprintf(stderr, "vigil status: %s: %s\n", where, why);
    return -1;
  }
  if (vigil_cli_scrape_parse(body, len, m, pf) != 0) {
    fprintf(stderr, "vigil status: %s: no vigil metrics in the reply\n", where);
    free(body);
    return -1;
  }
  free(body);
  return 0;
}

int vigil_cmd_status(int argc, char **argv) {
  status_opts o;
  const vigil_cli_opt own[] = {{"watch", 0, VIGIL_CLI_FLAG, &o.watch, 0, 0, 0},
                               {"every", 0, VIGIL_CLI_DURATION, &o.every_ms, 0, 0, 0},
                               {NULL, 0, VIGIL_CLI_FLAG, NULL, 0, 0, 0}};
  vigil_metrics m, prev;
  vigil_cli_presence_figures pf;
  char where[300];
  uint64_t last = 0;
  int rc, have_prev = 0;
  memset(&o, 0, sizeof(o));
  rc = vigil_cli_parse_args(CMD, usage_text, VIGIL_CLI_OPT_JSON, argc, argv, &o.c, own);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  if (o.every_ms != 0 && !o.watch)
    return vigil_cli_usage(CMD, "--every needs --watch");
  if (o.every_ms == 0)
    o.every_ms = 1000;
  vigil_cli_addr_text(&o.c.addr, where, sizeof(where));
  for (;;) {
    uint64_t now = mono_ms();
    if (once(&o, where, &m, &pf) != 0) {
      if (!o.watch)
        return VIGIL_CLI_FAIL;
    } else if (o.c.json) {
      if (print_json(where, &m, &pf) != 0 || vigil_cli_out_flush(stdout) != 0)
        return VIGIL_CLI_FAIL;
    } else {
      if (o.watch)
        printf("\033[H\033[2J"); /* home, clear: one screen, redrawn */
      print_text(where, &m, have_prev ? &prev : NULL, (double)(now - last) / 1000.0, &pf);
      if (vigil_cli_out_flush(stdout) != 0)
        return VIGIL_CLI_FAIL;
    }
    if (!o.watch)
      return VIGIL_CLI_OK;
    prev = m;
    have_prev = 1;
    last = now;
    usleep((useconds_t)o.every_ms * 1000u);
  }
}

#endif
