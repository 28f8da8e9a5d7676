/* Failure detector tests: synthetic arrival series on virtual time (ns). */
#include <float.h>
#include <math.h>

#include "task.h"
#include "vigil.h"

#define MS 1000000ull
#define SEC 1000000000ull
/* Q^-1(1e-8): the standard score at which phi reaches 8 (5.6120012...). */
#define K8 5.612001

static uint64_t rng_state;

/* Not inf, not NaN (without isfinite(), which warns under mingw). */
static int real_number(double v) {
  return v >= -DBL_MAX && v <= DBL_MAX;
}

/* Uniform in [-half, +half] ns, deterministic. */
static int64_t jitter(uint64_t half) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  return (int64_t)(z % (2 * half + 1)) - (int64_t)half;
}

/* n arrivals, `period` apart give or take `half`; returns the last time. */
static uint64_t feed(vigil_phi *p, uint64_t start, int n, uint64_t period, uint64_t half) {
  uint64_t t = start;
  int i;
  for (i = 0; i < n; i++) {
    t += period;
    vigil_phi_arrival(p, half ? (uint64_t)((int64_t)t + jitter(half)) : t);
  }
  return p->last_ns;
}

TEST_IMPL(fixed_deadline_saturates) {
  ASSERT_UEQ(vigil_detector_fixed_deadline(100, 50), 150);
  ASSERT_UEQ(vigil_detector_fixed_deadline(UINT64_MAX - 5, 10), UINT64_MAX);
  ASSERT_UEQ(vigil_detector_fixed_deadline(UINT64_MAX - 5, 5), UINT64_MAX);
  ASSERT_UEQ(vigil_detector_fixed_deadline(UINT64_MAX - 5, 4), UINT64_MAX - 1);
  ASSERT_UEQ(vigil_detector_fixed_deadline(1, UINT64_MAX), UINT64_MAX);
  ASSERT_UEQ(vigil_detector_fixed_deadline(0, UINT64_MAX), UINT64_MAX);
  ASSERT_EQ(vigil_detector_fixed_dead(100, 50, 149), 0);
  ASSERT_EQ(vigil_detector_fixed_dead(100, 50, 150), 1);
  ASSERT_EQ(vigil_detector_fixed_dead(UINT64_MAX - 5, 10, UINT64_MAX - 1), 0);
  ASSERT_EQ(vigil_detector_fixed_dead(UINT64_MAX - 5, 10, 7), 0);
  /* A saturated deadline is "never", even for a clock at the end of time. */
  ASSERT_EQ(vigil_detector_fixed_dead(UINT64_MAX - 5, 10, UINT64_MAX), 0);
  ASSERT_EQ(vigil_detector_fixed_dead(UINT64_MAX - 5, 4, UINT64_MAX), 1);
  return 0;
}

/* Regular 1 s arrivals with +-5 ms jitter: phi is small just after an
 * arrival, ~0.3 at the mean, rises with silence, and reaches 8 at
 * mean + 5.612 sigma, sigma being the 250 ms floor (the jitter is far less). */
TEST_IMPL(phi_regular_series) {
  vigil_phi p;
  uint64_t last, d, t, start = 1000 * SEC;
  double mean, sd, prev = -1, want;

  rng_state = 1;
  vigil_phi_init(&p, 0, 1000, 0);
  ASSERT(p.threshold == VIGIL_PHI_DEFAULT_THRESHOLD);
  vigil_phi_arrival(&p, start);
  last = feed(&p, start, 100, SEC, 5 * MS);
  vigil_phi_stats(&p, &mean, &sd);
  ASSERT(fabs(mean - 1e9) < 2 * MS);
  ASSERT(sd == 250.0 * MS);

  ASSERT(vigil_phi_value(&p, last + 10 * MS) < 0.001);
  ASSERT(fabs(vigil_phi_value(&p, last + (uint64_t)mean) - log10(2.0)) < 0.01);
  for (t = last; t <= last + 3 * SEC; t += 100 * MS) {
    double v = vigil_phi_value(&p, t);
    ASSERT(v >= prev);
    prev = v;
  }
  ASSERT(prev > 8.0);

  d = vigil_phi_deadline(&p);
  want = mean + K8 * 250.0 * MS;
  ASSERT(fabs((double)(d - last) - want) < 0.01 * MS);
  ASSERT(vigil_phi_value(&p, d) >= 8.0);
  ASSERT(vigil_phi_value(&p, d) < 8.001);
  ASSERT(vigil_phi_value(&p, d - 1 * MS) < 8.0);
  return 0;
}

