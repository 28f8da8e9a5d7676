/* The `vigil` command line: durations, counts, addresses and flags, parsed
 * whole or rejected with one line that names what was wrong (a usage error,
 * exit 2), and the argument loop every network command runs.
 *
 * Everything a user types is untrusted here. Durations always carry a unit:
 * a bare "30" is ambiguous (seconds? ms?), and a heartbeat setting off by a
 * factor of 1000 is exactly the mistake a liveness tool must not let through
 * silently. Defaults and the rules that tie values together (timeout against
 * interval, ...) are the library's: see vigil_*_config_init and
 * vigil_session_config_check. */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

/* ---- durations and counts ---- */

static int fail(const char **why, const char *reason) {
  *why = reason;
  return -1;
}

/* Reads decimal digits into *v, returning the count; stops growing *v past
 * `limit` (it then only reports that the value is too large). */
static size_t read_digits(const char *s, uint64_t limit, uint64_t *v, int *too_big) {
  size_t n = 0;
  *v = 0;
  *too_big = 0;
  while (isdigit((unsigned char)s[n])) {
    if (*v > limit / 10 || *v * 10 + (uint64_t)(s[n] - '0') > limit)
      *too_big = 1;
    else
      *v = *v * 10 + (uint64_t)(s[n] - '0');
    n++;
  }
  return n;
}

static uint64_t unit_ms(const char *u) {
  if (strcmp(u, "ms") == 0)
    return 1;
  if (strcmp(u, "s") == 0)
    return 1000;
  if (strcmp(u, "m") == 0)
    return 60000;
  if (strcmp(u, "h") == 0)
    return 3600000;
  return 0;
}

int vigil_cli_parse_duration(const char *s, uint32_t *ms, const char **why) {
  uint64_t whole, frac = 0, scale = 1, mult, total;
  size_t n, fn = 0;
  int big, frac_big = 0;

  if (s == NULL || *s == '\0')
    return fail(why, "empty duration");
  if (!isdigit((unsigned char)*s))
    return fail(why, "must start with a digit (e.g. 250ms, 3s, 2m, 1h)");
  n = read_digits(s, UINT32_MAX, &whole, &big);
  if (s[n] == '.') {
    fn = read_digits(s + n + 1, 999999999, &frac, &frac_big);
    if (fn == 0)
      return fail(why, "no digit after the decimal point");
    if (frac_big)
      return fail(why, "too many decimals");
    for (size_t k = 0; k < fn; k++)
      scale *= 10;
    n += 1 + fn;
  }
  if (s[n] == '\0')
    return fail(why, "missing unit (use ms, s, m or h, e.g. 3s)");
  mult = unit_ms(s + n);
  if (mult == 0)
    return fail(why, "unknown unit (use ms, s, m or h)");
  if (big)
    return fail(why, "too large (at most 4294967295ms, about 49 days)");
  if ((frac * mult) % scale != 0)
    return fail(why, "not a whole number of milliseconds");
  total = whole * mult + frac * mult / scale;
  if (total > UINT32_MAX)
    return fail(why, "too large (at most 4294967295ms, about 49 days)");
  if (total == 0)
    return fail(why, "must be at least 1ms");
  *ms = (uint32_t)total;
  return 0;
}

static unsigned unit_shift(const char *u) {
  static const char *const names[][2] = {{"B", ""}, {"KiB", "K"}, {"MiB", "M"}, {"GiB", "G"}};
  for (unsigned k = 0; k < 4; k++)
    if (strcmp(u, names[k][0]) == 0 || (k > 0 && strcmp(u, names[k][1]) == 0))
      return 10 * k + 1; /* + 1: 0 means unknown */
  return 0;
}

