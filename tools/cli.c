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

static vigil_cli_sigwatch *active_watch; /* the running command's, or NULL */
static int term_only;                    /* vigil_cli_sigwatch_term_only */

void vigil_cli_sigwatch_term_only(void) {
  term_only = 1;
}

void vigil_cli_ignore_sigpipe(void) {
#if defined(SIGPIPE)
  signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE, reported and handled */
#endif
}

/* Stops watching: the signals get their previous disposition back. */
static void unwatch(vigil_cli_sigwatch *w) {
  unsigned i;
  for (i = 0; i < w->nsig; i++)
    (void)vigil_signal_stop(&w->sig[i]);
}

static void on_signal(vigil_signal *sig, int signo) {
  vigil_cli_sigwatch *w = sig->data;
  unwatch(w); /* a second signal ends a shutdown that hangs */
  w->fn(w->arg, signo);
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
  static const int signals[] = {
    SIGINT,
    SIGTERM,
#if defined(SIGBREAK)
    SIGBREAK
#endif
  };
  unsigned i;
  int err;

  w->fn = fn;
  w->arg = arg;
  w->loop = loop;
  w->nsig = 0;
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    if (signals[i] == SIGINT && term_only)
      continue; /* a worker: its supervisor turns Ctrl-C into one SIGTERM */
    if (vigil_signal_init(loop, &w->sig[w->nsig]) != 0)
      continue;
    w->sig[w->nsig].data = w;
    err = vigil_signal_start(&w->sig[w->nsig], on_signal, signals[i]);
    if (err != 0) {
      fprintf(stderr, "vigil: cannot watch signal %d: %s\n", signals[i], vigil_strerror(err));
      vigil_signal_close(&w->sig[w->nsig], NULL);
      continue;
    }
    w->nsig++;
  }
  vigil_loop_timer_init(&w->stop);
  active_watch = w;
  if (vigil_cli_out_failed())
    request_stop(w); /* stdout failed before the loop ran */
}

void vigil_cli_sigwatch_stop(vigil_loop *loop, vigil_cli_sigwatch *w) {
  unsigned i;
  for (i = 0; i < w->nsig; i++)
    vigil_signal_close(&w->sig[i], NULL);
  w->nsig = 0;
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
