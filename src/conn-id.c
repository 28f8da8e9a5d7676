/* Connection ids, and sending to a connection from another thread.
 *
 * A vigil_conn pointer is valid only on its loop's thread and only until
 * its on_death returns, so another thread cannot hold one: by the time it
 * uses it the connection may be gone and its memory reused. It holds an id
 * instead, a number that names one connection for good: the index of a
 * slot in a process-wide table plus the slot's generation, which goes up
 * each time the slot is released, so an old id never names a newer
 * connection (a slot would have to be reused 2^32 times first).
 *
 *   id = generation << 32 | (index + 1)        (never 0)
 *
 * The table is under a mutex: connections register when created and
 * unregister when their memory goes (conn.c), on their loop's thread;
 * vigil_conn_send_threadsafe looks the id up from any thread. While it holds
 * the lock the connection cannot be released, so its loop is still alive
 * and the copy of the message can be posted to it (vigil_loop_post) before
 * the lock is let go. On the loop the id is looked up again: if the
 * connection was released in between, the message is dropped with
 * VIGIL_ENOENT; otherwise vigil_conn_send decides (a dying connection says
 * VIGIL_ECLOSED). Either way the optional done callback hears it on the
 * loop's thread. Lock order: this table, then the loop's post queue; the
 * loop never takes the table's lock while holding the queue's. */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "thread.h"

/* One slot is 8 bytes: a live slot holds its connection's address (whose
 * ref carries the slot's generation), a free one holds its generation and
 * the next free slot, tagged with the low bit (a connection's address is
 * even). 8 bytes instead of 16 is 8 bytes less per connection. */
#define NO_SLOT 0x7fffffffu /* end of the free list; also the most slots */

static vigil__mutex table_lock = VIGIL__MUTEX_INIT;
static uint64_t *slots;
static uint32_t nslots, cap, free_head = NO_SLOT;

static uint64_t make_id(uint32_t index, uint32_t gen) {
  return (uint64_t)gen << 32 | (uint64_t)(index + 1u);
}

static uint64_t free_slot(uint32_t gen, uint32_t next) {
  return (uint64_t)gen << 32 | (uint64_t)next << 1 | 1u;
}

/* The live connection named by id, or NULL. Called with the lock held:
 * a connection in the table is not freed before it leaves the table. */
static vigil_conn *find(uint64_t id) {
  uint32_t low = (uint32_t)(id & 0xffffffffu);
  vigil_conn *c;
  if (low == 0 || low > nslots || (slots[low - 1] & 1u) != 0)
    return NULL;
  /* NOLINTNEXTLINE(performance-no-int-to-ptr): a slot holds a pointer or a tagged free link */
  c = (vigil_conn *)(uintptr_t)slots[low - 1];
  return c->ref == id ? c : NULL;
}

static int grow(void) {
  uint32_t ncap = cap != 0 ? cap * 2 : 64;
  uint64_t *s;
  if (ncap <= cap || ncap > NO_SLOT)
    return VIGIL_ENOMEM;
  s = realloc(slots, (size_t)ncap * sizeof *s);
  if (s == NULL)
    return VIGIL_ENOMEM;
  slots = s;
  cap = ncap;
  return 0;
}

int vigil__conn_register(vigil_conn *c) {
  uint32_t i, gen = 1;
  int err = 0;
  vigil__mutex_lock(&table_lock);
  if (free_head != NO_SLOT) {
    i = free_head;
    gen = (uint32_t)(slots[i] >> 32);
    free_head = (uint32_t)(slots[i] & 0xffffffffu) >> 1;
  } else if (nslots < cap || (err = grow()) == 0) {
    i = nslots++;
  }
  if (err == 0) {
    slots[i] = (uint64_t)(uintptr_t)c;
    c->ref = make_id(i, gen);
  }
  vigil__mutex_unlock(&table_lock);
  return err;
}

void vigil__conn_unregister(vigil_conn *c) {
  uint32_t i;
  if (c->ref == 0)
    return;
  i = (uint32_t)(c->ref & 0xffffffffu) - 1u;
  vigil__mutex_lock(&table_lock);
  slots[i] = free_slot((uint32_t)(c->ref >> 32) + 1u, free_head);
  free_head = i;
  c->ref = 0;
  vigil__mutex_unlock(&table_lock);
}

uint64_t vigil_conn_id(const vigil_conn *c) {
  return c != NULL ? c->ref : 0;
}

typedef struct posted_send {
  uint64_t id;
  vigil_send_done_cb done;
  void *arg;
  size_t len;
  uint8_t data[];
} posted_send;

static void run_send(vigil_loop *loop, void *arg) {
  posted_send *p = arg;
  vigil_conn *c;
  int status;
  (void)loop;
  vigil__mutex_lock(&table_lock);
  c = find(p->id);
  vigil__mutex_unlock(&table_lock);
  /* Released only on this thread: c stays valid from here on. */
  status = c != NULL ? vigil_conn_send(c, p->data, p->len) : VIGIL_ENOENT;
  if (p->done != NULL)
    p->done(p->id, status, p->arg);
  free(p);
}

int vigil_conn_send_threadsafe(uint64_t conn_id, const void *msg, size_t len,
                               vigil_send_done_cb done, void *arg) {
  posted_send *p;
  vigil_conn *c;
  int err;
  if ((msg == NULL && len != 0) || len > SIZE_MAX - sizeof *p)
    return VIGIL_EINVAL;
  p = malloc(sizeof *p + len);
  if (p == NULL)
    return VIGIL_ENOMEM;
  p->id = conn_id;
  p->done = done;
  p->arg = arg;
  p->len = len;
  if (len != 0)
    memcpy(p->data, msg, len);
  vigil__mutex_lock(&table_lock);
  c = find(conn_id);
  err = c != NULL ? vigil_loop_post(c->owner->loop, run_send, p) : VIGIL_ENOENT;
  vigil__mutex_unlock(&table_lock);
  if (err != 0)
    free(p);
  return err;
}
