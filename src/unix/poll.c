/* The poll(2) poller: the portable fallback, and a second implementation
 * that keeps the first honest in tests. O(n) per wait in the handles that
 * want something (the kernel scans them all), which is what poll costs.
 *
 * The pollfd array and a parallel array of handles grow by doubling. A
 * handle that stops wanting anything leaves a hole (fd -1, which poll
 * ignores, and handle NULL) instead of being swapped out, so a callback may
 * add or remove handles while a wait's results are being dispatched; holes
 * are squeezed out at the start of the next wait. Slot 0 is the loop's
 * wakeup descriptor, for the life of the loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "internal.h"

typedef struct poll_state {
  struct pollfd *fds;
  vigil_tcp **handles;
  size_t n, cap, holes;
} poll_state;

static int grow(poll_state *st);

static int poll_init(vigil_loop *loop) {
  poll_state *st = calloc(1, sizeof *st);
  if (st == NULL)
    return VIGIL_ENOMEM;
  if (grow(st) != 0) {
    free(st->fds);
    free(st->handles);
    free(st);
    return VIGIL_ENOMEM;
  }
  st->fds[0].fd = loop->wake_fd[0];
  st->fds[0].events = POLLIN;
  st->fds[0].revents = 0;
  st->handles[0] = NULL;
  st->n = 1;
  loop->plat = st;
  return 0;
}

static void poll_close(vigil_loop *loop) {
  poll_state *st = loop->plat;
  if (st == NULL)
    return;
  free(st->fds);
  free(st->handles);
  free(st);
}

static short poll_events(uint32_t wanted) {
  short ev = 0;
  if ((wanted & VIGIL__IO_READ) != 0)
    ev |= POLLIN;
  if ((wanted & VIGIL__IO_WRITE) != 0)
    ev |= POLLOUT;
  return ev;
}

static int grow(poll_state *st) {
  size_t cap = st->cap != 0 ? st->cap * 2 : 64;
  struct pollfd *fds;
  vigil_tcp **handles;

  fds = realloc(st->fds, cap * sizeof *fds);
  if (fds == NULL)
    return VIGIL_ENOMEM;
  st->fds = fds;
  handles = realloc(st->handles, cap * sizeof(vigil_tcp *));
  if (handles == NULL)
    return VIGIL_ENOMEM;
  st->handles = handles;
  st->cap = cap;
  return 0;
}

static int poll_update(vigil_loop *loop, vigil_tcp *tcp) {
  poll_state *st = loop->plat;
  uint32_t wanted = tcp->plat.wanted;
  size_t i;
  int err;

  if (wanted == tcp->plat.registered)
    return 0;
  if (wanted == 0) {
    i = tcp->plat.index;
    st->fds[i].fd = -1;
    st->fds[i].revents = 0;
    st->handles[i] = NULL;
    st->holes++;
    tcp->plat.registered = 0;
    return 0;
  }
  if (tcp->plat.registered == 0) {
    if (st->n == st->cap && (err = grow(st)) != 0)
      return err;
    i = st->n++;
    st->fds[i].fd = tcp->socket;
    st->fds[i].revents = 0;
    st->handles[i] = tcp;
    tcp->plat.index = (uint32_t)i;
  }
  st->fds[tcp->plat.index].events = poll_events(wanted);
  tcp->plat.registered = wanted;
  return 0;
}

static void squeeze(poll_state *st) {
  size_t i, j = 1;
  for (i = 1; i < st->n; i++) {
    if (st->handles[i] == NULL)
      continue;
    st->fds[j] = st->fds[i];
    st->handles[j] = st->handles[i];
    st->handles[j]->plat.index = (uint32_t)j;
    j++;
  }
  st->n = j;
  st->holes = 0;
}

static int poll_wait(vigil_loop *loop, int timeout_ms) {
  poll_state *st = loop->plat;
  size_t i, n;
  unsigned events;
  short re;
  int r;

  if (st->holes != 0)
    squeeze(st);
  n = st->n;
  r = poll(st->fds, (nfds_t)n, timeout_ms);
  if (r < 0)
    return errno == EINTR ? 0 : vigil__unix_err();
  vigil__loop_awake(loop);
  /* Only the first n slots were polled; handles added by callbacks land
   * after them with no results yet. Re-read st->fds each time: a callback
   * may have grown (moved) the array. */
  for (i = 0; i < n && r > 0; i++) {
    re = st->fds[i].revents;
    if (re == 0)
      continue;
    r--;
    st->fds[i].revents = 0;
    if (i == 0) {
      vigil__unix_wake_ready(loop);
      continue;
    }
    if (st->handles[i] == NULL)
      continue;
    events = 0;
    if ((re & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0)
      events |= VIGIL__IO_READ;
    if ((re & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) != 0)
      events |= VIGIL__IO_WRITE;
    vigil__unix_io(st->handles[i], events);
  }
  return 0;
}

const vigil__poller vigil__poller_poll = {"poll", poll_init, poll_close, poll_update, poll_wait};
