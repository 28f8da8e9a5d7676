/* Happy Eyeballs (RFC 8305): connect to a host that has several addresses
 * without waiting for the dead ones.
 *
 * A name often resolves to an IPv6 and an IPv4 address, and one of them may
 * not work here: no route (fails at once), a refusing host (fails in one
 * round trip) or a path that drops the SYN (hangs until the kernel's SYN
 * retries give up, minutes later). Trying the addresses one after the other
 * would make the client wait out each hang; trying them all at once would
 * hit the server with a connection per address. RFC 8305 does neither: the
 * addresses are ordered (src/resolve.c: IPv6 first, the families
 * interleaved), the first attempt starts at once, and each further attempt
 * starts when the previous one failed or after the Connection Attempt Delay
 * (250 ms by default) if it has not finished by then. The first to connect
 * wins and every other attempt is closed; the race fails only when every
 * address failed, or at the deadline, and then names the last error and
 * the last address tried.
 *
 * Each attempt is a connection of the owner (vigil__conn_new) whose TCP
 * handle connects with a request of the race, so conn.c's connect logic
 * (timer, on_reject) stays out of it: a losing attempt is closed without a
 * callback to the application, and the winner is handed to the client,
 * which starts the session on it. A losing connect completes with
 * VIGIL_ECANCELED after the race is gone; its request memory is freed then. */
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "race.h"
#include "resolve.h"

typedef struct attempt {
  vigil_connect_req req;
  vigil_conn *c;
  vigil__race *race; /* NULL once the race no longer wants it */
  size_t index;      /* its address */
} attempt;

struct vigil__race {
  vigil__owner *o;
  vigil__race_cb cb;
  void *arg;
  uint64_t *connects;
  uint32_t delay_ms;
  vigil_loop_timer stagger;  /* the next attempt */
  vigil_loop_timer deadline; /* the whole race */
  size_t n, next;            /* addresses; the next one to try */
  unsigned live;             /* attempts connecting */
  attempt *running[VIGIL__RESOLVE_MAX_ADDRS];
  int last_err;
  size_t last; /* index of the last address that failed or was started */
  struct sockaddr_storage addrs[VIGIL__RESOLVE_MAX_ADDRS];
};

static void start_next(vigil__race *r);

/* Closes an attempt's connection without telling the application. */
static void drop_conn(vigil_conn *c) {
  c->phase = VIGIL__ZOMBIE;
  vigil__conn_discard(c);
}

static void finish(vigil__race *r, vigil_conn *winner) {
  size_t i;
  vigil_loop_timer_cancel(r->o->loop, &r->stagger);
  vigil_loop_timer_cancel(r->o->loop, &r->deadline);
  for (i = 0; i < r->n; i++) {
    attempt *a = r->running[i];
    if (a == NULL)
      continue;
    r->running[i] = NULL;
    a->race = NULL; /* its connect completes (ECANCELED) and frees it */
    drop_conn(a->c);
  }
  r->live = 0;
  if (r->cb != NULL)
    r->cb(r->arg, winner, r->last_err, (const struct sockaddr *)&r->addrs[r->last]);
  free(r);
}

static void on_connect(vigil_connect_req *req, int status) {
  attempt *a = vigil_container_of(req, attempt, req);
  vigil__race *r = a->race;
  vigil_conn *c = a->c;
  if (r == NULL) {
    free(a); /* a loser, already closed */
    return;
  }
  r->running[a->index] = NULL;
  r->live--;
  if (status == 0) {
    free(a);
    finish(r, c);
    return;
  }
  r->last_err = status;
  r->last = a->index;
  free(a);
  drop_conn(c);
  /* A failed attempt does not wait for the delay: the next starts now. */
  vigil_loop_timer_cancel(r->o->loop, &r->stagger);
  start_next(r);
}

static void on_stagger(vigil_loop *loop, vigil_loop_timer *t) {
  (void)loop;
  start_next(vigil_container_of(t, vigil__race, stagger));
}

