/* `vigil probe`: is the peer alive? A handshake, N answered pings, and an
 * RTT summary in the manner of ping(8), with an exit status a script can
 * use: 0 alive, 1 dead or unreachable, 2 bad usage.
 *
 * It is a client with reconnection off whose session pings on schedule
 * (ping_on_schedule): once at OPEN and then every agreed interval, whatever
 * the server sends. A heartbeat pings only when the link is idle, and the
 * server's own ping keeps it from being idle, so a probe that waited for
 * idleness took 3 x as long as asked, or hit its deadline and called a live
 * server dead. "Alive" needs every ping answered: TCP is reliable, so a
 * missing pong is not a lost packet but a peer that stopped answering.
 *
 * SIGINT / SIGTERM end it like ping(8): the summary of what was measured so
 * far, exit 0 if any pong came back, else 1.
 *
 * Every wait is bounded: the connect and the handshake by --timeout (a
 * SIGSTOPped server completes the TCP handshake in its kernel but never
 * answers HELLO), each pong by the heartbeat timeout, and the whole probe by
 * a deadline derived from both. */
#include <stdio.h>
#include <string.h>

#include "cli-auth.h"
#include "cli-tls.h"
#include "cli.h"
#include "commands.h"
#include "vigil.h"

#if defined(_WIN32)
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

#define CMD "probe"

static const char usage_text[] =
    "usage: vigil probe HOST:PORT [options]\n"
    "\n"
    "Connects, completes the vigil handshake, sends N pings (the first at once,\n"
    "then one every interval), and prints their RTT like ping(8).\n"
    "\n"
    "options:\n"
    "  -c, --count N      pings to wait for, 1..1000 (default 3)\n"
    "  -i, --interval D   spacing of the pings (default 1s; the server may clamp it)\n"
    "  -t, --timeout D    how long the connect, the handshake and each pong may\n"
    "                     take (default 3 x interval, at most 5s; the heartbeat\n"
    "                     timeout is at least 2 x interval)\n"
    "  --id NAME          peer id (default probe-PID)\n" VIGIL_CLI_TLS_CLIENT_HELP
        VIGIL_CLI_AUTH_CLIENT_HELP
    "  -j, --json         one JSON object per line (schema: docs/CLI.md)\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 every ping answered, 1 dead or unreachable (connect failed,\n"
    "no handshake or no pong in time, closed by the server), 2 bad usage.\n"
    "Interrupted (SIGINT, SIGTERM): the summary so far; 0 if any pong came back.\n";

typedef struct probe_opts {
  vigil_cli_common c; /* address, --id, --interval, --timeout, --json */
  uint32_t count;
  vigil_cli_tls tls;   /* --tls, --tls-ca, --tls-cert, --tls-key, --tls-name, --tls-no-verify */
  vigil_cli_auth auth; /* --token, --token-file */
} probe_opts;

typedef struct probe_state {
  probe_opts o;
  vigil_loop loop;
  vigil_client *cli;
  vigil_cli_sigwatch sig;
  vigil_loop_timer deadline;
  unsigned received, sent;
  uint64_t rtt_min, rtt_max, rtt_sum;
  int done, failed, summarised, interrupted;
  char target[sizeof(((vigil_cli_addr *)0)->host) + 16];
  char default_id[32];
} probe_state;

static void begin(probe_state *s, vigil_cli_line *l, const char *event, const char *peer) {
  vigil_cli_line_begin(l, s->o.c.json, event, peer != NULL ? peer : s->target, s->o.c.id,
                       strlen(s->o.c.id));
}

static void print_summary(probe_state *s);
static void on_deadline(vigil_loop *loop, vigil_loop_timer *t);

/* The verdict is in: print the summary now (the goodbye that follows may
 * take a moment) and stop the client once; the rest arrives through
 * on_closed. */
