/* vigil_evidence_read on a POSIX system without a TCP_INFO this file knows
 * how to read (built wherever no evidence-<os>.c replaces it, and in the
 * VIGIL_GENERIC_POSIX build).
 *
 * The rules in src/evidence.c need the time of the peer kernel's last ACK
 * and what sits unacknowledged; nothing portable says either (FreeBSD's
 * and macOS's TCP_INFO / TCP_CONNECTION_INFO differ from Linux's and would
 * each get their own evidence-<os>.c). So the snapshot is reported as
 * unavailable and the verdict alone decides: silence stays
 * heartbeat_timeout (a stalled peer cannot be told from a vanished one), a
 * kernel ETIMEDOUT is keepalive_timeout, and resets, unreachable routes and
 * ends of stream keep their causes, which come from the socket error. */
#include <stdint.h>
#include <string.h>

#include "evidence.h"

int vigil_evidence_read(vigil_os_socket sock, vigil_tcp_evidence *ev) {
  (void)sock;
  memset(ev, 0, sizeof(*ev));
  ev->snd_wnd = UINT32_MAX;
  return VIGIL_ENOTSUP;
}
