/* Wire codec tests: varint edges, UTF-8 edges, encode -> decode round trips,
 * too-small buffers, every prefix of every frame, and the test vectors of
 * docs/PROTOCOL.md (which also pin tests/vectors/ *.bin to the document). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "vigil.h"

/* ---- varints -------------------------------------------------------------- */

TEST_IMPL(varint_edges_round_trip) {
  static const struct {
    uint32_t value;
    int size;
    uint8_t bytes[5];
  } cases[] = {
      {0, 1, {0x00}},
      {1, 1, {0x01}},
      {127, 1, {0x7F}},
      {128, 2, {0x80, 0x01}},
      {300, 2, {0xAC, 0x02}},
      {16383, 2, {0xFF, 0x7F}},
      {16384, 3, {0x80, 0x80, 0x01}},
      {(1u << 21) - 1, 3, {0xFF, 0xFF, 0x7F}},
      {1u << 21, 4, {0x80, 0x80, 0x80, 0x01}},
      {(1u << 28) - 1, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
      {1u << 28, 5, {0x80, 0x80, 0x80, 0x80, 0x01}},
      {0xFFFFFFFFu, 5, {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}},
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t buf[8];
    uint32_t v = 12345;
    size_t cap;
    memset(buf, 0xEE, sizeof buf);
    ASSERT_EQ(vigil_varint_encode(buf, sizeof buf, cases[i].value), cases[i].size);
    ASSERT_MEM_EQ(buf, cases[i].bytes, (size_t)cases[i].size);
    ASSERT_EQ(buf[cases[i].size], 0xEE);
    ASSERT_EQ(vigil_varint_decode(buf, sizeof buf, &v), cases[i].size);
    ASSERT_UEQ(v, cases[i].value);
    /* Every proper prefix needs more; too little room is refused. */
    for (cap = 0; cap < (size_t)cases[i].size; cap++) {
      ASSERT_EQ(vigil_varint_decode(buf, cap, &v), VIGIL_ENEEDMORE);
      ASSERT_EQ(vigil_varint_encode(buf, cap, cases[i].value), VIGIL_ENOSPACE);
    }
  }
  return 0;
}

TEST_IMPL(varint_rejects_malformed) {
  static const struct {
    uint8_t bytes[6];
    size_t len;
  } bad[] = {
      {{0x80, 0x00}, 2},                         /* 0 in two bytes */
      {{0xFF, 0x00}, 2},                         /* 127 in two bytes */
      {{0x80, 0x80, 0x00}, 3},                   /* non-minimal, three bytes */
      {{0x80, 0x80, 0x80, 0x80, 0x00}, 5},       /* non-minimal, five bytes */
      {{0x80, 0x80, 0x80, 0x80, 0x10}, 5},       /* 2^32: too large */
      {{0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, 5},       /* 2^35 - 1: too large */
      {{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 6}, /* six bytes */
      {{0xFF, 0xFF, 0xFF, 0xFF, 0x8F, 0x00}, 6}, /* continuation on byte 5 */
  };
  size_t i;
  uint32_t v;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_EQ(vigil_varint_decode(bad[i].bytes, bad[i].len, &v), VIGIL_EBADVARINT);
  /* The fifth byte alone decides "too long": no sixth byte is needed. */
  ASSERT_EQ(vigil_varint_decode(bad[6].bytes, 5, &v), VIGIL_EBADVARINT);
  ASSERT_EQ(vigil_varint_decode(bad[0].bytes, 1, &v), VIGIL_ENEEDMORE);
  ASSERT_EQ(vigil_varint_decode(NULL, 0, &v), VIGIL_ENEEDMORE);
  return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

TEST_IMPL(utf8_strict) {
  static const struct {
    const char *bytes;
    int valid;
  } cases[] = {
      {"", 1},
      {"plain ascii", 1},
      {"\x7F", 1},
      {"\xC2\x80", 1},         /* U+0080, smallest 2-byte */
      {"\xDF\xBF", 1},         /* U+07FF */
      {"\xE0\xA0\x80", 1},     /* U+0800, smallest 3-byte */
      {"\xED\x9F\xBF", 1},     /* U+D7FF, just below surrogates */
      {"\xEE\x80\x80", 1},     /* U+E000, just above */
      {"\xEF\xBF\xBF", 1},     /* U+FFFF */
      {"\xF0\x90\x80\x80", 1}, /* U+10000 */
      {"\xF4\x8F\xBF\xBF", 1}, /* U+10FFFF, the last code point */
      {"caf\xC3\xA9", 1},
      {"\x80", 0},             /* lone continuation */
      {"\xC0\x80", 0},         /* overlong NUL */
      {"\xC1\xBF", 0},         /* overlong U+007F */
      {"\xE0\x9F\xBF", 0},     /* overlong U+07FF */
      {"\xF0\x8F\xBF\xBF", 0}, /* overlong U+FFFF */
      {"\xED\xA0\x80", 0},     /* U+D800 surrogate */
      {"\xED\xBF\xBF", 0},     /* U+DFFF surrogate */
      {"\xF4\x90\x80\x80", 0}, /* U+110000 */
      {"\xF5\x80\x80\x80", 0}, /* lead byte F5 */
      {"\xFF", 0},
      {"\xC3", 0},             /* truncated 2-byte */
      {"\xE2\x82", 0},         /* truncated 3-byte */
      {"\xF0\x9F\x98", 0},     /* truncated 4-byte */
      {"\xE2\x28\xA1", 0},     /* bad second byte */
      {"\xE2\x82\x28", 0},     /* bad third byte */
      {"\xF0\x9F\x98\x28", 0}, /* bad fourth byte */
      {"a\xC3\xA9\xC3", 0},    /* good then truncated */
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = vigil_utf8_valid((const uint8_t *)cases[i].bytes, strlen(cases[i].bytes));
    if (got != cases[i].valid)
      TEST_FAIL_AT("case %zu: utf8_valid = %d, want %d", i, got, cases[i].valid);
  }
  ASSERT_EQ(vigil_utf8_valid(NULL, 0), 1);
  /* An embedded NUL is a valid code point. */
  ASSERT_EQ(vigil_utf8_valid((const uint8_t *)"a\0b", 3), 1);
  return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static vigil_hello sample_hello(const char *id) {
  vigil_hello h;
  memset(&h, 0, sizeof h);
  h.version = 1;
  h.interval_ms = 1000;
  h.timeout_ms = 3000;
  h.max_frame = 16384;
  h.max_message = 1u << 20;
  h.id_len = (uint8_t)strlen(id);
  h.id = id;
  return h;
}

static vigil_welcome sample_welcome(void) {
  vigil_welcome w;
  memset(&w, 0, sizeof w);
  w.version = 1;
  w.interval_ms = 1000;
  w.timeout_ms = 3000;
  w.min_ping_ms = 250;
  w.max_frame = 4096;
  w.max_message = 65536;
  return w;
}

/* Every prefix of a frame needs more; the header decodes as soon as it is
 * complete and then agrees with the full decode. */
static int check_prefixes(const uint8_t *buf, size_t n, uint32_t max_chunk) {
  vigil_frame f;
  uint8_t type;
  uint32_t length;
  int hn = -1;
  size_t cut;

  for (cut = 0; cut < n; cut++) {
    int rc = vigil_wire_decode_header(buf, cut, max_chunk, &type, &length);
    ASSERT_EQ(vigil_wire_decode(buf, cut, max_chunk, &f), VIGIL_ENEEDMORE);
    if (rc == VIGIL_ENEEDMORE) {
      ASSERT_EQ(hn, -1);
      continue;
    }
    ASSERT_GT(rc, 1);
    if (hn == -1)
      hn = rc;
    ASSERT_EQ(rc, hn);
  }
  ASSERT_EQ(vigil_wire_decode_header(buf, n, max_chunk, &type, &length), hn == -1 ? (int)n : hn);
  ASSERT_UEQ(length, n - (size_t)(hn == -1 ? (int)n : hn));
  ASSERT_EQ(vigil_wire_decode(buf, n, max_chunk, &f), (int)n);
  ASSERT_EQ(f.type, type);
  return 0;
}

/* ---- round trips ---------------------------------------------------------- */

TEST_IMPL(hello_round_trip) {
  static const char *const ids[] = {"a", "sensor-42", "caf\xC3\xA9 \xF0\x9F\x98\x80"};
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME + 8], again[sizeof buf];
  char long_id[256];
  uint8_t cred[255];
  vigil_hello h;
  vigil_frame f;
  size_t i;

  memset(long_id, 'x', 255);
  long_id[255] = '\0';
  memset(cred, 'c', sizeof cred);
  for (i = 0; i < 5; i++) {
    h = sample_hello(i < 3 ? ids[i] : long_id);
    if (i == 3) { /* the largest HELLO there is: a v2 one with a credential */
      h.interval_ms = h.timeout_ms = h.max_message = 0xFFFFFFFFu;
      h.version = 255;
      h.cred = cred;
      h.cred_len = 255;
    }
    if (i == 4) { /* a version 2 HELLO carrying a token */
      h.version = VIGIL_WIRE_VERSION_CRED;
      h.cred = (const uint8_t *)"v1.1767225600.tVjTPeRBtGCCgQvMyXEPWCxkEDZ36HsaDhM-wYGJ7xw";
      h.cred_len = 57;
    }
    int n = vigil_wire_encode_hello(buf, sizeof buf, &h);
    ASSERT_GT(n, 0);
    if (i == 3)
      /* 2-byte length, and max_frame <= 16384 takes 3 bytes, not 5 */
      ASSERT_EQ(n, VIGIL_WIRE_MAX_CONTROL_FRAME - 4 - 2 + 1);
    ASSERT_EQ(buf[0], VIGIL_FRAME_HELLO);
    ASSERT_EQ(vigil_wire_decode(buf, (size_t)n, 0, &f), n);
    ASSERT_EQ(f.type, VIGIL_FRAME_HELLO);
    ASSERT_EQ(f.u.hello.version, h.version);
    ASSERT_UEQ(f.u.hello.interval_ms, h.interval_ms);
    ASSERT_UEQ(f.u.hello.timeout_ms, h.timeout_ms);
    ASSERT_UEQ(f.u.hello.max_frame, h.max_frame);
    ASSERT_UEQ(f.u.hello.max_message, h.max_message);
    ASSERT_EQ(f.u.hello.id_len, h.id_len);
    ASSERT_MEM_EQ(f.u.hello.id, h.id, h.id_len);
    ASSERT_EQ(f.u.hello.cred_len, h.cred_len);
    if (h.cred_len != 0)
      ASSERT_MEM_EQ(f.u.hello.cred, h.cred, h.cred_len);
    /* The id points into the buffer, right at its end or before the
     * credential. */
    ASSERT_PTR_EQ(f.u.hello.id, buf + n - h.id_len - (h.cred_len != 0 ? 1 + h.cred_len : 0));
    ASSERT_EQ(vigil_wire_encode_frame(again, sizeof again, &f), n);
    ASSERT_MEM_EQ(again, buf, (size_t)n);
    if (check_prefixes(buf, (size_t)n, 0))
      return 1;
  }
  return 0;
}

TEST_IMPL(welcome_round_trip) {
  uint8_t buf[64], again[64];
  vigil_welcome w = sample_welcome();
  vigil_frame f;
  int pass;

  for (pass = 0; pass < 2; pass++) {
    int n;
    if (pass == 1) { /* the largest WELCOME */
      w.interval_ms = 0xFFFFFFFEu;
      w.timeout_ms = 0xFFFFFFFFu;
      w.min_ping_ms = 0xFFFFFFFEu;
      w.max_message = 0xFFFFFFFFu;
      w.max_frame = 16384;
    }
    n = vigil_wire_encode_welcome(buf, sizeof buf, &w);
    ASSERT_GT(n, 0);
    ASSERT_EQ(vigil_wire_decode(buf, (size_t)n, 0, &f), n);
    ASSERT_EQ(f.type, VIGIL_FRAME_WELCOME);
    ASSERT_EQ(f.u.welcome.version, 1);
    ASSERT_UEQ(f.u.welcome.interval_ms, w.interval_ms);
    ASSERT_UEQ(f.u.welcome.timeout_ms, w.timeout_ms);
    ASSERT_UEQ(f.u.welcome.min_ping_ms, w.min_ping_ms);
    ASSERT_UEQ(f.u.welcome.max_frame, w.max_frame);
    ASSERT_UEQ(f.u.welcome.max_message, w.max_message);
    ASSERT_EQ(vigil_wire_encode_frame(again, sizeof again, &f), n);
    ASSERT_MEM_EQ(again, buf, (size_t)n);
    if (check_prefixes(buf, (size_t)n, 0))
      return 1;
  }
  return 0;
}

TEST_IMPL(ping_pong_are_two_bytes) {
  uint8_t buf[4];
  vigil_frame f;

  ASSERT_EQ(vigil_wire_encode_ping(buf, sizeof buf), 2);
  ASSERT_EQ(buf[0], 0x03);
  ASSERT_EQ(buf[1], 0x00);
  ASSERT_EQ(vigil_wire_decode(buf, 2, 0, &f), 2);
  ASSERT_EQ(f.type, VIGIL_FRAME_PING);
  ASSERT_EQ(f.length, 0);
  if (check_prefixes(buf, 2, 0))
    return 1;
  ASSERT_EQ(vigil_wire_encode_pong(buf, sizeof buf), 2);
  ASSERT_EQ(buf[0], 0x04);
  ASSERT_EQ(buf[1], 0x00);
  ASSERT_EQ(vigil_wire_decode(buf, 2, 0, &f), 2);
  ASSERT_EQ(f.type, VIGIL_FRAME_PONG);
  /* Payload on a ping is refused from the header alone. */
  buf[0] = 0x03;
  buf[1] = 0x01;
  ASSERT_EQ(vigil_wire_decode_header(buf, 2, 0, NULL, NULL), VIGIL_EFRAMESIZE);
  ASSERT_EQ(vigil_wire_decode(buf, 2, 0, &f), VIGIL_EFRAMESIZE);
  return 0;
}

TEST_IMPL(close_round_trip) {
  static const char reason123[] = "0123456789012345678901234567890123456789012345678901234567890"
                                  "12345678901234567890123456789012345678901234567890123456789012";
  uint8_t buf[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CLOSE], again[sizeof buf];
  vigil_close_frame c;
  vigil_frame f;
  int pass;

  ASSERT_EQ(sizeof reason123 - 1, 123);
  for (pass = 0; pass < 3; pass++) {
    int n;
    memset(&c, 0, sizeof c);
    c.code = pass == 0 ? VIGIL_CLOSE_NORMAL : pass == 1 ? VIGIL_CLOSE_PING_FLOOD : 0xFFFF;
    c.retry_after_ms = pass == 2 ? 0xFFFFFFFFu : (uint32_t)pass * 5000u;
    c.reason = pass == 0 ? NULL : pass == 1 ? "slow down" : reason123;
    c.reason_len = (uint8_t)(c.reason ? strlen(c.reason) : 0);
    n = vigil_wire_encode_close(buf, sizeof buf, &c);
    ASSERT_GT(n, 0);
    if (pass == 2)
      ASSERT_EQ(n, 3 + VIGIL_WIRE_MAX_CLOSE); /* the largest CLOSE */
    ASSERT_EQ(vigil_wire_decode(buf, (size_t)n, 0, &f), n);
    ASSERT_EQ(f.type, VIGIL_FRAME_CLOSE);
    ASSERT_EQ(f.u.close.code, c.code);
    ASSERT_UEQ(f.u.close.retry_after_ms, c.retry_after_ms);
    ASSERT_EQ(f.u.close.reason_len, c.reason_len);
    if (c.reason_len)
      ASSERT_MEM_EQ(f.u.close.reason, c.reason, c.reason_len);
    ASSERT_EQ(vigil_wire_encode_frame(again, sizeof again, &f), n);
    ASSERT_MEM_EQ(again, buf, (size_t)n);
    if (check_prefixes(buf, (size_t)n, 0))
      return 1;
  }
  /* Code is big-endian on the wire. */
  c.code = 0x0102;
  c.retry_after_ms = 0;
  c.reason_len = 0;
  ASSERT_EQ(vigil_wire_encode_close(buf, sizeof buf, &c), 5);
  ASSERT_EQ(buf[2], 0x01);
  ASSERT_EQ(buf[3], 0x02);
  return 0;
}

TEST_IMPL(data_round_trip) {
  static uint8_t buf[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK + 1];
  static uint8_t again[sizeof buf];
  static const uint32_t sizes[] = {0, 1, 127, 128, 1024, 16383, 16384};
  vigil_frame f;
  size_t i;
  int more, hn;

  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (more = 0; more < 2; more++) {
      hn = vigil_wire_encode_data_header(buf, sizeof buf, more, sizes[i]);
      ASSERT_EQ(hn, sizes[i] < 128 ? 2 : sizes[i] < 16384 ? 3 : 4);
      ASSERT_EQ(buf[0], more ? VIGIL_FRAME_DATA_MORE : VIGIL_FRAME_DATA);
      memset(buf + hn, (int)(0x41 + i), sizes[i]);
      ASSERT_EQ(vigil_wire_decode(buf, (size_t)hn + sizes[i], 0, &f), hn + (int)sizes[i]);
      ASSERT_EQ(f.type, buf[0]);
      ASSERT_UEQ(f.length, sizes[i]);
      ASSERT_PTR_EQ(f.payload, buf + hn);
      ASSERT_EQ(vigil_wire_encode_frame(again, sizeof again, &f), hn + (int)sizes[i]);
      ASSERT_MEM_EQ(again, buf, (size_t)hn + sizes[i]);
      if (sizes[i] <= 1024 && check_prefixes(buf, (size_t)hn + sizes[i], 0))
        return 1;
    }
  }
  ASSERT_EQ(vigil_wire_encode_data_header(buf, sizeof buf, 0, 16385), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(data_respects_max_chunk) {
  uint8_t hdr[8];
  uint32_t length;
  int hn;

  hn = vigil_wire_encode_data_header(hdr, sizeof hdr, 0, 16384);
  ASSERT_EQ(vigil_wire_decode_header(hdr, (size_t)hn, 0, NULL, &length), hn);
  ASSERT_UEQ(length, 16384);
  ASSERT_EQ(vigil_wire_decode_header(hdr, (size_t)hn, 99999, NULL, NULL), hn); /* clamped */
  ASSERT_EQ(vigil_wire_decode_header(hdr, (size_t)hn, 16383, NULL, NULL), VIGIL_EFRAMESIZE);
  hn = vigil_wire_encode_data_header(hdr, sizeof hdr, 1, 100);
  ASSERT_EQ(vigil_wire_decode_header(hdr, (size_t)hn, 100, NULL, NULL), hn);
  ASSERT_EQ(vigil_wire_decode_header(hdr, (size_t)hn, 99, NULL, NULL), VIGIL_EFRAMESIZE);
  /* 16385 is over the protocol limit whatever max_chunk says. */
  hdr[0] = VIGIL_FRAME_DATA;
  ASSERT_EQ(vigil_varint_encode(hdr + 1, sizeof hdr - 1, 16385), 3);
  ASSERT_EQ(vigil_wire_decode_header(hdr, 4, 0, NULL, NULL), VIGIL_EFRAMESIZE);
  ASSERT_EQ(vigil_wire_decode_header(hdr, 4, 0xFFFFFFFFu, NULL, NULL), VIGIL_EFRAMESIZE);
  /* Oversized control frames are refused before their payload arrives. */
  hdr[0] = VIGIL_FRAME_HELLO;
  ASSERT_EQ(vigil_varint_encode(hdr + 1, sizeof hdr - 1, VIGIL_WIRE_MAX_HELLO + 1), 2);
  ASSERT_EQ(vigil_wire_decode_header(hdr, 3, 0, NULL, NULL), VIGIL_EFRAMESIZE);
  hdr[0] = VIGIL_FRAME_CLOSE;
  hdr[1] = 2;
  ASSERT_EQ(vigil_wire_decode_header(hdr, 2, 0, NULL, NULL), VIGIL_EFRAMESIZE);
  hdr[0] = 0x00;
  ASSERT_EQ(vigil_wire_decode_header(hdr, 1, 0, NULL, NULL), VIGIL_EBADTYPE);
  hdr[0] = 0x08;
  ASSERT_EQ(vigil_wire_decode_header(hdr, 1, 0, NULL, NULL), VIGIL_EBADTYPE);
  return 0;
}

/* ---- encoders: room and values -------------------------------------------- */

TEST_IMPL(encode_too_small_is_enospace) {
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME], canary[sizeof buf];
  vigil_hello h = sample_hello("node-7");
  vigil_welcome w = sample_welcome();
  vigil_close_frame c;
  vigil_frame df;
  uint8_t chunk[200];
  int full[6], k;
  size_t cap;

  memset(&c, 0, sizeof c);
  c.code = VIGIL_CLOSE_GOING_AWAY;
  c.retry_after_ms = 30000;
  c.reason = "maintenance";
  c.reason_len = 11;
  memset(&df, 0, sizeof df);
  df.type = VIGIL_FRAME_DATA_MORE;
  df.length = sizeof chunk;
  df.payload = chunk;
  memset(chunk, 7, sizeof chunk);

  full[0] = vigil_wire_encode_hello(buf, sizeof buf, &h);
  full[1] = vigil_wire_encode_welcome(buf, sizeof buf, &w);
  full[2] = vigil_wire_encode_ping(buf, sizeof buf);
  full[3] = vigil_wire_encode_pong(buf, sizeof buf);
  full[4] = vigil_wire_encode_close(buf, sizeof buf, &c);
  full[5] = vigil_wire_encode_frame(buf, sizeof buf, &df);
  for (k = 0; k < 6; k++) {
    ASSERT_GT(full[k], 0);
    for (cap = 0; cap < (size_t)full[k]; cap++) {
      int rc;
      memset(buf, 0xA5, sizeof buf);
      memset(canary, 0xA5, sizeof canary);
      switch (k) {
      case 0:
        rc = vigil_wire_encode_hello(buf, cap, &h);
        break;
      case 1:
        rc = vigil_wire_encode_welcome(buf, cap, &w);
        break;
      case 2:
        rc = vigil_wire_encode_ping(buf, cap);
        break;
      case 3:
        rc = vigil_wire_encode_pong(buf, cap);
        break;
      case 4:
        rc = vigil_wire_encode_close(buf, cap, &c);
        break;
      default:
        rc = vigil_wire_encode_frame(buf, cap, &df);
        break;
      }
      if (rc != VIGIL_ENOSPACE)
        TEST_FAIL_AT("encoder %d with cap %zu returned %d, want ENOSPACE", k, cap, rc);
      ASSERT_MEM_EQ(buf, canary, sizeof buf); /* nothing written */
    }
  }
  for (cap = 0; cap < 4; cap++)
    ASSERT_EQ(vigil_wire_encode_data_header(buf, cap, 0, 16384), VIGIL_ENOSPACE);
  ASSERT_EQ(vigil_wire_encode_data_header(buf, 4, 0, 16384), 4);
  ASSERT_EQ(vigil_wire_encode_ping(NULL, 0), VIGIL_ENOSPACE);
  return 0;
}

TEST_IMPL(encode_refuses_unencodable_values) {
  uint8_t buf[VIGIL_WIRE_MAX_CONTROL_FRAME];
  vigil_hello h;
  vigil_welcome w;
  vigil_close_frame c;
  char reason[130];

  h = sample_hello("x");
  h.version = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h = sample_hello("x");
  h.interval_ms = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h = sample_hello("x");
  h.timeout_ms = 999; /* below interval */
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h.timeout_ms = 1000; /* equal is allowed in HELLO */
  ASSERT_GT(vigil_wire_encode_hello(buf, sizeof buf, &h), 0);
  h.timeout_ms = 0; /* "3 x interval" */
  ASSERT_GT(vigil_wire_encode_hello(buf, sizeof buf, &h), 0);
  h.max_frame = 63;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h.max_frame = 16385;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h.max_frame = 64;
  h.max_message = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h = sample_hello("x");
  h.id_len = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EBADID);
  h = sample_hello("\xC0\x80");
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EBADID);
  h = sample_hello("x");
  h.id = NULL;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, NULL), VIGIL_EINVAL);
  /* A credential only in version 2 and up, and never empty there: one
   * encoding per meaning (version 1 is "no credential"). */
  h = sample_hello("x");
  h.cred = (const uint8_t *)"t";
  h.cred_len = 1;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h.version = VIGIL_WIRE_VERSION_CRED;
  ASSERT_GT(vigil_wire_encode_hello(buf, sizeof buf, &h), 0);
  h.cred_len = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  h.cred = NULL;
  h.cred_len = 1;
  ASSERT_EQ(vigil_wire_encode_hello(buf, sizeof buf, &h), VIGIL_EINVAL);
  /* Values are checked before room. */
  h = sample_hello("x");
  h.interval_ms = 0;
  ASSERT_EQ(vigil_wire_encode_hello(buf, 0, &h), VIGIL_EINVAL);

  w = sample_welcome();
  w.version = 2;
  ASSERT_EQ(vigil_wire_encode_welcome(buf, sizeof buf, &w), VIGIL_EINVAL);
  w = sample_welcome();
  w.timeout_ms = w.interval_ms; /* WELCOME needs timeout > interval */
  ASSERT_EQ(vigil_wire_encode_welcome(buf, sizeof buf, &w), VIGIL_EINVAL);
  w = sample_welcome();
  w.min_ping_ms = w.interval_ms + 1;
  ASSERT_EQ(vigil_wire_encode_welcome(buf, sizeof buf, &w), VIGIL_EINVAL);
  w.min_ping_ms = 0; /* no floor */
  ASSERT_GT(vigil_wire_encode_welcome(buf, sizeof buf, &w), 0);
  w.interval_ms = 0;
  ASSERT_EQ(vigil_wire_encode_welcome(buf, sizeof buf, &w), VIGIL_EINVAL);
  ASSERT_EQ(vigil_wire_encode_welcome(buf, sizeof buf, NULL), VIGIL_EINVAL);

  memset(&c, 0, sizeof c);
  memset(reason, 'r', sizeof reason);
  c.reason = reason;
  c.reason_len = 124;
  ASSERT_EQ(vigil_wire_encode_close(buf, sizeof buf, &c), VIGIL_EINVAL);
  c.reason_len = 123;
  ASSERT_GT(vigil_wire_encode_close(buf, sizeof buf, &c), 0);
  c.reason = "\xED\xA0\x80";
  c.reason_len = 3;
  ASSERT_EQ(vigil_wire_encode_close(buf, sizeof buf, &c), VIGIL_EINVAL);
  c.reason = NULL;
  ASSERT_EQ(vigil_wire_encode_close(buf, sizeof buf, &c), VIGIL_EINVAL);
  ASSERT_EQ(vigil_wire_encode_close(buf, sizeof buf, NULL), VIGIL_EINVAL);
  return 0;
}

