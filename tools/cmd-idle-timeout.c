/* `vigil idle-timeout HOST:PORT`: how long may a connection to a vigil
 * server stay idle before something on the path (a NAT, a stateful
 * firewall, a load balancer) forgets it?
 *
 * Method. Open several connections at once, each with a handshake that
 * proposes a huge heartbeat interval, so neither end pings (the server
 * clamps the proposal to its policy, 10 minutes by default; a connection
 * whose agreed interval is too short to stay silent for its hold is not
 * used: the server's own pings, at 3/4 of the interval at the earliest,
 * would refresh the middlebox). Connection i stays silent for hold_i, then
 * sends one PING (vigil_session_stalled() queues a fresh one) and waits a
 * short deadline for the PONG. A middlebox that forgot the flow drops the
 * PING (or answers with RST): no PONG, the hold was too long. Holds are
 * probed in parallel, so the time taken is about the largest hold tried:
 *   round 1: min, 2 min, 4 min, ... up to --max; as soon as one hold fails,
 *            every longer hold is abandoned (the answer can only be dead);
 *   round 2+: the bracket (longest alive, shortest dead) is cut into
 *            --parallel + 1 equal steps and probed again, until the bracket
 *            is within 10% (at least 250 ms) or three rounds have run.
 * The estimate is the middle of the final bracket, so its error is at most
 * half the bracket. The recommended heartbeat interval is half the longest
 * hold that survived: with BFD-style jitter a ping goes out after 75-100%
 * of the interval, leaving room for one late or lost ping.
 *
 * The session engine (include/vigil/session.h) is driven directly over
 * plain non-blocking sockets and poll(): this command needs per-connection
 * control of when the single ping goes out, which the client runtime
 * rightly does not offer. POSIX only; on Windows it says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vigil.h"

#define CMD "idle-timeout"
#define MAX_PROBES 16
#define MAX_ROUNDS 3

static const char usage_text[] =
    "usage: vigil idle-timeout HOST:PORT [--min D] [--max D] [--parallel N]\n"
    "                          [--deadline D] [--json]\n"
    "\n"
    "Finds how long an idle connection to a vigil server survives on this path\n"
    "(the idle timeout of a NAT or firewall in between) by holding connections\n"
    "idle for different durations in parallel and checking whether a ping still\n"
    "gets its pong; then recommends a heartbeat interval.\n"
    "\n"
    "  --min D         shortest hold tried (default 1s)\n"
    "  --max D         longest hold tried (default 5m; the server's interval\n"
    "                  policy must allow at least 4/3 of it)\n"
    "  --parallel N    connections per refining round (default 8, 1..16)\n"
    "  --deadline D    how long a pong may take after the hold (default 1s)\n"
    "  -j, --json      one JSON object per line: probe, round, result\n"
    "\n"
    "Exit status: 0 a timeout was found (or none up to --max), 1 the server\n"
    "could not be reached or refused, 2 bad usage.\n";

typedef struct idle_opts {
  vigil_cli_common c; /* address, --json */
  uint32_t min_ms, max_ms, parallel, deadline_ms;
} idle_opts;

static int parse_args(int argc, char **argv, idle_opts *o) {
  const vigil_cli_opt own[] = {{"min", 0, VIGIL_CLI_DURATION, &o->min_ms, 0, 0, 0},
                               {"max", 0, VIGIL_CLI_DURATION, &o->max_ms, 0, 0, 0},
                               {"parallel", 0, VIGIL_CLI_UINT, &o->parallel, 1, MAX_PROBES, 0},
                               {"deadline", 0, VIGIL_CLI_DURATION, &o->deadline_ms, 0, 0, 0},
                               {NULL, 0, VIGIL_CLI_FLAG, NULL, 0, 0, 0}};
  int rc;

  memset(o, 0, sizeof(*o));
  o->min_ms = 1000;
  o->max_ms = 300000;
  o->parallel = 8;
  o->deadline_ms = 1000;
  rc = vigil_cli_parse_args(CMD, usage_text, VIGIL_CLI_OPT_JSON, argc, argv, &o->c, own);
  if (rc != 0)
    return rc;
  if (o->min_ms > o->max_ms)
    return vigil_cli_usage(CMD, "--min %ums is above --max %ums", o->min_ms, o->max_ms);
  return 0;
}

#if defined(_WIN32)

int vigil_cmd_idle_timeout(int argc, char **argv) {
  idle_opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  fprintf(stderr, "vigil idle-timeout: not available on Windows yet\n");
  return VIGIL_CLI_FAIL;
}

#else

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

enum probe_state { P_CONNECTING, P_HANDSHAKE, P_IDLE, P_PINGED, P_DONE };
enum probe_result { R_NONE, R_ALIVE, R_DEAD, R_FAILED, R_ABANDONED };