int vigil_cli_parse_size(const char *s, uint64_t *bytes, const char **why) {
  uint64_t v;
  unsigned shift;
  size_t n;
  int big;

  if (s == NULL || *s == '\0')
    return fail(why, "empty size");
  n = read_digits(s, (uint64_t)1 << 63, &v, &big);
  if (n == 0)
    return fail(why, "must start with a digit (e.g. 64MiB)");
  if (s[n] == '\0')
    return fail(why, "missing unit (use B, KiB, MiB or GiB, e.g. 64MiB)");
  if ((shift = unit_shift(s + n)) == 0)
    return fail(why, "unknown unit (use B, KiB, MiB or GiB)");
  shift--;
  if (big || v > ((uint64_t)1 << 63) >> shift)
    return fail(why, "too large");
  if (v == 0)
    return fail(why, "must be at least 1 byte");
  *bytes = v << shift;
  return 0;
}

int vigil_cli_parse_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out,
                         const char **why) {
  uint64_t v;
  size_t n;
  int big;

  if (s == NULL || *s == '\0')
    return fail(why, "empty number");
  n = read_digits(s, UINT32_MAX, &v, &big);
  if (n == 0 || s[n] != '\0')
    return fail(why, "not a whole number");
  if (big || v > max)
    return fail(why, "too large");
  if (v < min)
    return fail(why, "too small");
  *out = (uint32_t)v;
  return 0;
}

/* ---- addresses ---- */

static int parse_port(const char *p, int zero_ok, vigil_cli_addr *a, const char **why) {
  uint32_t v;
  const char *reason;

  if (*p == '\0')
    return fail(why, "missing port");
  if (strlen(p) > 5 || vigil_cli_parse_uint(p, 0, 65535, &v, &reason) != 0)
    return fail(why, "port must be a number from 1 to 65535");
  if (v == 0 && !zero_ok)
    return fail(why, "port must be a number from 1 to 65535");
  memcpy(a->port, p, strlen(p) + 1);
  a->port_num = (uint16_t)v;
  return 0;
}

static int set_host(vigil_cli_addr *a, const char *h, size_t len, const char **why) {
  if (len >= sizeof(a->host))
    return fail(why, "host name too long");
  for (size_t k = 0; k < len; k++)
    if ((unsigned char)h[k] <= ' ' || h[k] == '[' || h[k] == ']' || (unsigned char)h[k] >= 0x7f)
      return fail(why, "host contains a character that is not allowed");
  memcpy(a->host, h, len);
  a->host[len] = '\0';
  return 0;
}

int vigil_cli_parse_addr(const char *s, int port_only_ok, vigil_cli_addr *a, const char **why) {
  const char *colon;

  memset(a, 0, sizeof(*a));
  if (s == NULL || *s == '\0')
    return fail(why, "empty address");
  if (*s == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL)
      return fail(why, "missing ']' after an IPv6 address");
    if (close == s + 1)
      return fail(why, "empty host between '[' and ']'");
    if (close[1] != ':')
      return fail(why, "expected [IPv6]:PORT");
    if (set_host(a, s + 1, (size_t)(close - s - 1), why) != 0)
      return -1;
    return parse_port(close + 2, port_only_ok, a, why);
  }
  colon = strrchr(s, ':');
  if (colon == NULL) {
    if (!port_only_ok)
      return fail(why, "expected HOST:PORT");
    return parse_port(s, 1, a, why);
  }
  if (memchr(s, ':', (size_t)(colon - s)) != NULL)
    return fail(why, "an IPv6 address needs brackets, e.g. [::1]:7000");
  if (colon == s && !port_only_ok)
    return fail(why, "missing host (expected HOST:PORT)");
  if (set_host(a, s, (size_t)(colon - s), why) != 0)
    return -1;
  return parse_port(colon + 1, port_only_ok, a, why);
}

int vigil_cli_resolve(const vigil_cli_addr *a, int passive, struct addrinfo **res,
                      const char **why) {
  struct addrinfo hints;
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  *res = NULL;
  rc = getaddrinfo(a->host[0] != '\0' ? a->host : NULL, a->port, &hints, res);
  if (rc != 0) {
    *why = gai_strerror(rc);
    return -1;
  }
  if (*res == NULL)
    return fail(why, "no address");
  return 0;
}

