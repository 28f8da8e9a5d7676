/* `vigil serve --metrics HOST:PORT`: an HTTP endpoint for operators.
 *
 *   /metrics      Prometheus text exposition 0.0.4 (vigil_metrics_format)
 *   /api/status   the same figures as JSON, plus the recent deaths (what the
 *                 status page and `vigil status` read)
 *   /connections  the open connections as JSON, paged: ?offset=N&limit=M
 *                 (1..1000, default 100) and ?id=TEXT (ids containing TEXT)
 *   /             the live status page: one self-contained HTML file
 *                 (tools/status.html, no CDN) that polls /api/status
 *
 * Two files: metrics-http.c runs libmicrohttpd in its own thread and hands
 * figures across (below); status-json.c renders the JSON and checks the
 * query parameters, without HTTP, so tests and fuzzers reach it directly.
 *
 * Threads. The heartbeat loop never waits for HTTP. libmicrohttpd serves
 * from one internal thread; the loop publishes a metrics snapshot and the
 * recent deaths into a mutex-guarded copy on a 50 ms tick, and /metrics,
 * /api/status and / are answered from that copy by the HTTP thread. A
 * /connections request is handed to the loop: the HTTP thread posts it
 * under the mutex and wakes the loop (a vigil_async), whose callback walks
 * the open connections and renders the page while the HTTP thread waits
 * (bounded, 2 s) on a condition variable. So the loop's share is one lock per tick plus the walk a
 * page request asks for; the mutex is never held while writing to a socket.
 *
 * Limits: at most 32 HTTP connections (8 per client address), 16 KiB of
 * request per connection (larger headers get 431 / are dropped by
 * libmicrohttpd), 10 s of idleness per connection; only GET and HEAD.
 *
 * With --workers N one scrape shows the whole server: the workers'
 * snapshots are added (vigil_metrics_add), not labelled per worker; a
 * worker label would multiply the series of every dashboard and alert by N
 * for a split that balancing makes uninteresting. The workers publish into
 * shared memory and a process of its own serves the sum
 * (tools/metrics-shared.h); each worker keeps its own endpoint too, for
 * its /connections. */
#ifndef VIGIL_TOOLS_METRICS_HTTP_H
#define VIGIL_TOOLS_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cli-presence.h"
#include "vigil.h"

/* ---- status-json.c: JSON without HTTP -------------------------------- */

/* The deaths the status page lists, newest last. */
#define VIGIL_CLI_RECENT_DEATHS 64

typedef struct vigil_cli_death_rec {
  double t; /* Unix time */
  uint64_t silent_ns;
  const char *detail; /* static text (vigil_death.detail), or NULL */
  vigil_cause cause;
  uint32_t timeout_ms;
  uint8_t id_len;
  char peer[48];
  char id[255];
} vigil_cli_death_rec;

typedef struct vigil_cli_deaths {
  vigil_cli_death_rec rec[VIGIL_CLI_RECENT_DEATHS];
  uint64_t total; /* ever recorded; rec[(total - 1) % N] is the newest */
} vigil_cli_deaths;

/* Records a death into the ring (id, peer copied). */
void vigil_cli_deaths_add(vigil_cli_deaths *r, double t, const char *id, size_t id_len,
                          const char *peer, const vigil_death *d);

/* Merges b's records into a: a keeps the newest VIGIL_CLI_RECENT_DEATHS
 * of both by time, and a->total becomes a->total + b->total (the deaths
 * of several workers shown as one server's). */
void vigil_cli_deaths_merge(vigil_cli_deaths *a, const vigil_cli_deaths *b);

/* The presence store's health (--presence) as Prometheus text, the
 * vigil_presence_* families of docs/OPERATIONS.md; nothing when
 * f->present is 0. snprintf-style: returns the length the whole text
 * needs (a result >= cap was cut), NUL-terminated when cap > 0. */
long vigil_cli_presence_format(const vigil_cli_presence_figures *f, char *buf, size_t cap);

/* Adds src into dst: counters and gauges summed (several workers). */
void vigil_cli_presence_add(vigil_cli_presence_figures *dst, const vigil_cli_presence_figures *src);

/* A growing text buffer with a hard cap: appends past `max` set `failed`
 * instead of growing (and so does running out of memory). */