/* The same mean with +-600 ms of jitter: the spread beats the floor, so
 * the verdict waits longer; and the deadline is mean + k * sd of what
 * stats() reports. */
TEST_IMPL(phi_jitter_delays_deadline) {
  vigil_phi calm, rough;
  uint64_t last_c, last_r, start = 5 * SEC;
  double mean, sd;

  rng_state = 2;
  vigil_phi_init(&calm, 8, 1000, 0);
  vigil_phi_init(&rough, 8, 1000, 0);
  vigil_phi_arrival(&calm, start);
  vigil_phi_arrival(&rough, start);
  last_c = feed(&calm, start, 64, SEC, 5 * MS);
  last_r = feed(&rough, start, 64, SEC, 600 * MS);
  vigil_phi_stats(&rough, &mean, &sd);
  /* Jitter on both ends of an interval: sd = sqrt(2) * 600 / sqrt(3) = 490 ms. */
  ASSERT(sd > 400.0 * MS);
  ASSERT(sd < 580.0 * MS);
  ASSERT_GT(vigil_phi_deadline(&rough) - last_r, vigil_phi_deadline(&calm) - last_c + 200 * MS);
  ASSERT(fabs(((double)(vigil_phi_deadline(&rough) - last_r) - mean) / sd - K8) < 1e-5);
  /* At one and the same silence, the rough peer is suspected less. */
  ASSERT(vigil_phi_value(&rough, last_r + 2 * SEC) < vigil_phi_value(&calm, last_c + 2 * SEC));
  return 0;
}

/* The window holds exactly the last 32 intervals and the ring wraps: after
 * 40 at 1 s and 40 at 2 s the mean is 2 s; one more at 1 s evicts exactly
 * one 2 s sample. */
TEST_IMPL(phi_window_wraps) {
  vigil_phi p;
  uint64_t last;
  double mean, sd;
  int i;

  vigil_phi_init(&p, 8, 1000, 0);
  vigil_phi_arrival(&p, 0);
  last = feed(&p, 0, 40, SEC, 0);
  last = feed(&p, last, 40, 2 * SEC, 0);
  ASSERT_EQ(p.count, VIGIL_PHI_WINDOW);
  vigil_phi_stats(&p, &mean, &sd);
  ASSERT(fabs(mean - 2e9) < 0.25 * MS);
  ASSERT(sd == 250.0 * MS);
  ASSERT(fabs((double)(vigil_phi_deadline(&p) - last) - (mean + K8 * sd)) < 0.01 * MS);
  last = feed(&p, last, 1, SEC, 0);
  vigil_phi_stats(&p, &mean, &sd);
  ASSERT(fabs(mean - (31 * 2e9 + 1e9) / 32) < 0.25 * MS);
  /* Many more turns of the ring: still 32 samples, all 1 s now. */
  for (i = 0; i < 10; i++)
    last = feed(&p, last, VIGIL_PHI_WINDOW - 3, SEC, 0);
  ASSERT_EQ(p.count, VIGIL_PHI_WINDOW);
  ASSERT_LT(p.head, VIGIL_PHI_WINDOW);
  vigil_phi_stats(&p, &mean, &sd);
  ASSERT(fabs(mean - 1e9) < 0.25 * MS);
  return 0;
}

/* Before any arrival there is nothing to suspect; the first one starts the
 * clock, judged by the seeded history (mean = expected, sd = expected / 4);
 * arrivals from the past are ignored. */
TEST_IMPL(phi_first_arrival_and_seed) {
  vigil_phi p;
  double mean, sd;

  vigil_phi_init(&p, 8, 2000, 0);
  ASSERT_UEQ(vigil_phi_deadline(&p), UINT64_MAX);
  ASSERT(vigil_phi_value(&p, 123 * SEC) == 0.0);
  vigil_phi_arrival(&p, 0); /* time 0 is a time like any other */
  vigil_phi_stats(&p, &mean, &sd);
  ASSERT(fabs(mean - 2e9) < 0.5 * MS);
  ASSERT(fabs(sd - 500.0 * MS) < 0.5 * MS);
  ASSERT(fabs((double)vigil_phi_deadline(&p) - (2e9 + K8 * 500.0 * MS)) < 1 * MS);
  vigil_phi_arrival(&p, 10 * SEC);
  vigil_phi_arrival(&p, 9 * SEC);
  ASSERT_UEQ(p.last_ns, 10 * SEC);
  ASSERT_EQ(p.count, 3);
  return 0;
}