static void finish(probe_state *s, int failed) {
  if (s->done)
    return;
  s->done = 1;
  s->failed = failed;
  print_summary(s);
  vigil_loop_timer_cancel(&s->loop, &s->deadline);
  if (vigil_client_close(s->cli, 500) != 0)
    vigil_loop_stop(&s->loop);
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  probe_state *s = user;

  if (s->o.c.json) {
    vigil_cli_line l;
    begin(s, &l, "open", info->peer);
    vigil_cli_line_u64(&l, "interval_ms", info->interval_ms);
    vigil_cli_line_u64(&l, "timeout_ms", info->timeout_ms);
    vigil_cli_line_tls(&l, c);
    vigil_cli_line_end(&l, stdout);
  } else {
    const vigil_tls_conn *t = vigil_conn_tls(c);
    printf("PROBE %s: open, interval %lu ms, timeout %lu ms%s%s\n", info->peer,
           (unsigned long)info->interval_ms, (unsigned long)info->timeout_ms, t != NULL ? ", " : "",
           t != NULL ? vigil_tls_conn_version(t) : "");
    vigil_cli_out_flush(stdout);
  }
  /* The server may have imposed a longer heartbeat than we asked for: from
   * here each ping comes within an agreed interval and each pong within the
   * agreed timeout, or the session itself gives the verdict. */
  vigil_loop_timer_arm(&s->loop, &s->deadline,
                       vigil_loop_now_ms(&s->loop) +
                           (uint64_t)s->o.count * ((uint64_t)info->interval_ms + info->timeout_ms) +
                           1000,
                       on_deadline);
}

static void on_rtt(vigil_conn *c, uint64_t rtt_ns, void *user) {
  probe_state *s = user;
  vigil_conn_info ci;

  if (s->done)
    return;
  vigil_conn_get_info(c, &ci);
  s->received++;
  s->sent = s->received;
  s->rtt_sum += rtt_ns;
  if (s->received == 1 || rtt_ns < s->rtt_min)
    s->rtt_min = rtt_ns;
  if (rtt_ns > s->rtt_max)
    s->rtt_max = rtt_ns;
  if (s->o.c.json) {
    vigil_cli_line l;
    begin(s, &l, "rtt", ci.peer);
    vigil_cli_line_u64(&l, "seq", s->received);
    vigil_cli_line_ms(&l, "rtt_ms", rtt_ns);
    vigil_cli_line_ms(&l, "srtt_ms", ci.session.srtt_ns);
    vigil_cli_line_end(&l, stdout);
  } else {
    printf("pong from %s: seq=%u rtt=%llu.%03llu ms\n", ci.peer, s->received,
           (unsigned long long)(rtt_ns / 1000000), (unsigned long long)(rtt_ns / 1000 % 1000));
    vigil_cli_out_flush(stdout);
  }
  if (s->received >= s->o.count)
    finish(s, 0);
}

static void report_end(probe_state *s, vigil_conn *c, const char *event, const vigil_death *d) {
  vigil_conn_info ci;
  vigil_cli_line l;

  vigil_conn_get_info(c, &ci);
  if (ci.session.ping_outstanding)
    s->sent = s->received + 1;
  if (s->o.c.json) {
    int dead = strcmp(event, "dead") == 0;
    begin(s, &l, event, vigil_cli_conn_peer(&ci, NULL));
    if (dead)
      vigil_cli_line_death(&l, d, 1);
    else
      vigil_cli_line_failed(&l, d->error != 0 ? vigil_strerror(d->error) : d->detail, 1, d);
    vigil_cli_line_end(&l, stdout);
    return;
  }
  printf("%s %s: %s", event, vigil_cli_conn_peer(&ci, s->target), vigil_cause_name(d->cause));
  if (d->error != 0)
    printf(" (%s)", vigil_strerror(d->error));
  else if (d->detail != NULL)
    printf(" (%s)", d->detail);
  if (d->close_received && d->reason != NULL)
    printf(", server said \"%.*s\"", (int)d->reason_len, d->reason);
  if (strcmp(event, "dead") == 0)
    printf(" after %llu ms of silence", (unsigned long long)(d->silent_ns / 1000000));
  printf("\n");
  vigil_cli_out_flush(stdout);
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  probe_state *s = user;

  if (s->done)
    return; /* our own goodbye after the last pong */
  report_end(s, c, "dead", d);
  finish(s, 1);
}

static void on_reject(vigil_conn *c, const vigil_death *d, void *user) {
  probe_state *s = user;

  if (s->done)
    return;
  report_end(s, c, "connect_failed", d);
  finish(s, 1);
}

static void on_closed(vigil_client *cli, void *user) {
  probe_state *s = user;

  (void)cli;
  s->done = 1;
  vigil_loop_timer_cancel(&s->loop, &s->deadline);
  vigil_cli_loop_stop(&s->loop, &s->sig);
}