/* ---- decoding stream behaviour -------------------------------------------- */

TEST_IMPL(decode_consumes_one_frame_of_a_stream) {
  uint8_t buf[64];
  vigil_frame f;
  size_t off = 0, len;
  int n;

  len = (size_t)vigil_wire_encode_ping(buf, sizeof buf);
  len += (size_t)vigil_wire_encode_data_header(buf + len, sizeof buf - len, 1, 3);
  buf[len] = 'a';
  buf[len + 1] = 'b';
  buf[len + 2] = 'c';
  len += 3;
  len += (size_t)vigil_wire_encode_pong(buf + len, sizeof buf - len);
  len += (size_t)vigil_wire_encode_data_header(buf + len, sizeof buf - len, 0, 0);

  ASSERT_EQ((n = vigil_wire_decode(buf + off, len - off, 0, &f)), 2);
  ASSERT_EQ(f.type, VIGIL_FRAME_PING);
  off += (size_t)n;
  ASSERT_EQ((n = vigil_wire_decode(buf + off, len - off, 0, &f)), 5);
  ASSERT_EQ(f.type, VIGIL_FRAME_DATA_MORE);
  ASSERT_MEM_EQ(f.payload, "abc", 3);
  off += (size_t)n;
  ASSERT_EQ((n = vigil_wire_decode(buf + off, len - off, 0, &f)), 2);
  ASSERT_EQ(f.type, VIGIL_FRAME_PONG);
  off += (size_t)n;
  ASSERT_EQ((n = vigil_wire_decode(buf + off, len - off, 0, &f)), 2);
  ASSERT_EQ(f.type, VIGIL_FRAME_DATA);
  ASSERT_EQ(f.length, 0);
  off += (size_t)n;
  ASSERT_EQ(off, len);
  ASSERT_EQ(vigil_wire_decode(buf + off, 0, 0, &f), VIGIL_ENEEDMORE);
  ASSERT_EQ(vigil_wire_decode(buf, len, 0, NULL), VIGIL_EINVAL);
  return 0;
}

