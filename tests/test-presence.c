/* Presence: the local store's ordering by generation (stale and repeated
 * updates change nothing), its limit, the server reporting openings,
 * deaths and takeovers to it, vigil_server_evict, and the loop's
 * descriptor watch that the Redis store's hiredis adapter runs on.
 *
 * The Redis store has its own tests (test-presence-redis.c), which start
 * their own redis-server. */
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "util-redis.h"
#include "vigil.h"

#define WAIT 3000u

static vigil_presence_event ev_make(vigil_presence_kind kind, const char *id, uint64_t gen) {
  vigil_presence_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.id = id;
  ev.id_len = strlen(id);
  ev.gen = gen;
  ev.peer = "127.0.0.1:9";
  ev.at_ms = 1000 + gen;
  return ev;
}

TEST_IMPL(local_order_by_generation) {
  vigil_presence_local *t;
  vigil_presence_record r;
  vigil_presence_event ev;
  ASSERT_EQ(vigil_presence_local_new(&t, 0), 0);
  ev = ev_make(VIGIL_PRESENCE_OPEN, "gw-1", 1);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 0); /* a repeat */
  ev = ev_make(VIGIL_PRESENCE_OPEN, "gw-1", 2);     /* takeover by gen 2 */
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1);
  ev = ev_make(VIGIL_PRESENCE_DEAD, "gw-1", 1); /* late death of gen 1 */
  ev.cause = VIGIL_CAUSE_LOCAL;
  ev.takeover = 1;
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 0);
  ASSERT_EQ(vigil_presence_local_get(t, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_ONLINE);
  ASSERT_UEQ(r.gen, 2);
  ev = ev_make(VIGIL_PRESENCE_DEAD, "gw-1", 2);
  ev.cause = VIGIL_CAUSE_PEER_STALLED;
  ev.rtt_ns = 5 * VIGIL_MS;
  ev.silent_ns = 300 * VIGIL_MS;
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 0);
  ev = ev_make(VIGIL_PRESENCE_OPEN, "gw-1", 1); /* replayed old opening */
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 0);
  ASSERT_EQ(vigil_presence_local_get(t, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_OFFLINE);
  ASSERT_EQ(r.last_cause, VIGIL_CAUSE_PEER_STALLED);
  ASSERT_UEQ(r.last_rtt_ns, 5 * VIGIL_MS);
  ASSERT_UEQ(r.since_ms, 1002);
  ASSERT_EQ(vigil_presence_local_get(t, "gw-2", 4, &r), VIGIL_ENOENT);
  ASSERT_STR_EQ(vigil_presence_state_name(r.state), "offline");
  vigil_presence_local_free(t);
  return 0;
}

TEST_IMPL(local_rejects_bad_events) {
  vigil_presence_local *t;
  vigil_presence_event ev;
  char big[300];
  ASSERT_EQ(vigil_presence_local_new(&t, 0), 0);
  ev = ev_make(VIGIL_PRESENCE_OPEN, "x", 0); /* generation 0 */
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), VIGIL_EINVAL);
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ev = ev_make(VIGIL_PRESENCE_OPEN, big, 1); /* longer than any wire id */
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), VIGIL_EINVAL);
  ev = ev_make((vigil_presence_kind)7, "x", 1);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), VIGIL_EINVAL);
  ASSERT_EQ(vigil_presence_local_count(t), 0);
  vigil_presence_local_free(t);
  return 0;
}

/* The limit: an offline record makes room; a table of online ids refuses
 * and counts. */
TEST_IMPL(local_limit) {
  vigil_presence_local *t;
  vigil_presence_event ev;
  char id[16];
  int i;
  ASSERT_EQ(vigil_presence_local_new(&t, 100), 0);
  for (i = 0; i < 100; i++) {
    snprintf(id, sizeof id, "id-%d", i);
    ev = ev_make(VIGIL_PRESENCE_OPEN, id, (uint64_t)i + 1);
    ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1);
  }
  ev = ev_make(VIGIL_PRESENCE_OPEN, "one-more", 500);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), VIGIL_ENOSPACE);
  ASSERT_UEQ(vigil_presence_local_dropped(t), 1);
  ev = ev_make(VIGIL_PRESENCE_DEAD, "id-7", 8);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1);
  ev = ev_make(VIGIL_PRESENCE_OPEN, "one-more", 501);
  ASSERT_EQ(vigil_presence_local_apply(t, &ev), 1); /* id-7 made room */
  ASSERT_EQ(vigil_presence_local_get(t, "id-7", 4, NULL), VIGIL_ENOENT);
  ASSERT_EQ(vigil_presence_local_count(t), 100);
  vigil_presence_local_free(t);
  return 0;
}

typedef struct fixture {
  vigil_loop loop;
  vigil_server *srv;
  vigil_presence_local *table;
  util_rec rec;
  uint16_t port;
} fixture;

static int up(fixture *f) {
  vigil_server_config cfg;
  int rc;
  util_rec_init(&f->rec);
  vigil_server_config_init(&cfg);
  cfg.session.interval_ms = 100;
  cfg.session.timeout_ms = 300;
  cfg.cb = util_rec_callbacks();
  cfg.user = &f->rec;
  cfg.on_closed = util_rec_on_server_closed;
  if ((rc = util_net_init()) != 0 || (rc = vigil_presence_local_new(&f->table, 0)) != 0)
    return rc;
  cfg.presence = vigil_presence_local_store(f->table);
  if ((rc = vigil_loop_init(&f->loop, NULL)) != 0 ||
      (rc = vigil_server_new(&f->srv, &f->loop, &cfg)) != 0)
    return rc;
  return vigil_server_listen(f->srv, "127.0.0.1", 0, &f->port);
}

static int down(fixture *f) {
  int rc;
  (void)vigil_server_shutdown(f->srv, 500);
  if (!util_run_until(&f->loop, &f->rec.closed, WAIT))
    return VIGIL_ETIMEDOUT;
  if ((rc = vigil_server_free(f->srv)) != 0)
    return rc;
  util_run_for(&f->loop, 5);
  vigil_presence_local_free(f->table);
  return vigil_loop_close(&f->loop);
}

