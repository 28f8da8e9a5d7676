/* Wire protocol codec, version 1 and HELLO version 2 (docs/PROTOCOL.md is
 * the normative spec). HELLO v2 is v1 with a credential after the id: an
 * opaque cred_len:u8 (1..255) + bytes, checked for length only here (what
 * it proves is the server's business, src/server.c).
 *
 * Design. Every frame is `type:u8 length:varint payload[length]`. The codec
 * is split the way a receiver needs it:
 *
 *  - vigil_wire_decode_header() looks only at the type byte and the length.
 *    It knows the smallest and largest payload each type may carry, so a
 *    receiver rejects a 4 GiB "HELLO" after at most six bytes instead of
 *    buffering it, and can stream a DATA payload straight to the application
 *    without holding it whole.
 *  - vigil_wire_decode() needs the whole frame in the buffer (it answers
 *    VIGIL_ENEEDMORE until then) and parses the HELLO / WELCOME / CLOSE
 *    fields. Payload bytes are never looked at before the whole frame is
 *    present, so every proper prefix of a frame with a valid header decodes as
 *    "need more": the answer depends on what the frame is, never on how the
 *    bytes happened to be split by TCP.
 *
 * A control payload is checked in two passes with a fixed order, so every
 * implementation reports the same error for the same bytes: first its
 * structure (magic, version, each varint well formed and inside the payload,
 * id length, from HELLO version 2 on the credential length, no trailing
 * bytes), then the values, field by field in wire
 * order. The value rules live in one place per frame (check_hello(),
 * check_welcome(), check_close()) and the encoders use the same functions, so
 * an encoder can only produce bytes its own decoder accepts, and a decoded
 * frame re-encodes to exactly the bytes it came from (varints are minimal and
 * trailing bytes are refused, so every frame has one encoding).
 *
 * Nothing here allocates; decoded ids, reasons and payloads point into the
 * caller's buffer. Encoders compute the full size before writing, so a too
 * small buffer is refused with VIGIL_ENOSPACE and left untouched. */
#include <string.h>

#include "vigil/errno.h"
#include "vigil/wire.h"

/* Smallest payloads: HELLO = magic + version + four 1-byte varints + id_len +
 * a 1-byte id; WELCOME = version + five 1-byte varints; CLOSE = code + a
 * 1-byte retry_after. */
#define MIN_HELLO (4 + 1 + 4 + 1 + 1)
#define MIN_WELCOME (1 + 5)
#define MIN_CLOSE (2 + 1)

static const uint8_t magic[4] = {'V', 'I', 'G', 'L'}; /* VIGIL_WIRE_MAGIC */

/* ---- varints -------------------------------------------------------------- */

static int varint_size(uint32_t value) {
  if (value < (1u << 7))
    return 1;
  if (value < (1u << 14))
    return 2;
  if (value < (1u << 21))
    return 3;
  if (value < (1u << 28))
    return 4;
  return 5;
}

/* Writes value at out; the caller has checked the room. */
static uint8_t *varint_put(uint8_t *out, uint32_t value) {
  while (value >= 0x80) {
    *out++ = (uint8_t)(value | 0x80);
    value >>= 7;
  }
  *out++ = (uint8_t)value;
  return out;
}

int vigil_varint_encode(uint8_t *out, size_t cap, uint32_t value) {
  int n = varint_size(value);

  if (out == NULL || cap < (size_t)n)
    return VIGIL_ENOSPACE;
  varint_put(out, value);
  return n;
}

int vigil_varint_decode(const uint8_t *buf, size_t len, uint32_t *value) {
  uint32_t v = 0;
  size_t i;

  if (buf == NULL)
    return VIGIL_ENEEDMORE;
  for (i = 0; i < len && i < VIGIL_WIRE_MAX_VARINT; i++) {
    uint8_t b = buf[i];
    /* The fifth byte carries bits 28..31 only; anything above 0x0F (a
     * continuation bit included) means too large or too long. */
    if (i == VIGIL_WIRE_MAX_VARINT - 1 && b > 0x0F)
      return VIGIL_EBADVARINT;
    v |= (uint32_t)(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) {
      /* A last byte of zero after others adds nothing: not minimal. */
      if (b == 0 && i > 0)
        return VIGIL_EBADVARINT;
      if (value != NULL)
        *value = v;
      return (int)i + 1;
    }
  }
  return VIGIL_ENEEDMORE;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* RFC 3629 section 4: the lead byte fixes the length and the range of the
 * second byte; that range is what excludes overlongs (E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..). */
int vigil_utf8_valid(const uint8_t *buf, size_t len) {
  size_t i = 0;

  if (buf == NULL)
    return len == 0;
  while (i < len) {
    uint8_t b = buf[i];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t n, k;

    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 3;
      if (b == 0xE0)
        lo = 0xA0;
      else if (b == 0xED)
        hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 4;
      if (b == 0xF0)
        lo = 0x90;
      else if (b == 0xF4)
        hi = 0x8F;
    } else {
      return 0; /* continuation byte as lead, C0/C1 overlong lead, F5..FF */
    }
    if (len - i < n)
      return 0;
    if (buf[i + 1] < lo || buf[i + 1] > hi)
      return 0;
    for (k = 2; k < n; k++)
      if ((buf[i + k] & 0xC0) != 0x80)
        return 0;
    i += n;
  }
  return 1;
}

