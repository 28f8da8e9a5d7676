#ifndef VIGIL_UNIX_INTERNAL_H
#define VIGIL_UNIX_INTERNAL_H

/* POSIX platform internals: a poller is the only thing that differs
 * between epoll and poll. It keeps, per handle, the interest the handle
 * needs (tcp->plat.wanted) registered with the kernel, and reports readiness
 * to vigil__unix_io, which turns it into completions (src/unix/tcp.c). The
 * poller is picked per loop at run time, so one build tests both. */

#include "../loop-internal.h"

#define VIGIL__IO_READ 1u
#define VIGIL__IO_WRITE 2u

typedef struct vigil__poller {
  const char *name;
  /* Sets loop->plat to the poller's state, watching loop->wake_fd[0] for
   * reading. Returns 0 or -errno. */
  int (*init)(vigil_loop *loop);
  void (*close)(vigil_loop *loop);
  /* Makes the kernel's interest in tcp equal tcp->plat.wanted (0: none, so
   * a quiet handle costs nothing per wait). Returns 0 or -errno. */
  int (*update)(vigil_loop *loop, vigil_tcp *tcp);
  /* Waits up to timeout_ms (-1 forever) and calls vigil__unix_io for each
   * ready handle. Returns 0 (also on EINTR) or -errno. */
  int (*wait)(vigil_loop *loop, int timeout_ms);
} vigil__poller;

extern const vigil__poller vigil__poller_poll;
extern const vigil__poller vigil__poller_epoll; /* HAVE_EPOLL only */

/* Readiness of tcp: VIGIL__IO_* bits (errors and hang-ups set both). */
void vigil__unix_io(vigil_tcp *tcp, unsigned events);

/* The loop's wakeup (wakeup.c): loop->wake_fd[0] is what the poller
 * watches for reading (from its init); wake_open creates it before the
 * poller's init, wake_close closes it after the poller's close. When it is
 * readable the poller calls vigil__unix_wake_ready, which drains it and runs
 * vigil__loop_wakeup. */
int vigil__unix_wake_open(vigil_loop *loop);
void vigil__unix_wake_close(vigil_loop *loop);
void vigil__unix_wake_ready(vigil_loop *loop);

/* -errno of the last failed call, as a VIGIL_E* code. */
int vigil__unix_err(void);

#endif
