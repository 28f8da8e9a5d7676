/* The local presence store: one record per id this process has seen.
 *
 * A chained hash table (FNV-1a, doubling past a load of 1) of records that
 * carry their id inline. Records of offline ids are also on an age list,
 * oldest first, so that when the table holds max_ids records the oldest
 * offline one makes room; a table full of online ids refuses the new id and
 * counts it (the server keeps serving: presence is a report, not a gate).
 *
 * Ordering: a record keeps the generation of the connection it describes.
 * An update for an older generation is stale and ignored; the same update
 * twice changes nothing. So the store converges on the newest connection's
 * truth whatever order, or how many times, updates arrive. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "vigil/presence.h"
#include "vigil/wire.h"

typedef struct prec {
  struct prec *hnext;
  vigil__queue age; /* in t->offline while offline */
  vigil_presence_record r;
  size_t id_len;
  char id[];
} prec;

struct vigil_presence_local {
  vigil_presence_store store;
  prec **buckets;
  size_t nbuckets, count, max_ids;
  uint64_t dropped;
  vigil__queue offline; /* oldest first */
};

static uint32_t hash_id(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= (uint8_t)p[i];
    h *= 16777619u;
  }
  return h ^ (h >> 15);
}

static prec **find_slot(const vigil_presence_local *t, const char *id, size_t len) {
  prec **pp = &t->buckets[hash_id(id, len) & (t->nbuckets - 1)];
  for (; *pp != NULL; pp = &(*pp)->hnext)
    if ((*pp)->id_len == len && memcmp((*pp)->id, id, len) == 0)
      break;
  return pp;
}

