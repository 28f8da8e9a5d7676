/* Kernel keepalive: the budget formula (pure), and apply on real loopback
 * sockets, checked with the test's own getsockopt calls, not only with
 * the report. */
#include <limits.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
typedef int raw_socklen;
#else
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
typedef socklen_t raw_socklen;
#endif

#include "keepalive-os.h"
#include "task.h"
#include "util-net.h"
#include "vigil.h"

#define OPT_ENABLE VIGIL_KEEPALIVE_OPT_ENABLE
#define OPT_IDLE VIGIL_KEEPALIVE_OPT_IDLE
#define OPT_INTERVAL VIGIL_KEEPALIVE_OPT_INTERVAL
#define OPT_COUNT VIGIL_KEEPALIVE_OPT_COUNT
#define OPT_UTO VIGIL_KEEPALIVE_OPT_USER_TIMEOUT
/* Short names, prefixed: windows.h already defines FAILED. */
#define KA_APPLIED VIGIL_KEEPALIVE_APPLIED
#define KA_UNSUPPORTED VIGIL_KEEPALIVE_UNSUPPORTED
#define KA_FAILED VIGIL_KEEPALIVE_FAILED
#define KA_NOT_REQUESTED VIGIL_KEEPALIVE_NOT_REQUESTED

/* Raw getsockopt of opt, converted to API units (ms for times). Returns 0,
 * or -1 when there is nothing to read (option absent here). */
static int raw_get(vigil_os_socket sock, vigil_keepalive_option opt, uint32_t *out) {
  vigil__keepalive_spelling sp;
  int v = 0;
  raw_socklen len = (raw_socklen)sizeof v;
  if (vigil__keepalive_os_spell(opt, &sp) != 0)
    return -1;
#ifdef _WIN32
  if (getsockopt((SOCKET)sock, sp.level, sp.name, (char *)&v, &len) != 0)
    return -1;
#else
  if (getsockopt(sock, sp.level, sp.name, &v, &len) != 0)
    return -1;
#endif
  if (opt == OPT_ENABLE)
    v = v != 0;
  *out = (uint32_t)v * (sp.unit_ms > 1 ? sp.unit_ms : 1);
  return 0;
}

static int on_linux(void) {
#ifdef __linux__
  return 1;
#else
  return 0;
#endif
}

/* Every APPLIED option whose value can be read back reads back, through
 * the test's own getsockopt, as the report says. */
static int check_report_against_socket(vigil_os_socket sock, const vigil_keepalive_report *r) {
  int opt;
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++) {
    uint32_t raw = 0;
    if (r->status[opt] != KA_APPLIED)
      continue;
    if (raw_get(sock, (vigil_keepalive_option)opt, &raw) != 0) {
      /* Only Windows' SIO_KEEPALIVE_VALS applies without read-back. */
      ASSERT(!on_linux());
      continue;
    }
    ASSERT_UEQ(raw, r->applied[opt]);
  }
  return 0;
}

/* Linux's own options by name and in tcp(7)'s units (seconds; the user
 * timeout in ms), independent of vigil's spelling table, so a wrong name or
 * unit there cannot hide behind a read-back that makes the same mistake.
 * Returns -1 where there is nothing to read. */
static int linux_get(vigil_os_socket sock, vigil_keepalive_option opt, uint32_t *out) {
#if defined(__linux__)
  int v = 0, name;
  uint32_t unit = 1000;
  socklen_t len = (socklen_t)sizeof v;
  switch (opt) {
  case OPT_IDLE:
    name = TCP_KEEPIDLE;
    break;
  case OPT_INTERVAL:
    name = TCP_KEEPINTVL;
    break;
  case OPT_COUNT:
    name = TCP_KEEPCNT;
    unit = 1;
    break;
  case OPT_UTO:
    name = TCP_USER_TIMEOUT;
    unit = 1;
    break;
  default:
    return -1;
  }
  if (getsockopt(sock, IPPROTO_TCP, name, &v, &len) != 0 || v < 0)
    return -1;
  *out = (uint32_t)v * unit;
  return 0;
#else
  (void)sock;
  (void)opt;
  (void)out;
  return -1;
#endif
}

