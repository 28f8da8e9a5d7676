/* Sending to a connection from other threads: vigil_conn_id and
 * vigil_conn_send_threadsafe, on a real server and client over loopback.
 * What the loop's callbacks count is read by the test on the loop's
 * thread; the sender thread's own results are read after it is joined. */
#include <stdlib.h>
#include <string.h>

#include "conn.h" /* vigil__conn_abort: end a connection within one iteration */
#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "util-thread.h"
#include "vigil.h"

#define GUARD_MS 10000
#define SENDS 500

typedef struct fixture {
  vigil_loop loop;
  vigil_server *srv;
  vigil_client *cli;
  vigil_conn *sconn; /* the server's side, once open */
  uint64_t sid;
  int received, out_of_order;
  int done_calls, done_ok, done_enoent, done_eclosed, done_other;
  int srv_closed, cli_closed, server_deaths;
  /* sender thread */
  int sent, send_err;
} fixture;

static fixture F;

static void on_srv_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  (void)info;
  (void)user;
  F.sconn = c;
  F.sid = vigil_conn_id(c);
}

static void on_srv_death(vigil_conn *c, const vigil_death *d, void *user) {
  (void)d;
  (void)user;
  if (c == F.sconn)
    F.sconn = NULL;
  F.server_deaths++;
}

static void on_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  uint32_t v;
  (void)c;
  (void)user;
  if (len != sizeof v)
    F.out_of_order++;
  else {
    memcpy(&v, msg, sizeof v);
    if (v != (uint32_t)F.received)
      F.out_of_order++;
  }
  F.received++;
}

static void on_srv_closed(vigil_server *s, void *user) {
  (void)user;
  vigil_server_free(s);
  F.srv_closed = 1;
}

static void on_cli_closed(vigil_client *c, void *user) {
  (void)user;
  vigil_client_free(c);
  F.cli_closed = 1;
}

static void on_done(uint64_t id, int status, void *arg) {
  (void)arg;
  if (id != F.sid)
    F.done_other++;
  F.done_calls++;
  if (status == 0)
    F.done_ok++;
  else if (status == VIGIL_ENOENT)
    F.done_enoent++;
  else if (status == VIGIL_ECLOSED)
    F.done_eclosed++;
  else
    F.done_other++;
}

static int setup(uint32_t post_max) {
  vigil_loop_options lo;
  vigil_server_config sc;
  vigil_client_config cc;
  uint16_t port;

  memset(&F, 0, sizeof F);
  ASSERT_EQ(util_net_init(), 0);
  vigil_loop_options_init(&lo);
  lo.post_queue_max = post_max;
  ASSERT_EQ(vigil_loop_init(&F.loop, &lo), 0);
  vigil_server_config_init(&sc);
  sc.cb.on_open = on_srv_open;
  sc.cb.on_death = on_srv_death;
  sc.on_closed = on_srv_closed;
  ASSERT_EQ(vigil_server_new(&F.srv, &F.loop, &sc), 0);
  ASSERT_EQ(vigil_server_listen(F.srv, "127.0.0.1", 0, &port), 0);
  vigil_client_config_init(&cc);
  cc.session.id = "threads";
  cc.session.id_len = 7;
  cc.no_reconnect = 1;
  cc.cb.on_message = on_message;
  cc.on_closed = on_cli_closed;
  ASSERT_EQ(vigil_client_new(&F.cli, &F.loop, &cc), 0);
  ASSERT_EQ(vigil_client_connect(F.cli, "127.0.0.1", port), 0);
  while (F.sconn == NULL) {
    ASSERT_EQ(F.server_deaths, 0);
    ASSERT(vigil_loop_run(&F.loop, VIGIL_RUN_ONCE) >= 0);
  }
  ASSERT_NE(F.sid, 0);
  return 0;
}

static int teardown(void) {
  if (!F.cli_closed)
    (void)vigil_client_close(F.cli, 100);
  ASSERT(util_run_until(&F.loop, &F.cli_closed, GUARD_MS));
  (void)vigil_server_shutdown(F.srv, 100);
  ASSERT(util_run_until(&F.loop, &F.srv_closed, GUARD_MS));
  ASSERT_EQ(vigil_loop_run(&F.loop, VIGIL_RUN_DEFAULT), 0);
  ASSERT_EQ(vigil_loop_close(&F.loop), 0);
  return 0;
}

static void sender(void *arg) {
  uint64_t id = *(uint64_t *)arg;
  uint32_t v;
  int rc;
  for (v = 0; v < SENDS; v++) {
    while ((rc = vigil_conn_send_threadsafe(id, &v, sizeof v, on_done, NULL)) == VIGIL_EQUEUEFULL)
      util_sleep_ms(1);
    if (rc != 0) {
      F.send_err = rc;
      return;
    }
    F.sent++;
  }
}