static void on_deadline(vigil_loop *loop, vigil_loop_timer *t) {
  probe_state *s = vigil_container_of(t, probe_state, deadline);
  vigil_cli_line l;

  (void)loop;
  if (s->o.c.json) {
    begin(s, &l, "dead", NULL);
    vigil_cli_line_cstr(&l, "cause", vigil_cause_name(VIGIL_CAUSE_LOCAL));
    vigil_cli_line_cstr(&l, "detail", "probe deadline passed");
    vigil_cli_line_end(&l, stdout);
  } else {
    printf("dead %s: no answer before the probe's deadline\n", s->target);
  }
  finish(s, 1);
}

/* Interrupted: what was measured so far decides, as for ping(8). A ping
 * still in flight counts as sent and not answered. */
static void on_signal(void *arg, int signo) {
  probe_state *s = arg;
  vigil_conn *c = vigil_client_conn(s->cli);

  (void)signo;
  if (s->done)
    return;
  if (c != NULL) {
    vigil_conn_info ci;
    vigil_conn_get_info(c, &ci);
    if (ci.session.ping_outstanding)
      s->sent = s->received + 1;
  }
  s->interrupted = 1;
  finish(s, s->received == 0);
}

/* Exit 0 when alive: every ping answered, or, when interrupted, any. */
static int probe_alive(const probe_state *s) {
  if (s->interrupted)
    return s->received > 0;
  return !s->failed && s->received >= s->o.count;
}

static void print_summary(probe_state *s) {
  unsigned loss = s->sent > 0 ? (s->sent - s->received) * 100u / s->sent : 100u;
  int alive = probe_alive(s);

  if (s->summarised)
    return;
  s->summarised = 1;

  if (s->o.c.json) {
    vigil_cli_line l;
    begin(s, &l, "summary", NULL);
    vigil_cli_line_u64(&l, "sent", s->sent);
    vigil_cli_line_u64(&l, "received", s->received);
    vigil_cli_line_u64(&l, "loss_pct", loss);
    if (s->received > 0) {
      vigil_cli_line_ms(&l, "rtt_min_ms", s->rtt_min);
      vigil_cli_line_ms(&l, "rtt_avg_ms", s->rtt_sum / s->received);
      vigil_cli_line_ms(&l, "rtt_max_ms", s->rtt_max);
    } else {
      vigil_cli_line_null(&l, "rtt_min_ms");
      vigil_cli_line_null(&l, "rtt_avg_ms");
      vigil_cli_line_null(&l, "rtt_max_ms");
    }
    vigil_cli_line_bool(&l, "alive", alive);
    vigil_cli_line_end(&l, stdout);
    return;
  }
  printf("--- %s vigil probe ---\n%u pings, %u pongs, %u%% loss", s->target, s->sent, s->received,
         loss);
  if (s->received > 0) {
    uint64_t avg = s->rtt_sum / s->received;
    printf(", rtt min/avg/max = %llu.%03llu/%llu.%03llu/%llu.%03llu ms",
           (unsigned long long)(s->rtt_min / 1000000),
           (unsigned long long)(s->rtt_min / 1000 % 1000), (unsigned long long)(avg / 1000000),
           (unsigned long long)(avg / 1000 % 1000), (unsigned long long)(s->rtt_max / 1000000),
           (unsigned long long)(s->rtt_max / 1000 % 1000));
  }
  printf("\n%s\n", alive ? "alive" : "dead");
  vigil_cli_out_flush(stdout);
}

