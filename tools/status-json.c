/* The JSON of the metrics endpoint (tools/metrics-http.h): /api/status and
 * /connections, and the checks on /connections' parameters. No HTTP here:
 * tests/test-endpoint.c and fuzz/fuzz-page-query.c call these directly.
 *
 * Everything that comes from a request (offset, limit, id) is checked for
 * syntax and range before use, and every buffer has a cap: a page is at
 * most VIGIL_CLI_PAGE_MAX connections and its text at most 4 MiB. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "metrics-http.h"

/* ---- buffer ------------------------------------------------------------- */

void vigil_cli_buf_init(vigil_cli_buf *b, size_t max) {
  memset(b, 0, sizeof(*b));
  b->max = max;
}

void vigil_cli_buf_free(vigil_cli_buf *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

static int reserve(vigil_cli_buf *b, size_t more) {
  size_t need, cap;
  char *p;
  if (b->failed)
    return -1;
  need = b->len + more + 1;
  if (need <= b->cap)
    return 0;
  if (need > b->max) {
    b->failed = 1;
    return -1;
  }
  cap = b->cap != 0 ? b->cap : 4096;
  while (cap < need)
    cap *= 2;
  if (cap > b->max)
    cap = b->max;
  if ((p = realloc(b->p, cap)) == NULL) {
    b->failed = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void vigil_cli_buf_printf(vigil_cli_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
  va_end(ap);
  if (n < 0 || reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  (void)vsnprintf(b->p + b->len, b->cap - b->len, fmt,
                  ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
  va_end(ap);
  b->len += (size_t)n;
}

void vigil_cli_buf_json_str(vigil_cli_buf *b, const char *s, size_t len) {
  size_t need = vigil_cli_json_escape(NULL, 0, s, len);
  if (reserve(b, need + 2) != 0)
    return;
  b->p[b->len++] = '"';
  (void)vigil_cli_json_escape(b->p + b->len, b->cap - b->len, s, len);
  b->len += need;
  b->p[b->len++] = '"';
  b->p[b->len] = '\0';
}

/* ---- recent deaths ------------------------------------------------------ */

void vigil_cli_deaths_add(vigil_cli_deaths *r, double t, const char *id, size_t id_len,
                          const char *peer, const vigil_death *d) {
  vigil_cli_death_rec *e = &r->rec[r->total % VIGIL_CLI_RECENT_DEATHS];
  memset(e, 0, sizeof(*e));
  e->t = t;
  if (id != NULL) {
    e->id_len = (uint8_t)(id_len < sizeof(e->id) ? id_len : sizeof(e->id));
    memcpy(e->id, id, e->id_len);
  }
  snprintf(e->peer, sizeof(e->peer), "%s", peer != NULL ? peer : "?");
  e->cause = d->cause;
  e->silent_ns = d->silent_ns;
  e->timeout_ms = d->timeout_ms;
  e->detail = d->detail;
  r->total++;
}

/* The records a ring holds, oldest first, into out; returns how many. */
static unsigned deaths_held(const vigil_cli_deaths *r, const vigil_cli_death_rec **out) {
  uint64_t n = r->total < VIGIL_CLI_RECENT_DEATHS ? r->total : VIGIL_CLI_RECENT_DEATHS, i;
  for (i = 0; i < n; i++)
    out[i] = &r->rec[(r->total - n + i) % VIGIL_CLI_RECENT_DEATHS];
  return (unsigned)n;
}

/* Both rings are in time order, so the merge walks them from the newest
 * end and keeps what fits; the result is laid out as a ring of total
 * a->total + b->total (newest at (total - 1) % N), as deaths_json reads. */
void vigil_cli_deaths_merge(vigil_cli_deaths *a, const vigil_cli_deaths *b) {
  vigil_cli_death_rec keep[VIGIL_CLI_RECENT_DEATHS]; /* 22 KB: a's slots are read as they go */
  const vigil_cli_death_rec *ra[VIGIL_CLI_RECENT_DEATHS], *rb[VIGIL_CLI_RECENT_DEATHS];
  unsigned na = deaths_held(a, ra), nb = deaths_held(b, rb), k = 0, i;
  uint64_t total = a->total + b->total;
  while (k < VIGIL_CLI_RECENT_DEATHS && (na > 0 || nb > 0)) { /* newest first */
    if (nb == 0 || (na > 0 && ra[na - 1]->t >= rb[nb - 1]->t))
      keep[k++] = *ra[--na];
    else
      keep[k++] = *rb[--nb];
  }
  for (i = 0; i < k; i++)
    a->rec[(total - 1 - i) % VIGIL_CLI_RECENT_DEATHS] = keep[i];
  a->total = total;
}

/* ---- the presence store in Prometheus text ------------------------------ */

void vigil_cli_presence_add(vigil_cli_presence_figures *d, const vigil_cli_presence_figures *s) {
  d->present |= s->present;
  d->processes += s->processes;
  d->up += s->up;
  d->queued += s->queued;
  d->sent += s->sent;
  d->dropped += s->dropped;
  d->errors += s->errors;
  d->bad_input += s->bad_input;
  d->evictions += s->evictions;
  d->syncs += s->syncs;
  d->reconnects += s->reconnects;
  d->node_lost += s->node_lost;
}

/* The presence samples: name, type, help, and where the figure lives. */
#define PRESENCE_FIELD(f) offsetof(vigil_cli_presence_figures, f)
static const struct {
  const char *name, *type, *help;
  size_t at;
} presence_rows[] = {
    {"vigil_presence_store_processes", "gauge",
     "Processes (workers) that keep presence in a store (Redis).", PRESENCE_FIELD(processes)},
    {"vigil_presence_store_up", "gauge", "Of them, the processes connected to the store now.",
     PRESENCE_FIELD(up)},
    {"vigil_presence_queued", "gauge", "Presence updates waiting for the store now.",
     PRESENCE_FIELD(queued)},
    {"vigil_presence_sent_total", "counter", "Presence updates the store acknowledged.",
     PRESENCE_FIELD(sent)},
    {"vigil_presence_dropped_total", "counter",
     "Presence updates that did not fit the queue (a full rewrite follows).",
     PRESENCE_FIELD(dropped)},
    {"vigil_presence_errors_total", "counter", "Presence updates the store refused.",
     PRESENCE_FIELD(errors)},
    {"vigil_presence_bad_input_total", "counter",
     "Messages and keys in the store that were not vigil's, skipped.", PRESENCE_FIELD(bad_input)},
    {"vigil_presence_evictions_total", "counter",
     "Connections closed because another process took their id.", PRESENCE_FIELD(evictions)},
    {"vigil_presence_syncs_total", "counter", "Full rewrites of this process's records.",
     PRESENCE_FIELD(syncs)},
    {"vigil_presence_reconnects_total", "counter", "Connections to the store made again.",
     PRESENCE_FIELD(reconnects)},
    {"vigil_presence_node_lost_total", "counter", "Ids of lost nodes this process marked offline.",
     PRESENCE_FIELD(node_lost)},
};
#define PRESENCE_ROWS (sizeof(presence_rows) / sizeof(presence_rows[0]))

static uint64_t *presence_slot(vigil_cli_presence_figures *f, size_t row) {
  return (uint64_t *)(void *)((char *)f + presence_rows[row].at);
}

long vigil_cli_presence_format(const vigil_cli_presence_figures *f, char *buf, size_t cap) {
  size_t len = 0, i;
  if (cap > 0)
    buf[0] = '\0';
  if (!f->present)
    return 0;
  for (i = 0; i < PRESENCE_ROWS; i++) {
    uint64_t v = *presence_slot((vigil_cli_presence_figures *)f, i);
    int n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0,
                     "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", presence_rows[i].name,
                     presence_rows[i].help, presence_rows[i].name, presence_rows[i].type,
                     presence_rows[i].name, (unsigned long long)v);
    if (n > 0)
      len += (size_t)n;
  }
  return (long)len;
}

/* ---- /api/status -------------------------------------------------------- */

static double ms_of(uint64_t ns) {
  return (double)ns / 1e6;
}

static void histogram_json(vigil_cli_buf *b, const char *name, const vigil_histogram *h,
                           vigil_histogram_kind kind) {
  unsigned i;
  vigil_cli_buf_printf(b, ",\"%s\":{\"count\":%llu,\"sum_s\":%.6f,\"bounds_s\":[", name,
                       (unsigned long long)h->count, (double)h->sum_ns / 1e9);
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++)
    vigil_cli_buf_printf(b, "%s%g", i ? "," : "", (double)vigil_histogram_bound_ns(kind, i) / 1e9);
  vigil_cli_buf_printf(b, "],\"buckets\":[");
  for (i = 0; i < VIGIL_HIST_BUCKETS; i++)
    vigil_cli_buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)h->buckets[i]);
  vigil_cli_buf_printf(b, "]}");
}

static void deaths_json(vigil_cli_buf *b, const vigil_cli_deaths *r) {
  uint64_t n = r->total < VIGIL_CLI_RECENT_DEATHS ? r->total : VIGIL_CLI_RECENT_DEATHS, i;
  vigil_cli_buf_printf(b, ",\"deaths_recorded\":%llu,\"recent_deaths\":[",
                       (unsigned long long)r->total);
  for (i = 0; i < n; i++) {
    const vigil_cli_death_rec *e = &r->rec[(r->total - n + i) % VIGIL_CLI_RECENT_DEATHS];
    vigil_cli_buf_printf(b, "%s{\"t\":%.3f,\"id\":", i ? "," : "", e->t);
    vigil_cli_buf_json_str(b, e->id, e->id_len);
    vigil_cli_buf_printf(b, ",\"peer\":");
    vigil_cli_buf_json_str(b, e->peer, strlen(e->peer));
    vigil_cli_buf_printf(b, ",\"cause\":\"%s\",\"silent_ms\":%.3f,\"timeout_ms\":%lu,\"detail\":",
                         vigil_cause_name(e->cause), ms_of(e->silent_ns),
                         (unsigned long)e->timeout_ms);
    if (e->detail != NULL)
      vigil_cli_buf_json_str(b, e->detail, strlen(e->detail));
    else
      vigil_cli_buf_printf(b, "null");
    vigil_cli_buf_printf(b, "}");
  }
  vigil_cli_buf_printf(b, "]");
}

void vigil_cli_status_json(vigil_cli_buf *b, const vigil_metrics *m, double t, double since,
                           const vigil_cli_deaths *deaths, const vigil_cli_presence_figures *pf) {
  unsigned i;
  vigil_cli_buf_printf(b,
                       "{\"version\":\"%s\",\"t\":%.3f,\"uptime_s\":%.3f,"
                       "\"connections\":{\"connecting\":%lu,\"handshaking\":%lu,\"open\":%lu,"
                       "\"closing\":%lu},\"peers\":%lu,\"queued_bytes\":%llu,",
                       vigil_version_string(), t, t - since, (unsigned long)m->connecting,
                       (unsigned long)m->handshaking, (unsigned long)m->open,
                       (unsigned long)m->closing, (unsigned long)m->peers,
                       (unsigned long long)m->queued_bytes);
  vigil_cli_buf_printf(b, "\"accepted\":%llu,\"opens\":%llu,\"takeovers\":%llu,\"refused\":{",
                       (unsigned long long)m->accepted, (unsigned long long)m->opened,
                       (unsigned long long)m->takeovers);
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    vigil_cli_buf_printf(b, "%s\"%s\":%llu", i ? "," : "", vigil_refusal_name((vigil_refusal)i),
                         (unsigned long long)m->refused[i]);
  vigil_cli_buf_printf(b, "},\"deaths\":{");
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++)
    vigil_cli_buf_printf(b, "%s\"%s\":%llu", i > 1 ? "," : "", vigil_cause_name((vigil_cause)i),
                         (unsigned long long)m->deaths[i]);
  vigil_cli_buf_printf(b,
                       "},\"pings_sent\":%llu,\"pongs_received\":%llu,\"stalls\":%llu,"
                       "\"queue_full_closes\":%llu,\"accept_emfile\":%llu,"
                       "\"verdicts_early\":%llu",
                       (unsigned long long)m->pings_sent, (unsigned long long)m->pongs_received,
                       (unsigned long long)m->stalls, (unsigned long long)m->queue_full_closes,
                       (unsigned long long)m->accept_emfile, (unsigned long long)m->verdicts_early);
  histogram_json(b, "rtt", &m->rtt, VIGIL_HIST_RTT);
  histogram_json(b, "lateness", &m->lateness, VIGIL_HIST_LATENESS);
  deaths_json(b, deaths);
  if (pf != NULL && pf->present)
    vigil_cli_buf_printf(b,
                         ",\"presence\":{\"processes\":%llu,\"up\":%llu,\"queued\":%llu,"
                         "\"sent\":%llu,\"dropped\":%llu,\"errors\":%llu}",
                         (unsigned long long)pf->processes, (unsigned long long)pf->up,
                         (unsigned long long)pf->queued, (unsigned long long)pf->sent,
                         (unsigned long long)pf->dropped, (unsigned long long)pf->errors);
  else
    vigil_cli_buf_printf(b, ",\"presence\":null");
  vigil_cli_buf_printf(b, "}\n");
}

