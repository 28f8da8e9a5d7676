/* Fuzzes the liveness engine: a server and a client session, either fed
 * random bytes directly or wired back to back with random bytes injected,
 * driven by random operations and random time steps, all derived from the
 * input. Invariants checked after every call (abort() on violation):
 *
 *  - after expire(now), deadline() is later than now (or there is none);
 *  - a heartbeat verdict never comes before `timeout` (adaptive mode:
 *    min(2 x interval, timeout)) since the last valid frame, judged both by
 *    the session's own last_recv and by the last frame this harness saw
 *    complete (an OPEN, a PONG or the end of a message); a handshake verdict
 *    never before handshake_timeout;
 *  - every byte write() produces decodes with vigil_wire_decode, exactly;
 *  - exactly one DEAD event, and nothing at all after it (recv/expire return
 *    VIGIL_ECLOSED with no event);
 *  - recv() consumes at most what it was given, and a tail it leaves
 *    unconsumed is never longer than VIGIL_SESSION_MAX_RETAIN;
 *  - RTT smoothing is a weighted mean: after each PONG, srtt lies between
 *    the previous srtt and the sample, and rttvar between its old value and
 *    |old srtt - sample| (a wrap in the arithmetic breaks that); the sample
 *    is the rtt capped at 2^60 ns, as src/session.c documents.
 *
 * Time: the origin is near 0 or (mode bit 1) near UINT64_MAX, and steps
 * range from 1 us to leaps of 2^46 ns (~20 h) that saturate at UINT64_MAX,
 * so deadline and RTT arithmetic is exercised at the end of time too.
 *
 * A client whose config byte b has bit 3 set sends a credential (a
 * version 2 HELLO), so the v2 handshake runs back to back too.
 *
 * Input layout: 8 bytes of configuration, then operations (see run()).
 * fuzz/seeds/session/ holds session-shaped seeds (handshakes, ping rounds,
 * silence, floods, dribbles, chunked messages, closes, leaps), written by
 * fuzz/make-session-seeds.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

#define MS VIGIL_MS

typedef struct side {
  vigil_session s;
  vigil_phi phi;
  uint8_t rx[2 * 16384 + 64];
  size_t rx_len;
  int dead;         /* DEAD event seen */
  uint64_t init_ns; /* handshake verdicts count from here */
  uint64_t seen_ns; /* last frame this harness knows completed */
  uint64_t handshake_ns;
  int opened; /* OPEN event seen */
  int adaptive;
  int has_rtt; /* a PONG event was seen; srtt/rttvar hold its result */
  uint64_t srtt, rttvar;
} side;

typedef struct input {
  const uint8_t *p;
  size_t left;
} input;

static uint8_t take(input *in) {
  uint8_t b;
  if (in->left == 0)
    return 0;
  b = *in->p++;
  in->left--;
  return b;
}

static void check(int ok) {
  if (!ok)
    abort();
}

/* Every byte of write() output must parse as whole frames. */
static void check_output(const uint8_t *buf, size_t n) {
  vigil_frame f;
  while (n > 0) {
    int r = vigil_wire_decode(buf, n, VIGIL_WIRE_MAX_CHUNK, &f);
    check(r > 0);
    buf += r;
    n -= (size_t)r;
  }
}

static void check_verdict(const side *x, const vigil_event *ev, uint64_t now, uint64_t last) {
  vigil_session_info i;
  uint64_t span;
  vigil_session_get_info(&x->s, &i);
  if (ev->cause == VIGIL_CAUSE_LOCAL)
    return;         /* our own close, reported once its CLOSE was written */
  if (!x->opened) { /* a handshake verdict */
    check(now >= x->init_ns && now - x->init_ns >= x->handshake_ns);
    return;
  }
  if (ev->cause != VIGIL_CAUSE_HEARTBEAT_TIMEOUT)
    return;
  span = (uint64_t)i.timeout_ms * MS;
  if (x->adaptive && 2 * (uint64_t)i.interval_ms * MS < span)
    span = 2 * (uint64_t)i.interval_ms * MS;
  check(now >= last && now - last >= span);
  check(now >= x->seen_ns && now - x->seen_ns >= span);
}

