/* The liveness engine on virtual time: no sockets, no sleeps.
 *
 * Two sessions are wired back to back by a helper that shuttles one side's
 * write() output into the other side's recv(); single sessions are fed
 * frames made with the wire encoders (or by hand, for bytes the encoders
 * refuse to make). Time is a number we assign. */
#include <stdlib.h>
#include <string.h>

#include "session-internal.h"
#include "task.h"
#include "vigil.h"

#define MS VIGIL_MS
#define T0 ((uint64_t)1000 * MS) /* a non-zero origin catches "0 means unset" bugs */
#define EV_MAX 256

/* One end of a back-to-back pair: the session, the bytes it has received but
 * not yet consumed, and a log of what it reported. */
typedef struct end {
  vigil_session s;
  uint8_t rx[65536];
  size_t rx_len;
  vigil_event ev[EV_MAX];
  long err;        /* first negative recv() result */
  uint8_t id[256]; /* copy of the OPEN event's id */
  size_t id_len;
  char reason[128];  /* copy of the DEAD event's reason */
  uint8_t cred[256]; /* copy of the OPEN event's credential */
  size_t cred_len;
  int cred_null; /* the OPEN event's credential pointer was NULL */
  uint8_t *msg;  /* reassembly of DATA events (when non-NULL) */
  size_t msg_len, msg_cap;
  int messages;      /* end_of_message seen */
  int nev;           /* events in ev[] */
  int frames_out[8]; /* frames written, by type */
} end;

static void record(end *e, const vigil_event *ev) {
  if (e->nev < EV_MAX)
    e->ev[e->nev++] = *ev;
  if (ev->type == VIGIL_EVENT_OPEN && ev->len > 0 && ev->len <= sizeof e->id) {
    memcpy(e->id, ev->data, ev->len);
    e->id_len = ev->len;
  }
  if (ev->type == VIGIL_EVENT_OPEN && ev->credential_len <= sizeof e->cred) {
    if (ev->credential_len > 0)
      memcpy(e->cred, ev->credential, ev->credential_len);
    e->cred_len = ev->credential_len;
    e->cred_null = ev->credential == NULL;
  }
  if (ev->type == VIGIL_EVENT_DEAD && ev->reason != NULL && ev->reason_len < sizeof e->reason) {
    memcpy(e->reason, ev->reason, ev->reason_len);
    e->reason[ev->reason_len] = '\0';
  }
  if (ev->type == VIGIL_EVENT_DATA) {
    if (e->msg != NULL && ev->len > 0 && e->msg_len + ev->len <= e->msg_cap) {
      memcpy(e->msg + e->msg_len, ev->data, ev->len);
      e->msg_len += ev->len;
    }
    e->messages += ev->end_of_message;
  }
}

/* Appends bytes to e's receive buffer and runs recv() the way the header
 * says a caller must: until it consumes nothing and reports nothing. */
static void deliver(end *e, uint64_t now, const uint8_t *bytes, size_t n) {
  vigil_event ev;
  if (n > sizeof e->rx - e->rx_len)
    abort(); /* a test bug, not a session bug */
  memcpy(e->rx + e->rx_len, bytes, n);
  e->rx_len += n;
  for (;;) {
    long r = vigil_session_recv(&e->s, now, e->rx, e->rx_len, &ev);
    if (ev.type != VIGIL_EVENT_NONE)
      record(e, &ev);
    if (r < 0) {
      if (e->err == 0)
        e->err = r;
      e->rx_len = 0;
      return;
    }
    memmove(e->rx, e->rx + r, e->rx_len - (size_t)r);
    e->rx_len -= (size_t)r;
    if ((r == 0 && ev.type == VIGIL_EVENT_NONE) || ev.type == VIGIL_EVENT_DEAD)
      return; /* after DEAD a caller stops feeding */
  }
}

static void count_frames(end *e, const uint8_t *buf, size_t n) {
  vigil_frame f;
  int r;
  while (n > 0 && (r = vigil_wire_decode(buf, n, VIGIL_WIRE_MAX_CHUNK, &f)) > 0) {
    e->frames_out[f.type & 7]++;
    buf += r;
    n -= (size_t)r;
  }
  if (n != 0)
    e->frames_out[0]++; /* undecodable output: slot 0 counts it */
}

/* Control frames from a to b until a has nothing more to say. */
static size_t flush(end *a, end *b, uint64_t now) {
  uint8_t buf[4096];
  size_t taken, total = 0;
  long n;
  while ((n = vigil_session_write(&a->s, now, buf, sizeof buf, NULL, 0, &taken)) > 0) {
    count_frames(a, buf, (size_t)n);
    deliver(b, now, buf, (size_t)n);
    total += (size_t)n;
  }
  return total;
}

static void expire(end *e, uint64_t now) {
  vigil_event ev;
  if (vigil_session_expire(&e->s, now, &ev) == 0 && ev.type != VIGIL_EVENT_NONE)
    record(e, &ev);
}

static const vigil_event *last_event(const end *e) {
  static const vigil_event none;
  return e->nev > 0 ? &e->ev[e->nev - 1] : &none;
}

static int count_events(const end *e, vigil_event_type t) {
  int i, n = 0;
  for (i = 0; i < e->nev; i++)
    n += e->ev[i].type == t;
  return n;
}

/* Ends come from a static pool (a test uses at most three at once), so a
 * test that fails half-way leaks nothing. */
static end *end_new(void) {
  static end pool[4];
  static unsigned next;
  end *e = &pool[next++ % 4];
  memset(e, 0, sizeof *e);
  return e;
}

static void client_cfg(vigil_session_config *cfg, uint32_t interval, uint32_t timeout) {
  vigil_session_config_init(cfg);
  cfg->interval_ms = interval;
  cfg->timeout_ms = timeout;
  cfg->id = "dev-1";
  cfg->id_len = 5;
  cfg->seed = 7;
}

/* A client and a server, handshake done at T0. */
static int open_pair(end *c, end *s, const vigil_session_config *ccfg,
                     const vigil_session_config *scfg) {
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, ccfg, T0), 0);
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, scfg, T0), 0);
  flush(c, s, T0);
  flush(s, c, T0);
  ASSERT_EQ(s->err, 0);
  ASSERT_EQ(c->err, 0);
  ASSERT_EQ(count_events(s, VIGIL_EVENT_OPEN), 1);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_OPEN), 1);
  return 0;
}

static int open_default_pair(end *c, end *s) {
  vigil_session_config ccfg, scfg;
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  return open_pair(c, s, &ccfg, &scfg);
}

static size_t make_hello(uint8_t *out, uint8_t version, uint32_t interval, uint32_t timeout,
                         uint32_t max_frame, uint32_t max_message) {
  vigil_hello h;
  int n;
  memset(&h, 0, sizeof h);
  h.version = version;
  if (version >= VIGIL_WIRE_VERSION_CRED) { /* from version 2 on a credential is required */
    h.cred = (const uint8_t *)"k";
    h.cred_len = 1;
  }
  h.interval_ms = interval;
  h.timeout_ms = timeout;
  h.max_frame = max_frame;
  h.max_message = max_message;
  h.id = "peer";
  h.id_len = 4;
  n = vigil_wire_encode_hello(out, VIGIL_WIRE_MAX_CONTROL_FRAME, &h);
  if (n <= 0)
    abort();
  return (size_t)n;
}

static size_t make_welcome(uint8_t *out, uint32_t interval, uint32_t timeout, uint32_t min_ping,
                           uint32_t max_frame, uint32_t max_message) {
  vigil_welcome w;
  int n;
  w.version = VIGIL_WIRE_VERSION;
  w.interval_ms = interval;
  w.timeout_ms = timeout;
  w.min_ping_ms = min_ping;
  w.max_frame = max_frame;
  w.max_message = max_message;
  n = vigil_wire_encode_welcome(out, 64, &w);
  if (n <= 0)
    abort();
  return (size_t)n;
}

static size_t make_close(uint8_t *out, uint16_t code, uint32_t retry, const char *reason) {
  vigil_close_frame c;
  int n;
  c.code = code;
  c.retry_after_ms = retry;
  c.reason = reason;
  c.reason_len = (uint8_t)strlen(reason);
  n = vigil_wire_encode_close(out, 256, &c);
  if (n <= 0)
    abort();
  return (size_t)n;
}

static const uint8_t PING[2] = {VIGIL_FRAME_PING, 0};
static const uint8_t PONG[2] = {VIGIL_FRAME_PONG, 0};

/* A server opened by a hand-made HELLO (interval 1000, timeout 3000) at T0. */
static int open_server(end *e, const vigil_session_config *cfg) {
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t n = make_hello(hello, 1, 1000, 3000, 16384, 1u << 20);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, cfg, T0), 0);
  deliver(e, T0, hello, n);
  ASSERT_EQ(e->err, 0);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_OPEN);
  return 0;
}

static int open_default_server(end *e) {
  vigil_session_config cfg;
  vigil_session_config_init(&cfg);
  return open_server(e, &cfg);
}

/* A client whose HELLO was written, opened by a hand-made WELCOME at T0. */
static int open_client(end *e, const vigil_session_config *cfg) {
  uint8_t buf[512], w[64];
  size_t taken, n;
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_CLIENT, cfg, T0), 0);
  ASSERT_GT(vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken), 0);
  n = make_welcome(w, 1000, 3000, 500, cfg->max_frame ? cfg->max_frame : 16384, 1u << 20);
  deliver(e, T0, w, n);
  ASSERT_EQ(e->err, 0);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_OPEN);
  return 0;
}

/* Writes everything e has queued and returns the first frame's CLOSE fields
 * (code 0xFFFF if the output did not start with a CLOSE). */
static vigil_close_frame written_close(end *e, uint64_t now) {
  static uint8_t buf[4096];
  vigil_close_frame none = {0xFFFF, 0, 0, NULL};
  vigil_frame f;
  size_t taken;
  long n = vigil_session_write(&e->s, now, buf, sizeof buf, NULL, 0, &taken);
  if (n <= 0 || vigil_wire_decode(buf, (size_t)n, VIGIL_WIRE_MAX_CHUNK, &f) != n ||
      f.type != VIGIL_FRAME_CLOSE)
    return none;
  return f.u.close;
}

static vigil_session_info info_of(const end *e) {
  vigil_session_info i;
  vigil_session_get_info(&e->s, &i);
  return i;
}

/* ---- handshake ------------------------------------------------------- */

TEST_IMPL(session_handshake_accepted) {
  end *c = end_new(), *s = end_new();
  vigil_session_info ci, si;
  ASSERT_EQ(open_default_pair(c, s), 0);
  ASSERT_EQ(s->id_len, 5);
  ASSERT_MEM_EQ(s->id, "dev-1", 5);
  ci = info_of(c);
  si = info_of(s);
  ASSERT_EQ(ci.state, VIGIL_SESSION_OPEN);
  ASSERT_EQ(si.state, VIGIL_SESSION_OPEN);
  ASSERT_EQ(si.interval_ms, 1000);
  ASSERT_EQ(si.timeout_ms, 3000); /* proposed 0: 3 x interval */
  ASSERT_EQ(si.min_ping_ms, 500);
  ASSERT_EQ(si.max_frame, 16384);
  ASSERT_EQ(si.max_message, 1u << 20);
  ASSERT_EQ(ci.interval_ms, si.interval_ms);
  ASSERT_EQ(ci.timeout_ms, si.timeout_ms);
  ASSERT_EQ(ci.min_ping_ms, si.min_ping_ms);
  ASSERT_EQ(ci.max_frame, si.max_frame);
  ASSERT_EQ(ci.max_message, si.max_message);
  ASSERT_UEQ(ci.last_recv_ns, T0);
  ASSERT_EQ(c->frames_out[VIGIL_FRAME_HELLO], 1);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_WELCOME], 1);
  ASSERT(!vigil_session_want_write(&c->s));
  ASSERT(!vigil_session_want_write(&s->s));
  return 0;
}

/* A credential set on the client travels in a version 2 HELLO and reaches
 * the server's OPEN event as given; without one the HELLO stays version 1
 * (byte for byte what an older client sends) and OPEN has no credential. */
