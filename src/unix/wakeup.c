/* The loop's wakeup on POSIX: a descriptor the poller watches, made
 * readable by any thread (or a signal handler) to end the loop's wait.
 * Where the system has eventfd (Linux; CMake's feature test defines
 * HAVE_EVENTFD) it is one eventfd, read and written through the same
 * descriptor; elsewhere a non-blocking self-pipe. Either way a write that
 * finds it already full (EAGAIN) is fine: the loop is already due to wake.
 * src/async.c writes at most once per wake-up anyway. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(HAVE_EVENTFD)
#include <sys/eventfd.h>
#endif

#include "internal.h"

#if !defined(HAVE_EVENTFD)
static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return vigil__unix_err();
  return 0;
}
#endif

int vigil__unix_wake_open(vigil_loop *loop) {
#if defined(HAVE_EVENTFD)
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return vigil__unix_err();
  loop->wake_fd[0] = fd;
  loop->wake_fd[1] = fd;
  return 0;
#else
  int fds[2], err;
  if (pipe(fds) != 0)
    return vigil__unix_err();
  if ((err = set_flags(fds[0])) != 0 || (err = set_flags(fds[1])) != 0) {
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  loop->wake_fd[0] = fds[0];
  loop->wake_fd[1] = fds[1];
  return 0;
#endif
}

void vigil__unix_wake_close(vigil_loop *loop) {
  if (loop->wake_fd[1] >= 0 && loop->wake_fd[1] != loop->wake_fd[0])
    close(loop->wake_fd[1]);
  if (loop->wake_fd[0] >= 0)
    close(loop->wake_fd[0]);
  loop->wake_fd[0] = -1;
  loop->wake_fd[1] = -1;
}

void vigil__plat_wake(vigil_loop *loop) {
  int saved = errno;
  ssize_t n;
#if defined(HAVE_EVENTFD)
  uint64_t one = 1;
  do
    n = write(loop->wake_fd[1], &one, sizeof one);
  while (n < 0 && errno == EINTR);
#else
  char one = 1;
  do
    n = write(loop->wake_fd[1], &one, 1);
  while (n < 0 && errno == EINTR);
#endif
  (void)n; /* EAGAIN: full, so the loop wakes anyway */
  errno = saved;
}

void vigil__unix_wake_ready(vigil_loop *loop) {
  char buf[64];
  ssize_t n;
  /* eventfd: one read resets the counter; a pipe: read until empty. */
  do
    n = read(loop->wake_fd[0], buf, sizeof buf);
  while (n > 0 || (n < 0 && errno == EINTR));
  vigil__loop_wakeup(loop);
}
