#ifndef VIGIL_WIRE_H
#define VIGIL_WIRE_H

/* Wire protocol v1 codec (with v2's HELLO, which adds a credential). The normative spec, with byte
 * layouts and test vectors, is docs/PROTOCOL.md; this is its C face.
 *
 * Every frame is   type:u8  length:varint  payload[length]
 * where varint is unsigned LEB128, minimally encoded, at most 5 bytes and at
 * most 0xFFFFFFFF. Frame types and their payloads:
 *
 *   0x01 HELLO      client -> server, first frame of a connection:
 *                   magic "VIGL", version:u8, interval_ms:varint,
 *                   timeout_ms:varint, max_frame:varint, max_message:varint,
 *                   id_len:u8 (1..255), id[id_len] (UTF-8); from version 2
 *                   on also cred_len:u8 (1..255), cred[cred_len] (opaque)
 *   0x02 WELCOME    server -> client, answer to HELLO: version:u8,
 *                   interval_ms, timeout_ms, min_ping_ms, max_frame,
 *                   max_message (varints) -- the agreed values
 *   0x03 PING       empty payload: 2 bytes on the wire (03 00)
 *   0x04 PONG       empty payload: 2 bytes on the wire (04 00)
 *   0x05 DATA       the last (or only) chunk of a message
 *   0x06 DATA_MORE  a chunk with more of the same message to follow
 *                   chunk payload <= agreed max_frame (<= 16384)
 *   0x07 CLOSE      code:u16 big-endian, retry_after_ms:varint,
 *                   reason (rest of payload, UTF-8, <= 123 bytes)
 *
 * Payload limits per type (checked by decode_header, before any payload
 * byte is needed): HELLO 11..VIGIL_WIRE_MAX_HELLO, WELCOME
 * 6..VIGIL_WIRE_MAX_WELCOME, PING / PONG exactly 0, CLOSE
 * 3..VIGIL_WIRE_MAX_CLOSE, DATA / DATA_MORE 0..max_chunk.
 *
 * Decoding never allocates and checks every length before use; results point
 * into the caller's buffer. Encoding writes into caller buffers. Field value
 * rules (VIGIL_EBADFIELD) and the order in which errors are reported are in
 * docs/PROTOCOL.md; the encoders enforce the same rules, so whatever they
 * write decodes, and a decoded frame re-encodes to the same bytes. */

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define VIGIL_WIRE_VERSION 1
/* HELLO version 2 = version 1 + a credential after the id (PROTOCOL.md
 * section 4.1). Everything else, WELCOME's version included, is as in 1. */
#define VIGIL_WIRE_VERSION_CRED 2
#define VIGIL_WIRE_MAGIC "VIGL"
#define VIGIL_WIRE_MAX_VARINT 5
#define VIGIL_WIRE_MAX_HEADER (1 + VIGIL_WIRE_MAX_VARINT)
#define VIGIL_WIRE_MAX_CHUNK 16384u /* largest DATA payload ever allowed */
#define VIGIL_WIRE_MIN_CHUNK 64u    /* smallest max_frame a peer may ask */
#define VIGIL_WIRE_MAX_ID 255u
#define VIGIL_WIRE_MAX_REASON 123u
#define VIGIL_WIRE_MAX_CRED 255u
/* Largest control payload (HELLO v2 with a 255-byte id and credential). */
#define VIGIL_WIRE_MAX_HELLO                                                                       \
  (4 + 1 + 4 * VIGIL_WIRE_MAX_VARINT + 1 + VIGIL_WIRE_MAX_ID + 1 + VIGIL_WIRE_MAX_CRED)
#define VIGIL_WIRE_MAX_WELCOME (1 + 5 * VIGIL_WIRE_MAX_VARINT)
#define VIGIL_WIRE_MAX_CLOSE (2 + VIGIL_WIRE_MAX_VARINT + VIGIL_WIRE_MAX_REASON)
/* Bytes a receiver may need to hold back to complete one control frame. */
#define VIGIL_WIRE_MAX_CONTROL_FRAME (VIGIL_WIRE_MAX_HEADER + VIGIL_WIRE_MAX_HELLO)

