/* Portable kernel keepalive and TCP_USER_TIMEOUT: budget derivation,
 * apply-and-read-back bookkeeping, names. The platform halves
 * (src/unix/keepalive.c, src/win/keepalive.c) only spell options and make
 * the system calls; see src/keepalive-os.h.
 *
 * What the kernel does (Linux tcp(7), net/ipv4/tcp_timer.c,
 * tcp_keepalive_timer). Let T be the time since the last segment received.
 * While nothing is in flight, the keepalive timer sends a probe once T
 * reaches idle, then one every interval. Without TCP_USER_TIMEOUT the
 * connection is aborted (ETIMEDOUT) at the first timer run that finds
 * `count` probes already unanswered, i.e. at T = idle + count * interval.
 * With TCP_USER_TIMEOUT = U set, the count is ignored: the timer aborts at
 * its first run with T >= U and at least one probe out. The timer only
 * runs at idle + k * interval, so if U falls between two runs the abort
 * slips to the next run: setting U larger than idle + count * interval
 * does not extend detection by the difference but by up to one interval
 * more than U. While data is in flight the keepalive timer stands aside and
 * the retransmission timer gives up once data has been unacknowledged for
 * U. All three knobs are whole seconds on Linux (TCP_KEEPIDLE,
 * TCP_KEEPINTVL at most 32767, TCP_KEEPCNT at most 127); U is milliseconds.
 *
 * The budget rule ("dead within D ms, tolerate N lost probes"):
 *
 *   S        = floor(D / 1000)                 whole seconds of budget
 *   count    = N + 1                           the (N+1)th loss convicts
 *   interval = floor(S / (count + 1))          seconds, >= 1
 *   idle     = S - count * interval            seconds, >= interval
 *   user_timeout = (idle + count * interval) * 1000 = S * 1000 ms
 *
 * so idle + count * interval = S exactly: the probe schedule and the user
 * timeout end at the same instant, U never makes the abort slip past a
 * timer run, and KEEPCNT (ignored on Linux once U is set) still describes
 * what happens on systems without U. Guarantees, up to kernel timer slack:
 *   - an idle connection whose peer went silent is aborted S s after the
 *     last segment received, and never sooner;
 *   - N lost probes are tolerated: abortion needs N + 1 unanswered probes
 *     (an answered probe restarts the clock);
 *   - data unacknowledged for S s aborts the connection too;
 *   - idle >= interval >= 1 s: healthy idle connections are probed no more
 *     often than every idle seconds.
 * S >= count + 1 = N + 2 is required (interval and idle >= 1 s), else
 * VIGIL_EINVAL; so is N <= 126 (Linux's KEEPCNT limit). Budgets so large
 * that interval would pass 32767 s get interval = 32767 and idle capped at
 * 32767: the kernel then fires sooner than D, never later. The sub-second
 * part of D is dropped (rounded down), never added.
 *
 * Units: the API speaks milliseconds; idle and interval are converted to
 * whole seconds rounding UP (vigil__keepalive_seconds), so a request is
 * never silently shortened and never becomes 0 (= "system default"). A
 * report's applied value is the read-back converted back to ms, so 1500 ms
 * requested reads 2000 ms applied, with status APPLIED. */
#include <limits.h>
#include <string.h>

#include "abi.h"
#include "keepalive-os.h"
#include "vigil/errno.h"
#include "vigil/keepalive.h"

#define MAX_KEEPCNT 127u     /* Linux MAX_TCP_KEEPCNT, the smallest known */
#define MAX_KEEP_SECS 32767u /* Linux MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL */

void vigil_keepalive_init_sized(vigil_keepalive *ka, size_t size) {
  vigil_keepalive off;
  memset(&off, 0, sizeof off);
  vigil__opts_init(ka, size, &off, sizeof off);
}