TEST_IMPL(close_code_names) {
  ASSERT_STR_EQ(vigil_close_code_text(VIGIL_CLOSE_NORMAL), "goodbye");
  ASSERT_STR_EQ(vigil_close_code_text(VIGIL_CLOSE_PING_FLOOD),
                "pinging faster than the agreed minimum");
  ASSERT_STR_EQ(vigil_close_code_text(VIGIL_CLOSE_ADDRESS_LIMIT),
                "too many connections from this address");
  ASSERT_STR_EQ(vigil_close_code_text(VIGIL_CLOSE_AUTH_FAILED), "authentication failed");
  ASSERT_STR_EQ(vigil_close_code_text(14), "unknown close code");
  ASSERT_STR_EQ(vigil_close_code_text(0xFFFF), "unknown close code");
  ASSERT_STR_EQ(vigil_close_code_name(VIGIL_CLOSE_TAKEOVER), "TAKEOVER");
  ASSERT_STR_EQ(vigil_close_code_name(999), "UNKNOWN");
#define CHECK(name, value, text)                                                                   \
  ASSERT_STR_EQ(vigil_close_code_text(value), text);                                               \
  ASSERT_STR_EQ(vigil_close_code_name(value), #name);
  VIGIL_CLOSE_MAP(CHECK)
#undef CHECK
  ASSERT_STR_EQ(vigil_wire_type_name(VIGIL_FRAME_DATA_MORE), "DATA_MORE");
  ASSERT_STR_EQ(vigil_wire_type_name(0), "UNKNOWN");
  return 0;
}

/* ---- test vectors (docs/PROTOCOL.md section 11) --------------------------- */

#define MIN_VECTORS 100
#define MAX_VECTORS 400
#define MAX_VECTOR_BYTES (VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK + 64)

typedef struct vector {
  char name[64];
  uint32_t max_chunk;
  size_t len;
  const char *expected; /* into the document text */
  size_t expected_len;
} vector;

static uint8_t vector_bytes[MAX_VECTOR_BYTES];
static uint8_t file_bytes[MAX_VECTOR_BYTES + 1];
static uint8_t reencoded[MAX_VECTOR_BYTES];

static const char *source_dir(void) {
  const char *dir = getenv("VIGIL_SOURCE_DIR");
  return dir != NULL && dir[0] != '\0' ? dir : VIGIL_SOURCE_DIR;
}

/* Reads a whole file into a malloc'd NUL-terminated buffer, or NULL. */
static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  long n;

  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (text = malloc((size_t)n + 1)) != NULL) {
    *len = fread(text, 1, (size_t)n, f);
    text[*len] = '\0';
  }
  fclose(f);
  return text;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* "01 ff 61*300" -> bytes; returns the count or -1 if malformed. */