/* The socket's own values on Linux (the only caller), in API units. */
static int check_raw_values(vigil_os_socket sock, uint32_t idle_ms, uint32_t interval_ms,
                            uint32_t count, uint32_t uto_ms) {
  uint32_t raw = 0;
  ASSERT_EQ(linux_get(sock, OPT_IDLE, &raw), 0);
  ASSERT_UEQ(raw, idle_ms);
  ASSERT_EQ(linux_get(sock, OPT_INTERVAL, &raw), 0);
  ASSERT_UEQ(raw, interval_ms);
  ASSERT_EQ(linux_get(sock, OPT_COUNT, &raw), 0);
  ASSERT_UEQ(raw, count);
  ASSERT_EQ(linux_get(sock, OPT_UTO, &raw), 0);
  ASSERT_UEQ(raw, uto_ms);
  return 0;
}

struct budget_case {
  uint32_t budget_ms, lost;
  int rc;
  uint32_t idle_s, interval_s, count, uto_ms;
};

/* The documented table (docs/KEEPALIVE.md): S = floor(D/1000),
 * count = N+1, interval = floor(S/(count+1)), idle = S - count*interval,
 * user_timeout = S s; -EINVAL when S < N+2 or N > 126. */
static const struct budget_case budget_cases[] = {
    {10000, 2, 0, 4, 2, 3, 10000},
    {10999, 2, 0, 4, 2, 3, 10000}, /* sub-second part dropped, never added */
    {5000, 2, 0, 2, 1, 3, 5000},
    {4000, 2, 0, 1, 1, 3, 4000}, /* smallest budget for N = 2 */
    {3999, 2, -1, 0, 0, 0, 0},
    {2000, 0, 0, 1, 1, 1, 2000}, /* smallest budget at all */
    {1999, 0, -1, 0, 0, 0, 0},
    {0, 0, -1, 0, 0, 0, 0},
    {30000, 2, 0, 9, 7, 3, 30000},
    {60000, 4, 0, 10, 10, 5, 60000},
    {7200000, 8, 0, 720, 720, 9, 7200000},
    {128000, 126, 0, 1, 1, 127, 128000}, /* Linux's KEEPCNT maximum */
    {1000000, 127, -1, 0, 0, 0, 0},
    {100000, UINT32_MAX, -1, 0, 0, 0, 0},
    /* interval capped at 32767 s and idle with it: fires sooner than D */
    {UINT32_MAX, 0, 0, 32767, 32767, 1, 65534000},
};

