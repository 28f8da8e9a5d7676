/* The figures of `vigil serve --workers N` in shared memory: one slot per
 * worker, the retired figures of ended workers, and the sum the endpoint
 * serves. The design (who writes what, the seqlocks, why counters never go
 * back) is at the top of tools/metrics-shared.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-shared.h"

#if defined(VIGIL_HAVE_MICROHTTPD)
#include <sys/mman.h>
#endif

#if defined(VIGIL_HAVE_MICROHTTPD) && defined(MAP_ANONYMOUS)

/* A reader gives up after this many torn copies in a row (a writer
 * rewrites a copy every 50 ms; a copy takes microseconds). */
#define READ_TRIES 64

/* What a worker publishes, copied as 64-bit words. */
typedef struct shared_snap {
  vigil_metrics m;
  vigil_cli_deaths d;
  vigil_cli_presence_figures pf;
} shared_snap;

#define WORDS (sizeof(shared_snap) / sizeof(uint64_t))
_Static_assert(sizeof(shared_snap) % sizeof(uint64_t) == 0, "a snapshot is copied in 64-bit words");

typedef struct shared_copy {
  uint64_t seq; /* odd while being written */
  union {
    shared_snap p;
    uint64_t w[WORDS];
  } u;
} shared_copy;

typedef struct shared_slot {
  uint64_t current; /* the copy readers take: 0 or 1 */
  shared_copy c[2];
} shared_slot;

struct vigil_cli_shared {
  size_t bytes; /* the mapping's length */
  unsigned workers;
  uint64_t epoch;      /* odd while the supervisor retires a worker */
  shared_copy retired; /* its seq unused: the epoch guards it */
  shared_slot slots[];
};

