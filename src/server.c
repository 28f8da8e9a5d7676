/* The vigil server: listeners, limits, the presence table, shutdown.
 *
 * Everything per connection (session, queue, evidence, endings) is in
 * src/conn.c; this file decides which connections may live.
 *
 * Admission. A connection is accepted, then checked against the limits
 * before its handshake: over max_connections it is answered CLOSE
 * SERVER_FULL, over max_per_address CLOSE ADDRESS_LIMIT, both with
 * retry_after, and reported through on_reject (cause policy). Refusing with
 * a CLOSE rather than a bare close tells a well-behaved client to back off
 * for retry_after instead of hammering us. The limits count live
 * connections (handshaking or open); a dead connection lingering for its
 * peer's FIN does not count, but the number of sockets is still bounded:
 * past twice max_connections (plus slack) a new connection still gets CLOSE
 * SERVER_FULL with retry_after if the kernel takes it at once, and its
 * socket is closed without lingering. Saying nothing (or "going away" with
 * no retry-after) would send the client straight back: a reconnect storm
 * fed by the very load that caused it.
 *
 * Over the connection rate of its address (rate_per_minute, a token
 * bucket per address in a bounded table, src/ratelimit.c) a connection
 * gets CLOSE ADDRESS_LIMIT too, its retry_after the time until the
 * address's next token, so an obedient client comes back exactly when it
 * would be admitted.
 *
 * Credentials. With a verifier (cfg.verify, or cfg.auth_secret for the
 * built-in tokens) a HELLO is judged by on_admit before conn.c stores its
 * id: a HELLO without a credential, or with one that fails, is answered
 * CLOSE AUTH_FAILED with a fixed reason and auth_retry_after_ms, and goes
 * to on_reject. It never reaches the presence table, on_open or the
 * presence store, so it can neither appear online nor take over the id:
 * a takeover (below) happens only from a HELLO that passed for that id.
 *
 * Memory. Reassembly buffers, outbound queues and pending writes of every
 * connection are charged to one budget (src/budget.c): past it, the
 * connections above their share are the ones closed. The default is a
 * quarter of the machine's memory, or what max_connections could hold if
 * that is less.
 *
 * Presence. Open connections are indexed by the id their client sent, in a
 * chained hash table (FNV-1a over the id, mixed with a per-server random
 * seed; it doubles when the load passes 1). A client that comes back with
 * an id already present takes over: the old connection dies first (CLOSE
 * TAKEOVER, on_death cause local, detail "takeover", its unsent messages
 * handed back so the application can resend them on the new one), then the
 * new one gets on_open with rejoin = 1 and the old address.
 *
 * Descriptors. accept() failing with EMFILE/ENFILE would leave the
 * connection in the backlog and the listener readable forever (a busy
 * loop). We keep one spare descriptor: on EMFILE we close it, accept the
 * waiting connection and close that at once (the client sees a reset
 * instead of a hang), and reopen the spare; each is counted in
 * accept_emfile.
 *
 * Shutdown. Listeners close first; open connections get CLOSE GOING_AWAY
 * after what is queued for them, handshaking ones get it at once; a timer
 * bounds the whole thing, after which every remaining socket is closed.
 * on_closed runs when the last socket is gone. */
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "abi.h"
#include "conn.h"
#include "queue.h"
#include "ratelimit.h"
#include "spare.h"
#include "sysmem.h"

#define MAX_LISTENERS 16

typedef struct addr_entry {
  struct addr_entry *next;
  uint32_t count;
  uint8_t keylen;
  uint8_t key[17];
} addr_entry;

struct vigil_server {
  vigil__owner o;
  vigil_server_config cfg;
  vigil_tcp *listeners[MAX_LISTENERS];
  unsigned nlisteners;
  unsigned listeners_open; /* not yet through their close callback */
  vigil_conn **peers;      /* presence table */
  size_t npeer_buckets;
  addr_entry **addrs; /* live connections per source address */
  size_t naddr_buckets, naddrs;
  vigil__rate rate; /* rate.slots NULL: no rate limit */
  uint32_t seed;
  uint32_t live; /* handshaking + open */
  vigil_os_socket spare;
  int shutting_down;
  int closed_reported;
  int free_pending; /* vigil_server_free waits for listeners */
  vigil_loop_timer shutdown_timer;
  vigil_defer closed_defer;
  vigil_server_stats stats;
  uint64_t refused_overload, handshake_timeouts; /* metrics: refusal reasons */
  uint64_t next_gen;                             /* presence generations */
  char old_peer[VIGIL_ADDRSTRLEN];
  char listen_failed[VIGIL_ADDRSTRLEN]; /* vigil_server_listen_failed */
  uint8_t *secret;                      /* copy of cfg.auth_secret, or NULL */
};