TEST_IMPL(budget_maps_to_documented_values) {
  size_t i, n = sizeof budget_cases / sizeof budget_cases[0];
  for (i = 0; i < n; i++) {
    const struct budget_case *c = &budget_cases[i];
    vigil_keepalive ka;
    int rc;
    memset(&ka, 0xab, sizeof ka);
    rc = vigil_keepalive_from_budget(&ka, c->budget_ms, c->lost);
    if (c->rc != 0) {
      ASSERT_EQ(rc, VIGIL_EINVAL);
      ASSERT_UEQ(ka.count, 0xabababab); /* left untouched */
      continue;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(ka.enable, 1);
    ASSERT_UEQ(ka.idle_ms, c->idle_s * 1000);
    ASSERT_UEQ(ka.interval_ms, c->interval_s * 1000);
    ASSERT_UEQ(ka.count, c->count);
    ASSERT_UEQ(ka.user_timeout_ms, c->uto_ms);
  }
  return 0;
}

/* Sizing for a lossy path: the table of docs/KEEPALIVE.md, for vigil's
 * stated bound (0.001 false deaths per connection over 24 h). Each row's
 * count meets the bound and count - 1 does not, so the table is the least
 * count, not just an adequate one. Pure arithmetic: no socket, no clock. */
struct loss_case {
  double loss;
  uint32_t idle_s, count; /* count 0: VIGIL_ERANGE */
};
static const struct loss_case loss_cases[] = {
    {0.0, 1, 1},   {0.01, 1, 5},  {0.02, 1, 6},   {0.05, 1, 8},   {0.10, 1, 12}, {0.15, 1, 15},
    {0.20, 1, 18}, {0.25, 1, 23}, {0.30, 1, 28},  {0.40, 1, 41},  {0.50, 1, 64}, {0.60, 1, 105},
    {0.70, 1, 0},  {0.20, 2, 18}, {0.20, 10, 16}, {0.10, 10, 10},
};

TEST_IMPL(loss_sizing_table) {
  size_t i, n = sizeof loss_cases / sizeof loss_cases[0];
  for (i = 0; i < n; i++) {
    const struct loss_case *c = &loss_cases[i];
    uint32_t count = 0xabababab;
    int rc = vigil_keepalive_count_for_loss(c->loss, c->idle_s, VIGIL_KEEPALIVE_HORIZON_S,
                                            VIGIL_KEEPALIVE_FALSE_DEATHS, &count);
    if (c->count == 0) {
      ASSERT_EQ(rc, VIGIL_ERANGE);
      ASSERT_UEQ(count, 0xabababab);
      ASSERT(vigil_keepalive_false_deaths(c->loss, 127, c->idle_s, VIGIL_KEEPALIVE_HORIZON_S) >
             VIGIL_KEEPALIVE_FALSE_DEATHS);
      continue;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_UEQ(count, c->count);
    ASSERT(vigil_keepalive_false_deaths(c->loss, count, c->idle_s, VIGIL_KEEPALIVE_HORIZON_S) <=
           VIGIL_KEEPALIVE_FALSE_DEATHS);
    if (count > 1)
      ASSERT(
          vigil_keepalive_false_deaths(c->loss, count - 1, c->idle_s, VIGIL_KEEPALIVE_HORIZON_S) >
          VIGIL_KEEPALIVE_FALSE_DEATHS);
  }
  return 0;
}

/* The figures docs/KEEPALIVE.md quotes: the old rule's count 8 at 20% loss
 * and idle 1 s expects 24.4 false deaths a day and 0.34 in a 20-minute
 * soak; the corrected 18 expects 8.9e-4 a day. */
TEST_IMPL(loss_sizing_figures) {
  double old_day = vigil_keepalive_false_deaths(0.20, 8, 1, 86400);
  double old_soak = vigil_keepalive_false_deaths(0.20, 8, 1, 1200);
  double new_day = vigil_keepalive_false_deaths(0.20, 18, 1, 86400);
  ASSERT(old_day > 24.3 && old_day < 24.4);
  ASSERT(old_soak > 0.33 && old_soak < 0.34);
  ASSERT(new_day > 0.00089 && new_day < 0.00090);
  /* no loss: nothing can kill a healthy connection */
  ASSERT(vigil_keepalive_false_deaths(0.0, 1, 1, 86400) == 0.0);
  /* a longer idle means fewer probe series over the same horizon */
  ASSERT(vigil_keepalive_false_deaths(0.20, 8, 2, 86400) < old_day);
  return 0;
}

TEST_IMPL(loss_sizing_rejects_bad_input) {
  uint32_t count = 7;
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.2, 1, 86400, 0.001, NULL), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(-0.1, 1, 86400, 0.001, &count), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(1.0, 1, 86400, 0.001, &count), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.0 / 0.0, 1, 86400, 0.001, &count), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.2, 0, 86400, 0.001, &count), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.2, 1, 86400, 0.0, &count), VIGIL_EINVAL);
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.2, 1, 86400, -1.0, &count), VIGIL_EINVAL);
  ASSERT_UEQ(count, 7);
  ASSERT(vigil_keepalive_false_deaths(1.0, 8, 1, 86400) < 0);
  ASSERT(vigil_keepalive_false_deaths(0.2, 0, 1, 86400) < 0);
  ASSERT(vigil_keepalive_false_deaths(0.2, 8, 0, 86400) < 0);
  /* a zero horizon needs no tolerance at all */
  ASSERT_EQ(vigil_keepalive_count_for_loss(0.5, 1, 0, 0.001, &count), 0);
  ASSERT_UEQ(count, 1);
  return 0;
}

/* The model against a simulated keepalive timer in virtual time (a fixed
 * xorshift stream, no clock): idle 1 s, interval 1 s; each probe and each
 * ACK is dropped with probability loss; an answer restarts the idle wait;
 * `count` unanswered probes in a row are a false death, after which a new
 * connection starts idle. Over the horizon the deaths must stay below the
 * formula's (horizon / idle) q^count, and above (1 - q) times it (each
 * series of probes lasts about 1 / (1 - q) s), less the sampling error:
 * the bound is safe and not loose by more than that factor. */
static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int dropped(uint64_t *seed, double loss) {
  return (double)(xorshift(seed) >> 11) / 9007199254740992.0 < loss; /* 2^53 */
}

