/* Host name resolution that never blocks the loop.
 *
 * getaddrinfo blocks for as long as the system's resolver takes (a DNS
 * server that does not answer: seconds, retried). On the loop's thread that
 * stops every heartbeat of every connection, and the loop's stall guard
 * would then excuse the silence of peers it could not hear. So a name is
 * resolved on a worker thread and the result comes back to the loop, as in
 * libuv's uv_getaddrinfo. Numeric addresses never leave the loop's thread
 * (vigil__resolve_numeric: getaddrinfo with AI_NUMERICHOST does no I/O).
 *
 * Workers. A process-wide pool of at most VIGIL__RESOLVE_THREADS threads,
 * started on demand and kept (blocked on a condition variable) once
 * started, takes lookups from one FIFO queue. At most
 * VIGIL__RESOLVE_MAX_PENDING lookups may be queued or running at once; one
 * more is refused with VIGIL_EBUSY rather than queued without bound (the
 * client reports it as a failed attempt and retries after its backoff).
 *
 * Ownership. A lookup is two allocations: the loop's side (vigil__lookup:
 * callback, wakeup) and a job shared with the worker (host, resolver,
 * result), whose state changes only under the pool's lock:
 *
 *   QUEUED  -> RUNNING  a worker took it (the resolver runs unlocked)
 *   RUNNING -> DONE     result stored; the worker wakes the loop, then
 *                       never touches the job again
 *
 * Cancelling (the client closed) frees a QUEUED or DONE job at once; a
 * RUNNING job is only marked orphaned, and the worker frees it when the
 * resolver returns, without waking anybody (the loop side closes its
 * async handle only after marking the job, under the pool's lock, so no
 * worker sends on a closed handle). So a result that arrives after
 * its client is gone touches nothing but its own job. A resolver given in
 * the client's config may therefore still be running (and using its arg)
 * after vigil_client_free; docs/RUNTIME.md says so.
 *
 * Delivery. Each lookup has a vigil_async handle: the worker sends on it
 * once the result is stored, and its callback runs the lookup's callback
 * on the loop's thread. The handle also keeps the loop alive while the
 * lookup is in flight, and only then. */
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "queue.h"
#include "resolve.h"
#include "thread.h"

enum { QUEUED, RUNNING, DONE };

typedef struct job {
  vigil__queue link;   /* in pool.jobs while QUEUED */
  int state;           /* under pool.lock */
  int orphaned;        /* under pool.lock: the loop side gave up */
  vigil_resolve_fn fn; /* set before queueing, then read-only */
  void *fn_arg;
  vigil_async *wake; /* the loop side's, while not orphaned */
  int status;        /* written by the worker before DONE */
  size_t n;
  struct sockaddr_storage addrs[VIGIL__RESOLVE_MAX_ADDRS];
  char host[];
} job;

struct vigil__lookup {
  vigil__lookup_cb cb;
  void *arg;
  job *job;
  vigil_async wake;
};

static struct {
  vigil__mutex lock;
  vigil__cond cond;
  vigil__queue jobs; /* QUEUED, oldest first */
  unsigned queued;   /* in jobs */
  unsigned pending;  /* QUEUED or RUNNING (orphans included) */
  unsigned running;  /* RUNNING */
  unsigned threads;  /* started (they never exit) */
  unsigned idle;     /* waiting for a job */
  unsigned limit;    /* 0: VIGIL__RESOLVE_MAX_PENDING */
} pool = {VIGIL__MUTEX_INIT, VIGIL__COND_INIT, {&pool.jobs, &pool.jobs}, 0, 0, 0, 0, 0, 0};
static vigil__once_flag atfork_once = VIGIL__ONCE_INIT;

/* fork(): the child has none of the workers. Queued lookups wait for new
 * ones (started by the child's next lookup); the child's copies of the
 * running ones never finish, so they stop counting against the cap and
 * are left to their attempt's timeout. */
static void fork_prepare(void) {
  vigil__mutex_lock(&pool.lock);
}

static void fork_parent(void) {
  vigil__mutex_unlock(&pool.lock);
}

static void fork_child(void) {
  pool.pending -= pool.running;
  pool.running = 0;
  pool.threads = 0;
  pool.idle = 0;
  vigil__mutex_unlock(&pool.lock);
}

