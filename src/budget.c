/* The server's memory budget.
 *
 * Each connection's buffers have their own caps (max_message for
 * reassembly, max_queue_bytes for the outbound queue), but caps per
 * connection multiply: 10000 connections x 2 MiB is 20 GiB, and 300 peers
 * that each send most of a 1 MiB message and never the end grow a server
 * by 300 MB. So every byte a connection holds beyond its fixed struct is
 * charged to one account per server before it is allocated: reassembly
 * buffers (their capacity), queued outbound messages, and the copy of a
 * write the kernel did not take at once. Heartbeats allocate nothing and
 * are never charged, so a budget under pressure never touches liveness.
 *
 * The rule, applied only when a charge would take the total past the
 * budget (the budget is "short"):
 *   share = budget / connections (sockets open, handshaking included);
 *   a connection whose own bytes would pass its share is closed: CLOSE
 *   POLICY "memory budget exceeded", cause policy, its buffers freed;
 *   a connection within its share gets its bytes: the connections furthest
 *   above their share are closed the same way until the total fits.
 * The total stays within the budget: a connection within its share always
 * finds someone above theirs to evict (if all were within their share the
 * total could not exceed connections x share = budget). The one exception
 * is the pending write of a connection already closed, freed by its close
 * callback a moment later; such bytes cannot be reclaimed sooner, so a
 * charge within its share is granted past the budget by at most those.
 * Nobody is starved by a greedy peer: without pressure nothing is refused;
 * with it, the greedy are the ones closed.
 *
 * Finding the greediest scans the owner's connections: O(n), and only
 * when the budget is short and the one asking is within its share, which
 * each eviction makes rarer. A client (budget 0) counts but never
 * refuses. */
#include "budget.h"

#define BUDGET_REASON "memory budget exceeded"

static void budget_close(vigil_conn *c) {
  c->owner->budget_closes++;
  vigil__conn_kill(c, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_POLICY, BUDGET_REASON, 0,
                   "memory budget: above its share while the budget was short");
}

static vigil_conn *greediest(vigil__owner *o, const vigil_conn *except, size_t share) {
  vigil__slab_cursor cur = {0};
  vigil_conn *best = NULL, *c;
  while ((c = vigil__conn_next(o, &cur)) != NULL) {
    if (c == except || c->phase == VIGIL__ZOMBIE || vigil__cx(c)->charged <= share)
      continue;
    if (best == NULL || vigil__cx(c)->charged > vigil__cx(best)->charged)
      best = c;
  }
  return best;
}

int vigil__budget_charge(vigil_conn *c, size_t n) {
  vigil__owner *o = c->owner;
  size_t share;
  if (o->budget != 0 && (n > o->budget || o->budget_used > o->budget - n)) {
    share = o->budget / (o->nconns != 0 ? o->nconns : 1);
    if (n > share || vigil__cx(c)->charged > share - n) {
      budget_close(c);
      return VIGIL_EPOLICY;
    }
    while (o->budget_used > o->budget - n) {
      vigil_conn *v = greediest(o, c, share);
      if (v == NULL)
        break; /* only dying connections' pending writes are left */
      budget_close(v);
    }
  }
  c->x->charged += n; /* what is charged lives in the ext (conn.h) */
  o->budget_used += n;
  return 0;
}

void vigil__budget_release(vigil_conn *c, size_t n) {
  c->x->charged -= n;
  c->owner->budget_used -= n;
}
