/* Hierarchical timer wheel.
 *
 * What it is for. Every connection keeps one timer, armed for the moment
 * something must happen (send a ping, convict a silent peer). Traffic
 * mostly does not touch the wheel: it stores a timestamp. When the timer
 * fires, the owner looks at the timestamp, and if the real deadline has
 * moved it simply re-arms for it. (The runtime also moves a timer from a
 * frame when it would otherwise fire long before the new deadline, at most
 * twice per deadline's distance, src/conn.c: a firing is a loop wake-up,
 * a move is two list edits.) So a timer fires about once per deadline the
 * owner actually needs, at a million connections, and arm/cancel must cost
 * a few pointer writes with no allocation: the node (vigil_timer) lives
 * inside the connection, and the wheel only links it into a list.
 *
 * Levels. Ticks are 1 ms, uint64_t, supplied by the caller. The wheel has
 * six levels of 64 slots; level L covers ticks in units of 64^L (level 0:
 * single ticks, level 1: 64 ms, level 2: ~4 s, level 3: ~4.4 min, level 4:
 * ~4.7 h, level 5: ~12.4 days a slot, ~2.2 years a turn). Read a tick as six
 * base-64 digits. A timer with expiry E goes to the level of the highest digit
 * in which E differs from now (the highest set bit of E ^ now, divided by 6)
 * and to the slot numbered by E's digit at that level. So:
 *   - level 0 holds timers due within the current 64-tick block, one slot per
 *     tick: a level-0 slot is exact;
 *   - a timer at level L > 0 shares all digits above L with now and has a
 *     larger digit L, so its slot begins after now and every level-(L-1) slot
 *     ends before it: the lowest non-empty level always holds the earliest
 *     work, and within a level the slots come in order.
 * When now reaches the start of a level-L slot, the timers in it "cascade":
 * each one's expiry now differs from now only below digit L, so re-placing it
 * puts it at a lower level, or fires it if E is exactly that tick. Once within
 * range a timer moves at most five times, and a timeout of a few seconds
 * moves once or twice. Each move is a visit to a node in a linked list, i.e.
 * one cache miss at a million timers; that, not the arithmetic, is what
 * bench/bench-wheel.c measures as the cost of expiry.
 *
 * Why cascade when Linux stopped. Since 4.8, kernel/time/timer.c no longer
 * cascades: each level has a coarser granularity (8x per level) and a timer is
 * filed by rounding its expiry up to its level's granularity, so it fires up to
 * ~12% late but never moves. The kernel's argument is that networking timeouts
 * are almost always cancelled before they expire, so cascading was mostly work
 * wasted on timers that would never fire. Our situation is the opposite. With
 * lazy re-arming our timers are not cancelled: they fire, or are moved
 * later; and what fires is a verdict whose precision is the product: the design targets 1 ms for
 * timeouts of seconds, where the kernel's granularity at 4 s is 64-512 ms. So
 * we pay up to five cheap relinks per timer and fire every timer exactly at
 * its expiry tick, at any distance. Never before it: a verdict before
 * `timeout` has elapsed is a bug.
 *
 * Skipping empty time. Each level has a 64-bit occupancy bitmap (bit s set iff
 * slot s is non-empty). The next piece of work is the first set bit after
 * now's digit in the lowest non-empty level, found with one count-trailing-
 * zeros; advance() jumps straight to that tick. Advancing across ten seconds,
 * or ten days, costs one step per non-empty slot met, not one per tick. The
 * same search answers next_expiry(): exact when the nearest timer is at level
 * 0, otherwise the start of its slot, which is a safe lower bound (the loop
 * wakes, cascades, and sleeps again until the exact tick).
 *
 * Keeping the bitmaps exact on cancel. A cancel unlinks the node through its
 * `pprev` back-pointer (the address of whatever points at it), O(1). If that
 * empties a slot, its bit must be cleared, or next_expiry() would report
 * phantom work and wake the loop for nothing. Rather than spend a field on
 * remembering the slot, we recompute it: between cascades, a timer's level and
 * slot are a function of (expires, now) alone, because now only moves within
 * the region where that function is constant (it stops at every non-empty
 * slot's start). The slot is empty iff the node was first and last, i.e. its
 * `pprev` was that slot's head. Lists being processed by advance() are
 * detached onto a local head, so a node there never matches a slot head.
 *
 * Beyond the range, and the top level. A timer whose expiry differs from now
 * in digit 6 or above (two years or more away, or just across a 2^36 boundary)
 * is clamped to the top level, in the slot of its digit 5. The top level is
 * read as a ring: a slot at or before now's digit means "on the next turn".
 * Its slot start always comes at or before E, and when reached the timer is
 * re-placed, either lower down or into the top level again one turn later.
 * A very long jump (a virtual clock set years ahead) would then step once per
 * occupied top slot per 2.2-year turn; when only the top level is occupied
 * and the jump spans at least two turns, rebase() instead scans the top level
 * once, moves now to just before the earliest expiry there, and re-places
 * everything, so even advance(UINT64_MAX) finishes in a few steps. (Each
 * rebase is one pass over the top level, at most two per timer fired in such
 * a jump: quadratic only for many timers each years apart, in one call.)
 *
 * Callbacks and re-entrancy. advance() detaches a slot's list before
 * processing it and pops one node at a time, marking it unarmed before its
 * callback runs; so the callback may re-arm its own timer, and may cancel or
 * re-arm any other timer, including ones still on the detached list (they
 * unlink from it through `pprev` like from any list). During a callback
 * w->now is the tick being fired. A timer armed for a tick at or before now
 * goes on the `overdue` list, which runs at the start of the next advance():
 * firing it in the same call would let a callback that re-arms itself "now"
 * spin forever. */
