/* vigil_evidence_read on Linux: a TCP_INFO snapshot (the rules that use it
 * are in src/evidence.c).
 *
 * struct tcp_info grows with the kernel, so the header we were built with
 * may be newer or older than the running kernel. getsockopt tells us how
 * many bytes it filled; a field is only trusted when it lies wholly inside
 * that length (tcpi_snd_wnd arrived in 5.4, tcpi_notsent_bytes in 4.6).
 * <linux/tcp.h> is used rather than glibc's <netinet/tcp.h> because glibc's
 * copy of the struct stops at tcpi_total_retrans. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include "evidence.h"

#define HAS_FIELD(len, field)                                                                      \
  ((size_t)(len) >= offsetof(struct tcp_info, field) + sizeof(((struct tcp_info *)0)->field))

int vigil_evidence_read(vigil_os_socket sock, vigil_tcp_evidence *ev) {
  struct tcp_info ti;
  socklen_t len = (socklen_t)sizeof(ti);

  memset(ev, 0, sizeof(*ev));
  ev->snd_wnd = UINT32_MAX;
  memset(&ti, 0, sizeof(ti));
  if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return -errno;
  if (!HAS_FIELD(len, tcpi_last_ack_recv))
    return VIGIL_ENOTSUP;
  ev->available = 1;
  ev->state = ti.tcpi_state;
  ev->unacked = ti.tcpi_unacked;
  ev->retransmits = ti.tcpi_retransmits;
  ev->backoff = ti.tcpi_backoff;
  ev->probes = ti.tcpi_probes;
  ev->last_ack_recv_ms = ti.tcpi_last_ack_recv;
  ev->last_data_recv_ms = ti.tcpi_last_data_recv;
  if (HAS_FIELD(len, tcpi_rtt))
    ev->rtt_us = ti.tcpi_rtt;
  if (HAS_FIELD(len, tcpi_notsent_bytes))
    ev->notsent_bytes = ti.tcpi_notsent_bytes;
  if (HAS_FIELD(len, tcpi_snd_wnd))
    ev->snd_wnd = ti.tcpi_snd_wnd;
  return 0;
}
