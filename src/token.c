/* Tokens that bind an id to a server secret (include/vigil/token.h).
 *
 * Why this shape. A token must be checkable by a server with nothing but
 * its secret (no database, no call to another service), must not be
 * reusable for another id, and must stop working by itself. So it carries
 * its expiry in clear and a MAC over (expiry, id); the id itself rides in
 * HELLO, which keeps tokens short (at most 67 bytes) whatever the id's
 * length. The MAC input starts with a label and separates its fields with
 * NUL bytes, which neither a decimal expiry nor the label can contain, so
 * no (expiry, id) pair can be read as another. HMAC-SHA256 is computed by
 * libcrypto (EVP_Q_mac), never by hand, and compared with CRYPTO_memcmp
 * so the time taken says nothing about how many bytes of a forgery were
 * right.
 *
 * Parsing is strict, and there is one text per token: no leading zeros,
 * no padding, base64url's unused low bits zero. Anything else is
 * VIGIL_EAUTH, the same answer as a forgery, so a prober learns nothing
 * from the difference between malformed and wrong. Expiry is reported
 * (VIGIL_EEXPIRED) only for a genuine token: telling its holder to get a
 * new one is useful, and the holder already knows the expiry. */
#include <string.h>

#include "vigil/token.h"

#if defined(VIGIL_HAVE_OPENSSL)
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MAC_LEN 32
#define MAC_B64 43 /* ceil(32 * 4 / 3) without padding */
#define LABEL "vigil-token-v1"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int args_ok(size_t secret_len, size_t id_len) {
  return secret_len >= VIGIL_TOKEN_SECRET_MIN && id_len >= 1 && id_len <= 255;
}

/* Decimal text of v into out (at least 21 bytes); returns its length. */
static size_t u64_text(uint64_t v, char *out) {
  char tmp[21];
  size_t n = 0, i;
  do {
    tmp[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  for (i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

static void b64_encode(const uint8_t *in, char *out) {
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t i, o = 0;
  for (i = 0; i < MAC_LEN; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[o++] = b64url[(acc >> bits) & 63u];
    }
  }
  out[o] = b64url[(acc << (6 - bits)) & 63u]; /* 32 bytes leave 2 bits */
}

/* 0 when text is exactly the canonical encoding of 32 bytes. */
static int b64_decode(const char *text, uint8_t *out) {
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t i, o = 0;
  for (i = 0; i < MAC_B64; i++) {
    const char *p = text[i] != '\0' ? strchr(b64url, text[i]) : NULL;
    if (p == NULL)
      return -1;
    acc = (acc << 6) | (uint32_t)(p - b64url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (acc & ((1u << bits) - 1u)) == 0 ? 0 : -1; /* the 2 unused bits */
}

int vigil_token_available(void) {
  return 1;
}

static int compute_mac(const void *secret, size_t secret_len, const char *exp, size_t exp_len,
                       const char *id, size_t id_len, uint8_t mac[MAC_LEN]) {
  uint8_t msg[sizeof LABEL + 21 + 1 + 255];
  size_t n = 0, got = 0;
  memcpy(msg, LABEL, sizeof LABEL); /* with its NUL: the separator */
  n += sizeof LABEL;
  memcpy(msg + n, exp, exp_len);
  n += exp_len;
  msg[n++] = 0;
  memcpy(msg + n, id, id_len);
  n += id_len;
  if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len, msg, n, mac, MAC_LEN,
                &got) == NULL ||
      got != MAC_LEN)
    return VIGIL_ENOMEM;
  return 0;
}

int vigil_token_mint(const void *secret, size_t secret_len, const char *id, size_t id_len,
                     uint64_t expires_s, char *out, size_t cap) {
  char exp[21];
  uint8_t mac[MAC_LEN];
  size_t el;
  int rc;
  if (secret == NULL || id == NULL || out == NULL || !args_ok(secret_len, id_len))
    return VIGIL_EINVAL;
  el = u64_text(expires_s, exp);
  if (cap < 3 + el + 1 + MAC_B64 + 1)
    return VIGIL_ENOSPACE;
  if ((rc = compute_mac(secret, secret_len, exp, el, id, id_len, mac)) != 0)
    return rc;
  memcpy(out, "v1.", 3);
  memcpy(out + 3, exp, el);
  out[3 + el] = '.';
  b64_encode(mac, out + 4 + el);
  out[4 + el + MAC_B64] = '\0';
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

/* Splits "v1.<expires>.<mac>": 0 with the expiry's text and value and
 * the MAC's bytes, or -1 when the text is not a canonical token. */
static int parse(const char *t, size_t n, size_t *exp_len, uint64_t *exp, uint8_t mac[MAC_LEN]) {
  char buf[MAC_B64 + 1];
  size_t i = 3;
  *exp = 0;
  if (n < 3 + 1 + 1 + MAC_B64 || n > VIGIL_TOKEN_MAX || memcmp(t, "v1.", 3) != 0)
    return -1;
  for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
    uint64_t d = (uint64_t)(t[i] - '0');
    if (*exp > (UINT64_MAX - d) / 10u)
      return -1;
    *exp = *exp * 10u + d;
  }
  *exp_len = i - 3;
  if (*exp_len == 0 || (*exp_len > 1 && t[3] == '0') || i >= n || t[i] != '.' ||
      n - i - 1 != MAC_B64)
    return -1;
  memcpy(buf, t + i + 1, MAC_B64);
  buf[MAC_B64] = '\0';
  return b64_decode(buf, mac);
}

int vigil_token_verify(const void *secret, size_t secret_len, const char *id, size_t id_len,
                       const char *token, size_t token_len, uint64_t now_s) {
  uint8_t got[MAC_LEN], want[MAC_LEN];
  size_t el;
  uint64_t exp;
  int rc, same;
  if (secret == NULL || id == NULL || !args_ok(secret_len, id_len))
    return VIGIL_EINVAL;
  if (token == NULL || parse(token, token_len, &el, &exp, got) != 0)
    return VIGIL_EAUTH;
  if ((rc = compute_mac(secret, secret_len, token + 3, el, id, id_len, want)) != 0)
    return rc;
  same = CRYPTO_memcmp(got, want, MAC_LEN) == 0;
  OPENSSL_cleanse(want, sizeof want);
  if (!same)
    return VIGIL_EAUTH;
  return now_s <= exp ? 0 : VIGIL_EEXPIRED;
}

#else /* no OpenSSL: tokens are compiled out */

int vigil_token_available(void) {
  return 0;
}

int vigil_token_mint(const void *secret, size_t secret_len, const char *id, size_t id_len,
                     uint64_t expires_s, char *out, size_t cap) {
  (void)secret, (void)secret_len, (void)id, (void)id_len, (void)expires_s, (void)out, (void)cap;
  return VIGIL_ENOTSUP;
}

int vigil_token_verify(const void *secret, size_t secret_len, const char *id, size_t id_len,
                       const char *token, size_t token_len, uint64_t now_s) {
  (void)secret, (void)secret_len, (void)id, (void)id_len, (void)token, (void)token_len, (void)now_s;
  return VIGIL_ENOTSUP;
}

#endif
