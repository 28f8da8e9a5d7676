/* `vigil connect`: a long-lived client that prints the agreed heartbeat,
 * an RTT line per answered ping, every death with its cause, and each
 * reconnect the library schedules (exponential backoff with full jitter,
 * never sooner than a retry-after the server asked for).
 *
 * SIGINT / SIGTERM close the connection with CLOSE "goodbye", so the server
 * records cause `closed` rather than a crash, and exit 0.
 *
 * --send-every D keeps data in flight: once a connection is open, one
 * message of --send-size bytes every D, so faults can be tried with data
 * pending (TCP_USER_TIMEOUT, a heartbeat behind queued data). A send the
 * library refuses for backpressure (VIGIL_EQUEUEFULL) is counted and
 * skipped: the next one is tried a period later, never in a loop. Messages
 * the connection did not finish writing when it died come back through
 * on_unsent; the dead line counts them (the connection's queue at that
 * moment, which is exactly what on_unsent hands back) and the exit line
 * totals what on_unsent returned. */
#include <stdio.h>
#include <stdlib.h>
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
    "  -i, --interval D   heartbeat interval proposed to the server (default 1s)\n"
    "  -t, --timeout D    silence after which the server is dead (default 3 x\n"
    "                     interval; at least 2 x interval)\n"
    "  --connect-timeout D  a TCP connect must complete within D (default 5s)\n"
    "  --keepalive D      kernel keepalive + TCP_USER_TIMEOUT budget D (default:\n"
    "                     derived from the agreed timeout)\n"
    "  --no-keepalive     leave kernel keepalive off\n"
    "  --backoff-max D    longest wait between reconnect attempts (default 30s)\n"
    "  --no-reconnect     exit 1 at the first death or failed attempt\n"
    "  --max-attempts N   give up (exit 1) after N failed attempts in a row\n"
    "  -q, --quiet-rtt    do not print rtt lines\n"
    "  --send-every D     once open, send one message every D (data in flight)\n"
    "  --send-size N      bytes per message, 1..1048576, at most the agreed\n"
    "                     max_message (default 64)\n" VIGIL_CLI_TLS_CLIENT_HELP
        VIGIL_CLI_AUTH_CLIENT_HELP
    "  -j, --json         one JSON object per line (schema: docs/CLI.md)\n"
    "  -h, --help         this text\n"
    "\n"
    "Durations: 250ms, 3s, 1.5s, 2m, 1h. Exit status: 0 after SIGINT/SIGTERM,\n"
    "1 when it gave up (--no-reconnect, --max-attempts) or the server refused the\n"
    "credential (CLOSE AUTH_FAILED: retrying the same one cannot help), 2 for bad\n"
    "usage.\n";

typedef struct connect_opts {
  vigil_cli_common c; /* address, --id, --interval, --timeout, --keepalive, --json, --send-* */
  uint32_t connect_timeout_ms, max_attempts, backoff_max_ms;
  int no_reconnect, quiet_rtt;
  vigil_cli_tls tls;   /* --tls, --tls-ca, --tls-cert, --tls-key, --tls-name, --tls-no-verify */
  vigil_cli_auth auth; /* --token, --token-file */
} connect_opts;

typedef struct connect_state {
  connect_opts o;
  vigil_loop loop;
  vigil_client *cli;
  vigil_cli_sigwatch sig;
  vigil_loop_timer send_timer;
  int signalled, exit_status, open;
  int auth_refused;   /* the server answered CLOSE AUTH_FAILED */
  uint32_t send_size; /* --send-size, clamped to the agreed max_message */
  uint64_t seq;
  vigil_cli_data conn, total;       /* --send-every: this connection's, every one's */
  uint64_t conn_received, received; /* messages from the server (serve --echo) */
  uint64_t unsent;                  /* messages handed back by on_unsent */
  uint8_t *msg;
  char target[sizeof(((vigil_cli_addr *)0)->host) + 16];
  char default_id[96];
} connect_state;

static unsigned attempt_now(const connect_state *s) {
  vigil_client_stats st;
  vigil_client_get_stats(s->cli, &st);
  return st.attempt;
}

static void begin(connect_state *s, vigil_cli_line *l, const char *event, const char *peer) {
  vigil_cli_line_begin(l, s->o.c.json, event, peer != NULL ? peer : s->target, s->o.c.id,
                       strlen(s->o.c.id));
}

/* One message of send_size bytes per tick while open. A refusal is only
 * counted: the next message is a period later, whatever happened. */
