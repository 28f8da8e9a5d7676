/* Failure detectors: when to stop believing a silent peer is alive.
 *
 * Both are pure functions of the arrival history and the time asked about;
 * the session engine owns the clock and calls them.
 *
 * Fixed. Dead when nothing valid arrived for `timeout`: the deadline is
 * last + timeout, saturating at UINT64_MAX so a huge timeout means "never"
 * rather than wrapping into the past and convicting at once. "Never" holds
 * even for a clock that reaches UINT64_MAX itself.
 *
 * Phi-accrual (Hayashibara, Defago, Yared, Katayama, 2004). Instead of a
 * yes/no timeout it reports a suspicion level: if inter-arrival times were
 * normal with the window's mean mu and stddev sigma, how unlikely is it that
 * the next frame has still not come after a silence of d?
 *   phi(d) = -log10(Q((d - mu) / sigma)),  Q(y) = P(Z > y) = erfc(y / sqrt 2) / 2
 * So phi = 8 means a one-in-1e8 chance that a live peer is merely this late.
 * A steady peer gets a tight verdict, a jittery link a patient one, without
 * anyone tuning a timeout per link.
 *
 * The history. A ring of the last VIGIL_PHI_WINDOW (32) inter-arrival times.
 * To keep the per-connection state small (DESIGN.md budgets 128 bytes per
 * idle connection) each sample is 16 bits in a unit chosen at init, 1/4096 of
 * the expected interval: 1 s intervals are recorded to 0.25 ms, and a gap up
 * to 16 intervals fits (longer saturates; by then the verdict is long past).
 * Mean and variance are recomputed from the ring on demand with exact
 * integer sums: no drift, as a running floating-point update would have, and
 * a 32-sample loop is cheap next to the I/O that delivered the frame.
 *
 * Seeding. init() puts two samples in the ring, expected * 3/4 and * 5/4:
 * mean = expected, stddev = expected / 4, the estimate Akka also starts
 * from. They age out after 32 real arrivals; until then they widen the
 * spread, which delays verdicts, never hastens them.
 *
 * The floor. sigma = max(sample stddev, min_stddev). A metronome peer on a
 * quiet LAN has a stddev near zero, and without a floor one late frame (a GC
 * pause, a retransmit) would be a 100-sigma event. The default floor is
 * expected / 4.
 *
 * The tail. erfc underflows to 0 near y = 38, where -log10 would return
 * +inf. Clamping phi to a constant there would make it flat, and a flat phi
 * no longer orders "late" against "very late". Above y = 30 we use instead
 * the asymptotic series of the normal tail,
 *   ln Q(y) = -y^2/2 - ln y - ln(2 pi)/2 + ln(1 - 1/y^2 + 3/y^4 - 15/y^6 ...)
 * (relative error below 1e-9 there), so phi stays finite and increasing for
 * any finite silence.
 *
 * The deadline. phi(d) = threshold solves to d = mu + k * sigma, where k =
 * Q^-1(10^-threshold) depends on the threshold alone. So init() solves for k
 * once, by bisection over [-40, sqrt(2 threshold ln 10) + 1] (Q(y) <=
 * exp(-y^2/2) / 2 bounds the root from above) to a relative width of 1e-12,
 * keeping the upper end, where phi >= threshold; deadline() is then
 * last + ceil(mu + k sigma), so phi at the deadline is at least the
 * threshold: a caller who sleeps until then never convicts early. For the
 * default threshold 8, k = 5.612. */
#include "vigil/detector.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define SAMPLE_MAX 65535u
#define UNITS_PER_INTERVAL 4096u
#define MAX_THRESHOLD 1e6
#define TAIL_Y 30.0
#define LN10 2.302585092994045684
#define LN_SQRT_2PI 0.918938533204672742
#define SQRT1_2 0.707106781186547524

uint64_t vigil_detector_fixed_deadline(uint64_t last_ns, uint64_t timeout_ns) {
  if (timeout_ns > UINT64_MAX - last_ns)
    return UINT64_MAX;
  return last_ns + timeout_ns;
}

int vigil_detector_fixed_dead(uint64_t last_ns, uint64_t timeout_ns, uint64_t now) {
  uint64_t deadline = vigil_detector_fixed_deadline(last_ns, timeout_ns);
  /* UINT64_MAX is "never": a clock reading it has not waited `timeout`. */
  return deadline != UINT64_MAX && now >= deadline;
}

/* phi for a standard score y: -log10 Q(y). */
static double phi_of_score(double y) {
  double r;
  if (y <= TAIL_Y) {
    double v = -log10(0.5 * erfc(y * SQRT1_2));
    return v > 0.0 ? v : 0.0;
  }
  r = 1.0 / (y * y);
  return (0.5 * y * y + log(y) + LN_SQRT_2PI - log1p(-r + 3.0 * r * r - 15.0 * r * r * r)) / LN10;
}

