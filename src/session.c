/* The liveness engine: one vigil_session per connection, sans-I/O.
 *
 * What it is
 * ----------
 * A state machine that turns (received bytes, now) into events and (now)
 * into bytes to send, and says when it next needs to be woken. It never
 * reads a clock, never touches a socket and never allocates: the caller
 * embeds the struct (at most 128 bytes, asserted below) and drives it, in
 * the manner of ngtcp2's read_pkt / write_pkt / get_expiry / handle_expiry.
 * Time is uint64 nanoseconds from any monotonic origin; VIGIL_NO_DEADLINE
 * (UINT64_MAX) means "nothing to do". Every subtraction of times saturates,
 * so a caller whose clock steps back gets a late verdict, never UB; every
 * addition saturates at UINT64_MAX, which stays "never" even for a clock that
 * reaches it. recv()'s `now` is when the bytes arrived, which may be before
 * the `now` of an earlier call (a runtime dating bytes by the kernel's
 * receive stamp, read after a busy spell); the time a peer was last heard
 * never moves backwards.
 *
 * States: HANDSHAKE -> OPEN -> DEAD, or any -> CLOSING -> DEAD.
 *
 * Handshake
 * ---------
 * The client queues HELLO at init with its proposal (timeout 0 when none is
 * configured: "3 x the agreed interval"). The server waits for
 * HELLO until handshake_timeout and clamps the proposal to its policy:
 *   interval    = clamp(proposed, min_interval, max_interval)
 *   timeout     = proposed (0: 3 x interval) clamped to
 *                 [max(min_timeout, 2 x interval), max_timeout]; the lower
 *                 bound wins if the policy's range is empty, so timeout
 *                 > interval always holds
 *   max_frame   = min(client's, ours);  max_message = min(client's, ours)
 *   min_ping    = policy (default interval / 2), never above 3/4 interval:
 *                 a compliant peer pings no sooner than 3/4 interval after
 *                 its last receipt, and a server must not convict it for
 *                 following the rules it was given.
 * It queues WELCOME with those values and reports OPEN (data = peer id,
 * credential = the credential of a version 2 HELLO, unjudged: verifying it
 * is the server's, which refuses with CLOSE AUTH_FAILED by calling
 * vigil_session_close before the WELCOME is written, and a queued CLOSE
 * drops the WELCOME). A HELLO whose version is above 2 is refused with
 * CLOSE VERSION; when the codec cannot parse a HELLO at all we still peek
 * at magic + version byte so a v3 client learns "wrong version" rather than
 * "protocol error". A client sends version 1, or version 2 when it was given
 * a credential (vigil_session_set_credential). (Only the
 * awaited frame, in the handshake: a HELLO or WELCOME out of place is a
 * protocol error whatever its version byte says.) The
 * client adopts WELCOME's values after checking them: version 1, interval
 * >= 1, timeout > interval, min_ping <= 3/4 interval, max_frame in
 * 64..what we proposed, max_message in 1..what we proposed. Anything else is
 * a protocol error: the server cannot hand us values we cannot keep. A CLOSE
 * in place of WELCOME is a DEAD with the server's code, reason and
 * retry-after (SERVER_FULL and friends map to cause policy). Missed
 * handshake deadline: server -> policy "handshake too slow" + CLOSE
 * HANDSHAKE_TIMEOUT; client -> heartbeat_timeout "no answer to HELLO" +
 * CLOSE TIMEOUT. A WELCOME that arrives before our HELLO was even written is
 * a protocol error too (the server answered a question not asked).
 *
 * Liveness
 * --------
 * Only complete, valid frames from the peer refresh last_recv; our sends
 * never do. DATA payload is streamed to the caller as it arrives (the event
 * borrows the caller's buffer), but only the end of a chunk counts, so a
 * peer dribbling bytes of a frame it never finishes dies at exactly
 * `timeout` after its last complete frame. max_message is enforced across
 * chunks as soon as a chunk header announces a size that would pass it.
 *
 * Every complete chunk is a valid frame, so a peer that sends most of a
 * message in DATA_MORE chunks and never the last one stays alive for ever,
 * and the receiver's reassembly buffer with it. Hence the message
 * deadline: the first DATA_MORE header of a message starts it, the final
 * DATA chunk's end clears it, and reaching it convicts (cause policy, CLOSE
 * POLICY naming the deadline). It is the configured message_timeout_ms, or
 * the agreed timeout plus max_message at VIGIL_MIN_MESSAGE_RATE, decided at
 * OPEN. A single-chunk message needs no deadline: nothing else can arrive
 * inside a chunk, so a chunk never finished is plain silence.
 *
 * Pings go out only on receive-idle: at last_recv + idle, where idle is the
 * interval shortened by a random 0-25% (BFD's jitter; xorshift32 seeded
 * from cfg.seed through a mixing step, drawn at OPEN and again each time an
 * idle period ends: in a ping, or by a valid frame received). At most one ping is outstanding; the
 * RTT is pong arrival minus the time write() emitted the ping, fed to RFC 6298 smoothing (first
 * sample srtt = r, rttvar = r/2; then rttvar = 3/4 rttvar + 1/4 |srtt - r| using the old srtt, srtt
 * = 7/8 srtt + 1/8 r; a sample is capped at 2^60 ns first, so the sums cannot wrap). A ping that is
 * queued but not yet written when a valid frame arrives is cancelled: the peer just proved itself,
 * so a busy connection sends no pings even when the caller is slow to write. A PONG nobody asked
 * for is valid: it refreshes liveness, gives no RTT sample and no event.
 *
 * A probe measures, so it cannot wait for idleness: with ping_on_schedule
 * the first ping is queued at OPEN and each next one falls due exactly one
 * agreed interval after the previous ping was written, whatever arrived in
 * between (a peer that pings us first would otherwise keep our pings from
 * ever going out, and a probe of N pings would wait for luck). Still one
 * outstanding at most: a pong later than the interval makes the next ping
 * go out on its arrival, so the peer never sees two pings closer than an
 * interval (its min_ping is at most 3/4 interval). The verdict rules are
 * the same in both modes.
 *
 * Each PING is answered by a PONG. We count the pongs owed, capped at
 * VIGIL_PING_STRIKES + 1: TCP is ordered, so one pong answers every ping
 * before it, and the cap keeps a peer from making us owe unbounded bytes.
 * A PING arriving sooner than min_ping after the previous one earns a
 * strike, a PING at legal spacing forgives one; more than
 * VIGIL_PING_STRIKES strikes -> CLOSE PING_FLOOD with retry_after = the
 * agreed timeout, DEAD cause policy, VIGIL_EPOLICY. Both roles enforce it.
 *
 * The verdict is never early: DEAD (heartbeat_timeout, silent_ns) exactly
 * when now - last_recv >= timeout, and deadline() returns last_recv +
 * timeout when that comes first, so expire() at the deadline convicts at
 * exactly `timeout`. On conviction we queue CLOSE TIMEOUT: a peer that was
 * merely slow learns why it was dropped. In adaptive mode (cfg.phi) every
 * valid frame is fed to vigil_phi_arrival, and the verdict time is
 * vigil_phi_deadline() clamped to [last_recv + 2 x interval, last_recv +
 * timeout]. expire() compares `now` with that same time instead of
 * re-evaluating phi, so deadline() and expire() can never disagree and leave
 * a caller spinning on a deadline that does not fire.
 *
 * Sending
 * -------
 * write() emits control frames first (HELLO/WELCOME, PONGs, PING) and then
 * at most one DATA chunk, so a 1 MiB message written in 16 KiB chunks lets a
 * PONG out between any two of them. A chunk carries min(rest of message,
 * agreed max_frame) bytes, shortened to fit the caller's buffer but never
 * below 64 bytes unless it ends the message (a trickle of tiny frames
 * would cost the peer more than waiting for a bigger buffer). A queued
 * CLOSE goes out alone and supersedes every other queued frame: after it,
 * nothing is sent. The message size is checked against the agreed
 * max_message before anything is written (VIGIL_EMSGSIZE): sending it would
 * only get us closed. A ping that does not fit the buffer stays queued, and
 * its RTT clock starts only when it is actually written.
 *
 * Endings
 * -------
 * A received CLOSE ends the session with the peer's code, retry-after and
 * (borrowed) reason. Cause: NORMAL, GOING_AWAY -> closed; PROTOCOL_ERROR,
 * VERSION -> protocol_error; TIMEOUT -> closed ("the peer gave up on us");
 * any other code, known or not -> policy. Our own protocol errors return the
 * specific code, report DEAD protocol_error with a detail naming the rule,
 * and queue CLOSE PROTOCOL_ERROR whose reason is that detail. A local
 * vigil_session_close() makes the session CLOSING: received bytes are
 * ignored, and once write() has emitted the CLOSE the next expire() or
 * recv(), whichever comes first, reports DEAD cause local (deadline() is 0
 * to make the caller's timer fire at once). After a DEAD event every call
 * returns VIGIL_ECLOSED, except that write() still emits a CLOSE queued by
 * the verdict.
 *
 * Local stalls
 * ------------
 * vigil_session_stalled(now) says our own loop did not run for a while. The
 * silence it saw was ours, not the peer's, so a verdict that fell due is
 * withdrawn: last_recv = max(last_recv, now + interval - timeout), which
 * puts the fixed verdict at no sooner than now + interval (adaptive mode:
 * last_recv = max(last_recv, now - interval), which puts its 2 x interval
 * floor there). The outstanding ping is forgotten and a fresh one queued,
 * so the peer is asked again and has one interval to answer. silent_ns in a
 * later verdict counts from that adjusted origin. A message deadline is
 * likewise moved to at least now + interval: we were not reading.
 *
 * The runtime's loop calls vigil__session_stalled_lazy instead (the public
 * call keeps its promise of a fresh ping: `vigil idle-timeout` relies on
 * it). A stall that cost the peer nothing sends nothing there: when the
 * verdict and the message deadline are both at least one interval away, the peer
 * already has what a re-probe would give it, and a ping would only be
 * extra traffic. A ping in flight stays the one in flight, but its RTT
 * would include our stall, so its pong gives no sample (ping_sent_ns =
 * NO_RTT_SAMPLE; a probe, ping_on_schedule, re-probes as before, its next
 * ping being due from that time). That is the common case on a loaded
 * server, whose loop stalls half a second now and then while its peers
 * were heard well within the timeout: re-probing every connection on each
 * such stall made vigil serve at 346,000 connections on 2 cores send ~10
 * pings per connection a minute (sending them caused the next stall), and
 * re-probing those with a ping in flight still sent 15 million pings to
 * 980,000 connections in 7 minutes when the clients, starved of CPU, were
 * slow to answer. A vigil client counts pings closer than min_ping as
 * strikes towards CLOSE PING_FLOOD.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "session-internal.h"
#include "vigil/detector.h"
#include "vigil/errno.h"
#include "vigil/session.h"
#include "vigil/wire.h"

_Static_assert(sizeof(vigil_session) <= 128, "vigil_session must fit the 128-byte budget");

enum {
  F_HELLO = 1u << 0,      /* HELLO queued (client) */
  F_WELCOME = 1u << 1,    /* WELCOME queued (server) */
  F_CLOSE = 1u << 2,      /* CLOSE queued */
  F_PING = 1u << 3,       /* PING queued */
  F_PING_OUT = 1u << 4,   /* PING written, no PONG yet */
  F_LOCAL_DONE = 1u << 5, /* CLOSING: our CLOSE was written */
  F_RTT = 1u << 6,        /* srtt/rttvar hold at least one sample */
  F_TIMEOUT_0 = 1u << 7   /* client: no timeout configured, HELLO proposes 0 */
};

