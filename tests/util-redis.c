/* See util-redis.h. No hiredis here: every test executable links this
 * file, and the readiness check is one PING on a plain socket. */
#include "util-redis.h"

#include <stdio.h>
#include <string.h>

#include "vigil.h"

#if defined(_WIN32)
int util_redis_start(util_redis *r) {
  (void)r;
  return VIGIL_ENOTSUP;
}
void util_redis_stop(util_redis *r) {
  (void)r;
}
void util_redis_cleanup(util_redis *r) {
  (void)r;
}
#else
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int answers(const char *path) {
  struct sockaddr_un a;
  struct timeval tv = {0, 200000};
  char buf[16];
  int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok = 0;
  if (fd < 0)
    return 0;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6 &&
      read(fd, buf, sizeof buf) >= 5 && memcmp(buf, "+PONG", 5) == 0)
    ok = 1;
  close(fd);
  return ok;
}

int util_redis_start(util_redis *r) {
  pid_t pid;
  int i;
  if (r->dir[0] == '\0') {
    snprintf(r->dir, sizeof r->dir, "/tmp/vigil-redis-XXXXXX");
    if (mkdtemp(r->dir) == NULL)
      return -1;
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
  }
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test, even a killed one */
    execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->sock, "--save", "",
           "--appendonly", "no", "--dir", r->dir, "--loglevel", "warning", (char *)NULL);
    _exit(127);
  }
  r->pid = (long)pid;
  for (i = 0; i < 200; i++) {
    if (answers(r->sock))
      return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid) { /* not installed, or refused to start */
      r->pid = 0;
      return -1;
    }
    usleep(10000);
  }
  util_redis_stop(r);
  return -1;
}

void util_redis_stop(util_redis *r) {
  if (r->pid > 0) {
    kill((pid_t)r->pid, SIGKILL);
    waitpid((pid_t)r->pid, NULL, 0);
    r->pid = 0;
  }
}

void util_redis_cleanup(util_redis *r) {
  util_redis_stop(r);
  if (r->dir[0] != '\0') {
    unlink(r->sock);
    rmdir(r->dir);
  }
}
#endif