/* ---- hashing ------------------------------------------------------------ */

static uint32_t hash_bytes(uint32_t seed, const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u ^ seed;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  return h;
}

static size_t peer_slot(const vigil_server *s, const char *id, size_t len) {
  return hash_bytes(s->seed, (const uint8_t *)id, len) & (s->npeer_buckets - 1);
}

static void peers_grow(vigil_server *s) {
  size_t n = s->npeer_buckets * 2, i;
  vigil_conn **t = calloc(n, sizeof(vigil_conn *));
  if (t == NULL)
    return; /* keep the old table: longer chains, still correct */
  for (i = 0; i < s->npeer_buckets; i++) {
    vigil_conn *c = s->peers[i], *next;
    for (; c != NULL; c = next) {
      size_t k = hash_bytes(s->seed, (const uint8_t *)vigil__conn_peer_id(c), c->id_len) & (n - 1);
      next = c->hnext;
      c->hnext = t[k];
      t[k] = c;
    }
  }
  free(s->peers);
  s->peers = t;
  s->npeer_buckets = n;
}

static void peers_remove(vigil_server *s, vigil_conn *c) {
  vigil_conn **pp = &s->peers[peer_slot(s, vigil__conn_peer_id(c), c->id_len)];
  for (; *pp != NULL; pp = &(*pp)->hnext) {
    if (*pp == c) {
      *pp = c->hnext;
      c->hnext = NULL;
      c->flags &= (uint8_t)~VIGIL__C_PRESENT;
      s->stats.peers--;
      return;
    }
  }
}

static void peers_insert(vigil_server *s, vigil_conn *c) {
  size_t k;
  /* Up to two peers a bucket on average: 4-8 bytes of table per peer
   * instead of 8-16, and a lookup (a HELLO, a send by id) walks 1-2 short
   * chains' worth of entries. */
  if (s->stats.peers >= 2 * s->npeer_buckets)
    peers_grow(s);
  k = peer_slot(s, vigil__conn_peer_id(c), c->id_len);
  c->hnext = s->peers[k];
  s->peers[k] = c;
  c->flags |= VIGIL__C_PRESENT;
  s->stats.peers++;
}

vigil_conn *vigil_server_find(vigil_server *s, const char *id, size_t len) {
  vigil_conn *c;
  if (s == NULL || id == NULL || len == 0 || len > VIGIL_WIRE_MAX_ID)
    return NULL;
  for (c = s->peers[peer_slot(s, id, len)]; c != NULL; c = c->hnext)
    if (c->id_len == len && memcmp(vigil__conn_peer_id(c), id, len) == 0)
      return c;
  return NULL;
}

/* Per-address counts. Returns the entry for key, creating it if asked. */
static addr_entry **addr_find(vigil_server *s, const uint8_t *key, size_t keylen) {
  addr_entry **pp = &s->addrs[hash_bytes(s->seed, key, keylen) & (s->naddr_buckets - 1)];
  for (; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->keylen == keylen && memcmp((*pp)->key, key, keylen) == 0)
      break;
  return pp;
}

static void addrs_grow(vigil_server *s) {
  size_t n = s->naddr_buckets * 2, i;
  addr_entry **t = calloc(n, sizeof(addr_entry *));
  if (t == NULL)
    return;
  for (i = 0; i < s->naddr_buckets; i++) {
    addr_entry *e = s->addrs[i], *next;
    for (; e != NULL; e = next) {
      size_t k = hash_bytes(s->seed, e->key, e->keylen) & (n - 1);
      next = e->next;
      e->next = t[k];
      t[k] = e;
    }
  }
  free(s->addrs);
  s->addrs = t;
  s->naddr_buckets = n;
}

static uint32_t addr_count(vigil_server *s, const vigil_conn *c) {
  uint8_t key[17];
  size_t n = vigil__conn_addr_key(c, key);
  addr_entry **pp = addr_find(s, key, n);
  return *pp != NULL ? (*pp)->count : 0;
}