TEST_IMPL(loss_sizing_matches_simulation) {
  const double loss = 0.3, q = 1.0 - (1.0 - loss) * (1.0 - loss); /* 0.51 */
  const uint32_t count = 4, horizon_s = 400000;
  uint64_t seed = 0x9e3779b97f4a7c15u;
  uint32_t t = 0, deaths = 0;
  double bound = vigil_keepalive_false_deaths(loss, count, 1, horizon_s); /* 27061 */
  while (t < horizon_s) {
    uint32_t out = 0;
    t += 1; /* idle: the first probe */
    for (;;) {
      int lost = dropped(&seed, loss); /* the probe */
      lost |= dropped(&seed, loss);    /* its ACK */
      if (!lost)
        break;
      t += 1; /* interval: the next timer run */
      if (++out == count) {
        deaths++;
        break;
      }
    }
  }
  /* 13608 with this seed; (1 - q) x bound = 13260 */
  ASSERT((double)deaths <= bound);
  ASSERT((double)deaths >= (1.0 - q) * bound * 0.95);
  return 0;
}

/* The guarantees the formula claims, over a sweep of budgets: the probe
 * schedule ends exactly when the user timeout does, within the budget and
 * less than a second short of it; idle >= interval >= 1 s. */
TEST_IMPL(budget_invariants_hold) {
  uint32_t lost, d;
  for (lost = 0; lost <= 126; lost += 7) {
    for (d = 0; d <= 400000; d += 137) {
      vigil_keepalive ka;
      uint32_t total;
      int rc = vigil_keepalive_from_budget(&ka, d, lost);
      if (d / 1000 < lost + 2) {
        ASSERT_EQ(rc, VIGIL_EINVAL);
        continue;
      }
      ASSERT_EQ(rc, 0);
      ASSERT_UEQ(ka.count, lost + 1);
      ASSERT_UGE(ka.interval_ms, 1000);
      ASSERT_UGE(ka.idle_ms, ka.interval_ms);
      ASSERT_UEQ(ka.idle_ms % 1000, 0);
      ASSERT_UEQ(ka.interval_ms % 1000, 0);
      total = ka.idle_ms + ka.count * ka.interval_ms;
      ASSERT_UEQ(total, ka.user_timeout_ms);
      ASSERT_ULE(total, d);
      ASSERT_LT(d - total, 1000);
    }
  }
  ASSERT_EQ(vigil_keepalive_from_budget_sized(NULL, sizeof(vigil_keepalive), 10000, 2),
            VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(apply_reads_back_every_value) {
  vigil_os_socket c, s;
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 3000, 2000, 4, 7000};
  vigil_keepalive_report r;
  uint32_t raw = 0;
  int opt;

  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, &r), 0);
  ASSERT_EQ(check_report_against_socket(c, &r), 0);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  ASSERT_UEQ(r.applied[OPT_ENABLE], 1);
  ASSERT_EQ(raw_get(c, OPT_ENABLE, &raw), 0);
  ASSERT_UEQ(raw, 1);
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++) {
    ASSERT(r.status[opt] == KA_APPLIED || r.status[opt] == KA_UNSUPPORTED);
    ASSERT_EQ(r.error[opt], 0);
    if (on_linux()) /* Linux has every option: all must be taken */
      ASSERT_EQ(r.status[opt], KA_APPLIED);
  }
  if (on_linux())
    ASSERT_EQ(check_raw_values(c, 3000, 2000, 4, 7000), 0);
  /* Idle and interval were requested, so they were applied somehow. */
  ASSERT_EQ(r.status[OPT_IDLE], KA_APPLIED);
  ASSERT_EQ(r.status[OPT_INTERVAL], KA_APPLIED);
  ASSERT_UEQ(r.applied[OPT_IDLE], 3000);
  ASSERT_UEQ(r.applied[OPT_INTERVAL], 2000);
  /* The peer's socket was not touched. */
  ASSERT_EQ(raw_get(s, OPT_ENABLE, &raw), 0);
  ASSERT_UEQ(raw, 0);
  util_net_close(c);
  util_net_close(s);
  return 0;
}

