/* Metrics: histograms, and the Prometheus text exposition of a snapshot.
 *
 * The counters themselves live where the events happen (the owner of a set
 * of connections in src/conn.c, the server's admission in src/server.c);
 * this file only holds what is the same for all of them.
 *
 * Histograms. Fixed bucket bounds, chosen once for every vigil program so
 * that two servers' histograms add (vigil_metrics_add) and a dashboard
 * needs no per-server setup. Both histograms span 100 us to 10 s in 1-2.5-5
 * steps: an RTT on a LAN is well under a millisecond, over a mobile link
 * seconds; a verdict's lateness is the loop's timer granularity (1 ms)
 * plus scheduling delay when healthy, and seconds when the loop is starved.
 * Buckets are stored non-cumulative (one increment per observation) and
 * made cumulative when formatted, as Prometheus wants.
 *
 * Exposition. Text format 0.0.4: a HELP and a TYPE line per family, then
 * its samples; counters end in _total, durations are in seconds, histograms
 * give _bucket{le=...} (cumulative, ending with +Inf), _sum and _count.
 * The text is written with snprintf-style accounting so a caller learns the
 * size it needs and nothing is ever written past cap. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "metrics-internal.h"
#include "vigil/errno.h"

static const uint64_t bounds_ns[VIGIL_HIST_BUCKETS] = {
    100000ull,     250000ull,     500000ull,     1000000ull,    2500000ull,   5000000ull,
    10000000ull,   25000000ull,   50000000ull,   100000000ull,  250000000ull, 500000000ull,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull};

uint64_t vigil_histogram_bound_ns(vigil_histogram_kind kind, unsigned i) {
  if ((kind != VIGIL_HIST_RTT && kind != VIGIL_HIST_LATENESS) || i >= VIGIL_HIST_BUCKETS)
    return 0;
  return bounds_ns[i];
}

void vigil__hist_observe(vigil_histogram *h, vigil_histogram_kind kind, uint64_t x) {
  unsigned i;
  (void)kind; /* both kinds share the bounds today */
  h->count++;
  h->sum_ns += x;
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++) {
    if (x <= bounds_ns[i]) {
      h->buckets[i]++;
      return;
    }
  }
}

void vigil__metrics_verdict(vigil_metrics *m, uint64_t silent_ns, uint32_t timeout_ms) {
  uint64_t t = (uint64_t)timeout_ms * 1000000u;
  if (silent_ns < t)
    m->verdicts_early++;
  else
    vigil__hist_observe(&m->lateness, VIGIL_HIST_LATENESS, silent_ns - t);
}

const char *vigil_refusal_name(vigil_refusal r) {
  static const char *const names[] = {
#define VIGIL__REFUSAL_NAME(name, str) str,
      VIGIL_REFUSAL_MAP(VIGIL__REFUSAL_NAME)
#undef VIGIL__REFUSAL_NAME
  };
  return (unsigned)r < VIGIL_REFUSAL_COUNT ? names[r] : "unknown";
}

/* ---- adding ------------------------------------------------------------- */

static void hist_add(vigil_histogram *d, const vigil_histogram *s) {
  unsigned i;
  d->count += s->count;
  d->sum_ns += s->sum_ns;
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++)
    d->buckets[i] += s->buckets[i];
}

void vigil_metrics_add(vigil_metrics *d, const vigil_metrics *s) {
  unsigned i;
  if (d == NULL || s == NULL)
    return;
  d->connecting += s->connecting;
  d->handshaking += s->handshaking;
  d->open += s->open;
  d->closing += s->closing;
  d->peers += s->peers;
  d->queued_bytes += s->queued_bytes;
  d->accepted += s->accepted;
  d->opened += s->opened;
  d->takeovers += s->takeovers;
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    d->refused[i] += s->refused[i];
  for (i = 0; i < VIGIL_CAUSE_COUNT; i++)
    d->deaths[i] += s->deaths[i];
  d->pings_sent += s->pings_sent;
  d->pongs_received += s->pongs_received;
  d->stalls += s->stalls;
  d->queue_full_closes += s->queue_full_closes;
  d->accept_emfile += s->accept_emfile;
  d->verdicts_early += s->verdicts_early;
  hist_add(&d->rtt, &s->rtt);
  hist_add(&d->lateness, &s->lateness);
  if (s->size < d->size)
    d->size = s->size;
}

/* ---- Prometheus text ---------------------------------------------------- */

