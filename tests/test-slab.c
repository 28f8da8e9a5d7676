/* The connections' slab (src/slab.c): objects come back zeroed and
 * distinct, a walk sees exactly the live ones in any state of the chunks,
 * freed objects are reused, and an emptied chunk goes back to malloc
 * (checked under ASan by `make test`: a chunk used after its release, or
 * never released, fails there). */
#include <stdlib.h>
#include <string.h>

#include "slab.h"
#include "task.h"

#define N 1000 /* several chunks of 376-byte objects (174 a chunk) */

typedef struct obj {
  uint32_t id;
  uint8_t pad[372];
} obj;

/* How many objects a walk sees; each must be live (live[id] set), seen
 * once (seen[id] 0 before), and the walk must see every live one. */
static int walk(const vigil__slab *s, const uint8_t *live, size_t nlive) {
  static uint8_t seen[N];
  vigil__slab_cursor cur = {0};
  obj *o;
  size_t n = 0;
  memset(seen, 0, sizeof seen);
  while ((o = vigil__slab_next(s, &cur)) != NULL) {
    if (o->id >= N || !live[o->id] || seen[o->id])
      return -1;
    seen[o->id] = 1;
    n++;
  }
  return n == nlive ? 0 : -1;
}

TEST_IMPL(slab_alloc_walk_free) {
  vigil__slab s;
  obj *objs[N];
  uint8_t live[N];
  size_t i, nlive = 0;
  uint32_t chunks_full;
  vigil__slab_init(&s, sizeof(obj));
  ASSERT_UEQ(s.size, sizeof(obj));
  memset(live, 0, sizeof live);
  ASSERT_EQ(walk(&s, live, 0), 0);
  for (i = 0; i < N; i++) {
    size_t j;
    objs[i] = vigil__slab_alloc(&s);
    ASSERT_NOT_NULL(objs[i]);
    for (j = 0; j < sizeof(obj); j++)
      ASSERT_EQ(((const uint8_t *)objs[i])[j], 0); /* zeroed */
    objs[i]->id = (uint32_t)i;
    memset(objs[i]->pad, 0xab, sizeof objs[i]->pad); /* overlaps no other object */
    live[i] = 1;
    nlive++;
  }
  for (i = 0; i < N; i++)
    ASSERT_EQ(objs[i]->id, (uint32_t)i);
  ASSERT_EQ(walk(&s, live, nlive), 0);
  chunks_full = s.nchunks;
  ASSERT_UEQ(chunks_full, (N + s.per_chunk - 1) / s.per_chunk);

  /* Every other one freed: the walk sees the rest; the freed ones are
   * handed out again before any new chunk. */
  for (i = 0; i < N; i += 2) {
    vigil__slab_free(&s, objs[i]);
    live[i] = 0;
    nlive--;
  }
  ASSERT_EQ(walk(&s, live, nlive), 0);
  for (i = 0; i < N; i += 2) {
    objs[i] = vigil__slab_alloc(&s);
    ASSERT_NOT_NULL(objs[i]);
    objs[i]->id = (uint32_t)i;
    live[i] = 1;
    nlive++;
  }
  ASSERT_UEQ(s.nchunks, chunks_full);
  ASSERT_EQ(walk(&s, live, nlive), 0);

  /* All freed: the chunks go back, but the last one with room stays. */
  for (i = 0; i < N; i++) {
    vigil__slab_free(&s, objs[i]);
    live[i] = 0;
  }
  ASSERT_UEQ(s.nchunks, 1);
  ASSERT_EQ(walk(&s, live, 0), 0);
  vigil__slab_free_all(&s);
  ASSERT_UEQ(s.nchunks, 0);
  return 0;
}

/* Objects freed (whole chunks released) and allocated in the middle of a
 * walk: the walk goes on, every object live throughout is seen once, and
 * none is seen after it was freed. */
TEST_IMPL(slab_walk_survives_changes) {
  static uint8_t seen[N], freed[N];
  vigil__slab s;
  obj *objs[N], *o, *extra[N];
  vigil__slab_cursor cur = {0};
  size_t i, nseen = 0, nextra = 0;
  vigil__slab_init(&s, sizeof(obj));
  for (i = 0; i < N; i++) {
    objs[i] = vigil__slab_alloc(&s);
    ASSERT_NOT_NULL(objs[i]);
    objs[i]->id = (uint32_t)i;
  }
  while ((o = vigil__slab_next(&s, &cur)) != NULL) {
    if (o->id < N) {
      ASSERT_EQ(seen[o->id], 0);
      ASSERT_EQ(freed[o->id], 0);
      seen[o->id] = 1;
    }
    if (++nseen == N / 2) {
      /* the first 400 (two whole chunks among them) and every third one
       * after freed, then as many new ones made */
      for (i = 0; i < N; i++)
        if (objs[i] != o && (i < 400 || i % 3 == 0)) {
          vigil__slab_free(&s, objs[i]);
          freed[i] = 1;
        }
      while (nextra < 300) {
        extra[nextra] = vigil__slab_alloc(&s);
        ASSERT_NOT_NULL(extra[nextra]);
        extra[nextra++]->id = N; /* not one of the first N */
      }
    }
    ASSERT(nseen <= 2 * N);
  }
  for (i = 0; i < N; i++)
    if (!freed[i])
      ASSERT_EQ(seen[i], 1);
  vigil__slab_free_all(&s);
  return 0;
}