static void store_words(uint64_t *dst, const uint64_t *src) {
  size_t i;
  for (i = 0; i < WORDS; i++)
    __atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

static void load_words(uint64_t *dst, const uint64_t *src) {
  size_t i;
  for (i = 0; i < WORDS; i++)
    dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int vigil_cli_shared_new(vigil_cli_shared **out, unsigned workers) {
  size_t bytes = sizeof(vigil_cli_shared) + (size_t)workers * sizeof(shared_slot);
  void *p;
  *out = NULL;
  if (workers == 0 || workers > 256) {
    errno = EINVAL;
    return -1;
  }
  p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  *out = p; /* anonymous pages are zero: every slot empty, epoch 0 */
  (*out)->bytes = bytes;
  (*out)->workers = workers;
  return 0;
}

void vigil_cli_shared_free(vigil_cli_shared *sh) {
  if (sh != NULL)
    (void)munmap(sh, sh->bytes);
}

void vigil_cli_shared_publish(vigil_cli_shared *sh, unsigned worker, const vigil_metrics *m,
                              const vigil_cli_deaths *d, const vigil_cli_presence_figures *pf) {
  static shared_snap p; /* the worker's loop thread is the only writer */
  shared_slot *s;
  shared_copy *c;
  uint64_t next, seq;
  if (sh == NULL || worker >= sh->workers)
    return;
  s = &sh->slots[worker];
  next = __atomic_load_n(&s->current, __ATOMIC_RELAXED) ^ 1u;
  c = &s->c[next];
  memset(&p, 0, sizeof(p));
  memcpy(&p.m, m, m->size < sizeof(p.m) ? m->size : sizeof(p.m));
  p.m.size = sizeof(p.m);
  p.d = *d;
  p.pf = *pf;
  seq = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
  __atomic_store_n(&c->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE); /* the odd seq is seen before any word */
  store_words(c->u.w, (const uint64_t *)(const void *)&p);
  __atomic_store_n(&c->seq, seq + 2, __ATOMIC_RELEASE);
  __atomic_store_n(&s->current, next, __ATOMIC_RELEASE);
}

/* The slot's current copy into *out; 0, or -1 when it was torn every try. */
static int read_slot(const shared_slot *s, shared_snap *out) {
  unsigned tries;
  for (tries = 0; tries < READ_TRIES; tries++) {
    const shared_copy *c = &s->c[__atomic_load_n(&s->current, __ATOMIC_ACQUIRE) & 1u];
    uint64_t before = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE), after;
    if (before & 1u)
      continue;
    load_words((uint64_t *)(void *)out, c->u.w);
    __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the words are read before seq again */
    after = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    if (before == after)
      return 0;
  }
  return -1;
}

/* Gauges describe a live process; a retired one keeps only its counts. */
static void drop_gauges(vigil_metrics *m) {
  m->connecting = m->handshaking = m->open = m->closing = m->peers = 0;
  m->queued_bytes = 0;
}

static void drop_presence_gauges(vigil_cli_presence_figures *pf) {
  pf->processes = pf->up = pf->queued = 0;
}

void vigil_cli_shared_retire(vigil_cli_shared *sh, unsigned worker) {
  static shared_snap last, sum;
  shared_slot *s;
  uint64_t epoch;
  if (sh == NULL || worker >= sh->workers)
    return;
  s = &sh->slots[worker];
  /* The worker is reaped: its current copy is whole (a write it died in
   * was to the other one), unless it never published at all. */
  memset(&last, 0, sizeof(last));
  if (__atomic_load_n(&s->c[0].seq, __ATOMIC_ACQUIRE) == 0 &&
      __atomic_load_n(&s->c[1].seq, __ATOMIC_ACQUIRE) == 0)
    return;
  load_words((uint64_t *)(void *)&last,
             s->c[__atomic_load_n(&s->current, __ATOMIC_ACQUIRE) & 1u].u.w);
  drop_gauges(&last.m);
  drop_presence_gauges(&last.pf);
  load_words((uint64_t *)(void *)&sum, sh->retired.u.w);
  sum.m.size = sizeof(sum.m);
  vigil_metrics_add(&sum.m, &last.m);
  vigil_cli_deaths_merge(&sum.d, &last.d);
  vigil_cli_presence_add(&sum.pf, &last.pf);
  epoch = __atomic_load_n(&sh->epoch, __ATOMIC_RELAXED);
  __atomic_store_n(&sh->epoch, epoch + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  store_words(sh->retired.u.w, (const uint64_t *)(const void *)&sum);
  memset(&last, 0, sizeof(last));
  store_words(s->c[0].u.w, (const uint64_t *)(const void *)&last);
  store_words(s->c[1].u.w, (const uint64_t *)(const void *)&last);
  __atomic_store_n(&s->c[0].seq, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&s->c[1].seq, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&sh->epoch, epoch + 2, __ATOMIC_RELEASE);
}

int vigil_cli_shared_read(const vigil_cli_shared *sh, vigil_metrics *m, vigil_cli_deaths *d,
                          vigil_cli_presence_figures *pf) {
  shared_snap *one;
  unsigned tries, i;
  int rc = -1;
  if ((one = malloc(sizeof(*one))) == NULL)
    return -1;
  for (tries = 0; tries < READ_TRIES && rc != 0; tries++) {
    uint64_t before = __atomic_load_n(&sh->epoch, __ATOMIC_ACQUIRE);
    if (before & 1u)
      continue;
    load_words((uint64_t *)(void *)one, sh->retired.u.w);
    *m = one->m;
    m->size = sizeof(*m);
    *d = one->d;
    *pf = one->pf;
    for (i = 0; i < sh->workers; i++) {
      if (read_slot(&sh->slots[i], one) != 0)
        break;
      one->m.size = sizeof(one->m);
      vigil_metrics_add(m, &one->m);
      if (one->d.total > 0) /* a merge moves 22 KB: not for a worker with none */
        vigil_cli_deaths_merge(d, &one->d);
      vigil_cli_presence_add(pf, &one->pf);
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (i == sh->workers && __atomic_load_n(&sh->epoch, __ATOMIC_RELAXED) == before)
      rc = 0;
  }
  free(one);
  return rc;
}

#else

int vigil_cli_shared_new(vigil_cli_shared **out, unsigned workers) {
  (void)workers;
  *out = NULL;
  errno = ENOTSUP;
  return -1;
}

void vigil_cli_shared_free(vigil_cli_shared *sh) {
  (void)sh;
}

void vigil_cli_shared_publish(vigil_cli_shared *sh, unsigned worker, const vigil_metrics *m,
                              const vigil_cli_deaths *d, const vigil_cli_presence_figures *pf) {
  (void)sh;
  (void)worker;
  (void)m;
  (void)d;
  (void)pf;
}

void vigil_cli_shared_retire(vigil_cli_shared *sh, unsigned worker) {
  (void)sh;
  (void)worker;
}

int vigil_cli_shared_read(const vigil_cli_shared *sh, vigil_metrics *m, vigil_cli_deaths *d,
                          vigil_cli_presence_figures *pf) {
  (void)sh;
  (void)m;
  (void)d;
  (void)pf;
  return -1;
}

#endif