/* k with phi_of_score(k) >= threshold, within 1e-12 of the root. */
static double solve_score(double threshold) {
  double lo = -40.0, hi = sqrt(2.0 * threshold * LN10) + 1.0;
  int i;
  for (i = 0; i < 200 && hi - lo > 1e-12 * (fabs(hi) > 1.0 ? fabs(hi) : 1.0); i++) {
    double mid = lo + (hi - lo) / 2;
    if (phi_of_score(mid) >= threshold)
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

static uint16_t to_units(const vigil_phi *p, uint64_t ns) {
  uint64_t unit_ns = (uint64_t)p->unit_us * 1000u;
  uint64_t units = ns / unit_ns + (ns % unit_ns >= unit_ns / 2);
  return (uint16_t)(units > SAMPLE_MAX ? SAMPLE_MAX : units);
}

void vigil_phi_init(vigil_phi *p, double threshold, uint32_t expected_interval_ms,
                    uint32_t min_stddev_ms) {
  uint64_t expected_us = (uint64_t)(expected_interval_ms ? expected_interval_ms : 1) * 1000u;
  uint64_t floor_us = min_stddev_ms ? (uint64_t)min_stddev_ms * 1000u : expected_us / 4;

  /* Written as one comparison that NaN and infinity both fail (mingw's
   * isfinite() converts to float and warns). */
  if (!(threshold > 0.0 && threshold <= DBL_MAX))
    threshold = VIGIL_PHI_DEFAULT_THRESHOLD;
  if (threshold > MAX_THRESHOLD)
    threshold = MAX_THRESHOLD;
  memset(p, 0, sizeof *p);
  p->threshold = threshold;
  p->k = solve_score(threshold);
  p->unit_us = (uint32_t)((expected_us + UNITS_PER_INTERVAL - 1) / UNITS_PER_INTERVAL);
  p->min_stddev_us = (uint32_t)(floor_us > UINT32_MAX ? UINT32_MAX : (floor_us ? floor_us : 1));
  p->samples[0] = to_units(p, expected_us * 1000u * 3 / 4);
  p->samples[1] = to_units(p, expected_us * 1000u * 5 / 4);
  p->count = 2;
  p->head = 2;
}

void vigil_phi_arrival(vigil_phi *p, uint64_t now) {
  if (!p->started) {
    p->started = 1;
    p->last_ns = now;
    return;
  }
  if (now < p->last_ns || p->unit_us == 0)
    return;
  p->samples[p->head] = to_units(p, now - p->last_ns);
  p->head = (uint8_t)((p->head + 1) % VIGIL_PHI_WINDOW);
  if (p->count < VIGIL_PHI_WINDOW)
    p->count++;
  p->last_ns = now;
}

/* 0 for a struct that was never initialised (no samples), else 1. */
static int window_stats(const vigil_phi *p, double *mean_ns, double *stddev_ns) {
  uint64_t sum = 0, sumsq = 0, n = p->count, var_n2;
  double unit_ns = (double)p->unit_us * 1000.0, sd;
  unsigned i;
  if (n == 0 || n > VIGIL_PHI_WINDOW || p->unit_us == 0)
    return 0;
  for (i = 0; i < n; i++) {
    sum += p->samples[i];
    sumsq += (uint64_t)p->samples[i] * p->samples[i];
  }
  /* n^2 * variance, exact: n * sumsq <= 32 * 32 * 65535^2 < 2^42. */
  var_n2 = n * sumsq - sum * sum;
  *mean_ns = (double)sum / (double)n * unit_ns;
  sd = sqrt((double)var_n2) / (double)n * unit_ns;
  *stddev_ns = sd > (double)p->min_stddev_us * 1000.0 ? sd : (double)p->min_stddev_us * 1000.0;
  return 1;
}

double vigil_phi_value(const vigil_phi *p, uint64_t now) {
  double mean, sd, silence;
  if (!p->started || !window_stats(p, &mean, &sd))
    return 0.0;
  silence = now > p->last_ns ? (double)(now - p->last_ns) : 0.0;
  return phi_of_score((silence - mean) / sd);
}

uint64_t vigil_phi_deadline(const vigil_phi *p) {
  double mean, sd, after;
  uint64_t ns;
  if (!p->started || !window_stats(p, &mean, &sd))
    return UINT64_MAX;
  after = ceil(mean + p->k * sd);
  if (!(after > 0.0))
    return p->last_ns;
  if (after >= 18446744073709551616.0) /* 2^64: not representable */
    return UINT64_MAX;
  ns = (uint64_t)after;
  return vigil_detector_fixed_deadline(p->last_ns, ns);
}

void vigil_phi_stats(const vigil_phi *p, double *mean_ns, double *stddev_ns) {
  if (!window_stats(p, mean_ns, stddev_ns)) {
    *mean_ns = 0.0;
    *stddev_ns = 0.0;
  }
}
