/* Socket addresses as text: "1.2.3.4:5", "[v6addr%scope]:port". The
 * declarations are in vigil/loop.h, beside the TCP handles that take
 * struct sockaddr.
 *
 * Parsing is strict so a typo is an error, not a surprise: a port is digits
 * only (no sign, at most 65535), an IPv6 address is bracketed so its colons
 * cannot be mistaken for the port's, and a scope is a number or an
 * interface name the platform knows. "localhost" is accepted for IPv4
 * only because it needs no resolver; names are resolved elsewhere
 * (getaddrinfo in the server and the client). Formatting is the inverse,
 * and never truncates: a buffer too small is VIGIL_ENOSPACE. Part of the
 * loop layer: the interface-name lookup is the platform's. */
#include <stdio.h>
#include <string.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "loop-internal.h"

int vigil_ip_len(const struct sockaddr *sa) {
  if (sa == NULL)
    return 0;
  if (sa->sa_family == AF_INET)
    return (int)sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6)
    return (int)sizeof(struct sockaddr_in6);
  return 0;
}

/* "65535" and nothing else: digits only, no sign, no overflow. */
static int parse_port(const char *s, uint16_t *port) {
  unsigned long v = 0;
  if (*s == '\0')
    return VIGIL_EINVAL;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return VIGIL_EINVAL;
    v = v * 10 + (unsigned long)(*s - '0');
    if (v > 65535)
      return VIGIL_EINVAL;
  }
  *port = (uint16_t)v;
  return 0;
}

static int parse_scope(const char *s, uint32_t *scope) {
  unsigned long v = 0;
  const char *p;
  if (*s == '\0')
    return VIGIL_EINVAL;
  for (p = s; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > UINT32_MAX)
      return VIGIL_EINVAL;
  }
  if (*p == '\0') {
    *scope = (uint32_t)v;
    return 0;
  }
  *scope = vigil__plat_if_index(s);
  return *scope != 0 ? 0 : VIGIL_EINVAL;
}

static int parse_v6(const char *text, struct sockaddr_storage *out) {
  char host[64];
  const char *close = strchr(text, ']');
  const char *pct;
  struct sockaddr_in6 sin6;
  size_t n;
  uint32_t scope = 0;
  uint16_t port;

  if (close == NULL || close[1] != ':')
    return VIGIL_EINVAL;
  n = (size_t)(close - (text + 1));
  if (n == 0 || n >= sizeof host)
    return VIGIL_EINVAL;
  memcpy(host, text + 1, n);
  host[n] = '\0';
  if (parse_port(close + 2, &port) != 0)
    return VIGIL_EINVAL;
  pct = strchr(host, '%');
  if (pct != NULL) {
    if (parse_scope(pct + 1, &scope) != 0)
      return VIGIL_EINVAL;
    host[pct - host] = '\0';
  }
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_scope_id = scope;
  if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
    return VIGIL_EINVAL;
  memset(out, 0, sizeof *out);
  memcpy(out, &sin6, sizeof sin6);
  return 0;
}

static int parse_v4(const char *text, struct sockaddr_storage *out) {
  char host[16];
  const char *colon = strrchr(text, ':');
  struct sockaddr_in sin;
  size_t n;
  uint16_t port;

  if (colon == NULL)
    return VIGIL_EINVAL;
  n = (size_t)(colon - text);
  if (n == 0 || n >= sizeof host)
    return VIGIL_EINVAL;
  memcpy(host, text, n);
  host[n] = '\0';
  if (parse_port(colon + 1, &port) != 0)
    return VIGIL_EINVAL;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (strcmp(host, "localhost") == 0)
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
    return VIGIL_EINVAL;
  memset(out, 0, sizeof *out);
  memcpy(out, &sin, sizeof sin);
  return 0;
}

int vigil_ip_parse(const char *text, struct sockaddr_storage *out) {
  if (text == NULL || out == NULL)
    return VIGIL_EINVAL;
  if (text[0] == '[')
    return parse_v6(text, out);
  return parse_v4(text, out);
}

int vigil_ip_format(const struct sockaddr *sa, char *buf, size_t size) {
  char host[64];
  char tmp[VIGIL_ADDRSTRLEN];
  const struct sockaddr_in *sin;
  const struct sockaddr_in6 *sin6;
  size_t n;
  int len;

  if (sa == NULL || buf == NULL)
    return VIGIL_EINVAL;
  if (sa->sa_family == AF_INET) {
    sin = (const struct sockaddr_in *)(const void *)sa;
    if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host) == NULL)
      return VIGIL_EINVAL;
    len = snprintf(tmp, sizeof tmp, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    sin6 = (const struct sockaddr_in6 *)(const void *)sa;
    if (inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host) == NULL)
      return VIGIL_EINVAL;
    if (sin6->sin6_scope_id != 0)
      len = snprintf(tmp, sizeof tmp, "[%s%%%lu]:%u", host, (unsigned long)sin6->sin6_scope_id,
                     (unsigned)ntohs(sin6->sin6_port));
    else
      len = snprintf(tmp, sizeof tmp, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
  } else {
    return VIGIL_EAFNOSUPPORT;
  }
  if (len < 0 || (size_t)len >= sizeof tmp)
    return VIGIL_EINVAL;
  n = (size_t)len;
  if (n >= size)
    return VIGIL_ENOSPACE;
  memcpy(buf, tmp, n + 1);
  return len;
}