#include "vigil/wheel.h"

#include <string.h>

#define LEVEL_BITS VIGIL_WHEEL_BITS
#define TOP (VIGIL_WHEEL_LEVELS - 1)
#define RANGE_BITS (VIGIL_WHEEL_BITS * VIGIL_WHEEL_LEVELS)
#define RANGE ((uint64_t)1 << RANGE_BITS)
#define DIGIT_MASK ((uint64_t)VIGIL_WHEEL_SLOTS - 1)

_Static_assert(VIGIL_WHEEL_SLOTS == 64, "occupancy bitmaps are one uint64_t per level");
_Static_assert(RANGE_BITS < 64, "the wheel's range must fit in a tick");

/* Index of the highest set bit; x != 0. */
static unsigned highest_bit(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return 63u - (unsigned)__builtin_clzll(x);
#else
  unsigned n = 0;
  while (x >>= 1)
    n++;
  return n;
#endif
}

/* Index of the lowest set bit; x != 0. */
static unsigned lowest_bit(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return (unsigned)__builtin_ctzll(x);
#else
  unsigned n = 0;
  while (!(x & 1)) {
    x >>= 1;
    n++;
  }
  return n;
#endif
}

static unsigned digit(uint64_t tick, unsigned level) {
  return (unsigned)((tick >> (level * LEVEL_BITS)) & DIGIT_MASK);
}

static unsigned level_for(uint64_t expires, uint64_t now) {
  uint64_t x = expires ^ now;
  if (x >= RANGE)
    return TOP;
  return highest_bit(x) / LEVEL_BITS;
}

static void push(vigil_timer **head, vigil_timer *t) {
  t->next = *head;
  if (t->next != NULL)
    t->next->pprev = &t->next;
  *head = t;
  t->pprev = head;
}

static void unlink_node(vigil_timer *t) {
  *t->pprev = t->next;
  if (t->next != NULL)
    t->next->pprev = t->pprev;
}

/* Links an unlinked t (pprev may be stale) where its expiry says. */
static void place(vigil_wheel *w, vigil_timer *t) {
  unsigned level, slot;
  if (t->expires <= w->now) {
    push(&w->overdue, t);
    if (t->expires < w->overdue_min)
      w->overdue_min = t->expires;
    return;
  }
  level = level_for(t->expires, w->now);
  slot = digit(t->expires, level);
  push(&w->slots[level][slot], t);
  w->occupied[level] |= (uint64_t)1 << slot;
}

/* Unlinks an armed t from wherever it is, keeping the bitmaps exact. */
static void detach_node(vigil_wheel *w, vigil_timer *t) {
  vigil_timer **pp = t->pprev;
  unsigned level, slot;
  unlink_node(t);
  if (*pp != NULL || t->expires <= w->now)
    return;
  level = level_for(t->expires, w->now);
  slot = digit(t->expires, level);
  if (pp == &w->slots[level][slot])
    w->occupied[level] &= ~((uint64_t)1 << slot);
}

/* The tick at which the lowest non-empty level next needs work, with that
 * level and slot; 0 when the wheel's slots are empty. The first occupied slot
 * after now's digit, read as a ring (only the top level ever wraps). */
