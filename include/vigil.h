#ifndef VIGIL_H
#define VIGIL_H

/* vigil: tells a program, quickly and truthfully, when the other end of a
 * long-lived TCP connection is gone, and why.
 *
 * Layers (each usable alone; a lower one never includes an upper one):
 *   vigil/keepalive.h  portable kernel keepalive + TCP_USER_TIMEOUT
 *   vigil/wire.h       protocol v1 frame codec (docs/PROTOCOL.md)
 *   vigil/session.h    sans-I/O liveness engine: bytes + time in, events out
 *   vigil/detector.h   fixed-timeout and phi-accrual detectors
 *   vigil/wheel.h      hierarchical timer wheel
 *   vigil/tls.h        sans-I/O TLS (OpenSSL memory BIOs) under the session
 *   vigil/loop.h       event loop (epoll, poll, IOCP)
 *   vigil/conn.h       a connection: callbacks, death record, evidence
 *   vigil/metrics.h    counters and histograms, Prometheus text exposition
 *   vigil/server.h     server: accept, limits, presence table
 *   vigil/client.h     client: connect, heartbeat, reconnect with backoff
 *   vigil/workers.h    worker processes sharing a port, under a supervisor
 */

#ifdef __cplusplus
extern "C" {
#endif

#include "vigil/version.h"
#include "vigil/errno.h"
#include "vigil/os.h"
#include "vigil/wire.h"
#include "vigil/detector.h"
#include "vigil/session.h"
#include "vigil/wheel.h"
#include "vigil/tls.h"
#include "vigil/token.h"
#include "vigil/keepalive.h"
#include "vigil/loop.h"
#include "vigil/conn.h"
#include "vigil/metrics.h"
#include "vigil/presence.h"
#include "vigil/server.h"
#include "vigil/client.h"
#include "vigil/workers.h"

#ifdef __cplusplus
}
#endif

#endif
