#ifndef VIGIL_WORKERS_H
#define VIGIL_WORKERS_H

/* Worker processes under a supervisor: what `vigil serve --workers N`
 * runs on.
 *
 * One process can hold only as many connections as its descriptor limit
 * allows (a per-process limit), so a server that outgrows it runs N worker
 * processes that share the listening port: each worker opens its own
 * listener with vigil_server_config.reuseport set (SO_REUSEPORT: the kernel
 * spreads new connections over every listener of the port).
 *
 * vigil_workers_run forks N workers, each calling cfg->run(index, user) in
 * a process of its own, and supervises them until it is told to stop:
 *
 *   - a worker that ends for any reason is started again after a delay that
 *     doubles with each death in quick succession (restart_base_ms,
 *     doubling up to restart_max_ms; a worker that lived stable_ms starts
 *     over at the base). After max_restarts quick deaths in a row of one
 *     worker the supervisor gives up: it stops the others and returns
 *     VIGIL_EWORKER (a worker that cannot start, e.g. a port it cannot
 *     bind, is not restarted forever).
 *   - SIGTERM or SIGINT to the supervisor sends SIGTERM to every worker and
 *     waits for them; a worker still running stop_timeout_ms later, or when
 *     a second signal arrives, is killed (SIGKILL).
 *   - a worker whose supervisor dies is sent SIGTERM by the kernel where it
 *     can (Linux: PR_SET_PDEATHSIG), so no worker outlives its supervisor.
 *
 * A worker starts as a fork of the supervisor: call vigil_workers_run
 * before creating loops or threads (a forked child has only the thread that
 * forked). In the worker, SIGINT is ignored (a terminal's Ctrl-C reaches
 * the whole process group; the supervisor turns it into one SIGTERM per
 * worker) and the other signals have their default disposition.
 *
 * Windows has no SO_REUSEPORT and no fork: vigil_workers_run returns
 * VIGIL_ENOTSUP there without starting anything (docs/WINDOWS.md).
 *
 * Threading: the supervisor blocks the calling thread until it returns. */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "version.h"

typedef enum vigil_worker_event_type {
  VIGIL_WORKER_STARTED = 1, /* pid is running run(worker) */
  VIGIL_WORKER_EXITED       /* pid ended: status or signal; restart_in_ms */
} vigil_worker_event_type;

typedef struct vigil_worker_event {
  vigil_worker_event_type type;
  unsigned worker;        /* 0..workers-1 */
  long pid;               /* the worker's process id */
  unsigned restarts;      /* times this worker was started again */
  int status;             /* EXITED: exit status, or -1 when killed by a signal */
  int signal;             /* EXITED: the signal that killed it, or 0 */
  uint64_t lived_ms;      /* EXITED: how long it ran */
  int restarting;         /* EXITED: 1 if it will be started again */
  uint32_t restart_in_ms; /* EXITED and restarting: after this delay */
} vigil_worker_event;

typedef struct vigil_workers_config {
  size_t size;      /* set by vigil_workers_config_init (docs/ABI.md) */
  unsigned workers; /* how many, 1..1024 */
  /* The worker's main, in its own process; its return value is the
   * process's exit status. */
  int (*run)(unsigned worker, void *user);
  /* Called in the supervisor for every start and end of a worker (may be
   * NULL). */
  void (*on_event)(const vigil_worker_event *ev, void *user);
  void *user;
  uint32_t restart_base_ms; /* first restart delay (default 100) */
  uint32_t restart_max_ms;  /* delay cap (default 5000) */
  uint32_t stable_ms;       /* a worker that lived this long was healthy (default 10000) */
  uint32_t max_restarts;    /* quick deaths in a row before giving up (default 8) */
  uint32_t stop_timeout_ms; /* SIGTERM to SIGKILL when stopping (default 10000) */
} vigil_workers_config;

/* Defaults and cfg->size (a macro: the caller's sizeof; docs/ABI.md). */
VIGIL_EXTERN void vigil_workers_config_init_sized(vigil_workers_config *cfg, size_t size);
#define vigil_workers_config_init(cfg) vigil_workers_config_init_sized((cfg), sizeof *(cfg))

/* Runs and supervises the workers until SIGTERM / SIGINT (then 0 once
 * every worker is gone, whatever their exit statuses) or until one worker
 * died max_restarts times in quick succession (VIGIL_EWORKER, after
 * stopping the others). Returns VIGIL_EINVAL (bad config: no run, workers
 * 0 or more than 1024, never _init'ed), VIGIL_ENOTSUP (no worker processes
 * on this platform), VIGIL_ENOMEM, or a negative errno when the
 * supervisor's own pipe, signal handlers or the first fork fail. The
 * supervisor's signal dispositions for SIGTERM, SIGINT and SIGCHLD are
 * restored before it returns. */
VIGIL_EXTERN int vigil_workers_run(const vigil_workers_config *cfg);

#endif
