/* Shared by src/workers.c and the platform supervisors. */
#ifndef VIGIL_WORKERS_INTERNAL_H
#define VIGIL_WORKERS_INTERNAL_H

#include "vigil/workers.h"

#define VIGIL__MAX_WORKERS 1024u

/* The caller's config over the defaults (docs/ABI.md), checked. Returns 0,
 * VIGIL_EINVAL or VIGIL_ENOTSUP. */
int vigil__workers_config_read(vigil_workers_config *out, const vigil_workers_config *in);

#endif
