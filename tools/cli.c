/* Running a `vigil` command: the loop, and the signal watch every
 * long-running command uses (SIGINT / SIGTERM, and a failed stdout, stop it
 * the same way). The argument parsers are in args.c, the event lines and
 * the stdout checks in events.c. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

int vigil_cli_run_loop(const char *cmd, vigil_loop *loop) {
  int rc, failures = 0;

  while ((rc = vigil_loop_run(loop, VIGIL_RUN_DEFAULT)) < 0) {
    if (++failures == 1000) {
      fprintf(stderr, "vigil %s: event loop: %s\n", cmd, vigil_strerror(rc));
      return VIGIL_CLI_FAIL;
    }
  }
  return 0;
}

/* ---- signals ---- */

static volatile sig_atomic_t caught_signal;
static vigil_cli_sigwatch *active_watch; /* the running command's, or NULL */

static void on_signal(int signo) {
  if (caught_signal != 0)
    _Exit(128 + signo);
  caught_signal = signo;
}

#if defined(_WIN32)
static void catch_signals(void) {
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
}
#else
static void catch_signals(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: the loop's wait returns */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}
#endif

void vigil_cli_ignore_sigpipe(void) {
#if defined(SIGPIPE)
  signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE, reported and handled */
#endif
}

static void sigwatch_tick(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_cli_sigwatch *w = vigil_container_of(t, vigil_cli_sigwatch, timer);

  if (caught_signal != 0) {
    w->fn(w->arg, (int)caught_signal);
    return;
  }
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + 50, sigwatch_tick);
}

/* stdout failed: the command stops as for a signal (signo 0). */
static void stop_tick(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_cli_sigwatch *w = vigil_container_of(t, vigil_cli_sigwatch, stop);

  (void)loop;
  w->fn(w->arg, 0);
}

static void request_stop(vigil_cli_sigwatch *w) {
  vigil_loop_timer_arm(w->loop, &w->stop, vigil_loop_now_ms(w->loop), stop_tick);
}

void vigil_cli_sigwatch_start(vigil_loop *loop, vigil_cli_sigwatch *w,
                              void (*fn)(void *arg, int signo), void *arg) {
  w->fn = fn;
  w->arg = arg;
  w->loop = loop;
  catch_signals();
  vigil_loop_timer_init(&w->timer);
  vigil_loop_timer_init(&w->stop);
  vigil_loop_timer_arm(loop, &w->timer, vigil_loop_now_ms(loop) + 50, sigwatch_tick);
  active_watch = w;
  if (vigil_cli_out_failed())
    request_stop(w); /* stdout failed before the loop ran */
}

void vigil_cli_sigwatch_stop(vigil_loop *loop, vigil_cli_sigwatch *w) {
  vigil_loop_timer_cancel(loop, &w->timer);
  vigil_loop_timer_cancel(loop, &w->stop);
  if (active_watch == w)
    active_watch = NULL;
}

int vigil_cli_loop_main(const char *cmd, vigil_loop *loop, vigil_cli_sigwatch *w,
                        void (*fn)(void *arg, int signo), void *arg) {
  vigil_cli_sigwatch_start(loop, w, fn, arg);
  return vigil_cli_run_loop(cmd, loop);
}

void vigil_cli_loop_stop(vigil_loop *loop, vigil_cli_sigwatch *w) {
  vigil_cli_sigwatch_stop(loop, w);
  vigil_loop_stop(loop);
}

void vigil_cli_loop_finish(vigil_loop *loop) {
  vigil_loop_run(loop, VIGIL_RUN_NOWAIT);
  vigil_loop_close(loop);
}

void vigil_cli_request_stop(void) {
  if (active_watch != NULL)
    request_stop(active_watch);
}
