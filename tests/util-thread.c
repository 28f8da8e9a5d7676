/* See util-thread.h. */
#include "util-thread.h"

#include <stdlib.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

typedef struct start_info {
  void (*fn)(void *arg);
  void *arg;
} start_info;

#if defined(_WIN32)
static DWORD WINAPI trampoline(LPVOID p) {
  start_info si = *(start_info *)p;
  free(p);
  si.fn(si.arg);
  return 0;
}

int util_thread_start(util_thread *t, void (*fn)(void *arg), void *arg) {
  start_info *si = malloc(sizeof *si);
  if (si == NULL)
    return -1;
  si->fn = fn;
  si->arg = arg;
  t->handle = CreateThread(NULL, 0, trampoline, si, 0, NULL);
  if (t->handle == NULL) {
    free(si);
    return -1;
  }
  return 0;
}

int util_thread_join(util_thread *t) {
  if (WaitForSingleObject(t->handle, INFINITE) != WAIT_OBJECT_0)
    return -1;
  CloseHandle(t->handle);
  t->handle = NULL;
  return 0;
}

void util_sleep_ms(uint32_t ms) {
  Sleep(ms);
}
#else
static void *trampoline(void *p) {
  start_info si = *(start_info *)p;
  free(p);
  si.fn(si.arg);
  return NULL;
}

int util_thread_start(util_thread *t, void (*fn)(void *arg), void *arg) {
  start_info *si = malloc(sizeof *si);
  pthread_t *th = malloc(sizeof *th);
  if (si == NULL || th == NULL) {
    free(si);
    free(th);
    return -1;
  }
  si->fn = fn;
  si->arg = arg;
  if (pthread_create(th, NULL, trampoline, si) != 0) {
    free(si);
    free(th);
    return -1;
  }
  t->handle = th;
  return 0;
}

int util_thread_join(util_thread *t) {
  pthread_t *th = t->handle;
  int rc = pthread_join(*th, NULL);
  free(th);
  t->handle = NULL;
  return rc == 0 ? 0 : -1;
}

void util_sleep_ms(uint32_t ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000u);
  ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}
#endif