static void register_fork_handlers(void) {
  vigil__thread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- the system's resolver ---------------------------------------------- */

static int lookup_error(int rc) {
  if (rc == EAI_MEMORY)
    return VIGIL_ENOMEM;
  if (rc == EAI_AGAIN)
    return VIGIL_EAGAIN;
  if (rc == EAI_FAMILY)
    return VIGIL_EAFNOSUPPORT;
  return VIGIL_ENOENT;
}

/* IPv4 and IPv6 entries of res, in order, into out (at most max). */
static size_t copy_addrs(const struct addrinfo *res, struct sockaddr_storage *out, size_t max) {
  size_t n = 0;
  for (; res != NULL && n < max; res = res->ai_next) {
    if ((res->ai_family != AF_INET && res->ai_family != AF_INET6) ||
        vigil_ip_len(res->ai_addr) == 0 || (size_t)res->ai_addrlen > sizeof out[n])
      continue;
    memset(&out[n], 0, sizeof out[n]);
    memcpy(&out[n], res->ai_addr, (size_t)res->ai_addrlen);
    n++;
  }
  return n;
}

int vigil_resolve_os(void *arg, const char *host, struct sockaddr_storage *out, size_t max,
                     size_t *n) {
  struct addrinfo hints, *res = NULL;
  int rc;
  (void)arg;
  if (host == NULL || out == NULL || n == NULL)
    return VIGIL_EINVAL;
  *n = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0)
    return lookup_error(rc);
  *n = copy_addrs(res, out, max);
  freeaddrinfo(res);
  return *n != 0 ? 0 : VIGIL_ENOENT;
}

int vigil__resolve_numeric(const char *host, struct sockaddr_storage *out) {
  struct addrinfo hints, *res = NULL;
  size_t n;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, NULL, &hints, &res) != 0)
    return VIGIL_EINVAL;
  n = copy_addrs(res, out, 1);
  freeaddrinfo(res);
  return n == 1 ? 0 : VIGIL_EINVAL;
}

/* ---- order (RFC 8305 section 4) ----------------------------------------- */

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  int len = vigil_ip_len((const struct sockaddr *)a);
  return a->ss_family == b->ss_family && memcmp(a, b, (size_t)len) == 0;
}

size_t vigil__resolve_order(struct sockaddr_storage *addrs, size_t n) {
  struct sockaddr_storage v6[VIGIL__RESOLVE_MAX_ADDRS], v4[VIGIL__RESOLVE_MAX_ADDRS];
  size_t n6 = 0, n4 = 0, i, j, out = 0;
  int dup;
  if (n > VIGIL__RESOLVE_MAX_ADDRS)
    n = VIGIL__RESOLVE_MAX_ADDRS;
  for (i = 0; i < n; i++) {
    for (dup = 0, j = 0; j < i && !dup; j++)
      dup = same_addr(&addrs[i], &addrs[j]);
    if (dup)
      continue;
    if (addrs[i].ss_family == AF_INET6)
      v6[n6++] = addrs[i];
    else if (addrs[i].ss_family == AF_INET)
      v4[n4++] = addrs[i];
  }
  for (i = 0; i < n6 || i < n4; i++) {
    if (i < n6)
      addrs[out++] = v6[i];
    if (i < n4)
      addrs[out++] = v4[i];
  }
  return out;
}

/* ---- workers ------------------------------------------------------------- */

static void worker(void *unused) {
  job *j;
  size_t n;
  int status;
  (void)unused;
  vigil__mutex_lock(&pool.lock);
  for (;;) {
    while (vigil__queue_empty(&pool.jobs)) {
      pool.idle++;
      vigil__cond_wait(&pool.cond, &pool.lock);
      pool.idle--;
    }
    j = vigil_container_of(pool.jobs.next, job, link);
    vigil__queue_remove(&j->link);
    pool.queued--;
    pool.running++;
    j->state = RUNNING;
    vigil__mutex_unlock(&pool.lock);

    n = 0;
    status = j->fn(j->fn_arg, j->host, j->addrs, VIGIL__RESOLVE_MAX_ADDRS, &n);
    if (status > 0)
      status = VIGIL_EINVAL; /* a resolver breaking its contract */
    if (n > VIGIL__RESOLVE_MAX_ADDRS)
      n = VIGIL__RESOLVE_MAX_ADDRS;
    if (status == 0 && n == 0)
      status = VIGIL_ENOENT;

    vigil__mutex_lock(&pool.lock);
    pool.pending--;
    pool.running--;
    j->status = status;
    j->n = status == 0 ? n : 0;
    j->state = DONE;
    if (j->orphaned)
      free(j);
    else
      (void)vigil_async_send(j->wake);
  }
}

