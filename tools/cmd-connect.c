/* `vigil connect`: a long-lived client that prints the agreed heartbeat,
 * an RTT line per answered ping, every death with its cause, and each
 * reconnect the library schedules (exponential backoff with full jitter,
 * never sooner than a retry-after the server asked for).
 *
 * SIGINT / SIGTERM close the connection with CLOSE "goodbye", so the server
 * records cause `closed` rather than a crash, and exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vigil.h"

#if defined(_WIN32)
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

#define CMD "connect"

static const char usage_text[] =
    "usage: vigil connect HOST:PORT [options]\n"
    "\n"
    "Stays connected to a vigil server: prints the agreed heartbeat, the RTT\n"
    "of every answered ping, each death with its cause, and reconnects with\n"
    "exponential backoff and jitter.\n"
    "\n"
    "options:\n"
    "  --id NAME          peer id sent to the server, 1..255 bytes of UTF-8\n"
    "                     (default HOSTNAME-PID); a second client with the same\n"
    "                     id takes over the first\n"
    "  --interval D       heartbeat interval proposed to the server (default 1s)\n"
    "  --timeout D        silence after which the server is dead (default 3 x\n"
    "                     interval; at least 2 x interval)\n"
    "  --connect-timeout D  a TCP connect must complete within D (default 5s)\n"
    "  --keepalive D      kernel keepalive + TCP_USER_TIMEOUT budget D (default:\n"
    "                     derived from the agreed timeout)\n"
    "  --no-keepalive     leave kernel keepalive off\n"
    "  --backoff-max D    longest wait between reconnect attempts (default 30s)\n"
    "  --no-reconnect     exit 1 at the first death or failed attempt\n"
    "  --max-attempts N   give up (exit 1) after N failed attempts in a row\n"
    "  --quiet-rtt        do not print rtt lines\n"
    "  --json             one JSON object per line (schema: docs/CLI.md)\n"
    "  -h, --help         this text\n"
    "\n"
    "Durations: 250ms, 3s, 1.5s, 2m, 1h. Exit status: 0 after SIGINT/SIGTERM,\n"
    "1 when it gave up (--no-reconnect, --max-attempts), 2 for bad usage.\n";

typedef struct connect_opts {
  vigil_cli_addr addr;
  const char *id;
  uint32_t interval_ms, timeout_ms, connect_timeout_ms, keepalive_ms, max_attempts, backoff_max_ms;
  int keepalive_off, no_reconnect, quiet_rtt, json;
} connect_opts;

typedef struct connect_state {
  connect_opts o;
  vigil_loop loop;
  vigil_client *cli;
  vigil_cli_sigwatch sig;
  int signalled, exit_status;
  char target[sizeof(((vigil_cli_addr *)0)->host) + 16];
  char default_id[96];
} connect_state;

static unsigned attempt_now(const connect_state *s) {
  vigil_client_stats st;
  vigil_client_get_stats(s->cli, &st);
  return st.attempt;
}

static void begin(connect_state *s, vigil_cli_line *l, const char *event, const char *peer) {
  vigil_cli_line_begin(l, s->o.json, event, peer != NULL ? peer : s->target, s->o.id,
                       strlen(s->o.id));
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  connect_state *s = user;
  vigil_cli_line l;

  (void)c;
  begin(s, &l, "open", info->peer);
  vigil_cli_line_u64(&l, "interval_ms", info->interval_ms);
  vigil_cli_line_u64(&l, "timeout_ms", info->timeout_ms);
  vigil_cli_line_u64(&l, "attempt", info->attempt);
  vigil_cli_line_end(&l, stdout);
}

static void on_rtt(vigil_conn *c, uint64_t rtt_ns, void *user) {
  connect_state *s = user;
  vigil_conn_info ci;
  vigil_cli_line l;

  if (s->o.quiet_rtt)
    return;
  vigil_conn_get_info(c, &ci);
  begin(s, &l, "rtt", ci.peer);
  vigil_cli_line_ms(&l, "rtt_ms", rtt_ns);
  vigil_cli_line_ms(&l, "srtt_ms", ci.session.srtt_ns);
  vigil_cli_line_end(&l, stdout);
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  connect_state *s = user;
  vigil_conn_info ci;
  vigil_cli_line l;

  vigil_conn_get_info(c, &ci);
  begin(s, &l, "dead", vigil_cli_conn_peer(&ci, NULL));
  vigil_cli_line_death(&l, d, 1);
  vigil_cli_line_end(&l, stdout);
}

/* A failed attempt: the connect itself, or the handshake (refused by the
 * server's limits, too slow, malformed). */