static void grow(vigil_presence_local *t) {
  size_t n = t->nbuckets * 2, i;
  prec **b = calloc(n, sizeof(prec *));
  if (b == NULL)
    return; /* longer chains, still correct */
  for (i = 0; i < t->nbuckets; i++) {
    prec *r = t->buckets[i], *next;
    for (; r != NULL; r = next) {
      size_t k = hash_id(r->id, r->id_len) & (n - 1);
      next = r->hnext;
      r->hnext = b[k];
      b[k] = r;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
}

static void forget(vigil_presence_local *t, prec *r) {
  prec **pp = find_slot(t, r->id, r->id_len);
  *pp = r->hnext;
  vigil__queue_remove(&r->age);
  free(r);
  t->count--;
}

static prec *create(vigil_presence_local *t, const char *id, size_t len) {
  prec *r, **pp;
  if (t->count >= t->max_ids) {
    if (vigil__queue_empty(&t->offline))
      return NULL;
    forget(t, vigil_container_of(t->offline.next, prec, age));
  }
  if ((r = calloc(1, sizeof *r + len)) == NULL)
    return NULL;
  memcpy(r->id, id, len);
  r->id_len = len;
  vigil__queue_init(&r->age);
  if (t->count >= t->nbuckets)
    grow(t);
  pp = &t->buckets[hash_id(id, len) & (t->nbuckets - 1)];
  r->hnext = *pp;
  *pp = r;
  t->count++;
  return r;
}

static void set_peer(vigil_presence_record *r, const char *peer) {
  size_t n = peer != NULL ? strlen(peer) : 0;
  if (n >= sizeof r->peer)
    n = sizeof r->peer - 1;
  if (n != 0)
    memcpy(r->peer, peer, n);
  r->peer[n] = '\0';
}

int vigil_presence_local_apply(vigil_presence_local *t, const vigil_presence_event *ev) {
  prec **pp, *p;
  vigil_presence_record *r;
  if (t == NULL || ev == NULL || ev->id == NULL || ev->id_len == 0 ||
      ev->id_len > VIGIL_WIRE_MAX_ID || ev->gen == 0 ||
      (ev->kind != VIGIL_PRESENCE_OPEN && ev->kind != VIGIL_PRESENCE_DEAD))
    return VIGIL_EINVAL;
  pp = find_slot(t, ev->id, ev->id_len);
  p = *pp;
  if (p == NULL && (p = create(t, ev->id, ev->id_len)) == NULL) {
    t->dropped++;
    return VIGIL_ENOSPACE;
  }
  r = &p->r;
  if (r->gen > ev->gen)
    return 0; /* stale: a newer connection owns the record */
  if (ev->kind == VIGIL_PRESENCE_OPEN) {
    if (r->gen == ev->gen && r->state == VIGIL_PRESENCE_ONLINE)
      return 0;
    vigil__queue_remove(&p->age);
    r->state = VIGIL_PRESENCE_ONLINE;
    set_peer(r, ev->peer);
  } else {
    if (r->gen == ev->gen && r->state == VIGIL_PRESENCE_OFFLINE)
      return 0;
    if (r->gen != ev->gen)
      set_peer(r, ev->peer); /* its opening never reached us */
    vigil__queue_remove(&p->age);
    vigil__queue_insert_tail(&t->offline, &p->age);
    r->state = VIGIL_PRESENCE_OFFLINE;
    r->last_cause = ev->cause;
    r->last_rtt_ns = ev->rtt_ns;
    r->silent_ns = ev->silent_ns;
    r->takeover = ev->takeover;
  }
  r->gen = ev->gen;
  r->since_ms = ev->at_ms;
  return 1;
}

static int local_report(vigil_presence_store *st, const vigil_presence_event *ev) {
  int rc = vigil_presence_local_apply((vigil_presence_local *)(void *)st, ev);
  return rc < 0 ? rc : 0;
}

static void local_bind(vigil_presence_store *st, struct vigil_server *srv) {
  (void)st; /* one process: its server already evicts on takeover */
  (void)srv;
}

static const vigil_presence_ops local_ops = {local_report, local_bind};

int vigil_presence_local_new(vigil_presence_local **out, size_t max_ids) {
  vigil_presence_local *t;
  if (out == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  if ((t = calloc(1, sizeof *t)) == NULL)
    return VIGIL_ENOMEM;
  t->nbuckets = 64;
  if ((t->buckets = calloc(t->nbuckets, sizeof(prec *))) == NULL) {
    free(t);
    return VIGIL_ENOMEM;
  }
  t->store.ops = &local_ops;
  t->max_ids = max_ids != 0 ? max_ids : 100000;
  vigil__queue_init(&t->offline);
  *out = t;
  return 0;
}

void vigil_presence_local_free(vigil_presence_local *t) {
  size_t i;
  if (t == NULL)
    return;
  for (i = 0; i < t->nbuckets; i++) {
    prec *r = t->buckets[i], *next;
    for (; r != NULL; r = next) {
      next = r->hnext;
      free(r);
    }
  }
  free(t->buckets);
  free(t);
}

vigil_presence_store *vigil_presence_local_store(vigil_presence_local *t) {
  return t != NULL ? &t->store : NULL;
}

int vigil_presence_local_get(const vigil_presence_local *t, const char *id, size_t id_len,
                             vigil_presence_record *rec) {
  prec *p;
  if (t == NULL || id == NULL || id_len == 0)
    return VIGIL_ENOENT;
  p = *find_slot(t, id, id_len);
  if (p == NULL)
    return VIGIL_ENOENT;
  if (rec != NULL)
    *rec = p->r;
  return 0;
}

void vigil_presence_local_each(const vigil_presence_local *t,
                               int (*fn)(const char *id, size_t id_len,
                                         const vigil_presence_record *rec, void *arg),
                               void *arg) {
  size_t i;
  if (t == NULL || fn == NULL)
    return;
  for (i = 0; i < t->nbuckets; i++) {
    const prec *r;
    for (r = t->buckets[i]; r != NULL; r = r->hnext)
      if (fn(r->id, r->id_len, &r->r, arg) != 0)
        return;
  }
}

size_t vigil_presence_local_count(const vigil_presence_local *t) {
  return t != NULL ? t->count : 0;
}

uint64_t vigil_presence_local_dropped(const vigil_presence_local *t) {
  return t != NULL ? t->dropped : 0;
}

const char *vigil_presence_state_name(vigil_presence_state s) {
  switch (s) {
  case VIGIL_PRESENCE_ONLINE:
    return "online";
  case VIGIL_PRESENCE_OFFLINE:
    return "offline";
  default:
    return "unknown";
  }
}

uint64_t vigil__wall_ms(void) {
#if defined(TIME_UTC)
  struct timespec ts;
  if (timespec_get(&ts, TIME_UTC) == TIME_UTC)
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
  return (uint64_t)time(NULL) * 1000u;
}
