/* bench-budget: the memory budget against the two attacks of issue 12, at
 * full size, with the server's RSS measured.
 *
 * A `vigil serve --memory-budget B` runs in another process. This process
 * connects N healthy vigil clients (the library's client, default
 * heartbeat) and then G attackers on raw sockets that do the handshake
 * with a heartbeat longer than the run (so only the budget can close
 * them):
 *   --mode half    each attacker sends 63 DATA_MORE chunks of 16 KiB
 *                  (1008 KiB of a message) and never the final chunk;
 *   --mode noread  the server sends every connection a 64 KiB message
 *                  every 100 ms (serve --send-every) and the attackers
 *                  never read, so their queues grow.
 * It samples the server's VmRSS every 100 ms from before the attack to the
 * end of a hold period and prints the growth over the baseline, next to
 * the budget, the connections the server closed for the budget (its
 * --json death lines naming "memory budget") and the healthy clients'
 * deaths (must be 0).
 *
 * usage: bench-budget [--vigil PATH] [--budget SIZE] [-g G] [-n N]
 *                     [--mode half|noread] [--hold SECONDS]
 * defaults: --vigil ./vigil --budget 64MiB -g 300 -n 100 --mode half --hold 10
 * Linux only (/proc). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vigil.h"

#define CHUNKS 63
#define MAX_G 5000

static int healthy_opens, healthy_deaths;
static long rss0_kb, peak_kb;
static pid_t server;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static void sample(void) {
  long kb = rss_kb(server);
  if (kb > peak_kb)
    peak_kb = kb;
}

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  (void)c, (void)info, (void)user;
  healthy_opens++;
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  (void)c, (void)user;
  healthy_deaths++;
  fprintf(stderr, "bench-budget: healthy client died: %s\n", vigil_cause_name(d->cause));
}

/* Runs the client loop for `s` seconds, sampling the server's RSS. */
static void run_for(vigil_loop *loop, double s) {
  double end = now_s() + s, next = 0;
  while (now_s() < end) {
    (void)vigil_loop_run(loop, VIGIL_RUN_NOWAIT);
    if (now_s() >= next) {
      sample();
      next = now_s() + 0.1;
    }
    usleep(1000);
  }
}