static void on_reject(vigil_conn *c, const vigil_death *d, void *user) {
  connect_state *s = user;
  vigil_conn_info ci;
  vigil_cli_line l;

  vigil_conn_get_info(c, &ci);
  begin(s, &l, "connect_failed", vigil_cli_conn_peer(&ci, NULL));
  vigil_cli_line_cstr(&l, "message",
                      d->error != 0       ? vigil_strerror(d->error)
                      : d->detail != NULL ? d->detail
                                          : vigil_cause_name(d->cause));
  vigil_cli_line_u64(&l, "attempt", attempt_now(s));
  vigil_cli_line_death(&l, d, 0);
  vigil_cli_line_end(&l, stdout);
}

static void on_reconnect(vigil_client *cli, unsigned attempt, uint32_t delay_ms, void *user) {
  connect_state *s = user;
  vigil_cli_line l;

  (void)cli;
  begin(s, &l, "reconnect", NULL);
  vigil_cli_line_u64(&l, "attempt", attempt);
  vigil_cli_line_u64(&l, "delay_ms", delay_ms);
  vigil_cli_line_end(&l, stdout);
}

static void on_closed(vigil_client *cli, void *user) {
  connect_state *s = user;
  vigil_cli_line l;

  (void)cli;
  begin(s, &l, "exit", NULL);
  vigil_cli_line_cstr(&l, "reason", s->signalled ? "signal" : "gave_up");
  vigil_cli_line_end(&l, stdout);
  s->exit_status = s->signalled ? VIGIL_CLI_OK : VIGIL_CLI_FAIL;
  vigil_cli_sigwatch_stop(&s->loop, &s->sig);
  vigil_loop_stop(&s->loop);
}

static void on_signal(void *arg, int signo) {
  connect_state *s = arg;

  (void)signo;
  s->signalled = 1;
  if (vigil_client_close(s->cli, 1000) != 0)
    on_closed(s->cli, s);
}

static int parse_args(int argc, char **argv, connect_opts *o) {
  const char *addr = NULL, *why;

  for (int i = 1; i < argc; i++) {
    int rc;
    if (vigil_cli_is_help(argv[i])) {
      fputs(usage_text, stdout);
      return -1;
    }
    if ((rc = vigil_cli_flag_value(CMD, argc, argv, &i, "--id", &o->id)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--interval", &o->interval_ms)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--timeout", &o->timeout_ms)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--connect-timeout",
                                      &o->connect_timeout_ms)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--keepalive", &o->keepalive_ms)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--backoff-max", &o->backoff_max_ms)) ||
        (rc = vigil_cli_flag_uint(CMD, argc, argv, &i, "--max-attempts", 1, 1000000,
                                  &o->max_attempts))) {
      if (rc < 0)
        return VIGIL_CLI_USAGE;
    } else if (strcmp(argv[i], "--json") == 0) {
      o->json = 1;
    } else if (strcmp(argv[i], "--quiet-rtt") == 0) {
      o->quiet_rtt = 1;
    } else if (strcmp(argv[i], "--no-reconnect") == 0) {
      o->no_reconnect = 1;
    } else if (strcmp(argv[i], "--no-keepalive") == 0) {
      o->keepalive_off = 1;
    } else if (vigil_cli_positional(CMD, argv[i], &addr) != 0) {
      return VIGIL_CLI_USAGE;
    }
  }
  if (addr == NULL)
    return vigil_cli_usage(CMD, "missing HOST:PORT (see vigil connect --help)");
  if (vigil_cli_parse_addr(addr, 0, &o->addr, &why) != 0)
    return vigil_cli_usage(CMD, "bad address '%s': %s", addr, why);
  if (o->id != NULL && vigil_cli_check_id(CMD, o->id) != 0)
    return VIGIL_CLI_USAGE;
  if (o->interval_ms == 0)
    o->interval_ms = 1000;
  if (o->interval_ms < 100)
    return vigil_cli_usage(CMD, "--interval %lums is below the 100ms minimum",
                           (unsigned long)o->interval_ms);
  if (o->timeout_ms != 0 && o->timeout_ms / 2 < o->interval_ms)
    return vigil_cli_usage(CMD, "--timeout %lums must be at least 2 x --interval %lums",
                           (unsigned long)o->timeout_ms, (unsigned long)o->interval_ms);
  return 0;
}