static int next_work(const vigil_wheel *w, uint64_t *tick, unsigned *level, unsigned *slot) {
  unsigned l, start, s, shift;
  uint64_t bits, span, base, t;
  for (l = 0; l < VIGIL_WHEEL_LEVELS; l++)
    if (w->occupied[l] != 0)
      break;
  if (l == VIGIL_WHEEL_LEVELS)
    return 0;
  bits = w->occupied[l];
  start = (digit(w->now, l) + 1) & (unsigned)DIGIT_MASK;
  bits = (bits >> start) | (bits << ((64u - start) & 63u));
  s = (start + lowest_bit(bits)) & (unsigned)DIGIT_MASK;
  shift = l * LEVEL_BITS;
  span = (uint64_t)1 << (shift + LEVEL_BITS);
  base = w->now & ~(span - 1);
  t = base + ((uint64_t)s << shift);
  if (s <= digit(w->now, l))
    t = t + span < t ? UINT64_MAX : t + span; /* next turn of the ring */
  *tick = t;
  *level = l;
  *slot = s;
  return 1;
}

/* Pops every node of the list at *head: fires those due at w->now, re-places
 * the others (a cascade). Returns the number fired. */
static size_t run_list(vigil_wheel *w, vigil_timer **head, vigil_timer_cb cb, void *arg) {
  vigil_timer *t;
  size_t fired = 0;
  while ((t = *head) != NULL) {
    unlink_node(t);
    if (t->expires > w->now) {
      place(w, t);
      continue;
    }
    t->next = NULL;
    t->pprev = NULL;
    w->count--;
    cb(t, arg);
    fired++;
  }
  return fired;
}

/* Moves the non-empty list at *from onto a local head, then runs it: what
 * callbacks arm meanwhile goes to the wheel's lists, not to this one. */
static size_t run_detached(vigil_wheel *w, vigil_timer **from, vigil_timer_cb cb, void *arg) {
  vigil_timer *list = *from;
  *from = NULL;
  list->pprev = &list;
  return run_list(w, &list, cb, arg);
}

/* Only the top level is occupied and `target` is at least two turns away:
 * jump to just before the earliest expiry there and re-place everything. */
static void rebase(vigil_wheel *w, uint64_t target) {
  vigil_timer *list = NULL, *t;
  uint64_t min = UINT64_MAX;
  unsigned s;
  for (s = 0; s < VIGIL_WHEEL_SLOTS; s++)
    for (t = w->slots[TOP][s]; t != NULL; t = t->next)
      if (t->expires < min)
        min = t->expires;
  if (min - 1 <= w->now)
    return;
  for (s = 0; s < VIGIL_WHEEL_SLOTS; s++) {
    while ((t = w->slots[TOP][s]) != NULL) {
      unlink_node(t);
      push(&list, t);
    }
  }
  w->occupied[TOP] = 0;
  w->now = min - 1 < target ? min - 1 : target;
  while ((t = list) != NULL) {
    unlink_node(t);
    place(w, t);
  }
}

static int only_top_occupied(const vigil_wheel *w) {
  unsigned l;
  for (l = 0; l < TOP; l++)
    if (w->occupied[l] != 0)
      return 0;
  return w->occupied[TOP] != 0;
}

void vigil_wheel_init(vigil_wheel *w, uint64_t now) {
  memset(w, 0, sizeof *w);
  w->now = now;
  w->overdue_min = UINT64_MAX;
}

void vigil_timer_init(vigil_timer *t) {
  t->next = NULL;
  t->pprev = NULL;
  t->expires = 0;
}

int vigil_timer_armed(const vigil_timer *t) {
  return t->pprev != NULL;
}

void vigil_wheel_arm(vigil_wheel *w, vigil_timer *t, uint64_t expires) {
  if (t->pprev != NULL)
    detach_node(w, t);
  else
    w->count++;
  t->expires = expires;
  place(w, t);
}

void vigil_wheel_cancel(vigil_wheel *w, vigil_timer *t) {
  if (t->pprev == NULL)
    return;
  detach_node(w, t);
  t->next = NULL;
  t->pprev = NULL;
  w->count--;
}

size_t vigil_wheel_advance(vigil_wheel *w, uint64_t now, vigil_timer_cb cb, void *arg) {
  size_t fired = 0;
  uint64_t tick;
  unsigned level, slot;

  if (w->overdue != NULL) {
    w->overdue_min = UINT64_MAX;
    fired += run_detached(w, &w->overdue, cb, arg);
  }
  if (now <= w->now)
    return fired;
  for (;;) {
    if (now - w->now >= 2 * RANGE && only_top_occupied(w))
      rebase(w, now);
    if (!next_work(w, &tick, &level, &slot) || tick > now)
      break;
    w->now = tick;
    w->occupied[level] &= ~((uint64_t)1 << slot);
    fired += run_detached(w, &w->slots[level][slot], cb, arg);
  }
  w->now = now;
  return fired;
}

uint64_t vigil_wheel_next_expiry(const vigil_wheel *w) {
  uint64_t tick;
  unsigned level, slot;
  if (w->overdue != NULL)
    return w->overdue_min;
  if (!next_work(w, &tick, &level, &slot))
    return UINT64_MAX;
  return tick;
}
