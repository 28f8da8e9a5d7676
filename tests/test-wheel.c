/* Timer wheel tests, on virtual time: every tick is a number we choose.
 *
 * The central property, checked everywhere: a timer fires exactly once per
 * arming, during the advance() that reaches its expiry, with the wheel's now
 * equal to its expiry tick while its callback runs, and callbacks come in
 * non-decreasing tick order. */
#include <stddef.h>
#include <stdlib.h>

#include "task.h"
#include "vigil.h"

struct item;
struct ctx;
typedef void (*item_action)(struct item *it, struct ctx *c);

struct item {
  vigil_timer t;
  uint64_t fired_at;
  unsigned fires;
  item_action action; /* run from the callback, after the checks */
  struct item *other;
  uint64_t param;
};

struct ctx {
  vigil_wheel *w;
  uint64_t last_tick;
  size_t fired;
  unsigned early; /* fired with now != expires (never allowed for timers armed in the future) */
  unsigned out_of_order;
  struct item *group; /* for act_cancel_all_others */
  size_t group_n;
};

#define ITEM_OF(tp) ((struct item *)((char *)(tp)-offsetof(struct item, t)))

static void on_fire(vigil_timer *t, void *arg) {
  struct ctx *c = arg;
  struct item *it = ITEM_OF(t);
  if (c->w->now != t->expires)
    c->early++;
  if (c->w->now < c->last_tick)
    c->out_of_order++;
  c->last_tick = c->w->now;
  it->fired_at = c->w->now;
  it->fires++;
  c->fired++;
  if (it->action != NULL)
    it->action(it, c);
}

static void ctx_init(struct ctx *c, vigil_wheel *w) {
  memset(c, 0, sizeof *c);
  c->w = w;
  c->last_tick = w->now;
}

static uint64_t rng_next(uint64_t *s) {
  /* splitmix64: deterministic, so a failure reproduces. */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A random distance that lands on every level, and beyond the range. */
static uint64_t random_distance(uint64_t *s) {
  unsigned bits = 1 + (unsigned)(rng_next(s) % 40);
  return 1 + rng_next(s) % ((uint64_t)1 << bits);
}

/* Heap state for the big tests, freed whatever the body returns (an ASSERT
 * returns early). */
struct pool {
  size_t n;
  struct item *items;
  uint64_t *sorted;
  unsigned char *flag;
};

static int with_pool(size_t n, int (*body)(struct pool *p)) {
  struct pool p;
  int rc = 1;
  p.n = n;
  p.items = calloc(n, sizeof *p.items);
  p.sorted = calloc(n, sizeof *p.sorted);
  p.flag = calloc(n, 1);
  if (p.items != NULL && p.sorted != NULL && p.flag != NULL)
    rc = body(&p);
  else
    fprintf(stderr, "out of memory for %zu timers\n", n);
  free(p.items);
  free(p.sorted);
  free(p.flag);
  return rc;
}

TEST_IMPL(arm_cancel_rearm) {
  vigil_wheel w;
  struct item a, b;
  struct ctx c;

  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  vigil_wheel_init(&w, 1000);
  ctx_init(&c, &w);
  vigil_timer_init(&a.t);
  vigil_timer_init(&b.t);
  ASSERT_EQ(vigil_timer_armed(&a.t), 0);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), UINT64_MAX);

  vigil_wheel_arm(&w, &a.t, 1005);
  ASSERT_EQ(vigil_timer_armed(&a.t), 1);
  ASSERT_EQ(w.count, 1);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 1005);
  ASSERT_EQ(vigil_wheel_advance(&w, 1004, on_fire, &c), 0);
  ASSERT_EQ(vigil_wheel_advance(&w, 1005, on_fire, &c), 1);
  ASSERT_UEQ(a.fired_at, 1005);
  ASSERT_EQ(vigil_timer_armed(&a.t), 0);
  ASSERT_EQ(w.count, 0);

  /* Cancelled before expiry: never fires; cancelling twice is harmless. */
  vigil_wheel_arm(&w, &a.t, 2000);
  vigil_wheel_arm(&w, &b.t, 3000);
  vigil_wheel_cancel(&w, &a.t);
  vigil_wheel_cancel(&w, &a.t);
  ASSERT_EQ(vigil_timer_armed(&a.t), 0);
  ASSERT_EQ(w.count, 1);
  ASSERT_EQ(vigil_wheel_advance(&w, 2500, on_fire, &c), 0);
  ASSERT_EQ(a.fires, 1);

  /* Re-arming an armed timer moves it, both later and earlier. */
  vigil_wheel_arm(&w, &b.t, 4000);
  ASSERT_EQ(w.count, 1);
  ASSERT_EQ(vigil_wheel_advance(&w, 3999, on_fire, &c), 0);
  vigil_wheel_arm(&w, &b.t, 3999 + 70);
  vigil_wheel_arm(&w, &b.t, 3999 + 2);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 4001);
  ASSERT_EQ(vigil_wheel_advance(&w, 5000, on_fire, &c), 1);
  ASSERT_UEQ(b.fired_at, 4001);
  ASSERT_EQ(b.fires, 1);
  ASSERT_EQ(c.early, 0);
  ASSERT_EQ(w.count, 0);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), UINT64_MAX);
  return 0;
}