TEST_IMPL(apply_budget_values_reach_the_socket) {
  vigil_os_socket c, s;
  vigil_keepalive ka;
  vigil_keepalive_report r;

  ASSERT_EQ(vigil_keepalive_from_budget(&ka, 10000, 2), 0);
  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(s, &ka, &r), 0);
  ASSERT_EQ(check_report_against_socket(s, &r), 0);
  ASSERT_UEQ(r.applied[OPT_IDLE], 4000);
  ASSERT_UEQ(r.applied[OPT_INTERVAL], 2000);
  if (r.status[OPT_COUNT] == KA_APPLIED)
    ASSERT_UEQ(r.applied[OPT_COUNT], 3);
  if (r.status[OPT_UTO] == KA_APPLIED)
    ASSERT_UEQ(r.applied[OPT_UTO], 10000);
  if (on_linux())
    ASSERT_EQ(check_raw_values(s, 4000, 2000, 3, 10000), 0);
  util_net_close(c);
  util_net_close(s);
  return 0;
}

/* Keepalive times are whole seconds: a request is rounded up, never down
 * (1 ms must not become 0 = "system default"). Linux's user timeout is
 * milliseconds and is kept exact. */
TEST_IMPL(apply_rounds_seconds_up) {
  vigil_os_socket c, s;
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 1500, 1, 0, 1500};
  vigil_keepalive_report r;
  uint32_t raw = 0;

  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, &r), 0);
  ASSERT_EQ(check_report_against_socket(c, &r), 0);
  ASSERT_EQ(r.status[OPT_IDLE], KA_APPLIED);
  ASSERT_UEQ(r.applied[OPT_IDLE], 2000);
  ASSERT_EQ(r.status[OPT_INTERVAL], KA_APPLIED);
  ASSERT_UEQ(r.applied[OPT_INTERVAL], 1000);
  ASSERT_EQ(r.status[OPT_COUNT], KA_NOT_REQUESTED);
  if (on_linux()) {
    ASSERT_EQ(r.status[OPT_UTO], KA_APPLIED);
    ASSERT_UEQ(r.applied[OPT_UTO], 1500);
    ASSERT_EQ(linux_get(c, OPT_UTO, &raw), 0);
    ASSERT_UEQ(raw, 1500);
    ASSERT_EQ(linux_get(c, OPT_IDLE, &raw), 0);
    ASSERT_UEQ(raw, 2000);
  } else if (r.status[OPT_UTO] == KA_APPLIED) {
    ASSERT_UGE(r.applied[OPT_UTO], 1500); /* seconds elsewhere: 2000 */
  }
  util_net_close(c);
  util_net_close(s);
  return 0;
}

/* enable = 0 turns SO_KEEPALIVE off and leaves idle/interval/count alone
 * (KA_NOT_REQUESTED), even when ka carries values for them. */
TEST_IMPL(disable_turns_keepalive_off) {
  vigil_os_socket c, s;
  vigil_keepalive on = {sizeof(vigil_keepalive), 1, 5000, 0, 0, 0};
  vigil_keepalive off = {sizeof(vigil_keepalive), 0, 9000, 9000, 9, 0};
  vigil_keepalive_report r;
  uint32_t raw = 0, idle_before = 0;
  int have_idle;

  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(c, &on, &r), 0);
  ASSERT_EQ(raw_get(c, OPT_ENABLE, &raw), 0);
  ASSERT_UEQ(raw, 1);
  have_idle = raw_get(c, OPT_IDLE, &idle_before) == 0;

  ASSERT_EQ(vigil_keepalive_apply(c, &off, &r), 0);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  ASSERT_UEQ(r.applied[OPT_ENABLE], 0);
  ASSERT_EQ(r.status[OPT_IDLE], KA_NOT_REQUESTED);
  ASSERT_EQ(r.status[OPT_INTERVAL], KA_NOT_REQUESTED);
  ASSERT_EQ(r.status[OPT_COUNT], KA_NOT_REQUESTED);
  ASSERT_EQ(r.status[OPT_UTO], KA_NOT_REQUESTED);
  ASSERT_EQ(raw_get(c, OPT_ENABLE, &raw), 0);
  ASSERT_UEQ(raw, 0);
  if (have_idle) {
    ASSERT_EQ(raw_get(c, OPT_IDLE, &raw), 0);
    ASSERT_UEQ(raw, idle_before);
  }
  ASSERT_EQ(have_idle || !on_linux(), 1);
  util_net_close(c);
  util_net_close(s);
  return 0;
}