typedef enum vigil_frame_type {
  VIGIL_FRAME_HELLO = 0x01,
  VIGIL_FRAME_WELCOME = 0x02,
  VIGIL_FRAME_PING = 0x03,
  VIGIL_FRAME_PONG = 0x04,
  VIGIL_FRAME_DATA = 0x05,
  VIGIL_FRAME_DATA_MORE = 0x06,
  VIGIL_FRAME_CLOSE = 0x07
} vigil_frame_type;

/* CLOSE codes. X(name, value, text). */
#define VIGIL_CLOSE_MAP(X)                                                                         \
  X(NORMAL, 0, "goodbye")                                                                          \
  X(GOING_AWAY, 1, "server shutting down")                                                         \
  X(PROTOCOL_ERROR, 2, "protocol error")                                                           \
  X(POLICY, 3, "policy")                                                                           \
  X(PING_FLOOD, 4, "pinging faster than the agreed minimum")                                       \
  X(TOO_BIG, 5, "frame or message too large")                                                      \
  X(VERSION, 6, "unsupported protocol version")                                                    \
  X(SERVER_FULL, 7, "server full")                                                                 \
  X(TAKEOVER, 8, "replaced by a newer connection with the same id")                                \
  X(HANDSHAKE_TIMEOUT, 9, "handshake too slow")                                                    \
  X(QUEUE_FULL, 10, "outbound queue full")                                                         \
  X(TIMEOUT, 11, "peer declared dead")                                                             \
  X(ADDRESS_LIMIT, 12, "too many connections from this address")                                   \
  X(AUTH_FAILED, 13, "authentication failed")

typedef enum vigil_close_code {
#define VIGIL__CLOSE_ENUM(name, value, text) VIGIL_CLOSE_##name = (value),
  VIGIL_CLOSE_MAP(VIGIL__CLOSE_ENUM)
#undef VIGIL__CLOSE_ENUM
      VIGIL_CLOSE_CODE_MAX__ = 0xFFFF
} vigil_close_code;

typedef struct vigil_hello {
  uint8_t version;
  uint32_t interval_ms;
  uint32_t timeout_ms;
  uint32_t max_frame;
  uint32_t max_message;
  uint8_t id_len;
  uint8_t cred_len;    /* version 1: 0; version >= 2: 1..255 */
  const char *id;      /* not NUL-terminated */
  const uint8_t *cred; /* the credential (version >= 2), opaque bytes */
} vigil_hello;

typedef struct vigil_welcome {
  uint8_t version;
  uint32_t interval_ms;
  uint32_t timeout_ms;
  uint32_t min_ping_ms;
  uint32_t max_frame;
  uint32_t max_message;
} vigil_welcome;

typedef struct vigil_close_frame {
  uint16_t code;
  uint32_t retry_after_ms;
  uint8_t reason_len;
  const char *reason; /* not NUL-terminated */
} vigil_close_frame;

typedef struct vigil_frame {
  uint8_t type;           /* vigil_frame_type */
  uint32_t length;        /* payload length */
  const uint8_t *payload; /* into the decoded buffer */
  union {
    vigil_hello hello;
    vigil_welcome welcome;
    vigil_close_frame close;
  } u; /* filled for HELLO, WELCOME, CLOSE */
} vigil_frame;

/* Varints. encode returns bytes written (1..5) or VIGIL_ENOSPACE; decode
 * returns bytes consumed, VIGIL_ENEEDMORE, or VIGIL_EBADVARINT (too long,
 * too large, or not minimal). */
VIGIL_EXTERN int vigil_varint_encode(uint8_t *out, size_t cap, uint32_t value);
VIGIL_EXTERN int vigil_varint_decode(const uint8_t *buf, size_t len, uint32_t *value);

/* Frame header only: type and payload length, checked against the smallest
 * and largest payload that type may have (DATA / DATA_MORE: max_chunk, where
 * 0 or anything above VIGIL_WIRE_MAX_CHUNK means VIGIL_WIRE_MAX_CHUNK).
 * Returns header bytes consumed (2..6); VIGIL_ENEEDMORE (len == 0 or the
 * length varint is incomplete); VIGIL_EBADTYPE (as soon as the type byte is
 * there); VIGIL_EBADVARINT; VIGIL_EFRAMESIZE. Lets a receiver reject an
 * oversized frame as soon as its header arrives, and stream DATA payload
 * without buffering it. type and length may be NULL. */