void vigil_cli_format_sockaddr(const struct sockaddr *sa, size_t salen, char *out, size_t cap) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  int n;

  if (sa == NULL || getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv, sizeof(serv),
                                NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, cap, "?");
    return;
  }
  n = sa->sa_family == AF_INET6 ? snprintf(out, cap, "[%s]:%s", host, serv)
                                : snprintf(out, cap, "%s:%s", host, serv);
  if (n < 0 || (size_t)n >= cap)
    snprintf(out, cap, "?"); /* a cut address would name the wrong peer */
}

/* ---- command lines ---- */

int vigil_cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "vigil%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized): false positive */
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  return VIGIL_CLI_USAGE;
}

int vigil_cli_flag_value(const char *cmd, int argc, char **argv, int *i, const char *flag,
                         const char **value) {
  const char *arg = argv[*i];
  size_t n = strlen(flag);

  if (strncmp(arg, flag, n) != 0)
    return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != '\0')
    return 0;
  if (*i + 1 >= argc) {
    vigil_cli_usage(cmd, "%s needs a value", flag);
    return -1;
  }
  *i += 1;
  *value = argv[*i];
  return 1;
}

int vigil_cli_flag_duration(const char *cmd, int argc, char **argv, int *i, const char *flag,
                            uint32_t *ms) {
  const char *v, *why;
  int rc = vigil_cli_flag_value(cmd, argc, argv, i, flag, &v);

  if (rc != 1)
    return rc;
  if (vigil_cli_parse_duration(v, ms, &why) != 0) {
    vigil_cli_usage(cmd, "%s: bad duration '%s': %s", flag, v, why);
    return -1;
  }
  return 1;
}

int vigil_cli_flag_uint(const char *cmd, int argc, char **argv, int *i, const char *flag,
                        uint32_t min, uint32_t max, uint32_t *out) {
  const char *v, *why;
  int rc = vigil_cli_flag_value(cmd, argc, argv, i, flag, &v);

  if (rc != 1)
    return rc;
  if (vigil_cli_parse_uint(v, min, max, out, &why) != 0) {
    vigil_cli_usage(cmd, "%s: bad number '%s': %s (expected %lu..%lu)", flag, v, why,
                    (unsigned long)min, (unsigned long)max);
    return -1;
  }
  return 1;
}

int vigil_cli_flag_set(const char *arg, const char *flag, int *on) {
  if (strcmp(arg, flag) != 0)
    return 0;
  *on = 1;
  return 1;
}

int vigil_cli_is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int vigil_cli_unknown(const char *cmd, const char *arg) {
  if (arg[0] == '-' && arg[1] != '\0')
    return vigil_cli_usage(cmd, "unknown option '%s' (see vigil %s --help)", arg, cmd);
  return vigil_cli_usage(cmd, "unexpected argument '%s' (see vigil %s --help)", arg, cmd);
}

int vigil_cli_positional(const char *cmd, const char *arg, const char **slot) {
  if ((arg[0] == '-' && arg[1] != '\0') || *slot != NULL)
    return vigil_cli_unknown(cmd, arg);
  *slot = arg;
  return 0;
}

int vigil_cli_check_id(const char *cmd, const char *id) {
  size_t n = strlen(id);

  if (n == 0 || n > 255 || !vigil_utf8_valid((const uint8_t *)id, n))
    return vigil_cli_usage(cmd, "--id '%s': must be 1 to 255 bytes of UTF-8", id);
  return 0;
}

/* The shared options of `mask`, then the command's own, into opts (at
 * most max); returns how many. Short forms only for the common ones. */
