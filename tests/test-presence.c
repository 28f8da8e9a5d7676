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

static int client(fixture *f, util_rec *r, const char *id, vigil_client **out) {
  vigil_client_config c;
  util_rec_init(r);
  vigil_client_config_init(&c);
  c.session.interval_ms = 100;
  c.session.timeout_ms = 300;
  c.session.id = id;
  c.session.id_len = strlen(id);
  c.cb = util_rec_callbacks();
  c.user = r;
  c.on_closed = util_rec_on_client_closed;
  c.no_reconnect = 1;
  if (vigil_client_new(out, &f->loop, &c) != 0)
    return -1;
  return vigil_client_connect(*out, "127.0.0.1", f->port);
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
  ASSERT_EQ(client(&f, &ra, "gw-1", &a), 0);
  ASSERT(util_run_until(&f.loop, &f.rec.opens, WAIT));
  ASSERT_EQ(vigil_presence_local_get(f.table, "gw-1", 4, &r), 0);
  ASSERT_EQ(r.state, VIGIL_PRESENCE_ONLINE);
  gen_a = r.gen;
  ASSERT_UEQ(vigil_conn_generation(f.rec.conn), gen_a);
  ASSERT(strncmp(r.peer, "127.0.0.1:", 10) == 0);
  ASSERT_EQ(client(&f, &rb, "gw-1", &b), 0);
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