static long parse_hex(const char *p, const char *end, uint8_t *out, size_t cap) {
  size_t n = 0;

  while (p < end) {
    int hi, lo;
    unsigned long repeat = 1;
    if (*p == ' ') {
      p++;
      continue;
    }
    if (end - p < 2 || (hi = hex_digit(p[0])) < 0 || (lo = hex_digit(p[1])) < 0)
      return -1;
    p += 2;
    if (p < end && *p == '*') {
      char *stop;
      repeat = strtoul(p + 1, &stop, 10);
      if (stop == p + 1 || stop > end)
        return -1;
      p = stop;
    }
    if (p < end && *p != ' ')
      return -1;
    if (repeat > cap - n)
      return -1;
    memset(out + n, hi * 16 + lo, repeat);
    n += repeat;
  }
  return (long)n;
}

/* Hex without spaces, runs of 8 or more equal bytes as BB*N. */
static void append_hex(char *out, size_t cap, const uint8_t *b, size_t n) {
  size_t i = 0, used = strlen(out);

  while (i < n && used < cap) {
    size_t j = i;
    while (j < n && b[j] == b[i])
      j++;
    if (j - i >= 8) {
      used += (size_t)snprintf(out + used, cap - used, "%02x*%zu", b[i], j - i);
      i = j;
    } else {
      used += (size_t)snprintf(out + used, cap - used, "%02x", b[i]);
      i++;
    }
  }
}

