#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

/* Failure detectors: pure functions over arrival history. No clock, no I/O.
 * Times are uint64_t nanoseconds on the caller's monotonic clock; the design
 * essay is at the top of src/detector.c.
 *
 * Fixed: dead when nothing arrived for `timeout`.
 * Phi-accrual (Hayashibara et al.): phi(t) = -log10(P(next arrival > t)),
 * with inter-arrival times modelled as normal over a sliding window. phi = 8
 * means "the chance this peer is still alive and merely late is 1e-8".
 *
 * Feed arrival() the frames that pace the peer (each valid frame, per
 * DESIGN.md). A burst of back-to-back frames followed by idle makes the
 * window's mean small: the stddev floor (expected / 4 by default) is what
 * keeps that from convicting a healthy peer that pings only after `interval`
 * of idle, so the engine should still never convict before its fixed floor. */

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define VIGIL_PHI_WINDOW 32
#define VIGIL_PHI_DEFAULT_THRESHOLD 8.0

/* 104 bytes. Samples are 16-bit counts of `unit_us` (expected / 4096,
 * rounded up): resolution 1/4096 of the interval, range 16 x the interval
 * (a longer gap is recorded as 16 x; the verdict came long before). */
typedef struct vigil_phi {
  uint64_t last_ns;                   /* last arrival; meaningful once `started` */
  double threshold;                   /* phi at which the peer is convicted */
  double k;                           /* standard score where phi == threshold */
  uint16_t samples[VIGIL_PHI_WINDOW]; /* ring of inter-arrival times, in units */
  uint32_t unit_us;                   /* one sample unit */
  uint32_t min_stddev_us;             /* floor, so a metronome peer is not convicted by jitter */
  uint8_t count, head, started;
} vigil_phi;

/* Deadline of the fixed detector: last + timeout, saturating at UINT64_MAX. */
VIGIL_EXTERN uint64_t vigil_detector_fixed_deadline(uint64_t last_ns, uint64_t timeout_ns);
/* 1 if dead at `now` under the fixed detector (now >= deadline), else 0.
 * A deadline that saturated at UINT64_MAX is never reached. */
VIGIL_EXTERN int vigil_detector_fixed_dead(uint64_t last_ns, uint64_t timeout_ns, uint64_t now);

/* threshold <= 0 (or not finite) means VIGIL_PHI_DEFAULT_THRESHOLD; larger
 * than 1e6 is taken as 1e6. expected_interval_ms (0 is taken as 1) seeds the
 * history so the first verdicts are sane; min_stddev_ms floors the spread
 * (default expected / 4 when 0). Cannot fail. */
VIGIL_EXTERN void vigil_phi_init(vigil_phi *p, double threshold, uint32_t expected_interval_ms,
                                 uint32_t min_stddev_ms);
/* Records an arrival at `now`. The first one only starts the clock; an
 * arrival earlier than the last one is ignored (time does not run back). */
VIGIL_EXTERN void vigil_phi_arrival(vigil_phi *p, uint64_t now);
/* phi at `now`: 0 with no arrival yet, finite and non-decreasing in `now`
 * (never inf or NaN, however long the silence). */
VIGIL_EXTERN double vigil_phi_value(const vigil_phi *p, uint64_t now);
/* The earliest time at which phi reaches the threshold, or UINT64_MAX with
 * no arrival yet (saturating). */
VIGIL_EXTERN uint64_t vigil_phi_deadline(const vigil_phi *p);
/* The window's mean inter-arrival time and the stddev in use (after the
 * floor), in ns, for reports and logs. */
VIGIL_EXTERN void vigil_phi_stats(const vigil_phi *p, double *mean_ns, double *stddev_ns);

#endif