TEST_IMPL(arm_in_the_past_fires_on_next_advance) {
  vigil_wheel w;
  struct item a, b;
  struct ctx c;

  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  vigil_wheel_init(&w, 500);
  ctx_init(&c, &w);
  vigil_wheel_arm(&w, &b.t, 501);
  vigil_wheel_arm(&w, &a.t, 495);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 495);
  /* Even an advance that does not move time runs the overdue timer. */
  ASSERT_EQ(vigil_wheel_advance(&w, 500, on_fire, &c), 1);
  ASSERT_EQ(a.fires, 1);
  ASSERT_UEQ(a.fired_at, 500);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 501);
  /* Time running backwards is taken as standing still. */
  ASSERT_EQ(vigil_wheel_advance(&w, 10, on_fire, &c), 0);
  ASSERT_UEQ(w.now, 500);
  /* A cancelled overdue timer does not fire. */
  vigil_wheel_arm(&w, &a.t, 0);
  vigil_wheel_cancel(&w, &a.t);
  ASSERT_EQ(vigil_wheel_advance(&w, 501, on_fire, &c), 1);
  ASSERT_EQ(a.fires, 1);
  ASSERT_EQ(b.fires, 1);
  ASSERT_UEQ(b.fired_at, 501);
  ASSERT_EQ(w.count, 0);
  return 0;
}

/* Random expiries over all levels (and past the range), random advance
 * steps from one tick to years; after every step, exactly the timers due by
 * then have fired, each once and at its own tick. */
static int exact_across_levels(struct pool *p) {
  const size_t N = p->n;
  struct item *items = p->items;
  uint64_t *sorted = p->sorted;
  vigil_wheel w;
  uint64_t seed = 42, now = 123456789;
  size_t i, due = 0, steps = 0;
  struct ctx c;

  vigil_wheel_init(&w, now);
  ctx_init(&c, &w);
  for (i = 0; i < N; i++) {
    sorted[i] = now + random_distance(&seed);
    vigil_wheel_arm(&w, &items[i].t, sorted[i]);
  }
  qsort(sorted, N, sizeof *sorted, cmp_u64);
  ASSERT_EQ(w.count, N);
  while (c.fired < N) {
    uint64_t r = rng_next(&seed) % 10, step;
    step = r < 5   ? 1 + rng_next(&seed) % 100
           : r < 8 ? rng_next(&seed) % ((uint64_t)1 << 20)
                   : rng_next(&seed) % ((uint64_t)1 << 38);
    now += step;
    vigil_wheel_advance(&w, now, on_fire, &c);
    while (due < N && sorted[due] <= now)
      due++;
    ASSERT_EQ(c.fired, due);
    ASSERT_EQ(w.count, N - due);
    if (due < N)
      ASSERT_ULE(vigil_wheel_next_expiry(&w), sorted[due]);
    steps++;
  }
  ASSERT_EQ(c.early, 0);
  ASSERT_EQ(c.out_of_order, 0);
  for (i = 0; i < N; i++) {
    ASSERT_EQ(items[i].fires, 1);
    ASSERT_UEQ(items[i].fired_at, items[i].t.expires);
  }
  ASSERT_GT(steps, 10);
  return 0;
}