TEST_IMPL(session_hello_carries_credential) {
  static const char tok[] = "v1.1767225600.tVjTPeRBtGCCgQvMyXEPWCxkEDZ36HsaDhM-wYGJ7xw";
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME], big[256];
  vigil_frame f;
  size_t taken;
  long n;
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, &ccfg, T0), 0);
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  ASSERT_EQ(vigil_session_set_credential(&c->s, tok, sizeof tok - 1), 0);
  n = vigil_session_write(&c->s, T0, buf, sizeof buf, NULL, 0, &taken);
  ASSERT_GT(n, 0);
  ASSERT_EQ(vigil_wire_decode(buf, (size_t)n, 0, &f), n);
  ASSERT_EQ(f.u.hello.version, VIGIL_WIRE_VERSION_CRED);
  ASSERT_EQ(f.u.hello.cred_len, sizeof tok - 1);
  deliver(s, T0, buf, (size_t)n);
  ASSERT_EQ(s->err, 0);
  ASSERT_EQ(last_event(s)->type, VIGIL_EVENT_OPEN);
  ASSERT_EQ(s->cred_len, sizeof tok - 1);
  ASSERT_MEM_EQ(s->cred, tok, sizeof tok - 1);
  ASSERT_MEM_EQ(s->id, "dev-1", 5);
  /* Too late once the HELLO is out; never on a server; at most 255 bytes. */
  ASSERT_EQ(vigil_session_set_credential(&c->s, tok, 3), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_set_credential(&s->s, tok, 3), VIGIL_EINVAL);
  c = end_new();
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, &ccfg, T0), 0);
  memset(big, 'k', sizeof big);
  ASSERT_EQ(vigil_session_set_credential(&c->s, big, 256), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_set_credential(&c->s, NULL, 1), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_set_credential(&c->s, big, 255), 0);
  ASSERT_EQ(vigil_session_set_credential(&c->s, NULL, 0), 0); /* back to version 1 */
  n = vigil_session_write(&c->s, T0, buf, sizeof buf, NULL, 0, &taken);
  ASSERT_EQ(vigil_wire_decode(buf, (size_t)n, 0, &f), n);
  ASSERT_EQ(f.u.hello.version, VIGIL_WIRE_VERSION);
  ASSERT_EQ(f.u.hello.cred_len, 0);
  s = end_new();
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  deliver(s, T0, buf, (size_t)n);
  ASSERT_EQ(last_event(s)->type, VIGIL_EVENT_OPEN);
  ASSERT_EQ(s->cred_len, 0);
  ASSERT(s->cred_null);
  return 0;
}

/* A server that refuses the credential closes before the WELCOME is
 * written: the CLOSE goes out alone, so the client never sees the
 * connection open, and learns AUTH_FAILED with its retry-after. */
TEST_IMPL(session_auth_close_replaces_welcome) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, &ccfg, T0), 0);
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  ASSERT_EQ(vigil_session_set_credential(&c->s, "bad", 3), 0);
  flush(c, s, T0);
  ASSERT_EQ(last_event(s)->type, VIGIL_EVENT_OPEN);
  ASSERT_EQ(vigil_session_close(&s->s, VIGIL_CLOSE_AUTH_FAILED, "authentication failed", 10000), 0);
  flush(s, c, T0);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_WELCOME], 0);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_CLOSE], 1);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_OPEN), 0);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(c)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(c)->close_code, VIGIL_CLOSE_AUTH_FAILED);
  ASSERT_UEQ(last_event(c)->retry_after_ms, 10000);
  ASSERT_STR_EQ(c->reason, "authentication failed");
  return 0;
}

static int clamp_case(uint32_t interval, uint32_t timeout, uint32_t max_frame, uint32_t max_message,
                      const vigil_session_config *scfg, vigil_session_info *out) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg;
  vigil_session_info ci;
  client_cfg(&ccfg, interval, timeout);
  ccfg.max_frame = max_frame;
  ccfg.max_message = max_message;
  ASSERT_EQ(open_pair(c, s, &ccfg, scfg), 0);
  *out = info_of(s);
  ci = info_of(c);
  ASSERT_EQ(ci.interval_ms, out->interval_ms);
  ASSERT_EQ(ci.timeout_ms, out->timeout_ms);
  ASSERT_EQ(ci.min_ping_ms, out->min_ping_ms);
  ASSERT_EQ(ci.max_frame, out->max_frame);
  ASSERT_EQ(ci.max_message, out->max_message);
  return 0;
}

TEST_IMPL(session_handshake_clamped) {
  vigil_session_config scfg;
  vigil_session_info i;
  vigil_session_config_init(&scfg);
  scfg.min_interval_ms = 200;
  scfg.max_interval_ms = 5000;
  scfg.max_timeout_ms = 8000;
  scfg.max_frame = 1024;
  scfg.max_message = 4096;
  scfg.min_ping_ms = 900;
  /* Too fast, and a timeout below 2 x interval. */
  ASSERT_EQ(clamp_case(50, 100, 16384, 1u << 20, &scfg, &i), 0);
  ASSERT_EQ(i.interval_ms, 200);
  ASSERT_EQ(i.timeout_ms, 400);
  ASSERT_EQ(i.min_ping_ms, 150); /* policy 900 capped at 3/4 interval */
  ASSERT_EQ(i.max_frame, 1024);
  ASSERT_EQ(i.max_message, 4096);
  /* Too slow; 2 x interval (10 s) beats max_timeout (8 s): timeout > interval
   * must hold, so the lower bound wins. */
  ASSERT_EQ(clamp_case(10000, 60000, 16384, 1u << 20, &scfg, &i), 0);
  ASSERT_EQ(i.interval_ms, 5000);
  ASSERT_EQ(i.timeout_ms, 10000);
  /* In range; the client's smaller sizes win. */
  ASSERT_EQ(clamp_case(1000, 0, 512, 2048, &scfg, &i), 0);
  ASSERT_EQ(i.interval_ms, 1000);
  ASSERT_EQ(i.timeout_ms, 3000);
  ASSERT_EQ(i.min_ping_ms, 750);
  ASSERT_EQ(i.max_frame, 512);
  ASSERT_EQ(i.max_message, 2048);
  /* Timeout above the policy maximum. */
  ASSERT_EQ(clamp_case(1000, 9000, 16384, 1u << 20, &scfg, &i), 0);
  ASSERT_EQ(i.timeout_ms, 8000);
  /* A min_timeout policy above 2 x interval. */
  scfg.min_timeout_ms = 5000;
  ASSERT_EQ(clamp_case(1000, 0, 16384, 1u << 20, &scfg, &i), 0);
  ASSERT_EQ(i.timeout_ms, 5000);
  return 0;
}

/* A timeout of 0 in HELLO means 3 x the interval the server agrees to (not
 * the one proposed), computed without 32-bit overflow; a client whose
 * timeout is unset proposes exactly that. */
TEST_IMPL(session_handshake_timeout_zero_is_three_agreed_intervals) {
  end *e;
  vigil_session_config scfg;
  vigil_session_info i;
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t n;
  vigil_session_config_init(&scfg);
  scfg.min_interval_ms = 200;
  /* Our own client, interval 50 and no timeout: clamped to 200 -> 600. */
  ASSERT_EQ(clamp_case(50, 0, 16384, 1u << 20, &scfg, &i), 0);
  ASSERT_EQ(i.interval_ms, 200);
  ASSERT_EQ(i.timeout_ms, 600);
  /* A hand-made HELLO from another implementation. */
  e = end_new();
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  n = make_hello(hello, 1, 300, 0, 16384, 1u << 20);
  deliver(e, T0, hello, n);
  ASSERT_EQ(e->err, 0);
  ASSERT_EQ(info_of(e).timeout_ms, 900);
  /* 3 x 0x60000000 does not fit 32 bits: the policy maximum, not a wrap. */
  scfg.max_interval_ms = UINT32_MAX;
  scfg.max_timeout_ms = UINT32_MAX;
  e = end_new();
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  n = make_hello(hello, 1, 0x60000000u, 0, 16384, 1u << 20);
  deliver(e, T0, hello, n);
  ASSERT_EQ(e->err, 0);
  ASSERT_UEQ(info_of(e).interval_ms, 0x60000000u);
  ASSERT_UEQ(info_of(e).timeout_ms, UINT32_MAX);
  return 0;
}

TEST_IMPL(session_handshake_refused_version) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_close_frame cf;
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t n;
  vigil_session_config_init(&cfg);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  n = make_hello(hello, 3, 1000, 3000, 16384, 1u << 20);
  deliver(e, T0, hello, n);
  ASSERT_EQ(e->err, VIGIL_EVERSION);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_VERSION);
  cf = written_close(e, T0);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_VERSION);

  /* A v3 HELLO laid out differently (our codec cannot parse it) still gets
   * VERSION, not PROTOCOL_ERROR: magic and version byte are enough. */
  memset(e, 0, sizeof *e);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  {
    static const uint8_t v2[] = {
        VIGIL_FRAME_HELLO, 12, 'V', 'I', 'G', 'L', 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    deliver(e, T0, v2, sizeof v2);
  }
  ASSERT_EQ(e->err, VIGIL_EVERSION);
  cf = written_close(e, T0);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_VERSION);
  return 0;
}

TEST_IMPL(session_handshake_refused_bad_id) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_close_frame cf;
  /* HELLO: magic, version 1, interval 100, timeout 0, max_frame 64,
   * max_message 1, id_len 1, id 0xFF (not UTF-8). The encoder refuses to
   * make it, so it is spelled out. */
  static const uint8_t bad[] = {
      VIGIL_FRAME_HELLO, 11, 'V', 'I', 'G', 'L', 1, 100, 0, 64, 1, 1, 0xFF};
  vigil_session_config_init(&cfg);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  deliver(e, T0, bad, sizeof bad);
  ASSERT_EQ(e->err, VIGIL_EBADID);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_NOT_NULL(last_event(e)->detail);
  cf = written_close(e, T0);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_PROTOCOL_ERROR);
  ASSERT_GT(cf.reason_len, 0);
  return 0;
}

TEST_IMPL(session_handshake_close_instead_of_welcome) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, &ccfg, T0), 0);
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, &scfg, T0), 0);
  flush(c, s, T0);
  ASSERT_EQ(last_event(s)->type, VIGIL_EVENT_OPEN);
  /* The server application looks at the id and says no. */
  ASSERT_EQ(vigil_session_close(&s->s, VIGIL_CLOSE_SERVER_FULL, "full", 5000), 0);
  ASSERT_EQ(vigil_session_close(&s->s, VIGIL_CLOSE_NORMAL, NULL, 0), VIGIL_EALREADY);
  ASSERT_UEQ(vigil_session_deadline(&s->s), VIGIL_NO_DEADLINE);
  flush(s, c, T0 + MS);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_WELCOME], 0); /* the CLOSE replaced it */
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_CLOSE], 1);
  ASSERT_EQ(c->err, 0);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(c)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(c)->close_code, VIGIL_CLOSE_SERVER_FULL);
  ASSERT_EQ(last_event(c)->retry_after_ms, 5000);
  ASSERT_STR_EQ(c->reason, "full");
  ASSERT_EQ(count_events(c, VIGIL_EVENT_OPEN), 0);
  /* The server reports its own end: cause local, with the code it sent. */
  ASSERT_UEQ(vigil_session_deadline(&s->s), 0);
  expire(s, T0 + MS);
  ASSERT_EQ(last_event(s)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(s)->cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(last_event(s)->close_code, VIGIL_CLOSE_SERVER_FULL);
  ASSERT_EQ(last_event(s)->retry_after_ms, 5000);
  ASSERT_UEQ(vigil_session_deadline(&s->s), VIGIL_NO_DEADLINE);
  return 0;
}

TEST_IMPL(session_handshake_timeouts) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_close_frame cf;
  vigil_session_config_init(&cfg);
  cfg.handshake_timeout_ms = 2000;
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 2000 * MS);
  expire(e, T0 + 2000 * MS - 1);
  ASSERT_EQ(e->nev, 0);
  expire(e, T0 + 2000 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_STR_EQ(last_event(e)->detail, "handshake too slow");
  cf = written_close(e, T0 + 2000 * MS);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_HANDSHAKE_TIMEOUT);

  memset(e, 0, sizeof *e);
  client_cfg(&cfg, 1000, 0);
  cfg.handshake_timeout_ms = 2000;
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_CLIENT, &cfg, T0), 0);
  expire(e, T0 + 2000 * MS - 1);
  ASSERT_EQ(e->nev, 0);
  expire(e, T0 + 2000 * MS);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_STR_EQ(last_event(e)->detail, "no answer to HELLO");
  ASSERT_UEQ(last_event(e)->silent_ns, 2000 * MS);
  cf = written_close(e, T0 + 2000 * MS); /* the unsent HELLO is dropped */
  ASSERT_EQ(cf.code, VIGIL_CLOSE_TIMEOUT);
  return 0;
}

