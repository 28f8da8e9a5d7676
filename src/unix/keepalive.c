/* POSIX half of vigil_keepalive_apply: how each option is spelled here,
 * chosen by feature macro rather than by OS name, so one file serves Linux,
 * the BSDs and macOS:
 *
 *   idle          TCP_KEEPIDLE (Linux, FreeBSD, NetBSD), else TCP_KEEPALIVE
 *                 (macOS's name for the same thing), seconds
 *   interval      TCP_KEEPINTVL, seconds
 *   count         TCP_KEEPCNT
 *   user timeout  TCP_USER_TIMEOUT (Linux, milliseconds), else
 *                 TCP_RXT_CONNDROPTIME (macOS, seconds: drop the connection
 *                 after retransmitting for that long; not tested here)
 *
 * OpenBSD has none of the TCP-level ones (only system-wide sysctls): the
 * report says UNSUPPORTED and SO_KEEPALIVE alone is applied. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "keepalive-os.h"
#include "vigil/errno.h"
#include "vigil/keepalive.h"

int vigil__keepalive_os_spell(vigil_keepalive_option opt, vigil__keepalive_spelling *sp) {
  sp->level = IPPROTO_TCP;
  sp->unit_ms = 1000;
  switch (opt) {
  case VIGIL_KEEPALIVE_OPT_ENABLE:
    sp->level = SOL_SOCKET;
    sp->name = SO_KEEPALIVE;
    sp->unit_ms = 0;
    return 0;
  case VIGIL_KEEPALIVE_OPT_IDLE:
#if defined(TCP_KEEPIDLE)
    sp->name = TCP_KEEPIDLE;
    return 0;
#elif defined(TCP_KEEPALIVE)
    sp->name = TCP_KEEPALIVE;
    return 0;
#else
    return VIGIL_ENOTSUP;
#endif
  case VIGIL_KEEPALIVE_OPT_INTERVAL:
#if defined(TCP_KEEPINTVL)
    sp->name = TCP_KEEPINTVL;
    return 0;
#else
    return VIGIL_ENOTSUP;
#endif
  case VIGIL_KEEPALIVE_OPT_COUNT:
#if defined(TCP_KEEPCNT)
    sp->name = TCP_KEEPCNT;
    sp->unit_ms = 0;
    return 0;
#else
    return VIGIL_ENOTSUP;
#endif
  case VIGIL_KEEPALIVE_OPT_USER_TIMEOUT:
#if defined(TCP_USER_TIMEOUT)
    sp->name = TCP_USER_TIMEOUT;
    sp->unit_ms = 1;
    return 0;
#elif defined(TCP_RXT_CONNDROPTIME)
    sp->name = TCP_RXT_CONNDROPTIME;
    return 0;
#else
    return VIGIL_ENOTSUP;
#endif
  default:
    return VIGIL_ENOTSUP;
  }
}

/* errno values meaning "no such option here": a TCP option on a UDP or
 * AF_UNIX socket, or an option this kernel predates. */
static int unknown_option(int e) {
  if (e == ENOPROTOOPT || e == EOPNOTSUPP)
    return 1;
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP /* one value on Linux */
  if (e == ENOTSUP)
    return 1;
#endif
  return 0;
}

/* errno as a VIGIL_E* code. A descriptor that is not a socket is EBADF, as
 * keepalive.h promises and Windows' WSAENOTSOCK maps: ENOTSOCK has no
 * VIGIL_E* name of its own. */
static int os_error(int e) {
  return e == ENOTSOCK ? VIGIL_EBADF : -e;
}

int vigil__keepalive_os_get(vigil_os_socket sock, int level, int name, int *value) {
  socklen_t len = (socklen_t)sizeof *value;
  *value = 0;
  if (getsockopt(sock, level, name, value, &len) == 0)
    return 0;
  /* getsockopt has no value to reject, so EINVAL means the name. */
  if (unknown_option(errno) || errno == EINVAL)
    return VIGIL_ENOPROTOOPT;
  return os_error(errno);
}

int vigil__keepalive_os_set(vigil_os_socket sock, int level, int name, int value) {
  if (setsockopt(sock, level, name, &value, (socklen_t)sizeof value) == 0)
    return 0;
  if (unknown_option(errno))
    return VIGIL_ENOPROTOOPT;
  return os_error(errno); /* EINVAL here: the value was refused */
}

void vigil__keepalive_os_extra(vigil_os_socket sock, const vigil_keepalive *ka,
                               vigil_keepalive_report *report) {
  (void)sock;
  (void)ka;
  (void)report;
}

int vigil__keepalive_os_last_error(void) {
  return errno == 0 ? VIGIL_EPROTO : os_error(errno);
}