TEST_IMPL(fires_exactly_at_expiry_across_levels) {
  return with_pool(20000, exact_across_levels);
}

/* Fixed per-test actions, run from the callback. */
static void act_cancel_all_others(struct item *it, struct ctx *c) {
  size_t i;
  for (i = 0; i < c->group_n; i++)
    if (&c->group[i] != it)
      vigil_wheel_cancel(c->w, &c->group[i].t);
}

static void act_rearm_self(struct item *it, struct ctx *c) {
  if (it->fires < it->param)
    vigil_wheel_arm(c->w, &it->t, c->w->now + 7);
}

static void act_move_other(struct item *it, struct ctx *c) {
  vigil_wheel_arm(c->w, &it->other->t, c->w->now + it->param);
}

static void act_arm_other_now(struct item *it, struct ctx *c) {
  vigil_wheel_arm(c->w, &it->other->t, c->w->now);
}

TEST_IMPL(callbacks_rearm_and_cancel) {
  enum { SAME = 100 };
  vigil_wheel w;
  static struct item same[SAME];
  struct item a, b, d, e, f;
  struct ctx c;
  size_t i, fired;

  memset(same, 0, sizeof same);
  vigil_wheel_init(&w, 0);
  ctx_init(&c, &w);

  /* Many timers due at one tick, reached by cascading from level 2: the
   * first to fire cancels the others, which sit on the list being processed. */
  c.group = same;
  c.group_n = SAME;
  for (i = 0; i < SAME; i++) {
    same[i].action = act_cancel_all_others;
    vigil_wheel_arm(&w, &same[i].t, 5000);
  }
  fired = vigil_wheel_advance(&w, 6000, on_fire, &c);
  ASSERT_EQ(fired, 1);
  for (i = 0; i < SAME; i++)
    ASSERT_EQ(vigil_timer_armed(&same[i].t), 0);
  ASSERT_EQ(w.count, 0);

  /* A timer re-arming itself fires once per arming, all within one advance. */
  memset(&a, 0, sizeof a);
  a.action = act_rearm_self;
  a.param = 10;
  vigil_wheel_arm(&w, &a.t, 6100);
  ASSERT_EQ(vigil_wheel_advance(&w, 100000, on_fire, &c), 10);
  ASSERT_UEQ(a.fired_at, 6100 + 9 * 7);
  ASSERT_EQ(vigil_timer_armed(&a.t), 0);

  /* Moving another timer earlier (it fires in the same advance, at its new
   * tick) and later (beyond this advance). */
  memset(&b, 0, sizeof b);
  memset(&d, 0, sizeof d);
  memset(&e, 0, sizeof e);
  b.action = act_move_other;
  b.other = &d;
  b.param = 3;
  vigil_wheel_arm(&w, &b.t, 100010);
  vigil_wheel_arm(&w, &d.t, 100000 + 70000);
  e.action = act_move_other;
  e.other = &b;
  e.param = 1000000;
  vigil_wheel_arm(&w, &e.t, 100020);
  ASSERT_EQ(vigil_wheel_advance(&w, 200000, on_fire, &c), 3);
  ASSERT_UEQ(d.fired_at, 100013);
  ASSERT_EQ(b.fires, 1);
  ASSERT_EQ(vigil_timer_armed(&b.t), 1);
  ASSERT_UEQ(b.t.expires, 1100020);

  /* Arming for the tick being fired defers to the next advance. */
  memset(&f, 0, sizeof f);
  f.action = act_arm_other_now;
  f.other = &a;
  vigil_wheel_arm(&w, &f.t, 200005);
  ASSERT_EQ(vigil_wheel_advance(&w, 300000, on_fire, &c), 1);
  ASSERT_EQ(vigil_timer_armed(&a.t), 1);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 200005);
  ASSERT_EQ(vigil_wheel_advance(&w, 300000, on_fire, &c), 1);
  ASSERT_EQ(a.fires, 11);
  ASSERT_UEQ(a.fired_at, 300000);
  ASSERT_EQ(c.out_of_order, 0);
  /* The last one fired late by design (armed in the past); the rest exact. */
  ASSERT_EQ(c.early, 1);
  return 0;
}