TEST_IMPL(session_init_rejects_bad_config) {
  vigil_session s;
  vigil_session_config cfg;
  client_cfg(&cfg, 1000, 0);
  cfg.id_len = 0;
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_CLIENT, &cfg, T0), VIGIL_EINVAL);
  cfg.id = "\xff";
  cfg.id_len = 1;
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_CLIENT, &cfg, T0), VIGIL_EINVAL);
  client_cfg(&cfg, 1000, 1000);
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_CLIENT, &cfg, T0), VIGIL_EINVAL);
  client_cfg(&cfg, 1000, 0);
  cfg.max_frame = 10;
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_CLIENT, &cfg, T0), VIGIL_EINVAL);
  vigil_session_config_init(&cfg);
  cfg.min_interval_ms = 5000;
  cfg.max_interval_ms = 1000;
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, &cfg, T0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_init(&s, (vigil_role)7, &cfg, T0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_init(NULL, VIGIL_ROLE_SERVER, &cfg, T0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, NULL, T0), VIGIL_EINVAL);
  return 0;
}

/* One place for the rules: vigil_session_config_check names the broken
 * rule, and init refuses exactly what it refuses. */
static int check_says(const vigil_session_config *cfg, vigil_role role, const char *want) {
  char why[160];
  vigil_session s;
  int rc = vigil_session_config_check(cfg, role, why, sizeof why);
  if (want == NULL) {
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(why, "");
    ASSERT_EQ(vigil_session_init(&s, role, cfg, T0), 0);
    return 0;
  }
  ASSERT_EQ(rc, VIGIL_EINVAL);
  if (strstr(why, want) == NULL)
    TEST_FAIL_AT("'%s' does not say '%s'", why, want);
  ASSERT_EQ(vigil_session_init(&s, role, cfg, T0), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(session_config_check_names_the_rule) {
  vigil_session_config cfg;
  char tiny[8];
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_CLIENT, NULL), 0);
  client_cfg(&cfg, 1000, 2000);
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_CLIENT, NULL), 0);
  client_cfg(&cfg, 1000, 1999); /* a server would raise it to 2000 */
  ASSERT_EQ(
      check_says(&cfg, VIGIL_ROLE_CLIENT, "timeout 1999ms must be at least 2 x interval 1000ms"),
      0);
  client_cfg(&cfg, 0, 1500); /* the default interval, 1 s */
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_CLIENT, "2 x interval 1000ms"), 0);
  client_cfg(&cfg, 1000, 0);
  cfg.id_len = 0;
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_CLIENT, "id must be 1 to 255 bytes of UTF-8"), 0);
  client_cfg(&cfg, 1000, 0);
  cfg.max_frame = 63;
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_CLIENT, "max_frame must be 64 to 16384 bytes"), 0);
  vigil_session_config_init(&cfg);
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_SERVER, NULL), 0);
  cfg.min_timeout_ms = cfg.max_timeout_ms = 150; /* below 2 x the 100 ms minimum interval */
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_SERVER,
                       "timeout 150ms must be at least 2 x the shortest interval 100ms"),
            0);
  vigil_session_config_init(&cfg);
  cfg.min_interval_ms = 5000;
  cfg.max_interval_ms = 1000;
  ASSERT_EQ(check_says(&cfg, VIGIL_ROLE_SERVER,
                       "interval policy: minimum 5000ms is above maximum 1000ms"),
            0);
  vigil_session_config_init(&cfg);
  cfg.min_timeout_ms = 9000;
  cfg.max_timeout_ms = 8000;
  ASSERT_EQ(
      check_says(&cfg, VIGIL_ROLE_SERVER, "timeout policy: minimum 9000ms is above maximum 8000ms"),
      0);
  /* no room for the text: still refused, NUL-terminated */
  client_cfg(&cfg, 1000, 1500);
  ASSERT_EQ(vigil_session_config_check(&cfg, VIGIL_ROLE_CLIENT, tiny, sizeof tiny), VIGIL_EINVAL);
  ASSERT_EQ(strlen(tiny), sizeof tiny - 1);
  ASSERT_EQ(vigil_session_config_check(&cfg, VIGIL_ROLE_CLIENT, NULL, 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_config_check(NULL, VIGIL_ROLE_CLIENT, NULL, 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_config_check(&cfg, (vigil_role)7, NULL, 0), VIGIL_EINVAL);
  return 0;
}

/* config_init writes the defaults a program (and the CLI) reads, and they
 * are exactly what init applies to a field left 0. */
TEST_IMPL(session_config_init_writes_the_defaults) {
  vigil_session_config d, z;
  vigil_session a, b;
  vigil_session_info ia, ib;
  vigil_session_config_init(&d);
  ASSERT_EQ(d.interval_ms, 1000);
  ASSERT_EQ(d.handshake_timeout_ms, 5000);
  ASSERT_EQ(d.max_frame, 16384);
  ASSERT_EQ(d.max_message, 1u << 20);
  ASSERT_EQ(d.min_interval_ms, 100);
  ASSERT_EQ(d.max_interval_ms, 600000);
  ASSERT_EQ(d.max_timeout_ms, 3600000);
  ASSERT_EQ(d.timeout_ms, 0); /* follows the agreed interval */
  memset(&z, 0, sizeof z);
  z.size = sizeof z; /* zero fields mean the defaults; size names the layout */
  d.id = z.id = "x";
  d.id_len = z.id_len = 1;
  ASSERT_EQ(vigil_session_init(&a, VIGIL_ROLE_CLIENT, &d, T0), 0);
  ASSERT_EQ(vigil_session_init(&b, VIGIL_ROLE_CLIENT, &z, T0), 0);
  vigil_session_get_info(&a, &ia);
  vigil_session_get_info(&b, &ib);
  ASSERT_EQ(ia.interval_ms, ib.interval_ms);
  ASSERT_EQ(ia.timeout_ms, ib.timeout_ms);
  ASSERT_EQ(ia.max_frame, ib.max_frame);
  ASSERT_EQ(ia.max_message, ib.max_message);
  return 0;
}

/* ---- heartbeat ------------------------------------------------------- */

/* Drives one idle round on the client: expire at its deadline, write the
 * ping, and answer it `rtt` later. Returns the PONG event's rtt. */
static int ping_round(end *c, end *s, uint64_t *now, uint64_t rtt, uint64_t *got) {
  uint64_t dl = vigil_session_deadline(&c->s);
  ASSERT_UGE(dl, *now);
  *now = dl;
  expire(c, *now);
  ASSERT(vigil_session_want_write(&c->s));
  ASSERT_EQ(flush(c, s, *now), 2);
  ASSERT_EQ(info_of(c).ping_outstanding, 1);
  ASSERT_UEQ(vigil_session_deadline(&c->s), info_of(c).last_recv_ns + 3000 * MS);
  *now += rtt;
  ASSERT_EQ(flush(s, c, *now), 2); /* the server's PONG */
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_PONG);
  *got = last_event(c)->rtt_ns;
  ASSERT_EQ(info_of(c).ping_outstanding, 0);
  return 0;
}

TEST_IMPL(session_idle_ping_pong_rtt) {
  end *c = end_new(), *s = end_new();
  uint64_t now = T0, rtt, dl;
  vigil_session_info i;
  ASSERT_EQ(open_default_pair(c, s), 0);
  /* Idle: the first ping is due between 3/4 interval and interval. */
  dl = vigil_session_deadline(&c->s);
  ASSERT_UGE(dl, T0 + 750 * MS);
  ASSERT_ULE(dl, T0 + 1000 * MS);
  expire(c, dl - 1);
  ASSERT(!vigil_session_want_write(&c->s));
  ASSERT_EQ(ping_round(c, s, &now, 20 * MS, &rtt), 0);
  ASSERT_UEQ(rtt, 20 * MS);
  i = info_of(c);
  ASSERT_UEQ(i.srtt_ns, 20 * MS);   /* first sample: srtt = r */
  ASSERT_UEQ(i.rttvar_ns, 10 * MS); /* rttvar = r / 2 */
  ASSERT_UEQ(i.last_recv_ns, now);
  ASSERT_EQ(ping_round(c, s, &now, 40 * MS, &rtt), 0);
  ASSERT_UEQ(rtt, 40 * MS);
  i = info_of(c);
  ASSERT_UEQ(i.rttvar_ns, 12500 * 1000); /* 3/4 * 10 + 1/4 * |20 - 40| */
  ASSERT_UEQ(i.srtt_ns, 22500 * 1000);   /* 7/8 * 20 + 1/8 * 40 */
  ASSERT_EQ(ping_round(c, s, &now, 4 * MS, &rtt), 0);
  i = info_of(c);
  ASSERT_UEQ(i.rttvar_ns, (3 * 12500000 + (22500000 - 4000000)) / 4);
  ASSERT_UEQ(i.srtt_ns, (7 * (uint64_t)22500000 + 4000000) / 8);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_DEAD), 0);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_PONG], 3);
  return 0;
}

/* RFC 6298 smoothing is a weighted mean: each sample moves srtt at most 1/8
 * and rttvar at most 1/4 of the way, whatever the sizes. A caller whose
 * clock leaps (a sample of 2^63 ns) must not make the arithmetic wrap. */
/* Deadlines saturate at UINT64_MAX, which means "never" (deadline() says
 * VIGIL_NO_DEADLINE): a clock that reaches the end of time must not convict
 * a peer that has been silent for less than the timeout. (Found by
 * fuzz-session with its end-of-time origin.) */
TEST_IMPL(session_no_early_verdict_at_the_end_of_time) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
  const uint64_t start = UINT64_MAX - 1000 * MS;
  size_t n;
  vigil_session_config_init(&cfg);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, start), 0);
  ASSERT_UEQ(vigil_session_deadline(&e->s), VIGIL_NO_DEADLINE);
  expire(e, UINT64_MAX); /* 1 s into a 5 s handshake */
  ASSERT_EQ(e->nev, 0);
  n = make_hello(hello, 1, 1000, 3000, 16384, 1u << 20);
  deliver(e, start + 500 * MS, hello, n);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_OPEN);
  ASSERT_UEQ(vigil_session_deadline(&e->s), VIGIL_NO_DEADLINE);
  expire(e, UINT64_MAX); /* 0.5 s of a 3 s timeout */
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  ASSERT_EQ(count_events(e, VIGIL_EVENT_DEAD), 0);
  return 0;
}

TEST_IMPL(session_rtt_smoothing_survives_huge_samples) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_session_info first, second;
  uint8_t buf[16];
  size_t taken;
  uint64_t dl;
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(open_client(e, &cfg), 0);
  dl = vigil_session_deadline(&e->s);
  expire(e, dl);
  ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
  deliver(e, dl + ((uint64_t)1 << 63), PONG, 2);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_PONG);
  ASSERT_UEQ(last_event(e)->rtt_ns, (uint64_t)1 << 63); /* reported as measured */
  first = info_of(e);
  ASSERT_UGE(first.srtt_ns, (uint64_t)1 << 40);
  dl = vigil_session_deadline(&e->s);
  expire(e, dl);
  ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
  deliver(e, dl + MS, PONG, 2);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_PONG);
  second = info_of(e);
  ASSERT_UGE(second.srtt_ns, first.srtt_ns - first.srtt_ns / 8);
  ASSERT_ULE(second.srtt_ns, first.srtt_ns);
  ASSERT_UGE(second.rttvar_ns, first.rttvar_ns - first.rttvar_ns / 4);
  return 0;
}

TEST_IMPL(session_rtt_counts_from_write_not_queue) {
  end *c = end_new(), *s = end_new();
  uint64_t dl;
  ASSERT_EQ(open_default_pair(c, s), 0);
  dl = vigil_session_deadline(&c->s);
  expire(c, dl);
  flush(c, s, dl + 30 * MS); /* the caller wrote 30 ms after queueing */
  flush(s, c, dl + 35 * MS);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_PONG);
  ASSERT_UEQ(last_event(c)->rtt_ns, 5 * MS);
  return 0;
}

