/* What the runtime calls to keep vigil_metrics (vigil/metrics.h). */
#ifndef VIGIL__METRICS_INTERNAL_H
#define VIGIL__METRICS_INTERNAL_H

#include <stdint.h>

#include "vigil/metrics.h"

/* Counts x (ns) in h, whose bounds are those of kind. */
void vigil__hist_observe(vigil_histogram *h, vigil_histogram_kind kind, uint64_t x);

/* A heartbeat verdict after silent_ns with timeout_ms in force: its
 * lateness into m->lateness, or m->verdicts_early when it came first. */
void vigil__metrics_verdict(vigil_metrics *m, uint64_t silent_ns, uint32_t timeout_ms);

#endif
