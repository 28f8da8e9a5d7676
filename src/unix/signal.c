/* Signals on POSIX: one sigaction handler per signal for the whole
 * process, shared by every started vigil_signal of every loop.
 *
 * The handler walks the list of started handles and, for each one that
 * watches the delivered signal, counts it and sends the handle's async
 * (src/signal.c); the loop it belongs to wakes through its eventfd or
 * self-pipe. Nothing else happens in the handler: it is the self-pipe trick,
 * with the pipe being each loop's own wakeup.
 *
 * The list is changed on loop threads while a handler may be reading it on
 * any thread, so both take a spin lock (an atomic exchange: async-signal-
 * safe, unlike a mutex). A thread changing the list blocks every signal
 * first, so a handler can never interrupt the lock's holder on its own
 * thread and spin forever; the handler itself runs with every signal
 * blocked (sa_mask full) for the same reason. The lock is held for a list
 * walk at most, so a handler on another thread spins briefly.
 *
 * The first handle of a signal installs the handler (SA_RESTART, so the
 * program's other system calls are not interrupted: the loop is woken by
 * its wakeup, not by EINTR) and keeps the disposition it replaced; the last
 * one to stop puts that back, so a program's own SIG_IGN or handler returns
 * once vigil no longer watches the signal. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "../thread.h"
#include "internal.h"

#if defined(NSIG)
#define MAX_SIGNAL NSIG
#else
#define MAX_SIGNAL 65
#endif

static vigil__queue started = {&started, &started};
static int list_lock;
static unsigned watchers[MAX_SIGNAL];
static struct sigaction previous[MAX_SIGNAL];

static void lock(void) {
  while (vigil__atomic_xchg(&list_lock, 1) != 0) {
  }
}

static void unlock(void) {
  vigil__atomic_store(&list_lock, 0);
}

static void on_signal(int signum) {
  vigil__queue *q;
  vigil_signal *s;
  lock();
  for (q = started.next; q != &started; q = q->next) {
    s = vigil_container_of(q, vigil_signal, link);
    if (s->signum == signum)
      vigil__signal_deliver(s);
  }
  unlock();
}

/* Blocks every signal on this thread and takes the lock. */
static void enter(sigset_t *saved) {
  sigset_t all;
  sigfillset(&all);
  (void)pthread_sigmask(SIG_SETMASK, &all, saved);
  lock();
}

static void leave(const sigset_t *saved) {
  unlock();
  (void)pthread_sigmask(SIG_SETMASK, saved, NULL);
}

int vigil__plat_signal_add(vigil_signal *s, int signum) {
  struct sigaction sa;
  sigset_t saved;
  int err = 0;

  if (signum <= 0 || signum >= MAX_SIGNAL || signum == SIGKILL || signum == SIGSTOP)
    return VIGIL_EINVAL;
  enter(&saved);
  if (watchers[signum] == 0) {
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signum, &sa, &previous[signum]) != 0)
      err = vigil__unix_err();
  }
  if (err == 0) {
    watchers[signum]++;
    /* signum is read by handlers under the lock: set it here. */
    s->signum = signum;
    vigil__queue_insert_tail(&started, &s->link);
  }
  leave(&saved);
  return err;
}

void vigil__plat_signal_remove(vigil_signal *s) {
  sigset_t saved;
  int signum = s->signum;

  enter(&saved);
  vigil__queue_remove(&s->link);
  if (--watchers[signum] == 0)
    (void)sigaction(signum, &previous[signum], NULL);
  leave(&saved);
}