static void on_deadline(vigil_loop *loop, vigil_loop_timer *t) {
  vigil__race *r = vigil_container_of(t, vigil__race, deadline);
  (void)loop;
  r->last_err = VIGIL_ETIMEDOUT;
  finish(r, NULL);
}

/* Starts one attempt on address i. Returns 0 or the error that stopped it
 * at once (no socket of that family, out of memory...). */
static int start_one(vigil__race *r, size_t i) {
  vigil_conn *c = vigil__conn_new(r->o);
  attempt *a;
  int rc;
  if (c == NULL)
    return VIGIL_ENOMEM;
  a = calloc(1, sizeof *a);
  if (a == NULL) {
    drop_conn(c);
    return VIGIL_ENOMEM;
  }
  c->phase = VIGIL__CONNECTING;
  memcpy(c->peer.b, &r->addrs[i], sizeof c->peer.b);
  a->c = c;
  a->race = r;
  a->index = i;
  rc = vigil_tcp_connect(&a->req, &c->tcp, (const struct sockaddr *)&r->addrs[i], on_connect);
  if (rc != 0) {
    free(a);
    drop_conn(c);
    return rc;
  }
  r->running[i] = a;
  r->live++;
  if (r->connects != NULL)
    (*r->connects)++;
  return 0;
}

/* Starts the next address that can be started; when none is left and
 * nothing is running, the race is lost. */
static void start_next(vigil__race *r) {
  int rc;
  while (r->next < r->n) {
    size_t i = r->next++;
    r->last = i;
    rc = start_one(r, i);
    if (rc == 0) {
      if (r->next < r->n)
        vigil_loop_timer_arm(r->o->loop, &r->stagger, vigil__after_ms(r->o->loop, r->delay_ms),
                             on_stagger);
      return;
    }
    r->last_err = rc;
  }
  if (r->live == 0)
    finish(r, NULL);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  else
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

int vigil__race_start(vigil__race **out, vigil__owner *o, const struct sockaddr_storage *addrs,
                      size_t n, uint16_t port, uint32_t delay_ms, uint64_t deadline_ms,
                      uint64_t *connects, vigil__race_cb cb, void *arg) {
  vigil__race *r;
  size_t i;
  int rc;
  if (out == NULL || o == NULL || addrs == NULL || n == 0 || cb == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  r = calloc(1, sizeof *r);
  if (r == NULL)
    return VIGIL_ENOMEM;
  if (n > VIGIL__RESOLVE_MAX_ADDRS)
    n = VIGIL__RESOLVE_MAX_ADDRS;
  r->o = o;
  r->cb = cb;
  r->arg = arg;
  r->connects = connects;
  r->delay_ms = delay_ms;
  r->n = n;
  r->last_err = VIGIL_EAFNOSUPPORT;
  for (i = 0; i < n; i++) {
    r->addrs[i] = addrs[i];
    set_port(&r->addrs[i], port);
  }
  vigil_loop_timer_init(&r->stagger);
  vigil_loop_timer_init(&r->deadline);
  vigil_loop_timer_arm(o->loop, &r->deadline, deadline_ms, on_deadline);
  /* The first attempt starts at once; if it cannot start at all, the next
   * address (or the verdict) waits for the loop's timer phase, so cb never
   * runs from inside this call. */
  r->next = 1;
  r->last = 0;
  rc = start_one(r, 0);
  if (rc != 0) {
    r->last_err = rc;
    vigil_loop_timer_arm(o->loop, &r->stagger, vigil_loop_now_ms(o->loop), on_stagger);
  } else if (n > 1) {
    vigil_loop_timer_arm(o->loop, &r->stagger, vigil__after_ms(o->loop, delay_ms), on_stagger);
  }
  *out = r;
  return 0;
}

void vigil__race_cancel(vigil__race *r) {
  if (r == NULL)
    return;
  r->cb = NULL;
  finish(r, NULL);
}