typedef struct probe {
  int fd;
  enum probe_state state;
  enum probe_result result;
  uint64_t hold_ms;
  uint64_t idle_since_ns, deadline_ns;
  const char *why;
  char id[64]; /* unique: the server's presence table would let
                  one probe take over another with the same id */
  vigil_session s;
  size_t rx_len;
  uint8_t rx[VIGIL_SESSION_MAX_RETAIN + 2048];
} probe;

typedef struct finder {
  const idle_opts *o;
  struct addrinfo *ai;
  char peer[VIGIL_CLI_ADDRSTRLEN];
  char id[40];
  uint64_t serial;
  probe p[MAX_PROBES];
  size_t n;
  uint32_t agreed_interval_ms;
  int any_open;
  const char *fail_why;
} finder;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void finish(probe *p, enum probe_result r, const char *why) {
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
  p->state = P_DONE;
  p->result = r;
  p->why = why;
}

static int flush(probe *p, uint64_t now) {
  uint8_t out[VIGIL_WIRE_MAX_CONTROL_FRAME * 2];
  size_t taken;
  long n;
  while ((n = vigil_session_write(&p->s, now, out, sizeof(out), NULL, 0, &taken)) != 0) {
    if (n < 0)
      return -1;
    /* Control frames are a few bytes on an idle socket: a short write means
     * the connection is unusable, not busy. */
    if (send(p->fd, out, (size_t)n, MSG_NOSIGNAL) != (ssize_t)n)
      return -1;
  }
  return 0;
}

static void start_probe(finder *f, probe *p, uint64_t hold_ms, uint64_t now) {
  memset(p, 0, sizeof(*p));
  p->hold_ms = hold_ms;
  p->fd = socket(f->ai->ai_family, SOCK_STREAM, 0);
  p->deadline_ns = now + 3000 * VIGIL_MS;
  if (p->fd < 0) {
    finish(p, R_FAILED, "socket() failed");
    return;
  }
  fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
  if (connect(p->fd, f->ai->ai_addr, f->ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    finish(p, R_FAILED, "connect() failed");
    return;
  }
  p->state = P_CONNECTING;
}

static void on_connected(finder *f, probe *p, uint64_t now) {
  vigil_session_config cfg;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    f->fail_why = err == ECONNREFUSED ? "connection refused" : "connect failed";
    finish(p, R_FAILED, f->fail_why);
    return;
  }
  vigil_session_config_init(&cfg);
  cfg.interval_ms = 600000; /* the server clamps this to its policy */
  cfg.timeout_ms = 1800000;
  snprintf(p->id, sizeof(p->id), "%s-%llu", f->id, (unsigned long long)++f->serial);
  cfg.id = p->id;
  cfg.id_len = strlen(p->id);
  cfg.seed = (uint32_t)now;
  if (vigil_session_init(&p->s, VIGIL_ROLE_CLIENT, &cfg, now) != 0 || flush(p, now) != 0) {
    finish(p, R_FAILED, "handshake could not be sent");
    return;
  }
  p->state = P_HANDSHAKE;
}

static void on_event(finder *f, probe *p, const vigil_event *ev, uint64_t now) {
  vigil_session_info info;
  if (ev->type == VIGIL_EVENT_OPEN) {
    vigil_session_get_info(&p->s, &info);
    f->agreed_interval_ms = info.interval_ms;
    f->any_open = 1;
    /* The server pings after 3/4 of the interval at the earliest. */
    if (p->hold_ms * 4 >= (uint64_t)info.interval_ms * 3) {
      finish(p, R_FAILED, "server's interval policy is too short for this hold");
      return;
    }
    p->state = P_IDLE;
    p->idle_since_ns = now;
  } else if (ev->type == VIGIL_EVENT_PONG && p->state == P_PINGED) {
    finish(p, R_ALIVE, "pong");
  } else if (ev->type == VIGIL_EVENT_DEAD) {
    if (p->state == P_IDLE || p->state == P_PINGED)
      finish(p, R_DEAD, vigil_cause_name(ev->cause));
    else
      finish(p, R_FAILED, ev->reason_len ? "server refused the handshake" : "handshake failed");
  }
}

static void on_readable(finder *f, probe *p, uint64_t now) {
  ssize_t n = recv(p->fd, p->rx + p->rx_len, sizeof(p->rx) - p->rx_len, 0);
  size_t off = 0;
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (p->state == P_IDLE || p->state == P_PINGED)
      finish(p, R_DEAD, n == 0 ? "closed" : "reset");
    else
      finish(p, R_FAILED, "connection closed during the handshake");
    return;
  }
  p->rx_len += (size_t)n;
  while (p->state != P_DONE) {
    vigil_event ev;
    long used = vigil_session_recv(&p->s, now, p->rx + off, p->rx_len - off, &ev);
    if (used < 0) {
      finish(p, p->state == P_HANDSHAKE ? R_FAILED : R_DEAD, "protocol error");
      return;
    }
    off += (size_t)used;
    if (ev.type != VIGIL_EVENT_NONE)
      on_event(f, p, &ev, now);
    else if (used == 0)
      break;
  }
  if (p->state == P_DONE)
    return;
  memmove(p->rx, p->rx + off, p->rx_len - off);
  p->rx_len -= off;
  if (flush(p, now) != 0)
    finish(p, p->state == P_HANDSHAKE ? R_FAILED : R_DEAD, "write failed");
}