TEST_IMPL(session_busy_connection_sends_no_pings) {
  end *c = end_new(), *s = end_new();
  int step;
  uint8_t buf[256];
  size_t taken;
  ASSERT_EQ(open_default_pair(c, s), 0);
  for (step = 1; step <= 200; step++) { /* 100 intervals, a message every interval / 2 */
    long n;
    uint64_t now = T0 + (uint64_t)step * 500 * MS;
    expire(c, now);
    expire(s, now);
    n = vigil_session_write(&c->s, now, buf, sizeof buf, (const uint8_t *)"c", 1, &taken);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(taken, 1);
    count_frames(c, buf, (size_t)n);
    deliver(s, now, buf, (size_t)n);
    n = vigil_session_write(&s->s, now, buf, sizeof buf, (const uint8_t *)"s", 1, &taken);
    ASSERT_EQ(n, 3);
    count_frames(s, buf, (size_t)n);
    deliver(c, now, buf, (size_t)n);
    ASSERT_UGE(vigil_session_deadline(&c->s), now + 750 * MS);
    ASSERT_UGE(vigil_session_deadline(&s->s), now + 750 * MS);
  }
  ASSERT_EQ(c->frames_out[VIGIL_FRAME_PING], 0);
  ASSERT_EQ(s->frames_out[VIGIL_FRAME_PING], 0);
  ASSERT_EQ(c->messages, 200);
  ASSERT_EQ(s->messages, 200);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_DEAD), 0);
  ASSERT_EQ(count_events(s, VIGIL_EVENT_DEAD), 0);
  return 0;
}

TEST_IMPL(session_silence_dead_exactly_at_timeout) {
  end *c = end_new(), *s = end_new();
  const uint64_t dead_at = T0 + 3000 * MS;
  uint64_t dl;
  vigil_close_frame cf;
  vigil_event ev;
  ASSERT_EQ(open_default_pair(c, s), 0);
  /* The server vanishes. The client pings, hears nothing. */
  dl = vigil_session_deadline(&c->s);
  expire(c, dl);
  ASSERT_EQ(c->nev, 1); /* just the OPEN */
  flush(c, s, dl);      /* the ping goes into the void: s never answers */
  ASSERT_UEQ(vigil_session_deadline(&c->s), dead_at);
  expire(c, dead_at - 1);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_OPEN);
  ASSERT_EQ(info_of(c).state, VIGIL_SESSION_OPEN);
  expire(c, dead_at);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(c)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_UEQ(last_event(c)->silent_ns, 3000 * MS);
  ASSERT_EQ(last_event(c)->close_code, VIGIL_CLOSE_TIMEOUT);
  ASSERT_UEQ(vigil_session_deadline(&c->s), VIGIL_NO_DEADLINE);
  cf = written_close(c, dead_at);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_TIMEOUT);
  ASSERT_EQ(vigil_session_expire(&c->s, dead_at + 1, &ev), VIGIL_ECLOSED);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  return 0;
}

TEST_IMPL(session_dribbler_dies_at_timeout) {
  end *e = end_new();
  static const uint8_t hdr[] = {VIGIL_FRAME_DATA, 0xE8, 0x07}; /* 1000-byte chunk */
  uint8_t byte = 'x';
  int i;
  ASSERT_EQ(open_default_server(e), 0);
  deliver(e, T0 + 100 * MS, hdr, sizeof hdr);
  for (i = 2; i < 30; i++) { /* one byte every 100 ms, never finishing */
    uint64_t now = T0 + (uint64_t)i * 100 * MS;
    deliver(e, now, &byte, 1);
    ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DATA);
    ASSERT_EQ(last_event(e)->len, 1);
    expire(e, now);
    ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
    ASSERT_UEQ(info_of(e).last_recv_ns, T0); /* bytes are not liveness */
  }
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 3000 * MS);
  deliver(e, T0 + 3000 * MS - 1, &byte, 1);
  expire(e, T0 + 3000 * MS - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, T0 + 3000 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_UEQ(last_event(e)->silent_ns, 3000 * MS);
  return 0;
}

/* ---- message deadline ------------------------------------------------ */

/* One DATA_MORE chunk of n bytes ('m'), or the final DATA chunk. */
static void send_chunk(end *e, uint64_t now, int more, uint32_t n) {
  static uint8_t body[1024];
  uint8_t hdr[8];
  int h = vigil_wire_encode_data_header(hdr, sizeof hdr, more, n);
  memset(body, 'm', sizeof body);
  deliver(e, now, hdr, (size_t)h);
  deliver(e, now, body, n);
}

/* The attack on virtual time: most of a message in DATA_MORE
 * chunks, a ping at every legal spacing so liveness never lapses, never
 * the last chunk. The default deadline is the agreed timeout plus
 * max_message at 16 KiB/s: 3000 + 64000 ms for 1 MiB. */
TEST_IMPL(session_message_deadline_default_closes_half_sent) {
  end *e = end_new();
  vigil_close_frame cf;
  uint64_t start = T0 + 10 * MS, at, now;
  ASSERT_EQ(open_default_server(e), 0);
  ASSERT_EQ(info_of(e).message_timeout_ms, 3000 + 64000);
  send_chunk(e, start, 1, 1000);
  at = start + 67000 * MS;
  for (now = start + 500 * MS; now < at; now += 500 * MS) {
    deliver(e, now, PING, sizeof PING);
    send_chunk(e, now, 1, 8);
    expire(e, now);
    ASSERT_EQ(e->err, 0);
    ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  }
  ASSERT_UEQ(info_of(e).last_recv_ns, at - 500 * MS); /* alive all along */
  ASSERT_UEQ(vigil_session_deadline(&e->s), at);      /* before any ping or verdict */
  expire(e, at - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, at);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_POLICY);
  ASSERT_STR_EQ(last_event(e)->detail, "message not finished within the message deadline");
  cf = written_close(e, at);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_POLICY);
  ASSERT_EQ(cf.reason_len, strlen("message not finished within the message deadline"));
  ASSERT_EQ(memcmp(cf.reason, "message not finished within the message deadline", cf.reason_len),
            0);
  return 0;
}

/* A configured deadline; it starts with a message's first DATA_MORE and is
 * cleared by its last chunk, so each message gets the whole of it; a
 * single-chunk message needs none. */
TEST_IMPL(session_message_deadline_per_message) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_session_config_init(&cfg);
  cfg.message_timeout_ms = 2000;
  ASSERT_EQ(open_server(e, &cfg), 0);
  ASSERT_EQ(info_of(e).message_timeout_ms, 2000);
  send_chunk(e, T0 + 10 * MS, 0, 100); /* a whole message in one chunk */
  ASSERT_EQ(e->messages, 1);
  deliver(e, T0 + 1000 * MS, PING, sizeof PING);
  deliver(e, T0 + 2000 * MS, PING, sizeof PING);
  expire(e, T0 + 2500 * MS);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  send_chunk(e, T0 + 2600 * MS, 1, 100); /* begins: due at T0 + 4600 */
  send_chunk(e, T0 + 4400 * MS, 1, 100); /* later chunks do not move it */
  send_chunk(e, T0 + 4500 * MS, 0, 100); /* finished in time: cleared */
  ASSERT_EQ(e->messages, 2);
  expire(e, T0 + 4600 * MS);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  send_chunk(e, T0 + 4700 * MS, 1, 0); /* an empty first chunk begins one too */
  deliver(e, T0 + 5500 * MS, PING, sizeof PING);
  deliver(e, T0 + 6500 * MS, PING, sizeof PING);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 6700 * MS);
  expire(e, T0 + 6700 * MS - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, T0 + 6700 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(e->messages, 2);
  return 0;
}

/* The client enforces it on the server's messages too; a local stall gives
 * the peer at least one interval more (we were not reading). */
TEST_IMPL(session_message_deadline_client_and_stall) {
  end *e = end_new();
  vigil_session_config cfg;
  client_cfg(&cfg, 1000, 0);
  cfg.message_timeout_ms = 1500;
  ASSERT_EQ(open_client(e, &cfg), 0);
  ASSERT_EQ(info_of(e).message_timeout_ms, 1500);
  send_chunk(e, T0, 1, 500);
  deliver(e, T0 + 700 * MS, PONG, sizeof PONG);
  vigil_session_stalled(&e->s, T0 + 1400 * MS);
  expire(e, T0 + 1500 * MS);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  deliver(e, T0 + 2000 * MS, PONG, sizeof PONG);
  expire(e, T0 + 2400 * MS - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, T0 + 2400 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_POLICY);
  return 0;
}

TEST_IMPL(session_ping_flood) {
  end *e = end_new();
  vigil_close_frame cf;
  uint64_t now = T0 + 1000 * MS;
  int i;
  ASSERT_EQ(open_default_server(e), 0); /* min_ping 500 ms */
  deliver(e, now, PING, 2);             /* first ping: legal */
  ASSERT_EQ(info_of(e).strikes, 0);
  for (i = 1; i <= 2; i++) {
    now += 100 * MS;
    deliver(e, now, PING, 2);
    ASSERT_EQ(info_of(e).strikes, i);
  }
  now += 500 * MS; /* legal spacing forgives one strike */
  deliver(e, now, PING, 2);
  ASSERT_EQ(info_of(e).strikes, 1);
  ASSERT_EQ(e->err, 0);
  for (i = 2; i <= VIGIL_PING_STRIKES; i++) {
    now += 499 * MS;
    deliver(e, now, PING, 2);
    ASSERT_EQ(info_of(e).strikes, i);
    ASSERT_EQ(e->err, 0);
  }
  now += 1 * MS;
  deliver(e, now, PING, 2);
  ASSERT_EQ(e->err, VIGIL_EPOLICY);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_PING_FLOOD);
  ASSERT_EQ(last_event(e)->retry_after_ms, 3000);
  cf = written_close(e, now); /* the CLOSE goes out alone: no owed pongs */
  ASSERT_EQ(cf.code, VIGIL_CLOSE_PING_FLOOD);
  ASSERT_EQ(cf.retry_after_ms, 3000);
  return 0;
}

TEST_IMPL(session_ping_flood_client_side) {
  end *e = end_new();
  vigil_session_config cfg;
  uint64_t now = T0;
  int i;
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(open_client(e, &cfg), 0);
  for (i = 0; i <= VIGIL_PING_STRIKES + 1; i++) {
    now += 10 * MS;
    deliver(e, now, PING, 2);
  }
  ASSERT_EQ(e->err, VIGIL_EPOLICY);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_PING_FLOOD);
  return 0;
}

TEST_IMPL(session_pongs_answer_pings_capped) {
  end *e = end_new();
  uint8_t buf[256];
  size_t taken;
  long n;
  int i;
  ASSERT_EQ(open_default_server(e), 0);
  n = vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken); /* WELCOME */
  ASSERT_GT(n, 0);
  for (i = 0; i < 3; i++)
    deliver(e, T0 + (uint64_t)(i + 1) * 600 * MS, PING, 2);
  ASSERT(vigil_session_want_write(&e->s));
  n = vigil_session_write(&e->s, T0 + 2000 * MS, buf, sizeof buf, NULL, 0, &taken);
  ASSERT_EQ(n, 6);
  ASSERT_MEM_EQ(buf, "\x04\x00\x04\x00\x04\x00", 6);
  /* A cap too small for one more frame writes what fits, then the rest. */
  deliver(e, T0 + 2600 * MS, PING, 2);
  deliver(e, T0 + 3200 * MS, PING, 2);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 3200 * MS, buf, 3, NULL, 0, &taken), 2);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 3200 * MS, buf, 3, NULL, 0, &taken), 2);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 3200 * MS, buf, 3, NULL, 0, &taken), 0);
  /* Ten pings at legal spacing while we do not write: one PONG answers
   * every ping before it (TCP is ordered), so at most
   * VIGIL_PING_STRIKES + 1 = 4 are owed. */
  for (i = 0; i < 10; i++)
    deliver(e, T0 + (uint64_t)(i + 6) * 600 * MS, PING, 2);
  ASSERT_EQ(e->err, 0);
  n = vigil_session_write(&e->s, T0 + 9600 * MS, buf, sizeof buf, NULL, 0, &taken);
  ASSERT_EQ(n, 2 * (VIGIL_PING_STRIKES + 1));
  ASSERT_MEM_EQ(buf, "\x04\x00\x04\x00\x04\x00\x04\x00", 8);
  ASSERT(!vigil_session_want_write(&e->s));
  return 0;
}