/* The heartbeat of the test clients and of the Redis fixture's servers;
 * the big outage test slows it down, so that its own blocking Redis calls
 * (the comparison) stalling the one loop of 2,000 sockets are no death. */
static uint32_t rfix_interval_ms = 100, rfix_timeout_ms = 300;

static int client(vigil_loop *loop, uint16_t port, util_rec *r, const char *id,
                  vigil_client **out) {
  vigil_client_config c;
  util_rec_init(r);
  vigil_client_config_init(&c);
  c.session.interval_ms = rfix_interval_ms;
  c.session.timeout_ms = rfix_timeout_ms;
  c.session.id = id;
  c.session.id_len = strlen(id);
  c.cb = util_rec_callbacks();
  c.user = r;
  c.on_closed = util_rec_on_client_closed;
  c.no_reconnect = 1;
  if (vigil_client_new(out, loop, &c) != 0)
    return -1;
  return vigil_client_connect(*out, "127.0.0.1", port);
}

/* The server reports an opening, a takeover (the old connection's death
 * marked as such, not overwriting the new opening) and a close. */
TEST_IMPL(server_reports) {
  fixture f;
  vigil_client *a, *b;
  util_rec ra, rb;
  vigil_presence_record r;
  uint64_t gen_a;
  ASSERT_EQ(up(&f), 0);
  ASSERT_EQ(client(&f.loop, f.port, &ra, "gw-1", &a), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT_EQ(vigil_presence_local_get(f.table, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_ONLINE);
  gen_a = r.gen;
  ASSERT_UEQ(vigil_conn_generation(f.rec.conn), gen_a);
  ASSERT(strncmp(r.peer, "127.0.0.1:", 10) == 0);
  ASSERT_EQ(client(&f.loop, f.port, &rb, "gw-1", &b), 0);
  ASSERT(util_run_until_n(&f.loop, &f.rec.opens, 2, WAIT));
  ASSERT_EQ(vigil_presence_local_get(f.table, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_ONLINE);
  ASSERT(r.gen > gen_a);
  ASSERT_EQ(r.takeover, 1); /* the last death was gen_a's takeover */
  /* Evicting a generation that is gone does nothing. */
  ASSERT_EQ(vigil_server_evict(f.srv, "gw-1", 4, gen_a), VIGIL_ENOENT);
  ASSERT_EQ(vigil_server_evict(f.srv, "gw-1", 4, r.gen), 0);
  ASSERT(util_run_until_n(&f.loop, &f.rec.deaths, 2, WAIT));
  ASSERT_STR_EQ(f.rec.detail, "takeover");
  ASSERT_EQ(vigil_presence_local_get(f.table, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_OFFLINE);
  ASSERT_EQ(r.last_cause, VIGIL_CAUSE_LOCAL);
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT(util_run_until(&f.loop, &rb.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_client_free(b), 0);
  ASSERT_EQ(down(&f), 0);
  return 0;
}

#if !defined(_WIN32)
typedef struct watch_rec {
  int calls;
  unsigned events;
  int closed;
} watch_rec;

static void on_ready(vigil_fd_watch *w, unsigned events) {
  watch_rec *r = w->data;
  r->calls++;
  r->events |= events;
  (void)vigil_fd_watch_set(w, 0, NULL); /* one report is enough */
}

static void on_watch_closed(vigil_fd_watch *w) {
  ((watch_rec *)w->data)->closed++;
}
#endif

/* A watch reports readiness, never reads, and leaves the descriptor open
 * when closed. */
TEST_IMPL(fd_watch) {
#if defined(_WIN32)
  vigil_loop loop;
  vigil_fd_watch w;
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
  ASSERT_EQ(vigil_fd_watch_init(&loop, &w, (vigil_os_socket)1), VIGIL_ENOTSUP);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  RETURN_SKIP("IOCP has no readiness watch (VIGIL_ENOTSUP checked)");
#else
  static const vigil_backend backends[] = {VIGIL_BACKEND_EPOLL, VIGIL_BACKEND_POLL};
  size_t i;
  for (i = 0; i < 2; i++) {
    vigil_loop_options o;
    vigil_loop loop;
    vigil_fd_watch w;
    watch_rec r;
    int sv[2];
    char c;
    vigil_loop_options_init(&o);
    o.backend = backends[i];
    if (vigil_loop_init(&loop, &o) != 0)
      continue; /* no epoll here */
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&r, 0, sizeof r);
    ASSERT_EQ(vigil_fd_watch_init(&loop, &w, sv[0]), 0);
    w.data = &r;
    ASSERT_EQ(vigil_fd_watch_set(&w, 4, on_ready), VIGIL_EINVAL);
    ASSERT_EQ(vigil_fd_watch_set(&w, VIGIL_FD_READABLE, NULL), VIGIL_EINVAL);
    ASSERT_EQ(vigil_fd_watch_set(&w, VIGIL_FD_READABLE, on_ready), 0);
    ASSERT_EQ(vigil_loop_alive(&loop), 1);
    ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_NOWAIT), 1);
    ASSERT_EQ(r.calls, 0); /* nothing to read yet */
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_ONCE), 0); /* interest dropped: nothing left */
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.events, VIGIL_FD_READABLE);
    ASSERT_EQ(vigil_fd_watch_set(&w, VIGIL_FD_WRITABLE, on_ready), 0);
    (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
    ASSERT_EQ(r.calls, 2);
    ASSERT_EQ(r.events, VIGIL_FD_READABLE | VIGIL_FD_WRITABLE);
    ASSERT_EQ(vigil_fd_watch_set(&w, VIGIL_FD_READABLE, on_ready), 0);
    vigil_fd_watch_close(&w, on_watch_closed);
    ASSERT_EQ(vigil_fd_watch_set(&w, VIGIL_FD_READABLE, on_ready), VIGIL_EINVAL);
    ASSERT_EQ(vigil_loop_run(&loop, VIGIL_RUN_DEFAULT), 0);
    ASSERT_EQ(r.closed, 1);
    ASSERT_EQ(r.calls, 2);
    ASSERT_EQ(read(sv[0], &c, 1), 1); /* never read by the watch, still open */
    ASSERT_EQ(c, 'x');
    close(sv[0]);
    close(sv[1]);
    ASSERT_EQ(vigil_loop_close(&loop), 0);
  }
  return 0;
#endif
}

