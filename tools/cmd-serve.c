/* `vigil serve`: a vigil server that reports, one line per event, who
 * opened, who died and why, and who came back (a takeover of its id).
 *
 * With --interval / --timeout the server imposes those values on every
 * client (its policy's minimum and maximum are both set to them), so the
 * bound printed in `listening` is the bound every verdict is held to.
 * Without them it accepts each client's proposal within the library's
 * default policy, and each `open` line says what was agreed.
 *
 * --print-messages and --echo make it a data sink or an echo server for
 * `vigil connect --send-every`, so faults can be tried with data in flight.
 *
 * SIGINT / SIGTERM start a graceful shutdown: CLOSE "server shutting down"
 * to every client, then exit 0 once the library reports the server closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vigil.h"

#define CMD "serve"

static const char usage_text[] =
    "usage: vigil serve [HOST:]PORT [options]\n"
    "\n"
    "Runs a vigil server and prints one line per event: a client opened,\n"
    "died (with its cause), or rejoined (a new connection with an id that was\n"
    "already connected). PORT alone or :PORT listens on every interface; PORT 0\n"
    "lets the kernel choose (the listening line says which).\n"
    "\n"
    "options:\n"
    "  --interval D      heartbeat interval imposed on clients (default: accept\n"
    "                    the client's proposal, 100ms..10m)\n"
    "  --timeout D       silence after which a client is dead (default 3 x interval\n"
    "                    when --interval is given; at least 2 x interval)\n"
    "  --max-conns N     connections beyond N get CLOSE \"server full\" (default 10000)\n"
    "  --max-per-addr N  connections per client address (default: no limit)\n"
    "  --keepalive D     kernel keepalive + TCP_USER_TIMEOUT budget D (default: derived\n"
    "                    from the agreed timeout)\n"
    "  --no-keepalive    leave kernel keepalive off\n"
    "  --rtt             also print an rtt line for every pong a client sends\n"
    "  --print-messages  print a message line for every message a client sends,\n"
    "                    and count them on its dead line\n"
    "  --echo            send every message back to the client that sent it\n"
    "  --json            one JSON object per line (schema: docs/CLI.md)\n"
    "  -h, --help        this text\n"
    "\n"
    "Durations: 250ms, 3s, 1.5s, 2m, 1h. Exit status: 0 after SIGINT/SIGTERM,\n"
    "1 if it cannot listen, 2 for bad usage.\n";

typedef struct serve_opts {
  vigil_cli_common c; /* address, --interval, --timeout, --keepalive, --json */
  uint32_t max_conns, max_per_addr;
  int rtt, echo, print_messages;
} serve_opts;

typedef struct serve_state {
  serve_opts o;
  vigil_loop loop;
  vigil_server *srv;
  vigil_cli_sigwatch sig;
  int shutting_down;
  char where[sizeof(((vigil_cli_addr *)0)->host) + 16];
} serve_state;

static uint32_t conns_now(const serve_state *s) {
  vigil_server_stats st;
  vigil_server_get_stats(s->srv, &st);
  return st.peers;
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  serve_state *s = user;
  vigil_cli_line l;

  (void)c;
  vigil_cli_line_begin(&l, s->o.c.json, info->rejoin ? "rejoin" : "open", info->peer, info->id,
                       info->id_len);
  if (info->rejoin)
    vigil_cli_line_cstr(&l, "old_peer", info->old_peer);
  vigil_cli_line_u64(&l, "interval_ms", info->interval_ms);
  vigil_cli_line_u64(&l, "timeout_ms", info->timeout_ms);
  vigil_cli_line_u64(&l, "conns", conns_now(s));
  vigil_cli_line_end(&l, stdout);
}

static void on_rtt(vigil_conn *c, uint64_t rtt_ns, void *user) {
  serve_state *s = user;
  vigil_conn_info ci;
  vigil_cli_line l;

  if (!s->o.rtt)
    return;
  vigil_conn_get_info(c, &ci);
  vigil_cli_line_begin(&l, s->o.c.json, "rtt", ci.peer, ci.id, ci.id_len);
  vigil_cli_line_ms(&l, "rtt_ms", rtt_ns);
  vigil_cli_line_ms(&l, "srtt_ms", ci.session.srtt_ns);
  vigil_cli_line_end(&l, stdout);
}

/* Messages received on c so far: a counter hung on the connection (by
 * on_message, with --print-messages or --echo), freed at its end. */
static uint64_t messages_of(const vigil_conn *c) {
  const uint64_t *n = vigil_conn_get_data(c);
  return n != NULL ? *n : 0;
}

