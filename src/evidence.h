/* Cause evidence from the operating system.
 *
 * The session engine knows only what arrived on the wire; when a connection
 * dies the runtime asks the kernel what it saw (Linux: TCP_INFO) so the
 * cause can say more than "silence": was the peer's kernel still ACKing
 * (peer_stalled), was our data stuck in flight (user_timeout), or were
 * keepalive probes unanswered (keepalive_timeout).
 *
 * Two halves: the snapshot is platform code (src/unix/evidence-linux.c,
 * src/win/evidence.c); the rules that turn evidence into a cause are
 * portable and pure (vigil__evidence_classify in src/conn.c) so they are
 * unit-tested on fabricated snapshots. The rules are written out in
 * docs/RUNTIME.md, "Causes from evidence". */
#ifndef VIGIL_EVIDENCE_H
#define VIGIL_EVIDENCE_H

#include <stdint.h>

#include "vigil/os.h"
#include "vigil/conn.h"

/* Kernel TCP state value for an established connection (Linux numbering;
 * other platforms translate to it). */
#define VIGIL__TCP_ESTABLISHED 1

/* Fills *ev with the kernel's view of sock. Returns 0 (ev->available = 1),
 * or VIGIL_ENOTSUP (this platform has no such query) or the socket error,
 * with ev zeroed and ev->available = 0. Never fails the connection. */
int vigil__evidence_tcp(vigil_os_socket sock, vigil_tcp_evidence *ev);

/* What the engine or the socket said, to be refined by evidence. */
typedef struct vigil__verdict {
  vigil_cause cause;   /* the engine's cause, or NONE for a socket error */
  int error;           /* VIGIL_E* from the socket, 0 if none */
  uint64_t silent_ns;  /* since the last valid frame */
  int eof;             /* read() returned 0 */
  int connecting;      /* the TCP connect itself failed */
  int handshake;       /* the verdict came before the handshake completed */
} vigil__verdict;

/* Applies the rules of docs/RUNTIME.md: returns the cause and sets *detail
 * to a static string saying which rule decided. ev may be NULL or
 * unavailable, in which case only the verdict is used. */
vigil_cause vigil__evidence_classify(const vigil__verdict *v, const vigil_tcp_evidence *ev,
                                     const char **detail);

/* The spare descriptor of the EMFILE trick (redis, libev): held while all
 * is well, closed to make room to accept-and-drop a connection when accept
 * fails with EMFILE, then reopened. VIGIL_INVALID_SOCKET where the platform
 * needs none (IOCP drops failed accepts itself). */
vigil_os_socket vigil__spare_open(void);
void vigil__spare_close(vigil_os_socket fd);

#endif