/* ---- names ---------------------------------------------------------------- */

const char *vigil_close_code_text(uint16_t code) {
  switch (code) {
#define VIGIL__CLOSE_TEXT(name, value, text)                                                       \
  case (value):                                                                                    \
    return text;
    VIGIL_CLOSE_MAP(VIGIL__CLOSE_TEXT)
#undef VIGIL__CLOSE_TEXT
  default:
    return "unknown close code";
  }
}

const char *vigil_close_code_name(uint16_t code) {
  switch (code) {
#define VIGIL__CLOSE_NAME(name, value, text)                                                       \
  case (value):                                                                                    \
    return #name;
    VIGIL_CLOSE_MAP(VIGIL__CLOSE_NAME)
#undef VIGIL__CLOSE_NAME
  default:
    return "UNKNOWN";
  }
}

const char *vigil_wire_type_name(uint8_t type) {
  switch (type) {
  case VIGIL_FRAME_HELLO:
    return "HELLO";
  case VIGIL_FRAME_WELCOME:
    return "WELCOME";
  case VIGIL_FRAME_PING:
    return "PING";
  case VIGIL_FRAME_PONG:
    return "PONG";
  case VIGIL_FRAME_DATA:
    return "DATA";
  case VIGIL_FRAME_DATA_MORE:
    return "DATA_MORE";
  case VIGIL_FRAME_CLOSE:
    return "CLOSE";
  default:
    return "UNKNOWN";
  }
}

/* ---- header --------------------------------------------------------------- */

static uint32_t effective_chunk(uint32_t max_chunk) {
  if (max_chunk == 0 || max_chunk > VIGIL_WIRE_MAX_CHUNK)
    return VIGIL_WIRE_MAX_CHUNK;
  return max_chunk;
}

/* Payload bounds per type; 0 for an unknown type. */
static int payload_bounds(uint8_t type, uint32_t max_chunk, uint32_t *min, uint32_t *max) {
  *min = 0;
  switch (type) {
  case VIGIL_FRAME_HELLO:
    *min = MIN_HELLO;
    *max = VIGIL_WIRE_MAX_HELLO;
    return 1;
  case VIGIL_FRAME_WELCOME:
    *min = MIN_WELCOME;
    *max = VIGIL_WIRE_MAX_WELCOME;
    return 1;
  case VIGIL_FRAME_PING:
  case VIGIL_FRAME_PONG:
    *max = 0;
    return 1;
  case VIGIL_FRAME_DATA:
  case VIGIL_FRAME_DATA_MORE:
    *max = effective_chunk(max_chunk);
    return 1;
  case VIGIL_FRAME_CLOSE:
    *min = MIN_CLOSE;
    *max = VIGIL_WIRE_MAX_CLOSE;
    return 1;
  default:
    return 0;
  }
}

int vigil_wire_decode_header(const uint8_t *buf, size_t len, uint32_t max_chunk, uint8_t *type,
                             uint32_t *length) {
  uint32_t n, min, max;
  int rc;

  if (buf == NULL || len == 0)
    return VIGIL_ENEEDMORE;
  if (!payload_bounds(buf[0], max_chunk, &min, &max))
    return VIGIL_EBADTYPE;
  rc = vigil_varint_decode(buf + 1, len - 1, &n);
  if (rc < 0)
    return rc;
  if (n < min || n > max)
    return VIGIL_EFRAMESIZE;
  if (type != NULL)
    *type = buf[0];
  if (length != NULL)
    *length = n;
  return 1 + rc;
}