typedef struct vigil_cli_buf {
  char *p;
  size_t len, cap, max;
  int failed;
} vigil_cli_buf;

void vigil_cli_buf_init(vigil_cli_buf *b, size_t max);
void vigil_cli_buf_free(vigil_cli_buf *b);
void vigil_cli_buf_printf(vigil_cli_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s[0..len) as a JSON string, quotes included. */
void vigil_cli_buf_json_str(vigil_cli_buf *b, const char *s, size_t len);

/* /api/status: the snapshot m taken at Unix time t, started at `since`,
 * the recent deaths, and the presence store's health (null without
 * --presence; pf may be NULL). */
void vigil_cli_status_json(vigil_cli_buf *b, const vigil_metrics *m, double t, double since,
                           const vigil_cli_deaths *deaths, const vigil_cli_presence_figures *pf);

/* /connections parameters, checked. */
#define VIGIL_CLI_PAGE_MAX 1000u
#define VIGIL_CLI_PAGE_DEFAULT 100u
typedef struct vigil_cli_page {
  uint32_t offset, limit;
  char id[256]; /* substring to match, "" for all */
  size_t id_len;
} vigil_cli_page;

/* From the raw (decoded) values of ?offset, ?limit, ?id, each NULL when
 * absent. offset: 0..4294967295 in decimal digits; limit: 1..1000; id: at
 * most 255 bytes. Returns 0, or -1 with *why saying which and why. */
int vigil_cli_page_parse(const char *offset, const char *limit, const char *id, vigil_cli_page *q,
                         const char **why);

/* The page of srv's open connections that q asks for, as JSON; now_ns is
 * the loop's time. From the loop's thread. */
void vigil_cli_conns_json(vigil_cli_buf *b, vigil_server *srv, uint64_t now_ns,
                          const vigil_cli_page *q);

/* A /metrics scrape (Prometheus text from vigil_metrics_format and
 * vigil_cli_presence_format) read back into *m, and the presence store's
 * figures into *pf (present 0 when the scrape had none; pf may be NULL);
 * unknown lines are ignored, lines over 511 bytes skipped. Returns 0, or -1
 * when it held no vigil_ sample at all. */
int vigil_cli_scrape_parse(const char *text, size_t len, vigil_metrics *m,
                           vigil_cli_presence_figures *pf);

/* ---- metrics-http.c: the endpoint ------------------------------------ */

typedef struct vigil_cli_http vigil_cli_http;

/* 1 when this build has the endpoint (libmicrohttpd was found). */
int vigil_cli_http_available(void);

/* Starts serving srv's figures on host:port (host "" = 127.0.0.1; port 0:
 * the kernel chooses, *bound gets it). Returns 0, or -1 with a message in
 * err (built without libmicrohttpd, cannot bind, ...). */
int vigil_cli_http_start(vigil_cli_http **out, vigil_loop *loop, vigil_server *srv,
                         const char *host, uint16_t port, uint16_t *bound, char *err,
                         size_t errlen);

/* One endpoint for the whole of `vigil serve --workers N`: serves the sum
 * of the workers' figures in sh (tools/metrics-shared.h) on listen_fd, a
 * socket bound and listening already (the supervisor's, so the port
 * outlives a restart of this process). /connections answers 404 saying
 * that each worker's own endpoint lists its connections. Returns 0, or -1
 * with a message in err. */
typedef struct vigil_cli_shared vigil_cli_shared;
int vigil_cli_http_start_whole(vigil_cli_http **out, const vigil_cli_shared *sh, int listen_fd,
                               char *err, size_t errlen);

/* A worker's endpoint also publishes each tick's snapshot and recent
 * deaths into sh as worker `worker`. */
void vigil_cli_http_share(vigil_cli_http *h, vigil_cli_shared *sh, unsigned worker);

/* With --presence: the endpoint also shows the store's health (read on
 * the loop's tick). */
void vigil_cli_http_presence(vigil_cli_http *h, const vigil_cli_presence *p);

/* From on_death: the status page lists it. */
void vigil_cli_http_death(vigil_cli_http *h, vigil_conn *c, const vigil_death *d);

/* Stops the HTTP thread (open HTTP connections are closed), the tick, and
 * frees. NULL is ignored. */
void vigil_cli_http_stop(vigil_cli_http *h);

#endif
