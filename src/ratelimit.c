/* Connection rate limit per source address (vigil serve --rate-limit).
 *
 * Like nginx's limit_req, each source address has a token bucket: it
 * holds at most `burst` tokens, refills at `rate`, and every accepted
 * connection takes one; with no token the connection is refused (the
 * server answers CLOSE ADDRESS_LIMIT with retry_after = the time until the
 * next token, src/server.c). A refused connection takes nothing, so an
 * address that keeps knocking is admitted at exactly the rate.
 *
 * The bucket is kept as one number, its "theoretical arrival time" (the
 * GCRA form of a token bucket, RFC 2697's cousin used by ATM and by
 * redis-cell): with T = 1/rate and tau = (burst - 1) x T, a connection at
 * time t is admitted when max(tat, t) - t <= tau, and then tat = max(tat,
 * t) + T. Integers only, no refill loop, and a slot whose tat is not after
 * now holds a full bucket: it is the same as no slot at all, so it may be
 * reused for another address. That is what bounds the table without a
 * sweep: memory is fixed at start (`sources` rounded up to a power of two,
 * 32 bytes each), an address is looked up in a window of
 * VIGIL__RATE_PROBE slots after its seeded hash, and a new address takes
 * the first slot in that window that is unused or full again.
 *
 * When the whole window is held by addresses still being limited, the new
 * address cannot be tracked: it is refused (VIGIL__RATE_FULL), as nginx
 * refuses when its zone is full. Admitting it untracked would let an
 * attacker who fills the table switch the limit off; refusing means a
 * flood from more addresses than the table holds slows new addresses down
 * too, for at most the time a bucket takes to refill (reported as the
 * wait). The hash is seeded per server so a client cannot aim addresses at
 * one window. */
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "vigil/errno.h"

#define NS_PER_MIN 60000000000ull

int vigil__rate_init(vigil__rate *r, uint32_t per_minute, uint32_t burst, uint32_t sources,
                     uint32_t seed) {
  size_t n = VIGIL__RATE_PROBE;
  memset(r, 0, sizeof *r);
  if (per_minute == 0 || burst == 0 || sources == 0)
    return VIGIL_EINVAL;
  while (n < sources)
    n *= 2;
  r->slots = calloc(n, sizeof *r->slots);
  if (r->slots == NULL)
    return VIGIL_ENOMEM;
  r->mask = n - 1;
  r->interval_ns = NS_PER_MIN / per_minute;
  r->tolerance_ns = (uint64_t)(burst - 1) * r->interval_ns;
  r->seed = seed;
  return 0;
}

void vigil__rate_free(vigil__rate *r) {
  free(r->slots);
  r->slots = NULL;
}

static uint32_t hash_key(uint32_t seed, const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u ^ seed;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  return h;
}

/* Finds key's slot in its window, or the first reusable one (*found 0),
 * or NULL when every slot of the window is held by a limited address; then
 * *soonest is when the first of them frees up. */
static vigil__rate_slot *window_find(vigil__rate *r, const uint8_t *key, size_t n, uint64_t now,
                                     int *found, uint64_t *soonest) {
  size_t at = hash_key(r->seed, key, n), i;
  vigil__rate_slot *reuse = NULL;
  *found = 0;
  *soonest = UINT64_MAX;
  for (i = 0; i < VIGIL__RATE_PROBE; i++) {
    vigil__rate_slot *sl = &r->slots[(at + i) & r->mask];
    if (sl->keylen == n && memcmp(sl->key, key, n) == 0) {
      *found = 1;
      return sl;
    }
    if (sl->keylen == 0 || sl->tat_ns <= now) {
      if (reuse == NULL)
        reuse = sl;
    } else if (sl->tat_ns - now < *soonest) {
      *soonest = sl->tat_ns - now;
    }
  }
  return reuse;
}

int vigil__rate_take(vigil__rate *r, const uint8_t *key, size_t n, uint64_t now_ns,
                     uint64_t *wait_ns) {
  int found;
  uint64_t soonest, tat;
  vigil__rate_slot *sl;
  if (n > VIGIL__RATE_KEY_MAX)
    n = VIGIL__RATE_KEY_MAX; /* never happens: conn.c's keys fit */
  sl = window_find(r, key, n, now_ns, &found, &soonest);
  if (sl == NULL) {
    *wait_ns = soonest;
    return VIGIL__RATE_FULL;
  }
  tat = found && sl->tat_ns > now_ns ? sl->tat_ns : now_ns;
  if (tat - now_ns > r->tolerance_ns) {
    *wait_ns = tat - now_ns - r->tolerance_ns;
    return VIGIL__RATE_LIMITED;
  }
  if (!found) {
    memcpy(sl->key, key, n);
    sl->keylen = (uint8_t)n;
  }
  sl->tat_ns = tat + r->interval_ns;
  return VIGIL__RATE_OK;
}