/* ---- field rules (shared by decoders and encoders) ------------------------ */

static int check_hello(const vigil_hello *h) {
  if (h->interval_ms < 1)
    return VIGIL_EBADFIELD;
  if (h->timeout_ms != 0 && h->timeout_ms < h->interval_ms)
    return VIGIL_EBADFIELD;
  if (h->max_frame < VIGIL_WIRE_MIN_CHUNK || h->max_frame > VIGIL_WIRE_MAX_CHUNK)
    return VIGIL_EBADFIELD;
  if (h->max_message < 1)
    return VIGIL_EBADFIELD;
  if (!vigil_utf8_valid((const uint8_t *)h->id, h->id_len))
    return VIGIL_EBADID;
  return 0;
}

static int check_welcome(const vigil_welcome *w) {
  if (w->interval_ms < 1)
    return VIGIL_EBADFIELD;
  if (w->timeout_ms <= w->interval_ms)
    return VIGIL_EBADFIELD;
  /* A client pings after `interval` of silence (jittered down to 3/4 of it);
   * a floor above the interval would make an obedient client a flooder. */
  if (w->min_ping_ms > w->interval_ms)
    return VIGIL_EBADFIELD;
  if (w->max_frame < VIGIL_WIRE_MIN_CHUNK || w->max_frame > VIGIL_WIRE_MAX_CHUNK)
    return VIGIL_EBADFIELD;
  if (w->max_message < 1)
    return VIGIL_EBADFIELD;
  return 0;
}

static int check_close(const vigil_close_frame *c) {
  if (c->reason_len > VIGIL_WIRE_MAX_REASON)
    return VIGIL_EBADFIELD;
  if (!vigil_utf8_valid((const uint8_t *)c->reason, c->reason_len))
    return VIGIL_EBADFIELD;
  return 0;
}

/* ---- payload decoders ----------------------------------------------------- */

/* A cursor over one complete payload. A varint cut short by the end of the
 * payload can never be completed (the frame is whole), so it is malformed. */
typedef struct cursor {
  const uint8_t *p;
  size_t left;
} cursor;

static int take_varint(cursor *c, uint32_t *value) {
  int rc = vigil_varint_decode(c->p, c->left, value);
  if (rc == VIGIL_ENEEDMORE)
    return VIGIL_EBADVARINT;
  if (rc < 0)
    return rc;
  c->p += rc;
  c->left -= (size_t)rc;
  return 0;
}

