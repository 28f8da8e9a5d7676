/* Fuzz target for the wire codec (src/wire.c).
 *
 * The input is a byte stream as a peer could send it. It is decoded frame by
 * frame twice: with the default DATA limit (max_chunk 0) and with a limit
 * picked from the first byte (so limits below, at and above 16384 are all
 * exercised while the seed files stay plain frames: tests/vectors/ *.bin).
 * After a decoding error the next pass starts one byte later, so one input
 * exercises many frame starts.
 *
 * Every decode is checked against invariants the rest of vigil relies on,
 * and abort()s on a violation:
 *  - consumed <= len; consumed == header + payload length;
 *  - decode_header agrees with decode: same type and length, a header error
 *    is the frame's error, "need more" only when the frame is incomplete;
 *  - the error is one the header documents for that stage;
 *  - pointers in the result point inside the input; a HELLO has a
 *    credential exactly when its version is 2 or more;
 *  - a decoded frame re-encodes to exactly the bytes it came from, and the
 *    encoder refuses a buffer one byte short;
 *  - every proper prefix of a decoded frame is "need more";
 *  - varints re-encode to their bytes; vigil_utf8_valid agrees with a
 *    straightforward code-point decoder written differently.
 * It then runs the encoders on field values taken from the input and checks
 * that whatever they accept decodes back to the same values.
 *
 * The fuzz build compiles the whole library with -fsanitize=fuzzer-no-link,
 * so the codec linked from libvigil carries coverage feedback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_CHUNK + 16];

static void require(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz-decode invariant violated: %s\n", what);
    abort();
  }
}

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len) {
  const uint8_t *q = p;
  return n == 0 || (q >= buf && q <= buf + len && n <= (size_t)(buf + len - q));
}

/* Reference UTF-8 check: decode each code point, then judge it. */
static int utf8_reference(const uint8_t *s, size_t n) {
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t k, len = s[i] < 0x80         ? 1
                    : s[i] >> 5 == 0x6  ? 2
                    : s[i] >> 4 == 0xE  ? 3
                    : s[i] >> 3 == 0x1E ? 4
                                        : 0;
    if (len == 0 || n - i < len)
      return 0;
    cp = len == 1 ? s[i] : (uint32_t)(s[i] & (0x7F >> len));
    for (k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

static int is_header_error(int rc) {
  return rc == VIGIL_EBADTYPE || rc == VIGIL_EBADVARINT || rc == VIGIL_EFRAMESIZE;
}

static int is_payload_error(int rc) {
  return rc == VIGIL_EBADMAGIC || rc == VIGIL_EVERSION || rc == VIGIL_EBADVARINT ||
         rc == VIGIL_EBADID || rc == VIGIL_EBADCRED || rc == VIGIL_ETRAILING ||
         rc == VIGIL_EBADFIELD;
}

static void check_accepted(const uint8_t *buf, size_t len, uint32_t max_chunk, int rc,
                           const vigil_frame *f, int hn, uint32_t length) {
  vigil_frame g;
  size_t cut, step;

  require((size_t)rc <= len, "consumed more than the buffer");
  require(hn > 0 && rc == hn + (int)length && f->length == length, "header disagrees with frame");
  require(f->payload == buf + hn, "payload does not follow the header");
  if (f->type == VIGIL_FRAME_HELLO) {
    require(inside(f->u.hello.id, f->u.hello.id_len, buf, (size_t)rc), "id outside the frame");
    require(inside(f->u.hello.cred, f->u.hello.cred_len, buf, (size_t)rc),
            "credential outside the frame");
    /* Version 2 and up carry a credential of 1..255 bytes, version 1 none. */
    require((f->u.hello.version >= VIGIL_WIRE_VERSION_CRED) == (f->u.hello.cred_len != 0),
            "credential present in the wrong HELLO version");
  }
  if (f->type == VIGIL_FRAME_CLOSE)
    require(inside(f->u.close.reason, f->u.close.reason_len, buf, (size_t)rc),
            "reason outside the frame");
  require(vigil_wire_encode_frame(scratch, sizeof scratch, f) == rc, "re-encoded size differs");
  require(memcmp(scratch, buf, (size_t)rc) == 0, "re-encoded bytes differ");
  require(vigil_wire_encode_frame(scratch, (size_t)rc - 1, f) == VIGIL_ENOSPACE,
          "encoder accepted a buffer one byte short");
  /* Prefixes: all of them for control frames, a sample for big DATA. */
  step = rc <= 300 ? 1 : (size_t)rc / 97;
  for (cut = 0; cut < (size_t)rc; cut += step)
    require(vigil_wire_decode(buf, cut, max_chunk, &g) == VIGIL_ENEEDMORE,
            "a proper prefix of a frame did not need more");
  require(vigil_wire_decode(buf, (size_t)rc - 1, max_chunk, &g) == VIGIL_ENEEDMORE,
          "frame minus one byte did not need more");
}

/* One decode at buf and its invariants; returns what decode returned. */
static int decode_one(const uint8_t *buf, size_t len, uint32_t max_chunk) {
  vigil_frame f;
  uint8_t type = 0;
  uint32_t length = 0;
  int rc = vigil_wire_decode(buf, len, max_chunk, &f);
  int hn = vigil_wire_decode_header(buf, len, max_chunk, &type, &length);

  if (hn > 0)
    require(hn >= 2 && hn <= VIGIL_WIRE_MAX_HEADER && (size_t)hn <= len, "bad header size");
  else
    require(hn == VIGIL_ENEEDMORE || is_header_error(hn), "undocumented header error");
  if (rc > 0) {
    require(f.type == type, "type differs from the header's");
    check_accepted(buf, len, max_chunk, rc, &f, hn, length);
  } else if (rc == VIGIL_ENEEDMORE) {
    require(hn == VIGIL_ENEEDMORE || (hn > 0 && len - (size_t)hn < length),
            "need more although the frame is complete");
  } else if (hn < 0) {
    require(rc == hn, "frame error differs from its header error");
  } else {
    require(len - (size_t)hn >= length, "payload error before the payload arrived");
    require(is_payload_error(rc), "undocumented payload error");
    require(type == VIGIL_FRAME_HELLO || type == VIGIL_FRAME_WELCOME || type == VIGIL_FRAME_CLOSE,
            "payload error on a frame without fields");
  }
  return rc;
}

static void decode_stream(const uint8_t *data, size_t size, uint32_t max_chunk) {
  size_t off = 0;
  while (off < size) {
    int rc = decode_one(data + off, size - off, max_chunk);
    if (rc == VIGIL_ENEEDMORE)
      break;
    off += rc > 0 ? (size_t)rc : 1;
  }
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Field values from the input through the encoders and back. */
/* Each encoder on field values from the input (size >= 24): what it accepts
 * decodes back to the same values; what it refuses, it refuses with an error
 * its header documents. */
static void encode_hello_fields(const uint8_t *data, size_t size) {
  vigil_frame f;
  vigil_hello h;
  int n;

  memset(&h, 0, sizeof h);
  h.version = data[0];
  h.interval_ms = le32(data + 1);
  h.timeout_ms = le32(data + 5);
  h.max_frame = le32(data + 9) % 20000;
  h.max_message = le32(data + 13);
  h.id_len = (uint8_t)(size - 17 > 255 ? 255 : size - 17);
  h.id = (const char *)data + 17;
  if (h.version >= VIGIL_WIRE_VERSION_CRED || (data[1] & 1)) {
    /* The rest split into id and credential where the 18th byte says
     * (also offered to version 0 and 1, which must refuse it). */
    size_t rest = size - 17, id_len = rest > 1 ? 1 + data[17] % (rest - 1) : rest;
    h.id_len = (uint8_t)(id_len > 255 ? 255 : id_len);
    h.cred = data + 17 + h.id_len;
    h.cred_len = (uint8_t)(rest - h.id_len > 255 ? 255 : rest - h.id_len);
  }
  n = vigil_wire_encode_hello(scratch, sizeof scratch, &h);
  if (n > 0) {
    require(vigil_wire_decode(scratch, (size_t)n, 0, &f) == n, "encoded HELLO does not decode");
    require(f.u.hello.version == h.version && f.u.hello.interval_ms == h.interval_ms &&
                f.u.hello.timeout_ms == h.timeout_ms && f.u.hello.max_frame == h.max_frame &&
                f.u.hello.max_message == h.max_message && f.u.hello.id_len == h.id_len &&
                memcmp(f.u.hello.id, h.id, h.id_len) == 0 && f.u.hello.cred_len == h.cred_len &&
                (h.cred_len == 0 || memcmp(f.u.hello.cred, h.cred, h.cred_len) == 0),
            "HELLO fields changed in a round trip");
    require((h.version >= VIGIL_WIRE_VERSION_CRED) == (h.cred_len != 0),
            "HELLO encoded with a credential in the wrong version");
  } else {
    require(n == VIGIL_EINVAL || n == VIGIL_EBADID, "undocumented HELLO encoder error");
  }
}

static void encode_welcome_fields(const uint8_t *data) {
  vigil_frame f;
  vigil_welcome w;
  int n;

  memset(&w, 0, sizeof w);
  w.version = (uint8_t)(data[0] & 3);
  w.interval_ms = le32(data + 1);
  w.timeout_ms = le32(data + 5);
  w.min_ping_ms = le32(data + 9);
  w.max_frame = le32(data + 13) % 20000;
  w.max_message = le32(data + 17);
  n = vigil_wire_encode_welcome(scratch, sizeof scratch, &w);
  if (n > 0) {
    require(vigil_wire_decode(scratch, (size_t)n, 0, &f) == n, "encoded WELCOME does not decode");
    require(f.u.welcome.version == w.version && f.u.welcome.interval_ms == w.interval_ms &&
                f.u.welcome.timeout_ms == w.timeout_ms &&
                f.u.welcome.min_ping_ms == w.min_ping_ms && f.u.welcome.max_frame == w.max_frame &&
                f.u.welcome.max_message == w.max_message,
            "WELCOME fields changed in a round trip");
  } else {
    require(n == VIGIL_EINVAL, "undocumented WELCOME encoder error");
  }
}

static void encode_close_fields(const uint8_t *data, size_t size) {
  vigil_frame f;
  vigil_close_frame c;
  int n;

  memset(&c, 0, sizeof c);
  c.code = (uint16_t)(data[0] << 8 | data[1]);
  c.retry_after_ms = le32(data + 2);
  c.reason_len = (uint8_t)(size - 6 > 130 ? 130 : size - 6);
  c.reason = (const char *)data + 6;
  n = vigil_wire_encode_close(scratch, sizeof scratch, &c);
  if (n > 0) {
    require(vigil_wire_decode(scratch, (size_t)n, 0, &f) == n, "encoded CLOSE does not decode");
    require(f.u.close.code == c.code && f.u.close.retry_after_ms == c.retry_after_ms &&
                f.u.close.reason_len == c.reason_len &&
                memcmp(f.u.close.reason, c.reason, c.reason_len) == 0,
            "CLOSE fields changed in a round trip");
  } else {
    require(n == VIGIL_EINVAL, "undocumented CLOSE encoder error");
  }
}

static void encode_from_fields(const uint8_t *data, size_t size) {
  if (size < 24)
    return;
  encode_hello_fields(data, size);
  encode_welcome_fields(data);
  encode_close_fields(data, size);
}

static void check_varints_and_utf8(const uint8_t *data, size_t size) {
  size_t off;
  for (off = 0; off < size && off < 8; off++) {
    uint32_t v;
    int n = vigil_varint_decode(data + off, size - off, &v);
    if (n > 0) {
      require(vigil_varint_encode(scratch, sizeof scratch, v) == n, "varint size differs");
      require(memcmp(scratch, data + off, (size_t)n) == 0, "varint bytes differ");
    } else {
      require(n == VIGIL_ENEEDMORE || n == VIGIL_EBADVARINT, "undocumented varint error");
    }
  }
  require(vigil_utf8_valid(data, size) == utf8_reference(data, size),
          "utf8_valid disagrees with the reference decoder");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  decode_stream(data, size, 0);
  if (size > 0)
    decode_stream(data, size, (uint32_t)data[0] * 65u); /* 0 .. 16575 */
  check_varints_and_utf8(data, size);
  encode_from_fields(data, size);
  return 0;
}
