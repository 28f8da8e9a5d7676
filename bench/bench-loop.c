/* Loop overhead per iteration as idle connections pile up: one pair of
 * handles plays ping-pong (1 byte each way, a write and a read per side per
 * round trip) while N other loopback connections sit idle, registered for
 * reading. With epoll a round trip should cost the same at N = 0 and
 * N = 8000; with poll it grows with N (the kernel scans every descriptor),
 * which is why poll is only the fallback.
 *
 * usage: bench-loop [idle-connections] [round-trips]
 * (defaults 8000 and 20000; both ends of every connection live in this
 * process, so idle-connections * 2 must fit in RLIMIT_NOFILE). The poll
 * runs do rounds * 100 / (100 + idle) round trips, to stay short. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "vigil.h"

typedef struct side {
  vigil_tcp tcp;
  vigil_write_req w;
  char byte;
} side;

static char scratch[65536];
static side *sides; /* 2 * (idle + 1): client, server, client, ... */
static size_t nsides, accepted, connected;
static long rounds_left;
static vigil_tcp listener;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_alloc(vigil_tcp *t, size_t suggested, vigil_buf *buf) {
  (void)t;
  (void)suggested;
  *buf = vigil_buf_init(scratch, sizeof scratch);
}

static void on_written(vigil_write_req *req, int status) {
  (void)req;
  if (status != 0) {
    fprintf(stderr, "write: %s\n", vigil_strerror(status));
    exit(1);
  }
}

static void send_byte(side *s) {
  vigil_buf b = vigil_buf_init(&s->byte, 1);
  if (vigil_tcp_write(&s->w, &s->tcp, &b, 1, on_written) != 0)
    exit(1);
}

/* The active pair: each byte received is answered; the client counts. */
static void on_active_read(vigil_tcp *t, long n, const vigil_buf *buf) {
  side *s = vigil_container_of(t, side, tcp);
  (void)buf;
  if (n < 0) {
    fprintf(stderr, "read: %s\n", vigil_strerror((int)n));
    exit(1);
  }
  if (n == 0)
    return;
  if (s == &sides[0] && --rounds_left <= 0) {
    vigil_loop_stop(t->loop);
    return;
  }
  send_byte(s);
}

static void on_idle_read(vigil_tcp *t, long n, const vigil_buf *buf) {
  (void)t;
  (void)buf;
  if (n != 0) {
    fprintf(stderr, "idle connection saw %ld\n", n);
    exit(1);
  }
}

static void on_connection(vigil_tcp *server, int status) {
  side *s;
  if (status != 0 || accepted * 2 + 1 >= nsides) {
    fprintf(stderr, "accept: %s\n", vigil_strerror(status));
    exit(1);
  }
  s = &sides[accepted * 2 + 1];
  if (vigil_tcp_init(server->loop, &s->tcp) != 0 || vigil_tcp_accept(server, &s->tcp) != 0)
    exit(1);
  accepted++;
}

static void on_connect(vigil_connect_req *req, int status) {
  (void)req;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", vigil_strerror(status));
    exit(1);
  }
  connected++;
}

static vigil_connect_req *reqs;

static int run_one(vigil_backend backend, size_t idle, long rounds) {
  vigil_loop loop;
  vigil_loop_options opts;
  struct sockaddr_storage addr;
  int len = (int)sizeof addr;
  size_t i, batch;
  uint64_t t0, t1;

  nsides = 2 * (idle + 1);
  sides = calloc(nsides, sizeof *sides);
  reqs = calloc(idle + 1, sizeof *reqs);
  if (sides == NULL || reqs == NULL)
    return 1;
  accepted = connected = 0;
  vigil_loop_options_init(&opts);
  opts.backend = backend;
  if (vigil_loop_init(&loop, &opts) != 0 || vigil_ip_parse("127.0.0.1:0", &addr) != 0)
    return 1;
  if (vigil_tcp_init(&loop, &listener) != 0 ||
      vigil_tcp_bind_listen(&listener, (struct sockaddr *)&addr, 4096, 0, on_connection) != 0 ||
      vigil_tcp_sockname(&listener, (struct sockaddr *)&addr, &len) != 0)
    return 1;
  /* Connect in batches the backlog can hold. */
  for (i = 0; i <= idle; i += batch) {
    size_t j;
    batch = idle + 1 - i < 512 ? idle + 1 - i : 512;
    for (j = i; j < i + batch; j++) {
      if (vigil_tcp_init(&loop, &sides[j * 2].tcp) != 0 ||
          vigil_tcp_connect(&reqs[j], &sides[j * 2].tcp, (struct sockaddr *)&addr, on_connect) != 0)
        return 1;
    }
    while (connected < i + batch || accepted < i + batch)
      (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
  }
  for (i = 1; i < nsides; i++)
    if (vigil_tcp_read_start(&sides[i].tcp, on_alloc, i < 2 ? on_active_read : on_idle_read) != 0)
      return 1;
  /* sides[0] is the client of the first connection, sides[1] its server. */
  if (vigil_tcp_read_start(&sides[0].tcp, on_alloc, on_active_read) != 0)
    return 1;

  rounds_left = rounds;
  t0 = now_ns();
  send_byte(&sides[0]);
  (void)vigil_loop_run(&loop, VIGIL_RUN_DEFAULT);
  t1 = now_ns();
  printf("%-6s idle=%-6zu round_trips=%ld  %.0f ns/round_trip\n", vigil_loop_backend_name(&loop),
         idle, rounds, (double)(t1 - t0) / (double)rounds);

  for (i = 0; i < nsides; i++)
    vigil_tcp_close(&sides[i].tcp, NULL);
  vigil_tcp_close(&listener, NULL);
  while (vigil_loop_run(&loop, VIGIL_RUN_NOWAIT) != 0) {
  }
  if (vigil_loop_close(&loop) != 0)
    return 1;
  free(sides);
  free(reqs);
  return 0;
}

int main(int argc, char **argv) {
  size_t idle = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 8000;
  long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
  static const size_t steps[] = {0, 1000, 0};
  size_t k;

  printf("sizeof(vigil_tcp)=%zu sizeof(vigil_write_req)=%zu sizeof(vigil_loop)=%zu\n",
         sizeof(vigil_tcp), sizeof(vigil_write_req), sizeof(vigil_loop));
  for (k = 0; k < sizeof steps / sizeof steps[0]; k++) {
    size_t n = steps[k] != 0 || k == 0 ? steps[k] : idle;
    /* poll costs O(n) per wait: fewer round trips keep its runs short. */
    long poll_rounds = (long)((double)rounds * 100.0 / (100.0 + (double)n));
    if (run_one(VIGIL_BACKEND_EPOLL, n, rounds) != 0 ||
        run_one(VIGIL_BACKEND_POLL, n, poll_rounds > 0 ? poll_rounds : 1) != 0) {
      fprintf(stderr, "bench failed at idle=%zu\n", n);
      return 1;
    }
  }
  return 0;
}
