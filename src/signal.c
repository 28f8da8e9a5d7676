/* Signal handles, the portable half. The OS handler (src/unix/signal.c:
 * sigaction; src/win/signal.c: the console control handler) runs at an
 * arbitrary moment on an arbitrary thread, so all it does for a watching
 * handle is count the delivery and vigil_async_send the handle's async
 * (async-signal-safe: src/async.c). The async callback, on the loop's
 * thread, takes the count and calls the user once. The platform keeps the
 * process-wide list of started handles (vigil__plat_signal_add / remove),
 * because one OS handler serves every loop of the process. */
#include <string.h>

#include "loop-internal.h"
#include "thread.h"

static void on_async(vigil_async *a) {
  vigil_signal *s = vigil_container_of(a, vigil_signal, async);
  int signum = s->signum;
  if (vigil__atomic_xchg(&s->caught, 0) != 0 && signum != 0)
    s->cb(s, signum);
}

int vigil_signal_init(vigil_loop *loop, vigil_signal *s) {
  int err;
  if (loop == NULL || s == NULL)
    return VIGIL_EINVAL;
  memset(s, 0, sizeof *s);
  vigil__queue_init(&s->link);
  err = vigil_async_init(loop, &s->async, on_async);
  if (err != 0)
    return err;
  /* Only a started handle keeps the loop alive. */
  loop->active_handles--;
  return 0;
}

int vigil_signal_stop(vigil_signal *s) {
  if (s == NULL || s->signum == 0)
    return 0;
  vigil__plat_signal_remove(s);
  s->signum = 0;
  (void)vigil__atomic_xchg(&s->caught, 0);
  s->async.loop->active_handles--;
  return 0;
}

int vigil_signal_start(vigil_signal *s, vigil_signal_cb cb, int signum) {
  int err;
  if (s == NULL || cb == NULL || s->async.closing)
    return VIGIL_EINVAL;
  (void)vigil_signal_stop(s);
  s->cb = cb;
  /* The platform sets s->signum, under the lock its handler takes. */
  err = vigil__plat_signal_add(s, signum);
  if (err != 0)
    return err;
  s->async.loop->active_handles++;
  return 0;
}

static void on_closed(vigil_async *a) {
  vigil_signal *s = vigil_container_of(a, vigil_signal, async);
  if (s->close_cb != NULL)
    s->close_cb(s);
}

void vigil_signal_close(vigil_signal *s, vigil_signal_close_cb cb) {
  if (s == NULL || s->async.closing)
    return;
  (void)vigil_signal_stop(s);
  s->close_cb = cb;
  /* The async counted as active at init and we took that back: give it
   * back, since closing the async takes it again. */
  s->async.loop->active_handles++;
  vigil_async_close(&s->async, on_closed);
}

void vigil__signal_deliver(vigil_signal *s) {
  (void)vigil__atomic_add(&s->caught, 1);
  (void)vigil_async_send(&s->async);
}