static void on_send_tick(vigil_loop *loop, vigil_loop_timer *t) {
  connect_state *s = vigil_container_of(t, connect_state, send_timer);

  if (!s->open)
    return;
  vigil_cli_data_head(s->msg, s->send_size, ++s->seq);
  vigil_cli_data_count(&s->conn, vigil_client_send(s->cli, s->msg, s->send_size));
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + s->o.c.send_every_ms, on_send_tick);
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  connect_state *s = user;
  vigil_cli_line l;

  s->open = 1;
  memset(&s->conn, 0, sizeof(s->conn));
  s->conn_received = 0;
  begin(s, &l, "open", info->peer);
  vigil_cli_line_u64(&l, "interval_ms", info->interval_ms);
  vigil_cli_line_u64(&l, "timeout_ms", info->timeout_ms);
  vigil_cli_line_u64(&l, "attempt", info->attempt);
  vigil_cli_line_tls(&l, c);
  if (s->o.c.send_every_ms != 0) {
    s->send_size = s->o.c.send_size < info->max_message ? s->o.c.send_size : info->max_message;
    vigil_cli_line_u64(&l, "send_every_ms", s->o.c.send_every_ms);
    vigil_cli_line_u64(&l, "send_size", s->send_size);
    vigil_loop_timer_arm(&s->loop, &s->send_timer,
                         vigil_loop_now_ms(&s->loop) + s->o.c.send_every_ms, on_send_tick);
  }
  vigil_cli_line_end(&l, stdout);
}

static void on_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  connect_state *s = user;

  (void)c;
  (void)msg;
  (void)len;
  s->conn_received++;
}

static void on_unsent(vigil_conn *c, const uint8_t *msg, size_t len, size_t written, void *user) {
  connect_state *s = user;

  (void)c;
  (void)msg;
  (void)len;
  (void)written;
  s->unsent++;
}

/* A connection's end: `dead` after it was open (the kernel's evidence, and
 * with --send-every what was in flight), or `connect_failed` for an attempt
 * that failed: the connect itself, or the handshake (refused by the
 * server's limits, too slow, malformed). */
static void print_end(connect_state *s, vigil_conn *c, const char *event, const vigil_death *d) {
  vigil_conn_info ci;
  vigil_cli_line l;
  int dead = strcmp(event, "dead") == 0;

  vigil_conn_get_info(c, &ci);
  begin(s, &l, event, vigil_cli_conn_peer(&ci, NULL));
  if (!dead) {
    vigil_cli_line_failed(&l,
                          d->error != 0       ? vigil_strerror(d->error)
                          : d->detail != NULL ? d->detail
                                              : vigil_cause_name(d->cause),
                          attempt_now(s), d);
  } else {
    vigil_cli_line_death(&l, d, 1);
    if (s->o.c.send_every_ms != 0) {
      vigil_cli_line_data(&l, &s->conn, &ci);
      vigil_cli_line_u64(&l, "received", s->conn_received);
    }
  }
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

/* The connection's counts go into the totals when it ends. */
static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  connect_state *s = user;

  s->open = 0;
  vigil_loop_timer_cancel(&s->loop, &s->send_timer);
  print_end(s, c, "dead", d);
  vigil_cli_data_add(&s->total, &s->conn);
  s->received += s->conn_received;
}

/* A server that refuses our credential (CLOSE AUTH_FAILED) would refuse
 * it again: the same token cannot become valid by retrying. So the
 * connect ends there, exit 1, rather than knocking every retry-after. */
static void on_reject(vigil_conn *c, const vigil_death *d, void *user) {
  connect_state *s = user;
  print_end(s, c, "connect_failed", d);
  if (d->close_received && d->close_code == VIGIL_CLOSE_AUTH_FAILED && !s->auth_refused) {
    s->auth_refused = 1;
    fprintf(stderr, "vigil connect: the server refused the credential (%.*s): %s; not retrying\n",
            (int)d->reason_len, d->reason != NULL ? d->reason : "",
            s->o.auth.cred_len != 0 ? "mint a new token (vigil token) for this --id"
                                    : "it requires one: give --token-file FILE");
    (void)vigil_client_close(s->cli, 0);
  }
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
  vigil_cli_line_cstr(&l, "reason",
                      s->signalled      ? "signal"
                      : s->auth_refused ? "auth_failed"
                                        : "gave_up");
  if (s->o.c.send_every_ms != 0) {
    vigil_cli_line_data(&l, &s->total, NULL);
    vigil_cli_line_u64(&l, "received", s->received);
    vigil_cli_line_u64(&l, "unsent", s->unsent);
  }
  vigil_cli_line_end(&l, stdout);
  s->exit_status = s->signalled ? VIGIL_CLI_OK : VIGIL_CLI_FAIL;
  vigil_loop_timer_cancel(&s->loop, &s->send_timer);
  vigil_cli_loop_stop(&s->loop, &s->sig);
}

static void on_signal(void *arg, int signo) {
  connect_state *s = arg;

  (void)signo;
  s->signalled = 1;
  s->open = 0; /* no more data: the goodbye goes out after what is queued */
  vigil_loop_timer_cancel(&s->loop, &s->send_timer);
  if (vigil_client_close(s->cli, 1000) != 0)
    on_closed(s->cli, s);
}

