#ifndef VIGIL_TOKEN_H
#define VIGIL_TOKEN_H

/* Credentials that bind a peer id to a server secret, needing no extra
 * service (issue 12): a token says "whoever holds me may use id X until
 * time T", signed with HMAC-SHA256 under a secret only the server (and
 * whoever mints tokens) knows. The text is
 *
 *   v1.<expires>.<mac>
 *
 * where <expires> is the last valid second (Unix time, decimal, no leading
 * zeros) and <mac> is base64url without padding (43 characters) of
 * HMAC-SHA256(secret, "vigil-token-v1" 0x00 <expires> 0x00 <id>). The id
 * is not in the text: it travels in HELLO and the MAC covers it, so a
 * token for one id is refused for any other. Format, vectors and the
 * rationale: docs/SECURITY.md ("Tokens").
 *
 * Sans-I/O: the current time is a parameter. The MAC is OpenSSL
 * libcrypto's (EVP_Q_mac), compared in constant time (CRYPTO_memcmp).
 * Where the library was built without OpenSSL (the mingw build) every
 * function returns VIGIL_ENOTSUP and vigil_token_available() is 0.
 *
 * A client carries a token in a version 2 HELLO (vigil_client_config's
 * credential); a server with auth_secret verifies it with
 * vigil_token_verify before the id counts (vigil/server.h,
 * docs/SECURITY.md "Ids bound to credentials"). */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "version.h"

/* Bytes of the longest token text, without its NUL: "v1." + 20 digits +
 * "." + 43. */
#define VIGIL_TOKEN_MAX 67
/* A secret shorter than this is refused (VIGIL_EINVAL): HMAC-SHA256 is
 * only as strong as its key. 32 random bytes is the recommendation. */
#define VIGIL_TOKEN_SECRET_MIN 16

/* 1 when tokens are compiled in (the library has OpenSSL), else 0. */
VIGIL_EXTERN int vigil_token_available(void);

/* Writes the token for id[0..id_len) (1..255 bytes), valid up to and
 * including second expires_s, to out as NUL-terminated text (cap >=
 * VIGIL_TOKEN_MAX + 1). Returns 0, VIGIL_EINVAL (secret too short, bad id
 * length), VIGIL_ENOSPACE (cap too small), VIGIL_ENOTSUP (no OpenSSL) or
 * VIGIL_ENOMEM (libcrypto failed). */
VIGIL_EXTERN int vigil_token_mint(const void *secret, size_t secret_len, const char *id,
                                  size_t id_len, uint64_t expires_s, char *out, size_t cap);

/* Checks token[0..token_len) for id at now_s (Unix seconds). Returns 0
 * when it was minted under secret for exactly this id and now_s <=
 * its expiry; VIGIL_EAUTH when it is malformed, forged, or for another id;
 * VIGIL_EEXPIRED when it is genuine but expired; VIGIL_EINVAL (secret too
 * short, bad id length), VIGIL_ENOTSUP (no OpenSSL), VIGIL_ENOMEM. The
 * MAC is compared in constant time; nothing about the secret or the
 * expected MAC is returned. */
VIGIL_EXTERN int vigil_token_verify(const void *secret, size_t secret_len, const char *id,
                                    size_t id_len, const char *token, size_t token_len,
                                    uint64_t now_s);

#endif
