/* A redis-server of the test's own: on a unix socket in a fresh temp dir,
 * no persistence (--save "" --appendonly no), killed by pid by
 * util_redis_stop and, should the test process die first, by the kernel
 * (PR_SET_PDEATHSIG). POSIX only: elsewhere util_redis_start returns
 * VIGIL_ENOTSUP. */
#ifndef VIGIL_TEST_UTIL_REDIS_H
#define VIGIL_TEST_UTIL_REDIS_H

typedef struct util_redis {
  char dir[64];
  char sock[96];
  long pid;
} util_redis;

/* Starts it (again, on the same socket, if it ran before) and waits until
 * it answers PING. Returns 0, VIGIL_ENOTSUP, or -1 (not installed, no
 * answer within 2 s). */
int util_redis_start(util_redis *r);
/* SIGKILL and reap; harmless when not running. */
void util_redis_stop(util_redis *r);
/* Stops it and removes the temp dir. */
void util_redis_cleanup(util_redis *r);

#endif