static int parse_args(int argc, char **argv, probe_opts *o) {
  vigil_cli_common *c = &o->c;
  vigil_cli_opt own[24] = {{"count", 'c', VIGIL_CLI_UINT, &o->count, 1, 1000, 0},
                           {NULL, 0, VIGIL_CLI_FLAG, NULL, 0, 0, 0}};
  int rc;

  vigil_cli_tls_opts(&o->tls, VIGIL_ROLE_CLIENT, own);
  vigil_cli_auth_opts(&o->auth, VIGIL_ROLE_CLIENT, own);
  rc = vigil_cli_parse_args(CMD, usage_text,
                            VIGIL_CLI_OPT_ID | VIGIL_CLI_OPT_INTERVAL | VIGIL_CLI_OPT_TIMEOUT |
                                VIGIL_CLI_OPT_JSON,
                            argc, argv, c, own);

  if (rc != 0)
    return rc;
  if (o->count == 0)
    o->count = 3;
  if (vigil_cli_client_interval(CMD, &c->interval_ms) != 0)
    return VIGIL_CLI_USAGE;
  if (c->timeout_ms == 0) { /* 3 x interval, at most the library's handshake default */
    vigil_session_config d;
    vigil_session_config_init(&d);
    c->timeout_ms =
        c->interval_ms <= d.handshake_timeout_ms / 3 ? 3 * c->interval_ms : d.handshake_timeout_ms;
  }
  if ((rc = vigil_cli_auth_setup(CMD, VIGIL_ROLE_CLIENT, &o->auth)) != 0)
    return rc;
  return vigil_cli_tls_setup(CMD, VIGIL_ROLE_CLIENT, &o->tls);
}

static int run(probe_state *s) {
  vigil_client_config cfg;
  uint64_t bound_ms;
  uint32_t hb_timeout;
  int rc;

  hb_timeout =
      s->o.c.timeout_ms / 2 < s->o.c.interval_ms ? 2 * s->o.c.interval_ms : s->o.c.timeout_ms;
  vigil_client_config_init(&cfg);
  cfg.session.interval_ms = s->o.c.interval_ms;
  cfg.session.timeout_ms = hb_timeout;
  cfg.session.handshake_timeout_ms = s->o.c.timeout_ms;
  cfg.session.ping_on_schedule = 1;
  cfg.session.id = s->o.c.id;
  cfg.session.id_len = strlen(s->o.c.id);
  cfg.connect_timeout_ms = s->o.c.timeout_ms;
  cfg.tls = s->o.tls.ctx;
  cfg.tls_name = s->o.tls.name;
  cfg.credential = s->o.auth.cred_len != 0 ? s->o.auth.cred : NULL;
  cfg.credential_len = s->o.auth.cred_len;
  cfg.no_reconnect = 1;
  cfg.cb.on_open = on_open;
  cfg.cb.on_rtt = on_rtt;
  cfg.cb.on_death = on_death;
  cfg.cb.on_reject = on_reject;
  cfg.on_closed = on_closed;
  cfg.user = s;
  if ((rc = vigil_loop_init(&s->loop, NULL)) != 0) {
    fprintf(stderr, "vigil probe: event loop: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  if ((rc = vigil_client_new(&s->cli, &s->loop, &cfg)) != 0 ||
      (rc = vigil_client_connect(s->cli, s->o.c.addr.host, s->o.c.addr.port_num)) != 0) {
    fprintf(stderr, "vigil probe: %s: %s\n", s->target, vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  /* connect + handshake, then every ping at most an interval late and
   * answered within the heartbeat timeout, plus slack for the loop */
  bound_ms =
      2ull * s->o.c.timeout_ms + (uint64_t)s->o.count * (s->o.c.interval_ms + hb_timeout) + 1000;
  vigil_loop_timer_init(&s->deadline);
  vigil_loop_timer_arm(&s->loop, &s->deadline, vigil_loop_now_ms(&s->loop) + bound_ms, on_deadline);
  if (vigil_cli_loop_main(CMD, &s->loop, &s->sig, on_signal, s) != 0)
    return VIGIL_CLI_FAIL;
  print_summary(s); /* if the loop ended without a verdict */
  rc = probe_alive(s) ? VIGIL_CLI_OK : VIGIL_CLI_FAIL;
  vigil_client_free(s->cli);
  vigil_cli_loop_finish(&s->loop);
  vigil_tls_free(s->o.tls.ctx);
  vigil_cli_auth_wipe(&s->o.auth);
  return rc;
}

int vigil_cmd_probe(int argc, char **argv) {
  static probe_state s;
  int rc;

  memset(&s, 0, sizeof(s));
  rc = parse_args(argc, argv, &s.o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  if (s.o.c.id == NULL) {
    snprintf(s.default_id, sizeof(s.default_id), "probe-%ld", (long)getpid());
    s.o.c.id = s.default_id;
  }
  vigil_cli_addr_text(&s.o.c.addr, s.target, sizeof(s.target));
  return run(&s);
}
