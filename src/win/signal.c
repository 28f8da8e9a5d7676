/* Signals on Windows: a console control handler. Windows has no POSIX
 * signals for a console program's Ctrl-C; it calls the handlers registered
 * with SetConsoleCtrlHandler on a thread of its own. vigil registers one,
 * on the first started handle, and maps the events to the numbers a POSIX
 * program watches (signal.h has them: SIGINT 2, SIGTERM 15, SIGBREAK 21):
 *
 *   CTRL_C_EVENT                                      SIGINT
 *   CTRL_BREAK_EVENT                                  SIGBREAK
 *   CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT,
 *   CTRL_SHUTDOWN_EVENT                               SIGTERM
 *
 * The handler runs on an ordinary thread, so the list of started handles is
 * under a plain lock (an SRW lock). It returns TRUE (handled) when some
 * handle watched the event's signal, else FALSE, so the next handler, and
 * finally the default (end the process), sees what vigil does not. */
#include <signal.h>

#include "../thread.h"
#include "internal.h"

#if !defined(SIGBREAK)
#define SIGBREAK 21
#endif

static vigil__queue started = {&started, &started};
static vigil__mutex list_lock = VIGIL__MUTEX_INIT;
static int registered;

static int signal_of(DWORD type) {
  switch (type) {
  case CTRL_C_EVENT:
    return SIGINT;
  case CTRL_BREAK_EVENT:
    return SIGBREAK;
  case CTRL_CLOSE_EVENT:
  case CTRL_LOGOFF_EVENT:
  case CTRL_SHUTDOWN_EVENT:
    return SIGTERM;
  default:
    return 0;
  }
}

/* The console control handler; also called directly by the tests, since a
 * test cannot press Ctrl-C. Returns TRUE when a handle took the event. */
BOOL vigil__win_console_event(DWORD type) {
  int signum = signal_of(type), handled = 0;
  vigil__queue *q;
  vigil_signal *s;
  vigil__mutex_lock(&list_lock);
  for (q = started.next; q != &started; q = q->next) {
    s = vigil_container_of(q, vigil_signal, link);
    if (signum != 0 && s->signum == signum) {
      vigil__signal_deliver(s);
      handled = 1;
    }
  }
  vigil__mutex_unlock(&list_lock);
  return handled ? TRUE : FALSE;
}

static BOOL WINAPI on_console(DWORD type) {
  return vigil__win_console_event(type);
}

int vigil__plat_signal_add(vigil_signal *s, int signum) {
  int err = 0;
  if (signum <= 0)
    return VIGIL_EINVAL;
  if (signum != SIGINT && signum != SIGBREAK && signum != SIGTERM)
    return VIGIL_ENOTSUP;
  vigil__mutex_lock(&list_lock);
  if (!registered) {
    if (SetConsoleCtrlHandler(on_console, TRUE))
      registered = 1;
    else
      err = vigil__win_error(GetLastError());
  }
  if (err == 0) {
    s->signum = signum;
    vigil__queue_insert_tail(&started, &s->link);
  }
  vigil__mutex_unlock(&list_lock);
  return err;
}

void vigil__plat_signal_remove(vigil_signal *s) {
  vigil__mutex_lock(&list_lock);
  vigil__queue_remove(&s->link);
  vigil__mutex_unlock(&list_lock);
}