VIGIL_EXTERN int vigil_wire_decode_header(const uint8_t *buf, size_t len, uint32_t max_chunk,
                                          uint8_t *type, uint32_t *length);

/* A whole frame, with HELLO / WELCOME / CLOSE fields parsed and validated.
 * Returns bytes consumed (header + payload; bytes after the frame are left
 * alone); VIGIL_ENEEDMORE if buf holds less than one frame whose header is
 * valid (payload bytes are not inspected until the whole frame is there);
 * the errors of decode_header; VIGIL_EBADMAGIC; VIGIL_EVERSION (HELLO version
 * 0, WELCOME version other than 1); VIGIL_EBADVARINT (a field varint that is
 * malformed or runs past the payload); VIGIL_EBADID (id_len 0, past the
 * payload, or id not UTF-8); VIGIL_EBADCRED (HELLO version >= 2: cred_len
 * missing, 0 or past the payload); VIGIL_ETRAILING; VIGIL_EBADFIELD (a value
 * out of range, a CLOSE reason over 123 bytes or not UTF-8); VIGIL_EINVAL
 * (frame NULL). On error *frame is unspecified. A HELLO of version 2 or more
 * decodes with a credential after the id; a version above 2 decodes too:
 * refusing it is the server's policy. */
VIGIL_EXTERN int vigil_wire_decode(const uint8_t *buf, size_t len, uint32_t max_chunk,
                                   vigil_frame *frame);

/* Encoders return bytes written, VIGIL_ENOSPACE if cap is too small (nothing
 * is written then), or VIGIL_EINVAL / VIGIL_EBADID for values the protocol
 * cannot carry (the same rules the decoder applies: a HELLO with version 0,
 * a HELLO of version 1 with a credential or of version >= 2 without one
 * (cred NULL with a non-zero cred_len too), an out-of-range field, a WELCOME version other than 1,
 * a CLOSE reason over 123 bytes or not UTF-8, a NULL pointer with a non-zero length -> EINVAL; an
 * id of length 0 or not UTF-8 -> EBADID). Values are checked before room, so a bad value is EINVAL
 * / EBADID whatever cap is. */
VIGIL_EXTERN int vigil_wire_encode_hello(uint8_t *out, size_t cap, const vigil_hello *h);
VIGIL_EXTERN int vigil_wire_encode_welcome(uint8_t *out, size_t cap, const vigil_welcome *w);
VIGIL_EXTERN int vigil_wire_encode_ping(uint8_t *out, size_t cap);
VIGIL_EXTERN int vigil_wire_encode_pong(uint8_t *out, size_t cap);
VIGIL_EXTERN int vigil_wire_encode_close(uint8_t *out, size_t cap, const vigil_close_frame *c);
/* DATA (more == 0) / DATA_MORE header for a chunk of `length` bytes that the
 * caller writes right after it. VIGIL_EINVAL if length > VIGIL_WIRE_MAX_CHUNK
 * (respecting the peer's smaller agreed max_frame is the caller's job). */
VIGIL_EXTERN int vigil_wire_encode_data_header(uint8_t *out, size_t cap, int more, uint32_t length);
/* Any frame as vigil_wire_decode() fills it: type, and u.hello / u.welcome /
 * u.close, or length + payload for DATA / DATA_MORE (copied after the
 * header). PING / PONG need length 0. Same errors as the encoders above;
 * VIGIL_EINVAL for an unknown type. */
VIGIL_EXTERN int vigil_wire_encode_frame(uint8_t *out, size_t cap, const vigil_frame *f);

/* "HELLO", "WELCOME", "PING", "PONG", "DATA", "DATA_MORE", "CLOSE", or
 * "UNKNOWN"; never NULL. */
VIGIL_EXTERN const char *vigil_wire_type_name(uint8_t type);

/* Text of a close code, "unknown close code" for values not in the map. */
VIGIL_EXTERN const char *vigil_close_code_text(uint16_t code);
/* Name of a close code as in VIGIL_CLOSE_MAP ("PING_FLOOD"), "UNKNOWN" for
 * values not in the map. */
VIGIL_EXTERN const char *vigil_close_code_name(uint16_t code);

/* 1 if buf[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. An empty buffer is valid;
 * buf may be NULL when len is 0. */
VIGIL_EXTERN int vigil_utf8_valid(const uint8_t *buf, size_t len);

#endif
