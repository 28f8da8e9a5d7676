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
 * `vigil connect --send-every`, and its own --send-every keeps data flowing
 * to every client, so faults can be tried with data in flight either way.
 *
 * SIGINT / SIGTERM start a graceful shutdown: CLOSE "server shutting down"
 * to every client, then exit 0 once the library reports the server closed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>
#endif

#include "cli-presence.h"
#include "cli-auth.h"
#include "cli-tls.h"
#include "cli.h"
#include "commands.h"
#include "metrics-http.h"
#include "metrics-shared.h"
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
    "  -i, --interval D  heartbeat interval imposed on clients (default: accept\n"
    "                    the client's proposal, 100ms..10m)\n"
    "  -t, --timeout D   silence after which a client is dead (default 3 x interval\n"
    "                    when --interval is given; at least 2 x interval)\n"
    "  --max-conns N     connections beyond N get CLOSE \"server full\" (default 10000)\n"
    "  --max-per-addr N  connections per client address (default: no limit)\n"
    "  --rate-limit R    connections per client address: R is N/s or N/m, with\n"
    "                    ,burst=B (default burst: one second's worth, at least 1);\n"
    "                    past it CLOSE code 12 with retry-after (default: no limit)\n"
    "  --rate-limit-sources N  addresses the rate limit tracks (default 16384)\n"
    "  --memory-budget S bytes all clients together may hold in reassembly and\n"
    "                    outbound buffers, e.g. 64MiB (default: a quarter of RAM, or\n"
    "                    max-conns x 2.1 MiB if less); past it the greediest are closed\n"
    "  --handshake-timeout D  HELLO must arrive within D (default 5s)\n"
    "  --message-timeout D    a message begun must be finished within D (default:\n"
    "                    the agreed timeout + max message size at 16 KiB/s)\n"
    "  --keepalive D     kernel keepalive + TCP_USER_TIMEOUT budget D (default: derived\n"
    "                    from the agreed timeout)\n"
    "  --no-keepalive    leave kernel keepalive off\n"
    "  --rtt             also print an rtt line for every pong a client sends\n"
    "  --print-messages  print a message line for every message a client sends,\n"
    "                    and count them on its dead line\n"
    "  --echo            send every message back to the client that sent it\n"
    "  --send-every D    send every open client one message every D (data in flight;\n"
    "                    the library's queue-full close is then off)\n"
    "  --send-size N     bytes per message, 1..1048576 (default 64)\n"
    "  --metrics [HOST:]PORT  serve /metrics (Prometheus), /connections, /api/status\n"
    "                    and a live status page / over HTTP; HOST defaults to\n"
    "                    127.0.0.1 (docs/OPERATIONS.md)\n"
    "  --presence URL    also record presence in Redis: redis://HOST[:PORT][/DB] or\n"
    "                    unix:///path (docs/PRESENCE.md; a presence line says when\n"
    "                    Redis is unreachable and presence is degraded)\n"
    "  --node NAME       this node's name in Redis (default: the host name)\n"
    "  --worker N        this process's worker number in Redis (default 0)\n"
    "  --node-timeout D  with --presence: a node silent in Redis this long has its\n"
    "                    clients marked offline, cause node_lost (default 5s)\n"
    "  --workers N       run N worker processes (1..256) that share the port\n"
    "                    (SO_REUSEPORT), restarted when they die; every line then\n"
    "                    carries its worker number; --metrics PORT serves the\n"
    "                    whole server, worker K its own on PORT + 1 + K\n"
    "                    (docs/CLI.md; one process on Windows)\n"
    "  --tls-cert FILE   serve TLS 1.2+ with this PEM certificate chain ...\n"
    "  --tls-key FILE    ... and its private key (docs/TLS.md)\n"
    "  --tls-client-ca FILE  require client certificates signed by these CAs\n"
    "  --tls-id-from-cert    the peer id is the client certificate's subject CN\n"
    "  --auth-secret FILE  require a token (vigil token --secret FILE) in every HELLO:\n"
    "                    a client without a valid one for its id is refused with\n"
    "                    CLOSE AUTH_FAILED and never counts as online\n"
    "  -j, --json        one JSON object per line (schema: docs/CLI.md)\n"
    "  -h, --help        this text\n"
    "\n"
    "Durations: 250ms, 3s, 1.5s, 2m, 1h. Exit status: 0 after SIGINT/SIGTERM,\n"
    "1 if it cannot listen, 2 for bad usage.\n";