static size_t gather_opts(unsigned mask, vigil_cli_common *c, const vigil_cli_opt *own,
                          vigil_cli_opt *opts, size_t max) {
  const vigil_cli_opt common[] = {
      {"id", 0, VIGIL_CLI_STRING, &c->id, 0, 0, VIGIL_CLI_OPT_ID},
      {"interval", 'i', VIGIL_CLI_DURATION, &c->interval_ms, 0, 0, VIGIL_CLI_OPT_INTERVAL},
      {"timeout", 't', VIGIL_CLI_DURATION, &c->timeout_ms, 0, 0, VIGIL_CLI_OPT_TIMEOUT},
      {"keepalive", 0, VIGIL_CLI_DURATION, &c->keepalive_ms, 0, 0, VIGIL_CLI_OPT_KEEPALIVE},
      {"no-keepalive", 0, VIGIL_CLI_FLAG, &c->keepalive_off, 0, 0, VIGIL_CLI_OPT_KEEPALIVE},
      {"json", 'j', VIGIL_CLI_FLAG, &c->json, 0, 0, VIGIL_CLI_OPT_JSON},
      {"send-every", 0, VIGIL_CLI_DURATION, &c->send_every_ms, 0, 0, VIGIL_CLI_OPT_SEND},
      {"send-size", 0, VIGIL_CLI_UINT, &c->send_size, 1, VIGIL_CLI_SEND_SIZE_MAX,
       VIGIL_CLI_OPT_SEND}};
  size_t n = 0;

  for (size_t k = 0; k < sizeof(common) / sizeof(common[0]) && n < max; k++)
    if (mask & common[k].mask)
      opts[n++] = common[k];
  for (; own != NULL && own->name != NULL && n < max; own++)
    opts[n++] = *own;
  return n;
}

/* Stores one option's value; 0, or -1 after a usage error naming it. */
static int apply_opt(const char *cmd, const vigil_cli_opt *o, const char *v) {
  const char *why;

  switch (o->kind) {
  case VIGIL_CLI_FLAG:
    *(int *)o->dst = 1;
    return 0;
  case VIGIL_CLI_STRING:
    *(const char **)o->dst = v;
    return 0;
  case VIGIL_CLI_DURATION:
    if (vigil_cli_parse_duration(v, o->dst, &why) == 0)
      return 0;
    vigil_cli_usage(cmd, "--%s: bad duration '%s': %s", o->name, v, why);
    return -1;
  default:
    if (vigil_cli_parse_uint(v, o->min, o->max, o->dst, &why) == 0)
      return 0;
    vigil_cli_usage(cmd, "--%s: bad number '%s': %s (expected %lu..%lu)", o->name, v, why,
                    (unsigned long)o->min, (unsigned long)o->max);
    return -1;
  }
}

/* getopt_long over opts: --name VALUE, --name=VALUE, -x VALUE, -xVALUE;
 * positional arguments may come anywhere. Returns 0 with the first
 * positional argument in *addr, -1 after printing the help, or
 * VIGIL_CLI_USAGE after printing why. */
static int scan(const char *cmd, const char *usage_text, const vigil_cli_opt *opts, size_t n,
                int argc, char **argv, const char **addr) {
  struct option longs[VIGIL_CLI_MAX_OPTS + 2];
  char shorts[2 * VIGIL_CLI_MAX_OPTS + 4] = ":h";
  size_t sl = 2;
  int ch;

  for (size_t k = 0; k < n; k++) {
    longs[k].name = opts[k].name;
    longs[k].has_arg = opts[k].kind == VIGIL_CLI_FLAG ? no_argument : required_argument;
    longs[k].flag = NULL;
    longs[k].val = 256 + (int)k;
    if (opts[k].short_name != 0) {
      shorts[sl++] = opts[k].short_name;
      if (opts[k].kind != VIGIL_CLI_FLAG)
        shorts[sl++] = ':';
    }
  }
  shorts[sl] = '\0';
  longs[n] = (struct option){"help", no_argument, NULL, 'h'};
  memset(&longs[n + 1], 0, sizeof(longs[0]));
  opterr = 0; /* our own messages, one line naming the argument */
  optind = 1;
  while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
    const vigil_cli_opt *o = NULL;
    if (ch == 'h') {
      fputs(usage_text, stdout);
      return -1;
    }
    if (ch == '?' || ch == ':') {
      const char *arg = argv[optind - 1];
      char flag[3] = {'-', (char)optopt, '\0'};
      if (optopt >= 256 && optopt < 256 + (int)n)
        return vigil_cli_usage(cmd, "--%s needs a value", opts[optopt - 256].name);
      if (optopt != 0 && ch == ':')
        return vigil_cli_usage(cmd, "%s needs a value", flag);
      return vigil_cli_unknown(cmd, optopt != 0 ? flag : arg);
    }
    if (ch >= 256)
      o = &opts[ch - 256];
    for (size_t k = 0; o == NULL && k < n; k++)
      if (opts[k].short_name == ch)
        o = &opts[k];
    if (o == NULL || apply_opt(cmd, o, optarg) != 0)
      return VIGIL_CLI_USAGE;
  }
  for (int k = optind; k < argc; k++)
    if (vigil_cli_positional(cmd, argv[k], addr) != 0)
      return VIGIL_CLI_USAGE;
  return 0;
}

