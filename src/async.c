/* Waking the loop from other threads: async handles and posted calls.
 *
 * The loop sleeps in its backend's wait (epoll_wait, poll,
 * GetQueuedCompletionStatusEx). Another thread gets it out of there with
 * the platform's wakeup: a write to an eventfd or to a self-pipe the poller
 * watches (src/unix/wakeup.c), or a packet posted to the completion port
 * (src/win/wakeup.c). One wakeup serves the whole loop; what it is for is
 * recorded beside it, in flags the woken loop inspects:
 *
 *   sender (any thread)                    loop thread (vigil__loop_wakeup)
 *   1. xchg(a->pending, 1); was 1: done    1. the platform drained the wakeup
 *   2. xchg(loop->wake_pending, 1);        2. xchg(loop->wake_pending, 0)
 *      was 0: write the wakeup             3. for each handle:
 *                                             xchg(a->pending, 0) was 1: a->cb
 *                                          4. run the posts queued so far
 *
 * Every step is a sequentially consistent atomic, so no send is lost: a
 * sender that finds wake_pending already 1 (and skips the write) set its
 * own flag before the loop's step 2, hence before the loop's step 3 reads
 * it. Sends coalesce twice over: a handle already pending is not sent
 * again, and a loop already woken is not woken again, so a storm of sends
 * costs one write(2) per loop iteration. A sender touches only two ints and
 * (at most) one write(2): nothing that takes a lock or allocates, which is
 * what makes vigil_async_send async-signal-safe and lets vigil_signal
 * (src/unix/signal.c) be built on it.
 *
 * Posted calls (vigil_loop_post) are a bounded FIFO under a mutex; posting
 * wakes the loop the same way. The loop runs only the calls queued when it
 * starts draining: a call that posts another runs it in the next iteration,
 * so a post loop cannot starve I/O and timers. */
#include <stdlib.h>
#include <string.h>

#include "loop-internal.h"
#include "thread.h"

#define DEFAULT_POST_QUEUE_MAX 4096u

typedef struct post_item {
  vigil_post_cb fn;
  void *arg;
} post_item;

typedef struct post_queue {
  vigil__mutex lock;
  post_item *ring; /* grows by doubling up to max */
  uint32_t cap, head, count, max;
  int waiting; /* atomic copy of count, for vigil_loop_alive */
} post_queue;

int vigil__posts_init(vigil_loop *loop, uint32_t max) {
  post_queue *q = calloc(1, sizeof *q);
  if (q == NULL)
    return VIGIL_ENOMEM;
  vigil__mutex_init(&q->lock);
  q->max = max != 0 ? max : DEFAULT_POST_QUEUE_MAX;
  loop->posts = q;
  return 0;
}

int vigil__posts_waiting(const vigil_loop *loop) {
  const post_queue *q = loop->posts;
  return q != NULL && vigil__atomic_load(&q->waiting) != 0;
}

void vigil__posts_free(vigil_loop *loop) {
  post_queue *q = loop->posts;
  if (q == NULL)
    return;
  vigil__mutex_destroy(&q->lock);
  free(q->ring);
  free(q);
  loop->posts = NULL;
}

static void wake(vigil_loop *loop) {
  if (vigil__atomic_xchg(&loop->wake_pending, 1) == 0)
    vigil__plat_wake(loop);
}

/* Doubles the ring, keeping its order. Called with the lock held. */
static int grow(post_queue *q) {
  uint32_t cap = q->cap != 0 ? q->cap * 2 : 16, i;
  post_item *ring;
  if (cap > q->max)
    cap = q->max;
  ring = malloc(cap * sizeof *ring);
  if (ring == NULL)
    return VIGIL_ENOMEM;
  for (i = 0; i < q->count; i++)
    ring[i] = q->ring[(q->head + i) % q->cap];
  free(q->ring);
  q->ring = ring;
  q->cap = cap;
  q->head = 0;
  return 0;
}

int vigil_loop_post(vigil_loop *loop, vigil_post_cb fn, void *arg) {
  post_queue *q;
  int err = 0;
  if (loop == NULL || fn == NULL || loop->posts == NULL)
    return VIGIL_EINVAL;
  q = loop->posts;
  vigil__mutex_lock(&q->lock);
  if (q->count == q->max)
    err = VIGIL_EQUEUEFULL;
  else if (q->count == q->cap)
    err = grow(q);
  if (err == 0) {
    q->ring[(q->head + q->count) % q->cap].fn = fn;
    q->ring[(q->head + q->count) % q->cap].arg = arg;
    q->count++;
    vigil__atomic_store(&q->waiting, (int)q->count);
  }
  vigil__mutex_unlock(&q->lock);
  if (err == 0)
    wake(loop);
  return err;
}

/* Pops the oldest call into *item. Returns 0 when the queue is empty. */
static int pop(post_queue *q, post_item *item) {
  int got = 0;
  vigil__mutex_lock(&q->lock);
  if (q->count != 0) {
    *item = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    vigil__atomic_store(&q->waiting, (int)q->count);
    got = 1;
  }
  vigil__mutex_unlock(&q->lock);
  return got;
}

static void run_posts(vigil_loop *loop) {
  post_queue *q = loop->posts;
  post_item item;
  int n = vigil__atomic_load(&q->waiting);
  /* Only what was queued before we started: later posts woke the loop
   * again and run in the next iteration. */
  while (n-- > 0 && pop(q, &item))
    item.fn(loop, item.arg);
}

static void run_asyncs(vigil_loop *loop) {
  vigil__queue todo, *q;
  vigil_async *a;
  /* A detached walk (as for stall watchers), so a callback may close any
   * handle or initialise new ones. */
  vigil__queue_move(&loop->asyncs, &todo);
  while (!vigil__queue_empty(&todo)) {
    q = todo.next;
    vigil__queue_remove(q);
    vigil__queue_insert_tail(&loop->asyncs, q);
    a = vigil_container_of(q, vigil_async, link);
    if (vigil__atomic_xchg(&a->pending, 0) != 0)
      a->cb(a);
  }
}

void vigil__loop_wakeup(vigil_loop *loop) {
  (void)vigil__atomic_xchg(&loop->wake_pending, 0);
  run_asyncs(loop);
  run_posts(loop);
}

/* ---- async handles --------------------------------------------------------- */

int vigil_async_init(vigil_loop *loop, vigil_async *a, vigil_async_cb cb) {
  if (loop == NULL || a == NULL || cb == NULL)
    return VIGIL_EINVAL;
  memset(a, 0, sizeof *a);
  a->loop = loop;
  a->cb = cb;
  vigil__queue_insert_tail(&loop->asyncs, &a->link);
  loop->nhandles++;
  loop->active_handles++;
  return 0;
}

int vigil_async_send(vigil_async *a) {
  if (vigil__atomic_xchg(&a->pending, 1) == 0)
    wake(a->loop);
  return 0;
}

static void async_closed(vigil_loop *loop, vigil_defer *d) {
  vigil_async *a = vigil_container_of(d, vigil_async, close_defer);
  loop->nhandles--;
  if (a->close_cb != NULL)
    a->close_cb(a);
}

void vigil_async_close(vigil_async *a, vigil_async_close_cb cb) {
  if (a == NULL || a->closing)
    return;
  a->closing = 1;
  a->close_cb = cb;
  vigil__queue_remove(&a->link);
  (void)vigil__atomic_xchg(&a->pending, 0);
  a->loop->active_handles--;
  vigil_defer_init(&a->close_defer, async_closed);
  vigil_loop_defer(a->loop, &a->close_defer);
}
