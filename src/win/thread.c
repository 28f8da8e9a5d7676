/* The lookup workers' half of src/thread.h on Windows: condition variables
 * (Vista and later), InitOnceExecuteOnce and CreateThread (the SRW lock is
 * inline in the header). */
#include <stdlib.h>

#include "../thread.h"
#include "vigil/errno.h"

void vigil__cond_wait(vigil__cond *c, vigil__mutex *m) {
  (void)SleepConditionVariableSRW(c, m, INFINITE, 0);
}

void vigil__cond_signal(vigil__cond *c) {
  WakeConditionVariable(c);
}

typedef struct once_call {
  void (*fn)(void);
} once_call;

static BOOL CALLBACK run_once(PINIT_ONCE flag, PVOID param, PVOID *ctx) {
  (void)flag, (void)ctx;
  ((once_call *)param)->fn();
  return TRUE;
}

void vigil__once(vigil__once_flag *flag, void (*fn)(void)) {
  once_call call;
  call.fn = fn;
  (void)InitOnceExecuteOnce(flag, run_once, &call, NULL);
}

typedef struct start {
  void (*fn)(void *arg);
  void *arg;
} start;

static DWORD WINAPI run(LPVOID p) {
  start s = *(start *)p;
  free(p);
  s.fn(s.arg);
  return 0;
}

int vigil__thread_start(void (*fn)(void *arg), void *arg) {
  start *s = malloc(sizeof *s);
  HANDLE h;
  if (s == NULL)
    return VIGIL_ENOMEM;
  s->fn = fn;
  s->arg = arg;
  h = CreateThread(NULL, 0, run, s, 0, NULL);
  if (h == NULL) {
    free(s);
    return VIGIL_EAGAIN;
  }
  CloseHandle(h); /* detached: the thread runs on without its handle */
  return 0;
}

void vigil__thread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  (void)prepare, (void)parent, (void)child; /* no fork on Windows */
}