int vigil_cli_parse_args(const char *cmd, const char *usage_text, unsigned mask, int argc,
                         char **argv, vigil_cli_common *common, const vigil_cli_opt *own) {
  vigil_cli_opt opts[VIGIL_CLI_MAX_OPTS];
  const char *addr = NULL, *why;
  int port_only = (mask & VIGIL_CLI_OPT_PORT_ONLY) != 0;
  size_t n = gather_opts(mask, common, own, opts, VIGIL_CLI_MAX_OPTS);
  int rc = scan(cmd, usage_text, opts, n, argc, argv, &addr);

  if (rc != 0)
    return rc;
  if (addr == NULL)
    return vigil_cli_usage(cmd, "missing %s (see vigil %s --help)",
                           port_only ? "[HOST:]PORT" : "HOST:PORT", cmd);
  if (vigil_cli_parse_addr(addr, port_only, &common->addr, &why) != 0)
    return vigil_cli_usage(cmd, "bad address '%s': %s", addr, why);
  if (common->id != NULL && vigil_cli_check_id(cmd, common->id) != 0)
    return VIGIL_CLI_USAGE;
  if (common->send_size != 0 && common->send_every_ms == 0)
    return vigil_cli_usage(cmd, "--send-size needs --send-every");
  if (common->send_size == 0)
    common->send_size = VIGIL_CLI_SEND_SIZE_DEFAULT;
  return 0;
}

int vigil_cli_client_interval(const char *cmd, uint32_t *interval_ms) {
  vigil_session_config d;

  vigil_session_config_init(&d); /* the library's defaults */
  if (*interval_ms == 0)
    *interval_ms = d.interval_ms;
  if (*interval_ms < d.min_interval_ms)
    return vigil_cli_usage(cmd, "--interval %lums is below the %lums minimum",
                           (unsigned long)*interval_ms, (unsigned long)d.min_interval_ms);
  return 0;
}

int vigil_cli_check_session(const char *cmd, const vigil_session_config *cfg, vigil_role role) {
  char why[160];

  if (vigil_session_config_check(cfg, role, why, sizeof(why)) != 0)
    return vigil_cli_usage(cmd, "--interval/--timeout: %s", why);
  return 0;
}

int vigil_cli_keepalive(const char *cmd, uint32_t budget_ms, int off, vigil_keepalive_mode *mode,
                        vigil_keepalive *ka) {
  if (budget_ms != 0 && off)
    return vigil_cli_usage(cmd, "--keepalive and --no-keepalive contradict each other");
  if (off) {
    *mode = VIGIL_KEEPALIVE_OFF;
  } else if (budget_ms != 0) {
    *mode = VIGIL_KEEPALIVE_EXPLICIT;
    if (vigil_keepalive_from_budget(ka, budget_ms, 2) != 0)
      return vigil_cli_usage(cmd, "--keepalive %lums: too small for the kernel's 1 s probes",
                             (unsigned long)budget_ms);
  }
  return 0;
}

void vigil_cli_addr_text(const vigil_cli_addr *a, char *out, size_t cap) {
  if (strchr(a->host, ':') != NULL)
    snprintf(out, cap, "[%s]:%s", a->host, a->port);
  else
    snprintf(out, cap, "%s:%s", a->host, a->port);
}
