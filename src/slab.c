/* A slab of objects of one size, for a server's connections.
 *
 * Why not malloc: glibc gives each object an 8-byte header and rounds it
 * up to 16, and a list linking every connection (to walk them at shutdown,
 * on a loop stall, for the memory budget) costs 16 bytes more in each.
 * Carved from 64 KiB chunks, an object costs its size and nothing else,
 * and the chunks themselves are the way to walk every live object.
 *
 * A chunk is a header (a bitmap of live objects, a list of freed ones,
 * how many were ever handed out) followed by the objects. Objects beyond
 * `used` were never handed out and their pages never touched, so a chunk
 * costs memory as it fills, not when it is allocated. Chunks with a free
 * object are on the `partial` list, most recently freed first; a chunk
 * whose last object goes is freed unless it is the only one with room
 * (so a server that holds one connection at a time does not allocate and
 * free a chunk for each). The chunks are kept in a table sorted by
 * address, so freeing an object finds its chunk by binary search (the
 * object carries no back pointer) and a walk can resume after the table
 * changed: a cursor names a chunk by address, not by position.
 *
 * One owner, one thread: no locks. */
#include "slab.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (65536u - 16u) /* with malloc's header, 64 KiB */
#define MAX_PER_CHUNK 256u

struct vigil__slab_chunk {
  vigil__slab_chunk *next, *prev; /* the partial list */
  void *free;                     /* freed objects, linked through their first word */
  uint32_t live;                  /* handed out and not freed */
  uint32_t used;                  /* ever handed out: the rest are untouched */
  int partial;                    /* on the partial list */
  uint64_t bits[MAX_PER_CHUNK / 64];
};

/* The objects start here, 16-byte aligned as malloc's memory is. */
#define HEADER ((sizeof(vigil__slab_chunk) + 15u) & ~(size_t)15u)

static char *object(const vigil__slab *s, const vigil__slab_chunk *c, uint32_t i) {
  return (char *)c + HEADER + (size_t)i * s->size;
}

void vigil__slab_init(vigil__slab *s, size_t size) {
  size_t n;
  memset(s, 0, sizeof *s);
  s->size = (size + 7u) & ~(size_t)7u;
  n = (CHUNK_BYTES - HEADER) / s->size;
  s->per_chunk = (uint32_t)(n < MAX_PER_CHUNK ? n : MAX_PER_CHUNK);
}

void vigil__slab_free_all(vigil__slab *s) {
  uint32_t i;
  for (i = 0; i < s->nchunks; i++)
    free(s->chunks[i]);
  free(s->chunks);
  s->chunks = NULL;
  s->nchunks = s->cap = 0;
  s->partial = NULL;
}

/* The first position in the table whose chunk is at or after address a. */
static uint32_t lower_bound(const vigil__slab *s, uintptr_t a) {
  uint32_t lo = 0, hi = s->nchunks;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)s->chunks[mid] < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void partial_push(vigil__slab *s, vigil__slab_chunk *c) {
  c->prev = NULL;
  c->next = s->partial;
  if (s->partial != NULL)
    s->partial->prev = c;
  s->partial = c;
  c->partial = 1;
}

static void partial_remove(vigil__slab *s, vigil__slab_chunk *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->partial = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
  c->partial = 0;
}

static vigil__slab_chunk *chunk_new(vigil__slab *s) {
  vigil__slab_chunk *c;
  uint32_t pos;
  if (s->nchunks == s->cap) {
    uint32_t ncap = s->cap != 0 ? s->cap * 2 : 16;
    vigil__slab_chunk **t;
    if (ncap <= s->cap)
      return NULL;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chunk pointers */
    if ((t = realloc(s->chunks, (size_t)ncap * sizeof *t)) == NULL)
      return NULL;
    s->chunks = t;
    s->cap = ncap;
  }
  if ((c = malloc(HEADER + (size_t)s->per_chunk * s->size)) == NULL)
    return NULL;
  memset(c, 0, sizeof *c); /* the header only: the objects' pages stay untouched */
  pos = lower_bound(s, (uintptr_t)c);
  /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chunk pointers */
  memmove(&s->chunks[pos + 1], &s->chunks[pos], (size_t)(s->nchunks - pos) * sizeof *s->chunks);
  s->chunks[pos] = c;
  s->nchunks++;
  partial_push(s, c);
  return c;
}

static void chunk_release(vigil__slab *s, vigil__slab_chunk *c) {
  uint32_t pos = lower_bound(s, (uintptr_t)c);
  partial_remove(s, c);
  /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of chunk pointers */
  memmove(&s->chunks[pos], &s->chunks[pos + 1], (size_t)(s->nchunks - pos - 1) * sizeof *s->chunks);
  s->nchunks--;
  free(c);
}

void *vigil__slab_alloc(vigil__slab *s) {
  vigil__slab_chunk *c = s->partial;
  char *p;
  uint32_t i;
  if (c == NULL && (c = chunk_new(s)) == NULL)
    return NULL;
  if (c->free != NULL) {
    p = c->free;
    memcpy(&c->free, p, sizeof c->free);
    i = (uint32_t)((size_t)(p - object(s, c, 0)) / s->size);
  } else {
    i = c->used++;
    p = object(s, c, i);
  }
  c->bits[i / 64] |= (uint64_t)1 << (i % 64);
  c->live++;
  if (c->free == NULL && c->used == s->per_chunk)
    partial_remove(s, c);
  memset(p, 0, s->size);
  return p;
}

void vigil__slab_free(vigil__slab *s, void *p) {
  uint32_t pos = lower_bound(s, (uintptr_t)p + 1u) - 1u; /* the last chunk at or before p */
  vigil__slab_chunk *c = s->chunks[pos];
  uint32_t i = (uint32_t)((size_t)((char *)p - object(s, c, 0)) / s->size);
  c->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
  c->live--;
  memcpy(p, &c->free, sizeof c->free);
  c->free = p;
  if (!c->partial)
    partial_push(s, c);
  if (c->live == 0 && (s->partial != c || c->next != NULL))
    chunk_release(s, c);
}

void *vigil__slab_next(const vigil__slab *s, vigil__slab_cursor *cur) {
  uint32_t pos = cur->chunk != NULL ? lower_bound(s, (uintptr_t)cur->chunk) : 0;
  for (; pos < s->nchunks; pos++) {
    const vigil__slab_chunk *c = s->chunks[pos];
    uint32_t i = cur->chunk != NULL && c == cur->chunk ? cur->index : 0;
    for (; i < c->used; i++) {
      if (c->bits[i / 64] & ((uint64_t)1 << (i % 64))) {
        cur->chunk = c;
        cur->index = i + 1;
        return object(s, c, i);
      }
    }
  }
  cur->chunk = NULL;
  cur->index = 0;
  return NULL;
}