static int addr_add(vigil_server *s, const vigil_conn *c, int delta) {
  uint8_t key[17];
  size_t n = vigil__conn_addr_key(c, key);
  addr_entry **pp = addr_find(s, key, n), *e = *pp;
  if (delta > 0) {
    if (e == NULL) {
      if ((e = calloc(1, sizeof *e)) == NULL)
        return VIGIL_ENOMEM;
      memcpy(e->key, key, n);
      e->keylen = (uint8_t)n;
      *pp = e;
      if (++s->naddrs > s->naddr_buckets)
        addrs_grow(s);
    }
    e->count++;
  } else if (e != NULL && --e->count == 0) {
    *pp = e->next;
    free(e);
    s->naddrs--;
  }
  return 0;
}

/* ---- hooks from conn.c -------------------------------------------------- */

static vigil_server *server_of(const vigil_conn *c) {
  return c->owner->server;
}

/* Tells the presence store (if any) that c opened (d NULL) or died. */
static void presence_report(vigil_server *s, vigil_conn *c, const vigil_death *d) {
  vigil_presence_event ev;
  char peer[VIGIL_ADDRSTRLEN];
  if (s->cfg.presence == NULL || c->pgen == 0)
    return;
  memset(&ev, 0, sizeof ev);
  vigil__conn_peer_text(c, peer, sizeof peer);
  ev.kind = d == NULL ? VIGIL_PRESENCE_OPEN : VIGIL_PRESENCE_DEAD;
  ev.id = vigil__conn_peer_id(c);
  ev.id_len = c->id_len;
  ev.gen = c->pgen;
  ev.peer = peer;
  ev.at_ms = vigil__wall_ms();
  if (d != NULL) {
    ev.cause = d->cause;
    ev.detail = d->detail;
    ev.silent_ns = d->silent_ns;
    ev.rtt_ns = d->srtt_ns != 0 ? d->srtt_ns : d->last_rtt_ns;
    ev.takeover = d->close_sent && d->close_code == VIGIL_CLOSE_TAKEOVER;
  }
  (void)s->cfg.presence->ops->report(s->cfg.presence, &ev);
}

static void on_opened(vigil_conn *c, vigil_open_info *info) {
  vigil_server *s = server_of(c);
  vigil_conn *old = vigil_server_find(s, vigil__conn_peer_id(c), c->id_len);
  s->stats.opened++;
  if (old != NULL) {
    vigil__conn_peer_text(old, s->old_peer, sizeof s->old_peer);
    info->rejoin = 1;
    info->old_peer = s->old_peer;
    s->stats.rejoins++;
    peers_remove(s, old);
    vigil__conn_kill(old, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_TAKEOVER,
                     vigil_close_code_text(VIGIL_CLOSE_TAKEOVER), 0, "takeover");
  }
  peers_insert(s, c);
  c->pgen = ++s->next_gen;
  presence_report(s, c, NULL);
}

/* Before the id counts: with auth configured, the HELLO's credential must
 * pass. The reason sent is one of three fixed texts, so neither the
 * credential nor anything about the secret can reach the peer or a log;
 * "expired" is said only of a genuine credential (the verifier's answer). */
static int on_admit(vigil_conn *c, const uint8_t *id, size_t id_len, const uint8_t *cred,
                    size_t cred_len) {
  vigil_server *s = server_of(c);
  const char *why = "credential required";
  int rc = VIGIL_EAUTH;
  if (cred_len != 0 && s->cfg.verify != NULL)
    rc = s->cfg.verify(c, (const char *)id, id_len, cred, cred_len, s->cfg.user);
  else if (cred_len != 0)
    rc = vigil_token_verify(s->secret, s->cfg.auth_secret_len, (const char *)id, id_len,
                            (const char *)cred, cred_len, vigil__wall_ms() / 1000u);
  if (rc == 0)
    return 0;
  if (cred_len != 0)
    why = rc == VIGIL_EEXPIRED ? "credential expired" : "authentication failed";
  s->stats.refused_auth++;
  vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_AUTH_FAILED, why, s->cfg.auth_retry_after_ms,
                   why);
  return -1;
}