/* The canonical result line of section 11 for one decode. */
static void describe(char *out, size_t cap, int rc, const vigil_frame *f) {
  size_t used;

  if (rc == VIGIL_ENEEDMORE) {
    snprintf(out, cap, "needmore");
    return;
  }
  if (rc < 0) {
    snprintf(out, cap, "%s", vigil_err_name(rc));
    return;
  }
  used = (size_t)snprintf(out, cap, "ok %s consumed=%d", vigil_wire_type_name(f->type), rc);
  switch (f->type) {
  case VIGIL_FRAME_HELLO:
    snprintf(out + used, cap - used,
             " version=%u interval_ms=%lu timeout_ms=%lu max_frame=%lu max_message=%lu id=",
             f->u.hello.version, (unsigned long)f->u.hello.interval_ms,
             (unsigned long)f->u.hello.timeout_ms, (unsigned long)f->u.hello.max_frame,
             (unsigned long)f->u.hello.max_message);
    append_hex(out, cap, (const uint8_t *)f->u.hello.id, f->u.hello.id_len);
    if (f->u.hello.version >= VIGIL_WIRE_VERSION_CRED) {
      used = strlen(out);
      snprintf(out + used, cap - used, " cred=");
      append_hex(out, cap, f->u.hello.cred, f->u.hello.cred_len);
    }
    break;
  case VIGIL_FRAME_WELCOME:
    snprintf(out + used, cap - used,
             " version=%u interval_ms=%lu timeout_ms=%lu min_ping_ms=%lu max_frame=%lu"
             " max_message=%lu",
             f->u.welcome.version, (unsigned long)f->u.welcome.interval_ms,
             (unsigned long)f->u.welcome.timeout_ms, (unsigned long)f->u.welcome.min_ping_ms,
             (unsigned long)f->u.welcome.max_frame, (unsigned long)f->u.welcome.max_message);
    break;
  case VIGIL_FRAME_DATA:
  case VIGIL_FRAME_DATA_MORE:
    snprintf(out + used, cap - used, " length=%lu", (unsigned long)f->length);
    break;
  case VIGIL_FRAME_CLOSE:
    snprintf(out + used, cap - used, " code=%u retry_after_ms=%lu reason=", f->u.close.code,
             (unsigned long)f->u.close.retry_after_ms);
    append_hex(out, cap, (const uint8_t *)f->u.close.reason, f->u.close.reason_len);
    break;
  default:
    break;
  }
}