TEST_IMPL(session_unsolicited_pong) {
  end *e = end_new();
  vigil_session_info i;
  ASSERT_EQ(open_default_server(e), 0);
  deliver(e, T0 + 500 * MS, PONG, 2);
  ASSERT_EQ(e->err, 0);
  ASSERT_EQ(e->nev, 1); /* just the OPEN */
  i = info_of(e);
  ASSERT_UEQ(i.last_recv_ns, T0 + 500 * MS);
  ASSERT_UEQ(i.srtt_ns, 0);
  ASSERT_EQ(i.state, VIGIL_SESSION_OPEN);
  return 0;
}

/* ---- pings on schedule (a probe) -------------------------------------- */

/* A busy link: the server sends a message every 100 ms (and pings when it
 * is idle itself), so the client is never receive-idle. A normal client would
 * never ping (session_busy_connection_sends_no_pings); a scheduled one pings
 * at OPEN and then exactly every interval after each write, and every ping
 * is answered with an RTT. This is `vigil probe` against `vigil serve`. */
TEST_IMPL(session_schedule_pings_every_interval_when_busy) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  uint8_t buf[256];
  size_t taken;
  uint64_t now = T0, last_ping = 0;
  int pings = 0;
  client_cfg(&ccfg, 1000, 0);
  ccfg.ping_on_schedule = 1;
  vigil_session_config_init(&scfg);
  ASSERT_EQ(open_pair(c, s, &ccfg, &scfg), 0);
  ASSERT(vigil_session_want_write(&c->s));  /* the first ping, at once */
  for (int step = 0; step <= 100; step++) { /* 10 s in 100 ms steps */
    long n;
    now = T0 + (uint64_t)step * 100 * MS;
    expire(c, now);
    expire(s, now);
    flush(c, s, now);
    if (c->frames_out[VIGIL_FRAME_PING] != pings) {
      /* one ping went out, exactly an interval after the previous one */
      ASSERT_EQ(c->frames_out[VIGIL_FRAME_PING], pings + 1);
      if (pings > 0)
        ASSERT_UEQ(now, last_ping + 1000 * MS);
      last_ping = now;
      pings++;
    }
    n = vigil_session_write(&s->s, now, buf, sizeof buf, (const uint8_t *)"s", 1, &taken);
    ASSERT_GT(n, 0);
    deliver(c, now + MS, buf, (size_t)n); /* data, and the pong 1 ms later */
    ASSERT_EQ(c->err, 0);
    ASSERT_EQ(info_of(c).ping_outstanding, 0);
  }
  ASSERT_EQ(pings, 11); /* at 0, 1, ..., 10 s */
  ASSERT_EQ(count_events(c, VIGIL_EVENT_PONG), 11);
  ASSERT_UEQ(info_of(c).srtt_ns, MS);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_DEAD), 0);
  ASSERT_EQ(count_events(s, VIGIL_EVENT_DEAD), 0);
  return 0;
}

/* One ping outstanding: a pong later than the interval holds the next ping
 * back until it arrives, and then the next goes out at once. */
TEST_IMPL(session_schedule_one_outstanding) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t buf[64];
  size_t taken;
  client_cfg(&cfg, 1000, 0);
  cfg.ping_on_schedule = 1;
  ASSERT_EQ(open_client(e, &cfg), 0);
  ASSERT_EQ(vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken), 2);
  ASSERT_EQ(buf[0], VIGIL_FRAME_PING);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 3000 * MS); /* only the verdict */
  deliver(e, T0 + 500 * MS, PING, 2);                        /* busy: its ping */
  expire(e, T0 + 1000 * MS);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 1000 * MS, buf, sizeof buf, NULL, 0, &taken), 2);
  ASSERT_EQ(buf[0], VIGIL_FRAME_PONG); /* the pong it is owed, no second ping */
  ASSERT_EQ(info_of(e).ping_outstanding, 1);
  deliver(e, T0 + 1500 * MS, PONG, 2);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_PONG);
  ASSERT_UEQ(last_event(e)->rtt_ns, 1500 * MS);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 1000 * MS); /* overdue: now */
  expire(e, T0 + 1500 * MS);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 1500 * MS, buf, sizeof buf, NULL, 0, &taken), 2);
  ASSERT_EQ(buf[0], VIGIL_FRAME_PING);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 4500 * MS);
  deliver(e, T0 + 1510 * MS, PONG, 2);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 2500 * MS);
  return 0;
}

/* Scheduled pings do not change the verdict: a peer that goes silent is
 * dead exactly `timeout` after its last frame, not before, and the one
 * unanswered ping is not repeated meanwhile. */
TEST_IMPL(session_schedule_verdict_never_early) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t buf[64];
  size_t taken;
  uint64_t t;
  client_cfg(&cfg, 1000, 0);
  cfg.ping_on_schedule = 1;
  ASSERT_EQ(open_client(e, &cfg), 0);
  ASSERT_EQ(vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken), 2);
  deliver(e, T0 + 200 * MS, PONG, 2); /* then silence */
  for (t = T0 + 200 * MS; t < T0 + 3200 * MS; t += 50 * MS) {
    expire(e, t);
    while (vigil_session_write(&e->s, t, buf, sizeof buf, NULL, 0, &taken) > 0)
      e->frames_out[buf[0] & 7]++;
    ASSERT_EQ(count_events(e, VIGIL_EVENT_DEAD), 0);
  }
  ASSERT_EQ(e->frames_out[VIGIL_FRAME_PING], 1); /* at T0 + 1 s, never again */
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 3200 * MS);
  expire(e, T0 + 3200 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_UEQ(last_event(e)->silent_ns, 3000 * MS);
  return 0;
}

/* ---- data ------------------------------------------------------------ */

TEST_IMPL(session_mib_message_chunked_with_pong_between) {
  end *c = end_new(), *s = end_new();
  enum { total = 1u << 20 };
  static uint8_t msg[total], got[total], out[40000];
  size_t sent = 0, taken, i;
  uint64_t now = T0;
  int chunks = 0, pong_first = 0;
  vigil_frame f;
  s->msg = got;
  s->msg_cap = total;
  for (i = 0; i < total; i++)
    msg[i] = (uint8_t)(i * 2654435761u >> 24);
  ASSERT_EQ(open_default_pair(c, s), 0);
  while (sent < total) {
    now += MS;
    if (chunks == 10) {
      /* The server's loop froze for 2.5 s mid-transfer, its verdict is
       * near: it wants proof of life. */
      now += 2500 * MS;
      vigil_session_stalled(&s->s, now);
      ASSERT_EQ(flush(s, c, now), 2);
      ASSERT_EQ(s->frames_out[VIGIL_FRAME_PING], 1);
    }
    long n = vigil_session_write(&c->s, now, out, 40000, msg + sent, total - sent, &taken);
    ASSERT_GT(n, 0);
    ASSERT_EQ(vigil_wire_decode(out, (size_t)n, VIGIL_WIRE_MAX_CHUNK, &f) > 0, 1);
    if (f.type == VIGIL_FRAME_PONG)
      pong_first = chunks; /* the PONG went first, ahead of this chunk */
    ASSERT_LE(taken, 16384);
    sent += taken;
    chunks++;
    count_frames(c, out, (size_t)n);
    deliver(s, now, out, (size_t)n);
    ASSERT_EQ(s->err, 0);
  }
  ASSERT_EQ(chunks, 64);
  ASSERT_EQ(pong_first, 10);
  ASSERT_EQ(c->frames_out[VIGIL_FRAME_PONG], 1);
  ASSERT_EQ(c->frames_out[VIGIL_FRAME_DATA_MORE], 63);
  ASSERT_EQ(c->frames_out[VIGIL_FRAME_DATA], 1);
  ASSERT_EQ(count_events(s, VIGIL_EVENT_PONG), 1);
  ASSERT_EQ(s->messages, 1);
  ASSERT_EQ(s->msg_len, total);
  ASSERT_MEM_EQ(s->msg, msg, total);
  return 0;
}

TEST_IMPL(session_data_streams_before_chunk_ends) {
  end *e = end_new();
  uint8_t frame[8] = {VIGIL_FRAME_DATA, 5, 'h', 'e', 'l', 'l', 'o'};
  vigil_event ev;
  long r;
  ASSERT_EQ(open_default_server(e), 0);
  r = vigil_session_recv(&e->s, T0 + 10 * MS, frame, 2, &ev); /* the header alone */
  ASSERT_EQ(r, 2);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  r = vigil_session_recv(&e->s, T0 + 10 * MS, frame + 2, 2, &ev);
  ASSERT_EQ(r, 2);
  ASSERT_EQ(ev.type, VIGIL_EVENT_DATA);
  ASSERT_EQ(ev.len, 2);
  ASSERT_EQ(ev.end_of_message, 0);
  ASSERT_UEQ(info_of(e).last_recv_ns, T0); /* half a chunk proves nothing */
  r = vigil_session_recv(&e->s, T0 + 20 * MS, frame + 4, 3, &ev);
  ASSERT_EQ(r, 3);
  ASSERT_EQ(ev.len, 3);
  ASSERT_EQ(ev.end_of_message, 1);
  ASSERT_MEM_EQ(ev.data, "llo", 3);
  ASSERT_UEQ(info_of(e).last_recv_ns, T0 + 20 * MS);
  /* An empty message is one empty final chunk. */
  frame[1] = 0;
  r = vigil_session_recv(&e->s, T0 + 30 * MS, frame, 2, &ev);
  ASSERT_EQ(r, 2);
  ASSERT_EQ(ev.type, VIGIL_EVENT_DATA);
  ASSERT_EQ(ev.len, 0);
  ASSERT_EQ(ev.end_of_message, 1);
  return 0;
}

TEST_IMPL(session_max_message_enforced) {
  end *e = end_new(), *c = end_new(), *s = end_new();
  vigil_session_config cfg;
  vigil_close_frame cf;
  uint8_t hdr[8], big[2000], out[4096];
  size_t taken;
  int h;
  vigil_session_config_init(&cfg);
  cfg.max_message = 1000;
  ASSERT_EQ(open_server(e, &cfg), 0);
  ASSERT_EQ(info_of(e).max_message, 1000);
  memset(big, 'b', sizeof big);
  h = vigil_wire_encode_data_header(hdr, sizeof hdr, 1, 600);
  deliver(e, T0 + MS, hdr, (size_t)h);
  deliver(e, T0 + MS, big, 600);
  ASSERT_EQ(e->err, 0);
  h = vigil_wire_encode_data_header(hdr, sizeof hdr, 0, 401); /* 1001 in all */
  deliver(e, T0 + 2 * MS, hdr, (size_t)h);
  ASSERT_EQ(e->err, VIGIL_EMSGTOOBIG);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(last_event(e)->close_code, VIGIL_CLOSE_TOO_BIG);
  cf = written_close(e, T0 + 2 * MS);
  ASSERT_EQ(cf.code, VIGIL_CLOSE_TOO_BIG);

  /* Sending side: the agreed limit is checked before a byte goes out. */
  {
    vigil_session_config ccfg;
    client_cfg(&ccfg, 1000, 0);
    ASSERT_EQ(open_pair(c, s, &ccfg, &cfg), 0);
  }
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, big, 1001, &taken), VIGIL_EMSGSIZE);
  ASSERT_EQ(taken, 0);
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, big, 1000, &taken), 1003);
  ASSERT_EQ(taken, 1000);
  return 0;
}

/* max_message bounds each message, not the connection: both byte counts
 * restart after the chunk that ends a message. Mid-message, the rest the
 * caller offers is checked against what the message has left. */
