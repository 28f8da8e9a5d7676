/* Objects of one size in 64 KiB chunks: what a server's connections are
 * allocated from (src/conn.c), one slab per owner, on its loop's thread.
 * The design essay is at the top of src/slab.c. */
#ifndef VIGIL__SLAB_H
#define VIGIL__SLAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct vigil__slab_chunk vigil__slab_chunk;

typedef struct vigil__slab {
  size_t size;                /* object size, a multiple of 8 */
  uint32_t per_chunk;         /* objects a chunk holds */
  uint32_t nchunks, cap;      /* chunks, sorted by address; table capacity */
  vigil__slab_chunk **chunks; /* the table */
  vigil__slab_chunk *partial; /* chunks with a free object, most recent first */
} vigil__slab;

/* Where a walk over the live objects is (vigil__slab_next). */
typedef struct vigil__slab_cursor {
  const vigil__slab_chunk *chunk; /* NULL: before the first */
  uint32_t index;                 /* next object of chunk to look at */
} vigil__slab_cursor;

/* An empty slab of objects of `size` bytes (8 to 8192). */
void vigil__slab_init(vigil__slab *s, size_t size);
/* Frees every chunk; the objects in them are gone. */
void vigil__slab_free_all(vigil__slab *s);

/* A zero-filled object, or NULL when out of memory. */
void *vigil__slab_alloc(vigil__slab *s);
/* Returns p (from vigil__slab_alloc of s) to the slab. */
void vigil__slab_free(vigil__slab *s, void *p);

/* The next live object after *cur (start with a zeroed cursor), in address
 * order, or NULL at the end. Objects allocated or freed during the walk
 * are seen or not, but every object live throughout is seen once. */
void *vigil__slab_next(const vigil__slab *s, vigil__slab_cursor *cur);

#endif
