/* The epoll poller (Linux). Level-triggered, one registration per handle
 * that wants something, keyed by the handle's address, so an idle
 * connection costs nothing per wait and a wait costs O(ready), not
 * O(connections). A handle that wants nothing is removed from the set
 * (EPOLL_CTL_DEL) rather than kept with an empty mask, because epoll
 * reports EPOLLERR / EPOLLHUP even for an empty mask and a level-triggered
 * hang-up nobody reads would wake every wait.
 *
 * A callback may close or stop a handle whose event is later in the same
 * batch; vigil__unix_io checks the handle's flags, and its memory stays
 * valid until its close callback, which runs after the batch. The loop's
 * wakeup descriptor is registered with a NULL pointer, which no handle
 * has. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define MAX_EVENTS 1024

typedef struct epoll_state {
  int fd;
  struct epoll_event events[MAX_EVENTS];
} epoll_state;

static int epoll_init(vigil_loop *loop) {
  epoll_state *st = malloc(sizeof *st);
  if (st == NULL)
    return VIGIL_ENOMEM;
  struct epoll_event ev;
  int err;
  st->fd = epoll_create1(EPOLL_CLOEXEC);
  if (st->fd < 0) {
    err = vigil__unix_err();
    free(st);
    return err;
  }
  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  if (epoll_ctl(st->fd, EPOLL_CTL_ADD, loop->wake_fd[0], &ev) != 0) {
    err = vigil__unix_err();
    close(st->fd);
    free(st);
    return err;
  }
  loop->plat = st;
  return 0;
}

static void epoll_close(vigil_loop *loop) {
  epoll_state *st = loop->plat;
  if (st == NULL)
    return;
  close(st->fd);
  free(st);
}

static int epoll_update(vigil_loop *loop, vigil_tcp *tcp) {
  epoll_state *st = loop->plat;
  struct epoll_event ev;
  uint32_t wanted = tcp->plat.wanted;
  int op;

  if (wanted == tcp->plat.registered)
    return 0;
  if (wanted == 0) {
    /* ENOENT / EBADF: already gone with the descriptor; nothing to undo. */
    (void)epoll_ctl(st->fd, EPOLL_CTL_DEL, tcp->socket, NULL);
    tcp->plat.registered = 0;
    return 0;
  }
  ev.events = ((wanted & VIGIL__IO_READ) != 0 ? (uint32_t)EPOLLIN : 0u) |
              ((wanted & VIGIL__IO_WRITE) != 0 ? (uint32_t)EPOLLOUT : 0u);
  ev.data.ptr = tcp;
  op = tcp->plat.registered != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(st->fd, op, tcp->socket, &ev) != 0)
    return vigil__unix_err();
  tcp->plat.registered = wanted;
  return 0;
}

static int epoll_wait_ready(vigil_loop *loop, int timeout_ms) {
  epoll_state *st = loop->plat;
  unsigned events;
  uint32_t e;
  int n, i;

  n = epoll_wait(st->fd, st->events, MAX_EVENTS, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : vigil__unix_err();
  vigil__loop_awake(loop);
  for (i = 0; i < n; i++) {
    if (st->events[i].data.ptr == NULL) {
      vigil__unix_wake_ready(loop);
      continue;
    }
    e = st->events[i].events;
    events = 0;
    if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
      events |= VIGIL__IO_READ;
    if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0)
      events |= VIGIL__IO_WRITE;
    vigil__unix_io(st->events[i].data.ptr, events);
  }
  return 0;
}

const vigil__poller vigil__poller_epoll = {"epoll", epoll_init, epoll_close, epoll_update,
                                           epoll_wait_ready};