TEST_IMPL(session_max_message_counts_per_message) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  static uint8_t msg[1000];
  uint8_t out[700];
  size_t taken;
  long n;
  int round;
  memset(msg, 'm', sizeof msg);
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  scfg.max_message = 1000;
  ASSERT_EQ(open_pair(c, s, &ccfg, &scfg), 0);
  for (round = 1; round <= 3; round++) { /* three full-size messages in a row */
    n = vigil_session_write(&c->s, T0, out, sizeof out, msg, sizeof msg, &taken);
    ASSERT_EQ(taken, 696); /* 700 - 4: room for the largest header */
    ASSERT_EQ(out[0], VIGIL_FRAME_DATA_MORE);
    deliver(s, T0, out, (size_t)n);
    n = vigil_session_write(&c->s, T0, out, sizeof out, msg + 696, 304, &taken);
    ASSERT_EQ(taken, 304);
    ASSERT_EQ(out[0], VIGIL_FRAME_DATA);
    deliver(s, T0, out, (size_t)n);
    ASSERT_EQ(s->err, 0);
    ASSERT_EQ(s->messages, round);
  }
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, msg, sizeof msg, &taken), 696 + 3);
  ASSERT_EQ(taken, 696);
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, msg, 305, &taken), VIGIL_EMSGSIZE);
  ASSERT_EQ(taken, 0);
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, msg, 304, &taken), 304 + 3);
  return 0;
}

/* Both sides send chunks no larger than the agreed max_frame, which may be
 * below what either proposed (the server's 1024 against the client's
 * 16384); the receiver would close a larger one with TOO_BIG. */
TEST_IMPL(session_chunks_respect_agreed_max_frame) {
  end *c = end_new(), *s = end_new();
  vigil_session_config ccfg, scfg;
  static uint8_t msg[3000], out[20000];
  end *ends[2];
  size_t taken, sent;
  long n;
  int k, chunks;
  memset(msg, 'f', sizeof msg);
  client_cfg(&ccfg, 1000, 0);
  vigil_session_config_init(&scfg);
  scfg.max_frame = 1024;
  ASSERT_EQ(open_pair(c, s, &ccfg, &scfg), 0);
  ASSERT_EQ(info_of(c).max_frame, 1024);
  ends[0] = c;
  ends[1] = s;
  for (k = 0; k < 2; k++) {
    end *from = ends[k], *to = ends[1 - k];
    for (sent = 0, chunks = 0; sent < sizeof msg; sent += taken, chunks++) {
      n = vigil_session_write(&from->s, T0, out, sizeof out, msg + sent, sizeof msg - sent, &taken);
      ASSERT_GT(n, 0);
      ASSERT_LE(taken, 1024);
      deliver(to, T0, out, (size_t)n);
      ASSERT_EQ(to->err, 0);
    }
    ASSERT_EQ(chunks, 3);
    ASSERT_EQ(to->messages, 1);
  }
  return 0;
}

TEST_IMPL(session_chunk_larger_than_max_frame) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t hdr[8];
  int h;
  vigil_session_config_init(&cfg);
  cfg.max_frame = 1024;
  ASSERT_EQ(open_server(e, &cfg), 0);
  h = vigil_wire_encode_data_header(hdr, sizeof hdr, 0, 1025);
  deliver(e, T0 + MS, hdr, (size_t)h);
  ASSERT_EQ(e->err, VIGIL_EFRAMESIZE);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(written_close(e, T0 + MS).code, VIGIL_CLOSE_TOO_BIG);
  return 0;
}

TEST_IMPL(session_write_chunk_fits_cap) {
  end *c = end_new(), *s = end_new();
  uint8_t out[300], msg[1000];
  size_t taken;
  memset(msg, 'm', sizeof msg);
  ASSERT_EQ(open_default_pair(c, s), 0);
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, sizeof out, msg, sizeof msg, &taken), 296 + 3);
  ASSERT_EQ(taken, 296);
  ASSERT_EQ(out[0], VIGIL_FRAME_DATA_MORE);
  /* Too little room for a worthwhile chunk: nothing, not a 1-byte frame. */
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, 40, msg, sizeof msg, &taken), 0);
  ASSERT_EQ(taken, 0);
  /* Unless it finishes the message. */
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, 40, msg, 3, &taken), 5);
  ASSERT_EQ(out[0], VIGIL_FRAME_DATA);
  /* No DATA before the handshake is done. */
  {
    vigil_session_config cfg;
    vigil_session x;
    client_cfg(&cfg, 1000, 0);
    ASSERT_EQ(vigil_session_init(&x, VIGIL_ROLE_CLIENT, &cfg, T0), 0);
    ASSERT_GT(vigil_session_write(&x, T0, out, sizeof out, msg, 3, &taken), 0);
    ASSERT_EQ(taken, 0);
    ASSERT_EQ(out[0], VIGIL_FRAME_HELLO);
  }
  return 0;
}

/* ---- jitter, stalls, adaptive mode ---------------------------------- */

static int idle_periods(uint32_t seed, uint64_t *periods, int count) {
  end *e = end_new();
  vigil_session_config cfg;
  int i;
  client_cfg(&cfg, 1000, 0);
  cfg.seed = seed;
  ASSERT_EQ(open_client(e, &cfg), 0);
  for (i = 0; i < count; i++) {
    uint64_t last = info_of(e).last_recv_ns;
    uint64_t dl = vigil_session_deadline(&e->s);
    periods[i] = dl - last;
    expire(e, dl);
    ASSERT(vigil_session_want_write(&e->s));
    {
      uint8_t buf[16];
      size_t taken;
      ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
    }
    deliver(e, dl + MS, PONG, 2);
    ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_PONG);
  }
  return 0;
}

TEST_IMPL(session_jitter_bounds_and_seeds) {
  static uint64_t a[500], b[500];
  uint64_t lo = UINT64_MAX, hi = 0;
  int i, differ = 0;
  ASSERT_EQ(idle_periods(1, a, 500), 0);
  ASSERT_EQ(idle_periods(2, b, 500), 0);
  for (i = 0; i < 500; i++) {
    ASSERT_UGE(a[i], 750 * MS);
    ASSERT_ULE(a[i], 1000 * MS);
    lo = a[i] < lo ? a[i] : lo;
    hi = a[i] > hi ? a[i] : hi;
    differ += a[i] != b[i];
  }
  /* 500 draws over 251 values: the spread must cover most of the range. */
  ASSERT_ULE(lo, 760 * MS);
  ASSERT_UGE(hi, 990 * MS);
  ASSERT_GT(differ, 450);
  return 0;
}

TEST_IMPL(session_stall_reprobes_instead_of_convicting) {
  end *e = end_new();
  vigil_session_config cfg;
  uint64_t dl, now;
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(open_client(e, &cfg), 0);
  dl = vigil_session_deadline(&e->s);
  expire(e, dl);
  {
    uint8_t buf[16];
    size_t taken;
    ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
  }
  /* Our loop froze for 10 s: the verdict is long overdue, but the silence
   * was ours. */
  now = T0 + 10000 * MS;
  vigil_session_stalled(&e->s, now);
  ASSERT(vigil_session_want_write(&e->s));
  ASSERT_EQ(info_of(e).ping_outstanding, 0);
  ASSERT_UEQ(vigil_session_deadline(&e->s), now + 1000 * MS);
  expire(e, now);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  /* The answer to the pre-stall ping is late and counts as unsolicited; it
   * still proves life and makes the queued re-probe moot. */
  deliver(e, now + 500 * MS, PONG, 2);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_OPEN);
  ASSERT(!vigil_session_want_write(&e->s));
  ASSERT_UEQ(info_of(e).last_recv_ns, now + 500 * MS);
  /* Stall again, and this time nobody answers: dead one interval later. */
  now += 20000 * MS;
  vigil_session_stalled(&e->s, now);
  {
    uint8_t buf[16];
    size_t taken;
    ASSERT_EQ(vigil_session_write(&e->s, now, buf, sizeof buf, NULL, 0, &taken), 2);
    ASSERT_EQ(buf[0], VIGIL_FRAME_PING);
  }
  expire(e, now + 1000 * MS - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, now + 1000 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  return 0;
}

/* A loaded server's loop stalls for half a second now and then while its
 * peers are heard well within the timeout. Such a stall cost them nothing,
 * so it must not ping them: re-probing every connection on every stall was
 * ~10 pings per connection a minute at 346,000 connections (issue 11). A
 * stall near the verdict, or with a ping in flight, still re-probes. */
TEST_IMPL(session_stall_far_from_verdict_sends_nothing) {
  end *e = end_new();
  uint8_t buf[64];
  size_t taken;
  uint64_t now = T0, dl;
  int i;
  ASSERT_EQ(open_default_server(e), 0); /* interval 1 s, timeout 3 s */
  /* The WELCOME out first; then 60 s of the peer every 500 ms, our stall
   * in between. */
  while (vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken) > 0)
    continue;
  for (i = 1; i <= 120; i++) {
    long n;
    now = T0 + (uint64_t)i * 500 * MS;
    deliver(e, now, PONG, sizeof PONG);
    dl = vigil_session_deadline(&e->s);
    vigil__session_stalled_lazy(&e->s, now + 250 * MS);
    ASSERT_UEQ(vigil_session_deadline(&e->s), dl);
    expire(e, now + 250 * MS);
    n = vigil_session_write(&e->s, now + 250 * MS, buf, sizeof buf, NULL, 0, &taken);
    ASSERT_GE(n, 0);
    count_frames(e, buf, (size_t)n);
  }
  ASSERT_EQ(e->frames_out[VIGIL_FRAME_PING], 0);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  /* 2.5 s of silence: the verdict is 0.5 s away, less than an interval. */
  now += 2500 * MS;
  vigil__session_stalled_lazy(&e->s, now);
  ASSERT(vigil_session_want_write(&e->s));
  ASSERT_UEQ(vigil_session_deadline(&e->s), now + 1000 * MS);
  ASSERT_EQ(vigil_session_write(&e->s, now, buf, sizeof buf, NULL, 0, &taken), 2);
  ASSERT_EQ(buf[0], VIGIL_FRAME_PING);
  /* Heard again at once, then stalls while our next ping is in flight (a
   * peer starved of CPU is slow to answer): it stays the one ping in
   * flight, and its pong, whose time includes our stall, is no RTT sample.
   * Re-asking on each stall sent 15 million pings to 980,000 connections
   * in 7 minutes. */
  deliver(e, now + 10 * MS, PONG, sizeof PONG);
  dl = vigil_session_deadline(&e->s); /* the idle ping */
  expire(e, dl);
  ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
  ASSERT_EQ(info_of(e).ping_outstanding, 1);
  for (i = 1; i <= 3; i++) {
    vigil__session_stalled_lazy(&e->s, dl + (uint64_t)i * 200 * MS);
    ASSERT_EQ(info_of(e).ping_outstanding, 1);
    ASSERT(!vigil_session_want_write(&e->s));
  }
  i = e->nev;
  deliver(e, dl + 700 * MS, PONG, sizeof PONG);
  ASSERT_EQ(e->nev, i); /* no PONG event, no sample */
  ASSERT_EQ(info_of(e).ping_outstanding, 0);
  ASSERT_UEQ(info_of(e).last_recv_ns, dl + 700 * MS);
  /* The next ping is measured again. */
  dl = vigil_session_deadline(&e->s);
  expire(e, dl);
  ASSERT_EQ(vigil_session_write(&e->s, dl, buf, sizeof buf, NULL, 0, &taken), 2);
  deliver(e, dl + 30 * MS, PONG, sizeof PONG);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_PONG);
  ASSERT_UEQ(last_event(e)->rtt_ns, 30 * MS);
  return 0;
}

