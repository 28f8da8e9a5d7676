/* One scrape for the whole of `vigil serve --workers N --metrics`: the
 * figures of every worker process, added, in memory the processes share.
 *
 * The supervisor maps one anonymous MAP_SHARED region before it forks, so
 * every worker and the endpoint process (below) see the same pages:
 *
 *   - one slot per worker, written only by that worker: its metrics
 *     snapshot, its 64 most recent deaths and its presence store's
 *     figures (--presence), published on the endpoint's
 *     50 ms tick (tools/metrics-http.c). Each slot holds two copies; the
 *     worker writes the one readers are not pointed at, under that copy's
 *     sequence number (odd while writing), then points readers at it. A
 *     reader copies the current one and retries when the sequence moved
 *     or was odd. A worker killed in the middle of a write leaves the
 *     pointer on the last whole copy, so a torn snapshot is never read.
 *   - the retired figures, written only by the supervisor: when a worker
 *     ends (vigil_cli_shared_retire, from the supervisor's worker_exit), its
 *     last whole copy is added to them (counters and histograms; its gauges
 *     are gone with its connections) and its slot is cleared, under the
 *     region's epoch (odd while retiring), before the worker is started
 *     again. So every vigil_*_total of the sum only grows: a restarted
 *     worker counts from 0 on top of what its predecessor counted.
 *
 * The reader (the endpoint process) adds retired + every slot under the
 * epoch and merges the recent deaths by time. Every copy is word by word
 * with relaxed atomic loads and stores, ordered by acquire / release on
 * the sequence numbers (a seqlock), so no process waits on another: a
 * worker's tick never blocks, the supervisor never blocks, and a reader
 * that keeps losing the race gives up after a bounded number of tries.
 *
 * Death records hold a `detail` pointer to static text: valid in every
 * process of the region, because all are forks of one image (no exec).
 *
 * Built where the endpoint is (libmicrohttpd) and memory can be shared
 * anonymously (MAP_ANONYMOUS); elsewhere vigil_cli_shared_new fails and
 * --workers keeps one endpoint per worker. */
#ifndef VIGIL_TOOLS_METRICS_SHARED_H
#define VIGIL_TOOLS_METRICS_SHARED_H

#include "metrics-http.h"

/* vigil_cli_shared is declared in metrics-http.h. */

/* Maps a region for `workers` (1..256) slots, all zero. Returns 0, or -1
 * with errno set (ENOTSUP where it cannot be built). */
int vigil_cli_shared_new(vigil_cli_shared **out, unsigned workers);

/* Unmaps it (in the process that calls; the others keep their mapping). */
void vigil_cli_shared_free(vigil_cli_shared *sh);

/* Worker `worker`: publishes its snapshot, recent deaths and presence
 * store figures. Never waits. */
void vigil_cli_shared_publish(vigil_cli_shared *sh, unsigned worker, const vigil_metrics *m,
                              const vigil_cli_deaths *d, const vigil_cli_presence_figures *pf);

/* Supervisor: worker `worker` ended (it is reaped, so it writes no more);
 * its counters join the retired ones and its slot is cleared. */
void vigil_cli_shared_retire(vigil_cli_shared *sh, unsigned worker);

/* The whole server: *m the sum (m->size set), *d the newest deaths of all
 * workers, deaths_recorded the sum, *pf the presence figures summed.
 * Returns 0, or -1 when the writers kept moving for every try (a retry
 * later will do). */
int vigil_cli_shared_read(const vigil_cli_shared *sh, vigil_metrics *m, vigil_cli_deaths *d,
                          vigil_cli_presence_figures *pf);

#endif
