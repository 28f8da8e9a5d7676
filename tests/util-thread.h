/* Threads for the tests of vigil's thread-safe entry points (test-async.c
 * and the send-from-thread tests): pthreads on POSIX, CreateThread on
 * Windows, behind one tiny interface. */
#ifndef VIGIL_TEST_UTIL_THREAD_H
#define VIGIL_TEST_UTIL_THREAD_H

#include <stdint.h>

typedef struct util_thread {
  void *handle; /* HANDLE, or a malloc'd pthread_t */
} util_thread;

/* Starts fn(arg) on a new thread. Returns 0 or -1. */
int util_thread_start(util_thread *t, void (*fn)(void *arg), void *arg);
/* Waits for it to end. Returns 0 or -1. */
int util_thread_join(util_thread *t);
/* Sleeps the calling thread for ms milliseconds. */
void util_sleep_ms(uint32_t ms);

#endif
