/* Wire codec micro-benchmarks: ns per decode / encode of the frames a
 * connection handles most (PING, a 1 KiB DATA, the header of a 16 KiB DATA,
 * a HELLO with a 32-byte id). Each case is calibrated to run about 0.2 s on
 * CLOCK_MONOTONIC; results go to a volatile sink so the calls are not
 * optimised away. Build in Release to measure:
 *   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && \
 *   cmake --build build/rel --target bench-wire && build/rel/bench-wire
 * Output: one "<case>_ns_per_op <value>" line per case. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vigil.h"

#define TARGET_NS 200000000.0 /* ~0.2 s per case */

static uint8_t ping_frame[2];
static uint8_t data1k_frame[4 + 1024];
static size_t data1k_len;
static uint8_t data16k_header[8];
static size_t data16k_header_len;
static uint8_t hello_frame[VIGIL_WIRE_MAX_CONTROL_FRAME];
static size_t hello_len;
static uint8_t payload[1024];
static vigil_hello hello;
static uint8_t out[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK];
static volatile long sink;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef long (*bench_fn)(long iterations);

static long decode_ping(long n) {
  vigil_frame f;
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_decode(ping_frame, sizeof ping_frame, 0, &f);
  return acc;
}

static long decode_data_1k(long n) {
  vigil_frame f;
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_decode(data1k_frame, data1k_len, 0, &f) + f.payload[0];
  return acc;
}

static long decode_data_16k_header(long n) {
  uint8_t type;
  uint32_t length;
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_decode_header(data16k_header, data16k_header_len, 0, &type, &length) +
           (long)length;
  return acc;
}

static long decode_hello_32(long n) {
  vigil_frame f;
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_decode(hello_frame, hello_len, 0, &f) + f.u.hello.id_len;
  return acc;
}

static long encode_ping(long n) {
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_encode_ping(out, sizeof out);
  return acc;
}

/* Header plus the copy of the chunk, as a sender framing 1 KiB does. */
static long encode_data_1k(long n) {
  long acc = 0;
  while (n-- > 0) {
    int h = vigil_wire_encode_data_header(out, sizeof out, 0, sizeof payload);
    memcpy(out + h, payload, sizeof payload);
    acc += h + out[(size_t)h + (size_t)(n & 1023)];
  }
  return acc;
}

static long encode_data_16k_header(long n) {
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_encode_data_header(out, sizeof out, 1, VIGIL_WIRE_MAX_CHUNK);
  return acc;
}

static long encode_hello_32(long n) {
  long acc = 0;
  while (n-- > 0)
    acc += vigil_wire_encode_hello(out, sizeof out, &hello);
  return acc;
}

static void run(const char *name, bench_fn fn) {
  long n = 1000;
  double t0, elapsed;

  /* Grow the batch until it runs at least 1/20 of the target, then size the
   * measured run from that rate. */
  for (;;) {
    t0 = now_ns();
    sink = fn(n);
    elapsed = now_ns() - t0;
    if (elapsed >= TARGET_NS / 20 || n > (1L << 40))
      break;
    n *= 4;
  }
  n = (long)((double)n * TARGET_NS / (elapsed > 1 ? elapsed : 1)) + 1;
  t0 = now_ns();
  sink = fn(n);
  elapsed = now_ns() - t0;
  printf("%s_ns_per_op %.1f\n", name, elapsed / (double)n);
}

static int setup(void) {
  static const char id[] = "0123456789abcdef0123456789abcdef";
  int rc;

  memset(payload, 'p', sizeof payload);
  if (vigil_wire_encode_ping(ping_frame, sizeof ping_frame) != 2)
    return -1;
  rc = vigil_wire_encode_data_header(data1k_frame, sizeof data1k_frame, 0, sizeof payload);
  if (rc < 0)
    return -1;
  memcpy(data1k_frame + rc, payload, sizeof payload);
  data1k_len = (size_t)rc + sizeof payload;
  rc =
      vigil_wire_encode_data_header(data16k_header, sizeof data16k_header, 0, VIGIL_WIRE_MAX_CHUNK);
  if (rc < 0)
    return -1;
  data16k_header_len = (size_t)rc;
  hello.version = VIGIL_WIRE_VERSION;
  hello.interval_ms = 1000;
  hello.timeout_ms = 3000;
  hello.max_frame = VIGIL_WIRE_MAX_CHUNK;
  hello.max_message = 1u << 20;
  hello.id = id;
  hello.id_len = (uint8_t)(sizeof id - 1);
  rc = vigil_wire_encode_hello(hello_frame, sizeof hello_frame, &hello);
  if (rc < 0)
    return -1;
  hello_len = (size_t)rc;
  return 0;
}

int main(void) {
  if (setup() != 0) {
    fprintf(stderr, "bench-wire: setup failed\n");
    return 1;
  }
  run("decode_ping", decode_ping);
  run("decode_data_1k", decode_data_1k);
  run("decode_data_16k_header", decode_data_16k_header);
  run("decode_hello_32", decode_hello_32);
  run("encode_ping", encode_ping);
  run("encode_data_1k", encode_data_1k);
  run("encode_data_16k_header", encode_data_16k_header);
  run("encode_hello_32", encode_hello_32);
  return 0;
}