int vigil_keepalive_from_budget_sized(vigil_keepalive *ka, size_t size, uint32_t budget_ms,
                                      uint32_t lost_probes) {
  vigil_keepalive k;
  uint32_t secs, count, interval, idle;

  if (ka == NULL || size < sizeof(size_t) || lost_probes >= MAX_KEEPCNT)
    return VIGIL_EINVAL;
  secs = budget_ms / 1000;
  count = lost_probes + 1;
  if (secs < count + 1)
    return VIGIL_EINVAL;
  interval = secs / (count + 1);
  if (interval > MAX_KEEP_SECS)
    interval = MAX_KEEP_SECS;
  idle = secs - count * interval;
  if (idle > MAX_KEEP_SECS)
    idle = MAX_KEEP_SECS;
  memset(&k, 0, sizeof k);
  k.enable = 1;
  k.idle_ms = idle * 1000;
  k.interval_ms = interval * 1000;
  k.count = count;
  k.user_timeout_ms = (idle + count * interval) * 1000;
  vigil__opts_init(ka, size, &k, sizeof k);
  return 0;
}

/* Sizing for a lossy path. A probe round trip fails with
 * q = 1 - (1 - loss)^2; an idle connection dies after `count` consecutive
 * failures; every answered probe restarts the idle wait, so a horizon H
 * holds at most H / idle probe series, each of which kills with probability
 * at most q^count: E[false deaths] <= (H / idle) * q^count. This is the
 * union bound (it drops the factor 1 - q for the answer that ends a
 * series), so it errs on the safe side. Keepalive probes are not
 * retransmitted, so no RTO backoff enters; losses are taken independent.
 * q^count by repeated multiplication: no libm, count <= 127. */
double vigil_keepalive_false_deaths(double loss, uint32_t count, uint32_t idle_s,
                                    uint32_t horizon_s) {
  double q, qn = 1.0;
  uint32_t i;

  if (!(loss >= 0.0 && loss < 1.0) || idle_s == 0 || count == 0)
    return -1.0;
  q = 1.0 - (1.0 - loss) * (1.0 - loss);
  for (i = 0; i < count; i++)
    qn *= q;
  return (double)horizon_s / (double)idle_s * qn;
}

int vigil_keepalive_count_for_loss(double loss, uint32_t idle_s, uint32_t horizon_s,
                                   double max_false_deaths, uint32_t *count) {
  uint32_t n;

  if (count == NULL || !(loss >= 0.0 && loss < 1.0) || idle_s == 0 || !(max_false_deaths > 0.0))
    return VIGIL_EINVAL;
  for (n = 1; n <= MAX_KEEPCNT; n++) {
    if (vigil_keepalive_false_deaths(loss, n, idle_s, horizon_s) <= max_false_deaths) {
      *count = n;
      return 0;
    }
  }
  return VIGIL_ERANGE;
}

uint32_t vigil__keepalive_seconds(uint32_t ms) {
  return ms / 1000 + (ms % 1000 != 0);
}

void vigil__keepalive_record(vigil_keepalive_report *report, vigil_keepalive_option opt,
                             vigil_keepalive_status status, uint32_t applied, int err) {
  report->status[opt] = status;
  report->applied[opt] = applied;
  report->error[opt] = err;
}

/* The value ka asks for, in API units; 0 means "leave as is", except for
 * enable, which is always applied. */
static uint32_t requested(const vigil_keepalive *ka, vigil_keepalive_option opt) {
  switch (opt) {
  case VIGIL_KEEPALIVE_OPT_ENABLE:
    return ka->enable != 0;
  case VIGIL_KEEPALIVE_OPT_IDLE:
    return ka->idle_ms;
  case VIGIL_KEEPALIVE_OPT_INTERVAL:
    return ka->interval_ms;
  case VIGIL_KEEPALIVE_OPT_COUNT:
    return ka->count;
  case VIGIL_KEEPALIVE_OPT_USER_TIMEOUT:
    return ka->user_timeout_ms;
  default:
    return 0;
  }
}

static uint32_t to_os_units(uint32_t value, uint32_t unit_ms) {
  if (unit_ms <= 1)
    return value;
  return value / unit_ms + (value % unit_ms != 0);
}

