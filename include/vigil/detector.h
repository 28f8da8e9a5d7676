#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

/* Failure detectors: pure functions over arrival history. No clock, no I/O.
 *
 * Fixed: dead when nothing arrived for `timeout`.
 * Phi-accrual (Hayashibara et al.): phi(t) = -log10(P(next arrival > t)),
 * with inter-arrival times modelled as normal over a sliding window. phi = 8
 * means "the chance this peer is still alive and merely late is 1e-8". */

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define VIGIL_PHI_WINDOW 32
#define VIGIL_PHI_DEFAULT_THRESHOLD 8.0

typedef struct vigil_phi {
  uint64_t last_ns;                       /* last arrival, 0 = none yet */
  uint32_t intervals_us[VIGIL_PHI_WINDOW]; /* ring of inter-arrival times */
  uint32_t min_stddev_us;                  /* floor, so a metronome peer is not convicted by jitter */
  uint8_t count, head;
  double threshold;
} vigil_phi;

/* Deadline of the fixed detector: last + timeout, saturating. */
VIGIL_EXTERN uint64_t vigil_detector_fixed_deadline(uint64_t last_ns, uint64_t timeout_ns);
/* 1 if dead at `now` under the fixed detector (now >= deadline). */
VIGIL_EXTERN int vigil_detector_fixed_dead(uint64_t last_ns, uint64_t timeout_ns, uint64_t now);

/* threshold <= 0 means VIGIL_PHI_DEFAULT_THRESHOLD. expected_interval_ms
 * seeds the history so the first verdicts are sane; min_stddev_ms floors the
 * spread (default expected / 4 when 0). */
VIGIL_EXTERN void vigil_phi_init(vigil_phi *p, double threshold, uint32_t expected_interval_ms,
                                 uint32_t min_stddev_ms);
VIGIL_EXTERN void vigil_phi_arrival(vigil_phi *p, uint64_t now);
VIGIL_EXTERN double vigil_phi_value(const vigil_phi *p, uint64_t now);
/* The earliest time at which phi reaches the threshold, or UINT64_MAX with
 * no arrival yet. */
VIGIL_EXTERN uint64_t vigil_phi_deadline(const vigil_phi *p);

#endif
