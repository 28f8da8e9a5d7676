/* Intrusive circular doubly linked lists (libuv's queue, in functions):
 * a vigil__queue node is embedded in each element and the list head is a
 * node of its own, so linking and unlinking never allocate and an element
 * can unlink itself without knowing its list. The node type is in
 * vigil/loop.h because public structs embed it; these helpers are
 * internal, shared by the loop and the runtime. Get the element back with
 * vigil_container_of. */
#ifndef VIGIL_QUEUE_H
#define VIGIL_QUEUE_H

#include "vigil/loop.h"

static inline void vigil__queue_init(vigil__queue *q) {
  q->next = q;
  q->prev = q;
}

static inline int vigil__queue_empty(const vigil__queue *q) {
  return q->next == q;
}

static inline void vigil__queue_insert_tail(vigil__queue *h, vigil__queue *q) {
  q->next = h;
  q->prev = h->prev;
  h->prev->next = q;
  h->prev = q;
}

/* Unlinks q and leaves it an empty list, so removing twice is harmless. */
static inline void vigil__queue_remove(vigil__queue *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  q->next = q;
  q->prev = q;
}

/* Moves every node of `from` to the empty list `to`. */
static inline void vigil__queue_move(vigil__queue *from, vigil__queue *to) {
  if (vigil__queue_empty(from)) {
    vigil__queue_init(to);
    return;
  }
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  vigil__queue_init(from);
}

#endif