typedef struct serve_opts {
  vigil_cli_common c; /* address, --interval, --timeout, --keepalive, --json, --send-* */
  uint32_t handshake_ms, message_ms; /* 0: the library's default */
  const char *memory_budget;         /* NULL: the library's default */
  const char *rate_limit;            /* NULL: no rate limit */
  uint32_t rate_sources;
  uint32_t max_conns, max_per_addr, worker, workers, node_timeout_ms;
  int rtt, echo, print_messages;
  const char *metrics; /* --metrics [HOST:]PORT, or NULL */
  vigil_cli_addr metrics_addr;
  const char *presence, *node;
  vigil_cli_tls tls;   /* --tls-cert, --tls-key, --tls-client-ca, --tls-id-from-cert */
  vigil_cli_auth auth; /* --auth-secret */
} serve_opts;

/* A client's data, with --print-messages, --echo or --send-every: hung on
 * its connection from on_open to its end, and listed for the send tick. */
typedef struct peer_data {
  struct peer_data *prev, *next;
  vigil_conn *conn;
  uint64_t messages;  /* received from it */
  vigil_cli_data out; /* sent to it: the echo and --send-every */
} peer_data;

typedef struct serve_state {
  serve_opts o;
  vigil_loop loop;
  vigil_server *srv;
  vigil_cli_presence *presence;
  vigil_cli_sigwatch sig;
  vigil_loop_timer send_timer;
  peer_data *peers;
  uint8_t *msg;
  uint64_t seq;
  int shutting_down;
  int in_tick;             /* on_send_tick is walking peers */
  vigil_cli_http *http;    /* --metrics */
  vigil_cli_shared *share; /* --workers with --metrics: the whole server's figures */
  char where[sizeof(((vigil_cli_addr *)0)->host) + 16];
} serve_state;

static uint32_t conns_now(const serve_state *s) {
  vigil_server_stats st;
  vigil_server_get_stats(s->srv, &st);
  return st.peers;
}

static int data_on(const serve_state *s) {
  return s->o.echo || s->o.print_messages || s->o.c.send_every_ms != 0;
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  serve_state *s = user;
  peer_data *pd;
  vigil_cli_line l;

  /* Without memory for it a client is still served, only not counted. */
  if (data_on(s) && (pd = calloc(1, sizeof(*pd))) != NULL) {
    pd->conn = c;
    pd->next = s->peers;
    if (s->peers != NULL)
      s->peers->prev = pd;
    s->peers = pd;
    vigil_conn_set_data(c, pd);
  }
  vigil_cli_line_begin(&l, s->o.c.json, info->rejoin ? "rejoin" : "open", info->peer, info->id,
                       info->id_len);
  if (info->rejoin)
    vigil_cli_line_cstr(&l, "old_peer", info->old_peer);
  vigil_cli_line_u64(&l, "interval_ms", info->interval_ms);
  vigil_cli_line_u64(&l, "timeout_ms", info->timeout_ms);
  vigil_cli_line_tls(&l, c);
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

static void on_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  serve_state *s = user;
  peer_data *pd = vigil_conn_get_data(c), none;
  vigil_conn_info ci;
  vigil_cli_line l;

  if (pd == NULL) {
    memset(&none, 0, sizeof(none));
    pd = &none;
  }
  pd->messages++;
  /* A refused echo is counted; a client that does not read and keeps the
   * queue full is closed by the library after queue_full_strikes (CLOSE
   * QUEUE_FULL, cause policy), unless --send-every turned that off. */
  if (s->o.echo)
    vigil_cli_data_count(&pd->out, vigil_conn_send(c, msg, len));
  if (!s->o.print_messages)
    return;
  vigil_conn_get_info(c, &ci);
  vigil_cli_line_begin(&l, s->o.c.json, "message", ci.peer, ci.id, ci.id_len);
  vigil_cli_line_u64(&l, "bytes", len);
  vigil_cli_line_u64(&l, "messages", pd->messages);
  vigil_cli_line_end(&l, stdout);
}

