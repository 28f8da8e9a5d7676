/* POSIX platform glue: the clocks, the choice of poller, and the loop's
 * wait. Socket operations are in tcp.c, the pollers in epoll.c and poll.c. */
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sysmem.h"

int vigil__unix_err(void) {
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
  if (errno == EWOULDBLOCK)
    return VIGIL_EAGAIN;
#endif
  return -errno;
}

static uint64_t read_os_clock(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t vigil__plat_clock(void *arg, vigil_clock_id id) {
  (void)arg;
#if defined(HAVE_CLOCK_BOOTTIME) /* Linux: counts through a suspend */
  if (id == VIGIL_CLOCK_BOOTTIME)
    return read_os_clock(CLOCK_BOOTTIME);
#else
  (void)id;
#endif
  return read_os_clock(CLOCK_MONOTONIC);
}

unsigned vigil__plat_if_index(const char *name) {
  return if_nametoindex(name);
}

static const vigil__poller *poller_for(vigil_backend backend) {
  switch (backend) {
  case VIGIL_BACKEND_POLL:
    return &vigil__poller_poll;
  case VIGIL_BACKEND_EPOLL:
#if defined(HAVE_EPOLL)
    return &vigil__poller_epoll;
#else
    return NULL;
#endif
  default:
    return NULL;
  }
}

vigil_backend vigil__plat_default_backend(void) {
#if defined(HAVE_EPOLL)
  return VIGIL_BACKEND_EPOLL;
#else
  return VIGIL_BACKEND_POLL;
#endif
}

int vigil__plat_init(vigil_loop *loop, vigil_backend backend) {
  const vigil__poller *p = poller_for(backend);
  int err;
  if (p == NULL)
    return VIGIL_ENOTSUP;
  err = vigil__unix_wake_open(loop);
  if (err != 0)
    return err;
  loop->plat_ops = p;
  err = p->init(loop);
  if (err != 0) {
    loop->plat_ops = NULL;
    vigil__unix_wake_close(loop);
  }
  return err;
}

void vigil__plat_close(vigil_loop *loop) {
  const vigil__poller *p = loop->plat_ops;
  if (p != NULL)
    p->close(loop);
  vigil__unix_wake_close(loop);
}

const char *vigil__plat_name(const vigil_loop *loop) {
  const vigil__poller *p = loop->plat_ops;
  return p != NULL ? p->name : "none";
}

int vigil__plat_poll(vigil_loop *loop, int timeout_ms) {
  const vigil__poller *p = loop->plat_ops;
  return p->wait(loop, timeout_ms);
}

size_t vigil__phys_memory(void) {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0 || (unsigned long)pages > SIZE_MAX / (unsigned long)size)
    return 0;
  return (size_t)pages * (size_t)size;
#else
  return 0;
#endif
}