typedef struct out {
  char *buf;
  size_t cap, len;
} out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(out *o, const char *fmt, ...) {
  va_list ap;
  int n;
  char *dst = o->len < o->cap ? o->buf + o->len : NULL;
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  va_start(ap, fmt);
  n = vsnprintf(dst, room, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
  va_end(ap);
  if (n > 0)
    o->len += (size_t)n;
}

static void family(out *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(out *o, const char *name, const char *type, const char *help, uint64_t v) {
  family(o, name, type, help);
  put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* ns as seconds, exactly (no floating point: 9 decimals, trailing zeros
 * dropped). */
static void seconds(char *b, size_t n, uint64_t ns) {
  unsigned long long whole = (unsigned long long)(ns / 1000000000u);
  unsigned long frac = (unsigned long)(ns % 1000000000u);
  size_t len;
  if (frac == 0) {
    snprintf(b, n, "%llu", whole);
    return;
  }
  snprintf(b, n, "%llu.%09lu", whole, frac);
  len = strlen(b);
  while (len > 0 && b[len - 1] == '0')
    b[--len] = '\0';
}

static void histogram(out *o, const char *name, const char *help, const vigil_histogram *h,
                      vigil_histogram_kind kind) {
  uint64_t cum = 0;
  unsigned i;
  char le[32];
  family(o, name, "histogram", help);
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++) {
    cum += h->buckets[i];
    seconds(le, sizeof le, vigil_histogram_bound_ns(kind, i));
    put(o, "%s_bucket{le=\"%s\"} %llu\n", name, le, (unsigned long long)cum);
  }
  put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
  seconds(le, sizeof le, h->sum_ns);
  put(o, "%s_sum %s\n%s_count %llu\n", name, le, name, (unsigned long long)h->count);
}

long vigil_metrics_format(const vigil_metrics *m, char *buf, size_t cap) {
  out o;
  unsigned i;
  if (m == NULL || m->size < sizeof *m || (buf == NULL && cap > 0))
    return VIGIL_EINVAL;
  o.buf = buf;
  o.cap = cap;
  o.len = 0;
  if (cap > 0)
    buf[0] = '\0';
  family(&o, "vigil_connections", "gauge", "Connections now, by state.");
  put(&o, "vigil_connections{state=\"connecting\"} %lu\n", (unsigned long)m->connecting);
  put(&o, "vigil_connections{state=\"handshaking\"} %lu\n", (unsigned long)m->handshaking);
  put(&o, "vigil_connections{state=\"open\"} %lu\n", (unsigned long)m->open);
  put(&o, "vigil_connections{state=\"closing\"} %lu\n", (unsigned long)m->closing);
  scalar(&o, "vigil_peers", "gauge", "Peer ids in the presence table.", m->peers);
  scalar(&o, "vigil_queued_bytes", "gauge",
         "Outbound bytes queued, not yet handed to the kernel, over all connections.",
         m->queued_bytes);
  scalar(&o, "vigil_accepted_total", "counter", "Sockets accepted.", m->accepted);
  scalar(&o, "vigil_opens_total", "counter", "Handshakes completed.", m->opened);
  scalar(&o, "vigil_takeovers_total", "counter",
         "Connections replaced by a newer one with the same peer id.", m->takeovers);
  family(&o, "vigil_refused_total", "counter",
         "Connections turned away before or during the handshake, by reason.");
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    put(&o, "vigil_refused_total{reason=\"%s\"} %llu\n", vigil_refusal_name((vigil_refusal)i),
        (unsigned long long)m->refused[i]);
  family(&o, "vigil_deaths_total", "counter", "Open connections that died, by cause.");
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++) /* 1: NONE is never a death's cause */
    put(&o, "vigil_deaths_total{cause=\"%s\"} %llu\n", vigil_cause_name((vigil_cause)i),
        (unsigned long long)m->deaths[i]);
  scalar(&o, "vigil_pings_sent_total", "counter", "Heartbeat pings written.", m->pings_sent);
  scalar(&o, "vigil_pongs_received_total", "counter", "Pongs that answered our pings.",
         m->pongs_received);
  scalar(&o, "vigil_stalls_total", "counter",
         "Stalls of the event loop (or suspends) the stall guard reported.", m->stalls);
  scalar(&o, "vigil_queue_full_closes_total", "counter",
         "Connections closed because their outbound queue kept overflowing.", m->queue_full_closes);
  scalar(&o, "vigil_accept_emfile_total", "counter",
         "Accepts that hit the descriptor limit (the connection was reset).", m->accept_emfile);
  scalar(&o, "vigil_verdicts_early_total", "counter",
         "Heartbeat verdicts given before the timeout (adaptive mode only).", m->verdicts_early);
  histogram(&o, "vigil_rtt_seconds", "Heartbeat round-trip time, per pong.", &m->rtt,
            VIGIL_HIST_RTT);
  histogram(&o, "vigil_verdict_lateness_seconds",
            "Silence at each heartbeat verdict minus the timeout in force.", &m->lateness,
            VIGIL_HIST_LATENESS);
  if (o.len > (size_t)0x7fffffff)
    return VIGIL_ENOSPACE;
  return (long)o.len;
}