/* One advance across 2^64 ticks: every timer fires at its own tick, in
 * order, and the call finishes (it would never end if it walked tick by
 * tick, or turn by turn of the top level). */
TEST_IMPL(big_jumps) {
  static const uint64_t at[] = {1,
                                63,
                                64,
                                1000,
                                1000000,
                                1000000000,
                                ((uint64_t)1 << 36) + 5,
                                (uint64_t)1 << 40,
                                ((uint64_t)1 << 50) + 12345,
                                (uint64_t)1 << 63,
                                UINT64_MAX - 1,
                                UINT64_MAX};
  enum { K = sizeof at / sizeof at[0] };
  vigil_wheel w;
  struct item items[K], late[VIGIL_WHEEL_SLOTS];
  struct ctx c;
  size_t i;

  memset(items, 0, sizeof items);
  memset(late, 0, sizeof late);
  vigil_wheel_init(&w, 0);
  ctx_init(&c, &w);
  for (i = 0; i < K; i++)
    vigil_wheel_arm(&w, &items[K - 1 - i].t, at[K - 1 - i]);
  /* And one in every top-level slot near the end of time, so a walk turn
   * by turn would make 64 stops per turn for 2^28 turns. */
  for (i = 0; i < VIGIL_WHEEL_SLOTS; i++)
    vigil_wheel_arm(&w, &late[i].t, UINT64_MAX - 2 - i * ((uint64_t)1 << 30));
  ASSERT_EQ(vigil_wheel_advance(&w, UINT64_MAX, on_fire, &c), K + VIGIL_WHEEL_SLOTS);
  for (i = 0; i < K; i++)
    ASSERT_UEQ(items[i].fired_at, at[i]);
  for (i = 0; i < VIGIL_WHEEL_SLOTS; i++)
    ASSERT_UEQ(late[i].fired_at, late[i].t.expires);
  ASSERT_EQ(c.early, 0);
  ASSERT_EQ(c.out_of_order, 0);

  /* A loop that slept 10 s: everything due in that span fires, exactly,
   * the rest stays armed. */
  {
    enum { M = 1000 };
    struct item more[M];
    uint64_t seed = 7, base = (uint64_t)1 << 62;
    size_t due = 0;
    memset(more, 0, sizeof more);
    vigil_wheel_init(&w, base);
    ctx_init(&c, &w);
    for (i = 0; i < M; i++) {
      uint64_t x = base + 1 + rng_next(&seed) % 20000;
      due += x <= base + 10000;
      vigil_wheel_arm(&w, &more[i].t, x);
    }
    ASSERT_EQ(vigil_wheel_advance(&w, base + 10000, on_fire, &c), due);
    ASSERT_EQ(w.count, M - due);
    ASSERT_EQ(vigil_wheel_advance(&w, base + 20000, on_fire, &c), M - due);
    ASSERT_EQ(c.early, 0);
    ASSERT_EQ(c.out_of_order, 0);
  }
  return 0;
}

/* next_expiry: exact at level 0, a lower bound above, exact after a cancel
 * empties a slot or a re-arm moves the only timer. */
TEST_IMPL(next_expiry) {
  vigil_wheel w;
  struct item a, b;
  uint64_t nx;

  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  vigil_wheel_init(&w, 1000);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), UINT64_MAX);
  vigil_wheel_arm(&w, &a.t, 1010);
  vigil_wheel_arm(&w, &b.t, 1020);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 1010);
  vigil_wheel_cancel(&w, &a.t);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), 1020);
  vigil_wheel_arm(&w, &b.t, 1000 + 5000);
  nx = vigil_wheel_next_expiry(&w);
  ASSERT_GT(nx, 1000);
  ASSERT_ULE(nx, 6000);
  vigil_wheel_cancel(&w, &b.t);
  ASSERT_UEQ(vigil_wheel_next_expiry(&w), UINT64_MAX);
  return 0;
}