static void unlink_peer(serve_state *s, peer_data *pd) {
  if (pd->prev != NULL)
    pd->prev->next = pd->next;
  else
    s->peers = pd->next;
  if (pd->next != NULL)
    pd->next->prev = pd->prev;
  free(pd);
}

/* One message of send_size bytes to every open client per tick; a refusal
 * is counted, and the next try is a period later. The queue-full close is
 * off with --send-every, but the memory budget may close this connection
 * or the greediest others inside vigil_conn_send (their on_death runs
 * there): while the tick walks the list, forget_peer only marks a peer
 * gone (conn NULL), and the walk unlinks it afterwards. */
static void on_send_tick(vigil_loop *loop, vigil_loop_timer *t) {
  serve_state *s = vigil_container_of(t, serve_state, send_timer);
  peer_data *pd, *next;

  s->in_tick = 1;
  for (pd = s->peers; pd != NULL; pd = pd->next) {
    if (pd->conn == NULL)
      continue;
    vigil_cli_data_head(s->msg, s->o.c.send_size, ++s->seq);
    vigil_cli_data_count(&pd->out, vigil_conn_send(pd->conn, s->msg, s->o.c.send_size));
  }
  s->in_tick = 0;
  for (pd = s->peers; pd != NULL; pd = next) {
    next = pd->next;
    if (pd->conn == NULL)
      unlink_peer(s, pd);
  }
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + s->o.c.send_every_ms, on_send_tick);
}

static void forget_peer(serve_state *s, vigil_conn *c) {
  peer_data *pd = vigil_conn_get_data(c);

  if (pd == NULL)
    return;
  vigil_conn_set_data(c, NULL);
  if (s->in_tick)
    pd->conn = NULL; /* on_send_tick unlinks it when its walk is over */
  else
    unlink_peer(s, pd);
}

static void print_end(serve_state *s, vigil_conn *c, const char *event, const vigil_death *d) {
  vigil_conn_info ci;
  vigil_cli_line l;

  vigil_conn_get_info(c, &ci);
  vigil_cli_line_begin(&l, s->o.c.json, event, ci.peer, ci.id, ci.id_len);
  vigil_cli_line_death(&l, d, strcmp(event, "dead") == 0);
  vigil_cli_line_u64(&l, "conns", conns_now(s));
  if (data_on(s)) {
    const peer_data *pd = vigil_conn_get_data(c);
    vigil_cli_data none;
    memset(&none, 0, sizeof(none));
    vigil_cli_line_u64(&l, "messages", pd != NULL ? pd->messages : 0);
    if (s->o.c.send_every_ms != 0 || s->o.echo)
      vigil_cli_line_data(&l, pd != NULL ? &pd->out : &none, &ci);
  }
  vigil_cli_line_end(&l, stdout);
  forget_peer(s, c);
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  vigil_cli_http_death(((serve_state *)user)->http, c, d);
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
  vigil_loop_timer_cancel(&s->loop, &s->send_timer);
  vigil_cli_http_stop(s->http);
  s->http = NULL;
  vigil_cli_loop_stop(&s->loop, &s->sig);
}

static void on_signal(void *arg, int signo) {
  serve_state *s = arg;

  (void)signo;
  if (s->shutting_down)
    return;
  s->shutting_down = 1;
  vigil_loop_timer_cancel(&s->loop, &s->send_timer); /* the queues go out before CLOSE */
  if (vigil_server_shutdown(s->srv, 0) != 0)
    on_closed(s->srv, s);
}

