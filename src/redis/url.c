/* --presence URLs, parsed strictly: the text comes from a user, and a typo
 * that silently pointed a fleet at the wrong Redis would be worse than a
 * refusal. Accepted: redis://HOST[:PORT][/DB] with HOST an IPv4 literal,
 * [IPv6 literal] or localhost (no name lookup: hiredis would resolve it
 * with a blocking call on the loop), and unix:///absolute/path[?db=N].
 * No credentials, no query options other than db, nothing trailing. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "vigil.h"
#include "vigil/presence-redis.h"

static int fail(const char **why, const char *text) {
  if (why != NULL)
    *why = text;
  return VIGIL_EINVAL;
}

/* Decimal 0..max, all of [p, end), no sign, no leading zeros but "0". */
static int parse_num(const char *p, const char *end, unsigned long max, unsigned long *out) {
  unsigned long v = 0;
  if (p == end || (end - p > 1 && *p == '0'))
    return -1;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > max)
      return -1;
  }
  *out = v;
  return 0;
}

static int parse_db(const char *p, const char *end, vigil_presence_url *u, const char **why) {
  unsigned long db;
  if (parse_num(p, end, 65535, &db) != 0)
    return fail(why, "database must be a number 0..65535");
  u->db = (unsigned)db;
  return 0;
}

static int parse_unix(const char *p, vigil_presence_url *u, const char **why) {
  const char *q = strchr(p, '?');
  size_t n = q != NULL ? (size_t)(q - p) : strlen(p);
  if (n == 0 || p[0] != '/')
    return fail(why, "unix:// needs an absolute path (unix:///run/redis.sock)");
  if (n >= sizeof u->path)
    return fail(why, "socket path too long (at most 107 bytes)");
  memcpy(u->path, p, n);
  u->path[n] = '\0';
  u->is_unix = 1;
  if (q == NULL)
    return 0;
  if (strncmp(q, "?db=", 4) != 0)
    return fail(why, "the only option is ?db=N");
  return parse_db(q + 4, q + strlen(q), u, why);
}

static int parse_host(const char *p, const char *end, vigil_presence_url *u, const char **why) {
  char buf[64];
  unsigned char a[16];
  size_t n = (size_t)(end - p);
  if (n == 0)
    return fail(why, "missing host");
  if (*p == '[') {
    if (n < 3 || end[-1] != ']' || n - 2 >= sizeof buf)
      return fail(why, "bad [IPv6] host");
    memcpy(buf, p + 1, n - 2);
    buf[n - 2] = '\0';
    if (inet_pton(AF_INET6, buf, a) != 1)
      return fail(why, "bad IPv6 address");
  } else {
    if (n >= sizeof buf)
      return fail(why, "host too long");
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (strcmp(buf, "localhost") == 0)
      snprintf(buf, sizeof buf, "127.0.0.1");
    else if (inet_pton(AF_INET, buf, a) != 1)
      return fail(why, "host must be an IPv4 address, [IPv6] or localhost (no name lookup)");
  }
  snprintf(u->host, sizeof u->host, "%s", buf);
  return 0;
}

int vigil_presence_url_parse(const char *text, vigil_presence_url *u, const char **why) {
  const char *p, *end, *slash, *colon, *hend;
  unsigned long port = 6379;
  if (why != NULL)
    *why = NULL;
  if (text == NULL || u == NULL)
    return fail(why, "no URL");
  memset(u, 0, sizeof *u);
  if (strlen(text) > 300)
    return fail(why, "URL too long");
  if (strncmp(text, "unix://", 7) == 0)
    return parse_unix(text + 7, u, why);
  if (strncmp(text, "redis://", 8) != 0)
    return fail(why, "must start with redis:// or unix://");
  p = text + 8;
  end = p + strlen(p);
  if (memchr(p, '@', (size_t)(end - p)) != NULL)
    return fail(why, "credentials in the URL are not supported");
  slash = memchr(p, '/', (size_t)(end - p));
  hend = slash != NULL ? slash : end;
  /* The port's colon: after the ] of an IPv6 host, else the only one. */
  colon = NULL;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(hend - p));
    if (rb == NULL)
      return fail(why, "bad [IPv6] host");
    if (rb + 1 < hend) {
      if (rb[1] != ':')
        return fail(why, "junk after the [IPv6] host");
      colon = rb + 1;
    }
  } else {
    colon = memchr(p, ':', (size_t)(hend - p));
  }
  if (parse_host(p, colon != NULL ? colon : hend, u, why) != 0)
    return VIGIL_EINVAL;
  if (colon != NULL && parse_num(colon + 1, hend, 65535, &port) != 0)
    return fail(why, "port must be a number 1..65535");
  if (port == 0)
    return fail(why, "port must be a number 1..65535");
  u->port = (uint16_t)port;
  if (slash != NULL && slash + 1 < end)
    return parse_db(slash + 1, end, u, why);
  if (slash != NULL)
    return fail(why, "empty database after /");
  return 0;
}
