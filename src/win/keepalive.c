/* Windows half of vigil_keepalive_apply.
 *
 * Two mechanisms, both used:
 *
 *   1. WSAIoctl(SIO_KEEPALIVE_VALS), every Windows since 2000: switches
 *      keepalive on and sets idle and interval (milliseconds) in one call.
 *      It has no read-back, so when it succeeds the report says APPLIED
 *      with the requested value (rounded up to whole seconds, as every
 *      platform does, so a budget behaves the same everywhere). It needs
 *      both values: one not requested is read from TCP_KEEPIDLE /
 *      TCP_KEEPINTVL where those exist, else Windows' defaults (2 h, 1 s)
 *      are passed, because the call would otherwise reset it to those.
 *   2. Socket options, Windows 10 1709 and later: TCP_KEEPIDLE,
 *      TCP_KEEPINTVL, TCP_KEEPCNT (seconds / count), and TCP_MAXRT
 *      (seconds; the user-timeout analogue: give up after retransmitting
 *      that long). These can be read back with getsockopt, so where they
 *      exist they replace mechanism 1's blind APPLIED with a checked one.
 *      Older Windows answers WSAENOPROTOOPT / WSAEINVAL: UNSUPPORTED. Without
 *      TCP_KEEPCNT the probe count is fixed at 10 (Vista and later), so a
 *      budget derived for fewer probes is exceeded: the report's COUNT
 *      status tells the caller.
 *
 * mingw-w64's headers lack the option names of mechanism 2; their values
 * are fixed by the Windows SDK (ws2ipdef.h), so they are defined here and
 * the running system decides. */
#include <limits.h>

#include <winsock2.h>
#include <ws2tcpip.h>

#include <mstcpip.h> /* after winsock2.h, whose types it uses */

#include "error.h"
#include "keepalive-os.h"
#include "vigil/errno.h"
#include "vigil/keepalive.h"

#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 3 /* TCP_KEEPALIVE in ws2ipdef.h */
#endif
#ifndef TCP_MAXRT
#define TCP_MAXRT 5
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif

#define DEFAULT_IDLE_S 7200u  /* Windows' KeepAliveTime default */
#define DEFAULT_INTERVAL_S 1u /* Windows' KeepAliveInterval default */

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
    sp->name = TCP_KEEPIDLE;
    return 0;
  case VIGIL_KEEPALIVE_OPT_INTERVAL:
    sp->name = TCP_KEEPINTVL;
    return 0;
  case VIGIL_KEEPALIVE_OPT_COUNT:
    sp->name = TCP_KEEPCNT;
    sp->unit_ms = 0;
    return 0;
  case VIGIL_KEEPALIVE_OPT_USER_TIMEOUT:
    sp->name = TCP_MAXRT;
    return 0;
  default:
    return VIGIL_ENOTSUP;
  }
}

int vigil__keepalive_os_last_error(void) {
  return vigil__win_sock_error();
}

int vigil__keepalive_os_get(vigil_os_socket sock, int level, int name, int *value) {
  int len = (int)sizeof *value, err;
  *value = 0; /* some options write a 1-byte BOOLEAN: keep the rest zero */
  if (getsockopt((SOCKET)sock, level, name, (char *)value, &len) == 0)
    return 0;
  err = WSAGetLastError();
  if (err == WSAENOPROTOOPT || err == WSAEINVAL || err == WSAEOPNOTSUPP)
    return VIGIL_ENOPROTOOPT;
  return vigil__win_error((unsigned long)err);
}

int vigil__keepalive_os_set(vigil_os_socket sock, int level, int name, int value) {
  int err;
  if (setsockopt((SOCKET)sock, level, name, (const char *)&value, (int)sizeof value) == 0)
    return 0;
  err = WSAGetLastError();
  if (err == WSAENOPROTOOPT || err == WSAEOPNOTSUPP)
    return VIGIL_ENOPROTOOPT;
  return vigil__win_error((unsigned long)err);
}

/* The current value of a seconds option, or fallback where it cannot be read. */
static u_long current_seconds(vigil_os_socket sock, int name, u_long fallback) {
  int v = 0;
  if (vigil__keepalive_os_get(sock, IPPROTO_TCP, name, &v) == 0 && v > 0)
    return (u_long)v;
  return fallback;
}

static u_long seconds_to_ms(u_long s) {
  return s > ULONG_MAX / 1000 ? ULONG_MAX : s * 1000;
}

/* False only when the socket says it is not SOCK_STREAM; a socket that
 * cannot answer goes on to WSAIoctl, whose error is then reported. */
static int maybe_stream(vigil_os_socket sock) {
  int type = 0;
  if (vigil__keepalive_os_get(sock, SOL_SOCKET, SO_TYPE, &type) != 0)
    return 1;
  return type == SOCK_STREAM;
}

void vigil__keepalive_os_extra(vigil_os_socket sock, const vigil_keepalive *ka,
                               vigil_keepalive_report *report) {
  struct tcp_keepalive vals;
  DWORD bytes = 0;
  u_long idle_s, interval_s;
  int rc, err;

  if (!ka->enable || (ka->idle_ms == 0 && ka->interval_ms == 0))
    return;
  if (!maybe_stream(sock)) {
    /* A UDP socket has no keepalive to tune (WSAIoctl says WSAEINVAL):
     * UNSUPPORTED, as Linux's ENOPROTOOPT makes it there. */
    if (ka->idle_ms)
      vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_IDLE, VIGIL_KEEPALIVE_UNSUPPORTED, 0, 0);
    if (ka->interval_ms)
      vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_INTERVAL, VIGIL_KEEPALIVE_UNSUPPORTED, 0,
                              0);
    return;
  }
  idle_s = ka->idle_ms ? vigil__keepalive_seconds(ka->idle_ms)
                       : current_seconds(sock, TCP_KEEPIDLE, DEFAULT_IDLE_S);
  interval_s = ka->interval_ms ? vigil__keepalive_seconds(ka->interval_ms)
                               : current_seconds(sock, TCP_KEEPINTVL, DEFAULT_INTERVAL_S);
  vals.onoff = 1;
  vals.keepalivetime = seconds_to_ms(idle_s);
  vals.keepaliveinterval = seconds_to_ms(interval_s);
  rc = WSAIoctl((SOCKET)sock, SIO_KEEPALIVE_VALS, &vals, sizeof vals, NULL, 0, &bytes, NULL, NULL);
  if (rc == 0) {
    if (ka->idle_ms)
      vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_IDLE, VIGIL_KEEPALIVE_APPLIED,
                              (uint32_t)vals.keepalivetime, 0);
    if (ka->interval_ms)
      vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_INTERVAL, VIGIL_KEEPALIVE_APPLIED,
                              (uint32_t)vals.keepaliveinterval, 0);
    return;
  }
  err = vigil__keepalive_os_last_error();
  if (ka->idle_ms)
    vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_IDLE, VIGIL_KEEPALIVE_FAILED, 0, err);
  if (ka->interval_ms)
    vigil__keepalive_record(report, VIGIL_KEEPALIVE_OPT_INTERVAL, VIGIL_KEEPALIVE_FAILED, 0, err);
}