static int parse_args(int argc, char **argv, serve_opts *o) {
  vigil_cli_opt own[32] = {
      {"max-conns", 0, VIGIL_CLI_UINT, &o->max_conns, 1, 1000000000, 0},
      {"max-per-addr", 0, VIGIL_CLI_UINT, &o->max_per_addr, 1, 1000000000, 0},
      {"memory-budget", 0, VIGIL_CLI_STRING, &o->memory_budget, 0, 0, 0},
      {"rate-limit", 0, VIGIL_CLI_STRING, &o->rate_limit, 0, 0, 0},
      {"rate-limit-sources", 0, VIGIL_CLI_UINT, &o->rate_sources, 1, 16777216, 0},
      {"handshake-timeout", 0, VIGIL_CLI_DURATION, &o->handshake_ms, 0, 0, 0},
      {"message-timeout", 0, VIGIL_CLI_DURATION, &o->message_ms, 0, 0, 0},
      {"rtt", 0, VIGIL_CLI_FLAG, &o->rtt, 0, 0, 0},
      {"echo", 0, VIGIL_CLI_FLAG, &o->echo, 0, 0, 0},
      {"print-messages", 0, VIGIL_CLI_FLAG, &o->print_messages, 0, 0, 0},
      {"metrics", 0, VIGIL_CLI_STRING, &o->metrics, 0, 0, 0},
      {"presence", 0, VIGIL_CLI_STRING, &o->presence, 0, 0, 0},
      {"node", 0, VIGIL_CLI_STRING, &o->node, 0, 0, 0},
      {"worker", 0, VIGIL_CLI_UINT, &o->worker, 0, 1000000, 0},
      {"workers", 0, VIGIL_CLI_UINT, &o->workers, 1, 256, 0},
      {"node-timeout", 0, VIGIL_CLI_DURATION, &o->node_timeout_ms, 0, 0, 0},
      {NULL, 0, VIGIL_CLI_FLAG, NULL, 0, 0, 0}};
  int rc;

  memset(o, 0, sizeof(*o));
  vigil_cli_tls_opts(&o->tls, VIGIL_ROLE_SERVER, own);
  vigil_cli_auth_opts(&o->auth, VIGIL_ROLE_SERVER, own);
  rc = vigil_cli_parse_args(CMD, usage_text,
                            VIGIL_CLI_OPT_INTERVAL | VIGIL_CLI_OPT_TIMEOUT |
                                VIGIL_CLI_OPT_KEEPALIVE | VIGIL_CLI_OPT_JSON |
                                VIGIL_CLI_OPT_PORT_ONLY | VIGIL_CLI_OPT_SEND,
                            argc, argv, &o->c, own);
  if (rc != 0)
    return rc;
  if ((rc = vigil_cli_tls_setup(CMD, VIGIL_ROLE_SERVER, &o->tls)) != 0 ||
      (rc = vigil_cli_auth_setup(CMD, VIGIL_ROLE_SERVER, &o->auth)) != 0)
    return rc;
  if (o->metrics != NULL) {
    const char *why = NULL;
    if (vigil_cli_parse_addr(o->metrics, 1, &o->metrics_addr, &why) != 0)
      return vigil_cli_usage(CMD, "--metrics '%s': %s", o->metrics, why);
    if (!vigil_cli_http_available())
      return vigil_cli_usage(CMD, "--metrics: this vigil was built without libmicrohttpd, so it "
                                  "has no metrics endpoint (docs/WINDOWS.md)");
    if (o->workers > 1 && o->metrics_addr.port_num != 0 &&
        o->metrics_addr.port_num + o->workers > 65535u)
      return vigil_cli_usage(CMD, "--metrics port %u + --workers %u goes past 65535",
                             (unsigned)o->metrics_addr.port_num, (unsigned)o->workers);
  }
  if (o->node_timeout_ms != 0 && o->node_timeout_ms < 200)
    return vigil_cli_usage(CMD, "--node-timeout: at least 200ms");
  if (o->workers > 1 && o->worker != 0)
    return vigil_cli_usage(CMD, "--worker: with --workers each worker gets its own number");
  return 0;
}

/* "N/s" or "N/m", then optionally ",burst=B", into a rate per minute and a
 * burst (0: the library's default). Returns 0 or VIGIL_CLI_USAGE. */
