/* Causes from evidence: the rules that turn what the session or the socket
 * said into the cause a death reports.
 *
 * The session engine knows only what arrived on the wire. When a
 * connection dies, the runtime snapshots the kernel's view of the socket
 * (vigil_evidence_read: src/unix/evidence-linux.c reads TCP_INFO,
 * src/unix/evidence-generic.c and src/win/evidence.c have none yet) and
 * these rules decide whether the cause can say more than "silence": was
 * the peer's kernel still ACKing while its application said nothing
 * (peer_stalled), was our data stuck in flight when the kernel gave up
 * (user_timeout), or were keepalive probes unanswered (keepalive_timeout).
 *
 * The rules are pure and portable, kept apart from the snapshot so they
 * are unit-tested on fabricated snapshots (server.evidence_rules) and so a
 * program that drives the session on its own socket (the libuv adapter)
 * reports exactly the causes vigil's own server and client report. Without
 * a snapshot (systems without TCP_INFO) the verdict alone decides: a
 * heartbeat verdict stays heartbeat_timeout, a kernel ETIMEDOUT is
 * keepalive_timeout. The table, with its rationale and known ambiguities,
 * is in docs/RUNTIME.md, "Causes from evidence". */
#include <stddef.h>

#include "evidence.h"

/* Slack for the kernel's jiffy-granular timestamps: an ACK must be at least
 * this much younger than the last valid frame to count as "after" it. */
#define ACK_AFTER_FRAME_SLACK_MS 10u

static int peer_kernel_alive(const vigil_tcp_evidence *ev, const vigil_verdict *v,
                             const char **why) {
  uint64_t silent_ms = v->silent_ns / VIGIL_MS;
  if (ev == NULL || !ev->available || ev->state != VIGIL__TCP_ESTABLISHED)
    return 0;
  /* In the handshake the peer never sent a valid frame: the connection
   * being established and our HELLO acknowledged is the kernel's answer. */
  if (!v->handshake && (uint64_t)ev->last_ack_recv_ms + ACK_AFTER_FRAME_SLACK_MS >= silent_ms)
    return 0; /* no ACK since the last valid frame: the host may be gone */
  if (ev->snd_wnd == 0) {
    *why = "peer's kernel ACKs with a zero window: its application is not reading";
    return 1;
  }
  /* Everything we wrote must have been ACKed, our ping after the peer's
   * last frame included. An ACK after that frame alone proves less: it may
   * be the delayed ACK (40-200 ms) of our answer to it, sent before the
   * path died. A ping the kernel could not even send (the route went down
   * with the link: it waits in the send queue, the probe timer counting)
   * shows in notsent_bytes, not in unacked. */
  if (ev->unacked == 0 && ev->notsent_bytes == 0) {
    *why = "peer's kernel ACKed our probes but its application sent no valid frame";
    return 1;
  }
  return 0; /* our data sits unacknowledged or unsent: silence, not a stall */
}

static vigil_cause classify_timedout(const vigil_verdict *v, const vigil_tcp_evidence *ev,
                                     const char **detail) {
  (void)v;
  if (ev != NULL && ev->available) {
    if (ev->snd_wnd == 0 && ev->unacked == 0 && ev->notsent_bytes > 0) {
      *detail = "peer's window stayed closed past TCP_USER_TIMEOUT";
      return VIGIL_CAUSE_PEER_STALLED;
    }
    if (ev->unacked > 0 || ev->retransmits > 0 || ev->backoff > 0) {
      *detail = "data unacknowledged past TCP_USER_TIMEOUT";
      return VIGIL_CAUSE_USER_TIMEOUT;
    }
    if (ev->probes > 0) {
      *detail = "kernel keepalive probes unanswered";
      return VIGIL_CAUSE_KEEPALIVE_TIMEOUT;
    }
  }
  *detail = "kernel gave up (ETIMEDOUT) while idle";
  return VIGIL_CAUSE_KEEPALIVE_TIMEOUT;
}

static vigil_cause classify_error(const vigil_verdict *v, const vigil_tcp_evidence *ev,
                                  const char **detail) {
  switch (v->error) {
  case VIGIL_EOF:
    *detail = "end of stream without a CLOSE frame";
    return VIGIL_CAUSE_CLOSED;
  case VIGIL_ECONNRESET:
  case VIGIL_EPIPE:
  case VIGIL_ECONNABORTED:
    *detail = "connection reset by the peer";
    return VIGIL_CAUSE_RESET;
  case VIGIL_ECONNREFUSED:
    *detail = "connection refused";
    return VIGIL_CAUSE_RESET;
  case VIGIL_EHOSTUNREACH:
  case VIGIL_ENETUNREACH:
  case VIGIL_ENETDOWN:
    *detail = "no route to the peer (ICMP unreachable)";
    return VIGIL_CAUSE_UNREACHABLE;
  case VIGIL_ETIMEDOUT:
    if (v->connecting) {
      *detail = "no answer to SYN within the connect timeout";
      return VIGIL_CAUSE_UNREACHABLE;
    }
    return classify_timedout(v, ev, detail);
  case VIGIL_ENOMEM:
  case VIGIL_ENOBUFS:
    *detail = "out of memory on this side";
    return VIGIL_CAUSE_LOCAL;
  default:
    *detail = "socket error";
    return VIGIL_CAUSE_RESET;
  }
}

vigil_cause vigil_evidence_classify(const vigil_verdict *v, const vigil_tcp_evidence *ev,
                                    const char **detail) {
  const char *why = NULL;
  if (v->cause == VIGIL_CAUSE_HEARTBEAT_TIMEOUT) {
    if (peer_kernel_alive(ev, v, &why)) {
      *detail = why;
      return VIGIL_CAUSE_PEER_STALLED;
    }
    return VIGIL_CAUSE_HEARTBEAT_TIMEOUT; /* keep the engine's detail */
  }
  if (v->cause != VIGIL_CAUSE_NONE)
    return v->cause;
  return classify_error(v, ev, detail);
}