static int attacker(uint16_t port, int nonblock) {
  static unsigned seq;
  char id[24];
  struct sockaddr_in a;
  uint8_t buf[VIGIL_WIRE_MAX_HELLO];
  vigil_hello h;
  int fd = socket(AF_INET, SOCK_STREAM, 0), n;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return -1;
  snprintf(id, sizeof id, "attacker-%u", seq++);
  memset(&h, 0, sizeof h);
  h.version = VIGIL_WIRE_VERSION;
  h.interval_ms = 600000; /* no heartbeat verdict within the run */
  h.timeout_ms = 1800000;
  h.max_frame = VIGIL_WIRE_MAX_CHUNK;
  h.max_message = 1u << 20;
  h.id = id;
  h.id_len = (uint8_t)strlen(id);
  n = vigil_wire_encode_hello(buf, sizeof buf, &h);
  if (n < 0 || send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
    return -1;
  if (nonblock)
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static long count_lines(const char *path, const char *needle) {
  char line[4096];
  long n = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strstr(line, needle) != NULL)
      n++;
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  const char *vigil = "./vigil", *budget = "64MiB", *mode = "half";
  int g = 300, n = 100, hold = 10, i, fds[MAX_G], done = 0;
  static size_t off[MAX_G];
  static uint8_t stream[CHUNKS * (VIGIL_WIRE_MAX_CHUNK + 8)];
  size_t slen = 0;
  char addr[32], log[64];
  struct rlimit rl;
  vigil_loop loop;
  vigil_client_config cfg;
  static vigil_client *cli[MAX_G];
  static char ids[MAX_G][16];
  double t0;
  uint16_t port;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  int lfd;

  for (i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      goto usage;
    if (strcmp(argv[i], "--vigil") == 0)
      vigil = v;
    else if (strcmp(argv[i], "--budget") == 0)
      budget = v;
    else if (strcmp(argv[i], "--mode") == 0)
      mode = v;
    else if (strcmp(argv[i], "-g") == 0)
      g = atoi(v);
    else if (strcmp(argv[i], "-n") == 0)
      n = atoi(v);
    else if (strcmp(argv[i], "--hold") == 0)
      hold = atoi(v);
    else
      goto usage;
    i++;
  }
  if (g < 0 || g > MAX_G || n < 0 || n > MAX_G ||
      (strcmp(mode, "half") != 0 && strcmp(mode, "noread") != 0))
    goto usage;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);

  /* A free port: bind 0, read it, close (a race a benchmark can afford). */
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
    return 1;
  port = ntohs(a.sin_port);
  close(lfd);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
  snprintf(log, sizeof log, "/tmp/bench-budget-%d.log", (int)getpid());
  if ((server = fork()) == 0) {
    int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *sargv[] = {(char *)vigil, "serve", addr,     "--memory-budget", (char *)budget,
                     "--max-conns", "20000", "--json", "--send-every",    "100ms",
                     "--send-size", "65536", NULL};
    if (strcmp(mode, "half") == 0)
      sargv[8] = NULL;
    if (out >= 0)
      dup2(out, 1);
    execv(vigil, sargv);
    _exit(127);
  }
  if (vigil_loop_init(&loop, NULL) != 0)
    return 1;
  for (t0 = now_s(); (lfd = attacker(port, 0)) < 0 && now_s() - t0 < 5;)
    usleep(20000);
  if (lfd < 0) {
    fprintf(stderr, "bench-budget: %s serve did not listen on %s\n", vigil, addr);
    return 1;
  }
  close(lfd);

  for (i = 0; i < n; i++) {
    vigil_client_config_init(&cfg);
    snprintf(ids[i], sizeof ids[i], "healthy-%d", i);
    cfg.session.id = ids[i]; /* distinct, or they would take each other over */
    cfg.session.id_len = strlen(ids[i]);
    cfg.cb.on_open = on_open;
    cfg.cb.on_death = on_death;
    if (vigil_client_new(&cli[i], &loop, &cfg) != 0 ||
        vigil_client_connect(cli[i], "127.0.0.1", port) != 0)
      return 1;
  }
  for (t0 = now_s(); healthy_opens < n && now_s() - t0 < 10;)
    run_for(&loop, 0.05);
  run_for(&loop, 1);
  rss0_kb = peak_kb = rss_kb(server);

  for (i = 0; i < CHUNKS; i++) {
    int h =
        vigil_wire_encode_data_header(stream + slen, sizeof stream - slen, 1, VIGIL_WIRE_MAX_CHUNK);
    if (h < 0)
      return 1;
    memset(stream + slen + h, 'g', VIGIL_WIRE_MAX_CHUNK);
    slen += (size_t)h + VIGIL_WIRE_MAX_CHUNK;
  }
  for (i = 0; i < g; i++) {
    if ((fds[i] = attacker(port, 1)) < 0) {
      fprintf(stderr, "bench-budget: attacker %d could not connect\n", i);
      return 1;
    }
    run_for(&loop, 0.001);
  }
  t0 = now_s();
  if (strcmp(mode, "half") == 0)
    while (done < g && now_s() - t0 < 60) {
      for (i = 0; i < g; i++) {
        ssize_t k;
        if (off[i] >= slen)
          continue;
        k = send(fds[i], stream + off[i], slen - off[i], MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
          off[i] += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
          off[i] = slen; /* closed by the server */
        if (off[i] >= slen)
          done++;
      }
      run_for(&loop, 0.002);
    }
  printf("attack phase: %.1f s\n", now_s() - t0);
  run_for(&loop, hold);

  printf("mode %s, %d attackers, %d healthy clients, --memory-budget %s\n", mode, g, n, budget);
  printf("server VmRSS: %ld KiB before the attack, peak %ld KiB, growth %ld KiB (%.1f MiB)\n",
         rss0_kb, peak_kb, peak_kb - rss0_kb, (double)(peak_kb - rss0_kb) / 1024.0);
  printf("closed for the memory budget: %ld (server log %s)\n", count_lines(log, "memory budget"),
         log);
  printf("healthy clients opened %d, died %d\n", healthy_opens, healthy_deaths);
  kill(server, SIGTERM);
  (void)waitpid(server, NULL, 0);
  for (i = 0; i < g; i++)
    close(fds[i]);
  return healthy_deaths == 0 ? 0 : 2;
usage:
  fprintf(stderr, "usage: bench-budget [--vigil PATH] [--budget SIZE] [-g G] [-n N] "
                  "[--mode half|noread] [--hold SECONDS]\n");
  return 64;
}