TEST_IMPL(conn_send_from_thread) {
  util_thread th;
  uint64_t id;
  ASSERT_EQ(setup(32), 0);
  id = F.sid;
  ASSERT_EQ(util_thread_start(&th, sender, &id), 0);
  ASSERT(util_run_until_n(&F.loop, &F.received, SENDS, GUARD_MS));
  ASSERT_EQ(util_thread_join(&th), 0);
  ASSERT_EQ(F.send_err, 0);
  ASSERT_EQ(F.sent, SENDS);
  ASSERT_EQ(F.received, SENDS);
  ASSERT_EQ(F.out_of_order, 0);
  ASSERT_EQ(F.done_calls, SENDS);
  ASSERT_EQ(F.done_ok, SENDS);
  ASSERT_EQ(F.done_other, 0);
  return teardown();
}

/* The connection goes while a send to it waits in the post queue: the send
 * must not touch it (done gets VIGIL_ENOENT), and afterwards its id names
 * nothing, even once a new connection may have taken its slot. This runs
 * as a posted call: a send posted from it waits for the next iteration,
 * and on POSIX the connection is released at the end of this one. On
 * Windows the socket's close completes when IOCP returns its cancelled
 * operations, maybe an iteration later: the send may then still find the
 * connection dying (VIGIL_ECLOSED, as vigil_conn_send says), never freed. */
static void kill_then_send(vigil_loop *loop, void *arg) {
  (void)loop;
  (void)arg;
  if (vigil_conn_send_threadsafe(F.sid, "late", 4, on_done, NULL) != 0)
    F.done_other++;
  vigil__conn_abort(F.sconn, "test"); /* killed and its socket closed at once */
}

TEST_IMPL(conn_send_to_dead_connection) {
  uint64_t old;

  ASSERT_EQ(setup(0), 0);
  old = F.sid;
  ASSERT_EQ(vigil_conn_send_threadsafe(old, NULL, 1, NULL, NULL), VIGIL_EINVAL);
  ASSERT_EQ(vigil_conn_send_threadsafe(0, "x", 1, NULL, NULL), VIGIL_ENOENT);
  /* Same slot, another generation: not this connection. */
  ASSERT_EQ(vigil_conn_send_threadsafe(old + ((uint64_t)1 << 32), "x", 1, NULL, NULL),
            VIGIL_ENOENT);
  ASSERT_EQ(vigil_loop_post(&F.loop, kill_then_send, NULL), 0);
  ASSERT(util_run_until(&F.loop, &F.done_calls, GUARD_MS));
  ASSERT_EQ(F.server_deaths, 1);
#if defined(_WIN32)
  ASSERT_EQ(F.done_enoent + F.done_eclosed, 1);
  for (int i = 0; i < 100 && vigil_conn_send_threadsafe(old, "x", 1, NULL, NULL) == 0; i++)
    util_run_for(&F.loop, 10); /* released soon: until then sends go to a zombie */
#else
  ASSERT_EQ(F.done_enoent, 1);
#endif
  ASSERT_EQ(F.done_other, 0);
  /* Released: the id is refused at once now. */
  ASSERT_EQ(vigil_conn_send_threadsafe(old, "x", 1, NULL, NULL), VIGIL_ENOENT);
  return teardown();
}

/* The bound: the loop's post queue holds post_queue_max sends; one more is
 * refused with VIGIL_EQUEUEFULL and nothing of it is queued. */
TEST_IMPL(conn_send_queue_full) {
  int i;
  ASSERT_EQ(setup(4), 0);
  for (i = 0; i < 4; i++)
    ASSERT_EQ(vigil_conn_send_threadsafe(F.sid, "abcd", 4, on_done, NULL), 0);
  ASSERT_EQ(vigil_conn_send_threadsafe(F.sid, "abcd", 4, on_done, NULL), VIGIL_EQUEUEFULL);
  ASSERT(util_run_until_n(&F.loop, &F.done_calls, 4, GUARD_MS));
  ASSERT_EQ(F.done_ok, 4);
  ASSERT(util_run_until_n(&F.loop, &F.received, 4, GUARD_MS));
  util_run_for(&F.loop, 50);
  ASSERT_EQ(F.done_calls, 4); /* the refused one never ran */
  ASSERT_EQ(vigil_conn_send_threadsafe(F.sid, "abcd", 4, on_done, NULL), 0);
  ASSERT(util_run_until_n(&F.loop, &F.done_calls, 5, GUARD_MS));
  return teardown();
}