static void on_died(vigil_conn *c, const vigil_death *d, int was_open) {
  vigil_server *s = server_of(c);
  if (c->flags & VIGIL__C_PRESENT)
    peers_remove(s, c);
  if (c->flags & VIGIL__C_COUNTED) {
    c->flags &= (uint8_t)~VIGIL__C_COUNTED;
    s->live--;
    (void)addr_add(s, c, -1);
    if (!was_open)
      s->stats.handshake_failed++;
    if (!was_open && d->close_sent && d->close_code == VIGIL_CLOSE_HANDSHAKE_TIMEOUT)
      s->handshake_timeouts++;
  }
  if (was_open) {
    s->stats.deaths[d->cause < VIGIL_CAUSE_COUNT ? d->cause : VIGIL_CAUSE_NONE]++;
    presence_report(s, c, d);
  }
  if (d->close_sent && d->close_code == VIGIL_CLOSE_QUEUE_FULL)
    s->stats.queue_full_closes++;
}

static void maybe_closed(vigil_server *s) {
  if (s->shutting_down && !s->closed_reported && s->o.nconns == 0 && s->listeners_open == 0) {
    s->closed_reported = 1;
    vigil_loop_timer_cancel(s->o.loop, &s->shutdown_timer);
    vigil_loop_defer(s->o.loop, &s->closed_defer);
  }
}

static void on_freed(vigil_conn *c) {
  maybe_closed(server_of(c));
}

/* ---- accepting ---------------------------------------------------------- */

static void survive_emfile(vigil_server *s, vigil_tcp *listener) {
  s->stats.accept_emfile++;
  if (s->spare == VIGIL_INVALID_SOCKET)
    return;
  vigil__spare_close(s->spare);
  (void)vigil_tcp_accept_drop(listener);
  s->spare = vigil__spare_open();
}

static void refuse(vigil_server *s, vigil_conn *c, uint16_t code, const char *detail) {
  vigil__conn_kill(c, VIGIL_CAUSE_POLICY, code, vigil_close_code_text(code), s->cfg.retry_after_ms,
                   detail);
}

/* 0 when c's address may connect now; else c has been refused. */
static int rate_check(vigil_server *s, vigil_conn *c) {
  uint8_t key[17];
  size_t n = vigil__conn_addr_key(c, key);
  uint64_t wait_ns, ms;
  const char *why;
  int rc;
  if (s->rate.slots == NULL)
    return 0;
  rc = vigil__rate_take(&s->rate, key, n, vigil_loop_now_ns(s->o.loop), &wait_ns);
  if (rc == VIGIL__RATE_OK)
    return 0;
  ms = wait_ns / 1000000u + 1u; /* rounded up: coming back sooner is refused again */
  why = rc == VIGIL__RATE_LIMITED ? "connection rate limit" : "rate limit table full";
  s->stats.refused_address++;
  vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_ADDRESS_LIMIT, why,
                   ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, why);
  return -1;
}

static void on_connection(vigil_tcp *listener, int status) {
  vigil_server *s = listener->data;
  vigil_conn *c;
  if (status == VIGIL_EMFILE || status == VIGIL_ENFILE) {
    survive_emfile(s, listener);
    return;
  }
  if (status != 0 || s->shutting_down)
    return;
  c = vigil__conn_new(&s->o);
  if (c == NULL)
    return; /* the loop closes the waiting connection */
  if (vigil_tcp_accept(listener, &c->tcp) != 0) {
    vigil__conn_discard(c);
    return;
  }
  s->stats.accepted++;
  if (vigil__conn_start(c, VIGIL_ROLE_SERVER, &s->cfg.session) != 0) {
    vigil__conn_abort(c, "could not start the session");
    return;
  }
  if ((uint64_t)s->o.nconns > 2u * (uint64_t)s->cfg.max_connections + 64u) { /* no wrap */
    s->stats.refused_full++;
    s->refused_overload++;
    refuse(s, c, VIGIL_CLOSE_SERVER_FULL, "server full (too many sockets to linger)");
    vigil__conn_abort(c, NULL); /* no linger: the socket goes now */
  } else if (s->live >= s->cfg.max_connections) {
    s->stats.refused_full++;
    refuse(s, c, VIGIL_CLOSE_SERVER_FULL, "server full");
  } else if (rate_check(s, c) != 0) {
    /* refused */
  } else if (s->cfg.max_per_address != 0 && addr_count(s, c) >= s->cfg.max_per_address) {
    s->stats.refused_address++;
    refuse(s, c, VIGIL_CLOSE_ADDRESS_LIMIT, "too many connections from this address");
  } else if (addr_add(s, c, +1) != 0) {
    vigil__conn_abort(c, "out of memory");
  } else {
    c->flags |= VIGIL__C_COUNTED;
    s->live++;
  }
}

/* ---- public ------------------------------------------------------------- */

