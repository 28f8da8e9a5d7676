/* The worker supervisor on POSIX: fork, wait, restart, stop.
 *
 * The supervisor is a process with nothing else to do, so it does not run
 * a vigil loop (a loop would be inherited, half-shared, by every fork). It
 * is a poll() on a self-pipe: the handlers of SIGCHLD, SIGTERM and SIGINT
 * write one byte to the pipe and count the stop signals; the loop wakes,
 * reaps each of its own workers with waitpid(pid, WNOHANG) (never
 * waitpid(-1): the program may have other children), and sleeps until the
 * next planned restart or the stop deadline.
 *
 * Restarts back off per worker: a worker that lived less than stable_ms
 * counts as a quick death and doubles its next delay (restart_base_ms up
 * to restart_max_ms); one that lived longer starts over at the base.
 * max_restarts quick deaths in a row mean the worker cannot run (a port it
 * cannot bind, a bad configuration): the supervisor stops the others and
 * returns VIGIL_EWORKER rather than fork forever.
 *
 * Stopping: the first SIGTERM / SIGINT sends SIGTERM to every worker (each
 * shuts down gracefully) and sets a deadline; the deadline or a second
 * signal sends SIGKILL to the ones left. The supervisor returns once every
 * worker is reaped, with its signal dispositions restored.
 *
 * In the child, before run(): the supervisor's handlers are replaced by the
 * default dispositions (SIGINT ignored: a terminal's Ctrl-C reaches every
 * process of the group, and the supervisor turns it into one SIGTERM per
 * worker; a worker taking both would treat the second as "shutdown hangs,
 * die now"), the pipe is closed, and where the kernel offers it
 * (PR_SET_PDEATHSIG) the worker asks for SIGTERM when its supervisor dies,
 * so a kill -9 of the supervisor leaves no orphans serving. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(HAVE_PR_SET_PDEATHSIG)
#include <sys/prctl.h>
#endif

#include "../workers.h"

typedef struct slot {
  pid_t pid;           /* 0: not running */
  uint64_t started_ms; /* when it was last started */
  uint64_t restart_at; /* planned start, 0: none */
  uint32_t quick;      /* quick deaths in a row */
  unsigned restarts;   /* starts after the first */
} slot;

static int wake_fd[2] = {-1, -1};
static volatile sig_atomic_t stop_signals;