static void on_time(const finder *f, probe *p, uint64_t now) {
  if (p->state == P_IDLE && now >= p->idle_since_ns + p->hold_ms * VIGIL_MS) {
    vigil_session_stalled(&p->s, now); /* queues one fresh ping */
    if (flush(p, now) != 0) {
      finish(p, R_DEAD, "ping could not be written");
      return;
    }
    p->state = P_PINGED;
    p->deadline_ns = now + f->o->deadline_ms * VIGIL_MS;
  } else if (p->state == P_PINGED && now >= p->deadline_ns) {
    finish(p, R_DEAD, "no pong within the deadline");
  } else if ((p->state == P_CONNECTING || p->state == P_HANDSHAKE) && now >= p->deadline_ns) {
    finish(p, R_FAILED, "no answer to the handshake within 3 s");
  }
}

/* A dead hold makes every longer one pointless. */
static void abandon_longer(finder *f, uint64_t hold_ms) {
  for (size_t i = 0; i < f->n; i++)
    if (f->p[i].state != P_DONE && f->p[i].hold_ms > hold_ms)
      finish(&f->p[i], R_ABANDONED, "a shorter hold already failed");
}

static uint64_t next_wake(const finder *f, uint64_t now) {
  uint64_t wake = now + 200 * VIGIL_MS;
  for (size_t i = 0; i < f->n; i++) {
    const probe *p = &f->p[i];
    uint64_t t = p->state == P_IDLE ? p->idle_since_ns + p->hold_ms * VIGIL_MS : p->deadline_ns;
    if (p->state != P_DONE && t < wake)
      wake = t;
  }
  return wake;
}

static void print_probe(const finder *f, const probe *p, int round) {
  static const char *const names[] = {"", "alive", "dead", "failed", "abandoned"};
  vigil_cli_line l;
  vigil_cli_line_begin(&l, f->o->c.json, "probe", f->peer, NULL, 0);
  vigil_cli_line_u64(&l, "round", (uint64_t)round);
  vigil_cli_line_u64(&l, "hold_ms", p->hold_ms);
  vigil_cli_line_cstr(&l, "result", names[p->result]);
  vigil_cli_line_cstr(&l, "detail", p->why);
  vigil_cli_line_end(&l, stdout);
}

