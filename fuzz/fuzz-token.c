/* Fuzz target for token verification (src/token.c), the part of a
 * credential check that reads what a peer sent.
 *
 * Input: byte 0 picks the id's length (1..255, from the bytes after the
 * token), byte 1 picks the token's length, the bytes after that are the
 * token's text and then the id. Invariants, abort()ing on a violation:
 *  - verify answers only 0, VIGIL_EAUTH or VIGIL_EEXPIRED, and reads no
 *    byte beyond the lengths given (ASan);
 *  - whatever it accepts as genuine (0 or expired) is exactly the text
 *    vigil_token_mint gives for that id and expiry: one text per token, so
 *    no malleated variant of a genuine token is ever accepted;
 *  - a token minted for the id (expiry from the input) verifies, and the
 *    same token with any one byte changed does not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-secret-0123456789abcdef-XYZ";

static void require(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz-token invariant violated: %s\n", what);
    abort();
  }
}

static void check_minted(const char *id, size_t id_len, uint64_t exp, size_t flip) {
  char tok[VIGIL_TOKEN_MAX + 1];
  size_t n;
  require(vigil_token_mint(secret, sizeof secret - 1, id, id_len, exp, tok, sizeof tok) == 0,
          "mint");
  n = strlen(tok);
  require(vigil_token_verify(secret, sizeof secret - 1, id, id_len, tok, n, exp) == 0,
          "a minted token verifies");
  tok[flip % n] ^= (char)0x01;
  require(vigil_token_verify(secret, sizeof secret - 1, id, id_len, tok, n, 0) == VIGIL_EAUTH,
          "a changed byte is refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t id_len, tok_len;
  char *tok, *id;
  uint64_t exp = 0;
  int rc;
  if (size < 3 || !vigil_token_available())
    return 0;
  id_len = (size_t)(data[0] % 255u) + 1u;
  tok_len = data[1];
  if (size - 2 < tok_len + id_len)
    return 0;
  /* copies of exactly the given lengths, so ASan sees any overread */
  tok = malloc(tok_len != 0 ? tok_len : 1u);
  id = malloc(id_len);
  if (tok == NULL || id == NULL)
    abort();
  memcpy(tok, data + 2, tok_len);
  memcpy(id, data + 2 + tok_len, id_len);
  rc = vigil_token_verify(secret, sizeof secret - 1, id, id_len, tok_len != 0 ? tok : NULL, tok_len,
                          0);
  require(rc == 0 || rc == VIGIL_EAUTH || rc == VIGIL_EEXPIRED, "verify's answers");
  if (rc != VIGIL_EAUTH) {
    char again[VIGIL_TOKEN_MAX + 1];
    for (size_t i = 3; i < tok_len && tok[i] != '.'; i++) /* genuine: "v1.<digits>." */
      exp = exp * 10u + (uint64_t)(tok[i] - '0');
    require(vigil_token_mint(secret, sizeof secret - 1, id, id_len, exp, again, sizeof again) ==
                    0 &&
                strlen(again) == tok_len && memcmp(again, tok, tok_len) == 0,
            "a genuine token has one text");
  }
  for (size_t i = 0; i < 8 && i < tok_len; i++)
    exp = exp << 8 | (uint8_t)tok[i];
  check_minted(id, id_len, exp, tok_len);
  free(tok);
  free(id);
  return 0;
}