static int take_varints(cursor *c, uint32_t *const *values, size_t count) {
  size_t i;

  for (i = 0; i < count; i++) {
    int rc = take_varint(c, values[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int decode_hello(const uint8_t *p, uint32_t len, vigil_hello *h) {
  uint32_t *const fields[] = {&h->interval_ms, &h->timeout_ms, &h->max_frame, &h->max_message};
  cursor c;
  int rc;

  if (memcmp(p, magic, sizeof magic) != 0)
    return VIGIL_EBADMAGIC;
  h->version = p[4];
  if (h->version == 0)
    return VIGIL_EVERSION;
  c.p = p + 5;
  c.left = len - 5u;
  if ((rc = take_varints(&c, fields, 4)) < 0)
    return rc;
  if (c.left < 2 || c.p[0] == 0 || c.p[0] > c.left - 1)
    return VIGIL_EBADID; /* id_len missing, zero, or past the payload */
  h->id_len = c.p[0];
  h->id = (const char *)(c.p + 1);
  c.p += 1u + h->id_len;
  c.left -= 1u + h->id_len;
  if (h->version >= VIGIL_WIRE_VERSION_CRED) {
    if (c.left < 2 || c.p[0] == 0 || c.p[0] > c.left - 1)
      return VIGIL_EBADCRED; /* cred_len missing, zero, or past the payload */
    h->cred_len = c.p[0];
    h->cred = c.p + 1;
    c.left -= 1u + h->cred_len;
  }
  if (c.left > 0)
    return VIGIL_ETRAILING;
  return check_hello(h);
}

static int decode_welcome(const uint8_t *p, uint32_t len, vigil_welcome *w) {
  uint32_t *const fields[] = {&w->interval_ms, &w->timeout_ms, &w->min_ping_ms, &w->max_frame,
                              &w->max_message};
  cursor c;
  int rc;

  w->version = p[0];
  if (w->version != VIGIL_WIRE_VERSION)
    return VIGIL_EVERSION;
  c.p = p + 1;
  c.left = len - 1u;
  if ((rc = take_varints(&c, fields, 5)) < 0)
    return rc;
  if (c.left != 0)
    return VIGIL_ETRAILING;
  return check_welcome(w);
}

static int decode_close(const uint8_t *p, uint32_t len, vigil_close_frame *cf) {
  cursor c;
  int rc;

  cf->code = (uint16_t)((p[0] << 8) | p[1]);
  c.p = p + 2;
  c.left = len - 2u;
  if ((rc = take_varint(&c, &cf->retry_after_ms)) < 0)
    return rc;
  /* The reason is the rest of the payload; the header bound lets it reach
   * 127 bytes when retry_after is short, so its own limit is checked here. */
  if (c.left > VIGIL_WIRE_MAX_REASON)
    return VIGIL_EBADFIELD;
  cf->reason_len = (uint8_t)c.left;
  cf->reason = (const char *)c.p;
  return check_close(cf);
}

int vigil_wire_decode(const uint8_t *buf, size_t len, uint32_t max_chunk, vigil_frame *frame) {
  uint8_t type;
  uint32_t length;
  const uint8_t *p;
  int hn, rc = 0;

  if (frame == NULL)
    return VIGIL_EINVAL;
  hn = vigil_wire_decode_header(buf, len, max_chunk, &type, &length);
  if (hn < 0)
    return hn;
  if (len - (size_t)hn < length)
    return VIGIL_ENEEDMORE;
  p = buf + hn;
  memset(frame, 0, sizeof *frame);
  frame->type = type;
  frame->length = length;
  frame->payload = p;
  if (type == VIGIL_FRAME_HELLO)
    rc = decode_hello(p, length, &frame->u.hello);
  else if (type == VIGIL_FRAME_WELCOME)
    rc = decode_welcome(p, length, &frame->u.welcome);
  else if (type == VIGIL_FRAME_CLOSE)
    rc = decode_close(p, length, &frame->u.close);
  if (rc < 0)
    return rc;
  /* At most 6 + 16384 bytes (DATA) or 6 + 537 (HELLO): fits an int. */
  return hn + (int)length;
}

/* ---- encoders ------------------------------------------------------------- */

/* Room check and header for a frame of `payload_len` bytes; returns the total
 * frame size, or VIGIL_ENOSPACE with nothing written. */
static int frame_begin(uint8_t *out, size_t cap, uint8_t type, uint32_t payload_len,
                       uint8_t **payload) {
  size_t total = 1 + (size_t)varint_size(payload_len) + payload_len;

  if (out == NULL || cap < total)
    return VIGIL_ENOSPACE;
  out[0] = type;
  *payload = varint_put(out + 1, payload_len);
  return (int)total;
}

/* Encoders report unencodable values as VIGIL_EINVAL, except a bad id. */
static int as_encode_error(int rc) {
  return rc == VIGIL_EBADID ? rc : VIGIL_EINVAL;
}

int vigil_wire_encode_hello(uint8_t *out, size_t cap, const vigil_hello *h) {
  uint32_t payload_len;
  uint8_t *p;
  int rc, total;

  if (h == NULL || h->version == 0 || (h->id == NULL && h->id_len != 0) ||
      (h->cred == NULL && h->cred_len != 0))
    return VIGIL_EINVAL;
  /* One encoding per meaning: version 1 is "no credential". */
  if ((h->version >= VIGIL_WIRE_VERSION_CRED) != (h->cred_len != 0))
    return VIGIL_EINVAL;
  if (h->id_len == 0)
    return VIGIL_EBADID;
  if ((rc = check_hello(h)) < 0)
    return as_encode_error(rc);
  payload_len = (uint32_t)(4 + 1 + varint_size(h->interval_ms) + varint_size(h->timeout_ms) +
                           varint_size(h->max_frame) + varint_size(h->max_message) + 1 + h->id_len +
                           (h->cred_len != 0 ? 1 + h->cred_len : 0));
  total = frame_begin(out, cap, VIGIL_FRAME_HELLO, payload_len, &p);
  if (total < 0)
    return total;
  memcpy(p, magic, sizeof magic);
  p[4] = h->version;
  p = varint_put(p + 5, h->interval_ms);
  p = varint_put(p, h->timeout_ms);
  p = varint_put(p, h->max_frame);
  p = varint_put(p, h->max_message);
  *p++ = h->id_len;
  memcpy(p, h->id, h->id_len);
  if (h->cred_len != 0) {
    p += h->id_len;
    *p++ = h->cred_len;
    memcpy(p, h->cred, h->cred_len);
  }
  return total;
}

int vigil_wire_encode_welcome(uint8_t *out, size_t cap, const vigil_welcome *w) {
  uint32_t payload_len;
  uint8_t *p;
  int total;

  if (w == NULL || w->version != VIGIL_WIRE_VERSION || check_welcome(w) < 0)
    return VIGIL_EINVAL;
  payload_len = (uint32_t)(1 + varint_size(w->interval_ms) + varint_size(w->timeout_ms) +
                           varint_size(w->min_ping_ms) + varint_size(w->max_frame) +
                           varint_size(w->max_message));
  total = frame_begin(out, cap, VIGIL_FRAME_WELCOME, payload_len, &p);
  if (total < 0)
    return total;
  *p++ = w->version;
  p = varint_put(p, w->interval_ms);
  p = varint_put(p, w->timeout_ms);
  p = varint_put(p, w->min_ping_ms);
  p = varint_put(p, w->max_frame);
  varint_put(p, w->max_message);
  return total;
}

static int encode_empty(uint8_t *out, size_t cap, uint8_t type) {
  uint8_t *p;
  return frame_begin(out, cap, type, 0, &p);
}

int vigil_wire_encode_ping(uint8_t *out, size_t cap) {
  return encode_empty(out, cap, VIGIL_FRAME_PING);
}

int vigil_wire_encode_pong(uint8_t *out, size_t cap) {
  return encode_empty(out, cap, VIGIL_FRAME_PONG);
}

int vigil_wire_encode_close(uint8_t *out, size_t cap, const vigil_close_frame *c) {
  uint8_t *p;
  int total;

  if (c == NULL || (c->reason == NULL && c->reason_len != 0) || check_close(c) < 0)
    return VIGIL_EINVAL;
  total = frame_begin(out, cap, VIGIL_FRAME_CLOSE,
                      (uint32_t)(2 + varint_size(c->retry_after_ms) + c->reason_len), &p);
  if (total < 0)
    return total;
  p[0] = (uint8_t)(c->code >> 8);
  p[1] = (uint8_t)(c->code & 0xFF);
  p = varint_put(p + 2, c->retry_after_ms);
  if (c->reason_len != 0)
    memcpy(p, c->reason, c->reason_len);
  return total;
}

int vigil_wire_encode_data_header(uint8_t *out, size_t cap, int more, uint32_t length) {
  size_t n;

  if (length > VIGIL_WIRE_MAX_CHUNK)
    return VIGIL_EINVAL;
  n = 1 + (size_t)varint_size(length);
  if (out == NULL || cap < n)
    return VIGIL_ENOSPACE;
  out[0] = more ? VIGIL_FRAME_DATA_MORE : VIGIL_FRAME_DATA;
  varint_put(out + 1, length);
  return (int)n;
}

int vigil_wire_encode_frame(uint8_t *out, size_t cap, const vigil_frame *f) {
  int hn;

  if (f == NULL)
    return VIGIL_EINVAL;
  switch (f->type) {
  case VIGIL_FRAME_HELLO:
    return vigil_wire_encode_hello(out, cap, &f->u.hello);
  case VIGIL_FRAME_WELCOME:
    return vigil_wire_encode_welcome(out, cap, &f->u.welcome);
  case VIGIL_FRAME_PING:
  case VIGIL_FRAME_PONG:
    return f->length != 0 ? VIGIL_EINVAL : encode_empty(out, cap, f->type);
  case VIGIL_FRAME_CLOSE:
    return vigil_wire_encode_close(out, cap, &f->u.close);
  case VIGIL_FRAME_DATA:
  case VIGIL_FRAME_DATA_MORE:
    if (f->payload == NULL && f->length != 0)
      return VIGIL_EINVAL;
    if (f->length > VIGIL_WIRE_MAX_CHUNK)
      return VIGIL_EINVAL;
    hn = 1 + varint_size(f->length);
    if (out == NULL || cap < (size_t)hn + f->length)
      return VIGIL_ENOSPACE;
    vigil_wire_encode_data_header(out, cap, f->type == VIGIL_FRAME_DATA_MORE, f->length);
    if (f->length != 0)
      memcpy(out + hn, f->payload, f->length);
    return hn + (int)f->length;
  default:
    return VIGIL_EINVAL;
  }
}