#define NO_PEER_PING UINT64_MAX
#define NO_RTT_SAMPLE UINT64_MAX /* ping_sent_ns of a ping our stall spoiled */
#define PONGS_OWED_MAX (VIGIL_PING_STRIKES + 1)

static uint64_t ms_ns(uint32_t ms) {
  return (uint64_t)ms * VIGIL_MS;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sub_sat(uint64_t a, uint64_t b) {
  return a > b ? a - b : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b) {
  return a > b ? a : b;
}

static uint32_t u32_sat(uint64_t v) {
  return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* A deadline that saturated is VIGIL_NO_DEADLINE, "never", also for a clock
 * that reads UINT64_MAX: firing it there would convict a peer early. */
static int reached(uint64_t now, uint64_t at) {
  return at != VIGIL_NO_DEADLINE && now >= at;
}

/* ---- jitter ---------------------------------------------------------- */

static uint32_t rng_seed(uint32_t seed) {
  /* Mix so that neighbouring seeds (connection numbers) diverge at once. */
  uint32_t x = seed + 0x9E3779B9u;
  x = (x ^ (x >> 16)) * 0x85EBCA6Bu;
  x = (x ^ (x >> 13)) * 0xC2B2AE35u;
  x ^= x >> 16;
  return x != 0 ? x : 0x6D2B79F5u; /* xorshift's one fixed point */
}

static uint32_t rng_next(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

static void draw_idle(vigil_session *s) {
  uint32_t span = s->interval_ms / 4;
  uint32_t cut = (uint32_t)(((uint64_t)rng_next(&s->rng) * ((uint64_t)span + 1)) >> 32);
  s->idle_ms = s->interval_ms - cut;
}

/* ---- configuration --------------------------------------------------- */

/* The defaults, in one place: config_init writes them (so a program, or
 * the CLI, can read them there), and init applies them to fields left 0. */
enum {
  DEF_INTERVAL_MS = 1000,
  DEF_HANDSHAKE_MS = 5000,
  DEF_MIN_INTERVAL_MS = 100,
  DEF_MAX_INTERVAL_MS = 600000,
  DEF_MAX_TIMEOUT_MS = 3600000,
  DEF_MAX_MESSAGE = 1 << 20
};

static void config_defaults(vigil_session_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
  cfg->interval_ms = DEF_INTERVAL_MS;
  cfg->max_frame = VIGIL_WIRE_MAX_CHUNK;
  cfg->max_message = DEF_MAX_MESSAGE;
  cfg->handshake_timeout_ms = DEF_HANDSHAKE_MS;
  cfg->min_interval_ms = DEF_MIN_INTERVAL_MS;
  cfg->max_interval_ms = DEF_MAX_INTERVAL_MS;
  cfg->max_timeout_ms = DEF_MAX_TIMEOUT_MS;
}

void vigil_session_config_init_sized(vigil_session_config *cfg, size_t size) {
  vigil_session_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

/* The caller's config in this library's layout (src/abi.h): a field an
 * older caller lacks reads as its default. */
static int config_read(vigil_session_config *out, const vigil_session_config *cfg) {
  config_defaults(out);
  return vigil__opts_read(out, sizeof *out, cfg);
}

static uint32_t or_default(uint32_t v, uint32_t def) {
  return v != 0 ? v : def;
}

/* The one place for the rules a config must follow (the CLI asks here too
 * instead of restating them). Writes the first broken rule into why. */
static int bad(char *why, size_t n, const char *fmt, unsigned long a, unsigned long b) {
  if (why != NULL && n > 0)
    snprintf(why, n, fmt, a, b);
  return VIGIL_EINVAL;
}

static int check_client(const vigil_session_config *cfg, char *why, size_t n) {
  uint32_t interval = or_default(cfg->interval_ms, DEF_INTERVAL_MS);
  if (cfg->id == NULL || cfg->id_len == 0 || cfg->id_len > VIGIL_WIRE_MAX_ID ||
      !vigil_utf8_valid((const uint8_t *)cfg->id, cfg->id_len))
    return bad(why, n, "id must be %lu to %lu bytes of UTF-8", 1, VIGIL_WIRE_MAX_ID);
  /* A server never agrees to less than 2 x interval (ARCHITECTURE.md): a
   * shorter proposal would be silently raised, so say so now. */
  if (cfg->timeout_ms != 0 && cfg->timeout_ms / 2 < interval)
    return bad(why, n, "timeout %lums must be at least 2 x interval %lums", cfg->timeout_ms,
               interval);
  return 0;
}

static int check_server(const vigil_session_config *cfg, char *why, size_t n) {
  uint32_t min_i = or_default(cfg->min_interval_ms, DEF_MIN_INTERVAL_MS);
  uint32_t max_i = or_default(cfg->max_interval_ms, DEF_MAX_INTERVAL_MS);
  uint32_t max_t = or_default(cfg->max_timeout_ms, DEF_MAX_TIMEOUT_MS);
  /* Every agreed timeout is at least 2 x the agreed interval. */
  if (max_t / 2 < min_i)
    return bad(why, n, "timeout %lums must be at least 2 x the shortest interval %lums", max_t,
               min_i);
  if (min_i > max_i)
    return bad(why, n, "interval policy: minimum %lums is above maximum %lums", min_i, max_i);
  if (cfg->min_timeout_ms > max_t)
    return bad(why, n, "timeout policy: minimum %lums is above maximum %lums", cfg->min_timeout_ms,
               max_t);
  return 0;
}

int vigil_session_config_check(const vigil_session_config *cfg_in, vigil_role role, char *why,
                               size_t n) {
  vigil_session_config c;
  const vigil_session_config *cfg = &c;
  int rc;

  if (why != NULL && n > 0)
    why[0] = '\0';
  if (cfg_in == NULL || (role != VIGIL_ROLE_CLIENT && role != VIGIL_ROLE_SERVER))
    return bad(why, n, "no config, or a role other than %lu (client) or %lu (server)",
               VIGIL_ROLE_CLIENT, VIGIL_ROLE_SERVER);
  rc = config_read(&c, cfg_in);
  if (rc == VIGIL_ENOTSUP) {
    if (why != NULL && n > 0)
      snprintf(why, n, "config sets a field this library (version %s) does not have",
               vigil_version_string());
    return rc;
  }
  if (rc != 0)
    return bad(why, n, "config size %lu: initialise it with vigil_session_config_init (%lu)",
               (unsigned long)cfg_in->size, (unsigned long)sizeof c);
  if (cfg->max_frame != 0 &&
      (cfg->max_frame < VIGIL_WIRE_MIN_CHUNK || cfg->max_frame > VIGIL_WIRE_MAX_CHUNK))
    return bad(why, n, "max_frame must be %lu to %lu bytes", VIGIL_WIRE_MIN_CHUNK,
               VIGIL_WIRE_MAX_CHUNK);
  return role == VIGIL_ROLE_CLIENT ? check_client(cfg, why, n) : check_server(cfg, why, n);
}

static int init_client(vigil_session *s, const vigil_session_config *cfg) {
  s->timeout_ms = or_default(cfg->timeout_ms, u32_sat((uint64_t)s->interval_ms * 3));
  s->min_ping_ms = or_default(cfg->min_ping_ms, s->interval_ms / 2);
  s->u.hello.id = cfg->id;
  s->u.hello.message_ms = cfg->message_timeout_ms;
  s->id_len = (uint8_t)cfg->id_len;
  /* Unset, the timeout is 3 x whatever interval the server agrees to: say
   * so with 0 rather than propose 3 x an interval it may clamp. */
  s->flags = (uint8_t)(F_HELLO | (cfg->timeout_ms == 0 ? F_TIMEOUT_0 : 0));
  return 0;
}

static int init_server(vigil_session *s, const vigil_session_config *cfg) {
  s->u.policy.min_interval_ms = or_default(cfg->min_interval_ms, DEF_MIN_INTERVAL_MS);
  s->u.policy.max_interval_ms = or_default(cfg->max_interval_ms, DEF_MAX_INTERVAL_MS);
  s->u.policy.min_timeout_ms = cfg->min_timeout_ms; /* 0: 2 x agreed interval */
  s->u.policy.max_timeout_ms = or_default(cfg->max_timeout_ms, DEF_MAX_TIMEOUT_MS);
  s->u.policy.message_ms = cfg->message_timeout_ms;
  s->min_ping_ms = cfg->min_ping_ms; /* 0: agreed interval / 2 */
  return 0;
}

int vigil_session_init(vigil_session *s, vigil_role role, const vigil_session_config *cfg_in,
                       uint64_t now) {
  vigil_session_config c;
  const vigil_session_config *cfg = &c;
  int rc;

  if (s == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  rc = config_read(&c, cfg_in);
  if (rc != 0)
    return rc;
  if (vigil_session_config_check(cfg, role, NULL, 0) != 0)
    return VIGIL_EINVAL;
  memset(s, 0, sizeof *s);
  s->role = (uint8_t)role;
  s->state = VIGIL_SESSION_HANDSHAKE;
  s->last_recv_ns = now; /* the handshake deadline counts from here */
  s->last_peer_ping_ns = NO_PEER_PING;
  s->phi = cfg->phi;
  s->schedule = cfg->ping_on_schedule != 0;
  s->rng = rng_seed(cfg->seed);
  s->interval_ms = or_default(cfg->interval_ms, DEF_INTERVAL_MS);
  s->max_frame = or_default(cfg->max_frame, VIGIL_WIRE_MAX_CHUNK);
  s->max_message = or_default(cfg->max_message, DEF_MAX_MESSAGE);
  s->handshake_ms = or_default(cfg->handshake_timeout_ms, DEF_HANDSHAKE_MS);
  return role == VIGIL_ROLE_CLIENT ? init_client(s, cfg) : init_server(s, cfg);
}

int vigil_session_set_credential(vigil_session *s, const void *cred, size_t len) {
  if (s == NULL || s->role != VIGIL_ROLE_CLIENT || s->state != VIGIL_SESSION_HANDSHAKE ||
      !(s->flags & F_HELLO) || len > VIGIL_WIRE_MAX_CRED || (cred == NULL && len != 0))
    return VIGIL_EINVAL;
  s->u.hello.cred = len != 0 ? (const uint8_t *)cred : NULL;
  s->u.hello.cred_len = (uint8_t)len;
  return 0;
}

/* ---- endings --------------------------------------------------------- */

static void queue_close(vigil_session *s, uint16_t code, const char *reason, uint32_t retry_ms) {
  size_t n = reason != NULL ? strlen(reason) : 0;
  s->close_code = code;
  s->close_reason = reason;
  s->reason_len = (uint8_t)(n < VIGIL_WIRE_MAX_REASON ? n : VIGIL_WIRE_MAX_REASON);
  s->close_retry_ms = retry_ms;
  s->flags = F_CLOSE; /* a CLOSE supersedes everything else queued */
  s->pongs_owed = 0;
}

static void report_dead(vigil_session *s, vigil_event *ev, uint64_t now, vigil_cause cause,
                        const char *detail) {
  s->state = VIGIL_SESSION_DEAD;
  s->flags &= F_CLOSE;
  s->pongs_owed = 0;
  ev->type = VIGIL_EVENT_DEAD;
  ev->cause = cause;
  ev->detail = detail;
  ev->silent_ns = sub_sat(now, s->last_recv_ns);
}

/* Our verdict on the peer: DEAD now, and a CLOSE telling it why. */
static long convict(vigil_session *s, vigil_event *ev, uint64_t now, long err, vigil_cause cause,
                    uint16_t code, uint32_t retry_ms, const char *detail) {
  queue_close(s, code, detail, retry_ms);
  report_dead(s, ev, now, cause, detail);
  ev->close_code = code;
  ev->retry_after_ms = retry_ms;
  return err;
}

static long protocol_error(vigil_session *s, vigil_event *ev, uint64_t now, long err,
                           const char *detail) {
  return convict(s, ev, now, err, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_PROTOCOL_ERROR, 0,
                 detail);
}

static void report_local(vigil_session *s, vigil_event *ev, uint64_t now) {
  report_dead(s, ev, now, VIGIL_CAUSE_LOCAL, "closed by this side");
  ev->silent_ns = 0;
  ev->close_code = s->close_code;
  ev->retry_after_ms = s->close_retry_ms;
}

static vigil_cause close_cause(uint16_t code, const char **detail) {
  *detail = vigil_close_code_text(code);
  switch (code) {
  case VIGIL_CLOSE_NORMAL:
  case VIGIL_CLOSE_GOING_AWAY:
    return VIGIL_CAUSE_CLOSED;
  case VIGIL_CLOSE_PROTOCOL_ERROR:
  case VIGIL_CLOSE_VERSION:
    return VIGIL_CAUSE_PROTOCOL_ERROR;
  case VIGIL_CLOSE_TIMEOUT:
    *detail = "the peer gave up on us: it heard nothing from us for the timeout";
    return VIGIL_CAUSE_CLOSED;
  default:
    return VIGIL_CAUSE_POLICY;
  }
}

static long on_close(vigil_session *s, vigil_event *ev, uint64_t now, const vigil_frame *f) {
  const char *detail;
  vigil_cause cause = close_cause(f->u.close.code, &detail);
  s->flags = 0; /* the peer is gone: answering it is pointless */
  report_dead(s, ev, now, cause, detail);
  ev->close_code = f->u.close.code;
  ev->retry_after_ms = f->u.close.retry_after_ms;
  ev->reason = f->u.close.reason;
  ev->reason_len = f->u.close.reason_len;
  return 0;
}

/* ---- liveness -------------------------------------------------------- */

static void heard(vigil_session *s, uint64_t now) {
  /* Never backwards: a caller that dates bytes by their arrival (the
   * kernel's stamp) may pass a time before one it passed earlier (a stall's
   * re-probe moved last_recv forward; an earlier expire()). */
  if (now < s->last_recv_ns)
    now = s->last_recv_ns;
  s->last_recv_ns = now;
  if (!s->schedule) {
    s->flags &= (uint8_t)~F_PING; /* not idle any more: the probe is moot */
    /* A fresh idle period, a fresh draw. Drawn only when a period ended in
     * our ping, a long draw (near the interval) was kept for as long as
     * the peer's pings came first: that side never pinged, so it never
     * measured an RTT (uv.adapter_client_to_vigil_server failed 10 of 300
     * runs). */
    draw_idle(s);
  }
  if (s->phi != NULL)
    vigil_phi_arrival(s->phi, now);
}

static uint64_t verdict_at(const vigil_session *s) {
  uint64_t fixed = vigil_detector_fixed_deadline(s->last_recv_ns, ms_ns(s->timeout_ms));
  uint64_t floor;
  if (s->phi == NULL)
    return fixed;
  floor = add_sat(s->last_recv_ns, 2 * ms_ns(s->interval_ms));
  return min_u64(fixed, max_u64(floor, vigil_phi_deadline(s->phi)));
}

/* Samples above this (36 years: only a caller whose clock leapt) are
 * smoothed as this, so 7 x srtt + r and 3 x rttvar + |srtt - r| stay below
 * 2^63 and the weighted means cannot wrap. The event reports the raw rtt. */
#define RTT_SAMPLE_MAX ((uint64_t)1 << 60)

static void rtt_sample(vigil_session *s, uint64_t r) {
  if (r > RTT_SAMPLE_MAX)
    r = RTT_SAMPLE_MAX;
  if (!(s->flags & F_RTT)) {
    s->flags |= F_RTT;
    s->srtt_ns = r;
    s->rttvar_ns = r / 2;
    return;
  }
  s->rttvar_ns = (3 * s->rttvar_ns + (s->srtt_ns > r ? s->srtt_ns - r : r - s->srtt_ns)) / 4;
  s->srtt_ns = (7 * s->srtt_ns + r) / 8;
}

/* ---- handshake ------------------------------------------------------- */

/* The message deadline: configured, or the agreed timeout plus max_message
 * at the minimum rate. Read before the handshake's union member goes. */
static uint32_t message_ms(const vigil_session *s) {
  uint32_t cfg = s->role == VIGIL_ROLE_SERVER ? s->u.policy.message_ms : s->u.hello.message_ms;
  uint64_t transfer =
      ((uint64_t)s->max_message * 1000 + VIGIL_MIN_MESSAGE_RATE - 1) / VIGIL_MIN_MESSAGE_RATE;
  return cfg != 0 ? cfg : u32_sat(s->timeout_ms + transfer);
}

static void open_session(vigil_session *s, uint64_t now) {
  uint32_t msg_ms = message_ms(s);
  memset(&s->u, 0, sizeof s->u);
  s->u.xfer.message_ms = msg_ms;
  s->u.xfer.rx_msg_deadline = VIGIL_NO_DEADLINE;
  s->state = VIGIL_SESSION_OPEN;
  if (s->phi != NULL)
    vigil_phi_init(s->phi, s->phi->threshold, s->interval_ms, 0);
  heard(s, now);
  draw_idle(s);
  if (s->schedule)
    s->flags |= F_PING; /* a measurement starts at once, as ping(8) does */
}

static void agree(vigil_session *s, const vigil_hello *h) {
  uint32_t lo, hi, min_to, max_ping;
  uint64_t t;
  s->interval_ms =
      clamp_u32(h->interval_ms, s->u.policy.min_interval_ms, s->u.policy.max_interval_ms);
  t = h->timeout_ms != 0 ? h->timeout_ms : 3 * (uint64_t)s->interval_ms;
  min_to = u32_sat(2 * (uint64_t)s->interval_ms);
  lo = s->u.policy.min_timeout_ms > min_to ? s->u.policy.min_timeout_ms : min_to;
  hi = s->u.policy.max_timeout_ms;
  s->timeout_ms = t > hi ? hi : (uint32_t)t;
  if (s->timeout_ms < lo)
    s->timeout_ms = lo;
  if (s->timeout_ms <= s->interval_ms) /* only at UINT32_MAX intervals */
    s->interval_ms = s->timeout_ms - 1;
  max_ping = (uint32_t)((uint64_t)s->interval_ms * 3 / 4);
  s->min_ping_ms = or_default(s->min_ping_ms, s->interval_ms / 2);
  if (s->min_ping_ms > max_ping)
    s->min_ping_ms = max_ping;
  if (h->max_frame < s->max_frame)
    s->max_frame = h->max_frame;
  if (h->max_message < s->max_message)
    s->max_message = h->max_message;
}

static long on_hello(vigil_session *s, vigil_event *ev, uint64_t now, const vigil_hello *h) {
  if (h->version > VIGIL_WIRE_VERSION_CRED)
    return convict(s, ev, now, VIGIL_EVERSION, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_VERSION, 0,
                   "HELLO asks for a protocol version other than 1 or 2");
  if (h->max_frame < VIGIL_WIRE_MIN_CHUNK || h->max_frame > VIGIL_WIRE_MAX_CHUNK)
    return protocol_error(s, ev, now, VIGIL_EBADFIELD, "HELLO max_frame outside 64..16384");
  if (h->max_message == 0)
    return protocol_error(s, ev, now, VIGIL_EBADFIELD, "HELLO max_message is 0");
  agree(s, h);
  s->flags |= F_WELCOME;
  open_session(s, now);
  ev->type = VIGIL_EVENT_OPEN;
  ev->data = (const uint8_t *)h->id;
  ev->len = h->id_len;
  ev->credential = h->cred;
  ev->credential_len = h->cred_len;
  return 0;
}

static const char *welcome_flaw(const vigil_session *s, const vigil_welcome *w) {
  if (w->interval_ms == 0)
    return "WELCOME interval is 0";
  if (w->timeout_ms <= w->interval_ms)
    return "WELCOME timeout is not above its interval";
  if (w->min_ping_ms > (uint64_t)w->interval_ms * 3 / 4)
    return "WELCOME min_ping is above 3/4 of its interval";
  if (w->max_frame < VIGIL_WIRE_MIN_CHUNK || w->max_frame > s->max_frame)
    return "WELCOME max_frame outside 64..our proposal";
  if (w->max_message == 0 || w->max_message > s->max_message)
    return "WELCOME max_message outside 1..our proposal";
  return NULL;
}

static long on_welcome(vigil_session *s, vigil_event *ev, uint64_t now, const vigil_welcome *w) {
  const char *flaw;
  if (s->flags & F_HELLO)
    return protocol_error(s, ev, now, VIGIL_EUNEXPECTED, "WELCOME before our HELLO was sent");
  if (w->version != VIGIL_WIRE_VERSION)
    return convict(s, ev, now, VIGIL_EVERSION, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_VERSION, 0,
                   "WELCOME names a protocol version other than 1");
  flaw = welcome_flaw(s, w);
  if (flaw != NULL)
    return protocol_error(s, ev, now, VIGIL_EBADFIELD, flaw);
  s->interval_ms = w->interval_ms;
  s->timeout_ms = w->timeout_ms;
  s->min_ping_ms = w->min_ping_ms;
  s->max_frame = w->max_frame;
  s->max_message = w->max_message;
  open_session(s, now);
  ev->type = VIGIL_EVENT_OPEN;
  return 0;
}

/* ---- frames while OPEN ----------------------------------------------- */

static long on_ping(vigil_session *s, vigil_event *ev, uint64_t now) {
  if (s->last_peer_ping_ns != NO_PEER_PING &&
      sub_sat(now, s->last_peer_ping_ns) < ms_ns(s->min_ping_ms)) {
    if (++s->strikes > VIGIL_PING_STRIKES)
      return convict(s, ev, now, VIGIL_EPOLICY, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_PING_FLOOD,
                     s->timeout_ms, "pinging faster than the agreed minimum");
  } else if (s->strikes > 0) {
    s->strikes--;
  }
  s->last_peer_ping_ns = now;
  if (s->pongs_owed < PONGS_OWED_MAX)
    s->pongs_owed++;
  heard(s, now);
  return 0;
}

static long on_pong(vigil_session *s, vigil_event *ev, uint64_t now) {
  heard(s, now);
  if (!(s->flags & F_PING_OUT))
    return 0; /* unsolicited: alive, but nothing to measure */
  s->flags &= (uint8_t)~F_PING_OUT;
  if (s->ping_sent_ns == NO_RTT_SAMPLE)
    return 0; /* answered, but the time includes our stall */
  ev->type = VIGIL_EVENT_PONG;
  ev->rtt_ns = sub_sat(now, s->ping_sent_ns);
  rtt_sample(s, ev->rtt_ns);
  return 0;
}

/* A chunk's end is the only thing in DATA that proves the peer alive. */
static void chunk_done(vigil_session *s, vigil_event *ev, uint64_t now) {
  heard(s, now);
  if (s->rx_frame_type == VIGIL_FRAME_DATA) {
    ev->end_of_message = 1;
    s->u.xfer.rx_msg_bytes = 0;
    s->u.xfer.rx_msg_deadline = VIGIL_NO_DEADLINE;
  }
}

static long rx_payload(vigil_session *s, vigil_event *ev, uint64_t now, const uint8_t *buf,
                       size_t len) {
  uint32_t take = s->u.xfer.rx_frame_left;
  if (len < take)
    take = (uint32_t)len;
  s->u.xfer.rx_frame_left -= take;
  ev->type = VIGIL_EVENT_DATA;
  ev->data = buf;
  ev->len = take;
  if (s->u.xfer.rx_frame_left == 0)
    chunk_done(s, ev, now);
  return (long)take;
}

static long rx_data_header(vigil_session *s, vigil_event *ev, uint64_t now, const uint8_t *buf,
                           size_t len) {
  uint8_t type;
  uint32_t length;
  int rc;
  if (s->state != VIGIL_SESSION_OPEN)
    return protocol_error(s, ev, now, VIGIL_EUNEXPECTED, "DATA before the handshake completed");
  rc = vigil_wire_decode_header(buf, len, s->max_frame, &type, &length);
  if (rc == VIGIL_ENEEDMORE)
    return 0;
  if (rc == VIGIL_EFRAMESIZE)
    return convict(s, ev, now, rc, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_TOO_BIG, 0,
                   "DATA chunk larger than the agreed max_frame");
  if (rc < 0)
    return protocol_error(s, ev, now, rc, vigil_strerror(rc));
  if (length > s->max_message - s->u.xfer.rx_msg_bytes)
    return convict(s, ev, now, VIGIL_EMSGTOOBIG, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_TOO_BIG, 0,
                   "message larger than the agreed max_message");
  s->u.xfer.rx_msg_bytes += length;
  s->u.xfer.rx_frame_left = length;
  s->rx_frame_type = type;
  if (type == VIGIL_FRAME_DATA_MORE && s->u.xfer.rx_msg_deadline == VIGIL_NO_DEADLINE)
    s->u.xfer.rx_msg_deadline = add_sat(now, ms_ns(s->u.xfer.message_ms));
  if (length == 0 && type == VIGIL_FRAME_DATA) {
    ev->type = VIGIL_EVENT_DATA; /* an empty message, or an empty last chunk */
    ev->data = buf + rc;
  }
  if (length == 0)
    chunk_done(s, ev, now);
  return rc;
}

/* The codec refused a control frame. If it is the handshake frame we are
 * waiting for, a version we cannot speak is answered with CLOSE VERSION, and
 * a HELLO the v1 codec cannot parse may still be a readable "VIGL" + version
 * byte from a newer client, which deserves the same answer rather than
 * "protocol error". A frame out of place is a protocol error whatever its
 * version byte says (PROTOCOL.md 2.5). */
static long bad_control(vigil_session *s, vigil_event *ev, uint64_t now, const uint8_t *buf,
                        size_t len, int err) {
  int server = s->role == VIGIL_ROLE_SERVER;
  uint8_t awaited = server ? VIGIL_FRAME_HELLO : VIGIL_FRAME_WELCOME;
  uint32_t length = 0;
  int h = vigil_wire_decode_header(buf, len, VIGIL_WIRE_MAX_CHUNK, NULL, &length);
  if (s->state != VIGIL_SESSION_HANDSHAKE || buf[0] != awaited)
    return protocol_error(s, ev, now, err, vigil_strerror(err));
  if (err == VIGIL_EVERSION ||
      (server && h > 0 && length >= 5 && len >= (size_t)h + 5 &&
       memcmp(buf + h, VIGIL_WIRE_MAGIC, 4) == 0 && buf[h + 4] > VIGIL_WIRE_VERSION_CRED))
    return convict(s, ev, now, VIGIL_EVERSION, VIGIL_CAUSE_PROTOCOL_ERROR, VIGIL_CLOSE_VERSION, 0,
                   "unsupported protocol version");
  return protocol_error(s, ev, now, err, vigil_strerror(err));
}

static long on_control(vigil_session *s, vigil_event *ev, uint64_t now, const vigil_frame *f) {
  int server = s->role == VIGIL_ROLE_SERVER;
  if (f->type == VIGIL_FRAME_CLOSE)
    return on_close(s, ev, now, f);
  if (s->state == VIGIL_SESSION_HANDSHAKE) {
    if (server && f->type == VIGIL_FRAME_HELLO)
      return on_hello(s, ev, now, &f->u.hello);
    if (!server && f->type == VIGIL_FRAME_WELCOME)
      return on_welcome(s, ev, now, &f->u.welcome);
    return protocol_error(s, ev, now, VIGIL_EUNEXPECTED,
                          server ? "expected HELLO" : "expected WELCOME or CLOSE");
  }
  switch (f->type) {
  case VIGIL_FRAME_PING:
    return on_ping(s, ev, now);
  case VIGIL_FRAME_PONG:
    return on_pong(s, ev, now);
  default:
    return protocol_error(s, ev, now, VIGIL_EUNEXPECTED, "handshake frame after the handshake");
  }
}

/* One frame (or a DATA header) from buf. Returns bytes consumed, 0 when buf
 * holds less than what is needed, or a negative error. */
static long rx_frame(vigil_session *s, vigil_event *ev, uint64_t now, const uint8_t *buf,
                     size_t len) {
  vigil_frame f;
  int rc;
  long r;
  if (buf[0] == VIGIL_FRAME_DATA || buf[0] == VIGIL_FRAME_DATA_MORE)
    return rx_data_header(s, ev, now, buf, len);
  rc = vigil_wire_decode(buf, len, s->max_frame, &f);
  if (rc == VIGIL_ENEEDMORE)
    return 0;
  if (rc < 0)
    return bad_control(s, ev, now, buf, len, rc);
  r = on_control(s, ev, now, &f);
  return r < 0 ? r : rc;
}

long vigil_session_recv(vigil_session *s, uint64_t now, const uint8_t *buf, size_t len,
                        vigil_event *ev) {
  size_t off = 0;
  long r;
  if (s == NULL || ev == NULL || (buf == NULL && len > 0))
    return VIGIL_EINVAL;
  memset(ev, 0, sizeof *ev);
  if (len > (size_t)LONG_MAX)
    len = (size_t)LONG_MAX;
  if (s->state == VIGIL_SESSION_DEAD)
    return VIGIL_ECLOSED;
  if (s->state == VIGIL_SESSION_CLOSING) {
    if (!(s->flags & F_LOCAL_DONE))
      return (long)len;
    report_local(s, ev, now);
    return 0;
  }
  while (off < len && ev->type == VIGIL_EVENT_NONE) {
    if (s->state == VIGIL_SESSION_OPEN && s->u.xfer.rx_frame_left > 0)
      r = rx_payload(s, ev, now, buf + off, len - off);
    else
      r = rx_frame(s, ev, now, buf + off, len - off);
    if (r < 0)
      return r;
    if (r == 0)
      break;
    off += (size_t)r;
  }
  return (long)off;
}

/* ---- timers ---------------------------------------------------------- */

static uint64_t ping_at(const vigil_session *s) {
  if (s->flags & (F_PING | F_PING_OUT))
    return VIGIL_NO_DEADLINE;
  if (s->schedule)
    return add_sat(s->ping_sent_ns, ms_ns(s->interval_ms));
  return add_sat(s->last_recv_ns, ms_ns(s->idle_ms));
}

uint64_t vigil_session_deadline(const vigil_session *s) {
  if (s == NULL)
    return VIGIL_NO_DEADLINE;
  switch (s->state) {
  case VIGIL_SESSION_HANDSHAKE:
    return add_sat(s->last_recv_ns, ms_ns(s->handshake_ms));
  case VIGIL_SESSION_OPEN:
    return min_u64(min_u64(verdict_at(s), ping_at(s)), s->u.xfer.rx_msg_deadline);
  case VIGIL_SESSION_CLOSING:
    return (s->flags & F_LOCAL_DONE) ? 0 : VIGIL_NO_DEADLINE;
  default:
    return VIGIL_NO_DEADLINE;
  }
}

static void expire_handshake(vigil_session *s, uint64_t now, vigil_event *ev) {
  if (!reached(now, add_sat(s->last_recv_ns, ms_ns(s->handshake_ms))))
    return;
  if (s->role == VIGIL_ROLE_SERVER)
    (void)convict(s, ev, now, 0, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_HANDSHAKE_TIMEOUT, 0,
                  "handshake too slow");
  else
    (void)convict(s, ev, now, 0, VIGIL_CAUSE_HEARTBEAT_TIMEOUT, VIGIL_CLOSE_TIMEOUT, 0,
                  "no answer to HELLO");
}

static void expire_open(vigil_session *s, uint64_t now, vigil_event *ev) {
  if (reached(now, verdict_at(s))) {
    (void)convict(s, ev, now, 0, VIGIL_CAUSE_HEARTBEAT_TIMEOUT, VIGIL_CLOSE_TIMEOUT, 0,
                  "no valid frame within the agreed timeout");
    return;
  }
  if (reached(now, s->u.xfer.rx_msg_deadline)) {
    (void)convict(s, ev, now, 0, VIGIL_CAUSE_POLICY, VIGIL_CLOSE_POLICY, 0,
                  "message not finished within the message deadline");
    return;
  }
  if (reached(now, ping_at(s))) {
    s->flags |= F_PING;
    draw_idle(s);
  }
}

int vigil_session_expire(vigil_session *s, uint64_t now, vigil_event *ev) {
  if (s == NULL || ev == NULL)
    return VIGIL_EINVAL;
  memset(ev, 0, sizeof *ev);
  switch (s->state) {
  case VIGIL_SESSION_HANDSHAKE:
    expire_handshake(s, now, ev);
    return 0;
  case VIGIL_SESSION_OPEN:
    expire_open(s, now, ev);
    return 0;
  case VIGIL_SESSION_CLOSING:
    if (s->flags & F_LOCAL_DONE)
      report_local(s, ev, now);
    return 0;
  default:
    return VIGIL_ECLOSED;
  }
}

/* Nothing to withdraw: the verdict and the message deadline are an
 * interval or more away. A ping in flight stays so, its RTT spoiled. */
static int unharmed_by_stall(vigil_session *s, uint64_t now) {
  uint64_t horizon = add_sat(now, ms_ns(s->interval_ms));
  if (s->schedule || verdict_at(s) < horizon || s->u.xfer.rx_msg_deadline < horizon)
    return 0;
  if (s->flags & F_PING_OUT)
    s->ping_sent_ns = NO_RTT_SAMPLE;
  return 1;
}

void vigil__session_stalled_lazy(vigil_session *s, uint64_t now) {
  if (s != NULL && s->state == VIGIL_SESSION_OPEN && unharmed_by_stall(s, now))
    return;
  vigil_session_stalled(s, now);
}

void vigil_session_stalled(vigil_session *s, uint64_t now) {
  uint64_t interval;
  if (s == NULL)
    return;
  interval = ms_ns(s->interval_ms);
  if (s->state == VIGIL_SESSION_HANDSHAKE) {
    s->last_recv_ns =
        max_u64(s->last_recv_ns, sub_sat(add_sat(now, interval), ms_ns(s->handshake_ms)));
    return;
  }
  if (s->state != VIGIL_SESSION_OPEN)
    return;
  s->last_recv_ns = max_u64(s->last_recv_ns,
                            s->phi != NULL ? sub_sat(now, interval)
                                           : sub_sat(add_sat(now, interval), ms_ns(s->timeout_ms)));
  if (s->u.xfer.rx_msg_deadline != VIGIL_NO_DEADLINE) /* we were not reading */
    s->u.xfer.rx_msg_deadline = max_u64(s->u.xfer.rx_msg_deadline, add_sat(now, interval));
  s->flags = (uint8_t)((s->flags & ~F_PING_OUT) | F_PING);
}

/* ---- sending --------------------------------------------------------- */

static int encode_close(const vigil_session *s, uint8_t *out, size_t cap) {
  vigil_close_frame c;
  c.code = s->close_code;
  c.retry_after_ms = s->close_retry_ms;
  c.reason_len = s->reason_len;
  c.reason = s->close_reason;
  return vigil_wire_encode_close(out, cap, &c);
}

static int encode_hello(const vigil_session *s, uint8_t *out, size_t cap) {
  vigil_hello h;
  memset(&h, 0, sizeof h);
  h.version = s->u.hello.cred_len != 0 ? VIGIL_WIRE_VERSION_CRED : VIGIL_WIRE_VERSION;
  h.cred_len = s->u.hello.cred_len;
  h.cred = s->u.hello.cred;
  h.interval_ms = s->interval_ms;
  h.timeout_ms = (s->flags & F_TIMEOUT_0) ? 0 : s->timeout_ms;
  h.max_frame = s->max_frame;
  h.max_message = s->max_message;
  h.id_len = s->id_len;
  h.id = s->u.hello.id;
  return vigil_wire_encode_hello(out, cap, &h);
}

static int encode_welcome(const vigil_session *s, uint8_t *out, size_t cap) {
  vigil_welcome w;
  w.version = VIGIL_WIRE_VERSION;
  w.interval_ms = s->interval_ms;
  w.timeout_ms = s->timeout_ms;
  w.min_ping_ms = s->min_ping_ms;
  w.max_frame = s->max_frame;
  w.max_message = s->max_message;
  return vigil_wire_encode_welcome(out, cap, &w);
}

/* Emits queued control frames in order; stops at the first that does not
 * fit. Returns bytes written and sets *done when nothing is left queued. */
static size_t write_control(vigil_session *s, uint64_t now, uint8_t *out, size_t cap, int *done) {
  size_t pos = 0;
  int n;
  *done = 0;
  if (s->flags & F_HELLO) {
    if ((n = encode_hello(s, out, cap)) < 0)
      return pos;
    pos += (size_t)n;
    s->flags &= (uint8_t)~F_HELLO;
  }
  if (s->flags & F_WELCOME) {
    if ((n = encode_welcome(s, out + pos, cap - pos)) < 0)
      return pos;
    pos += (size_t)n;
    s->flags &= (uint8_t)~F_WELCOME;
  }
  for (; s->pongs_owed > 0; s->pongs_owed--) {
    if ((n = vigil_wire_encode_pong(out + pos, cap - pos)) < 0)
      return pos;
    pos += (size_t)n;
  }
  if (s->flags & F_PING) {
    if ((n = vigil_wire_encode_ping(out + pos, cap - pos)) < 0)
      return pos;
    pos += (size_t)n;
    s->flags = (uint8_t)((s->flags & ~F_PING) | F_PING_OUT);
    s->ping_sent_ns = now; /* RTT counts from the write, not the queueing */
  }
  *done = 1;
  return pos;
}

static size_t write_chunk(vigil_session *s, uint8_t *out, size_t cap, const uint8_t *msg,
                          size_t msg_len, size_t *msg_taken) {
  size_t n = msg_len < s->max_frame ? msg_len : s->max_frame;
  int more, h;
  /* Type byte + varint length: 2 bytes up to 127, 3 up to 16383, 4 above. */
  if (n + 2 + (n >= 128) + (n >= 16384) > cap)
    n = cap > 4 ? cap - 4 : 0; /* sure to fit; a shorter header only leaves room */
  if (n < msg_len && n < VIGIL_WIRE_MIN_CHUNK)
    return 0; /* not worth a frame: wait for a bigger buffer */
  more = n < msg_len;
  h = vigil_wire_encode_data_header(out, cap, more, (uint32_t)n);
  if (h < 0)
    return 0;
  memcpy(out + h, msg, n);
  *msg_taken = n;
  s->u.xfer.tx_msg_bytes = more ? s->u.xfer.tx_msg_bytes + (uint32_t)n : 0;
  return (size_t)h + n;
}

long vigil_session_write(vigil_session *s, uint64_t now, uint8_t *out, size_t cap,
                         const uint8_t *msg, size_t msg_len, size_t *msg_taken) {
  size_t pos, ignored;
  int done;
  if (msg_taken == NULL && msg == NULL)
    msg_taken = &ignored; /* control frames only: nothing to report */
  if (s == NULL || out == NULL || msg_taken == NULL || (msg == NULL && msg_len > 0))
    return VIGIL_EINVAL;
  *msg_taken = 0;
  if (cap > (size_t)LONG_MAX)
    cap = (size_t)LONG_MAX;
  if (s->flags & F_CLOSE) {
    int n = encode_close(s, out, cap);
    if (n < 0)
      return 0;
    s->flags = s->state == VIGIL_SESSION_CLOSING ? F_LOCAL_DONE : 0;
    return n;
  }
  if (s->state == VIGIL_SESSION_DEAD)
    return VIGIL_ECLOSED;
  if (s->state == VIGIL_SESSION_CLOSING)
    return 0;
  if (msg != NULL && s->state == VIGIL_SESSION_OPEN &&
      msg_len > (size_t)(s->max_message - s->u.xfer.tx_msg_bytes))
    return VIGIL_EMSGSIZE;
  pos = write_control(s, now, out, cap, &done);
  if (done && msg != NULL && s->state == VIGIL_SESSION_OPEN)
    pos += write_chunk(s, out + pos, cap - pos, msg, msg_len, msg_taken);
  return (long)pos;
}

int vigil_session_want_write(const vigil_session *s) {
  if (s == NULL)
    return 0;
  return (s->flags & (F_HELLO | F_WELCOME | F_CLOSE | F_PING)) != 0 || s->pongs_owed > 0;
}

int vigil_session_close(vigil_session *s, uint16_t code, const char *reason,
                        uint32_t retry_after_ms) {
  size_t n;
  if (s == NULL)
    return VIGIL_EINVAL;
  if (s->state == VIGIL_SESSION_DEAD)
    return VIGIL_ECLOSED;
  if (s->state == VIGIL_SESSION_CLOSING)
    return VIGIL_EALREADY;
  n = reason != NULL ? strlen(reason) : 0;
  if (n > VIGIL_WIRE_MAX_REASON || (n > 0 && !vigil_utf8_valid((const uint8_t *)reason, n)))
    return VIGIL_EINVAL;
  queue_close(s, code, reason, retry_after_ms);
  s->state = VIGIL_SESSION_CLOSING;
  return 0;
}

void vigil_session_get_info(const vigil_session *s, vigil_session_info *info) {
  if (s == NULL || info == NULL)
    return;
  memset(info, 0, sizeof *info);
  info->role = (vigil_role)s->role;
  info->state = (vigil_session_state)s->state;
  info->interval_ms = s->interval_ms;
  info->timeout_ms = s->timeout_ms;
  info->min_ping_ms = s->min_ping_ms;
  info->max_frame = s->max_frame;
  info->max_message = s->max_message;
  if (s->state == VIGIL_SESSION_OPEN)
    info->message_timeout_ms = s->u.xfer.message_ms;
  info->last_recv_ns = s->last_recv_ns;
  info->srtt_ns = s->srtt_ns;
  info->rttvar_ns = s->rttvar_ns;
  info->ping_outstanding = (s->flags & F_PING_OUT) != 0;
  info->strikes = s->strikes;
}

int vigil__session_ping_out(const vigil_session *s) {
  return (s->flags & F_PING_OUT) != 0;
}

vigil_session_state vigil_session_get_state(const vigil_session *s) {
  return (vigil_session_state)s->state;
}

vigil_role vigil_session_get_role(const vigil_session *s) {
  return (vigil_role)s->role;
}

uint32_t vigil_session_get_max_message(const vigil_session *s) {
  return s->max_message;
}