/* Zero means "leave it": only SO_KEEPALIVE is touched. */
TEST_IMPL(zero_values_are_left_alone) {
  vigil_os_socket c, s;
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 0, 0, 0, 0};
  vigil_keepalive_report r;
  uint32_t before = 0, after = 0;
  int opt, have;

  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  have = raw_get(c, OPT_IDLE, &before) == 0;
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, &r), 0);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  for (opt = OPT_IDLE; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++)
    ASSERT_EQ(r.status[opt], KA_NOT_REQUESTED);
  if (have) {
    ASSERT_EQ(raw_get(c, OPT_IDLE, &after), 0);
    ASSERT_UEQ(after, before);
  }
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, NULL), 0); /* report is optional */
  util_net_close(c);
  util_net_close(s);
  return 0;
}

/* Semantics for a socket that is not TCP: every option is tried; one the
 * socket's protocol lacks is UNSUPPORTED, never FAILED, so the call
 * returns 0. Linux accepts SO_KEEPALIVE on any socket (it is a flag) and
 * answers ENOPROTOOPT / EOPNOTSUPP for the TCP-level ones; wine does the
 * same, and refuses WSAIoctl(SIO_KEEPALIVE_VALS) on UDP with WSAEINVAL,
 * which vigil does not even try on a non-stream socket. */
static int check_non_tcp(vigil_os_socket sock) {
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 3000, 1000, 3, 6000};
  vigil_keepalive_report r;
  int opt;

  ASSERT_EQ(vigil_keepalive_apply(sock, &ka, &r), 0);
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++) {
    ASSERT(r.status[opt] == KA_APPLIED || r.status[opt] == KA_UNSUPPORTED);
    ASSERT_EQ(r.error[opt], 0);
  }
  for (opt = OPT_IDLE; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++)
    ASSERT_EQ(r.status[opt], KA_UNSUPPORTED);
  if (on_linux())
    ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  return check_report_against_socket(sock, &r);
}

TEST_IMPL(tcp_options_on_udp_are_unsupported) {
  vigil_os_socket u;
  ASSERT_EQ(util_net_udp_socket(&u), 0);
  ASSERT_EQ(check_non_tcp(u), 0);
  util_net_close(u);
  return 0;
}

TEST_IMPL(tcp_options_on_unix_socket_are_unsupported) {
#ifdef _WIN32
  RETURN_SKIP("AF_UNIX socketpair is a POSIX test");
#else
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_EQ(check_non_tcp(sv[0]), 0);
  close(sv[0]);
  close(sv[1]);
  return 0;
#endif
}

/* A value the kernel refuses is FAILED with its error, and the rest of
 * the request is still applied. Linux refuses TCP_KEEPCNT > 127. */
TEST_IMPL(refused_value_is_failed_and_others_still_applied) {
  vigil_os_socket c, s;
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 3000, 1000, 200, 5000};
  vigil_keepalive_report r;

  if (!on_linux())
    RETURN_SKIP("the refused value (TCP_KEEPCNT 200) is Linux's limit");
  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, &r), VIGIL_EINVAL);
  ASSERT_EQ(r.status[OPT_COUNT], KA_FAILED);
  ASSERT_EQ(r.error[OPT_COUNT], VIGIL_EINVAL);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  ASSERT_EQ(r.status[OPT_IDLE], KA_APPLIED);
  ASSERT_EQ(r.status[OPT_INTERVAL], KA_APPLIED);
  ASSERT_EQ(r.status[OPT_UTO], KA_APPLIED);
  ASSERT_EQ(check_report_against_socket(c, &r), 0);
  util_net_close(c);
  util_net_close(s);
  return 0;
}

/* A value no int can carry fails before any system call, on every OS. */
TEST_IMPL(value_beyond_int_fails_cleanly) {
  vigil_os_socket c, s;
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 0, 0, (uint32_t)INT_MAX + 1u, 0};
  vigil_keepalive_report r;

  ASSERT_EQ(util_net_tcp_pair(&c, &s), 0);
  ASSERT_EQ(vigil_keepalive_apply(c, &ka, &r), VIGIL_EINVAL);
  ASSERT_EQ(r.status[OPT_COUNT], KA_FAILED);
  ASSERT_EQ(r.error[OPT_COUNT], VIGIL_EINVAL);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_APPLIED);
  util_net_close(c);
  util_net_close(s);
  return 0;
}