static uint64_t absdiff(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

/* v within [min(a, b), max(a, b)]. */
static int between(uint64_t v, uint64_t a, uint64_t b) {
  return a <= b ? (v >= a && v <= b) : (v >= b && v <= a);
}

/* The session smooths min(rtt, 2^60 ns) (see its essay). */
#define RTT_CAP ((uint64_t)1 << 60)

static void check_rtt(side *x, const vigil_event *ev) {
  vigil_session_info i;
  uint64_t r = ev->rtt_ns < RTT_CAP ? ev->rtt_ns : RTT_CAP;
  vigil_session_get_info(&x->s, &i);
  if (!x->has_rtt) {
    check(i.srtt_ns == r && i.rttvar_ns == r / 2);
  } else {
    check(between(i.srtt_ns, x->srtt, r));
    check(between(i.rttvar_ns, x->rttvar, absdiff(x->srtt, r)));
  }
  x->has_rtt = 1;
  x->srtt = i.srtt_ns;
  x->rttvar = i.rttvar_ns;
}

static void on_event(side *x, const vigil_event *ev, uint64_t now) {
  if (ev->type == VIGIL_EVENT_NONE)
    return;
  if (ev->type == VIGIL_EVENT_PONG)
    check_rtt(x, ev);
  check(!x->dead);
  if (ev->type == VIGIL_EVENT_DEAD) {
    x->dead = 1;
    return;
  }
  if (ev->type == VIGIL_EVENT_OPEN)
    x->opened = 1;
  if (ev->type == VIGIL_EVENT_OPEN || ev->type == VIGIL_EVENT_PONG ||
      (ev->type == VIGIL_EVENT_DATA && ev->end_of_message))
    x->seen_ns = now;
}

static void feed(side *x, uint64_t now, const uint8_t *b, size_t n) {
  vigil_event ev;
  if (n > sizeof x->rx - x->rx_len)
    n = sizeof x->rx - x->rx_len;
  memcpy(x->rx + x->rx_len, b, n);
  x->rx_len += n;
  for (;;) {
    long r = vigil_session_recv(&x->s, now, x->rx, x->rx_len, &ev);
    if (x->dead) {
      check(r == VIGIL_ECLOSED && ev.type == VIGIL_EVENT_NONE);
      x->rx_len = 0;
      return;
    }
    on_event(x, &ev, now);
    if (r < 0) {
      check(ev.type == VIGIL_EVENT_DEAD);
      x->rx_len = 0;
      return;
    }
    check((size_t)r <= x->rx_len);
    memmove(x->rx, x->rx + r, x->rx_len - (size_t)r);
    x->rx_len -= (size_t)r;
    if (ev.type == VIGIL_EVENT_DEAD)
      return;
    if (r == 0 && ev.type == VIGIL_EVENT_NONE) {
      check(x->rx_len <= VIGIL_SESSION_MAX_RETAIN);
      return;
    }
  }
}

static void tick(side *x, uint64_t now) {
  vigil_event ev;
  vigil_session_info before;
  uint64_t dl;
  int r;
  vigil_session_get_info(&x->s, &before);
  r = vigil_session_expire(&x->s, now, &ev);
  if (x->dead) {
    check(r == VIGIL_ECLOSED && ev.type == VIGIL_EVENT_NONE);
    return;
  }
  check(r == 0);
  if (ev.type == VIGIL_EVENT_DEAD)
    check_verdict(x, &ev, now, before.last_recv_ns);
  check(ev.type == VIGIL_EVENT_NONE || ev.type == VIGIL_EVENT_DEAD);
  on_event(x, &ev, now);
  dl = vigil_session_deadline(&x->s);
  check(dl == VIGIL_NO_DEADLINE || dl > now);
}

/* Writes everything x has to say (and at most one chunk of msg), checks it
 * decodes, and hands it to the peer if there is one. */
static void pump(side *x, side *peer, uint64_t now, const uint8_t *msg, size_t msg_len) {
  static uint8_t out[16384 + 4096];
  size_t taken, cap = sizeof out;
  int rounds = 0;
  while (rounds++ < 16) {
    long n = vigil_session_write(&x->s, now, out, cap, msg, msg_len, &taken);
    if (n <= 0)
      break;
    check(taken <= msg_len);
    check_output(out, (size_t)n);
    if (peer != NULL)
      feed(peer, now, out, (size_t)n);
    msg = NULL;
    msg_len = 0;
  }
}

static int setup(side *x, vigil_role role, input *in, uint64_t now) {
  vigil_session_config cfg;
  uint8_t a = take(in), b = take(in), c = take(in);
  int rc;
  vigil_session_config_init(&cfg);
  cfg.interval_ms = 1 + (uint32_t)a * 7;
  cfg.timeout_ms = (b & 1) ? 0 : cfg.interval_ms * (2 + (b >> 5));
  cfg.max_frame = 64 + ((uint32_t)c << 6);
  cfg.max_message = (b & 2) ? 1 + (uint32_t)c * 300 : 0;
  cfg.handshake_timeout_ms = 1 + (uint32_t)b * 20;
  cfg.min_interval_ms = 1 + (c & 15);
  cfg.min_ping_ms = (b & 4) ? (uint32_t)a : 0;
  cfg.seed = (uint32_t)a << 8 | b;
  cfg.id = "fuzz-peer";
  cfg.id_len = 9;
  x->adaptive = (c & 0x80) != 0;
  if (x->adaptive) {
    vigil_phi_init(&x->phi, 3.0 + (b & 7), cfg.interval_ms, 0);
    cfg.phi = &x->phi;
  }
  x->init_ns = now;
  x->handshake_ns = (uint64_t)cfg.handshake_timeout_ms * MS;
  if ((rc = vigil_session_init(&x->s, role, &cfg, now)) != 0)
    return rc;
  /* b bit 3: a client with a credential sends a version 2 HELLO. */
  if (role == VIGIL_ROLE_CLIENT && (b & 8))
    check(vigil_session_set_credential(&x->s, "fuzz-token", 10) == 0);
  return 0;
}

static void run(side *sv, side *cl, int paired, input *in, uint64_t now) {
  static uint8_t msg[256 * 157];
  uint64_t dl;
  uint8_t n;
  int steps = 0;
  while (in->left > 0 && steps++ < 4096) {
    uint8_t op = take(in);
    side *x = (op & 0x80) ? cl : sv;
    side *other = x == sv ? cl : sv;
    switch (op & 7) {
    case 0: /* raw bytes into x */
      n = take(in);
      if (n > in->left)
        n = (uint8_t)in->left;
      feed(x, now, in->p, n);
      in->p += n;
      in->left -= n;
      break;
    case 1: { /* time passes, saturating at the end of time */
      uint64_t unit = (op & 0x60) == 0x60 ? (uint64_t)1 << 46
                      : (op & 0x40)       ? 100 * MS
                      : (op & 0x20)       ? MS
                                          : 1000;
      uint64_t lo = take(in), step = unit * (lo | (uint64_t)take(in) << 8);
      now = step > UINT64_MAX - now ? UINT64_MAX : now + step;
      break;
    }
    case 2: /* wake at x's deadline, or 1 ns before it */
      dl = vigil_session_deadline(&x->s);
      if (dl != VIGIL_NO_DEADLINE && dl > now)
        now = dl - ((op & 0x40) ? 1 : 0);
      tick(x, now);
      break;
    case 3: /* x sends a message */
      n = take(in);
      pump(x, paired ? other : NULL, now, msg, (size_t)n * (op & 0x40 ? 157 : 1));
      break;
    case 4:
      vigil_session_stalled(&x->s, now);
      break;
    case 5: {                  /* x closes: code byte, then retry-after byte */
      uint8_t code = take(in); /* not inside the call: argument order is unspecified */
      (void)vigil_session_close(&x->s, code, (op & 0x40) ? "fuzz" : NULL, take(in));
      break;
    }
    case 6:
      tick(x, now);
      break;
    default:
      pump(x, paired ? other : NULL, now, NULL, 0);
      break;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static side sv, cl;
  input in;
  uint64_t now;
  uint8_t mode;
  in.p = data;
  in.left = size;
  mode = take(&in);
  now = (uint64_t)take(&in) * 977 * MS; /* any origin, including 0 ... */
  if (mode & 2)
    now = UINT64_MAX - now; /* ... and the end of time */
  memset(&sv, 0, sizeof sv);
  memset(&cl, 0, sizeof cl);
  if (setup(&sv, VIGIL_ROLE_SERVER, &in, now) != 0 || setup(&cl, VIGIL_ROLE_CLIENT, &in, now) != 0)
    return 0;
  if (mode & 1) {
    /* Back to back: the handshake goes through unless ops say otherwise. */
    pump(&cl, &sv, now, NULL, 0);
    pump(&sv, &cl, now, NULL, 0);
  }
  run(&sv, &cl, mode & 1, &in, now);
  return 0;
}