static const char *trim(const char *p, const char *end, const char **stop) {
  while (p < end && *p == ' ')
    p++;
  while (end > p && (end[-1] == ' ' || end[-1] == '\r'))
    end--;
  *stop = end;
  return p;
}

typedef int (*vector_fn)(const vector *v, const uint8_t *bytes, void *arg);

/* Calls fn for each vector of the ```vectors block of docs/PROTOCOL.md, with
 * its bytes. Returns the number of vectors, or -1 (with a message) when the
 * document is missing or a line is malformed, or fn's non-zero result. */
static int for_each_vector(vector_fn fn, void *arg) {
  char path[1024];
  char *text, *line, *next;
  size_t len;
  int count = 0, in_block = 0, rc;

  snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", source_dir());
  text = read_text(path, &len);
  if (text == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    return -1;
  }
  for (line = text; line != NULL && *line != '\0'; line = next) {
    const char *bar[3], *f, *fend, *eol;
    vector v;
    long n;
    int k;

    next = strchr(line, '\n');
    eol = next != NULL ? next : line + strlen(line);
    if (next != NULL)
      next++;
    if (!in_block) {
      in_block = strncmp(line, "```vectors", 10) == 0;
      continue;
    }
    if (strncmp(line, "```", 3) == 0)
      break;
    if (line == eol || line[0] == '#' || line[0] == '\r')
      continue;
    for (k = 0, f = line; k < 3; k++, f = bar[k - 1] + 1)
      if ((bar[k] = memchr(f, '|', (size_t)(eol - f))) == NULL)
        break;
    memset(&v, 0, sizeof v);
    f = trim(line, bar[0] != NULL ? bar[0] : eol, &fend);
    if (k < 3 || fend == f || (size_t)(fend - f) >= sizeof v.name) {
      fprintf(stderr, "malformed vector line: %.*s\n", (int)(eol - line), line);
      free(text);
      return -1;
    }
    memcpy(v.name, f, (size_t)(fend - f));
    v.max_chunk = (uint32_t)strtoul(bar[0] + 1, NULL, 10);
    f = trim(bar[1] + 1, bar[2], &fend);
    n = parse_hex(f, fend, vector_bytes, sizeof vector_bytes);
    v.expected = trim(bar[2] + 1, eol, &fend);
    v.expected_len = (size_t)(fend - v.expected);
    if (n < 0 || v.expected_len == 0) {
      fprintf(stderr, "vector %s: malformed bytes or expectation\n", v.name);
      free(text);
      return -1;
    }
    v.len = (size_t)n;
    if ((rc = fn(&v, vector_bytes, arg)) != 0) {
      free(text);
      return rc > 0 ? -rc : rc;
    }
    count++;
  }
  free(text);
  return count;
}

