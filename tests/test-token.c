/* Tokens (src/token.c): the vectors of docs/PROTOCOL.md section 12, read
 * from the doc itself, plus the argument checks. Time is a parameter:
 * nothing here reads a clock. The vectors were computed with Python's
 * hmac module, not with src/token.c, so they check it against an
 * independent HMAC-SHA256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "vigil.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static const char *source_dir(void) {
  const char *dir = getenv("VIGIL_SOURCE_DIR");
  return dir != NULL && dir[0] != '\0' ? dir : VIGIL_SOURCE_DIR;
}

/* Hex (or "78*255": a byte repeated) into out; returns the length or -1. */
static int unhex(const char *s, uint8_t *out, size_t cap) {
  unsigned b, n;
  size_t len = 0;
  if (sscanf(s, "%2x*%u", &b, &n) == 2 && strlen(s) > 2 && s[2] == '*') {
    if (n > cap)
      return -1;
    memset(out, (int)b, n);
    return (int)n;
  }
  for (; s[0] != '\0' && s[1] != '\0'; s += 2) {
    if (len == cap || sscanf(s, "%2x", &b) != 1)
      return -1;
    out[len++] = (uint8_t)b;
  }
  return s[0] == '\0' ? (int)len : -1;
}

static char *trim(char *s) {
  char *e;
  while (*s == ' ')
    s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r'))
    *--e = '\0';
  return s;
}

/* One line "name | secret | id | now | token | expected"; 0 when it holds. */
static int check_line(char *line) {
  char *f[6], *p = line, *tok;
  uint8_t secret[128], id[256];
  int sl, il, i, want, rc;
  unsigned long long now;
  for (i = 0; i < 6; i++) {
    f[i] = p;
    p = i < 5 ? strchr(p, '|') : NULL;
    if (i < 5 && p == NULL)
      return -1;
    if (p != NULL)
      *p++ = '\0';
    f[i] = trim(f[i]);
  }
  sl = unhex(f[1], secret, sizeof secret);
  il = unhex(f[2], id, sizeof id);
  now = strtoull(f[3], NULL, 10);
  tok = strcmp(f[4], "-") == 0 ? "" : f[4];
  want = strcmp(f[5], "ok") == 0         ? 0
         : strcmp(f[5], "EAUTH") == 0    ? VIGIL_EAUTH
         : strcmp(f[5], "EEXPIRED") == 0 ? VIGIL_EEXPIRED
                                         : 1;
  if (sl < 0 || il < 0 || want == 1)
    return -1;
  rc = vigil_token_verify(secret, (size_t)sl, (const char *)id, (size_t)il, tok, strlen(tok), now);
  if (rc != want) {
    fprintf(stderr, "vector %s: verify gave %d (%s), want %s\n", f[0], rc, vigil_strerror(rc),
            f[5]);
    return -1;
  }
  if (want == 0 || want == VIGIL_EEXPIRED) { /* genuine: minting gives the same text */
    char out[VIGIL_TOKEN_MAX + 1];
    unsigned long long exp = strtoull(tok + 3, NULL, 10);
    if (vigil_token_mint(secret, (size_t)sl, (const char *)id, (size_t)il, exp, out, sizeof out) !=
            0 ||
        strcmp(out, tok) != 0) {
      fprintf(stderr, "vector %s: minted %s\n", f[0], out);
      return -1;
    }
  }
  return 0;
}

TEST_IMPL(vectors_from_doc) {
  char path[1024], line[1024];
  FILE *fp;
  int in = 0, n = 0;
  if (!vigil_token_available())
    RETURN_SKIP("built without OpenSSL: tokens compiled out");
  snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", source_dir());
  ASSERT_NOT_NULL(fp = fopen(path, "rb"));
  while (fgets(line, sizeof line, fp) != NULL) {
    if (strncmp(line, "```token-vectors", 16) == 0) {
      in = 1;
    } else if (in && strncmp(line, "```", 3) == 0) {
      in = 0;
    } else if (in && line[0] != '#' && line[0] != '\n') {
      ASSERT_EQ(check_line(line), 0);
      n++;
    }
  }
  fclose(fp);
  ASSERT_GE(n, 20);
  return 0;
}

TEST_IMPL(arguments_checked) {
  char out[VIGIL_TOKEN_MAX + 1];
  char id255[255];
  if (!vigil_token_available()) {
    ASSERT_EQ(vigil_token_mint(SECRET, 32, "a", 1, 1, out, sizeof out), VIGIL_ENOTSUP);
    ASSERT_EQ(vigil_token_verify(SECRET, 32, "a", 1, "v1.1.x", 6, 0), VIGIL_ENOTSUP);
    RETURN_SKIP("built without OpenSSL: tokens compiled out (checked: VIGIL_ENOTSUP)");
  }
  ASSERT_EQ(vigil_token_mint(SECRET, 15, "a", 1, 1, out, sizeof out), VIGIL_EINVAL);
  ASSERT_EQ(vigil_token_mint(SECRET, 16, "a", 0, 1, out, sizeof out), VIGIL_EINVAL);
  ASSERT_EQ(vigil_token_mint(SECRET, 16, "a", 256, 1, out, sizeof out), VIGIL_EINVAL);
  ASSERT_EQ(vigil_token_mint(SECRET, 16, "a", 1, 1, out, 3 + 1 + 1 + 43), VIGIL_ENOSPACE);
  ASSERT_EQ(vigil_token_mint(SECRET, 16, "a", 1, 1, out, 3 + 1 + 1 + 43 + 1), 0);
  ASSERT_EQ(strlen(out), 48);
  ASSERT_EQ(vigil_token_verify(SECRET, 15, "a", 1, out, strlen(out), 0), VIGIL_EINVAL);
  ASSERT_EQ(vigil_token_verify(SECRET, 16, "a", 1, out, strlen(out), 1), 0);
  ASSERT_EQ(vigil_token_verify(SECRET, 16, "a", 1, out, strlen(out), 2), VIGIL_EEXPIRED);
  /* the length given is the token: a NUL-terminated prefix is not enough */
  ASSERT_EQ(vigil_token_verify(SECRET, 16, "a", 1, out, strlen(out) - 1, 0), VIGIL_EAUTH);
  ASSERT_EQ(vigil_token_verify(SECRET, 16, "a", 1, NULL, 0, 0), VIGIL_EAUTH);
  memset(id255, 'x', sizeof id255);
  ASSERT_EQ(vigil_token_mint(SECRET, 32, id255, 255, UINT64_MAX, out, sizeof out), 0);
  ASSERT_EQ(strlen(out), VIGIL_TOKEN_MAX);
  ASSERT_EQ(vigil_token_verify(SECRET, 32, id255, 255, out, strlen(out), UINT64_MAX), 0);
  ASSERT_EQ(vigil_token_verify(SECRET, 32, id255, 254, out, strlen(out), 0), VIGIL_EAUTH);
  return 0;
}