/* ---- the Redis store (libvigil-redis; a redis-server of the test's own) -- */

#if defined(VIGIL_HAVE_HIREDIS)
#include <hiredis/hiredis.h>

#include "vigil/presence-redis.h"

typedef util_redis redis_proc;
#define redis_start util_redis_start
#define redis_stop util_redis_stop
#define redis_cleanup util_redis_cleanup

/* Field of the record of id, or "" (static buffer). */
static const char *rfield(redisContext *c, const char *id, const char *field) {
  static char buf[128];
  redisReply *r = redisCommand(c, "HGET vigil:p:%s %s", id, field);
  buf[0] = '\0';
  if (r != NULL && r->type == REDIS_REPLY_STRING)
    snprintf(buf, sizeof buf, "%s", r->str);
  freeReplyObject(r);
  return buf;
}

typedef struct rfix {
  redis_proc rp;
  redisContext *rc; /* the test's own (blocking) view of Redis */
  vigil_loop loop;
  vigil_server *srv[2];
  vigil_presence_redis *pr[2];
  util_rec rec[2];
  uint16_t port[2];
  int ups, downs, closed;
} rfix;

static void on_state(vigil_presence_redis *r, int up, const char *why, void *user) {
  rfix *f = user;
  (void)r;
  (void)why;
  if (up)
    f->ups++;
  else
    f->downs++;
}

static void on_pr_closed(void *user) {
  ((rfix *)user)->closed++;
}

static int rfix_up(rfix *f, int nservers, size_t max_queue) {
  int i;
  memset(f, 0, sizeof *f);
  if (redis_start(&f->rp) != 0)
    return -1;
  f->rc = redisConnectUnix(f->rp.sock);
  if (f->rc == NULL || f->rc->err != 0 || vigil_loop_init(&f->loop, NULL) != 0)
    return -1;
  for (i = 0; i < nservers; i++) {
    vigil_presence_redis_config pc;
    vigil_server_config cfg;
    vigil_presence_redis_config_init(&pc);
    if (vigil_presence_url_parse("unix://x", &pc.url, NULL) == 0)
      return -1; /* a relative path must be refused */
    pc.url.is_unix = 1;
    snprintf(pc.url.path, sizeof pc.url.path, "%s", f->rp.sock);
    pc.node = "test-node";
    pc.worker = (uint32_t)i + 1;
    pc.max_queue = max_queue;
    pc.retry_ms = 50;
    pc.on_state = on_state;
    pc.user = f;
    if (vigil_presence_redis_new(&f->pr[i], &f->loop, &pc) != 0)
      return -1;
    util_rec_init(&f->rec[i]);
    vigil_server_config_init(&cfg);
    cfg.session.interval_ms = rfix_interval_ms;
    cfg.session.timeout_ms = rfix_timeout_ms;
    cfg.cb = util_rec_callbacks();
    cfg.user = &f->rec[i];
    cfg.on_closed = util_rec_on_server_closed;
    cfg.presence = vigil_presence_redis_store(f->pr[i]);
    if (vigil_server_new(&f->srv[i], &f->loop, &cfg) != 0 ||
        vigil_server_listen(f->srv[i], "127.0.0.1", 0, &f->port[i]) != 0)
      return -1;
  }
  return util_run_until_n(&f->loop, &f->ups, nservers, WAIT) ? 0 : -1;
}

static int rfix_down(rfix *f, int nservers) {
  int i;
  for (i = 0; i < nservers; i++) {
    (void)vigil_server_shutdown(f->srv[i], 300);
    if (!util_run_until(&f->loop, &f->rec[i].closed, WAIT))
      return -1;
    if (vigil_server_free(f->srv[i]) != 0)
      return -1;
    vigil_presence_redis_close(f->pr[i], 500, on_pr_closed, f);
  }
  if (!util_run_until_n(&f->loop, &f->closed, nservers, WAIT))
    return -1;
  util_run_for(&f->loop, 5);
  redisFree(f->rc);
  return vigil_loop_close(&f->loop);
}

/* Runs the loop until Redis says field == want for id, or ms pass. */
static int until_field(rfix *f, const char *id, const char *field, const char *want, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * VIGIL_MS;
  while (util_now_ns() < end) {
    util_run_for(&f->loop, 10);
    if (strcmp(rfield(f->rc, id, field), want) == 0)
      return 1;
  }
  return 0;
}
#endif

TEST_IMPL(redis_url_parse) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static const char *const bad[] = {"",
                                    "redis:/x",
                                    "http://1.2.3.4",
                                    "redis://",
                                    "redis://host.example:6379",
                                    "redis://1.2.3.4:0",
                                    "redis://1.2.3.4:65536",
                                    "redis://1.2.3.4:-1",
                                    "redis://1.2.3.4:12x",
                                    "redis://u:p@1.2.3.4",
                                    "redis://1.2.3.4/",
                                    "redis://1.2.3.4/x",
                                    "redis://1.2.3.4/99999",
                                    "redis://1.2.3.4/01",
                                    "redis://[::1",
                                    "redis://[::1]x",
                                    "redis://[zz]:1",
                                    "unix://",
                                    "unix://rel/path",
                                    "unix:///a?foo=1",
                                    "unix:///a?db=",
                                    "redis://1.2.3.4:6379/1/2"};
  vigil_presence_url u;
  const char *why;
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    if (vigil_presence_url_parse(bad[i], &u, &why) != VIGIL_EINVAL || why == NULL)
      TEST_FAIL_AT("accepted %s", bad[i]);
  }
  ASSERT_EQ(vigil_presence_url_parse("redis://127.0.0.1:7000/3", &u, &why), 0);
  ASSERT_STR_EQ(u.host, "127.0.0.1");
  ASSERT_EQ(u.port, 7000);
  ASSERT_EQ(u.db, 3);
  ASSERT_EQ(vigil_presence_url_parse("redis://localhost", &u, &why), 0);
  ASSERT_STR_EQ(u.host, "127.0.0.1");
  ASSERT_EQ(u.port, 6379);
  ASSERT_EQ(vigil_presence_url_parse("redis://[::1]:6380", &u, &why), 0);
  ASSERT_STR_EQ(u.host, "::1");
  ASSERT_EQ(u.port, 6380);
  ASSERT_EQ(vigil_presence_url_parse("unix:///run/redis.sock?db=2", &u, &why), 0);
  ASSERT_EQ(u.is_unix, 1);
  ASSERT_STR_EQ(u.path, "/run/redis.sock");
  ASSERT_EQ(u.db, 2);
  return 0;