/* A loop that sleeps until next_expiry fires every timer on time and wakes
 * at most once per level per timer. */
static int sleep_until_next_expiry(struct pool *p) {
  const size_t N = p->n;
  struct item *items = p->items;
  uint64_t *sorted = p->sorted;
  vigil_wheel w;
  uint64_t seed = 99, nx;
  size_t i, due = 0, wakeups = 0;
  struct ctx c;

  vigil_wheel_init(&w, 1000);
  ctx_init(&c, &w);
  for (i = 0; i < N; i++) {
    sorted[i] = 1000 + 1 + rng_next(&seed) % ((uint64_t)1 << (1 + rng_next(&seed) % 30));
    vigil_wheel_arm(&w, &items[i].t, sorted[i]);
  }
  qsort(sorted, N, sizeof *sorted, cmp_u64);
  while ((nx = vigil_wheel_next_expiry(&w)) != UINT64_MAX) {
    ASSERT_GT(nx, w.now);
    ASSERT_ULE(nx, sorted[due]);
    vigil_wheel_advance(&w, nx, on_fire, &c);
    while (due < N && sorted[due] <= nx)
      due++;
    ASSERT_EQ(c.fired, due);
    wakeups++;
  }
  ASSERT_EQ(due, N);
  ASSERT_LE(wakeups, N * VIGIL_WHEEL_LEVELS);
  ASSERT_EQ(c.early, 0);
  for (i = 0; i < N; i++)
    ASSERT_UEQ(items[i].fired_at, items[i].t.expires);
  return 0;
}

TEST_IMPL(loop_sleeping_until_next_expiry) {
  return with_pool(3000, sleep_until_next_expiry);
}

/* A million timers, a random third cancelled, random advance steps: every
 * remaining timer fires exactly once, at its tick; no cancelled one fires. */
static int million(struct pool *p) {
  const size_t N = p->n;
  struct item *items = p->items;
  unsigned char *cancelled = p->flag;
  vigil_wheel w;
  uint64_t seed = 2024, now = 5000000, last;
  size_t i, kept = 0;
  struct ctx c;

  vigil_wheel_init(&w, now);
  ctx_init(&c, &w);
  for (i = 0; i < N; i++) {
    /* Mostly within a day (levels 0-4), one in a hundred up to a few years. */
    uint64_t span = rng_next(&seed) % 100 == 0 ? (uint64_t)1 << 37 : (uint64_t)1 << 26;
    vigil_wheel_arm(&w, &items[i].t, now + 1 + rng_next(&seed) % span);
  }
  for (i = 0; i < N; i++) {
    if (rng_next(&seed) % 3 == 0) {
      cancelled[i] = 1;
      vigil_wheel_cancel(&w, &items[i].t);
    } else {
      kept++;
    }
  }
  ASSERT_EQ(w.count, kept);
  /* Fine steps through the dense first day, coarse ones after it. */
  last = now + ((uint64_t)1 << 37);
  while (now < last) {
    int dense = now < 5000000 + ((uint64_t)1 << 26);
    now += 1 + rng_next(&seed) % ((uint64_t)1 << (dense ? 16 : 30));
    vigil_wheel_advance(&w, now, on_fire, &c);
  }
  ASSERT_EQ(c.fired, kept);
  ASSERT_EQ(w.count, 0);
  ASSERT_EQ(c.early, 0);
  ASSERT_EQ(c.out_of_order, 0);
  for (i = 0; i < N; i++) {
    ASSERT_EQ(items[i].fires, cancelled[i] ? 0u : 1u);
    if (!cancelled[i])
      ASSERT_UEQ(items[i].fired_at, items[i].t.expires);
  }
  return 0;
}

TEST_IMPL(million_timers) {
  return with_pool(1000000, million);
}

/* Model-based stress: random arms (past, near, far), cancels and steps, and
 * callbacks that arm and cancel random timers, checked against a plain
 * array of what should be armed and when. */
struct model {
  vigil_wheel w;
  struct item *items;
  uint64_t *expect;     /* expiry the model armed, valid while armed */
  unsigned char *armed; /* 1 armed in the future, 2 armed at or before now */
  size_t n, armed_count;
  uint64_t seed, advance_start, last_tick;
  unsigned bad;
};

