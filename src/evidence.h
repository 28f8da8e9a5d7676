/* Cause evidence, internal half. The public API (vigil_evidence_read,
 * vigil_evidence_classify) is in vigil/conn.h; the rules are in
 * src/evidence.c, the snapshot in one platform file per system:
 * src/unix/evidence-linux.c (TCP_INFO), src/unix/evidence-generic.c (POSIX
 * without TCP_INFO), src/win/evidence.c. */
#ifndef VIGIL_EVIDENCE_H
#define VIGIL_EVIDENCE_H

#include "vigil/conn.h"

/* Kernel TCP state value for an established connection (Linux numbering;
 * other platforms translate to it). */
#define VIGIL__TCP_ESTABLISHED 1

#endif
