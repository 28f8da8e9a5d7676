#ifndef VIGIL_SESSION_INTERNAL_H
#define VIGIL_SESSION_INTERNAL_H

/* What the runtime (src/conn.c) asks of a session on every write, cheaper
 * than a whole vigil_session_get_info. */

#include "vigil/session.h"

/* Whether a PING is written and its PONG not yet received
 * (vigil_session_info.ping_outstanding). */
int vigil__session_ping_out(const vigil_session *s);

/* vigil_session_stalled for a loop that stalls with many sessions: a
 * session whose verdict and message deadline are both at least one
 * interval after `now` is left alone (OPEN, not ping_on_schedule), an
 * outstanding ping staying outstanding with its pong giving no RTT sample
 * and no PONG event (its time would include our stall); any other is
 * re-probed as vigil_session_stalled does. Re-probing every session on
 * every stall was a ping storm at 1,000,000 connections (docs/SCALE.md). */
void vigil__session_stalled_lazy(vigil_session *s, uint64_t now);

#endif