static void config_defaults(vigil_server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
  vigil_session_config_init(&cfg->session);
  vigil_keepalive_init(&cfg->keepalive);
}

void vigil_server_config_init_sized(vigil_server_config *cfg, size_t size) {
  vigil_server_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

static void on_closed_defer(vigil_loop *loop, vigil_defer *d) {
  vigil_server *s = vigil_container_of(d, vigil_server, closed_defer);
  (void)loop;
  if (s->cfg.on_closed != NULL)
    s->cfg.on_closed(s, s->cfg.user);
}

/* A quarter of the machine, or what max_connections could ever hold if
 * that is less (then the budget never bites before the caps do). */
static size_t default_budget(const vigil_server_config *c) {
  uint64_t msg = c->session.max_message != 0 ? c->session.max_message : (uint64_t)1 << 20;
  uint64_t worst = (uint64_t)c->max_connections * (msg + c->max_queue_bytes + VIGIL__WBUF_SIZE);
  uint64_t quarter = vigil__phys_memory() / 4;
  uint64_t b = quarter != 0 && quarter < worst ? quarter : worst;
  return b > SIZE_MAX ? SIZE_MAX : (size_t)b;
}

static void apply_defaults(vigil_server_config *c) {
  if (c->max_connections == 0)
    c->max_connections = 10000;
  if (c->retry_after_ms == 0)
    c->retry_after_ms = 1000;
  if (c->max_queue_bytes == 0)
    c->max_queue_bytes = (size_t)1 << 20;
  if (c->queue_full_strikes == 0)
    c->queue_full_strikes = 8;
  if (c->shutdown_timeout_ms == 0)
    c->shutdown_timeout_ms = 1000;
  if (c->backlog <= 0)
    c->backlog = 511;
  if (c->memory_budget == 0)
    c->memory_budget = default_budget(c);
  if (c->rate_burst == 0)
    c->rate_burst = c->rate_per_minute / 60u > 0 ? c->rate_per_minute / 60u : 1u;
  if (c->rate_sources == 0)
    c->rate_sources = 16384;
  if (c->auth_retry_after_ms == 0)
    c->auth_retry_after_ms = 10000;
}

/* The secret's copy is wiped before it goes back to the allocator (through
 * a volatile pointer, so the stores are not optimised away). */
static void secret_free(vigil_server *s) {
  volatile uint8_t *p = s->secret;
  size_t i;
  for (i = 0; p != NULL && i < s->cfg.auth_secret_len; i++)
    p[i] = 0;
  free(s->secret);
  s->secret = NULL;
}

/* The auth settings: one judge, and a secret the token scheme accepts. */
static int auth_config(const vigil_server_config *c) {
  if (c->auth_secret == NULL)
    return c->auth_secret_len == 0 ? 0 : VIGIL_EINVAL;
  if (c->verify != NULL || c->auth_secret_len < VIGIL_TOKEN_SECRET_MIN)
    return VIGIL_EINVAL;
  return vigil_token_available() ? 0 : VIGIL_ENOTSUP;
}

int vigil_server_new(vigil_server **out, vigil_loop *loop, const vigil_server_config *cfg_in) {
  vigil_server_config c;
  const vigil_server_config *cfg = &c;
  vigil_server *s;
  int rc;
  if (out == NULL || loop == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  config_defaults(&c); /* fields an older caller lacks keep their default */
  if ((rc = vigil__opts_read(&c, sizeof c, cfg_in)) != 0)
    return rc;
  if (vigil_session_config_check(&cfg->session, VIGIL_ROLE_SERVER, NULL, 0) != 0)
    return VIGIL_EINVAL;
  if ((rc = auth_config(cfg)) != 0)
    return rc;
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return VIGIL_ENOMEM;
  if (cfg->auth_secret != NULL) {
    if ((s->secret = malloc(cfg->auth_secret_len)) == NULL) {
      free(s);
      return VIGIL_ENOMEM;
    }
    memcpy(s->secret, cfg->auth_secret, cfg->auth_secret_len);
  }
  s->cfg = *cfg;
  s->cfg.session.id = NULL;
  s->cfg.session.id_len = 0;
  apply_defaults(&s->cfg);
  s->npeer_buckets = 64;
  s->naddr_buckets = 64;
  s->peers = calloc(s->npeer_buckets, sizeof(vigil_conn *));
  s->addrs = calloc(s->naddr_buckets, sizeof(addr_entry *));
  if (s->peers == NULL || s->addrs == NULL || vigil__owner_init(&s->o, loop) != 0 ||
      vigil__owner_tls(&s->o, cfg->tls, NULL) != 0) {
    if (s->o.rbuf != NULL)
      vigil__owner_free(&s->o);
    free(s->peers);
    free(s->addrs);
    secret_free(s);
    free(s);
    return VIGIL_ENOMEM;
  }
  s->seed = vigil__random_u32(s, vigil_loop_now_ns(loop));
  if (s->cfg.rate_per_minute != 0 &&
      vigil__rate_init(&s->rate, s->cfg.rate_per_minute, s->cfg.rate_burst, s->cfg.rate_sources,
                       s->seed ^ 0x9E3779B9u) != 0) {
    vigil__owner_free(&s->o);
    free(s->peers);
    free(s->addrs);
    secret_free(s);
    free(s);
    return VIGIL_ENOMEM;
  }
  s->o.cb = cfg->cb;
  s->o.user = cfg->user;
  s->o.server = s;
  s->o.max_queue_bytes = s->cfg.max_queue_bytes;
  s->o.queue_full_strikes = s->cfg.queue_full_strikes;
  s->o.budget = s->cfg.memory_budget == SIZE_MAX ? 0 : s->cfg.memory_budget;
  s->o.ka_mode = cfg->keepalive_mode;
  s->o.ka = cfg->keepalive;
  s->o.opened = on_opened;
  if (s->cfg.verify != NULL || s->secret != NULL)
    s->o.admit = on_admit;
  s->cfg.auth_secret = s->secret;
  s->o.died = on_died;
  s->o.freed = on_freed;
  s->spare = vigil__spare_open();
  vigil_loop_timer_init(&s->shutdown_timer);
  vigil_defer_init(&s->closed_defer, on_closed_defer);
  vigil__owner_stall_start(&s->o);
  if (s->cfg.presence != NULL && s->cfg.presence->ops->bind != NULL)
    s->cfg.presence->ops->bind(s->cfg.presence, s);
  *out = s;
  return 0;
}

static void server_release(vigil_server *s);

static void on_listener_closed(vigil_tcp *tcp) {
  vigil_server *s = tcp->data;
  free(tcp);
  s->listeners_open--;
  if (s->free_pending) {
    if (s->listeners_open == 0)
      server_release(s);
    return;
  }
  maybe_closed(s);
}

static int listen_one(vigil_server *s, const struct sockaddr *sa, uint16_t *port) {
  vigil_tcp *t;
  struct sockaddr_storage ss;
  int rc, len;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, sa, (size_t)vigil_ip_len(sa));
  if (ss.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(*port);
  else
    ((struct sockaddr_in *)&ss)->sin_port = htons(*port);
  /* Named before the attempt, so whatever fails below is reported with the
   * address it was for. */
  (void)vigil_ip_format((const struct sockaddr *)&ss, s->listen_failed, sizeof s->listen_failed);
  if (s->nlisteners == MAX_LISTENERS)
    return VIGIL_ENOSPACE;
  if ((t = malloc(sizeof *t)) == NULL)
    return VIGIL_ENOMEM;
  vigil_tcp_init(s->o.loop, t);
  t->data = s;
  s->listeners_open++;
  rc = vigil_tcp_bind_listen(t, (const struct sockaddr *)&ss, s->cfg.backlog,
                             VIGIL_TCP_IPV6ONLY | (s->cfg.reuseport ? VIGIL_TCP_REUSEPORT : 0u),
                             on_connection);
  if (rc != 0) {
    vigil_tcp_close(t, on_listener_closed);
    return rc;
  }
  s->listeners[s->nlisteners++] = t;
  len = (int)sizeof ss;
  if (*port == 0 && vigil_tcp_sockname(t, (struct sockaddr *)&ss, &len) == 0)
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

static int resolve_error(int rc) {
  switch (rc) {
  case EAI_MEMORY:
    return VIGIL_ENOMEM;
  case EAI_FAMILY:
    return VIGIL_EAFNOSUPPORT;
  default:
    return VIGIL_ENOENT;
  }
}

/* Closes the listeners opened since index `from`: a failed listen leaves
 * nothing of itself behind. */
static void unlisten_from(vigil_server *s, unsigned from) {
  while (s->nlisteners > from)
    vigil_tcp_close(s->listeners[--s->nlisteners], on_listener_closed);
}

/* Binds every address of res, IPv6 first, so with port 0 the kernel's
 * choice there is reused for IPv4 ("::" and "0.0.0.0" on the same port).
 * All or nothing: "every address" that silently lost one of them would
 * claim a service it does not give (another process on 127.0.0.1:P would
 * take the IPv4 clients while we said we listened). The one exception is
 * a family the system has no stack for (EAFNOSUPPORT): that is not an
 * address of this host at all. */
static int listen_all(vigil_server *s, const struct addrinfo *res, uint16_t *port) {
  const struct addrinfo *ai;
  unsigned from = s->nlisteners;
  int pass, err, ok = 0;
  for (pass = 0; pass < 2; pass++) {
    for (ai = res; ai != NULL; ai = ai->ai_next) {
      if ((ai->ai_family == AF_INET6) != (pass == 0))
        continue;
      err = listen_one(s, ai->ai_addr, port);
      if (err == VIGIL_EAFNOSUPPORT)
        continue;
      if (err != 0) {
        unlisten_from(s, from);
        return err;
      }
      ok++;
    }
  }
  return ok != 0 ? 0 : VIGIL_EAFNOSUPPORT;
}

int vigil_server_listen(vigil_server *s, const char *host, uint16_t port, uint16_t *bound_port) {
  struct addrinfo hints, *res = NULL;
  int rc, tries;
  uint16_t p;
  if (s == NULL)
    return VIGIL_EINVAL;
  s->listen_failed[0] = '\0';
  if (s->shutting_down)
    return VIGIL_ECLOSED;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (host != NULL && host[0] == '\0')
    host = NULL;
  rc = getaddrinfo(host, "0", &hints, &res);
  if (rc != 0)
    return resolve_error(rc);
  /* With port 0 the port the kernel chose for IPv6 may be taken on IPv4:
   * that is bad luck, not the caller's error, so a few fresh draws. */
  for (tries = 0;; tries++) {
    p = port;
    rc = listen_all(s, res, &p);
    if (rc != VIGIL_EADDRINUSE || port != 0 || tries == 8)
      break;
  }
  freeaddrinfo(res);
  if (rc != 0)
    return rc;
  s->listen_failed[0] = '\0';
  if (bound_port != NULL)
    *bound_port = p;
  return 0;
}

const char *vigil_server_listen_failed(const vigil_server *s) {
  return s != NULL ? s->listen_failed : "";
}

int vigil_server_send_to(vigil_server *s, const char *id, size_t id_len, const void *msg,
                         size_t len) {
  vigil_conn *c = vigil_server_find(s, id, id_len);
  if (c == NULL)
    return VIGIL_ENOENT;
  return vigil_conn_send(c, msg, len);
}

int vigil_server_evict(vigil_server *s, const char *id, size_t id_len, uint64_t gen) {
  vigil_conn *c = vigil_server_find(s, id, id_len);
  if (c == NULL || c->pgen != gen)
    return VIGIL_ENOENT;
  peers_remove(s, c);
  vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_TAKEOVER,
                   vigil_close_code_text(VIGIL_CLOSE_TAKEOVER), 0, "takeover");
  return 0;
}

uint64_t vigil_conn_generation(const vigil_conn *c) {
  return c != NULL && c->owner->server != NULL ? c->pgen : 0;
}

static void on_shutdown_timer(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_server *s = vigil_container_of(t, vigil_server, shutdown_timer);
  vigil__slab_cursor cur = {0};
  vigil_conn *c;
  (void)loop;
  while ((c = vigil__conn_next(&s->o, &cur)) != NULL)
    vigil__conn_abort(c, "shutdown"); /* freed in its close callback, not here */
}

int vigil_server_shutdown(vigil_server *s, uint32_t timeout_ms) {
  vigil__slab_cursor cur = {0};
  vigil_conn *c;
  unsigned i;
  if (s == NULL)
    return VIGIL_EINVAL;
  if (s->shutting_down)
    return VIGIL_EALREADY;
  s->shutting_down = 1;
  if (timeout_ms == 0)
    timeout_ms = s->cfg.shutdown_timeout_ms;
  for (i = 0; i < s->nlisteners; i++)
    vigil_tcp_close(s->listeners[i], on_listener_closed);
  s->nlisteners = 0;
  while ((c = vigil__conn_next(&s->o, &cur)) != NULL) {
    if (c->phase == VIGIL__OPEN)
      (void)vigil__conn_close(c, VIGIL_CLOSE_GOING_AWAY,
                              vigil_close_code_text(VIGIL_CLOSE_GOING_AWAY), "shutdown",
                              timeout_ms);
    else if (c->phase != VIGIL__ZOMBIE)
      vigil__conn_kill(c, VIGIL_CAUSE_LOCAL, VIGIL_CLOSE_GOING_AWAY,
                       vigil_close_code_text(VIGIL_CLOSE_GOING_AWAY), 0, "shutdown");
  }
  vigil_loop_timer_arm(s->o.loop, &s->shutdown_timer, vigil__after_ms(s->o.loop, timeout_ms),
                       on_shutdown_timer);
  maybe_closed(s);
  return 0;
}

void vigil_server_get_stats(const vigil_server *s, vigil_server_stats *st) {
  if (s == NULL || st == NULL)
    return;
  *st = s->stats;
  st->connections = s->o.nconns;
  st->budget_closes = s->o.budget_closes;
  st->memory_used = s->o.budget_used;
  st->memory_budget = s->o.budget != 0 ? s->o.budget : UINT64_MAX;
}

int vigil_server_get_metrics_sized(const vigil_server *s, vigil_metrics *out, size_t size) {
  vigil_metrics m;
  const vigil_server_stats *st;
  if (s == NULL || out == NULL || size < sizeof(size_t))
    return VIGIL_EINVAL;
  st = &s->stats;
  m = s->o.m; /* connections by phase, queue, pings, pongs, histograms, stalls */
  m.peers = st->peers;
  m.accepted = st->accepted;
  m.opened = st->opened;
  m.takeovers = st->rejoins;
  m.refused[VIGIL_REFUSED_SERVER_FULL] = st->refused_full - s->refused_overload;
  m.refused[VIGIL_REFUSED_ADDRESS_LIMIT] = st->refused_address;
  m.refused[VIGIL_REFUSED_OVERLOAD] = s->refused_overload;
  m.refused[VIGIL_REFUSED_HANDSHAKE_TIMEOUT] = s->handshake_timeouts;
  /* A refused credential ends a handshake too: counted once, as auth_failed. */
  m.refused[VIGIL_REFUSED_BAD_HANDSHAKE] =
      st->handshake_failed - s->handshake_timeouts - st->refused_auth;
  m.refused[VIGIL_REFUSED_AUTH_FAILED] = st->refused_auth;
  memcpy(m.deaths, st->deaths, sizeof m.deaths);
  m.queue_full_closes = st->queue_full_closes;
  m.accept_emfile = st->accept_emfile;
  m.size = size < sizeof m ? size : sizeof m;
  memcpy(out, &m, m.size);
  return 0;
}

int vigil_server_foreach(vigil_server *s, int (*fn)(vigil_conn *c, void *arg), void *arg) {
  vigil__slab_cursor cur = {0};
  vigil_conn *c;
  int rc;
  if (s == NULL || fn == NULL)
    return VIGIL_EINVAL;
  while ((c = vigil__conn_next(&s->o, &cur)) != NULL) {
    if (c->phase == VIGIL__OPEN && (rc = fn(c, arg)) != 0)
      return rc;
  }
  return 0;
}

static void server_release(vigil_server *s) {
  size_t i;
  for (i = 0; i < s->naddr_buckets; i++) {
    addr_entry *e = s->addrs[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      free(e);
    }
  }
  vigil__spare_close(s->spare);
  vigil__owner_free(&s->o);
  vigil__rate_free(&s->rate);
  free(s->peers);
  free(s->addrs);
  secret_free(s);
  free(s);
}

int vigil_server_free(vigil_server *s) {
  unsigned i;
  if (s == NULL)
    return 0;
  if (s->o.nconns != 0)
    return VIGIL_EBUSY;
  if (s->cfg.presence != NULL && s->cfg.presence->ops->bind != NULL)
    s->cfg.presence->ops->bind(s->cfg.presence, NULL);
  vigil_loop_timer_cancel(s->o.loop, &s->shutdown_timer);
  vigil_loop_defer_cancel(s->o.loop, &s->closed_defer);
  for (i = 0; i < s->nlisteners; i++)
    vigil_tcp_close(s->listeners[i], on_listener_closed);
  s->nlisteners = 0;
  if (s->listeners_open != 0) {
    s->free_pending = 1; /* the memory goes with the last listener's close callback */
    return 0;
  }
  server_release(s);
  return 0;
}
