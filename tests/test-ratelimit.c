/* The per-address connection rate limit (src/ratelimit.c) on virtual
 * time: every now_ns is a number we choose, nothing sleeps. */
#include <stdint.h>
#include <string.h>

#include "ratelimit.h"
#include "task.h"
#include "vigil.h"

#define SEC 1000000000ull

static const uint8_t A[] = {4, 127, 0, 0, 1};
static const uint8_t B[] = {4, 127, 0, 0, 2};

static int take(vigil__rate *r, const uint8_t *k, uint64_t now, uint64_t *wait) {
  *wait = 0;
  return vigil__rate_take(r, k, 5, now, wait);
}

/* 60/m with burst 3: three at once, the fourth waits exactly one token's
 * time, which is admitted when that time has passed and not a ns before. */
TEST_IMPL(burst_then_rate) {
  vigil__rate r;
  uint64_t w;
  ASSERT_EQ(vigil__rate_init(&r, 60, 3, 100, 7), 0);
  ASSERT_EQ(take(&r, A, 5 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 5 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 5 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 5 * SEC, &w), VIGIL__RATE_LIMITED);
  ASSERT_UEQ(w, SEC);
  /* A refusal takes no token: knocking again changes nothing. */
  ASSERT_EQ(take(&r, A, 5 * SEC + SEC / 2, &w), VIGIL__RATE_LIMITED);
  ASSERT_UEQ(w, SEC / 2);
  ASSERT_EQ(take(&r, A, 6 * SEC - 1, &w), VIGIL__RATE_LIMITED);
  ASSERT_UEQ(w, 1);
  ASSERT_EQ(take(&r, A, 6 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 6 * SEC, &w), VIGIL__RATE_LIMITED);
  /* Another address has its own bucket. */
  ASSERT_EQ(take(&r, B, 6 * SEC, &w), VIGIL__RATE_OK);
  /* Idle long enough, the bucket is full again, never fuller than burst. */
  ASSERT_EQ(take(&r, A, 100 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 100 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 100 * SEC, &w), VIGIL__RATE_OK);
  ASSERT_EQ(take(&r, A, 100 * SEC, &w), VIGIL__RATE_LIMITED);
  vigil__rate_free(&r);
  return 0;
}

/* Burst 1 at 600/m: one connection every 100 ms, steady. */
TEST_IMPL(steady_rate) {
  vigil__rate r;
  uint64_t w, t;
  unsigned ok = 0;
  ASSERT_EQ(vigil__rate_init(&r, 600, 1, 16, 1), 0);
  for (t = 0; t < 10 * SEC; t += SEC / 100) /* knocks every 10 ms for 10 s */
    ok += take(&r, A, t, &w) == VIGIL__RATE_OK;
  ASSERT_EQ(ok, 100);
  vigil__rate_free(&r);
  return 0;
}

/* The table is bounded: with 16 slots (the smallest), 16 addresses that
 * are still limited fill it, a 17th is refused as FULL with the time the
 * first slot frees up; once their buckets are full again their slots are
 * reused and the table never grows. */
TEST_IMPL(table_full_then_reused) {
  vigil__rate r;
  uint64_t w;
  uint8_t k[5] = {4, 10, 0, 0, 0};
  unsigned i, full = 0;
  ASSERT_EQ(vigil__rate_init(&r, 60, 1, 1, 3), 0);
  ASSERT_UEQ(r.mask + 1, VIGIL__RATE_PROBE);
  for (i = 0; i < VIGIL__RATE_PROBE; i++) {
    k[4] = (uint8_t)i;
    ASSERT_EQ(take(&r, k, SEC, &w), VIGIL__RATE_OK);
  }
  for (i = VIGIL__RATE_PROBE; i < 40; i++) {
    k[4] = (uint8_t)i;
    if (take(&r, k, SEC + SEC / 4, &w) == VIGIL__RATE_FULL) {
      full++;
      ASSERT_UEQ(w, 3 * SEC / 4);
    }
  }
  ASSERT_EQ(full, 40 - VIGIL__RATE_PROBE);
  /* A tracked address is still answered by its own bucket. */
  k[4] = 0;
  ASSERT_EQ(take(&r, k, SEC + SEC / 4, &w), VIGIL__RATE_LIMITED);
  /* One refill later every bucket is full: new addresses get slots. */
  for (i = 100; i < 100 + VIGIL__RATE_PROBE; i++) {
    k[4] = (uint8_t)i;
    ASSERT_EQ(take(&r, k, 2 * SEC, &w), VIGIL__RATE_OK);
  }
  ASSERT_UEQ(r.mask + 1, VIGIL__RATE_PROBE);
  vigil__rate_free(&r);
  return 0;
}

TEST_IMPL(bad_init) {
  vigil__rate r;
  ASSERT_EQ(vigil__rate_init(&r, 0, 1, 1, 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil__rate_init(&r, 1, 0, 1, 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil__rate_init(&r, 1, 1, 0, 0), VIGIL_EINVAL);
  vigil__rate_free(&r);
  return 0;
}