TEST_IMPL(bad_socket_and_null_request) {
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 3000, 1000, 3, 6000};
  vigil_keepalive_report r;
  int opt;

  ASSERT_EQ(util_net_init(), 0);
  ASSERT_EQ(vigil_keepalive_apply(VIGIL_INVALID_SOCKET, &ka, &r), VIGIL_EBADF);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_FAILED);
  ASSERT_EQ(r.error[OPT_ENABLE], VIGIL_EBADF);
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++)
    ASSERT(r.status[opt] == KA_FAILED || r.status[opt] == KA_UNSUPPORTED);

  memset(&r, 0xff, sizeof r);
  ASSERT_EQ(vigil_keepalive_apply(VIGIL_INVALID_SOCKET, NULL, &r), VIGIL_EINVAL);
  for (opt = 0; opt < VIGIL_KEEPALIVE_OPT_COUNT_; opt++)
    ASSERT_EQ(r.status[opt], KA_NOT_REQUESTED); /* report cleared, nothing tried */
  return 0;
}

/* A descriptor that is open but not a socket (a pipe) is VIGIL_EBADF, as
 * the header promises, not a raw -ENOTSOCK no VIGIL_E* name covers. */
TEST_IMPL(pipe_is_not_a_socket) {
#ifdef _WIN32
  RETURN_SKIP("a pipe handle is not a SOCKET to pass: a POSIX test");
#else
  vigil_keepalive ka = {sizeof(vigil_keepalive), 1, 3000, 1000, 3, 6000};
  vigil_keepalive_report r;
  int fds[2], rc;
  ASSERT_EQ(pipe(fds), 0);
  rc = vigil_keepalive_apply(fds[0], &ka, &r);
  close(fds[0]);
  close(fds[1]);
  ASSERT_EQ(rc, VIGIL_EBADF);
  ASSERT_EQ(r.status[OPT_ENABLE], KA_FAILED);
  ASSERT_EQ(r.error[OPT_ENABLE], VIGIL_EBADF);
  ASSERT_STR_EQ(vigil_err_name(rc), "EBADF");
  return 0;
#endif
}

TEST_IMPL(names) {
  ASSERT_STR_EQ(vigil_keepalive_option_name(OPT_ENABLE), "enable");
  ASSERT_STR_EQ(vigil_keepalive_option_name(OPT_IDLE), "idle");
  ASSERT_STR_EQ(vigil_keepalive_option_name(OPT_INTERVAL), "interval");
  ASSERT_STR_EQ(vigil_keepalive_option_name(OPT_COUNT), "count");
  ASSERT_STR_EQ(vigil_keepalive_option_name(OPT_UTO), "user_timeout");
  ASSERT_STR_EQ(vigil_keepalive_option_name(VIGIL_KEEPALIVE_OPT_COUNT_), "unknown");
  ASSERT_STR_EQ(vigil_keepalive_option_name((vigil_keepalive_option)-1), "unknown");
  ASSERT_STR_EQ(vigil_keepalive_status_name(KA_NOT_REQUESTED), "not_requested");
  ASSERT_STR_EQ(vigil_keepalive_status_name(KA_APPLIED), "applied");
  ASSERT_STR_EQ(vigil_keepalive_status_name(KA_UNSUPPORTED), "unsupported");
  ASSERT_STR_EQ(vigil_keepalive_status_name(KA_FAILED), "failed");
  ASSERT_STR_EQ(vigil_keepalive_status_name((vigil_keepalive_status)42), "unknown");
  return 0;
}

/* The ms -> s rule used by every platform half: up, never down, no
 * overflow at the top of the range. */
TEST_IMPL(seconds_round_up) {
  ASSERT_UEQ(vigil__keepalive_seconds(0), 0);
  ASSERT_UEQ(vigil__keepalive_seconds(1), 1);
  ASSERT_UEQ(vigil__keepalive_seconds(999), 1);
  ASSERT_UEQ(vigil__keepalive_seconds(1000), 1);
  ASSERT_UEQ(vigil__keepalive_seconds(1001), 2);
  ASSERT_UEQ(vigil__keepalive_seconds(UINT32_MAX), 4294968);
  return 0;
}
