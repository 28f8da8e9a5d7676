/* The worker supervisor (vigil/workers.h): restarts with backoff, giving
 * up on a worker that keeps dying, stopping on SIGTERM, bad configs. The
 * CLI's use of it (`vigil serve --workers`) is tested in test-cli.c. */
#include <signal.h>
#include <string.h>

#include "task.h"
#include "vigil.h"

#if !defined(_WIN32)
#include <unistd.h>

typedef struct tally {
  unsigned starts[4], exits[4];
  int killed_once, stop_sent;
  long killed_pid;
  vigil_worker_event last_exit[4];
  vigil_worker_event kill_exit;
} tally;

static int run_forever(unsigned worker, void *user) {
  (void)worker;
  while (user != NULL) /* until a signal ends the process */
    pause();
  return 1;
}

static int run_fail(unsigned worker, void *user) {
  return worker == 0 ? 3 : run_forever(worker, user);
}

static void count(const vigil_worker_event *ev, void *user) {
  tally *t = user;
  if (ev->type == VIGIL_WORKER_STARTED)
    t->starts[ev->worker]++;
  else
    t->last_exit[ev->worker] = *ev;
  if (ev->type == VIGIL_WORKER_EXITED)
    t->exits[ev->worker]++;
}

/* Kills worker 1 once both run, then stops everything once it is back. */
static void kill_then_stop(const vigil_worker_event *ev, void *user) {
  tally *t = user;
  count(ev, user);
  if (ev->type == VIGIL_WORKER_EXITED && ev->pid == t->killed_pid)
    t->kill_exit = *ev;
  if (ev->type != VIGIL_WORKER_STARTED)
    return;
  if (!t->killed_once && t->starts[0] == 1 && t->starts[1] == 1) {
    t->killed_once = 1;
    t->killed_pid = ev->worker == 1 ? ev->pid : 0;
    if (ev->worker == 1)
      kill((pid_t)ev->pid, SIGKILL);
  } else if (t->killed_once && ev->worker == 1 && ev->restarts == 1 && !t->stop_sent) {
    t->stop_sent = 1;
    raise(SIGTERM);
  }
}
#endif

TEST_IMPL(gives_up_on_a_worker_that_keeps_dying) {
#if defined(_WIN32)
  RETURN_SKIP("no worker processes on Windows (vigil_workers_run: VIGIL_ENOTSUP)");
#else
  static tally t;
  vigil_workers_config cfg;
  memset(&t, 0, sizeof t);
  vigil_workers_config_init(&cfg);
  cfg.workers = 2;
  cfg.run = run_fail; /* worker 0 fails at once, worker 1 runs */
  cfg.on_event = count;
  cfg.user = &t;
  cfg.restart_base_ms = 1;
  cfg.restart_max_ms = 4;
  cfg.max_restarts = 3;
  ASSERT_EQ(vigil_workers_run(&cfg), VIGIL_EWORKER);
  /* the first start, then 3 restarts; the 4th quick death gives up */
  ASSERT_EQ(t.starts[0], 4);
  ASSERT_EQ(t.exits[0], 4);
  ASSERT_EQ(t.last_exit[0].status, 3);
  ASSERT_EQ(t.last_exit[0].restarting, 0);
  ASSERT_EQ(t.last_exit[0].restarts, 3);
  /* the healthy worker was stopped, not restarted */
  ASSERT_EQ(t.starts[1], 1);
  ASSERT_EQ(t.exits[1], 1);
  ASSERT_EQ(t.last_exit[1].signal, SIGTERM);
  return 0;
#endif
}

TEST_IMPL(restarts_a_killed_worker_and_stops_on_sigterm) {
#if defined(_WIN32)
  RETURN_SKIP("no worker processes on Windows (vigil_workers_run: VIGIL_ENOTSUP)");
#else
  static tally t;
  vigil_workers_config cfg;
  struct sigaction now;
  memset(&t, 0, sizeof t);
  vigil_workers_config_init(&cfg);
  cfg.workers = 2;
  cfg.run = run_forever;
  cfg.on_event = kill_then_stop;
  cfg.user = &t;
  cfg.restart_base_ms = 50;
  ASSERT_EQ(vigil_workers_run(&cfg), 0);
  ASSERT(t.killed_pid > 0);
  ASSERT_EQ(t.kill_exit.signal, SIGKILL);
  ASSERT_EQ(t.kill_exit.status, -1);
  ASSERT_EQ(t.kill_exit.restarting, 1);
  ASSERT_EQ(t.kill_exit.restart_in_ms, 50);
  ASSERT_EQ(t.starts[0], 1);
  ASSERT_EQ(t.starts[1], 2);
  /* SIGTERM reached every worker; none restarted after it */
  ASSERT_EQ(t.exits[0], 1);
  ASSERT_EQ(t.exits[1], 2);
  ASSERT_EQ(t.last_exit[0].signal, SIGTERM);
  ASSERT_EQ(t.last_exit[1].signal, SIGTERM);
  ASSERT_EQ(t.last_exit[1].restarting, 0);
  /* the supervisor's handlers are gone */
  ASSERT_EQ(sigaction(SIGTERM, NULL, &now), 0);
  ASSERT(now.sa_handler == SIG_DFL);
  return 0;
#endif
}

TEST_IMPL(bad_config) {
  vigil_workers_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.workers = 1;
  ASSERT_EQ(vigil_workers_run(&cfg), VIGIL_EINVAL); /* never _init'ed */
  ASSERT_EQ(vigil_workers_run(NULL), VIGIL_EINVAL);
  vigil_workers_config_init(&cfg);
  ASSERT_EQ(cfg.workers, 1);
  ASSERT_EQ(cfg.restart_base_ms, 100);
  ASSERT_EQ(vigil_workers_run(&cfg), VIGIL_EINVAL); /* no run */
#if !defined(_WIN32)
  cfg.run = run_fail;
#endif
  cfg.workers = 0;
  ASSERT_EQ(vigil_workers_run(&cfg), VIGIL_EINVAL);
  cfg.workers = 1025;
  ASSERT_EQ(vigil_workers_run(&cfg), VIGIL_EINVAL);
  return 0;
}