static void on_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  serve_state *s = user;
  uint64_t *n = vigil_conn_get_data(c);
  vigil_conn_info ci;
  vigil_cli_line l;

  if (n == NULL && (n = calloc(1, sizeof(*n))) != NULL)
    vigil_conn_set_data(c, n);
  if (n != NULL)
    *n += 1;
  /* A failed echo (the queue is full: this client does not read) is the
   * library's business: after queue_full_strikes it closes the client with
   * CLOSE QUEUE_FULL, which the dead line shows as cause policy. */
  if (s->o.echo)
    (void)vigil_conn_send(c, msg, len);
  if (!s->o.print_messages)
    return;
  vigil_conn_get_info(c, &ci);
  vigil_cli_line_begin(&l, s->o.c.json, "message", ci.peer, ci.id, ci.id_len);
  vigil_cli_line_u64(&l, "bytes", len);
  vigil_cli_line_u64(&l, "messages", messages_of(c));
  vigil_cli_line_end(&l, stdout);
}

static void print_end(serve_state *s, vigil_conn *c, const char *event, const vigil_death *d) {
  vigil_conn_info ci;
  vigil_cli_line l;

  vigil_conn_get_info(c, &ci);
  vigil_cli_line_begin(&l, s->o.c.json, event, ci.peer, ci.id, ci.id_len);
  vigil_cli_line_death(&l, d, strcmp(event, "dead") == 0);
  vigil_cli_line_u64(&l, "conns", conns_now(s));
  if (s->o.echo || s->o.print_messages)
    vigil_cli_line_u64(&l, "messages", messages_of(c));
  vigil_cli_line_end(&l, stdout);
  free(vigil_conn_get_data(c));
  vigil_conn_set_data(c, NULL);
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  print_end(user, c, "dead", d);
}

static void on_reject(vigil_conn *c, const vigil_death *d, void *user) {
  print_end(user, c, "rejected", d);
}

static void on_closed(vigil_server *srv, void *user) {
  serve_state *s = user;
  vigil_cli_line l;

  (void)srv;
  vigil_cli_line_begin(&l, s->o.c.json, "shutdown", s->where, NULL, 0);
  vigil_cli_line_end(&l, stdout);
  vigil_cli_loop_stop(&s->loop, &s->sig);
}

static void on_signal(void *arg, int signo) {
  serve_state *s = arg;

  (void)signo;
  if (s->shutting_down)
    return;
  s->shutting_down = 1;
  if (vigil_server_shutdown(s->srv, 0) != 0)
    on_closed(s->srv, s);
}

/* serve's own flags (vigil_cli_flag_fn). */
static int own_flag(void *opts, const char *cmd, int argc, char **argv, int *i) {
  serve_opts *o = opts;
  int rc;

  if ((rc = vigil_cli_flag_uint(cmd, argc, argv, i, "--max-conns", 1, 1000000000, &o->max_conns)) !=
          0 ||
      (rc = vigil_cli_flag_uint(cmd, argc, argv, i, "--max-per-addr", 1, 1000000000,
                                &o->max_per_addr)) != 0)
    return rc;
  return vigil_cli_flag_set(argv[*i], "--rtt", &o->rtt) ||
         vigil_cli_flag_set(argv[*i], "--echo", &o->echo) ||
         vigil_cli_flag_set(argv[*i], "--print-messages", &o->print_messages);
}

static int parse_args(int argc, char **argv, serve_opts *o) {
  const vigil_cli_common *c = &o->c;
  int rc;

  memset(o, 0, sizeof(*o));
  rc = vigil_cli_parse_args(CMD, usage_text,
                            VIGIL_CLI_OPT_INTERVAL | VIGIL_CLI_OPT_TIMEOUT |
                                VIGIL_CLI_OPT_KEEPALIVE | VIGIL_CLI_OPT_JSON |
                                VIGIL_CLI_OPT_PORT_ONLY,
                            argc, argv, &o->c, own_flag, o);
  if (rc != 0)
    return rc;
  if (c->interval_ms != 0 && c->timeout_ms != 0 && c->timeout_ms / 2 < c->interval_ms)
    return vigil_cli_usage(CMD, "--timeout %lums must be at least 2 x --interval %lums",
                           (unsigned long)c->timeout_ms, (unsigned long)c->interval_ms);
  if (c->interval_ms == 0 && c->timeout_ms != 0 && c->timeout_ms < 200)
    return vigil_cli_usage(CMD, "--timeout %lums is below the 200ms minimum",
                           (unsigned long)c->timeout_ms);
  return 0;
}

