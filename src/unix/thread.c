/* The lookup workers' half of src/thread.h on POSIX threads (the mutex is
 * inline in the header). Errors of wait and signal on a valid condition
 * variable cannot happen, so they are not reported. */
#include <errno.h>
#include <stdlib.h>

#include "../thread.h"
#include "vigil/errno.h"

void vigil__cond_wait(vigil__cond *c, vigil__mutex *m) {
  (void)pthread_cond_wait(c, m);
}

void vigil__cond_signal(vigil__cond *c) {
  (void)pthread_cond_signal(c);
}

void vigil__once(vigil__once_flag *flag, void (*fn)(void)) {
  (void)pthread_once(flag, fn);
}

typedef struct start {
  void (*fn)(void *arg);
  void *arg;
} start;

static void *run(void *p) {
  start s = *(start *)p;
  free(p);
  s.fn(s.arg);
  return NULL;
}

int vigil__thread_start(void (*fn)(void *arg), void *arg) {
  pthread_attr_t attr;
  pthread_t t;
  start *s = malloc(sizeof *s);
  int rc;
  if (s == NULL)
    return VIGIL_ENOMEM;
  s->fn = fn;
  s->arg = arg;
  if (pthread_attr_init(&attr) != 0) {
    free(s);
    return VIGIL_ENOMEM;
  }
  (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  rc = pthread_create(&t, &attr, run, s);
  (void)pthread_attr_destroy(&attr);
  if (rc != 0) {
    free(s);
    return rc == ENOMEM ? VIGIL_ENOMEM : VIGIL_EAGAIN;
  }
  return 0;
}

void vigil__thread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  (void)pthread_atfork(prepare, parent, child);
}
