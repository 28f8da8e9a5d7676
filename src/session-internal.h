#ifndef VIGIL_SESSION_INTERNAL_H
#define VIGIL_SESSION_INTERNAL_H

/* What the runtime (src/conn.c) asks of a session on every write, cheaper
 * than a whole vigil_session_get_info. */

#include "vigil/session.h"

/* Whether a PING is written and its PONG not yet received
 * (vigil_session_info.ping_outstanding). */
int vigil__session_ping_out(const vigil_session *s);

#endif
