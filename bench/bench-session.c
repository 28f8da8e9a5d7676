/* Cost of the liveness engine's hot paths, in ns per operation:
 *   recv of a PING plus the write() of its PONG
 *   recv of a 1 KiB DATA message (header + payload, one event)
 *   expire() with nothing due
 *   expire() that queues a ping
 * and sizeof(vigil_session). Virtual time: the session never reads a clock,
 * so the bench advances `now` itself; only the measurement reads one.
 * Build Release to get meaningful numbers:
 *   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/rel
 *   --target bench-session && build/rel/bench-session */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil.h"

#define MS VIGIL_MS

static double wall_ns(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint64_t sink;

static void die(const char *what) {
  fprintf(stderr, "bench-session: %s\n", what);
  exit(1);
}

/* A server session opened by a HELLO at t = 1 s (interval 1000 ms). Huge
 * timeouts would let us run long without a verdict, but the server clamps
 * them; instead each bench keeps the peer alive with the frames it feeds. */
static void open_server(vigil_session *s, uint64_t now) {
  vigil_session_config cfg;
  vigil_hello h;
  vigil_event ev;
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t taken;
  int n;
  vigil_session_config_init(&cfg);
  cfg.min_ping_ms = 0; /* default interval / 2; the ping bench spaces them */
  if (vigil_session_init(s, VIGIL_ROLE_SERVER, &cfg, now) != 0)
    die("init");
  h.version = 1;
  h.interval_ms = 1000;
  h.timeout_ms = 3000;
  h.max_frame = 16384;
  h.max_message = 1u << 20;
  h.id = "bench";
  h.id_len = 5;
  n = vigil_wire_encode_hello(buf, sizeof buf, &h);
  if (n <= 0 || vigil_session_recv(s, now, buf, (size_t)n, &ev) != n || ev.type != VIGIL_EVENT_OPEN)
    die("handshake");
  if (vigil_session_write(s, now, buf, sizeof buf, NULL, 0, &taken) <= 0)
    die("welcome");
}

static void report(const char *name, double ns, long iters) {
  printf("%-40s %8.1f ns/op  (%ld ops)\n", name, ns / (double)iters, iters);
}

static void bench_ping(long iters) {
  vigil_session s;
  vigil_event ev;
  static const uint8_t ping[2] = {VIGIL_FRAME_PING, 0};
  uint8_t out[64];
  size_t taken;
  uint64_t now = 1000 * MS;
  double t0;
  long i;
  open_server(&s, now);
  t0 = wall_ns();
  for (i = 0; i < iters; i++) {
    now += 600 * MS; /* legal spacing: no strikes */
    if (vigil_session_recv(&s, now, ping, 2, &ev) != 2)
      die("ping recv");
    sink += (uint64_t)vigil_session_write(&s, now, out, sizeof out, NULL, 0, &taken);
  }
  report("recv PING + write PONG", wall_ns() - t0, iters);
}

static void bench_data(long iters) {
  vigil_session s;
  vigil_event ev;
  uint8_t frame[1024 + 8];
  uint64_t now = 1000 * MS;
  int h;
  long i;
  double t0;
  open_server(&s, now);
  h = vigil_wire_encode_data_header(frame, sizeof frame, 0, 1024);
  memset(frame + h, 'd', 1024);
  t0 = wall_ns();
  for (i = 0; i < iters; i++) {
    now += 1000; /* 1 us apart */
    long r = vigil_session_recv(&s, now, frame, (size_t)h + 1024, &ev);
    if (r != h + 1024 || ev.type != VIGIL_EVENT_DATA || !ev.end_of_message)
      die("data recv");
    sink += ev.len;
  }
  report("recv 1 KiB DATA message", wall_ns() - t0, iters);
}

static void bench_expire_idle(long iters) {
  vigil_session s;
  vigil_event ev;
  uint64_t now = 1000 * MS;
  long i;
  double t0;
  open_server(&s, now);
  t0 = wall_ns();
  for (i = 0; i < iters; i++) {
    /* Early wake-ups within the first 500 ms: nothing is due. */
    if (vigil_session_expire(&s, now + (uint64_t)(i & 0xFFFF) * 1000, &ev) != 0 ||
        ev.type != VIGIL_EVENT_NONE)
      die("expire idle");
  }
  report("expire() with nothing due", wall_ns() - t0, iters);
  if (vigil_session_want_write(&s))
    die("expire idle queued something");
}

/* Many sessions, so the timed loop holds nothing but expire() calls that
 * each queue a ping; the write + PONG that re-arm them run untimed. */
#define FLEET 1024

static void bench_expire_ping(long iters) {
  static vigil_session fleet[FLEET];
  static uint64_t due[FLEET];
  static const uint8_t pong[2] = {VIGIL_FRAME_PONG, 0};
  vigil_event ev;
  uint8_t out[64];
  size_t taken;
  long round, rounds = iters / FLEET + 1;
  double timed = 0;
  int i;
  for (i = 0; i < FLEET; i++)
    open_server(&fleet[i], 1000 * MS);
  for (round = 0; round < rounds; round++) {
    for (i = 0; i < FLEET; i++)
      due[i] = vigil_session_deadline(&fleet[i]);
    double t0 = wall_ns();
    for (i = 0; i < FLEET; i++)
      sink += (uint64_t)vigil_session_expire(&fleet[i], due[i], &ev);
    timed += wall_ns() - t0;
    for (i = 0; i < FLEET; i++) {
      if (!vigil_session_want_write(&fleet[i]) ||
          vigil_session_write(&fleet[i], due[i], out, sizeof out, NULL, 0, &taken) != 2 ||
          vigil_session_recv(&fleet[i], due[i] + MS, pong, 2, &ev) != 2 ||
          ev.type != VIGIL_EVENT_PONG)
        die("ping cycle");
    }
  }
  report("expire() that queues a ping", timed, rounds * FLEET);
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 5000000;
  if (iters <= 0)
    iters = 5000000;
  printf("sizeof(vigil_session) = %zu bytes (budget 128)\n", sizeof(vigil_session));
  bench_ping(iters);
  bench_data(iters);
  bench_expire_idle(iters);
  bench_expire_ping(iters);
  return sink == 42 ? 1 : 0;
}
