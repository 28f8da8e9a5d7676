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
 * stamps into loop time. It reads no clock itself, so the unit test
 * (tests/test-loop.c) drives it with made-up readings.
 *
 * Offset. Three readings, monotonic before, realtime, monotonic after: the
 * realtime reading was taken somewhere in [before, after], so the offset is
 * realtime minus the window's midpoint, off by at most half the window. Of
 * several samples the narrowest window wins (one that a preemption or an
 * interrupt stretched is the least precise); the platform takes a second
 * and a third only when the first window is wider than 50 us, since every
 * sample is three clock reads on each iteration that reads.
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
 * Bounds. A converted stamp is never later than the loop's now (a stamp
 * cannot be from the future; conversion error must not make it so), and a
 * missing stamp (0: the packet came before stamping was on) is the loop's
 * now. */
#include "loop-internal.h"

#define STEP_SLACK_NS 1000000 /* 1 ms */
#define STEP_PPM 1000

int64_t vigil__clock_offset(const uint64_t (*s)[3], unsigned n) {
  unsigned i, best = 0;
  uint64_t width = UINT64_MAX, mid;
  for (i = 0; i < n; i++) {
    uint64_t w = s[i][2] >= s[i][0] ? s[i][2] - s[i][0] : UINT64_MAX;
    if (w < width) {
      width = w;
      best = i;
    }
  }
  mid = s[best][0] + (width == UINT64_MAX ? 0 : width / 2);
  return (int64_t)(s[best][1] - mid); /* two's complement: negative if realtime < monotonic */
}

int vigil__clock_offset_steady(int64_t prev, uint64_t prev_at, int64_t offset, uint64_t now) {
  uint64_t diff, allowed;
  if (prev_at == 0)
    return 1;
  diff = offset >= prev ? (uint64_t)offset - (uint64_t)prev : (uint64_t)prev - (uint64_t)offset;
  allowed = STEP_SLACK_NS + (now > prev_at ? (now - prev_at) / STEP_PPM : 0);
  return diff <= allowed;
}

uint64_t vigil__rx_mono(uint64_t real_ns, int64_t offset, uint64_t now_ns) {
  uint64_t mono;
  if (real_ns == 0)
    return now_ns;
  mono = real_ns - (uint64_t)offset;
  /* Before monotonic zero (wrapped) or after now: not a time we can use. */
  if (offset >= 0 ? real_ns < (uint64_t)offset : mono < real_ns)
    return now_ns;
  return mono < now_ns ? mono : now_ns;
}