static void run_round(finder *f, const uint64_t *holds, size_t n, int round) {
  struct pollfd pfd[MAX_PROBES];
  uint64_t now = mono_ns();
  size_t live = n;
  f->n = n;
  for (size_t i = 0; i < n; i++)
    start_probe(f, &f->p[i], holds[i], now);
  while (live > 0) {
    int wait_ms;
    now = mono_ns();
    wait_ms = (int)((next_wake(f, now) - now) / VIGIL_MS) + 1;
    for (size_t i = 0; i < n; i++) {
      pfd[i].fd = f->p[i].fd;
      pfd[i].events = f->p[i].state == P_CONNECTING ? POLLOUT : POLLIN;
      pfd[i].revents = 0;
    }
    if (poll(pfd, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
      break;
    now = mono_ns();
    live = 0;
    for (size_t i = 0; i < n; i++) {
      probe *p = &f->p[i];
      if (p->state == P_CONNECTING && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP)))
        on_connected(f, p, now);
      else if (p->state != P_DONE && (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
        on_readable(f, p, now);
      if (p->state != P_DONE)
        on_time(f, p, now);
      if (p->state == P_DONE && p->result == R_DEAD)
        abandon_longer(f, p->hold_ms);
    }
    for (size_t i = 0; i < n; i++)
      live += f->p[i].state != P_DONE;
  }
  for (size_t i = 0; i < n; i++) {
    if (f->p[i].state != P_DONE)
      finish(&f->p[i], R_FAILED, "interrupted");
    print_probe(f, &f->p[i], round);
  }
}

/* Narrows [lo, hi] from this round's results; hi = 0 means "none dead". */
static void bracket(const finder *f, uint64_t *lo, uint64_t *hi) {
  for (size_t i = 0; i < f->n; i++)
    if (f->p[i].result == R_DEAD && (*hi == 0 || f->p[i].hold_ms < *hi))
      *hi = f->p[i].hold_ms;
  for (size_t i = 0; i < f->n; i++)
    if (f->p[i].result == R_ALIVE && f->p[i].hold_ms > *lo && (*hi == 0 || f->p[i].hold_ms < *hi))
      *lo = f->p[i].hold_ms;
}

static void print_result(const finder *f, uint64_t lo, uint64_t hi) {
  vigil_cli_line l;
  uint64_t rec = lo / 2;
  vigil_cli_line_begin(&l, f->o->c.json, "result", f->peer, NULL, 0);
  if (hi == 0) {
    vigil_cli_line_null(&l, "timeout_ms");
    vigil_cli_line_u64(&l, "alive_ms", lo);
    vigil_cli_line_null(&l, "dead_ms");
    vigil_cli_line_cstr(&l, "detail", "no idle timeout found up to the longest hold");
  } else {
    vigil_cli_line_u64(&l, "timeout_ms", (lo + hi) / 2);
    vigil_cli_line_u64(&l, "alive_ms", lo);
    vigil_cli_line_u64(&l, "dead_ms", hi);
    vigil_cli_line_u64(&l, "error_ms", (hi - lo + 1) / 2);
    if (lo == 0)
      vigil_cli_line_cstr(&l, "detail", "even the shortest hold failed: try a smaller --min");
  }
  if (hi != 0 && rec > 0)
    vigil_cli_line_u64(&l, "recommended_interval_ms", rec);
  else
    vigil_cli_line_null(&l, "recommended_interval_ms");
  vigil_cli_line_end(&l, stdout);
  if (!f->o->c.json && hi != 0 && rec > 0)
    printf("idle timeout on the path to %s: %.1f s (alive after %.1f s, gone after %.1f s);\n"
           "recommended heartbeat: vigil connect --interval %llums (pings at 75-100%% of it)\n",
           f->peer, (double)(lo + hi) / 2000.0, (double)lo / 1000.0, (double)hi / 1000.0,
           (unsigned long long)rec);
  else if (!f->o->c.json && hi == 0)
    printf("no idle timeout on the path to %s up to %.1f s: any interval below that is safe\n",
           f->peer, (double)lo / 1000.0);
}

static int find(finder *f) {
  uint64_t holds[MAX_PROBES], lo = 0, hi = 0;
  size_t n = 0;
  for (uint64_t h = f->o->min_ms; h <= f->o->max_ms && n < MAX_PROBES; h *= 2)
    holds[n++] = h;
  run_round(f, holds, n, 1);
  if (!f->any_open)
    return -1;
  bracket(f, &lo, &hi);
  if (lo == 0 && hi == 0) {
    /* Nothing was measured: every probe failed for its own reason (for
     * example a server whose interval policy is too short to stay silent). */
    f->fail_why = f->p[0].why;
    return -1;
  }
  /* A failed stdout (reported by the line writer) ends the search: nobody
   * would see the next round. */
  for (int round = 2; round <= MAX_ROUNDS && hi != 0 && !vigil_cli_out_failed(); round++) {
    uint64_t width = hi - lo, k = f->o->parallel;
    if (width <= 250 || width * 10 <= lo)
      break;
    n = 0;
    for (uint64_t i = 1; i <= k; i++) {
      uint64_t h = lo + width * i / (k + 1);
      if (h > lo && h < hi && (n == 0 || h != holds[n - 1]))
        holds[n++] = h;
    }
    if (n == 0)
      break;
    run_round(f, holds, n, round);
    bracket(f, &lo, &hi);
  }
  print_result(f, lo, hi);
  return 0;
}

int vigil_cmd_idle_timeout(int argc, char **argv) {
  idle_opts o;
  finder f;
  const char *why;
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  memset(&f, 0, sizeof(f));
  f.o = &o;
  if (vigil_cli_resolve(&o.c.addr, 0, &f.ai, &why) != 0) {
    fprintf(stderr, "vigil idle-timeout: cannot resolve '%s': %s\n", o.c.addr.host, why);
    return VIGIL_CLI_FAIL;
  }
  vigil_cli_format_sockaddr(f.ai->ai_addr, f.ai->ai_addrlen, f.peer, sizeof(f.peer));
  snprintf(f.id, sizeof(f.id), "idle-timeout-%ld", (long)getpid());
  rc = find(&f);
  freeaddrinfo(f.ai);
  if (rc != 0) {
    fprintf(stderr, "vigil idle-timeout: %s: %s", f.peer,
            f.fail_why ? f.fail_why : "no connection completed the handshake");
    if (f.agreed_interval_ms != 0)
      fprintf(stderr,
              " (the server agreed to a %u ms heartbeat interval; holds must stay "
              "below 3/4 of it)",
              f.agreed_interval_ms);
    fputc('\n', stderr);
    return VIGIL_CLI_FAIL;
  }
  return VIGIL_CLI_OK;
}

#endif
