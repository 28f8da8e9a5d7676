/* The platform half of vigil_keepalive_apply (src/keepalive.c).
 *
 * Applying a keepalive setting is the same sequence everywhere: for each
 * requested option, find out whether the socket knows it, set it, read it
 * back, compare. That sequence and its bookkeeping live once, in
 * src/keepalive.c. What differs per platform is small, and is all this
 * interface asks for:
 *
 *   - how an option is spelled (level, name, unit), or that this build's
 *     headers have no such option (curl's rule: test the feature macro,
 *     never the OS name);
 *   - getsockopt / setsockopt on an int, with the platform's errors turned
 *     into VIGIL_E* and "this socket has no such option" normalised to
 *     VIGIL_ENOPROTOOPT;
 *   - whatever a platform needs beyond plain socket options (Windows:
 *     WSAIoctl(SIO_KEEPALIVE_VALS), which sets idle and interval in one
 *     call and cannot be read back).
 *
 * Implemented by src/unix/keepalive.c and src/win/keepalive.c. The tests
 * use vigil__keepalive_os_spell to issue their own raw getsockopt calls. */
#ifndef VIGIL_KEEPALIVE_OS_H
#define VIGIL_KEEPALIVE_OS_H

#include <stdint.h>

#include "vigil/keepalive.h"

typedef struct vigil__keepalive_spelling {
  int level;        /* getsockopt level (SOL_SOCKET, IPPROTO_TCP) */
  int name;         /* option name (SO_KEEPALIVE, TCP_KEEPIDLE, ...) */
  uint32_t unit_ms; /* 1000: seconds, 1: milliseconds, 0: a plain number */
} vigil__keepalive_spelling;

/* How opt is spelled here. Returns 0, or VIGIL_ENOTSUP when this build's
 * headers have no such option (the report then says UNSUPPORTED). */
int vigil__keepalive_os_spell(vigil_keepalive_option opt, vigil__keepalive_spelling *sp);

/* getsockopt / setsockopt of an int. Return 0 or a VIGIL_E* code;
 * VIGIL_ENOPROTOOPT means the OS or this socket's protocol does not know
 * the option (ENOPROTOOPT, EOPNOTSUPP, or EINVAL from getsockopt). */
int vigil__keepalive_os_get(vigil_os_socket sock, int level, int name, int *value);
int vigil__keepalive_os_set(vigil_os_socket sock, int level, int name, int value);

/* Runs after SO_KEEPALIVE and before the other socket options, for
 * mechanisms that are not a socket option; records what it did with
 * vigil__keepalive_record. In ka, idle/interval/count are already cleared
 * when enable is 0. An option recorded here is never downgraded to
 * UNSUPPORTED by the socket-option pass that follows. No-op on POSIX. */
void vigil__keepalive_os_extra(vigil_os_socket sock, const vigil_keepalive *ka,
                               vigil_keepalive_report *report);

/* The calling thread's last socket error as a VIGIL_E* code (errno on
 * POSIX, WSAGetLastError on Windows). */
int vigil__keepalive_os_last_error(void);

/* Provided by src/keepalive.c for the platform halves. */

/* ms in whole seconds, rounded up, so a requested time never shrinks (and
 * never becomes 0, which the OS would read as "default"). */
uint32_t vigil__keepalive_seconds(uint32_t ms);

/* Records one
 * option's outcome (applied is in API units: ms for times). */
void vigil__keepalive_record(vigil_keepalive_report *report, vigil_keepalive_option opt,
                             vigil_keepalive_status status, uint32_t applied, int err);

#endif
