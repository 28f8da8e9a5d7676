#ifndef VIGIL_WHEEL_H
#define VIGIL_WHEEL_H

/* Hierarchical timer wheel with intrusive nodes; the design essay is at the
 * top of src/wheel.c. Time is in ticks of 1 ms, supplied by the caller.
 *
 * Made for lazy re-arming: a connection keeps one vigil_timer; traffic only
 * stores a timestamp, and when the timer fires early the callback re-arms it
 * for the real deadline. Arm and cancel are O(1) and allocate nothing.
 *
 * Firing is exact: a timer fires during the advance() that reaches its
 * expiry tick, never before it, and while its callback runs the wheel's `now`
 * field equals that tick. Expiries of any distance are exact (timers beyond
 * the wheel's range, 64^6 ticks, wait at the top level and are re-placed
 * until they come into range). Not thread-safe: one wheel per loop thread.
 *
 * A timer is linked into the wheel while armed: call vigil_timer_init once
 * before first use, and cancel it before its memory is freed or reused. */

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define VIGIL_WHEEL_BITS 6
#define VIGIL_WHEEL_SLOTS (1u << VIGIL_WHEEL_BITS)
#define VIGIL_WHEEL_LEVELS 6 /* 64^6 ms ~ 2.2 years; later expiries clamp */

typedef struct vigil_timer {
  struct vigil_timer *next;
  struct vigil_timer **pprev; /* NULL when not armed */
  uint64_t expires;           /* tick at which it fires */
} vigil_timer;

typedef struct vigil_wheel {
  uint64_t now;                          /* current tick; during a callback, the tick being fired */
  size_t count;                          /* armed timers */
  uint64_t occupied[VIGIL_WHEEL_LEVELS]; /* bit s set <=> slots[level][s] != NULL */
  vigil_timer *overdue;                  /* armed at or before now: fire on next advance */
  uint64_t overdue_min;                  /* lower bound of their expiries */
  vigil_timer *slots[VIGIL_WHEEL_LEVELS][VIGIL_WHEEL_SLOTS];
} vigil_wheel;

typedef void (*vigil_timer_cb)(vigil_timer *t, void *arg);

VIGIL_EXTERN void vigil_wheel_init(vigil_wheel *w, uint64_t now);
VIGIL_EXTERN void vigil_timer_init(vigil_timer *t);
VIGIL_EXTERN int vigil_timer_armed(const vigil_timer *t);
/* Arms (or re-arms) t to fire at tick `expires`; a time not after the
 * wheel's now fires on the next advance (at its start, before the timers
 * that come due during that advance; among themselves in any order). */
VIGIL_EXTERN void vigil_wheel_arm(vigil_wheel *w, vigil_timer *t, uint64_t expires);
/* Cancels t if armed; harmless if not. */
VIGIL_EXTERN void vigil_wheel_cancel(vigil_wheel *w, vigil_timer *t);
/* Advances to `now`, calling cb for every timer with expires <= now, in
 * order of expiry tick (ties in any order). cb may arm or cancel any timer,
 * including the one firing; a timer it arms for a tick up to `now` (but
 * after the tick being fired) fires within this same call. cb must not call
 * advance. A `now` earlier than the wheel's is taken as the wheel's (time
 * does not run backwards). Returns the number of callbacks made. */
VIGIL_EXTERN size_t vigil_wheel_advance(vigil_wheel *w, uint64_t now, vigil_timer_cb cb, void *arg);
/* A tick at or before the earliest armed expiry (exact for the nearest
 * level), for choosing how long to sleep; UINT64_MAX when empty. */
VIGIL_EXTERN uint64_t vigil_wheel_next_expiry(const vigil_wheel *w);

#endif
