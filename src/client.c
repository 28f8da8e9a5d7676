/* The vigil client: one connection at a time, kept up with reconnects.
 *
 * Each attempt resolves the host on a worker thread (src/resolve.c; a
 * numeric address needs no lookup), races TCP connects over its addresses
 * (src/race.c, RFC 8305 Happy Eyeballs), and runs the client session on
 * the connection that won (src/conn.c does the rest). connect_timeout_ms
 * bounds the lookup and the race together.
 *
 * Until the race is won, the attempt is a placeholder connection (phase
 * CONNECTING, no socket): it holds the messages sent meanwhile, and it is
 * the one the application hears of (on_reject, on_unsent) if the attempt
 * fails. The winner takes over its queue and becomes cli->conn; the
 * placeholder goes without a callback. vigil_client_conn shows a
 * connection only once it is connected, so the application never holds a
 * pointer that vanishes that way.
 * When a connection dies or an attempt fails, and the client is not
 * closing, the next attempt is scheduled after a full-jitter backoff:
 *
 *   failures = consecutive attempts that did not give a stable connection
 *   delay    = random(0, min(cap, base * 2^(failures - 1)))
 *   delay    = max(delay, retry_after from the server's CLOSE)
 *
 * Full jitter (the AWS architecture blog's name) spreads a crowd of
 * clients that lost the same server evenly over the window, instead of
 * having them return in synchronised waves. A connection that stayed open
 * for stable_ms resets `failures`, so a client that was healthy for a while
 * retries fast; one that flaps (open, die at once, open...) keeps backing
 * off. on_reconnect tells the application the attempt number and delay.
 *
 * Unsent messages of a dead connection go back through on_unsent (conn.c);
 * vigil_client_send while there is no connection says VIGIL_ENOTCONN, so
 * nothing is ever queued into the void. */
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif

#include "abi.h"
#include "conn.h"
#include "race.h"
#include "resolve.h"

#define DEFAULT_ATTEMPT_DELAY_MS 250u
#define MIN_ATTEMPT_DELAY_MS 10u /* RFC 8305 section 5: never below 10 ms */

struct vigil_client {
  vigil__owner o;
  vigil_client_config cfg;
  char *id;
  char *host;
  char *tls_name; /* copy of cfg.tls_name, or NULL */
  /* The credential: a copy, or NULL (o.cred points into it). Copies it
   * replaced wait in `stale` until the next attempt starts, since a
   * session still handshaking borrows its copy until its HELLO is out. */
  struct cred_copy *cred, *stale;
  uint16_t port;
  vigil_conn *conn;  /* current connection (or the attempt's placeholder), or NULL */
  unsigned failures; /* consecutive failed attempts */
  uint32_t rng;
  int started, closing, stopped;
  vigil__lookup *lookup; /* host name lookup in flight */
  vigil__race *race;     /* connects racing */
  uint64_t deadline_ms;  /* this attempt must have connected by then */
  vigil_loop_timer lookup_timer;
  vigil_loop_timer retry_timer;
  vigil_defer closed_defer;
  vigil_client_stats stats;
};

static void start_attempt(vigil_client *cli);
static void stop_attempt(vigil_client *cli);

struct cred_copy {
  struct cred_copy *next;
  uint8_t bytes[];
};

static void creds_free(struct cred_copy *p) {
  while (p != NULL) {
    struct cred_copy *next = p->next;
    free(p);
    p = next;
  }
}

/* ---- backoff ------------------------------------------------------------ */

