/* The two thread primitives the loop's thread-safe entry points need: a
 * mutex (pthread on POSIX, an SRW lock on Windows; both can be initialised
 * statically) and atomic exchange / add on plain ints (the GCC / Clang
 * __atomic builtins, which mingw-w64 has too), so public structs that hold
 * such a field need no <stdatomic.h>. Every operation here is sequentially
 * consistent: the wakeup protocol in src/async.c relies on that order. */
#ifndef VIGIL_THREAD_H
#define VIGIL_THREAD_H

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
typedef SRWLOCK vigil__mutex;
#define VIGIL__MUTEX_INIT SRWLOCK_INIT
static inline void vigil__mutex_init(vigil__mutex *m) {
  InitializeSRWLock(m);
}
static inline void vigil__mutex_lock(vigil__mutex *m) {
  AcquireSRWLockExclusive(m);
}
static inline void vigil__mutex_unlock(vigil__mutex *m) {
  ReleaseSRWLockExclusive(m);
}
static inline void vigil__mutex_destroy(vigil__mutex *m) {
  (void)m;
}
#else
#include <pthread.h>
typedef pthread_mutex_t vigil__mutex;
#define VIGIL__MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static inline void vigil__mutex_init(vigil__mutex *m) {
  (void)pthread_mutex_init(m, NULL);
}
static inline void vigil__mutex_lock(vigil__mutex *m) {
  (void)pthread_mutex_lock(m);
}
static inline void vigil__mutex_unlock(vigil__mutex *m) {
  (void)pthread_mutex_unlock(m);
}
static inline void vigil__mutex_destroy(vigil__mutex *m) {
  (void)pthread_mutex_destroy(m);
}
#endif

/* The __atomic builtins: GCC, Clang and mingw-w64 have them (a compiler
 * without them fails here, which is the message). */
/* Stores v into *p and returns the previous value. */
static inline int vigil__atomic_xchg(int *p, int v) {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

static inline int vigil__atomic_load(const int *p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void vigil__atomic_store(int *p, int v) {
  __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* Adds v to *p and returns the new value. */
static inline int vigil__atomic_add(int *p, int v) {
  return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

#endif