/* ---- /connections ------------------------------------------------------- */

/* Decimal digits only, at most max; no sign, no spaces, no hex. */
static int parse_u32(const char *s, uint32_t max, uint32_t *out) {
  uint64_t v = 0;
  size_t i;
  if (s[0] == '\0' || strlen(s) > 10)
    return -1;
  for (i = 0; s[i] != '\0'; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > max)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

int vigil_cli_page_parse(const char *offset, const char *limit, const char *id, vigil_cli_page *q,
                         const char **why) {
  memset(q, 0, sizeof(*q));
  q->limit = VIGIL_CLI_PAGE_DEFAULT;
  if (offset != NULL && parse_u32(offset, UINT32_MAX, &q->offset) != 0) {
    *why = "offset must be a whole number 0..4294967295";
    return -1;
  }
  if (limit != NULL && (parse_u32(limit, VIGIL_CLI_PAGE_MAX, &q->limit) != 0 || q->limit == 0)) {
    *why = "limit must be a whole number 1..1000";
    return -1;
  }
  if (id != NULL) {
    size_t n = strlen(id);
    if (n > 255) {
      *why = "id is at most 255 bytes";
      return -1;
    }
    memcpy(q->id, id, n + 1);
    q->id_len = n;
  }
  return 0;
}

typedef struct page_walk {
  vigil_cli_buf *b;
  const vigil_cli_page *q;
  uint64_t now_ns;
  uint32_t open, matched, shown;
} page_walk;

static int id_matches(const vigil_cli_page *q, const char *id, size_t len) {
  size_t i;
  if (q->id_len == 0)
    return 1;
  if (id == NULL || len < q->id_len)
    return 0;
  for (i = 0; i + q->id_len <= len; i++)
    if (memcmp(id + i, q->id, q->id_len) == 0)
      return 1;
  return 0;
}

static uint64_t since(uint64_t now, uint64_t then) {
  return now > then ? now - then : 0;
}

/* ,"key":ms, or ,"key":null when `sampled` is 0 (no measurement yet). */
static void ms_or_null(vigil_cli_buf *b, const char *key, uint64_t ns, uint64_t sampled) {
  if (sampled == 0)
    vigil_cli_buf_printf(b, ",\"%s\":null", key);
  else
    vigil_cli_buf_printf(b, ",\"%s\":%.3f", key, ms_of(ns));
}

static void conn_json(page_walk *w, const vigil_conn_info *ci) {
  vigil_cli_buf *b = w->b;
  const vigil_keepalive *ka = &ci->keepalive;
  vigil_cli_buf_printf(b, "%s{\"id\":", w->shown ? "," : "");
  vigil_cli_buf_json_str(b, ci->id, ci->id_len);
  vigil_cli_buf_printf(b, ",\"peer\":");
  vigil_cli_buf_json_str(b, ci->peer, strlen(ci->peer));
  vigil_cli_buf_printf(b, ",\"open_for_ms\":%.3f,\"silent_ms\":%.3f",
                       ms_of(since(w->now_ns, ci->opened_ns)),
                       ms_of(since(w->now_ns, ci->session.last_recv_ns)));
  /* No pong yet means no RTT sample: null, not a 0 that reads as a fast link. */
  ms_or_null(b, "srtt_ms", ci->session.srtt_ns, ci->session.srtt_ns);
  ms_or_null(b, "rttvar_ms", ci->session.rttvar_ns, ci->session.srtt_ns);
  ms_or_null(b, "last_rtt_ms", ci->last_rtt_ns, ci->last_rtt_ns);
  vigil_cli_buf_printf(
      b,
      ",\"interval_ms\":%lu,\"timeout_ms\":%lu,\"queued_bytes\":%llu,"
      "\"queued_messages\":%llu,\"keepalive\":{\"enable\":%s,\"idle_ms\":%lu,\"interval_ms\":%lu,"
      "\"count\":%lu,\"user_timeout_ms\":%lu}}",
      (unsigned long)ci->session.interval_ms, (unsigned long)ci->session.timeout_ms,
      (unsigned long long)ci->queued_bytes, (unsigned long long)ci->queued_messages,
      ka->enable ? "true" : "false", (unsigned long)ka->idle_ms, (unsigned long)ka->interval_ms,
      (unsigned long)ka->count, (unsigned long)ka->user_timeout_ms);
}

static int page_visit(vigil_conn *c, void *arg) {
  page_walk *w = arg;
  vigil_conn_info ci;
  vigil_conn_get_info(c, &ci);
  w->open++;
  if (!id_matches(w->q, ci.id, ci.id_len))
    return 0;
  if (w->matched++ >= w->q->offset && w->shown < w->q->limit) {
    conn_json(w, &ci);
    w->shown++;
  }
  return 0;
}

void vigil_cli_conns_json(vigil_cli_buf *b, vigil_server *srv, uint64_t now_ns,
                          const vigil_cli_page *q) {
  page_walk w;
  memset(&w, 0, sizeof(w));
  w.b = b;
  w.q = q;
  w.now_ns = now_ns;
  vigil_cli_buf_printf(b, "{\"connections\":[");
  (void)vigil_server_foreach(srv, page_visit, &w);
  vigil_cli_buf_printf(b, "],\"open\":%lu,\"matched\":%lu,\"offset\":%lu,\"limit\":%lu,\"id\":",
                       (unsigned long)w.open, (unsigned long)w.matched, (unsigned long)q->offset,
                       (unsigned long)q->limit);
  vigil_cli_buf_json_str(b, q->id, q->id_len);
  vigil_cli_buf_printf(b, "}\n");
}

/* ---- reading a scrape back (vigil status) ------------------------------- */

/* The value of label `key` in "{a=\"x\",b=\"y\"}" into out; 0 or -1. */
static int label_of(const char *labels, const char *end, const char *key, char *out, size_t cap) {
  size_t kn = strlen(key);
  const char *p = labels;
  while (p != NULL && p < end) {
    const char *q;
    if ((size_t)(end - p) > kn + 2 && strncmp(p, key, kn) == 0 && p[kn] == '=' &&
        p[kn + 1] == '"') {
      p += kn + 2;
      q = memchr(p, '"', (size_t)(end - p));
      if (q == NULL || (size_t)(q - p) >= cap)
        return -1;
      memcpy(out, p, (size_t)(q - p));
      out[q - p] = '\0';
      return 0;
    }
    p = memchr(p, ',', (size_t)(end - p));
    if (p != NULL)
      p++;
  }
  return -1;
}

static uint64_t *cause_slot(vigil_metrics *m, const char *name) {
  unsigned i;
  for (i = 1; i < VIGIL_CAUSE_COUNT; i++)
    if (strcmp(name, vigil_cause_name((vigil_cause)i)) == 0)
      return &m->deaths[i];
  return NULL;
}

static uint64_t *refusal_slot(vigil_metrics *m, const char *name) {
  unsigned i;
  for (i = 0; i < VIGIL_REFUSAL_COUNT; i++)
    if (strcmp(name, vigil_refusal_name((vigil_refusal)i)) == 0)
      return &m->refused[i];
  return NULL;
}

/* Histogram samples: _bucket{le} (cumulative, turned back into per-bucket
 * counts at the end), _count, _sum (seconds). */
static void hist_sample(vigil_histogram *h, vigil_histogram_kind kind, const char *suffix,
                        const char *labels, const char *lend, const char *value) {
  char le[32];
  unsigned i;
  if (strcmp(suffix, "_count") == 0) {
    h->count = strtoull(value, NULL, 10);
  } else if (strcmp(suffix, "_sum") == 0) {
    h->sum_ns = (uint64_t)(strtod(value, NULL) * 1e9);
  } else if (strcmp(suffix, "_bucket") == 0 && labels != NULL &&
             label_of(labels, lend, "le", le, sizeof(le)) == 0) {
    uint64_t b = (uint64_t)(strtod(le, NULL) * 1e9 + 0.5);
    for (i = 0; i < VIGIL_HIST_BUCKETS; i++)
      if (vigil_histogram_bound_ns(kind, i) == b)
        h->buckets[i] = strtoull(value, NULL, 10); /* cumulative for now */
  }
}

static void hist_uncumulate(vigil_histogram *h) {
  unsigned i;
  for (i = VIGIL_HIST_BUCKETS - 1; i > 0; i--)
    h->buckets[i] = h->buckets[i] >= h->buckets[i - 1] ? h->buckets[i] - h->buckets[i - 1] : 0;
}

static void scrape_line(vigil_metrics *m, vigil_cli_presence_figures *pf, const char *line,
                        const char *eol) {
  char name[80], label[40];
  const char *p = line, *labels = NULL, *lend = NULL, *value;
  size_t n;
  uint64_t v, *slot = NULL;
  while (p < eol && *p != '{' && *p != ' ')
    p++;
  n = (size_t)(p - line);
  if (n == 0 || n >= sizeof(name))
    return;
  memcpy(name, line, n);
  name[n] = '\0';
  if (p < eol && *p == '{') {
    labels = p + 1;
    lend = memchr(p, '}', (size_t)(eol - p));
    if (lend == NULL)
      return;
    p = lend + 1;
  }
  if (p >= eol || *p != ' ')
    return;
  value = p + 1;
  v = strtoull(value, NULL, 10);
  if (pf != NULL && strncmp(name, "vigil_presence_", 15) == 0) {
    size_t i;
    for (i = 0; i < PRESENCE_ROWS; i++)
      if (strcmp(name, presence_rows[i].name) == 0) {
        *presence_slot(pf, i) = v;
        pf->present = 1;
      }
    return;
  }
  if (strncmp(name, "vigil_rtt_seconds", 17) == 0) {
    hist_sample(&m->rtt, VIGIL_HIST_RTT, name + 17, labels, lend, value);
    return;
  }
  if (strncmp(name, "vigil_verdict_lateness_seconds", 30) == 0) {
    hist_sample(&m->lateness, VIGIL_HIST_LATENESS, name + 30, labels, lend, value);
    return;
  }
  if (strcmp(name, "vigil_connections") == 0 && labels != NULL &&
      label_of(labels, lend, "state", label, sizeof(label)) == 0) {
    uint32_t *g = strcmp(label, "connecting") == 0    ? &m->connecting
                  : strcmp(label, "handshaking") == 0 ? &m->handshaking
                  : strcmp(label, "open") == 0        ? &m->open
                  : strcmp(label, "closing") == 0     ? &m->closing
                                                      : NULL;
    if (g != NULL)
      *g = (uint32_t)v;
    return;
  }
  if (strcmp(name, "vigil_peers") == 0) {
    m->peers = (uint32_t)v;
    return;
  }
  if (strcmp(name, "vigil_deaths_total") == 0 && labels != NULL &&
      label_of(labels, lend, "cause", label, sizeof(label)) == 0)
    slot = cause_slot(m, label);
  else if (strcmp(name, "vigil_refused_total") == 0 && labels != NULL &&
           label_of(labels, lend, "reason", label, sizeof(label)) == 0)
    slot = refusal_slot(m, label);
  else if (strcmp(name, "vigil_queued_bytes") == 0)
    slot = &m->queued_bytes;
  else if (strcmp(name, "vigil_accepted_total") == 0)
    slot = &m->accepted;
  else if (strcmp(name, "vigil_opens_total") == 0)
    slot = &m->opened;
  else if (strcmp(name, "vigil_takeovers_total") == 0)
    slot = &m->takeovers;
  else if (strcmp(name, "vigil_pings_sent_total") == 0)
    slot = &m->pings_sent;
  else if (strcmp(name, "vigil_pongs_received_total") == 0)
    slot = &m->pongs_received;
  else if (strcmp(name, "vigil_stalls_total") == 0)
    slot = &m->stalls;
  else if (strcmp(name, "vigil_queue_full_closes_total") == 0)
    slot = &m->queue_full_closes;
  else if (strcmp(name, "vigil_accept_emfile_total") == 0)
    slot = &m->accept_emfile;
  else if (strcmp(name, "vigil_verdicts_early_total") == 0)
    slot = &m->verdicts_early;
  if (slot != NULL)
    *slot = v;
}

int vigil_cli_scrape_parse(const char *text, size_t len, vigil_metrics *m,
                           vigil_cli_presence_figures *pf) {
  const char *p = text, *end = text + len;
  int samples = 0;
  memset(m, 0, sizeof(*m));
  if (pf != NULL)
    memset(pf, 0, sizeof(*pf));
  m->size = sizeof(*m);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
      eol = end;
    if (eol - p < 512 && *p != '#' && strncmp(p, "vigil_", 6) == 0) {
      char line[512];
      memcpy(line, p, (size_t)(eol - p));
      line[eol - p] = '\0';
      scrape_line(m, pf, line, line + (eol - p));
      samples++;
    }
    p = eol + 1;
  }
  hist_uncumulate(&m->rtt);
  hist_uncumulate(&m->lateness);
  return samples > 0 ? 0 : -1;
}
