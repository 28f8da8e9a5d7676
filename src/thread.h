/* The thread primitives vigil needs. The loop's thread-safe entry points: a
 * mutex (pthread on POSIX, an SRW lock on Windows; both can be initialised
 * statically) and atomic exchange / add on plain ints (the GCC / Clang
 * __atomic builtins, which mingw-w64 has too), so public structs that hold
 * such a field need no <stdatomic.h>. Every operation here is sequentially
 * consistent: the wakeup protocol in src/async.c relies on that order.
 * The host name lookup workers (src/resolve.c): a condition variable, a
 * once flag, detached threads and fork handlers, in src/unix/thread.c and
 * src/win/thread.c. */
#ifndef VIGIL_THREAD_H
#define VIGIL_THREAD_H

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
typedef SRWLOCK vigil__mutex;
typedef CONDITION_VARIABLE vigil__cond;
typedef INIT_ONCE vigil__once_flag;
#define VIGIL__MUTEX_INIT SRWLOCK_INIT
#define VIGIL__COND_INIT CONDITION_VARIABLE_INIT
#define VIGIL__ONCE_INIT INIT_ONCE_STATIC_INIT
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
typedef pthread_cond_t vigil__cond;
typedef pthread_once_t vigil__once_flag;
#define VIGIL__MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define VIGIL__COND_INIT PTHREAD_COND_INITIALIZER
#define VIGIL__ONCE_INIT PTHREAD_ONCE_INIT
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

/* Waits for a signal with m held (spurious wake-ups happen: loop on the
 * condition). */
void vigil__cond_wait(vigil__cond *c, vigil__mutex *m);
void vigil__cond_signal(vigil__cond *c);
/* Runs fn exactly once per flag, whichever thread comes first; the others
 * wait until it has run. */
void vigil__once(vigil__once_flag *flag, void (*fn)(void));
/* Starts fn(arg) on a new detached thread. Returns 0, VIGIL_EAGAIN (the
 * system refused another thread) or VIGIL_ENOMEM. */
int vigil__thread_start(void (*fn)(void *arg), void *arg);
/* Handlers around fork() (pthread_atfork): the child of a process with
 * threads has only the forking one. A no-op where there is no fork. */
void vigil__thread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

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