static int parse_rate(const char *text, uint32_t *per_minute, uint32_t *burst) {
  char *end;
  unsigned long n, b = 0;
  errno = 0;
  n = strtoul(text, &end, 10);
  if (end == text || errno != 0 || n == 0 || n > 1000000 || *end != '/' ||
      (end[1] != 's' && end[1] != 'm'))
    return vigil_cli_usage(CMD, "--rate-limit '%s': want N/s or N/m, N in 1..1000000", text);
  *per_minute = (uint32_t)(end[1] == 's' ? n * 60u : n);
  end += 2;
  if (strncmp(end, ",burst=", 7) == 0) {
    const char *p = end + 7;
    errno = 0;
    b = strtoul(p, &end, 10);
    if (end == p || errno != 0 || b == 0 || b > 1000000)
      return vigil_cli_usage(CMD, "--rate-limit '%s': burst must be 1..1000000", text);
  }
  if (*end != '\0')
    return vigil_cli_usage(CMD, "--rate-limit '%s': unexpected '%s'", text, end);
  *burst = (uint32_t)b;
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
  if (vigil_cli_check_session(CMD, sc, VIGIL_ROLE_SERVER) != 0)
    return VIGIL_CLI_USAGE;
  cfg->max_connections = so->max_conns;
  cfg->tls = so->tls.ctx;
  if (so->auth.secret_len != 0) {
    cfg->auth_secret = so->auth.secret;
    cfg->auth_secret_len = so->auth.secret_len;
  }
  cfg->max_per_address = so->max_per_addr;
  if (so->rate_limit != NULL &&
      parse_rate(so->rate_limit, &cfg->rate_per_minute, &cfg->rate_burst) != 0)
    return VIGIL_CLI_USAGE;
  cfg->rate_sources = so->rate_sources;
  sc->handshake_timeout_ms = so->handshake_ms != 0 ? so->handshake_ms : sc->handshake_timeout_ms;
  sc->message_timeout_ms = so->message_ms;
  if (so->memory_budget != NULL) {
    uint64_t b;
    const char *why;
    if (vigil_cli_parse_size(so->memory_budget, &b, &why) != 0)
      return vigil_cli_usage(CMD, "--memory-budget: bad size '%s': %s", so->memory_budget, why);
    cfg->memory_budget = b >= SIZE_MAX ? SIZE_MAX - 1 : (size_t)b;
  }
  /* Our own --send-every fills a stalled client's queue on purpose: the
   * verdict must come from the heartbeat or the kernel, not a queue limit. */
  if (so->c.send_every_ms != 0)
    cfg->queue_full_strikes = VIGIL_NO_LIMIT;
  if (vigil_cli_keepalive(CMD, o->keepalive_ms, o->keepalive_off, &cfg->keepalive_mode,
                          &cfg->keepalive) != 0)
    return VIGIL_CLI_USAGE;
  return 0;
}

static void print_listening(serve_state *s, uint16_t port, uint16_t http_port) {
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
  if (s->http != NULL)
    vigil_cli_line_u64(&l, "metrics_port", http_port);
  if (s->o.tls.ctx != NULL)
    vigil_cli_line_bool(&l, "tls", 1);
  if (s->o.auth.secret_len != 0)
    vigil_cli_line_bool(&l, "auth", 1);
  vigil_cli_line_end(&l, stdout);
}