static uint32_t xorshift32(uint32_t *state) {
  uint32_t x = *state != 0 ? *state : 0x9E3779B9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

uint32_t vigil__backoff(uint32_t base_ms, uint32_t cap_ms, unsigned attempt, uint32_t *rng) {
  uint64_t ceiling = base_ms;
  unsigned i;
  for (i = 1; i < attempt && ceiling < cap_ms; i++)
    ceiling *= 2;
  if (ceiling > cap_ms)
    ceiling = cap_ms;
  return (uint32_t)(((uint64_t)xorshift32(rng) * (ceiling + 1)) >> 32);
}

static vigil_client *client_of(const vigil_conn *c) {
  return vigil_container_of(c->owner, vigil_client, o);
}

static void maybe_closed(vigil_client *cli) {
  if (cli->stopped && cli->o.nconns == 0 && !vigil_loop_timer_armed(&cli->retry_timer) &&
      !vigil_defer_queued(&cli->closed_defer))
    vigil_loop_defer(cli->o.loop, &cli->closed_defer);
}

static void on_closed_defer(vigil_loop *loop, vigil_defer *d) {
  vigil_client *cli = vigil_container_of(d, vigil_client, closed_defer);
  (void)loop;
  if (cli->cfg.on_closed != NULL)
    cli->cfg.on_closed(cli, cli->cfg.user);
}

static void on_retry(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_client *cli = vigil_container_of(t, vigil_client, retry_timer);
  (void)loop;
  if (!cli->closing)
    start_attempt(cli);
}

static void on_opened(vigil_conn *c, vigil_open_info *info) {
  vigil_client *cli = client_of(c);
  cli->stats.opened++;
  info->attempt = cli->failures + 1;
}

static void on_died(vigil_conn *c, const vigil_death *d, int was_open) {
  vigil_client *cli = client_of(c);
  (void)was_open;
  cli->stats.deaths[d->cause < VIGIL_CAUSE_COUNT ? d->cause : VIGIL_CAUSE_NONE]++;
}

/* After the application heard of the death: decide what comes next. */
static void on_buried(vigil_conn *c, const vigil_death *d, int was_open) {
  vigil_client *cli = client_of(c);
  uint32_t delay;
  if (c != cli->conn)
    return;
  cli->conn = NULL;
  stop_attempt(cli);
  if (was_open &&
      vigil_loop_now_ns(cli->o.loop) - c->opened_ns >= (uint64_t)cli->cfg.stable_ms * VIGIL_MS)
    cli->failures = 0;
  cli->failures++;
  if (cli->closing || cli->cfg.no_reconnect ||
      (cli->cfg.max_attempts != 0 && cli->failures >= cli->cfg.max_attempts)) {
    cli->stopped = 1;
    return; /* on_closed once the socket is gone (on_freed) */
  }
  delay =
      vigil__backoff(cli->cfg.backoff_base_ms, cli->cfg.backoff_cap_ms, cli->failures, &cli->rng);
  if (d->close_received && d->retry_after_ms > delay)
    delay = d->retry_after_ms; /* the server asked us to stay away this long */
  cli->stats.last_delay_ms = delay;
  vigil_loop_timer_arm(cli->o.loop, &cli->retry_timer, vigil__after_ms(cli->o.loop, delay),
                       on_retry);
  if (cli->cfg.on_reconnect != NULL)
    cli->cfg.on_reconnect(cli, cli->failures + 1, delay, cli->cfg.user);
}

static void on_freed(vigil_conn *c) {
  maybe_closed(client_of(c));
}

/* The attempt's placeholder becomes `winner`: the messages sent while
 * connecting and the application's data move over, the placeholder goes
 * without a callback (the application never saw it: vigil_client_conn
 * hides connecting connections). */
static void adopt(vigil_client *cli, vigil_conn *winner) {
  vigil_conn *ph = cli->conn;
  winner->id.ptr = cli->id;
  winner->id_len = (uint8_t)cli->cfg.session.id_len;
  winner->tcp.data = ph->tcp.data;
  vigil__conn_take_queue(winner, ph);
  ph->phase = VIGIL__ZOMBIE;
  vigil__conn_discard(ph);
  cli->conn = winner;
}

static void on_raced(void *arg, vigil_conn *winner, int err, const struct sockaddr *last) {
  vigil_client *cli = arg;
  vigil_conn *c = cli->conn;
  int rc;
  cli->race = NULL;
  if (winner == NULL) {
    int len = vigil_ip_len(last);
    memset(c->peer.b, 0, sizeof c->peer.b);
    memcpy(c->peer.b, last, (size_t)len <= sizeof c->peer.b ? (size_t)len : sizeof c->peer.b);
    vigil__conn_fail(c, err,
                     cli->stats.addresses > 1
                         ? "every address failed (error and peer are the last attempt's)"
                         : NULL);
    return;
  }
  adopt(cli, winner);
  rc = vigil__conn_start(winner, VIGIL_ROLE_CLIENT, &cli->cfg.session);
  if (rc != 0)
    vigil__conn_fail(winner, rc, "could not start the session");
}

static void race(vigil_client *cli, const struct sockaddr_storage *addrs, size_t n) {
  int rc;
  cli->stats.addresses = (unsigned)n;
  rc = vigil__race_start(&cli->race, &cli->o, addrs, n, cli->port, cli->cfg.attempt_delay_ms,
                         cli->deadline_ms, &cli->stats.tcp_connects, on_raced, cli);
  if (rc != 0)
    vigil__conn_fail(cli->conn, rc, NULL);
}

static void on_resolved(void *arg, int status, const struct sockaddr_storage *addrs, size_t n) {
  vigil_client *cli = arg;
  struct sockaddr_storage ordered[VIGIL__RESOLVE_MAX_ADDRS];
  cli->lookup = NULL;
  vigil_loop_timer_cancel(cli->o.loop, &cli->lookup_timer);
  if (n > VIGIL__RESOLVE_MAX_ADDRS)
    n = VIGIL__RESOLVE_MAX_ADDRS;
  if (n != 0)
    memcpy(ordered, addrs, n * sizeof *addrs);
  n = status == 0 ? vigil__resolve_order(ordered, n) : 0;
  if (n == 0) {
    vigil__conn_kill(cli->conn, VIGIL_CAUSE_UNREACHABLE, 0, NULL, 0, "host name did not resolve");
    return;
  }
  race(cli, ordered, n);
}

static void on_lookup_timeout(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_client *cli = vigil_container_of(t, vigil_client, lookup_timer);
  (void)loop;
  vigil__lookup_cancel(cli->lookup);
  cli->lookup = NULL;
  vigil__conn_fail(cli->conn, VIGIL_ETIMEDOUT, "host name lookup outlasted the connect timeout");
}

static void start_attempt(vigil_client *cli) {
  struct sockaddr_storage ss;
  vigil_conn *c;
  int rc;
  creds_free(cli->stale); /* every earlier session has written its HELLO or died */
  cli->stale = NULL;
  c = vigil__conn_new(&cli->o);
  if (c == NULL) {
    cli->stopped = 1; /* nothing to report it on: stop rather than spin */
    maybe_closed(cli);
    return;
  }
  c->id.ptr = cli->id;
  c->id_len = (uint8_t)cli->cfg.session.id_len;
  cli->conn = c;
  cli->stats.attempts++;
  cli->stats.attempt = cli->failures + 1;
  cli->stats.addresses = 0;
  c->phase = VIGIL__CONNECTING;
  cli->deadline_ms = vigil__after_ms(cli->o.loop, cli->cfg.connect_timeout_ms);
  if (vigil__resolve_numeric(cli->host, &ss) == 0) {
    race(cli, &ss, 1);
    return;
  }
  rc = vigil__lookup_start(&cli->lookup, cli->o.loop, cli->host, cli->cfg.resolve,
                           cli->cfg.resolve_arg, on_resolved, cli);
  if (rc == VIGIL_EBUSY) {
    vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, 0, NULL, 0, "too many host name lookups in flight");
    return;
  }
  if (rc != 0) {
    vigil__conn_fail(c, rc, "could not start the host name lookup");
    return;
  }
  vigil_loop_timer_arm(cli->o.loop, &cli->lookup_timer, cli->deadline_ms, on_lookup_timeout);
}