static int configure(connect_state *s, vigil_client_config *cfg) {
  const connect_opts *o = &s->o;

  vigil_client_config_init(cfg);
  cfg->session.interval_ms = o->interval_ms;
  cfg->session.timeout_ms = o->timeout_ms;
  cfg->session.id = o->id;
  cfg->session.id_len = strlen(o->id);
  cfg->connect_timeout_ms = o->connect_timeout_ms;
  cfg->no_reconnect = o->no_reconnect;
  cfg->max_attempts = o->max_attempts;
  cfg->backoff_cap_ms = o->backoff_max_ms;
  if (vigil_cli_keepalive(CMD, o->keepalive_ms, o->keepalive_off, &cfg->keepalive_mode,
                          &cfg->keepalive) != 0)
    return VIGIL_CLI_USAGE;
  cfg->cb.on_open = on_open;
  cfg->cb.on_rtt = on_rtt;
  cfg->cb.on_death = on_death;
  cfg->cb.on_reject = on_reject;
  cfg->on_reconnect = on_reconnect;
  cfg->on_closed = on_closed;
  cfg->user = s;
  return 0;
}

static void make_default_id(connect_state *s) {
  char host[64] = "vigil";

#if !defined(_WIN32)
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "vigil");
  host[sizeof(host) - 1] = '\0';
#endif
  snprintf(s->default_id, sizeof(s->default_id), "%s-%ld", host, (long)getpid());
  if (!vigil_utf8_valid((const uint8_t *)s->default_id, strlen(s->default_id)))
    snprintf(s->default_id, sizeof(s->default_id), "vigil-%ld", (long)getpid());
  s->o.id = s->default_id;
}

static int run(connect_state *s) {
  vigil_client_config cfg;
  vigil_cli_line l;
  int rc;

  if ((rc = configure(s, &cfg)) != 0)
    return rc;
  if ((rc = vigil_loop_init(&s->loop, NULL)) != 0) {
    fprintf(stderr, "vigil connect: event loop: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  if ((rc = vigil_client_new(&s->cli, &s->loop, &cfg)) != 0) {
    fprintf(stderr, "vigil connect: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  begin(s, &l, "connecting", NULL);
  vigil_cli_line_u64(&l, "attempt", 1);
  vigil_cli_line_end(&l, stdout);
  if ((rc = vigil_client_connect(s->cli, s->o.addr.host, s->o.addr.port_num)) != 0) {
    fprintf(stderr, "vigil connect: %s: %s\n", s->target, vigil_strerror(rc));
    vigil_client_free(s->cli);
    return VIGIL_CLI_FAIL;
  }
  s->exit_status = VIGIL_CLI_FAIL;
  vigil_cli_sigwatch_start(&s->loop, &s->sig, on_signal, s);
  if (vigil_cli_run_loop(CMD, &s->loop) != 0)
    return VIGIL_CLI_FAIL;
  vigil_client_free(s->cli);
  vigil_loop_run(&s->loop, VIGIL_RUN_NOWAIT);
  vigil_loop_close(&s->loop);
  return s->exit_status;
}

int vigil_cmd_connect(int argc, char **argv) {
  static connect_state s;
  int rc;

  memset(&s, 0, sizeof(s));
  rc = parse_args(argc, argv, &s.o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  if (s.o.id == NULL)
    make_default_id(&s);
  vigil_cli_addr_text(&s.o.addr, s.target, sizeof(s.target));
  return run(&s);
}