static int serve(serve_state *s) {
  vigil_server_config cfg;
  uint16_t port = 0, http_port = 0;
  int rc;

  if ((rc = configure(&s->o, &cfg)) != 0)
    return rc;
  cfg.reuseport = s->o.workers > 1; /* the other workers listen on this port too */
  cfg.cb.on_open = on_open;
  cfg.cb.on_rtt = on_rtt;
  if (data_on(s))
    cfg.cb.on_message = on_message;
  cfg.cb.on_death = on_death;
  cfg.cb.on_reject = on_reject;
  cfg.on_closed = on_closed;
  cfg.user = s;
  if ((rc = vigil_loop_init(&s->loop, NULL)) != 0) {
    fprintf(stderr, "vigil serve: event loop: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  if (s->o.presence != NULL &&
      (rc = vigil_cli_presence_start(CMD, s->o.presence, s->o.node, s->o.worker,
                                     s->o.node_timeout_ms, &s->loop, s->o.c.json, &cfg.presence,
                                     &s->presence)) != 0)
    return rc;
  if ((rc = vigil_server_new(&s->srv, &s->loop, &cfg)) != 0) {
    fprintf(stderr, "vigil serve: %s\n", vigil_strerror(rc));
    vigil_cli_presence_close(s->presence, &s->loop);
    return VIGIL_CLI_FAIL;
  }
  rc = vigil_server_listen(s->srv, s->o.c.addr.host[0] != '\0' ? s->o.c.addr.host : NULL,
                           s->o.c.addr.port_num, &port);
  if (rc != 0) {
    const char *where = vigil_server_listen_failed(s->srv);
    if (where[0] != '\0')
      fprintf(stderr, "vigil serve: cannot listen on %s: %s\n", where, vigil_strerror(rc));
    else
      fprintf(stderr, "vigil serve: cannot listen on %s%s%s: %s\n", s->o.c.addr.host,
              s->o.c.addr.host[0] != '\0' ? ":" : "port ", s->o.c.addr.port, vigil_strerror(rc));
    vigil_server_free(s->srv);
    vigil_cli_presence_close(s->presence, &s->loop);
    return VIGIL_CLI_FAIL;
  }
  vigil_loop_timer_init(&s->send_timer);
  if (s->o.c.send_every_ms != 0) {
    if ((s->msg = malloc(s->o.c.send_size)) == NULL) {
      fprintf(stderr, "vigil serve: --send-size %lu: out of memory\n",
              (unsigned long)s->o.c.send_size);
      vigil_server_free(s->srv);
      return VIGIL_CLI_FAIL;
    }
    memset(s->msg, 'v', s->o.c.send_size);
    vigil_loop_timer_arm(&s->loop, &s->send_timer,
                         vigil_loop_now_ms(&s->loop) + s->o.c.send_every_ms, on_send_tick);
  }
  if (s->o.metrics != NULL) {
    char err[256];
    const vigil_cli_addr *ma = &s->o.metrics_addr;
    if (vigil_cli_http_start(&s->http, &s->loop, s->srv, ma->host, ma->port_num, &http_port, err,
                             sizeof(err)) != 0) {
      fprintf(stderr, "vigil serve: --metrics: %s\n", err);
      vigil_server_free(s->srv);
      return VIGIL_CLI_FAIL;
    }
    vigil_cli_http_share(s->http, s->share, s->o.worker);
    vigil_cli_http_presence(s->http, s->presence);
  }
  print_listening(s, port, http_port);
  /* Many peers may die in one iteration: their sockets close first, their
   * lines follow in one write (events.c). */
  vigil_cli_out_batch(&s->loop);
  if (vigil_cli_loop_main(CMD, &s->loop, &s->sig, on_signal, s) != 0) {
    vigil_cli_out_batch(NULL);
    return VIGIL_CLI_FAIL;
  }
  vigil_server_free(s->srv);
  vigil_cli_presence_close(s->presence, &s->loop);
  vigil_cli_out_batch(NULL);
  vigil_cli_loop_finish(&s->loop);
  free(s->msg);
  vigil_tls_free(s->o.tls.ctx);
  vigil_cli_auth_wipe(&s->o.auth);
  return VIGIL_CLI_OK;
}

/* ---- --workers N ------------------------------------------------------------ */

#if defined(SO_REUSEPORT)
/* The supervisor holds the port for its workers: a socket per address,
 * bound with SO_REUSEPORT but never listening (so the kernel gives it no
 * connections). It turns port 0 into one port every worker shares, keeps
 * that port while a worker restarts, and fails at once, with the reason,
 * when the port is taken, rather than after its workers' restarts. */
typedef struct reservation {
  int fd[16];
  unsigned n;
} reservation;

static void unreserve(reservation *r) {
  while (r->n > 0)
    (void)close(r->fd[--r->n]);
}

static int reserve_one(reservation *r, const struct addrinfo *ai, uint16_t *port) {
  struct sockaddr_storage ss;
  socklen_t len = (socklen_t)ai->ai_addrlen;
  int one = 1, fd;
  memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
  if (ss.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(*port);
  else
    ((struct sockaddr_in *)&ss)->sin_port = htons(*port);
  if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
    return -1;
  r->fd[r->n++] = fd;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      (ss.ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
      bind(fd, (struct sockaddr *)&ss, len) != 0)
    return -1;
  if (*port == 0) {
    len = (socklen_t)sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
      return -1;
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  }
  return 0;
}

static int reserve(serve_state *s, reservation *r) {
  struct addrinfo *res, *ai;
  const char *why = NULL;
  uint16_t port = s->o.c.addr.port_num;
  if (vigil_cli_resolve(&s->o.c.addr, 1, &res, &why) != 0) {
    fprintf(stderr, "vigil serve: %s: %s\n", s->o.c.addr.host, why);
    return VIGIL_CLI_FAIL;
  }
  for (ai = res; ai != NULL && r->n < 16; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    if (reserve_one(r, ai, &port) != 0) {
      char where[VIGIL_CLI_ADDRSTRLEN];
      int err = errno;
      vigil_cli_format_sockaddr(ai->ai_addr, ai->ai_addrlen, where, sizeof where);
      fprintf(stderr, "vigil serve: cannot listen on %s (port %u): %s\n", where, (unsigned)port,
              strerror(err));
      freeaddrinfo(res);
      unreserve(r);
      return VIGIL_CLI_FAIL;
    }
  }
  freeaddrinfo(res);
  s->o.c.addr.port_num = port;
  snprintf(s->o.c.addr.port, sizeof s->o.c.addr.port, "%u", (unsigned)port);
  return 0;
}

static reservation held;

/* --workers N --metrics: the whole server's endpoint. The supervisor binds
 * its socket and maps the workers' shared figures before the first fork;
 * the endpoint is served by one more child of the supervisor (number N in
 * vigil_workers_run, restarted like a worker), not by the supervisor
 * itself: a process that forks must not hold HTTP connections, or every
 * worker it restarts would inherit them (a scraper's keep-alive socket
 * held open by a worker that never answers). */
static int whole_fd = -1;

static int whole_listen(serve_state *s, uint16_t *port) {
  vigil_cli_addr a = s->o.metrics_addr;
  struct addrinfo *res;
  struct sockaddr_storage ss;
  socklen_t len = (socklen_t)sizeof ss;
  const char *why = NULL;
  int one = 1;
  memset(&ss, 0, sizeof ss);
  if (a.host[0] == '\0')
    snprintf(a.host, sizeof a.host, "127.0.0.1");
  if (vigil_cli_resolve(&a, 1, &res, &why) != 0) {
    fprintf(stderr, "vigil serve: --metrics %s: %s\n", a.host, why != NULL ? why : "no address");
    return VIGIL_CLI_FAIL;
  }
  whole_fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (whole_fd < 0 || setsockopt(whole_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(whole_fd, res->ai_addr, res->ai_addrlen) != 0 || listen(whole_fd, 64) != 0 ||
      getsockname(whole_fd, (struct sockaddr *)&ss, &len) != 0) {
    fprintf(stderr, "vigil serve: --metrics: cannot serve HTTP on %s port %u: %s\n", a.host,
            (unsigned)a.port_num, strerror(errno));
    freeaddrinfo(res);
    if (whole_fd >= 0)
      (void)close(whole_fd);
    whole_fd = -1;
    return VIGIL_CLI_FAIL;
  }
  freeaddrinfo(res);
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

/* Child N: serves the sum until SIGTERM (its supervisor's stop, or the
 * kernel's when the supervisor dies). */
static int whole_main(serve_state *s) {
  vigil_cli_http *h;
  sigset_t term;
  char err[256];
  int sig = 0;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  (void)sigprocmask(SIG_BLOCK, &term, NULL); /* before the HTTP thread: it inherits the mask */
  if (vigil_cli_http_start_whole(&h, s->share, whole_fd, err, sizeof err) != 0) {
    fprintf(stderr, "vigil serve: --metrics: %s\n", err);
    return VIGIL_CLI_FAIL;
  }
  while (sigwait(&term, &sig) != 0 || sig != SIGTERM)
    ;
  vigil_cli_http_stop(h);
  return VIGIL_CLI_OK;
}

static int worker_main(unsigned worker, void *user) {
  serve_state *s = user;
  unreserve(&held); /* the supervisor's: this process listens for real */
  if (worker == s->o.workers)
    return whole_main(s);
  if (whole_fd >= 0) /* the whole server's endpoint is child N's */
    (void)close(whole_fd);
  s->o.worker = worker;
  if (s->o.metrics != NULL && s->o.metrics_addr.port_num != 0)
    s->o.metrics_addr.port_num = (uint16_t)(s->o.metrics_addr.port_num + 1 + worker);
  vigil_cli_set_worker(worker);
  vigil_cli_sigwatch_term_only();
  return vigil_cli_out_exit(serve(s));
}

/* The supervisor's own lines: a worker (or the endpoint) started, ended. */
static void on_worker(const vigil_worker_event *ev, void *user) {
  serve_state *s = user;
  vigil_cli_line l;
  int endpoint = ev->worker == s->o.workers;
  if (ev->type == VIGIL_WORKER_EXITED && !endpoint) /* reaped: its counts stay in the sum */
    vigil_cli_shared_retire(s->share, ev->worker);
  if (endpoint)
    vigil_cli_line_begin(&l, s->o.c.json,
                         ev->type == VIGIL_WORKER_STARTED ? "metrics_start" : "metrics_exit", NULL,
                         NULL, 0);
  else
    vigil_cli_line_begin(&l, s->o.c.json,
                         ev->type == VIGIL_WORKER_STARTED ? "worker_start" : "worker_exit", NULL,
                         NULL, 0);
  if (!endpoint)
    vigil_cli_line_u64(&l, "worker", ev->worker);
  vigil_cli_line_u64(&l, "pid", (uint64_t)ev->pid);
  vigil_cli_line_u64(&l, "restarts", ev->restarts);
  if (ev->type == VIGIL_WORKER_EXITED) {
    if (ev->signal != 0)
      vigil_cli_line_null(&l, "status");
    else
      vigil_cli_line_u64(&l, "status", (uint64_t)ev->status);
    vigil_cli_line_u64(&l, "signal", (uint64_t)ev->signal);
    vigil_cli_line_u64(&l, "lived_ms", ev->lived_ms);
    if (ev->restarting)
      vigil_cli_line_u64(&l, "restart_in_ms", ev->restart_in_ms);
    else
      vigil_cli_line_null(&l, "restart_in_ms");
  }
  vigil_cli_line_end(&l, stdout);
}

/* --metrics with --workers: the socket and the shared figures, and a line
 * naming the whole server's port. */
static int whole_setup(serve_state *s) {
  vigil_cli_line l;
  char where[sizeof(((vigil_cli_addr *)0)->host) + 16];
  uint16_t port = 0;
  int rc;
  if (vigil_cli_shared_new(&s->share, s->o.workers) != 0) {
    fprintf(stderr, "vigil serve: --metrics: cannot share the workers' figures: %s\n",
            strerror(errno));
    return VIGIL_CLI_FAIL;
  }
  if ((rc = whole_listen(s, &port)) != 0)
    return rc;
  if (strchr(s->o.metrics_addr.host, ':') != NULL) /* IPv6, as print_listening writes it */
    snprintf(where, sizeof where, "[%s]:%u", s->o.metrics_addr.host, (unsigned)port);
  else
    snprintf(where, sizeof where, "%s:%u",
             s->o.metrics_addr.host[0] != '\0' ? s->o.metrics_addr.host : "127.0.0.1",
             (unsigned)port);
  vigil_cli_line_begin(&l, s->o.c.json, "metrics_listening", where, NULL, 0);
  vigil_cli_line_u64(&l, "metrics_port", port);
  vigil_cli_line_u64(&l, "workers", s->o.workers);
  vigil_cli_line_end(&l, stdout);
  return 0;
}

static int supervise(serve_state *s) {
  vigil_workers_config wc;
  int rc;
  if ((rc = reserve(s, &held)) != 0)
    return rc;
  if (s->o.metrics != NULL && (rc = whole_setup(s)) != 0) {
    unreserve(&held);
    vigil_cli_shared_free(s->share);
    return rc;
  }
  vigil_workers_config_init(&wc);
  wc.workers = s->o.workers + (s->share != NULL ? 1u : 0u); /* + the endpoint */
  wc.run = worker_main;
  wc.on_event = on_worker;
  wc.user = s;
  rc = vigil_workers_run(&wc);
  unreserve(&held);
  if (whole_fd >= 0)
    (void)close(whole_fd);
  whole_fd = -1;
  vigil_cli_shared_free(s->share);
  s->share = NULL;
  if (rc != 0) {
    fprintf(stderr, "vigil serve: --workers: %s\n", vigil_strerror(rc));
    return VIGIL_CLI_FAIL;
  }
  return VIGIL_CLI_OK;
}
#else
static int supervise(serve_state *s) {
  fprintf(stderr,
          "vigil serve: --workers %u: this system cannot share a port between processes (no "
          "SO_REUSEPORT); serving in one process (docs/WINDOWS.md)\n",
          (unsigned)s->o.workers);
  s->o.workers = 1;
  return serve(s);
}
#endif

int vigil_cmd_serve(int argc, char **argv) {
  static serve_state s;
  int rc;

  memset(&s, 0, sizeof(s));
  rc = parse_args(argc, argv, &s.o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  return s.o.workers > 1 ? supervise(&s) : serve(&s);
}
