/* Sending from a thread that is not the loop's. The loop thread (main) runs
 * a vigil server and a client; when the server sees the client open, it
 * hands the connection's id to a worker thread, which sends 1,000 messages
 * with vigil_conn_send_threadsafe (waiting a little when the loop's post
 * queue is full) and then tells the loop it is done with vigil_loop_post.
 * The client checks that every message arrived, in order, and then leaves. The worker never
 * holds a vigil_conn pointer: a connection that died meanwhile would make
 * the send fail with VIGIL_ENOENT rather than touch freed memory, as the
 * last send here shows. Built and run by ctest (example.send_from_thread);
 * exits 0 when everything checked out. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vigil.h>

#define MESSAGES 1000

static vigil_loop loop;
static vigil_server *srv;
static vigil_client *cli;
static pthread_t worker;
static vigil_loop_timer watchdog;
static int worker_started, worker_done, received, out_of_order, send_failures;
static int after_death = 1; /* the worker's send to the dead connection */

/* ---- the worker thread ---- */

static void on_sent(uint64_t conn_id, int status, void *arg) {
  /* On the loop thread: vigil_conn_send's own result. */
  (void)conn_id;
  (void)arg;
  if (status != 0)
    send_failures++;
}

static void finished(vigil_loop *l, void *arg) {
  (void)l;
  (void)arg;
  worker_done = 1; /* set on the loop thread, like everything the loop reads */
}

static void *work(void *arg) {
  uint64_t id = *(uint64_t *)arg;
  struct timespec ms = {0, 1000000};
  char msg[32];
  int i, n, rc;

  for (i = 0; i < MESSAGES; i++) {
    n = snprintf(msg, sizeof msg, "message %d", i);
    while ((rc = vigil_conn_send_threadsafe(id, msg, (size_t)n, on_sent, NULL)) == VIGIL_EQUEUEFULL)
      nanosleep(&ms, NULL); /* the loop is behind: back off */
    if (rc != 0) {
      fprintf(stderr, "send %d: %s\n", i, vigil_strerror(rc));
      return NULL;
    }
  }
  while (vigil_loop_post(&loop, finished, NULL) == VIGIL_EQUEUEFULL)
    nanosleep(&ms, NULL);
  return NULL;
}

/* ---- the loop thread ---- */

static uint64_t server_conn_id;

static void on_server_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  (void)info;
  (void)user;
  server_conn_id = vigil_conn_id(c);
  if (pthread_create(&worker, NULL, work, &server_conn_id) == 0)
    worker_started = 1;
}

static void on_server_death(vigil_conn *c, const vigil_death *d, void *user) {
  (void)c;
  (void)d;
  (void)user;
  vigil_server_shutdown(srv, 100);
}

static void on_message(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  char expect[32];
  int n = snprintf(expect, sizeof expect, "message %d", received);
  (void)c;
  (void)user;
  if ((size_t)n != len || memcmp(msg, expect, len) != 0)
    out_of_order++;
  if (++received == MESSAGES)
    vigil_client_close(cli, 1000); /* all here: leave */
}

static void on_watchdog(vigil_loop *l, vigil_loop_timer *t) {
  (void)l;
  (void)t;
  fprintf(stderr, "timed out with %d messages\n", received);
  vigil_client_close(cli, 100);
}

static void on_client_closed(vigil_client *c, void *user) {
  (void)user;
  vigil_client_free(c);
}

static void on_server_closed(vigil_server *s, void *user) {
  (void)user;
  vigil_loop_timer_cancel(&loop, &watchdog);
  vigil_server_free(s);
  /* The connection is gone: its id names nothing any more. */
  after_death = vigil_conn_send_threadsafe(server_conn_id, "late", 4, NULL, NULL);
}

int main(void) {
  vigil_server_config cfg;
  vigil_client_config ccfg;
  uint16_t port;
  int ok;

  if (vigil_loop_init(&loop, NULL) != 0)
    return 1;
  vigil_server_config_init(&cfg);
  cfg.cb.on_open = on_server_open;
  cfg.cb.on_death = on_server_death;
  cfg.on_closed = on_server_closed;
  if (vigil_server_new(&srv, &loop, &cfg) != 0 ||
      vigil_server_listen(srv, "127.0.0.1", 0, &port) != 0)
    return 1;

  vigil_client_config_init(&ccfg);
  ccfg.session.id = "worker-demo";
  ccfg.session.id_len = strlen(ccfg.session.id);
  ccfg.no_reconnect = 1;
  ccfg.cb.on_message = on_message;
  ccfg.on_closed = on_client_closed;
  if (vigil_client_new(&cli, &loop, &ccfg) != 0 ||
      vigil_client_connect(cli, "127.0.0.1", port) != 0)
    return 1;

  vigil_loop_timer_init(&watchdog);
  vigil_loop_timer_arm(&loop, &watchdog, vigil_loop_now_ms(&loop) + 20000, on_watchdog);

  vigil_loop_run(&loop, VIGIL_RUN_DEFAULT); /* returns when nothing is left */
  if (worker_started)
    pthread_join(worker, NULL);
  vigil_loop_run(&loop, VIGIL_RUN_NOWAIT); /* the worker's last post, if still queued */
  ok = vigil_loop_close(&loop) == 0 && worker_started && worker_done && received == MESSAGES &&
       out_of_order == 0 && send_failures == 0 && after_death == VIGIL_ENOENT;
  printf("%d of %d messages from the worker thread arrived, %d out of order, %d failed; "
         "send after death: %s\n",
         received, MESSAGES, out_of_order, send_failures, vigil_err_name(after_death));
  return ok ? 0 : 1;
}
