/* Timer wheel benchmark: the cost of each operation with a million armed
 * timers, the scale DESIGN.md budgets for.
 *
 * Timers are visited in a shuffled order, as connections are when events
 * arrive, so list neighbours and slot heads are cache misses as they would
 * be in a server, not a warm sequential sweep. Expiries are random within a
 * minute, the span of heartbeat timeouts. Each figure is the median of
 * REPS runs (the machine is shared; the minimum is printed too).
 *
 * Output, one figure a line (ns per operation unless named otherwise):
 *   wheel_arm_ns_per_op          arm an unarmed timer
 *   wheel_rearm_ns_per_op        re-arm an armed timer to a later tick
 *   wheel_cancel_ns_per_op       cancel an armed timer
 *   wheel_fire_rearm_ns_per_op   lazy re-arm: fire early, callback re-arms
 *                                for the real deadline (1 ms ticks)
 *   wheel_expire_ns_per_op       advance 1 ms at a time over a minute in
 *                                which all fire, per timer fired
 *   wheel_expire_jump_ns_per_op  the same minute in one advance() call
 *   wheel_idle_tick_ns           one advance() by 1 ms when nothing is due
 * Measure a Release build: cmake --preset release && cmake --build --preset
 * release --target bench-wheel && build/release/bench-wheel */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

#define N 1000000
#define REPS 5
#define SPAN 60000 /* ms: expiries fall within a minute */

static vigil_timer *timers;
static uint32_t *order;
static uint64_t *when;
static uint64_t rng_state = 12345;

static double clock_ns(void) {
#ifdef _WIN32
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1e9 / (double)f.QuadPart;
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
#endif
}