/* Decodes one vector and checks the result line, the agreement of
 * decode_header with decode, and the re-encoding of an accepted frame. */
static int check_vector(const vector *v, const uint8_t *bytes, void *arg) {
  char got[1024];
  vigil_frame f;
  uint8_t type;
  uint32_t length;
  int rc, hn;

  (void)arg;
  memset(&f, 0, sizeof f);
  rc = vigil_wire_decode(bytes, v->len, v->max_chunk, &f);
  describe(got, sizeof got, rc, &f);
  if (strlen(got) != v->expected_len || memcmp(got, v->expected, v->expected_len) != 0)
    TEST_FAIL_AT("vector %s: got \"%s\", want \"%.*s\"", v->name, got, (int)v->expected_len,
                 v->expected);
  hn = vigil_wire_decode_header(bytes, v->len, v->max_chunk, &type, &length);
  if (hn < 0 && hn != VIGIL_ENEEDMORE)
    ASSERT_EQ(rc, hn); /* a header error is the frame's error */
  if (rc > 0) {
    ASSERT_GT(hn, 0);
    ASSERT_EQ(type, f.type);
    ASSERT_EQ(rc, hn + (int)length);
    if (vigil_wire_encode_frame(reencoded, sizeof reencoded, &f) != rc ||
        memcmp(reencoded, bytes, (size_t)rc) != 0)
      TEST_FAIL_AT("vector %s: re-encoding differs from the input", v->name);
  }
  return 0;
}