/* Queues j; starts a worker when more jobs wait than workers are idle. */
static int submit(job *j) {
  int rc = 0;
  vigil__once(&atfork_once, register_fork_handlers);
  vigil__mutex_lock(&pool.lock);
  if (pool.pending >= (pool.limit != 0 ? pool.limit : VIGIL__RESOLVE_MAX_PENDING)) {
    vigil__mutex_unlock(&pool.lock);
    return VIGIL_EBUSY;
  }
  if (pool.queued + 1 > pool.idle && pool.threads < VIGIL__RESOLVE_THREADS) {
    rc = vigil__thread_start(worker, NULL);
    if (rc == 0)
      pool.threads++;
    else if (pool.threads != 0)
      rc = 0; /* the running workers will get to it */
  }
  if (rc == 0) {
    j->state = QUEUED;
    vigil__queue_insert_tail(&pool.jobs, &j->link);
    pool.queued++;
    pool.pending++;
    vigil__cond_signal(&pool.cond);
  }
  vigil__mutex_unlock(&pool.lock);
  return rc;
}

unsigned vigil__resolve_set_limit(unsigned max) {
  unsigned old;
  vigil__mutex_lock(&pool.lock);
  old = pool.limit != 0 ? pool.limit : VIGIL__RESOLVE_MAX_PENDING;
  pool.limit = max;
  vigil__mutex_unlock(&pool.lock);
  return old;
}

/* ---- the loop's side ------------------------------------------------------ */

static void on_closed(vigil_async *a) {
  free(vigil_container_of(a, vigil__lookup, wake));
}

static void on_wake(vigil_async *a) {
  vigil__lookup *l = vigil_container_of(a, vigil__lookup, wake);
  job *j = l->job;
  int state;
  vigil__mutex_lock(&pool.lock);
  state = j->state;
  vigil__mutex_unlock(&pool.lock);
  if (state != DONE)
    return; /* cannot happen: the worker sends after DONE */
  /* DONE: the worker has let go of j. */
  vigil_async_close(&l->wake, on_closed);
  l->cb(l->arg, j->status, j->addrs, j->n);
  free(j);
}

int vigil__lookup_start(vigil__lookup **out, vigil_loop *loop, const char *host,
                        vigil_resolve_fn fn, void *fn_arg, vigil__lookup_cb cb, void *arg) {
  vigil__lookup *l;
  job *j;
  size_t len;
  int rc;
  if (out == NULL || loop == NULL || host == NULL || cb == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  len = strlen(host);
  l = calloc(1, sizeof *l);
  j = calloc(1, sizeof *j + len + 1);
  if (l == NULL || j == NULL) {
    free(l);
    free(j);
    return VIGIL_ENOMEM;
  }
  memcpy(j->host, host, len + 1);
  j->fn = fn != NULL ? fn : vigil_resolve_os;
  j->fn_arg = fn_arg;
  vigil__queue_init(&j->link);
  l->cb = cb;
  l->arg = arg;
  l->job = j;
  j->wake = &l->wake;
  rc = vigil_async_init(loop, &l->wake, on_wake); /* before a worker may send */
  if (rc != 0) {
    free(j);
    free(l);
    return rc;
  }
  rc = submit(j);
  if (rc != 0) {
    free(j);
    vigil_async_close(&l->wake, on_closed);
    return rc;
  }
  *out = l;
  return 0;
}

void vigil__lookup_cancel(vigil__lookup *l) {
  job *j;
  if (l == NULL)
    return;
  j = l->job;
  vigil__mutex_lock(&pool.lock);
  if (j->state == QUEUED) {
    vigil__queue_remove(&j->link);
    pool.queued--;
    pool.pending--;
  } else if (j->state == RUNNING) {
    j->orphaned = 1; /* the worker frees it */
    j = NULL;
  }
  vigil__mutex_unlock(&pool.lock);
  free(j);
  vigil_async_close(&l->wake, on_closed);
}