static struct model *model_of; /* the callback's way back to the model */

static void model_arm(struct model *m, size_t i) {
  uint64_t r = rng_next(&m->seed) % 8;
  uint64_t at = r == 0  ? m->w.now - rng_next(&m->seed) % 3
                : r < 5 ? m->w.now + 1 + rng_next(&m->seed) % 300
                : r < 7 ? m->w.now + 1 + rng_next(&m->seed) % 100000
                        : m->w.now + random_distance(&m->seed);
  if (!m->armed[i])
    m->armed_count++;
  m->armed[i] = at <= m->w.now ? 2 : 1;
  m->expect[i] = at;
  vigil_wheel_arm(&m->w, &m->items[i].t, at);
}

static void model_cancel(struct model *m, size_t i) {
  if (m->armed[i])
    m->armed_count--;
  m->armed[i] = 0;
  vigil_wheel_cancel(&m->w, &m->items[i].t);
}

/* A timer armed for the future fires at its tick; one armed at or before
 * now fires at the start of the next advance; in order, unarmed by then. */
static int model_fire_ok(const struct model *m, size_t i, const vigil_timer *t) {
  uint64_t want = m->armed[i] == 1 ? m->expect[i] : m->advance_start;
  return m->armed[i] != 0 && !vigil_timer_armed(t) && m->w.now >= m->last_tick && m->w.now == want;
}

static void model_fire(vigil_timer *t, void *arg) {
  struct model *m = model_of;
  size_t i = (size_t)(ITEM_OF(t) - m->items), k;
  (void)arg;
  if (!model_fire_ok(m, i, t))
    m->bad++;
  m->last_tick = m->w.now;
  m->armed[i] = 0;
  m->armed_count--;
  for (k = rng_next(&m->seed) % 3; k > 0; k--) {
    size_t j = (size_t)(rng_next(&m->seed) % m->n);
    if (rng_next(&m->seed) % 3 == 0)
      model_cancel(m, j);
    else
      model_arm(m, j);
  }
}

static int model_run(struct pool *p) {
  struct model m;
  const size_t n = p->n;
  size_t step, i, k;

  ASSERT_GT(n, 0);
  memset(&m, 0, sizeof m);
  m.items = p->items;
  m.expect = p->sorted;
  m.armed = p->flag;
  m.n = p->n;
  m.seed = 77;
  model_of = &m;
  vigil_wheel_init(&m.w, 1u << 20);
  for (step = 0; step < 3000; step++) {
    for (k = rng_next(&m.seed) % 20; k > 0; k--) {
      i = (size_t)(rng_next(&m.seed) % n);
      if (rng_next(&m.seed) % 4 == 0)
        model_cancel(&m, i);
      else
        model_arm(&m, i);
    }
    m.advance_start = m.w.now;
    m.last_tick = m.w.now;
    vigil_wheel_advance(
        &m.w,
        m.w.now + (rng_next(&m.seed) % 4 == 0 ? rng_next(&m.seed) % 5000 : rng_next(&m.seed) % 64),
        model_fire, NULL);
    ASSERT_EQ(m.bad, 0);
    ASSERT_EQ(m.w.count, m.armed_count);
    uint64_t earliest = UINT64_MAX, nx;
    for (i = 0; i < m.n; i++) {
      ASSERT_EQ(vigil_timer_armed(&m.items[i].t), m.armed[i] != 0);
      /* Anything still armed is in the future, or was armed in the past
       * (by a callback) and waits for the next advance. */
      if (m.armed[i])
        ASSERT(m.expect[i] > m.w.now || m.armed[i] == 2);
      if (m.armed[i] && m.expect[i] < earliest)
        earliest = m.expect[i];
    }
    nx = vigil_wheel_next_expiry(&m.w);
    ASSERT_ULE(nx, earliest);
    ASSERT_EQ(nx == UINT64_MAX, m.armed_count == 0);
  }
  model_of = NULL;
  return 0;
}

TEST_IMPL(random_operations_match_model) {
  return with_pool(500, model_run);
}