TEST_IMPL(vectors_from_protocol_doc) {
  int count = for_each_vector(check_vector, NULL);
  ASSERT_GE(count, MIN_VECTORS);
  return 0;
}

typedef struct seen_names {
  char names[MAX_VECTORS][64];
  int count;
  int write;
} seen_names;

static int check_bin_file(const vector *v, const uint8_t *bytes, void *arg) {
  seen_names *seen = arg;
  char path[1024];
  FILE *fp;
  size_t got;
  int i;

  for (i = 0; i < seen->count; i++)
    if (strcmp(seen->names[i], v->name) == 0)
      TEST_FAIL_AT("vector name %s is used twice", v->name);
  ASSERT_LT(seen->count, MAX_VECTORS);
  memcpy(seen->names[seen->count++], v->name, sizeof v->name);
  snprintf(path, sizeof path, "%s/tests/vectors/%s.bin", source_dir(), v->name);
  if (seen->write) {
    fp = fopen(path, "wb");
    ASSERT_NOT_NULL(fp);
    ASSERT_EQ(fwrite(bytes, 1, v->len, fp), v->len);
    ASSERT_EQ(fclose(fp), 0);
  }
  fp = fopen(path, "rb");
  if (fp == NULL)
    TEST_FAIL_AT("missing %s (run with VIGIL_WRITE_VECTORS=1 to write it)", path);
  got = fread(file_bytes, 1, sizeof file_bytes, fp);
  fclose(fp);
  if (got != v->len || memcmp(file_bytes, bytes, got) != 0)
    TEST_FAIL_AT("%s differs from vector %s in docs/PROTOCOL.md", path, v->name);
  return 0;
}

TEST_IMPL(vectors_match_bin_files) {
  static seen_names seen;
  char dir_path[1024];
  const char *w = getenv("VIGIL_WRITE_VECTORS");
  struct dirent *e;
  DIR *dir;
  int count, bins = 0, i;

  seen.count = 0;
  seen.write = w != NULL && strcmp(w, "1") == 0;
  count = for_each_vector(check_bin_file, &seen);
  ASSERT_GE(count, MIN_VECTORS);
  /* The other way round: no stale seed without a vector. */
  snprintf(dir_path, sizeof dir_path, "%s/tests/vectors", source_dir());
  dir = opendir(dir_path);
  ASSERT_NOT_NULL(dir);
  while ((e = readdir(dir)) != NULL) {
    size_t n = strlen(e->d_name);
    int found = 0;
    if (n < 5 || strcmp(e->d_name + n - 4, ".bin") != 0)
      continue;
    bins++;
    for (i = 0; i < seen.count && !found; i++)
      found = strlen(seen.names[i]) == n - 4 && memcmp(seen.names[i], e->d_name, n - 4) == 0;
    if (!found) {
      closedir(dir);
      TEST_FAIL_AT("tests/vectors/%s has no vector in docs/PROTOCOL.md", e->d_name);
    }
  }
  closedir(dir);
  ASSERT_EQ(bins, count);
  return 0;
}