static uint32_t from_os_units(int value, uint32_t unit_ms) {
  uint64_t v = value < 0 ? 0 : (uint64_t)value;
  if (unit_ms > 1)
    v *= unit_ms;
  return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Probe, set, read back. Probing first with getsockopt tells "the OS has
 * no such option" (UNSUPPORTED) apart from "the OS refused this value"
 * (FAILED), which setsockopt alone reports with the same EINVAL. */
static void apply_sockopt(vigil_os_socket sock, vigil_keepalive_option opt, uint32_t value,
                          vigil_keepalive_report *report) {
  vigil__keepalive_spelling sp;
  uint32_t want;
  int got = 0, err;

  if (vigil__keepalive_os_spell(opt, &sp) != 0) {
    vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_UNSUPPORTED, 0, 0);
    return;
  }
  want = to_os_units(value, sp.unit_ms);
  if (want > INT_MAX) {
    vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_FAILED, 0, VIGIL_EINVAL);
    return;
  }
  err = vigil__keepalive_os_get(sock, sp.level, sp.name, &got);
  if (err == 0)
    err = vigil__keepalive_os_set(sock, sp.level, sp.name, (int)want);
  if (err == 0)
    err = vigil__keepalive_os_get(sock, sp.level, sp.name, &got);
  if (err == VIGIL_ENOPROTOOPT) {
    /* Keep what another mechanism (SIO_KEEPALIVE_VALS) already did. */
    if (report->status[opt] == VIGIL_KEEPALIVE_NOT_REQUESTED)
      vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_UNSUPPORTED, 0, 0);
    return;
  }
  if (err != 0) {
    vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_FAILED, 0, err);
    return;
  }
  if (opt == VIGIL_KEEPALIVE_OPT_ENABLE)
    got = got != 0; /* Windows reads back a BOOL, Linux 1 */
  if ((uint32_t)got == want)
    vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_APPLIED, from_os_units(got, sp.unit_ms),
                            0);
  else /* taken, but clamped or changed: say so rather than pretend */
    vigil__keepalive_record(report, opt, VIGIL_KEEPALIVE_FAILED, from_os_units(got, sp.unit_ms),
                            VIGIL_ERANGE);
}

int vigil_keepalive_apply(vigil_os_socket sock, const vigil_keepalive *ka,
                          vigil_keepalive_report *report) {
  vigil_keepalive_report local;
  vigil_keepalive req;
  int opt, err;

  if (report == NULL)
    report = &local;
  memset(report, 0, sizeof *report);
  memset(&req, 0, sizeof req);
  err = vigil__opts_read(&req, sizeof req, ka);
  if (err != 0)
    return err;
  if (!req.enable) { /* probes that will never be sent: leave them alone */
    req.idle_ms = 0;
    req.interval_ms = 0;
    req.count = 0;
  }
  apply_sockopt(sock, VIGIL_KEEPALIVE_OPT_ENABLE, requested(&req, VIGIL_KEEPALIVE_OPT_ENABLE),
                report);
  vigil__keepalive_os_extra(sock, &req, report);
  for (opt = VIGIL_KEEPALIVE_OPT_IDLE; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++) {
    uint32_t value = requested(&req, (vigil_keepalive_option)opt);
    if (value != 0)
      apply_sockopt(sock, (vigil_keepalive_option)opt, value, report);
  }
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++)
    if (report->status[opt] == VIGIL_KEEPALIVE_FAILED)
      return report->error[opt];
  return 0;
}

const char *vigil_keepalive_option_name(vigil_keepalive_option opt) {
  switch (opt) {
  case VIGIL_KEEPALIVE_OPT_ENABLE:
    return "enable";
  case VIGIL_KEEPALIVE_OPT_IDLE:
    return "idle";
  case VIGIL_KEEPALIVE_OPT_INTERVAL:
    return "interval";
  case VIGIL_KEEPALIVE_OPT_COUNT:
    return "count";
  case VIGIL_KEEPALIVE_OPT_USER_TIMEOUT:
    return "user_timeout";
  default:
    return "unknown";
  }
}

const char *vigil_keepalive_status_name(vigil_keepalive_status st) {
  switch (st) {
  case VIGIL_KEEPALIVE_NOT_REQUESTED:
    return "not_requested";
  case VIGIL_KEEPALIVE_APPLIED:
    return "applied";
  case VIGIL_KEEPALIVE_UNSUPPORTED:
    return "unsupported";
  case VIGIL_KEEPALIVE_FAILED:
    return "failed";
  default:
    return "unknown";
  }
}