TEST_IMPL(session_phi_mode_verdict_timing) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_phi phi;
  uint64_t now = T0, last, dl;
  int i;
  vigil_session_config_init(&cfg);
  vigil_phi_init(&phi, 8.0, 1000, 0);
  cfg.phi = &phi;
  {
    uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
    size_t n = make_hello(hello, 1, 1000, 20000, 16384, 1u << 20);
    ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
    deliver(e, T0, hello, n);
    ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_OPEN);
  }
  ASSERT_EQ(info_of(e).timeout_ms, 20000);
  /* A steady peer: a frame every 900 ms. */
  for (i = 0; i < 40; i++) {
    now += 900 * MS;
    deliver(e, now, PONG, 2);
  }
  last = info_of(e).last_recv_ns;
  dl = vigil_session_deadline(&e->s);
  /* The next deadline is a ping; step through deadlines until the verdict. */
  while (info_of(e).state == VIGIL_SESSION_OPEN) {
    dl = vigil_session_deadline(&e->s);
    ASSERT(dl != VIGIL_NO_DEADLINE);
    expire(e, dl - 1);
    ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN); /* never before its deadline */
    expire(e, dl);
  }
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_HEARTBEAT_TIMEOUT);
  ASSERT_UGE(dl, last + 2000 * MS); /* never before 2 x interval */
  ASSERT(dl < last + 20000 * MS);   /* phi convicts well before the timeout */

  /* A peer that was chattering at 100 ms: phi alone would convict within
   * half a second of silence; the floor holds it to 2 x interval. */
  memset(e, 0, sizeof *e);
  vigil_phi_init(&phi, 8.0, 1000, 0);
  {
    uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
    size_t n = make_hello(hello, 1, 1000, 20000, 16384, 1u << 20);
    ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
    deliver(e, T0, hello, n);
  }
  phi.min_stddev_us = 1000; /* let the chatter shape the model */
  now = T0;
  for (i = 0; i < 40; i++) {
    now += 100 * MS;
    deliver(e, now, PONG, 2);
  }
  last = info_of(e).last_recv_ns;
  expire(e, last + 2000 * MS - 1);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_OPEN);
  expire(e, last + 2000 * MS);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_UEQ(last_event(e)->silent_ns, 2000 * MS);
  return 0;
}

/* ---- endings and error paths ---------------------------------------- */

TEST_IMPL(session_received_close_causes) {
  static const struct {
    uint16_t code;
    vigil_cause cause;
  } cases[] = {
      {VIGIL_CLOSE_NORMAL, VIGIL_CAUSE_CLOSED},
      {VIGIL_CLOSE_GOING_AWAY, VIGIL_CAUSE_CLOSED},
      {VIGIL_CLOSE_PROTOCOL_ERROR, VIGIL_CAUSE_PROTOCOL_ERROR},
      {VIGIL_CLOSE_VERSION, VIGIL_CAUSE_PROTOCOL_ERROR},
      {VIGIL_CLOSE_TIMEOUT, VIGIL_CAUSE_CLOSED},
      {VIGIL_CLOSE_POLICY, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_PING_FLOOD, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_TOO_BIG, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_SERVER_FULL, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_TAKEOVER, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_HANDSHAKE_TIMEOUT, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_QUEUE_FULL, VIGIL_CAUSE_POLICY},
      {VIGIL_CLOSE_ADDRESS_LIMIT, VIGIL_CAUSE_POLICY},
      {999, VIGIL_CAUSE_POLICY},
  };
  end *e = end_new();
  uint8_t frame[256];
  size_t i;
  uint8_t out[64];
  size_t taken;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n;
    memset(e, 0, sizeof *e);
    ASSERT_EQ(open_default_server(e), 0);
    deliver(e, T0 + 700 * MS, PING, 2); /* owed a pong: dropped by the CLOSE */
    n = make_close(frame, cases[i].code, 1234, "bye now");
    deliver(e, T0 + 800 * MS, frame, n);
    ASSERT_EQ(e->err, 0);
    ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
    ASSERT_EQ(last_event(e)->cause, cases[i].cause);
    ASSERT_EQ(last_event(e)->close_code, cases[i].code);
    ASSERT_EQ(last_event(e)->retry_after_ms, 1234);
    ASSERT_UEQ(last_event(e)->silent_ns, 100 * MS);
    ASSERT_NOT_NULL(last_event(e)->detail);
    ASSERT_STR_EQ(e->reason, "bye now");
    ASSERT_EQ(vigil_session_write(&e->s, T0, out, sizeof out, NULL, 0, &taken), VIGIL_ECLOSED);
    deliver(e, T0 + 900 * MS, PING, 2);
    ASSERT_EQ(e->err, VIGIL_ECLOSED);
    ASSERT_EQ(count_events(e, VIGIL_EVENT_DEAD), 1);
  }
  return 0;
}

TEST_IMPL(session_local_close_reported_once) {
  end *e = end_new();
  vigil_event ev;
  uint8_t out[256];
  size_t taken;
  char longreason[200];
  ASSERT_EQ(open_default_server(e), 0);
  memset(longreason, 'r', sizeof longreason - 1);
  longreason[sizeof longreason - 1] = '\0';
  ASSERT_EQ(vigil_session_close(&e->s, VIGIL_CLOSE_NORMAL, longreason, 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_close(&e->s, VIGIL_CLOSE_NORMAL, "\xc3\x28", 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_close(&e->s, VIGIL_CLOSE_GOING_AWAY, "maintenance", 60000), 0);
  ASSERT_EQ(info_of(e).state, VIGIL_SESSION_CLOSING);
  /* Before the CLOSE is written: input ignored, no events, no deadline. */
  ASSERT_EQ(vigil_session_recv(&e->s, T0 + MS, PING, 2, &ev), 2);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  ASSERT_EQ(vigil_session_expire(&e->s, T0 + 99000 * MS, &ev), 0);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  ASSERT_UEQ(vigil_session_deadline(&e->s), VIGIL_NO_DEADLINE);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 2 * MS, out, 4, NULL, 0, &taken), 0); /* no room */
  ASSERT_EQ(written_close(e, T0 + 2 * MS).code, VIGIL_CLOSE_GOING_AWAY);
  ASSERT_EQ(vigil_session_write(&e->s, T0 + 2 * MS, out, sizeof out, NULL, 0, &taken), 0);
  /* recv() reports it (consuming nothing), then everything is ECLOSED. */
  ASSERT_EQ(vigil_session_recv(&e->s, T0 + 3 * MS, PING, 2, &ev), 0);
  ASSERT_EQ(ev.type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(ev.cause, VIGIL_CAUSE_LOCAL);
  ASSERT_EQ(ev.close_code, VIGIL_CLOSE_GOING_AWAY);
  ASSERT_EQ(ev.retry_after_ms, 60000);
  ASSERT_EQ(vigil_session_recv(&e->s, T0 + 3 * MS, PING, 2, &ev), VIGIL_ECLOSED);
  ASSERT_EQ(vigil_session_expire(&e->s, T0 + 3 * MS, &ev), VIGIL_ECLOSED);
  ASSERT_EQ(vigil_session_write(&e->s, T0, out, sizeof out, NULL, 0, &taken), VIGIL_ECLOSED);
  ASSERT_EQ(vigil_session_close(&e->s, 0, NULL, 0), VIGIL_ECLOSED);
  return 0;
}

/* Feeds `bytes` to a fresh session of `role` (a client has written its
 * HELLO; `open` first completes the handshake) and checks the error, the
 * cause and the CLOSE code written. */
static int error_case(vigil_role role, int open, const uint8_t *bytes, size_t n, long err,
                      vigil_cause cause, uint16_t code) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_event ev;
  if (role == VIGIL_ROLE_SERVER) {
    vigil_session_config_init(&cfg);
    if (open)
      ASSERT_EQ(open_server(e, &cfg), 0);
    else
      ASSERT_EQ(vigil_session_init(&e->s, role, &cfg, T0), 0);
  } else {
    client_cfg(&cfg, 1000, 0);
    cfg.max_frame = 4096;
    if (open) {
      ASSERT_EQ(open_client(e, &cfg), 0);
    } else {
      uint8_t buf[512];
      size_t taken;
      ASSERT_EQ(vigil_session_init(&e->s, role, &cfg, T0), 0);
      ASSERT_GT(vigil_session_write(&e->s, T0, buf, sizeof buf, NULL, 0, &taken), 0);
    }
  }
  deliver(e, T0 + MS, bytes, n);
  if (e->err != err)
    TEST_FAIL_AT("error %ld (%s), expected %ld", e->err, vigil_err_name((int)e->err), err);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DEAD);
  ASSERT_EQ(last_event(e)->cause, cause);
  ASSERT_NOT_NULL(last_event(e)->detail);
  ASSERT_EQ(last_event(e)->close_code, code);
  ASSERT_EQ(written_close(e, T0 + MS).code, code);
  ASSERT_EQ(vigil_session_recv(&e->s, T0 + MS, bytes, n, &ev), VIGIL_ECLOSED);
  ASSERT_EQ(vigil_session_expire(&e->s, T0 + MS, &ev), VIGIL_ECLOSED);
  ASSERT_UEQ(vigil_session_deadline(&e->s), VIGIL_NO_DEADLINE);
  return 0;
}

#define PE VIGIL_CAUSE_PROTOCOL_ERROR
#define PEC VIGIL_CLOSE_PROTOCOL_ERROR

TEST_IMPL(session_recv_error_paths) {
  uint8_t f[512];
  size_t n;
  static const uint8_t bad_type[] = {0x09, 0};
  static const uint8_t long_ping[] = {VIGIL_FRAME_PING, 1, 0};
  static const uint8_t bad_varint[] = {VIGIL_FRAME_CLOSE, 0x80, 0x80, 0x80, 0x80, 0x80};
  static const uint8_t bad_magic[] = {
      VIGIL_FRAME_HELLO, 11, 'V', 'I', 'G', 'X', 1, 100, 0, 64, 1, 1, 'a'};
  static const uint8_t trailing[] = {
      VIGIL_FRAME_HELLO, 12, 'V', 'I', 'G', 'L', 1, 100, 0, 64, 1, 1, 'a', 'z'};
  static const uint8_t data0[] = {VIGIL_FRAME_DATA, 0};
  const vigil_role S = VIGIL_ROLE_SERVER, C = VIGIL_ROLE_CLIENT;

  ASSERT_EQ(error_case(S, 0, bad_type, 2, VIGIL_EBADTYPE, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 1, bad_type, 2, VIGIL_EBADTYPE, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 1, long_ping, 3, VIGIL_EFRAMESIZE, PE, PEC), 0);
  ASSERT_EQ(error_case(C, 1, bad_varint, sizeof bad_varint, VIGIL_EBADVARINT, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 0, bad_magic, sizeof bad_magic, VIGIL_EBADMAGIC, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 0, trailing, sizeof trailing, VIGIL_ETRAILING, PE, PEC), 0);
  /* Frames in the wrong state. */
  ASSERT_EQ(error_case(S, 0, PING, 2, VIGIL_EUNEXPECTED, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 0, data0, 2, VIGIL_EUNEXPECTED, PE, PEC), 0);
  ASSERT_EQ(error_case(C, 0, PONG, 2, VIGIL_EUNEXPECTED, PE, PEC), 0);
  ASSERT_EQ(error_case(C, 0, data0, 2, VIGIL_EUNEXPECTED, PE, PEC), 0);
  n = make_welcome(f, 1000, 3000, 500, 4096, 1000);
  ASSERT_EQ(error_case(S, 0, f, n, VIGIL_EUNEXPECTED, PE, PEC), 0); /* WELCOME to a server */
  ASSERT_EQ(error_case(C, 1, f, n, VIGIL_EUNEXPECTED, PE, PEC), 0); /* WELCOME twice */
  n = make_hello(f, 1, 1000, 3000, 16384, 1000);
  ASSERT_EQ(error_case(C, 0, f, n, VIGIL_EUNEXPECTED, PE, PEC), 0); /* HELLO to a client */
  ASSERT_EQ(error_case(S, 1, f, n, VIGIL_EUNEXPECTED, PE, PEC), 0); /* HELLO twice */
  /* WELCOME values a client cannot keep. */
  n = make_welcome(f, 1000, 3000, 900, 4096, 1000); /* min_ping > 3/4 interval */
  ASSERT_EQ(error_case(C, 0, f, n, VIGIL_EBADFIELD, PE, PEC), 0);
  n = make_welcome(f, 1000, 3000, 500, 8192, 1000); /* max_frame above our 4096 */
  ASSERT_EQ(error_case(C, 0, f, n, VIGIL_EBADFIELD, PE, PEC), 0);
  n = make_welcome(f, 1000, 3000, 500, 4096, 2u << 20); /* max_message above ours */
  ASSERT_EQ(error_case(C, 0, f, n, VIGIL_EBADFIELD, PE, PEC), 0);
  {
    static const uint8_t timeout_eq[] = {VIGIL_FRAME_WELCOME, 6, 1, 10, 10, 5, 64, 1};
    static const uint8_t v2[] = {VIGIL_FRAME_WELCOME, 6, 2, 10, 30, 5, 64, 1};
    ASSERT_EQ(error_case(C, 0, timeout_eq, sizeof timeout_eq, VIGIL_EBADFIELD, PE, PEC), 0);
    ASSERT_EQ(error_case(C, 0, v2, sizeof v2, VIGIL_EVERSION, PE, VIGIL_CLOSE_VERSION), 0);
  }
  return 0;
}

