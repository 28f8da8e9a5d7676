/* vigil_evidence_read on Windows. Windows 10 1703+ has SIO_TCP_INFO
 * (TCP_INFO_v0: State, BytesInFlight, RttUs, TimeoutEpisodes, ...), which
 * would give most of what the Linux rules use; until it is wired (and
 * testable under wine) the snapshot is reported as unavailable, so causes
 * fall back to what the engine and the socket error say. */
#include <string.h>

#include "evidence.h"

int vigil_evidence_read(vigil_os_socket sock, vigil_tcp_evidence *ev) {
  (void)sock;
  memset(ev, 0, sizeof(*ev));
  ev->snd_wnd = UINT32_MAX;
  return VIGIL_ENOTSUP;
}
