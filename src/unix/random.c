/* The OS's random source, for the things that must differ between
 * connections and between processes: each connection's ping jitter (a
 * thousand clients opened together must not ping in lock-step), the
 * reconnect backoff, the presence table's hash seed.
 *
 * In order of preference, each tested by the build rather than by OS name:
 * getrandom() (Linux, FreeBSD 12+, glibc and musl: no descriptor, cannot
 * fail once the pool is seeded), arc4random_buf() (the BSDs, macOS, glibc
 * 2.36+: cannot fail), and /dev/urandom, which every POSIX system we run on
 * has. getrandom() that the running kernel lacks (ENOSYS on an old kernel,
 * EPERM under a seccomp filter) falls back to /dev/urandom too. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(HAVE_GETRANDOM)
#include <sys/random.h>
#endif

#include "internal.h"

static int read_urandom(unsigned char *p, size_t len) {
  int fd, rc = 0;
  do {
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return vigil__unix_err();
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? vigil__unix_err() : VIGIL_EOF;
      break;
    }
    p += n;
    len -= (size_t)n;
  }
  (void)close(fd);
  return rc;
}

#if defined(HAVE_GETRANDOM)
static int os_random(unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == ENOSYS || errno == EPERM ? read_urandom(p, len) : vigil__unix_err();
    p += n;
    len -= (size_t)n;
  }
  return 0;
}
#elif defined(HAVE_ARC4RANDOM_BUF)
static int os_random(unsigned char *p, size_t len) {
  arc4random_buf(p, len);
  return 0;
}
#else
static int os_random(unsigned char *p, size_t len) {
  return read_urandom(p, len);
}
#endif

int vigil_random(void *buf, size_t len) {
  if (buf == NULL && len > 0)
    return VIGIL_EINVAL;
  return len == 0 ? 0 : os_random(buf, len);
}