static uint64_t rng(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void shuffle(void) {
  uint32_t i;
  for (i = 0; i < N; i++)
    order[i] = i;
  for (i = N - 1; i > 0; i--) {
    uint32_t j = (uint32_t)(rng() % (i + 1)), tmp;
    tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
}

static void fresh_expiries(uint64_t now) {
  uint32_t i;
  for (i = 0; i < N; i++)
    when[i] = now + 1 + rng() % SPAN;
}

static void arm_all(vigil_wheel *w) {
  uint32_t i;
  for (i = 0; i < N; i++)
    vigil_wheel_arm(w, &timers[order[i]], when[order[i]]);
}

struct fire_ctx {
  vigil_wheel *w;
  size_t fired;
  int rearm;
};

static void on_fire(vigil_timer *t, void *arg) {
  struct fire_ctx *c = arg;
  c->fired++;
  if (c->rearm)
    vigil_wheel_arm(c->w, t, c->w->now + SPAN);
}

static size_t tick_through(vigil_wheel *w, struct fire_ctx *c, uint64_t until) {
  uint64_t t;
  for (t = w->now + 1; t <= until; t++)
    vigil_wheel_advance(w, t, on_fire, c);
  return c->fired;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct figure {
  const char *name;
  double v[REPS];
};

enum { ARM, REARM, CANCEL, FIRE_REARM, EXPIRE, EXPIRE_JUMP, IDLE_TICK, NFIG };

static struct figure figs[NFIG] = {
    {"wheel_arm_ns_per_op", {0}},    {"wheel_rearm_ns_per_op", {0}},
    {"wheel_cancel_ns_per_op", {0}}, {"wheel_fire_rearm_ns_per_op", {0}},
    {"wheel_expire_ns_per_op", {0}}, {"wheel_expire_jump_ns_per_op", {0}},
    {"wheel_idle_tick_ns", {0}},
};

static int check(int ok, const char *what) {
  if (!ok)
    fprintf(stderr, "bench-wheel: %s\n", what);
  return ok;
}

/* One run of every measurement; 0 when a count came out wrong. */
/* Arm a million fresh timers, re-arm them all, cancel them all. */
static int run_arm_cancel(vigil_wheel *w, int rep, uint64_t start) {
  uint32_t i;
  double t0;

  vigil_wheel_init(w, start);
  for (i = 0; i < N; i++)
    vigil_timer_init(&timers[i]);
  shuffle();
  fresh_expiries(start);
  t0 = clock_ns();
  arm_all(w);
  figs[ARM].v[rep] = (clock_ns() - t0) / N;

  fresh_expiries(start + SPAN);
  shuffle();
  t0 = clock_ns();
  arm_all(w);
  figs[REARM].v[rep] = (clock_ns() - t0) / N;

  shuffle();
  t0 = clock_ns();
  for (i = 0; i < N; i++)
    vigil_wheel_cancel(w, &timers[order[i]]);
  figs[CANCEL].v[rep] = (clock_ns() - t0) / N;
  return check(w->count == 0, "cancel left timers armed");
}

/* Firing: lazily re-armed, ticked through, in one jump, and idle ticks. */
static int run_expiry(vigil_wheel *w, int rep, uint64_t start) {
  struct fire_ctx c;
  uint64_t end;
  uint32_t i;
  double t0;

  memset(&c, 0, sizeof c);
  c.w = w;
  /* Lazy re-arm: every timer fires once and re-arms a minute later. */
  fresh_expiries(start);
  arm_all(w);
  c.rearm = 1;
  t0 = clock_ns();
  end = start + SPAN;
  if (!check(tick_through(w, &c, end) == N, "lazy pass fired the wrong count"))
    return 0;
  figs[FIRE_REARM].v[rep] = (clock_ns() - t0) / N;

  /* Expiry: the re-armed timers all fire during the next minute. */
  c.rearm = 0;
  c.fired = 0;
  t0 = clock_ns();
  if (!check(tick_through(w, &c, end + SPAN) == N, "expire pass fired the wrong count"))
    return 0;
  figs[EXPIRE].v[rep] = (clock_ns() - t0) / N;

  /* The same in one jump, as after a loop that slept. */
  fresh_expiries(w->now);
  arm_all(w);
  c.fired = 0;
  t0 = clock_ns();
  vigil_wheel_advance(w, w->now + SPAN, on_fire, &c);
  figs[EXPIRE_JUMP].v[rep] = (clock_ns() - t0) / N;
  if (!check(c.fired == N, "jump fired the wrong count"))
    return 0;

  /* Idle ticks: a million timers all an hour away (levels 2-3). */
  for (i = 0; i < N; i++)
    when[i] = w->now + 3600000 + rng() % SPAN;
  arm_all(w);
  c.fired = 0;
  t0 = clock_ns();
  tick_through(w, &c, w->now + 10000);
  figs[IDLE_TICK].v[rep] = (clock_ns() - t0) / 10000;
  for (i = 0; i < N; i++)
    vigil_wheel_cancel(w, &timers[i]);
  return check(c.fired == 0, "idle ticks fired timers");
}

static int run(vigil_wheel *w, int rep) {
  const uint64_t start = 1000000;
  return run_arm_cancel(w, rep, start) && run_expiry(w, rep, start);
}

int main(void) {
  static vigil_wheel w;
  int rep, f;

  timers = calloc(N, sizeof *timers);
  order = calloc(N, sizeof *order);
  when = calloc(N, sizeof *when);
  if (timers == NULL || order == NULL || when == NULL) {
    fprintf(stderr, "bench-wheel: out of memory\n");
    return 1;
  }
  for (rep = 0; rep < REPS; rep++)
    if (!run(&w, rep))
      return 1;
  printf("wheel_timers %d\n", N);
  for (f = 0; f < NFIG; f++) {
    qsort(figs[f].v, REPS, sizeof figs[f].v[0], cmp_double);
    printf("%s %.1f\n", figs[f].name, figs[f].v[REPS / 2]);
    printf("%s_min %.1f\n", figs[f].name, figs[f].v[0]);
  }
  printf("wheel_sizeof_wheel %zu\n", sizeof(vigil_wheel));
  printf("wheel_sizeof_timer %zu\n", sizeof(vigil_timer));
  free(timers);
  free(order);
  free(when);
  return 0;
}