/* CLOSE VERSION answers a handshake frame whose version we cannot speak,
 * in the handshake. A HELLO or WELCOME out of place is a protocol error
 * (PROTOCOL.md 2.5) whatever its version byte says. */
TEST_IMPL(session_version_close_only_in_the_handshake) {
  static const uint8_t hello_v0[] = {
      VIGIL_FRAME_HELLO, 11, 'V', 'I', 'G', 'L', 0, 100, 0, 64, 1, 1, 'a'};
  static const uint8_t hello_v3[] = {
      VIGIL_FRAME_HELLO, 12, 'V', 'I', 'G', 'L', 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t welcome_v2[] = {VIGIL_FRAME_WELCOME, 6, 2, 10, 30, 5, 64, 1};
  const vigil_role S = VIGIL_ROLE_SERVER, C = VIGIL_ROLE_CLIENT;
  const uint16_t VC = VIGIL_CLOSE_VERSION;
  /* In the handshake, to the side that expects it: VERSION. */
  ASSERT_EQ(error_case(S, 0, hello_v0, sizeof hello_v0, VIGIL_EVERSION, PE, VC), 0);
  ASSERT_EQ(error_case(S, 0, hello_v3, sizeof hello_v3, VIGIL_EVERSION, PE, VC), 0);
  ASSERT_EQ(error_case(C, 0, welcome_v2, sizeof welcome_v2, VIGIL_EVERSION, PE, VC), 0);
  /* Out of place: PROTOCOL_ERROR, with the codec's error. */
  ASSERT_EQ(error_case(S, 1, hello_v0, sizeof hello_v0, VIGIL_EVERSION, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 1, hello_v3, sizeof hello_v3, VIGIL_EBADVARINT, PE, PEC), 0);
  ASSERT_EQ(error_case(S, 0, welcome_v2, sizeof welcome_v2, VIGIL_EVERSION, PE, PEC), 0);
  ASSERT_EQ(error_case(C, 0, hello_v0, sizeof hello_v0, VIGIL_EVERSION, PE, PEC), 0);
  ASSERT_EQ(error_case(C, 1, welcome_v2, sizeof welcome_v2, VIGIL_EVERSION, PE, PEC), 0);
  return 0;
}

TEST_IMPL(session_welcome_before_hello_written) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t w[64];
  size_t n = make_welcome(w, 1000, 3000, 500, 16384, 1u << 20);
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_CLIENT, &cfg, T0), 0);
  deliver(e, T0, w, n);
  ASSERT_EQ(e->err, VIGIL_EUNEXPECTED);
  ASSERT_EQ(written_close(e, T0).code, VIGIL_CLOSE_PROTOCOL_ERROR); /* not the HELLO */
  return 0;
}

TEST_IMPL(session_partial_control_frames_are_retained) {
  end *e = end_new();
  vigil_session_config cfg;
  uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t n, i;
  vigil_event ev;
  memset(&ev, 0, sizeof ev);
  vigil_session_config_init(&cfg);
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  n = make_hello(hello, 1, 1000, 3000, 16384, 1u << 20);
  for (i = 1; i < n; i++)
    ASSERT_EQ(vigil_session_recv(&e->s, T0, hello, i, &ev), 0);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  ASSERT_EQ(vigil_session_recv(&e->s, T0, hello, n, &ev), (long)n);
  ASSERT_EQ(ev.type, VIGIL_EVENT_OPEN);
  ASSERT_EQ(vigil_session_recv(&e->s, T0, NULL, 0, &ev), 0);
  ASSERT_EQ(vigil_session_recv(&e->s, T0, NULL, 1, &ev), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_recv(&e->s, T0, hello, 1, NULL), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(session_fits_budget) {
  ASSERT_LE(sizeof(vigil_session), 128);
  return 0;
}

TEST_IMPL(session_stall_during_handshake_and_after_close) {
  end *e = end_new();
  vigil_session_config cfg;
  vigil_session_info before;
  vigil_session_config_init(&cfg);
  cfg.handshake_timeout_ms = 2000;
  ASSERT_EQ(vigil_session_init(&e->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  /* Frozen past the handshake deadline: the client gets an interval more. */
  vigil_session_stalled(&e->s, T0 + 5000 * MS);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 6000 * MS);
  expire(e, T0 + 6000 * MS - 1);
  ASSERT_EQ(e->nev, 0);
  /* A stall shorter than the slack changes nothing. */
  vigil_session_stalled(&e->s, T0 + 100 * MS);
  ASSERT_UEQ(vigil_session_deadline(&e->s), T0 + 6000 * MS);
  expire(e, T0 + 6000 * MS);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_POLICY);
  /* Dead: a stall must not resurrect anything. */
  before = info_of(e);
  vigil_session_stalled(&e->s, T0 + 90000 * MS);
  ASSERT_UEQ(info_of(e).last_recv_ns, before.last_recv_ns);
  ASSERT_UEQ(vigil_session_deadline(&e->s), VIGIL_NO_DEADLINE);
  vigil_session_stalled(NULL, T0);
  return 0;
}

TEST_IMPL(session_data_header_split_and_malformed) {
  end *e = end_new();
  static const uint8_t split[] = {VIGIL_FRAME_DATA_MORE, 0x80}; /* varint continues */
  static const uint8_t rest[] = {0x01, 'a'};                    /* length 128, 1 byte of it */
  static const uint8_t bad[] = {VIGIL_FRAME_DATA, 0x80, 0x00};  /* non-minimal varint */
  vigil_event ev;
  ASSERT_EQ(open_default_server(e), 0);
  ASSERT_EQ(vigil_session_recv(&e->s, T0 + MS, split, sizeof split, &ev), 0);
  ASSERT_EQ(ev.type, VIGIL_EVENT_NONE);
  deliver(e, T0 + MS, split, sizeof split);
  deliver(e, T0 + MS, rest, sizeof rest);
  ASSERT_EQ(e->err, 0);
  ASSERT_EQ(last_event(e)->type, VIGIL_EVENT_DATA);
  ASSERT_EQ(last_event(e)->len, 1);
  ASSERT_EQ(e->rx_len, 0);

  e = end_new();
  ASSERT_EQ(open_default_server(e), 0);
  deliver(e, T0 + MS, bad, sizeof bad);
  ASSERT_EQ(e->err, VIGIL_EBADVARINT);
  ASSERT_EQ(last_event(e)->cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_EQ(written_close(e, T0 + MS).code, VIGIL_CLOSE_PROTOCOL_ERROR);
  return 0;
}

TEST_IMPL(session_write_small_buffers) {
  end *c = end_new(), *s = end_new();
  vigil_session_config cfg;
  uint8_t out[VIGIL_WIRE_MAX_CONTROL_FRAME];
  size_t taken;
  uint64_t dl;
  client_cfg(&cfg, 1000, 0);
  ASSERT_EQ(vigil_session_init(&c->s, VIGIL_ROLE_CLIENT, &cfg, T0), 0);
  /* No room for the HELLO: nothing written, still wanted. */
  ASSERT_EQ(vigil_session_write(&c->s, T0, out, 8, NULL, 0, &taken), 0);
  ASSERT(vigil_session_want_write(&c->s));
  ASSERT_GT(vigil_session_write(&c->s, T0, out, sizeof out, NULL, 0, &taken), 8);
  ASSERT(!vigil_session_want_write(&c->s));
  ASSERT_EQ(vigil_session_init(&s->s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  {
    uint8_t hello[VIGIL_WIRE_MAX_CONTROL_FRAME];
    size_t n = make_hello(hello, 1, 1000, 3000, 16384, 1u << 20);
    deliver(s, T0, hello, n);
  }
  ASSERT_EQ(vigil_session_write(&s->s, T0, out, 4, NULL, 0, &taken), 0); /* WELCOME > 4 */
  ASSERT_GT(vigil_session_write(&s->s, T0, out, sizeof out, NULL, 0, &taken), 4);
  /* A ping that does not fit stays queued and is not yet timed. */
  dl = vigil_session_deadline(&s->s);
  expire(s, dl);
  ASSERT_EQ(vigil_session_write(&s->s, dl, out, 1, NULL, 0, &taken), 0);
  ASSERT_EQ(info_of(s).ping_outstanding, 0);
  ASSERT_EQ(vigil_session_write(&s->s, dl + MS, out, 2, NULL, 0, &taken), 2);
  ASSERT_EQ(info_of(s).ping_outstanding, 1);
  /* A DATA chunk needs room for its header: 3 bytes carry "x", 2 do not. */
  ASSERT_EQ(vigil_session_write(&s->s, dl, out, 2, (const uint8_t *)"x", 1, &taken), 0);
  ASSERT_EQ(taken, 0);
  ASSERT_EQ(vigil_session_write(&s->s, dl, out, 3, (const uint8_t *)"x", 1, &taken), 3);
  ASSERT_EQ(taken, 1);
  ASSERT_MEM_EQ(out, "\x05\x01x", 3);
  return 0;
}

TEST_IMPL(session_null_arguments) {
  vigil_session s;
  vigil_event ev;
  vigil_session_info info;
  uint8_t out[8];
  size_t taken;
  vigil_session_config cfg;
  vigil_session_config_init(&cfg);
  vigil_session_config_init_sized(NULL, sizeof(vigil_session_config));
  ASSERT_EQ(vigil_session_init(&s, VIGIL_ROLE_SERVER, &cfg, T0), 0);
  ASSERT_EQ(vigil_session_recv(NULL, T0, out, 1, &ev), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_expire(NULL, T0, &ev), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_expire(&s, T0, NULL), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_write(&s, T0, NULL, 8, NULL, 0, &taken), VIGIL_EINVAL);
  /* msg_taken may be NULL only when there is no message to frame. */
  ASSERT_EQ(vigil_session_write(&s, T0, out, 8, NULL, 0, NULL), 0);
  ASSERT_EQ(vigil_session_write(&s, T0, out, 8, out, 1, NULL), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_write(&s, T0, out, 8, NULL, 3, &taken), VIGIL_EINVAL);
  ASSERT_EQ(vigil_session_close(NULL, 0, NULL, 0), VIGIL_EINVAL);
  ASSERT_UEQ(vigil_session_deadline(NULL), VIGIL_NO_DEADLINE);
  ASSERT_EQ(vigil_session_want_write(NULL), 0);
  info.strikes = 99;
  vigil_session_get_info(NULL, &info);
  ASSERT_EQ(info.strikes, 99);
  vigil_session_get_info(&s, NULL);
  return 0;
}

/* Bytes dated by their arrival may carry a time before one the session has
 * already been given (the runtime stamps reads with the kernel's receive
 * time, which for a loop that was busy lies in the past). Here a stall at
 * T0 + 2.5 s withdrew the pending verdict (last heard moved to T0 + 0.5 s);
 * a PING then read but stamped T0 + 100 ms must not move last heard back
 * and bring the withdrawn verdict back early (T0 + 3.1 s): the peer dies
 * at T0 + 3.5 s, silent 3 s. */
TEST_IMPL(session_arrival_stamp_never_moves_liveness_back) {
  end *c = end_new(), *s = end_new();
  const uint64_t dead_at = T0 + 3500 * MS;
  ASSERT_EQ(open_default_pair(c, s), 0);
  vigil_session_stalled(&c->s, T0 + 2500 * MS);
  deliver(c, T0 + 100 * MS, PING, sizeof PING);
  ASSERT_EQ(c->err, 0);
  expire(c, T0 + 3100 * MS);
  flush(c, s, T0 + 3100 * MS); /* its pings go unanswered */
  expire(c, dead_at - 1);
  ASSERT_EQ(count_events(c, VIGIL_EVENT_DEAD), 0);
  expire(c, dead_at);
  ASSERT_EQ(last_event(c)->type, VIGIL_EVENT_DEAD);
  ASSERT_UEQ(last_event(c)->silent_ns, 3000 * MS);
  return 0;
}