static int parse_args(int argc, char **argv, connect_opts *o) {
  vigil_cli_common *c = &o->c;
  vigil_cli_opt own[24] = {
      {"connect-timeout", 0, VIGIL_CLI_DURATION, &o->connect_timeout_ms, 0, 0, 0},
      {"backoff-max", 0, VIGIL_CLI_DURATION, &o->backoff_max_ms, 0, 0, 0},
      {"max-attempts", 0, VIGIL_CLI_UINT, &o->max_attempts, 1, 1000000, 0},
      {"quiet-rtt", 'q', VIGIL_CLI_FLAG, &o->quiet_rtt, 0, 0, 0},
      {"no-reconnect", 0, VIGIL_CLI_FLAG, &o->no_reconnect, 0, 0, 0},
      {NULL, 0, VIGIL_CLI_FLAG, NULL, 0, 0, 0}};
  int rc;

  vigil_cli_tls_opts(&o->tls, VIGIL_ROLE_CLIENT, own);
  vigil_cli_auth_opts(&o->auth, VIGIL_ROLE_CLIENT, own);
  rc = vigil_cli_parse_args(CMD, usage_text,
                            VIGIL_CLI_OPT_ID | VIGIL_CLI_OPT_INTERVAL | VIGIL_CLI_OPT_TIMEOUT |
                                VIGIL_CLI_OPT_KEEPALIVE | VIGIL_CLI_OPT_JSON | VIGIL_CLI_OPT_SEND,
                            argc, argv, c, own);

  if (rc != 0)
    return rc;
  if (vigil_cli_client_interval(CMD, &c->interval_ms) != 0)
    return VIGIL_CLI_USAGE;
  if ((rc = vigil_cli_auth_setup(CMD, VIGIL_ROLE_CLIENT, &o->auth)) != 0)
    return rc;
  return vigil_cli_tls_setup(CMD, VIGIL_ROLE_CLIENT, &o->tls);
}

static int configure(connect_state *s, vigil_client_config *cfg) {
  const connect_opts *o = &s->o;
  const vigil_cli_common *c = &o->c;

  vigil_client_config_init(cfg);
  cfg->session.interval_ms = c->interval_ms;
  cfg->session.timeout_ms = c->timeout_ms;
  cfg->session.id = c->id;
  cfg->session.id_len = strlen(c->id);
  if (vigil_cli_check_session(CMD, &cfg->session, VIGIL_ROLE_CLIENT) != 0)
    return VIGIL_CLI_USAGE;
  cfg->connect_timeout_ms = o->connect_timeout_ms;
  cfg->tls = o->tls.ctx;
  cfg->tls_name = o->tls.name;
  cfg->credential = o->auth.cred_len != 0 ? o->auth.cred : NULL;
  cfg->credential_len = o->auth.cred_len;
  cfg->no_reconnect = o->no_reconnect;
  cfg->max_attempts = o->max_attempts;
  cfg->backoff_cap_ms = o->backoff_max_ms;
  if (vigil_cli_keepalive(CMD, c->keepalive_ms, c->keepalive_off, &cfg->keepalive_mode,
                          &cfg->keepalive) != 0)
    return VIGIL_CLI_USAGE;
  cfg->cb.on_open = on_open;
  cfg->cb.on_rtt = on_rtt;
  cfg->cb.on_death = on_death;
  cfg->cb.on_reject = on_reject;
  if (o->c.send_every_ms != 0) {
    cfg->cb.on_message = on_message;
    cfg->cb.on_unsent = on_unsent;
  }
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
  s->o.c.id = s->default_id;
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
  vigil_loop_timer_init(&s->send_timer);
  if (s->o.c.send_every_ms != 0 && (s->msg = malloc(s->o.c.send_size)) == NULL) {
    fprintf(stderr, "vigil connect: --send-size %lu: out of memory\n",
            (unsigned long)s->o.c.send_size);
    vigil_client_free(s->cli);
    return VIGIL_CLI_FAIL;
  }
  if (s->msg != NULL)
    memset(s->msg, 'v', s->o.c.send_size);
  begin(s, &l, "connecting", NULL);
  vigil_cli_line_u64(&l, "attempt", 1);
  vigil_cli_line_end(&l, stdout);
  if ((rc = vigil_client_connect(s->cli, s->o.c.addr.host, s->o.c.addr.port_num)) != 0) {
    fprintf(stderr, "vigil connect: %s: %s\n", s->target, vigil_strerror(rc));
    vigil_client_free(s->cli);
    return VIGIL_CLI_FAIL;
  }
  s->exit_status = VIGIL_CLI_FAIL;
  if (vigil_cli_loop_main(CMD, &s->loop, &s->sig, on_signal, s) != 0)
    return VIGIL_CLI_FAIL;
  vigil_client_free(s->cli);
  vigil_cli_loop_finish(&s->loop);
  free(s->msg);
  vigil_tls_free(s->o.tls.ctx);
  vigil_cli_auth_wipe(&s->o.auth);
  return s->exit_status;
}

int vigil_cmd_connect(int argc, char **argv) {
  static connect_state s;
  int rc;

  memset(&s, 0, sizeof(s));
  rc = parse_args(argc, argv, &s.o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  if (s.o.c.id == NULL)
    make_default_id(&s);
  vigil_cli_addr_text(&s.o.c.addr, s.target, sizeof(s.target));
  return run(&s);
}
