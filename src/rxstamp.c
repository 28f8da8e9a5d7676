/* Receive timestamps: when did these bytes reach our host?
 *
 * A frame's "last heard" time decides when its peer is convicted, so it
 * must be the time the frame arrived, not the time a busy loop got round
 * to reading it: stamped late, a frame that arrived before the peer froze
 * makes the peer look alive for as long as the loop was behind, and the
 * verdict comes that much late (issue 11: at 19,000 peers frozen at once,
 * 167 verdicts counted from frames stamped 50 ms or more after the
 * freeze).
 *
 * Linux stamps every received packet in software (SO_TIMESTAMPNS; the
 * stamp of the last packet a recvmsg() copied comes in its control data),
 * but on CLOCK_REALTIME, and the loop runs on CLOCK_MONOTONIC. The
 * platform (src/unix/tcp.c) samples realtime - monotonic once per
 * iteration in which it reads, and this file turns the samples and the
 * stamps into loop time. It reads no clock itself (the one it may need is
 * passed in), so the unit tests (tests/test-loop.c) drive it with made-up
 * readings.
 *
 * Offset. Three readings, monotonic before, realtime, monotonic after: the
 * realtime reading was taken somewhere in [before, after], so the true
 * offset lies in [realtime - after, realtime - before]. We take realtime -
 * after, the smallest: a stamp converted with it is dated late by at most
 * the window, never early (the midpoint was off by half the window either
 * way, and early is the side a verdict must never err on). Of several
 * samples the narrowest window wins (one that a preemption or an interrupt
 * stretched is the least precise); the platform takes a second and a third
 * only when the first window is wider than 50 us, since every sample is
 * three clock reads on each iteration that reads.
 *
 * Steps. Realtime can jump (settimeofday, an NTP step); a packet stamped
 * before a jump and converted with an offset sampled after it would be
 * dated wrong by the jump, and dated early it could bring a verdict early.
 * So a new offset is compared with the previous one: a change beyond 1 ms
 * plus 1000 ppm of the time between them (NTP slews at most 500 ppm) is a
 * step, and in that iteration stamps are not trusted (the loop's clock is
 * used, as where the OS has no stamps: Windows, POSIX without
 * SO_TIMESTAMPNS).
 *
 * Bounds: never before the send, never in the future. The loop's now is
 * when its wait returned; a busy iteration then reads for milliseconds, and
 * bytes it reads may have arrived after that now, even been sent after it.
 * Capping a stamp at the loop's now dated such a frame before its peer
 * sent it, and the verdict that much early (issue 11: at 19,000 peers
 * frozen at once, 3 closes up to 7.2 ms early, each of them a last frame
 * the kernel stamped a few microseconds after the peer's send but the loop
 * dated at a now 3.5-10 ms older). So the cap is a clock reading taken after
 * the read returned, which no byte of that read can postdate; it is taken
 * only when needed (a stamp after the loop's now, or no stamp at all: the
 * packet came before stamping was on, or the OS has none), and that
 * reading is also the date of bytes with no stamp. */
#include "loop-internal.h"

#define STEP_SLACK_NS 1000000 /* 1 ms */
#define STEP_PPM 1000

int64_t vigil__clock_offset(const uint64_t (*s)[3], unsigned n) {
  unsigned i, best = 0;
  uint64_t width = UINT64_MAX, at;
  for (i = 0; i < n; i++) {
    uint64_t w = s[i][2] >= s[i][0] ? s[i][2] - s[i][0] : UINT64_MAX;
    if (w < width) {
      width = w;
      best = i;
    }
  }
  at = width == UINT64_MAX ? s[best][0] : s[best][2]; /* no window: the one reading we have */
  return (int64_t)(s[best][1] - at); /* two's complement: negative if realtime < monotonic */
}

int vigil__clock_offset_steady(int64_t prev, uint64_t prev_at, int64_t offset, uint64_t now) {
  uint64_t diff, allowed;
  if (prev_at == 0)
    return 1;
  diff = offset >= prev ? (uint64_t)offset - (uint64_t)prev : (uint64_t)prev - (uint64_t)offset;
  allowed = STEP_SLACK_NS + (now > prev_at ? (now - prev_at) / STEP_PPM : 0);
  return diff <= allowed;
}

uint64_t vigil__rx_mono(uint64_t real_ns, int64_t offset) {
  uint64_t mono;
  if (real_ns == 0)
    return 0;
  mono = real_ns - (uint64_t)offset;
  /* Before monotonic zero (wrapped): not a time we can use. */
  if (offset >= 0 ? real_ns < (uint64_t)offset : mono < real_ns)
    return 0;
  return mono;
}

uint64_t vigil__rx_date(uint64_t rx_ns, uint64_t now_ns, vigil_clock_fn clock, void *clock_arg) {
  uint64_t later;
  if (rx_ns != 0 && rx_ns <= now_ns)
    return rx_ns; /* the common case: arrived before the wait returned */
  later = clock(clock_arg, VIGIL_CLOCK_MONOTONIC);
  if (later < now_ns)
    later = now_ns; /* an injected clock that went back: keep loop time */
  return rx_ns != 0 && rx_ns < later ? rx_ns : later;
}
