/* libvigil-preload.so: kernel keepalive and TCP_USER_TIMEOUT for programs
 * that never asked for them, loaded by `vigil run` through LD_PRELOAD.
 *
 * Most programs that hold a TCP connection open (socat, nc, database
 * clients, old daemons) leave SO_KEEPALIVE off, or on with the kernel's
 * 2 h 11 min defaults, and never set TCP_USER_TIMEOUT: a pulled cable then
 * leaves them blocked for hours when idle, ~15 minutes with data in flight.
 * This library interposes the calls that create TCP sockets (socket(),
 * accept(), accept4()), lets the real call run, and applies the settings
 * `vigil run` put in the environment to each new TCP socket with libvigil's
 * vigil_keepalive_apply(), which sets every option and reads it back.
 * Settings are applied at creation, before connect(): Linux keeps them
 * across connect(), and an accepted socket gets them explicitly rather than
 * relying on inheritance from the listener, which differs between systems.
 *
 * Nothing here changes what the program sees: return values and errno of
 * the interposed calls are the real ones (errno is saved around our own
 * setsockopt calls), and a setting the kernel refuses is reported (with
 * VIGIL_RUN_VERBOSE=1) but never fails the call, as DESIGN.md asks of
 * keepalive: best effort, reported, never fatal.
 *
 * Environment (written by tools/cmd-run.c):
 *   VIGIL_RUN_KEEPALIVE  "IDLE_MS,INTERVAL_MS,COUNT,USER_TIMEOUT_MS"
 *                        (0 leaves that option alone); absent or malformed:
 *                        the library does nothing.
 *   VIGIL_RUN_VERBOSE    "1": one line per socket on stderr saying what was
 *                        applied. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vigil.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*socket_fn)(int, int, int);
/* glibc declares accept()'s address as __SOCKADDR_ARG (a transparent union
 * under _GNU_SOURCE); the definitions must match its prototypes exactly. */
typedef int (*accept_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict);
typedef int (*accept4_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict, int);

static vigil_keepalive settings;
static int active = -1; /* -1 not read yet, 0 off, 1 on */
static int verbose;

static int parse_settings(const char *s, vigil_keepalive *ka) {
  unsigned long v[4];
  char *end;
  for (int i = 0; i < 4; i++) {
    v[i] = strtoul(s, &end, 10);
    if (end == s || v[i] > 0xFFFFFFFFul)
      return -1;
    s = end;
    if (i < 3) {
      if (*s != ',')
        return -1;
      s++;
    }
  }
  if (*s != '\0')
    return -1;
  vigil_keepalive_init(ka);
  ka->enable = v[0] > 0 || v[1] > 0 || v[2] > 0;
  ka->idle_ms = (uint32_t)v[0];
  ka->interval_ms = (uint32_t)v[1];
  ka->count = (uint32_t)v[2];
  ka->user_timeout_ms = (uint32_t)v[3];
  return 0;
}

/* Reads the environment once. A race between two threads creating their
 * first sockets at once only parses the same string twice. */
static int load_settings(void) {
  if (active < 0) {
    const char *s = getenv("VIGIL_RUN_KEEPALIVE");
    const char *v = getenv("VIGIL_RUN_VERBOSE");
    verbose = v != NULL && strcmp(v, "1") == 0;
    active = s != NULL && parse_settings(s, &settings) == 0;
    if (s != NULL && !active && verbose)
      fprintf(stderr, "vigil-preload: ignoring malformed VIGIL_RUN_KEEPALIVE '%s'\n", s);
  }
  return active;
}

static int is_tcp(int fd) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0)
    return 0;
  return v == IPPROTO_TCP;
}

static void report(int fd, int rc, const vigil_keepalive_report *r) {
  fprintf(stderr, "vigil-preload: fd %d:", fd);
  for (int o = 0; o < VIGIL_KEEPALIVE_OPT_COUNT_; o++) {
    if (r->status[o] == VIGIL_KEEPALIVE_NOT_REQUESTED)
      continue;
    fprintf(stderr, " %s=%s", vigil_keepalive_option_name((vigil_keepalive_option)o),
            vigil_keepalive_status_name(r->status[o]));
    if (r->status[o] == VIGIL_KEEPALIVE_APPLIED)
      fprintf(stderr, "(%u)", r->applied[o]);
  }
  fprintf(stderr, "%s%s\n", rc != 0 ? ": " : "", rc != 0 ? vigil_strerror(rc) : "");
}

static void apply(int fd) {
  vigil_keepalive_report r;
  int saved = errno, rc;
  if (fd < 0 || !load_settings() || !is_tcp(fd)) {
    errno = saved;
    return;
  }
  rc = vigil_keepalive_apply(fd, &settings, &r);
  if (verbose)
    report(fd, rc, &r);
  errno = saved;
}

/* dlsym returns an object pointer; ISO C has no cast from it to a function
 * pointer, so the bits are copied instead (POSIX guarantees they fit). */
static socket_fn next_socket(void) {
  socket_fn f = NULL;
  void *p = dlsym(RTLD_NEXT, "socket");
  memcpy(&f, &p, sizeof(f));
  return f;
}

static accept_fn next_accept(void) {
  accept_fn f = NULL;
  void *p = dlsym(RTLD_NEXT, "accept");
  memcpy(&f, &p, sizeof(f));
  return f;
}

static accept4_fn next_accept4(void) {
  accept4_fn f = NULL;
  void *p = dlsym(RTLD_NEXT, "accept4");
  memcpy(&f, &p, sizeof(f));
  return f;
}

EXPORT int socket(int domain, int type, int protocol) {
  socket_fn real = next_socket();
  int fd;
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  fd = real(domain, type, protocol);
  if (fd >= 0 && (domain == AF_INET || domain == AF_INET6))
    apply(fd);
  return fd;
}

EXPORT int accept(int sock, __SOCKADDR_ARG addr, socklen_t *__restrict len) {
  accept_fn real = next_accept();
  int fd;
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  fd = real(sock, addr, len);
  apply(fd);
  return fd;
}

EXPORT int accept4(int sock, __SOCKADDR_ARG addr, socklen_t *__restrict len, int flags) {
  accept4_fn real = next_accept4();
  int fd;
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  fd = real(sock, addr, len, flags);
  apply(fd);
  return fd;
}