static void on_signal(int signo) {
  int saved = errno;
  char b = 0;
  if (signo != SIGCHLD)
    stop_signals++;
  (void)!write(wake_fd[1], &b, 1);
  errno = saved;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const int watched[] = {SIGCHLD, SIGTERM, SIGINT};
#define NWATCHED (sizeof watched / sizeof watched[0])

static int install(struct sigaction *old) {
  struct sigaction sa;
  size_t i;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  for (i = 0; i < NWATCHED; i++)
    if (sigaction(watched[i], &sa, &old[i]) != 0) {
      int err = -errno;
      while (i-- > 0)
        (void)sigaction(watched[i], &old[i], NULL);
      return err;
    }
  return 0;
}

static void restore(const struct sigaction *old) {
  size_t i;
  for (i = 0; i < NWATCHED; i++)
    (void)sigaction(watched[i], &old[i], NULL);
}

/* In the child, before run(). */
static void child_setup(const struct sigaction *old, pid_t parent, const sigset_t *mask) {
  struct sigaction dfl;
  size_t i;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (i = 0; i < NWATCHED; i++)
    (void)sigaction(watched[i], watched[i] == SIGINT ? &dfl : &old[i], NULL);
  signal(SIGINT, SIG_IGN);
  (void)sigprocmask(SIG_SETMASK, mask, NULL); /* the caller's, as before the fork */
  close(wake_fd[0]);
  close(wake_fd[1]);
#if defined(HAVE_PR_SET_PDEATHSIG)
  (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (getppid() != parent) /* it died before the request above */
    _exit(0);
}

static void emit(const vigil_workers_config *cfg, vigil_worker_event *ev) {
  if (cfg->on_event != NULL)
    cfg->on_event(ev, cfg->user);
}

static int start(const vigil_workers_config *cfg, slot *s, unsigned index,
                 const struct sigaction *old) {
  vigil_worker_event ev;
  pid_t parent = getpid(), pid;
  sigset_t all, saved;
  int err;
  fflush(NULL); /* buffered output is not written twice */
  /* Blocked across the fork: a signal for the new worker waits until it
   * has its own dispositions, instead of running the supervisor's handler
   * in the worker. */
  sigfillset(&all);
  (void)sigprocmask(SIG_BLOCK, &all, &saved);
  pid = fork();
  if (pid == 0) {
    child_setup(old, parent, &saved);
    exit(cfg->run(index, cfg->user));
  }
  err = errno;
  (void)sigprocmask(SIG_SETMASK, &saved, NULL);
  if (pid < 0)
    return -err;
  s->pid = pid;
  s->started_ms = now_ms();
  s->restart_at = 0;
  memset(&ev, 0, sizeof ev);
  ev.type = VIGIL_WORKER_STARTED;
  ev.worker = index;
  ev.pid = (long)pid;
  ev.restarts = s->restarts;
  emit(cfg, &ev);
  return 0;
}

static void kill_all(slot *slots, unsigned n, int signo) {
  unsigned i;
  for (i = 0; i < n; i++)
    if (slots[i].pid > 0)
      (void)kill(slots[i].pid, signo);
}

/* A worker ended: report it and plan its restart. Returns 1 when it died
 * too often (give up). */
static int ended(const vigil_workers_config *cfg, slot *s, unsigned index, int wstatus,
                 int stopping) {
  vigil_worker_event ev;
  uint64_t now = now_ms();
  int give_up = 0;
  memset(&ev, 0, sizeof ev);
  ev.type = VIGIL_WORKER_EXITED;
  ev.worker = index;
  ev.pid = (long)s->pid;
  ev.restarts = s->restarts;
  ev.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  ev.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
  ev.lived_ms = now - s->started_ms;
  s->pid = 0;
  if (!stopping) {
    uint64_t delay = cfg->restart_base_ms;
    if (ev.lived_ms >= cfg->stable_ms)
      s->quick = 0;
    else if (++s->quick > cfg->max_restarts)
      give_up = 1;
    if (s->quick > 1)
      delay <<= s->quick - 1 < 30 ? s->quick - 1 : 30;
    if (delay > cfg->restart_max_ms)
      delay = cfg->restart_max_ms;
    if (!give_up) {
      ev.restarting = 1;
      ev.restart_in_ms = (uint32_t)delay;
      s->restart_at = now + delay;
    }
  }
  emit(cfg, &ev);
  return give_up;
}

static int running(const slot *slots, unsigned n) {
  unsigned i;
  for (i = 0; i < n; i++)
    if (slots[i].pid > 0)
      return 1;
  return 0;
}

/* The next instant the loop must wake for: a restart or the stop deadline. */
static int wait_ms(const slot *slots, unsigned n, int stopping, uint64_t deadline) {
  uint64_t next = stopping ? deadline : UINT64_MAX, now = now_ms();
  unsigned i;
  if (!stopping)
    for (i = 0; i < n; i++)
      if (slots[i].pid == 0 && slots[i].restart_at != 0 && slots[i].restart_at < next)
        next = slots[i].restart_at;
  if (next == UINT64_MAX)
    return -1;
  return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void drain(void) {
  char buf[64];
  while (read(wake_fd[0], buf, sizeof buf) > 0)
    ;
}

static int pipe_nonblock(void) {
  int i;
  if (pipe(wake_fd) != 0)
    return -errno;
  for (i = 0; i < 2; i++) {
    (void)fcntl(wake_fd[i], F_SETFL, fcntl(wake_fd[i], F_GETFL) | O_NONBLOCK);
    (void)fcntl(wake_fd[i], F_SETFD, FD_CLOEXEC);
  }
  return 0;
}

/* The supervision loop; returns what vigil_workers_run returns. */
static int supervise(const vigil_workers_config *cfg, slot *slots, const struct sigaction *old) {
  unsigned n = cfg->workers, i;
  int stopping = 0, result = 0, killed = 0;
  uint64_t deadline = 0;
  for (;;) {
    struct pollfd p;
    p.fd = wake_fd[0];
    p.events = POLLIN;
    (void)poll(&p, 1, wait_ms(slots, n, stopping, deadline));
    drain();
    for (i = 0; i < n; i++) { /* reap */
      int ws;
      if (slots[i].pid > 0 && waitpid(slots[i].pid, &ws, WNOHANG) == slots[i].pid &&
          ended(cfg, &slots[i], i, ws, stopping) && !stopping) {
        result = VIGIL_EWORKER;
        stop_signals++; /* stop the others as for a signal */
      }
    }
    if (stop_signals > 0 && !stopping) {
      stopping = 1;
      deadline = now_ms() + cfg->stop_timeout_ms;
      kill_all(slots, n, SIGTERM);
    }
    if (stopping && !killed && (stop_signals > 1 || now_ms() >= deadline)) {
      killed = 1;
      kill_all(slots, n, SIGKILL);
    }
    if (stopping && !running(slots, n))
      return result;
    for (i = 0; i < n && !stopping; i++)
      if (slots[i].pid == 0 && slots[i].restart_at != 0 && slots[i].restart_at <= now_ms()) {
        slots[i].restarts++;
        if (start(cfg, &slots[i], i, old) != 0)
          slots[i].restart_at = now_ms() + cfg->restart_max_ms; /* fork failed: later */
      }
  }
}

int vigil_workers_run(const vigil_workers_config *cfg_in) {
  vigil_workers_config cfg;
  struct sigaction old[NWATCHED];
  slot *slots;
  unsigned i;
  int rc;
  if ((rc = vigil__workers_config_read(&cfg, cfg_in)) != 0)
    return rc;
  if ((slots = calloc(cfg.workers, sizeof *slots)) == NULL)
    return VIGIL_ENOMEM;
  if ((rc = pipe_nonblock()) != 0) {
    free(slots);
    return rc;
  }
  stop_signals = 0;
  if ((rc = install(old)) != 0)
    goto out;
  for (i = 0; i < cfg.workers; i++)
    if ((rc = start(&cfg, &slots[i], i, old)) != 0)
      break;
  if (rc != 0) { /* the first start failed: stop the ones that run */
    stop_signals = 1;
    (void)supervise(&cfg, slots, old);
  } else {
    rc = supervise(&cfg, slots, old);
  }
  restore(old);
out:
  close(wake_fd[0]);
  close(wake_fd[1]);
  wake_fd[0] = wake_fd[1] = -1;
  free(slots);
  return rc;
}