/* Turns the options into the server's policy (see the top of the file). */
static int configure(const serve_opts *so, vigil_server_config *cfg) {
  const vigil_cli_common *o = &so->c;
  vigil_session_config *sc = &cfg->session;

  vigil_server_config_init(cfg);
  if (o->interval_ms != 0) {
    uint32_t t = o->timeout_ms != 0 ? o->timeout_ms : 3 * o->interval_ms;
    sc->interval_ms = sc->min_interval_ms = sc->max_interval_ms = o->interval_ms;
    sc->timeout_ms = sc->min_timeout_ms = sc->max_timeout_ms = t;
  } else if (o->timeout_ms != 0) {
    sc->timeout_ms = sc->min_timeout_ms = sc->max_timeout_ms = o->timeout_ms;
    sc->max_interval_ms = o->timeout_ms / 2;
  }
  cfg->max_connections = so->max_conns;
  cfg->max_per_address = so->max_per_addr;
  if (vigil_cli_keepalive(CMD, o->keepalive_ms, o->keepalive_off, &cfg->keepalive_mode,
                          &cfg->keepalive) != 0)
    return VIGIL_CLI_USAGE;
  return 0;
}

static void print_listening(serve_state *s, uint16_t port) {
  vigil_cli_line l;

  if (s->o.c.addr.host[0] == '\0')
    snprintf(s->where, sizeof(s->where), "*:%u", (unsigned)port);
  else if (strchr(s->o.c.addr.host, ':') != NULL)
    snprintf(s->where, sizeof(s->where), "[%s]:%u", s->o.c.addr.host, (unsigned)port);
  else
    snprintf(s->where, sizeof(s->where), "%s:%u", s->o.c.addr.host, (unsigned)port);
  vigil_cli_line_begin(&l, s->o.c.json, "listening", s->where, NULL, 0);
  vigil_cli_line_u64(&l, "port", port);
  if (s->o.c.interval_ms != 0) {
    vigil_cli_line_u64(&l, "interval_ms", s->o.c.interval_ms);
    vigil_cli_line_u64(&l, "timeout_ms",
                       s->o.c.timeout_ms != 0 ? s->o.c.timeout_ms : 3 * s->o.c.interval_ms);
  } else {
    vigil_cli_line_null(&l, "interval_ms");
    vigil_cli_line_null(&l, "timeout_ms");
  }
  vigil_cli_line_u64(&l, "max_conns", s->o.max_conns != 0 ? s->o.max_conns : 10000);
  vigil_cli_line_end(&l, stdout);
}

static int serve(serve_state *s) {
  vigil_server_config cfg;
  uint16_t port = 0;
  int rc;

  if ((rc = configure(&s->o, &cfg)) != 0)
    return rc;
  cfg.cb.on_open = on_open;
  cfg.cb.on_rtt = on_rtt;
  if (s->o.echo || s->o.print_messages)
    cfg.cb.on_message = on_message;
  cfg.cb.on_death = on_death;
  cfg.cb.on_reject = on_reject;
  cfg.on_closed = on_closed;
  cfg.user = s;
  if ((rc = vigil_loop_init(&s->loop, NULL)) != 0) {
    fprintf(stderr, "vigil serve: event loop: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  if ((rc = vigil_server_new(&s->srv, &s->loop, &cfg)) != 0) {
    fprintf(stderr, "vigil serve: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  rc = vigil_server_listen(s->srv, s->o.c.addr.host[0] != '\0' ? s->o.c.addr.host : NULL,
                           s->o.c.addr.port_num, &port);
  if (rc != 0) {
    fprintf(stderr, "vigil serve: cannot listen on %s%s%s: %s\n", s->o.c.addr.host,
            s->o.c.addr.host[0] != '\0' ? ":" : "port ", s->o.c.addr.port, vigil_strerror(rc));
    vigil_server_free(s->srv);
    return VIGIL_CLI_FAIL;
  }
  print_listening(s, port);
  if (vigil_cli_loop_main(CMD, &s->loop, &s->sig, on_signal, s) != 0)
    return VIGIL_CLI_FAIL;
  vigil_server_free(s->srv);
  vigil_cli_loop_finish(&s->loop);
  return VIGIL_CLI_OK;
}

int vigil_cmd_serve(int argc, char **argv) {
  static serve_state s;
  int rc;

  memset(&s, 0, sizeof(s));
  rc = parse_args(argc, argv, &s.o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  return serve(&s);
}