#endif
}

/* Open, then death, land in Redis with node, worker, cause and generation. */
TEST_IMPL(redis_round_trip) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  rfix f;
  vigil_client *a;
  util_rec ra;
  int rc = rfix_up(&f, 1, 0);
  if (rc != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  ASSERT_EQ(client(&f.loop, f.port[0], &ra, "gw-1", &a), 0);
  rc = until_field(&f, "gw-1", "state", "online", WAIT);
  if (!rc) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("gw-1 never online in Redis");
  }
  ASSERT_STR_EQ(rfield(f.rc, "gw-1", "node"), "test-node");
  ASSERT_STR_EQ(rfield(f.rc, "gw-1", "worker"), "1");
  ASSERT_STR_EQ(rfield(f.rc, "gw-1", "gen"), "1");
  ASSERT(strncmp(rfield(f.rc, "gw-1", "peer"), "127.0.0.1:", 10) == 0);
  ASSERT_EQ(vigil_client_close(a, 0), 0);
  ASSERT(until_field(&f, "gw-1", "state", "offline", WAIT));
  ASSERT_STR_EQ(rfield(f.rc, "gw-1", "cause"), "closed");
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(rfix_down(&f, 1), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

#if defined(VIGIL_HAVE_HIREDIS)
/* How many of the fixture's servers hold id. */
static int holders(rfix *f, const char *id) {
  return (vigil_server_find(f->srv[0], id, strlen(id)) != NULL) +
         (vigil_server_find(f->srv[1], id, strlen(id)) != NULL);
}

/* Settled: every update acknowledged by Redis, on both stores. */
static int settled(rfix *f) {
  vigil_presence_redis_stats a, b;
  vigil_presence_redis_get_stats(f->pr[0], &a);
  vigil_presence_redis_get_stats(f->pr[1], &b);
  return a.queued == 0 && b.queued == 0;
}

static int run_until_settled1(rfix *f, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * VIGIL_MS;
  vigil_presence_redis_stats a;
  while (util_now_ns() < end) {
    util_run_for(&f->loop, 5);
    vigil_presence_redis_get_stats(f->pr[0], &a);
    if (a.queued == 0)
      return 1;
  }
  return 0;
}

static int run_until_settled(rfix *f, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * VIGIL_MS;
  while (util_now_ns() < end) {
    util_run_for(&f->loop, 5);
    if (settled(f))
      return 1;
  }
  return 0;
}
#endif

/* The same id connecting to two servers (two processes' worth: each has
 * its own Redis store and worker number) at the same moment, RACES times:
 * afterwards exactly one server holds it, and Redis names that one. */
#define RACES 1000
TEST_IMPL(redis_takeover_race_two_servers) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static vigil_client *ca[RACES], *cb[RACES];
  static util_rec ra[RACES], rb[RACES];
  static rfix f;
  int i;
  if (rfix_up(&f, 2, 0) != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  for (i = 0; i < RACES; i++) {
    int h, want;
    char w[4];
    uint64_t end;
    ASSERT_EQ(client(&f.loop, f.port[0], &ra[i], "race", &ca[i]), 0);
    ASSERT_EQ(client(&f.loop, f.port[1], &rb[i], "race", &cb[i]), 0);
    /* Both open; then the loser is evicted through Redis. */
    ASSERT(util_run_until(&f.loop, &ra[i].opens, WAIT));
    ASSERT(util_run_until(&f.loop, &rb[i].opens, WAIT));
    end = util_now_ns() + (uint64_t)WAIT * VIGIL_MS;
    do {
      util_run_for(&f.loop, 2);
      h = holders(&f, "race");
    } while ((h != 1 || !settled(&f)) && util_now_ns() < end);
    if (h != 1)
      TEST_FAIL_AT("race %d: %d holders", i, h);
    want = vigil_server_find(f.srv[0], "race", 4) != NULL ? 1 : 2;
    snprintf(w, sizeof w, "%d", want);
    if (!until_field(&f, "race", "worker", w, WAIT))
      TEST_FAIL_AT("race %d: Redis names worker %s, the holder is %d", i,
                   rfield(f.rc, "race", "worker"), want);
    ASSERT_STR_EQ(rfield(f.rc, "race", "state"), "online");
    /* The loser heard CLOSE TAKEOVER. */
    ASSERT(util_run_until(&f.loop, want == 1 ? &rb[i].deaths : &ra[i].deaths, WAIT));
    ASSERT_EQ((want == 1 ? rb[i] : ra[i]).death.close_code, VIGIL_CLOSE_TAKEOVER);
    ASSERT_EQ(vigil_client_close(want == 1 ? ca[i] : cb[i], 0), 0);
    if (!until_field(&f, "race", "state", "offline", WAIT))
      TEST_FAIL_AT("race %d: still %s (conn %s)", i, rfield(f.rc, "race", "state"),
                   rfield(f.rc, "race", "conn"));
    ASSERT(run_until_settled(&f, WAIT));
  }
  for (i = 0; i < RACES; i++) {
    ASSERT(util_run_until(&f.loop, &ra[i].closed, WAIT));
    ASSERT(util_run_until(&f.loop, &rb[i].closed, WAIT));
    ASSERT_EQ(vigil_client_free(ca[i]), 0);
    ASSERT_EQ(vigil_client_free(cb[i]), 0);
  }
  fprintf(stderr, "%d races, exactly one holder each time\n", RACES);
  ASSERT_EQ(rfix_down(&f, 2), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

#if defined(VIGIL_HAVE_HIREDIS)
typedef struct cmp_arg {
  redisContext *rc;
  int checked, mismatches;
} cmp_arg;

static int compare_one(const char *id, size_t id_len, const vigil_presence_record *rec, void *arg) {
  cmp_arg *c = arg;
  char buf[300];
  const char *state;
  snprintf(buf, sizeof buf, "%.*s", (int)id_len, id);
  state = rfield(c->rc, buf, "state");
  c->checked++;
  if (strcmp(state, vigil_presence_state_name(rec->state)) != 0) {
    fprintf(stderr, "%s: Redis says '%s', the node '%s'\n", buf, state,
            vigil_presence_state_name(rec->state));
    c->mismatches++;
  }
  return 0;
}
#endif

/* Redis goes away while clients churn (more updates than the queue holds),
 * comes back empty (no persistence): the store replays, notices the drops,
 * rewrites every record, and Redis then agrees with the node's table. */
#define OUTAGE_CLIENTS 60
TEST_IMPL(redis_outage_reconciles) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static vigil_client *cl[2 * OUTAGE_CLIENTS];
  static util_rec rr[2 * OUTAGE_CLIENTS];
  static rfix f;
  vigil_presence_redis_stats st;
  cmp_arg cmp;
  char id[32];
  int i, n;
  if (rfix_up(&f, 1, 40) != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  for (i = 0; i < OUTAGE_CLIENTS; i++) {
    snprintf(id, sizeof id, "c-%d", i);
    ASSERT_EQ(client(&f.loop, f.port[0], &rr[i], id, &cl[i]), 0);
  }
  ASSERT(util_run_until_n(&f.loop, &f.rec[0].opens, OUTAGE_CLIENTS, WAIT));
  if (!until_field(&f, "c-59", "state", "online", WAIT)) {
    vigil_presence_redis_get_stats(f.pr[0], &st);
    TEST_FAIL_AT("c-59 not online: up %d sent %llu queued %llu errors %llu dropped %llu", st.up,
                 (unsigned long long)st.sent, (unsigned long long)st.queued,
                 (unsigned long long)st.errors, (unsigned long long)st.dropped);
  }
  /* Redis goes away; detection and serving go on. */
  redis_stop(&f.rp);
  redisFree(f.rc);
  f.rc = NULL;
  ASSERT(util_run_until_n(&f.loop, &f.downs, 1, WAIT));
  for (i = 0; i < OUTAGE_CLIENTS / 2; i++) /* half leave */
    ASSERT_EQ(vigil_client_close(cl[i], 0), 0);
  for (i = OUTAGE_CLIENTS; i < 2 * OUTAGE_CLIENTS; i++) { /* new ones come */
    snprintf(id, sizeof id, "c-%d", i);
    ASSERT_EQ(client(&f.loop, f.port[0], &rr[i], id, &cl[i]), 0);
  }
  ASSERT(util_run_until_n(&f.loop, &f.rec[0].opens, 2 * OUTAGE_CLIENTS, WAIT));
  ASSERT(util_run_until_n(&f.loop, &f.rec[0].deaths, OUTAGE_CLIENTS / 2, WAIT));
  vigil_presence_redis_get_stats(f.pr[0], &st);
  ASSERT_EQ(st.up, 0);
  ASSERT_UEQ(st.queued, 40); /* the bound */
  ASSERT_UGE(st.dropped, 1);
  fprintf(stderr, "while Redis was away: %llu updates queued, %llu dropped\n",
          (unsigned long long)st.queued, (unsigned long long)st.dropped);
  /* Redis returns, empty. */
  ASSERT_EQ(redis_start(&f.rp), 0);
  f.rc = redisConnectUnix(f.rp.sock);
  ASSERT(f.rc != NULL && f.rc->err == 0);
  ASSERT(util_run_until_n(&f.loop, &f.ups, 2, 10000));
  ASSERT(run_until_settled1(&f, WAIT));
  util_run_for(&f.loop, 200); /* the sync's replies */
  memset(&cmp, 0, sizeof cmp);
  cmp.rc = f.rc;
  vigil_presence_local_each(vigil_presence_redis_table(f.pr[0]), compare_one, &cmp);
  ASSERT_EQ(cmp.checked, 2 * OUTAGE_CLIENTS);
  ASSERT_EQ(cmp.mismatches, 0);
  vigil_presence_redis_get_stats(f.pr[0], &st);
  ASSERT_UGE(st.syncs, 1);
  for (n = 0, i = OUTAGE_CLIENTS / 2; i < 2 * OUTAGE_CLIENTS; i++, n++)
    ASSERT_EQ(vigil_client_close(cl[i], 0), 0);
  for (i = 0; i < 2 * OUTAGE_CLIENTS; i++) {
    ASSERT(util_run_until(&f.loop, &rr[i].closed, WAIT));
    ASSERT_EQ(vigil_client_free(cl[i]), 0);
  }
  ASSERT_EQ(rfix_down(&f, 1), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

/* ---- Redis stopped for 10 s under 1,000 clients with churn ----------------
 *
 * One server, its Redis store with a 2,000-update queue, 1,000 client slots
 * on the same loop. Every 50 ms, 25 open clients leave and their slots
 * connect again (ids repeat every third round, so one id dies and opens
 * many times). Redis is killed for OUTAGE_MS while this goes on (far more
 * updates than the queue holds: they are dropped and counted), then started
 * again empty; the churn goes on for another second, stops, and then Redis
 * must agree with the node exactly, both ways: every record of the node's
 * table has the same state (and cause, and connection token) in Redis, every
 * id Redis says is online is online in the table, and the table's online ids
 * are exactly the server's connections and the clients that are open. */
#define BIG_SLOTS 1000
#define OUTAGE_MS 10000u

#if defined(VIGIL_HAVE_HIREDIS)
typedef struct slot {
  vigil_client *c;
  util_rec r;
  int round, closing;
} slot;

static slot slots[BIG_SLOTS];

static void slot_id(int i, int round, char *buf, size_t cap) {
  snprintf(buf, cap, "o-%d-%d", i, round % 3);
}

static int slot_open(rfix *f, int i) {
  char id[32];
  slot_id(i, slots[i].round, id, sizeof id);
  slots[i].closing = 0;
  return client(&f->loop, f->port[0], &slots[i].r, id, &slots[i].c);
}

/* Frees the slots whose client closed and connects them again (next
 * round); with churn, closes n random open ones. */
static int churn(rfix *f, int n, unsigned *seed) {
  int i;
  for (i = 0; i < BIG_SLOTS; i++) {
    slot *s = &slots[i];
    if (s->c != NULL && s->r.closed) {
      if (vigil_client_free(s->c) != 0)
        return -1;
      s->c = NULL;
      s->round++;
      if (slot_open(f, i) != 0)
        return -1;
    }
  }
  while (n-- > 0) {
    slot *s;
    *seed = *seed * 1103515245u + 12345u;
    s = &slots[(*seed >> 8) % BIG_SLOTS];
    if (s->c != NULL && !s->closing && s->r.opens > 0 && s->r.deaths == 0) {
      s->closing = 1;
      if (vigil_client_close(s->c, 0) != 0)
        return -1;
    }
  }
  return 0;
}

/* Every slot open (or settled after churn): open and not dead. */
static int all_open(void) {
  int i;
  for (i = 0; i < BIG_SLOTS; i++)
    if (slots[i].c == NULL || slots[i].closing || slots[i].r.opens == 0 || slots[i].r.deaths != 0)
      return 0;
  return 1;
}

typedef struct agree {
  redisContext *rc;
  vigil_server *srv;
  const char *holder_prefix;
  int online, offline, mismatches;
  char first[300];
} agree;

static void disagree(agree *a, const char *fmt, const char *id, const char *got) {
  if (a->mismatches++ == 0)
    snprintf(a->first, sizeof a->first, fmt, id, got);
}

/* One record of the node's table against Redis and the server. */
static int agree_one(const char *id, size_t id_len, const vigil_presence_record *rec, void *arg) {
  agree *a = arg;
  char buf[64], want[64];
  redisReply *r;
  const vigil_conn *c;
  snprintf(buf, sizeof buf, "%.*s", (int)id_len, id);
  r = redisCommand(a->rc, "HMGET vigil:p:%s state cause conn", buf);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING) {
    disagree(a, "%s: no record in Redis%s", buf, "");
    freeReplyObject(r);
    return 0;
  }
  if (strcmp(r->element[0]->str, vigil_presence_state_name(rec->state)) != 0)
    disagree(a, "%s: Redis says %s", buf, r->element[0]->str);
  snprintf(want, sizeof want, "/%llu", (unsigned long long)rec->gen);
  if (r->element[2]->type != REDIS_REPLY_STRING ||
      strncmp(r->element[2]->str, a->holder_prefix, strlen(a->holder_prefix)) != 0 ||
      strcmp(r->element[2]->str + strlen(r->element[2]->str) - strlen(want), want) != 0)
    disagree(a, "%s: Redis names connection %s", buf,
             r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "(none)");
  c = vigil_server_find(a->srv, id, id_len);
  if (rec->state == VIGIL_PRESENCE_ONLINE) {
    a->online++;
    if (c == NULL || vigil_conn_generation(c) != rec->gen)
      disagree(a, "%s: online in the table, %s in the server", buf,
               c == NULL ? "absent" : "another generation");
  } else {
    a->offline++;
    if (c != NULL)
      disagree(a, "%s: offline in the table, %s", buf, "connected to the server");
    if (r->element[1]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[1]->str, vigil_cause_name(rec->last_cause)) != 0)
      disagree(a, "%s: Redis gives cause %s", buf,
               r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "(none)");
  }
  freeReplyObject(r);
  return 0;
}

/* Ids Redis says are online (SCAN); each must be online in the table. */
static int redis_online_not_in_table(agree *a, const vigil_presence_local *t, int *redis_online) {
  char cursor[32] = "0";
  int extra = 0;
  *redis_online = 0;
  do {
    redisReply *r = redisCommand(a->rc, "SCAN %s MATCH vigil:p:* COUNT 1000", cursor);
    size_t i;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      freeReplyObject(r);
      return -1;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (i = 0; i < r->element[1]->elements; i++) {
      const redisReply *k = r->element[1]->element[i];
      vigil_presence_record rec;
      redisReply *st = redisCommand(a->rc, "HGET %b state", k->str, k->len);
      if (st != NULL && st->type == REDIS_REPLY_STRING && strcmp(st->str, "online") == 0) {
        (*redis_online)++;
        if (vigil_presence_local_get(t, k->str + 8, k->len - 8, &rec) != 0 ||
            rec.state != VIGIL_PRESENCE_ONLINE) {
          if (extra++ == 0)
            fprintf(stderr, "%.*s: online in Redis, not in the table\n", (int)k->len, k->str);
        }
      }
      freeReplyObject(st);
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return extra;
}
#endif

TEST_IMPL(redis_outage_1000_clients) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static rfix f;
  vigil_presence_redis_stats st, during;
  const vigil_presence_local *t;
  agree a;
  char prefix[80];
  unsigned seed = 12345;
  int i, extra = -1, redis_online = 0, open_clients = 0;
  uint64_t end, t0;
  rfix_interval_ms = 1000;
  rfix_timeout_ms = 5000;
  i = rfix_up(&f, 1, 2000);
  if (i != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  memset(slots, 0, sizeof slots);
  for (i = 0; i < BIG_SLOTS; i++)
    ASSERT_EQ(slot_open(&f, i), 0);
  end = util_now_ns() + 20000ull * VIGIL_MS;
  while (!all_open() && util_now_ns() < end)
    util_run_for(&f.loop, 20);
  ASSERT(all_open());
  ASSERT(run_until_settled1(&f, 10000));
  /* Redis goes away for OUTAGE_MS; the clients churn meanwhile. */
  redis_stop(&f.rp);
  redisFree(f.rc);
  f.rc = NULL;
  t0 = util_now_ns();
  while (util_now_ns() < t0 + (uint64_t)OUTAGE_MS * VIGIL_MS) {
    util_run_for(&f.loop, 50);
    ASSERT_EQ(churn(&f, 25, &seed), 0);
  }
  vigil_presence_redis_get_stats(f.pr[0], &during);
  ASSERT_EQ(f.downs, 1);
  ASSERT_EQ(during.up, 0);
  ASSERT_UEQ(during.queued, 2000); /* the bound */
  ASSERT_UGE(during.dropped, 1);
  /* Redis returns, empty; one more second of churn, then it stops. */
  ASSERT_EQ(redis_start(&f.rp), 0);
  f.rc = redisConnectUnix(f.rp.sock);
  ASSERT(f.rc != NULL && f.rc->err == 0);
  t0 = util_now_ns();
  while (util_now_ns() < t0 + 1000ull * VIGIL_MS) {
    util_run_for(&f.loop, 50);
    ASSERT_EQ(churn(&f, 25, &seed), 0);
  }
  end = util_now_ns() + 20000ull * VIGIL_MS;
  while (!all_open() && util_now_ns() < end) {
    util_run_for(&f.loop, 20);
    ASSERT_EQ(churn(&f, 0, &seed), 0);
  }
  ASSERT(all_open());
  ASSERT_EQ(f.ups, 2);
  ASSERT(run_until_settled1(&f, 10000));
  /* The sync's replies: Redis agrees once they are in; wait (bounded) for
   * that, then compare once more. */
  t = vigil_presence_redis_table(f.pr[0]);
  snprintf(prefix, sizeof prefix, "test-node/1/");
  end = util_now_ns() + 10000ull * VIGIL_MS;
  do {
    util_run_for(&f.loop, 50);
    memset(&a, 0, sizeof a);
    a.rc = f.rc;
    a.srv = f.srv[0];
    a.holder_prefix = prefix;
    vigil_presence_local_each(t, agree_one, &a);
    extra = redis_online_not_in_table(&a, t, &redis_online);
  } while ((a.mismatches != 0 || extra != 0) && util_now_ns() < end);
  for (i = 0; i < BIG_SLOTS; i++)
    open_clients += slots[i].r.opens > 0 && slots[i].r.deaths == 0;
  vigil_presence_redis_get_stats(f.pr[0], &st);
  fprintf(stderr,
          "Redis away %u ms under %d clients: %llu updates queued (the bound), %llu dropped; "
          "after it returned: %llu syncs, %llu updates sent in all; table %d online + %d "
          "offline, Redis %d online, %d clients open; %d mismatches%s%s\n",
          OUTAGE_MS, BIG_SLOTS, (unsigned long long)during.queued, (unsigned long long)st.dropped,
          (unsigned long long)st.syncs, (unsigned long long)st.sent, a.online, a.offline,
          redis_online, open_clients, a.mismatches, a.mismatches != 0 ? ", first: " : "", a.first);
  ASSERT_EQ(a.mismatches, 0);
  ASSERT_EQ(extra, 0);
  ASSERT_EQ(a.online, BIG_SLOTS);
  ASSERT_EQ(redis_online, BIG_SLOTS);
  ASSERT_EQ(open_clients, BIG_SLOTS);
  {
    vigil_server_stats ss;
    vigil_server_get_stats(f.srv[0], &ss);
    ASSERT_UEQ(ss.peers, BIG_SLOTS); /* with a.online: the server's ids are the table's */
  }
  ASSERT_UGE(st.syncs, 1);
  ASSERT_UEQ(st.errors, 0);
  for (i = 0; i < BIG_SLOTS; i++)
    ASSERT_EQ(vigil_client_close(slots[i].c, 0), 0);
  for (i = 0; i < BIG_SLOTS; i++) {
    ASSERT(util_run_until(&f.loop, &slots[i].r.closed, WAIT));
    ASSERT_EQ(vigil_client_free(slots[i].c), 0);
  }
  ASSERT_EQ(rfix_down(&f, 1), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

/* What Redis holds or sends that is not ours is an error counted, never a
 * crash: a key of the wrong type, a record written by someone else with
 * junk fields, control messages that are malformed or huge. */
TEST_IMPL(redis_bad_input) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static rfix f;
  static char huge[1 << 20];
  vigil_client *a, *b;
  util_rec ra, rb;
  vigil_presence_redis_stats st;
  redisReply *rep;
  char chan[256];
  uint64_t end;
  if (rfix_up(&f, 1, 0) != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  freeReplyObject(redisCommand(f.rc, "SET vigil:p:gw-bad x"));
  freeReplyObject(
      redisCommand(f.rc, "HSET vigil:p:gw-odd state online holder zzz lgen abc worker nan"));
  ASSERT_EQ(client(&f.loop, f.port[0], &ra, "gw-bad", &a), 0);
  ASSERT_EQ(client(&f.loop, f.port[0], &rb, "gw-odd", &b), 0);
  ASSERT(util_run_until(&f.loop, &ra.opens, WAIT));
  ASSERT(util_run_until(&f.loop, &rb.opens, WAIT));
  ASSERT(until_field(&f, "gw-odd", "worker", "1", WAIT));
  ASSERT_STR_EQ(rfield(f.rc, "gw-odd", "state"), "online");
  end = util_now_ns() + (uint64_t)WAIT * VIGIL_MS;
  do {
    util_run_for(&f.loop, 5);
    vigil_presence_redis_get_stats(f.pr[0], &st);
  } while (st.errors == 0 && util_now_ns() < end);
  ASSERT_UEQ(st.errors, 1); /* WRONGTYPE for gw-bad's opening */
  rep = redisCommand(f.rc, "PUBSUB CHANNELS vigil:ctl:*");
  ASSERT(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
  snprintf(chan, sizeof chan, "%s", rep->element[0]->str);
  freeReplyObject(rep);
  memset(huge, 'e', sizeof huge - 1);
  memcpy(huge, "evict 1 ", 8);
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, "hello"));
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, "evict abc gw-odd"));
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, "evict 0 gw-odd"));
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, "evict 99999999999999999999999 x"));
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, huge));
  freeReplyObject(redisCommand(f.rc, "PUBLISH %s %s", chan, "evict 77 gw-odd")); /* not its gen */
  end = util_now_ns() + (uint64_t)WAIT * VIGIL_MS;
  do {
    util_run_for(&f.loop, 5);
    vigil_presence_redis_get_stats(f.pr[0], &st);
  } while (st.bad_input < 5 && util_now_ns() < end);
  util_run_for(&f.loop, 50);
  vigil_presence_redis_get_stats(f.pr[0], &st);
  ASSERT_UEQ(st.bad_input, 5);
  ASSERT_UEQ(st.evictions, 0);
  /* Not evicted by any of it. (A heartbeat verdict is possible here: the
   * test's blocking Redis calls stall the loop both peers share.) */
  ASSERT(rb.deaths == 0 || rb.death.close_code != VIGIL_CLOSE_TAKEOVER);
  ASSERT(ra.deaths == 0 || ra.death.close_code != VIGIL_CLOSE_TAKEOVER);
  ASSERT_EQ(vigil_client_close(a, 0), 0);
  ASSERT_EQ(vigil_client_close(b, 0), 0);
  ASSERT(util_run_until(&f.loop, &ra.closed, WAIT));
  ASSERT(util_run_until(&f.loop, &rb.closed, WAIT));
  ASSERT_EQ(vigil_client_free(a), 0);
  ASSERT_EQ(vigil_client_free(b), 0);
  ASSERT_EQ(rfix_down(&f, 1), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

/* The reaper reads keys anyone can write. Junk planted before a dead
 * process's entries (the holders hash keeps insertion order here, so the
 * reaper meets the junk first) must not stop it: a held set of the wrong
 * type, a record of the wrong type among a dead holder's ids, a beat time
 * that is not a number. The dead holder's real ids still become offline
 * with cause node_lost, each junk key is skipped and counted (bad_input),
 * and the lost holders are forgotten, so the next beats skip nothing.
 * Before redis.pcall in the script, the first junk key aborted every reap:
 * gw-lost1 stayed online. */
TEST_IMPL(redis_reaper_skips_junk) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static rfix f;
  static const char *const plant[] = {
      /* junk first */
      "HSET vigil:holders junk/0/1 1000",
      "SET vigil:held:junk/0/1 not-a-set",
      "HSET vigil:holders junk/0/2 not-a-number",
      "SADD vigil:held:junk/0/2 gw-list gw-lost2 gw-none",
      "RPUSH vigil:p:gw-list a b",
      "HSET vigil:p:gw-lost2 state online holder junk/0/2 node gone worker 2 conn junk/0/2/7",
      /* then a process that died the ordinary way: ids online, no node key */
      "HSET vigil:holders gone/1/0000dead 1000",
      "SADD vigil:held:gone/1/0000dead gw-lost1",
      "HSET vigil:p:gw-lost1 state online holder gone/1/0000dead node gone worker 1 "
      "conn gone/1/0000dead/3 gen 1",
  };
  vigil_presence_redis_stats st;
  redisReply *rep;
  uint64_t end;
  size_t i;
  if (rfix_up(&f, 1, 0) != 0) {
    redis_cleanup(&f.rp);
    TEST_FAIL_AT("redis fixture did not come up");
  }
  /* Our own live holder went in first at connect; start the hash afresh
   * with the junk ahead of it, then let it beat itself back in. */
  freeReplyObject(redisCommand(f.rc, "DEL vigil:holders"));
  for (i = 0; i < sizeof plant / sizeof plant[0]; i++) {
    rep = redisCommand(f.rc, plant[i]);
    ASSERT(rep != NULL && rep->type != REDIS_REPLY_ERROR);
    freeReplyObject(rep);
  }
  /* The store reaps with each beat (every node_timeout / 4 = 1.25 s). */
  ASSERT(until_field(&f, "gw-lost1", "cause", "node_lost", WAIT));
  ASSERT_STR_EQ(rfield(f.rc, "gw-lost1", "state"), "offline");
  ASSERT(until_field(&f, "gw-lost2", "cause", "node_lost", WAIT));
  ASSERT_STR_EQ(rfield(f.rc, "gw-lost2", "state"), "offline");
  end = util_now_ns() + (uint64_t)WAIT * VIGIL_MS;
  do {
    util_run_for(&f.loop, 10);
    vigil_presence_redis_get_stats(f.pr[0], &st);
  } while (st.node_lost < 2 && util_now_ns() < end);
  ASSERT_UEQ(st.node_lost, 2);
  ASSERT_UEQ(st.bad_input, 2); /* the string held set, the list record */
  ASSERT_UEQ(st.errors, 0);
  rep = redisCommand(f.rc, "HLEN vigil:holders"); /* only our own is left */
  ASSERT(rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);
  freeReplyObject(rep);
  rep = redisCommand(f.rc, "EXISTS vigil:held:junk/0/1 vigil:held:junk/0/2");
  ASSERT(rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0);
  freeReplyObject(rep);
  /* vigil:holders itself of the wrong type: the reap is one skip, not an
   * error, and nothing else breaks. */
  freeReplyObject(redisCommand(f.rc, "DEL vigil:holders"));
  freeReplyObject(redisCommand(f.rc, "SET vigil:holders junk"));
  rep = redisCommand(f.rc, "EVAL %s 0 vigil: 2000 86400000", vigil_presence_reap_lua);
  ASSERT(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2);
  ASSERT(rep->element[0]->integer == 0 && rep->element[1]->integer == 1);
  freeReplyObject(rep);
  freeReplyObject(redisCommand(f.rc, "DEL vigil:holders"));
  ASSERT_EQ(rfix_down(&f, 1), 0);
  redis_cleanup(&f.rp);
  return 0;
#endif
}

/* The Redis store's config carries its size like every option struct
 * (docs/ABI.md): never _init'ed is refused, an older caller's smaller
 * struct gets the defaults for what it lacks, a newer caller's unknown
 * field is VIGIL_ENOTSUP. */
TEST_IMPL(redis_config_size) {
#if !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  vigil_loop loop;
  vigil_presence_redis *r = NULL;
  struct {
    vigil_presence_redis_config cfg;
    unsigned char tail[16];
  } big;
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
  memset(&big, 0, sizeof big);
  ASSERT_EQ(vigil_presence_redis_new(&r, &loop, &big.cfg), VIGIL_EINVAL);
  vigil_presence_redis_config_init_sized(&big.cfg, sizeof big);
  ASSERT_UEQ(big.cfg.size, sizeof big);
  ASSERT_EQ(big.cfg.url.port, 6379);
  big.tail[3] = 1; /* a field this library does not have */
  ASSERT_EQ(vigil_presence_redis_new(&r, &loop, &big.cfg), VIGIL_ENOTSUP);
  ASSERT_PTR_EQ(r, NULL);
  ASSERT_EQ(vigil_loop_close(&loop), 0);
  return 0;
#endif
}