/* Stops whatever the current attempt has under way before the socket. */
static void stop_attempt(vigil_client *cli) {
  vigil_loop_timer_cancel(cli->o.loop, &cli->lookup_timer);
  vigil__lookup_cancel(cli->lookup);
  cli->lookup = NULL;
  vigil__race_cancel(cli->race);
  cli->race = NULL;
}

static void config_defaults(vigil_client_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
  vigil_session_config_init(&cfg->session);
  vigil_keepalive_init(&cfg->keepalive);
}

void vigil_client_config_init_sized(vigil_client_config *cfg, size_t size) {
  vigil_client_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

static void apply_defaults(vigil_client_config *c) {
  if (c->connect_timeout_ms == 0)
    c->connect_timeout_ms = 5000;
  if (c->backoff_base_ms == 0)
    c->backoff_base_ms = 100;
  if (c->backoff_cap_ms == 0)
    c->backoff_cap_ms = 30000;
  if (c->backoff_cap_ms < c->backoff_base_ms)
    c->backoff_cap_ms = c->backoff_base_ms;
  if (c->stable_ms == 0)
    c->stable_ms = 10000;
  if (c->attempt_delay_ms == 0)
    c->attempt_delay_ms = DEFAULT_ATTEMPT_DELAY_MS;
  if (c->attempt_delay_ms < MIN_ATTEMPT_DELAY_MS)
    c->attempt_delay_ms = MIN_ATTEMPT_DELAY_MS;
  if (c->max_queue_bytes == 0)
    c->max_queue_bytes = (size_t)1 << 20;
}

int vigil_client_new(vigil_client **out, vigil_loop *loop, const vigil_client_config *cfg_in) {
  vigil_client_config c;
  const vigil_client_config *cfg = &c;
  vigil_client *cli;
  int rc;
  if (out == NULL || loop == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  config_defaults(&c); /* fields an older caller lacks keep their default */
  if ((rc = vigil__opts_read(&c, sizeof c, cfg_in)) != 0)
    return rc;
  if (vigil_session_config_check(&cfg->session, VIGIL_ROLE_CLIENT, NULL, 0) != 0 ||
      cfg->credential_len > VIGIL_WIRE_MAX_CRED ||
      (cfg->credential == NULL && cfg->credential_len != 0))
    return VIGIL_EINVAL;
  cli = calloc(1, sizeof *cli);
  if (cli == NULL)
    return VIGIL_ENOMEM;
  if (vigil_client_set_credential(cli, cfg->credential, cfg->credential_len) != 0) {
    free(cli);
    return VIGIL_ENOMEM;
  }
  cli->id = malloc(cfg->session.id_len + 1);
  if (cli->id == NULL || vigil__owner_init(&cli->o, loop) != 0) {
    free(cli->id);
    creds_free(cli->cred);
    free(cli);
    return VIGIL_ENOMEM;
  }
  if (cfg->tls_name != NULL && (cli->tls_name = malloc(strlen(cfg->tls_name) + 1)) != NULL)
    memcpy(cli->tls_name, cfg->tls_name, strlen(cfg->tls_name) + 1);
  if ((cfg->tls_name != NULL && cli->tls_name == NULL) ||
      vigil__owner_tls(&cli->o, cfg->tls, cli->tls_name) != 0) {
    vigil__owner_free(&cli->o);
    free(cli->tls_name);
    free(cli->id);
    creds_free(cli->cred);
    free(cli);
    return VIGIL_ENOMEM;
  }
  memcpy(cli->id, cfg->session.id, cfg->session.id_len);
  cli->id[cfg->session.id_len] = '\0';
  cli->cfg = *cfg;
  cli->cfg.session.id = cli->id;
  cli->cfg.tls_name = cli->tls_name;
  apply_defaults(&cli->cfg);
  cli->rng = vigil__random_u32(cli, vigil_loop_now_ns(loop));
  if (cli->rng == 0)
    cli->rng = 0x2545F491u;
  cli->o.cb = cfg->cb;
  cli->o.user = cfg->user;
  cli->o.server = NULL;
  cli->o.max_queue_bytes = cli->cfg.max_queue_bytes;
  cli->o.queue_full_strikes = VIGIL_NO_LIMIT;
  cli->o.ka_mode = cfg->keepalive_mode;
  cli->o.ka = cfg->keepalive;
  cli->o.session_cfg = &cli->cfg.session;
  cli->cfg.credential = cli->o.cred;
  cli->o.opened = on_opened;
  cli->o.died = on_died;
  cli->o.buried = on_buried;
  cli->o.freed = on_freed;
  vigil_loop_timer_init(&cli->retry_timer);
  vigil_loop_timer_init(&cli->lookup_timer);
  vigil_defer_init(&cli->closed_defer, on_closed_defer);
  vigil__owner_stall_start(&cli->o);
  *out = cli;
  return 0;
}

int vigil_client_set_credential(vigil_client *cli, const void *cred, size_t len) {
  struct cred_copy *copy = NULL;
  if (cli == NULL || len > VIGIL_WIRE_MAX_CRED || (cred == NULL && len != 0))
    return VIGIL_EINVAL;
  if (len != 0) {
    if ((copy = malloc(sizeof *copy + len)) == NULL)
      return VIGIL_ENOMEM;
    copy->next = NULL;
    memcpy(copy->bytes, cred, len);
  }
  if (cli->cred != NULL) {
    cli->cred->next = cli->stale;
    cli->stale = cli->cred;
  }
  cli->cred = copy;
  cli->o.cred = copy != NULL ? copy->bytes : NULL;
  cli->o.cred_len = len;
  cli->cfg.credential = cli->o.cred;
  cli->cfg.credential_len = len;
  return 0;
}

int vigil_client_connect(vigil_client *cli, const char *host, uint16_t port) {
  size_t n;
  if (cli == NULL || host == NULL || host[0] == '\0' || port == 0)
    return VIGIL_EINVAL;
  if (cli->closing)
    return VIGIL_ECLOSED;
  if (cli->started)
    return VIGIL_EALREADY;
  n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++; /* "[::1]" as people write it next to a port */
    n -= 2;
  }
  cli->host = malloc(n + 1);
  if (cli->host == NULL)
    return VIGIL_ENOMEM;
  memcpy(cli->host, host, n);
  cli->host[n] = '\0';
  cli->port = port;
  cli->started = 1;
  if (cli->tls_name == NULL)
    cli->o.tls_name = cli->host; /* TLS verifies the name we were given */
  /* connect_timeout_ms counts from this call, not from when the loop last
   * read the clock (maybe long ago, if the loop is not running yet). */
  vigil_loop_update_time(cli->o.loop);
  start_attempt(cli);
  return 0;
}

int vigil_client_send(vigil_client *cli, const void *msg, size_t len) {
  if (cli == NULL)
    return VIGIL_EINVAL;
  /* A connection that already died (its on_death / on_reject / on_unsent
   * are running) is no connection: say so as between attempts, so an
   * application resending from on_unsent does not take ECLOSED, "the
   * client stopped", for an answer. */
  if (cli->conn == NULL || cli->conn->phase == VIGIL__ZOMBIE)
    return cli->closing || cli->stopped ? VIGIL_ECLOSED : VIGIL_ENOTCONN;
  return vigil_conn_send(cli->conn, msg, len);
}

vigil_conn *vigil_client_conn(vigil_client *cli) {
  if (cli == NULL || cli->conn == NULL || cli->conn->phase == VIGIL__CONNECTING)
    return NULL;
  return cli->conn;
}

int vigil_client_close(vigil_client *cli, uint32_t timeout_ms) {
  if (cli == NULL)
    return VIGIL_EINVAL;
  if (cli->closing)
    return VIGIL_EALREADY;
  cli->closing = 1;
  vigil_loop_timer_cancel(cli->o.loop, &cli->retry_timer);
  stop_attempt(cli);
  if (cli->conn != NULL && cli->conn->phase == VIGIL__OPEN)
    (void)vigil__conn_close(cli->conn, VIGIL_CLOSE_NORMAL,
                            vigil_close_code_text(VIGIL_CLOSE_NORMAL), "client closed", timeout_ms);
  else if (cli->conn != NULL)
    vigil__conn_kill(cli->conn, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_NORMAL,
                     vigil_close_code_text(VIGIL_CLOSE_NORMAL), 0, "client closed");
  cli->stopped = 1;
  maybe_closed(cli);
  return 0;
}

int vigil_client_get_metrics_sized(const vigil_client *cli, vigil_metrics *out, size_t size) {
  vigil_metrics m;
  if (cli == NULL || out == NULL || size < sizeof(size_t))
    return VIGIL_EINVAL;
  m = cli->o.m;
  m.opened = cli->stats.opened;
  memcpy(m.deaths, cli->stats.deaths, sizeof m.deaths);
  m.size = size < sizeof m ? size : sizeof m;
  memcpy(out, &m, m.size);
  return 0;
}

void vigil_client_get_stats(const vigil_client *cli, vigil_client_stats *st) {
  if (cli == NULL || st == NULL)
    return;
  *st = cli->stats;
}

int vigil_client_free(vigil_client *cli) {
  if (cli == NULL)
    return 0;
  if (cli->o.nconns != 0)
    return VIGIL_EBUSY;
  vigil_loop_timer_cancel(cli->o.loop, &cli->retry_timer);
  vigil_loop_defer_cancel(cli->o.loop, &cli->closed_defer);
  stop_attempt(cli);
  vigil__owner_free(&cli->o);
  free(cli->host);
  free(cli->tls_name);
  free(cli->id);
  creds_free(cli->cred);
  creds_free(cli->stale);
  free(cli);
  return 0;
}