/* phi stays finite, increasing and continuous through the switch to the
 * tail series (at 30 sigma: here 1 s + 30 * 250 ms = 8.5 s) and beyond,
 * to the end of time. */
TEST_IMPL(phi_long_silence_is_finite) {
  static const uint64_t far[] = {10 * SEC,  60 * SEC, 3600 * SEC, 86400 * SEC, ((uint64_t)1 << 62),
                                 UINT64_MAX};
  vigil_phi p;
  uint64_t last, t;
  double prev, v;
  size_t i;

  vigil_phi_init(&p, 8, 1000, 0);
  vigil_phi_arrival(&p, 0);
  last = feed(&p, 0, 40, SEC, 0);
  prev = vigil_phi_value(&p, last + 8400 * MS);
  for (t = last + 8400 * MS; t <= last + 8600 * MS; t += MS / 4) {
    v = vigil_phi_value(&p, t);
    ASSERT(real_number(v));
    ASSERT(v >= prev);
    ASSERT(v - prev < 0.05);
    prev = v;
  }
  for (i = 0; i < sizeof far / sizeof far[0]; i++) {
    v = vigil_phi_value(&p, far[i] > UINT64_MAX - last ? UINT64_MAX : last + far[i]);
    ASSERT(real_number(v));
    ASSERT(v > prev);
    prev = v;
  }
  return 0;
}

/* Thresholds: nonsense means the default, a huge one is capped, a lower one
 * convicts sooner (phi = 1 at Q^-1(0.1) = 1.2816 sigma). A clock near the
 * end of time saturates. */
TEST_IMPL(phi_threshold_and_saturation) {
  vigil_phi p, q;
  uint64_t d8;

  vigil_phi_init(&p, -3.0, 1000, 0);
  ASSERT(p.threshold == VIGIL_PHI_DEFAULT_THRESHOLD);
  vigil_phi_init(&p, NAN, 1000, 0);
  ASSERT(p.threshold == VIGIL_PHI_DEFAULT_THRESHOLD);
  vigil_phi_init(&p, INFINITY, 1000, 0);
  ASSERT(p.threshold == VIGIL_PHI_DEFAULT_THRESHOLD);
  vigil_phi_init(&p, 1e300, 1000, 0);
  ASSERT(p.threshold == 1e6);
  vigil_phi_arrival(&p, 0);
  ASSERT(vigil_phi_value(&p, vigil_phi_deadline(&p)) >= 1e6);

  vigil_phi_init(&p, 8, 1000, 0);
  vigil_phi_init(&q, 1, 1000, 0);
  vigil_phi_arrival(&p, SEC);
  vigil_phi_arrival(&q, SEC);
  d8 = vigil_phi_deadline(&p);
  ASSERT(fabs((double)(vigil_phi_deadline(&q) - SEC) - (1e9 + 1.281552 * 250.0 * MS)) < 0.01 * MS);
  ASSERT_LT(vigil_phi_deadline(&q), d8);

  /* An explicit floor: a metronome with a 10 ms floor is judged tightly. */
  vigil_phi_init(&p, 8, 1000, 10);
  vigil_phi_arrival(&p, 0);
  feed(&p, 0, 64, SEC, 0);
  ASSERT(fabs((double)(vigil_phi_deadline(&p) - p.last_ns) - (1e9 + K8 * 10.0 * MS)) < 0.25 * MS);

  vigil_phi_init(&p, 8, 1000, 0);
  vigil_phi_arrival(&p, UINT64_MAX - SEC);
  ASSERT_UEQ(vigil_phi_deadline(&p), UINT64_MAX);
  /* A zero interval is taken as 1 ms, not a division by zero. */
  vigil_phi_init(&p, 8, 0, 0);
  vigil_phi_arrival(&p, 0);
  vigil_phi_arrival(&p, MS);
  ASSERT_GT(vigil_phi_deadline(&p), MS);
  ASSERT_LT(vigil_phi_deadline(&p), MS + 10 * MS);
  return 0;
}
