/* Shared helpers of the `vigil` command.
 *
 * Everything a user types and everything a peer sends is untrusted here:
 * a duration, a count or an address is either parsed whole or rejected with
 * a reason that names what was wrong, and a string that reaches the output
 * (a peer id, a close reason) is escaped so that neither a JSON consumer nor
 * a terminal can be confused by it.
 *
 * Durations always carry a unit. A bare "30" is ambiguous (seconds? ms?),
 * and a heartbeat setting off by a factor of 1000 is exactly the mistake a
 * liveness tool must not let through silently.
 *
 * Event lines are built in one buffer and written with one fwrite + fflush:
 * the fault suite and the demo read our stdout through pipes while things
 * die around them, and a line must arrive whole and at once.
 *
 * stdout is our product: when it goes away (a reader that closed the pipe,
 * `| head -3`; a full disk, `> /dev/full`) the command has no reason to go
 * on. The first failed write or flush says so once on stderr ("vigil:
 * stdout: Broken pipe"), stops the command the way a signal would (so a
 * connection still says goodbye), and makes the exit status 1; SIGPIPE is
 * ignored so that the write fails with EPIPE instead of killing us
 * silently. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil.h"

#if !defined(_WIN32)
#include <sys/time.h>
#endif

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

/* 1 when argv[*i] was a shared option of `mask` (stored), 0 when not, -1
 * after a usage error. */
static int common_flag(const char *cmd, unsigned mask, int argc, char **argv, int *i,
                       vigil_cli_common *c) {
  const char *arg = argv[*i];
  int rc = 0;

  if ((mask & VIGIL_CLI_OPT_KEEPALIVE) &&
      vigil_cli_flag_set(arg, "--no-keepalive", &c->keepalive_off))
    return 1;
  if ((mask & VIGIL_CLI_OPT_JSON) && vigil_cli_flag_set(arg, "--json", &c->json))
    return 1;
  if (((mask & VIGIL_CLI_OPT_ID) &&
       (rc = vigil_cli_flag_value(cmd, argc, argv, i, "--id", &c->id)) != 0) ||
      ((mask & VIGIL_CLI_OPT_INTERVAL) &&
       (rc = vigil_cli_flag_duration(cmd, argc, argv, i, "--interval", &c->interval_ms)) != 0) ||
      ((mask & VIGIL_CLI_OPT_TIMEOUT) &&
       (rc = vigil_cli_flag_duration(cmd, argc, argv, i, "--timeout", &c->timeout_ms)) != 0) ||
      ((mask & VIGIL_CLI_OPT_KEEPALIVE) &&
       (rc = vigil_cli_flag_duration(cmd, argc, argv, i, "--keepalive", &c->keepalive_ms)) != 0) ||
      ((mask & VIGIL_CLI_OPT_SEND) &&
       (rc = vigil_cli_flag_duration(cmd, argc, argv, i, "--send-every", &c->send_every_ms)) !=
           0) ||
      ((mask & VIGIL_CLI_OPT_SEND) &&
       (rc = vigil_cli_flag_uint(cmd, argc, argv, i, "--send-size", 1, VIGIL_CLI_SEND_SIZE_MAX,
                                 &c->send_size)) != 0))
    return rc;
  return 0;
}

int vigil_cli_parse_args(const char *cmd, const char *usage_text, unsigned mask, int argc,
                         char **argv, vigil_cli_common *common, vigil_cli_flag_fn own_flag,
                         void *opts) {
  const char *addr = NULL, *why;
  int port_only = (mask & VIGIL_CLI_OPT_PORT_ONLY) != 0;

  for (int i = 1; i < argc; i++) {
    int rc;
    if (vigil_cli_is_help(argv[i])) {
      fputs(usage_text, stdout);
      return -1;
    }
    rc = common_flag(cmd, mask, argc, argv, &i, common);
    if (rc == 0 && own_flag != NULL)
      rc = own_flag(opts, cmd, argc, argv, &i);
    if (rc < 0)
      return VIGIL_CLI_USAGE;
    if (rc == 0 && vigil_cli_positional(cmd, argv[i], &addr) != 0)
      return VIGIL_CLI_USAGE;
  }
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
  if (*interval_ms == 0)
    *interval_ms = 1000;
  if (*interval_ms < 100)
    return vigil_cli_usage(cmd, "--interval %lums is below the 100ms minimum",
                           (unsigned long)*interval_ms);
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

const char *vigil_cli_conn_peer(const vigil_conn_info *ci, const char *fallback) {
  if (ci->peer[0] == '\0' || strcmp(ci->peer, "?") == 0)
    return fallback;
  return ci->peer;
}

void vigil_cli_addr_text(const vigil_cli_addr *a, char *out, size_t cap) {
  if (strchr(a->host, ':') != NULL)
    snprintf(out, cap, "[%s]:%s", a->host, a->port);
  else
    snprintf(out, cap, "%s:%s", a->host, a->port);
}

int vigil_cli_run_loop(const char *cmd, vigil_loop *loop) {
  int rc, failures = 0;

  while ((rc = vigil_loop_run(loop, VIGIL_RUN_DEFAULT)) < 0) {
    if (++failures == 1000) {
      fprintf(stderr, "vigil %s: event loop: %s\n", cmd, vigil_strerror(rc));
      return VIGIL_CLI_FAIL;
    }
  }
  return 0;
}

/* ---- signals ---- */

static volatile sig_atomic_t caught_signal;
static vigil_cli_sigwatch *active_watch; /* the running command's, or NULL */
static int out_errno;                    /* first failed write to stdout; 0: none */

static void on_signal(int signo) {
  if (caught_signal != 0)
    _Exit(128 + signo);
  caught_signal = signo;
}

#if defined(_WIN32)
static void catch_signals(void) {
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
}
#else
static void catch_signals(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: the loop's wait returns */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}
#endif

void vigil_cli_ignore_sigpipe(void) {
#if defined(SIGPIPE)
  signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE, reported and handled */
#endif
}

static void sigwatch_tick(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_cli_sigwatch *w = vigil_container_of(t, vigil_cli_sigwatch, timer);

  if (caught_signal != 0) {
    w->fn(w->arg, (int)caught_signal);
    return;
  }
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + 50, sigwatch_tick);
}

/* stdout failed: the command stops as for a signal (signo 0). */
static void stop_tick(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_cli_sigwatch *w = vigil_container_of(t, vigil_cli_sigwatch, stop);

  (void)loop;
  w->fn(w->arg, 0);
}

static void request_stop(vigil_cli_sigwatch *w) {
  vigil_loop_timer_arm(w->loop, &w->stop, vigil_loop_now_ms(w->loop), stop_tick);
}

void vigil_cli_sigwatch_start(vigil_loop *loop, vigil_cli_sigwatch *w,
                              void (*fn)(void *arg, int signo), void *arg) {
  w->fn = fn;
  w->arg = arg;
  w->loop = loop;
  catch_signals();
  vigil_loop_timer_init(&w->timer);
  vigil_loop_timer_init(&w->stop);
  vigil_loop_timer_arm(loop, &w->timer, vigil_loop_now_ms(loop) + 50, sigwatch_tick);
  active_watch = w;
  if (out_errno != 0)
    request_stop(w); /* stdout failed before the loop ran */
}

void vigil_cli_sigwatch_stop(vigil_loop *loop, vigil_cli_sigwatch *w) {
  vigil_loop_timer_cancel(loop, &w->timer);
  vigil_loop_timer_cancel(loop, &w->stop);
  if (active_watch == w)
    active_watch = NULL;
}

/* ---- stdout ---- */

/* The first failure is reported and stops the command; later writes are
 * skipped (they would only fail again). */
static void out_failed(int err) {
  if (out_errno != 0)
    return;
  out_errno = err != 0 ? err : EIO;
  fprintf(stderr, "vigil: stdout: %s\n", strerror(out_errno));
  if (active_watch != NULL)
    request_stop(active_watch);
}

int vigil_cli_out_failed(void) {
  return out_errno != 0;
}

int vigil_cli_out_flush(FILE *f) {
  errno = 0;
  if (out_errno != 0)
    return -1;
  if (fflush(f) != 0 || ferror(f)) {
    out_failed(errno);
    return -1;
  }
  return 0;
}

int vigil_cli_out_exit(int status) {
  if (vigil_cli_out_flush(stdout) == 0) {
    errno = 0;
    if (fclose(stdout) != 0)
      out_failed(errno);
  }
  if (out_errno != 0 && status == VIGIL_CLI_OK)
    return VIGIL_CLI_FAIL;
  return status;
}

int vigil_cli_loop_main(const char *cmd, vigil_loop *loop, vigil_cli_sigwatch *w,
                        void (*fn)(void *arg, int signo), void *arg) {
  vigil_cli_sigwatch_start(loop, w, fn, arg);
  return vigil_cli_run_loop(cmd, loop);
}

void vigil_cli_loop_stop(vigil_loop *loop, vigil_cli_sigwatch *w) {
  vigil_cli_sigwatch_stop(loop, w);
  vigil_loop_stop(loop);
}

void vigil_cli_loop_finish(vigil_loop *loop) {
  vigil_loop_run(loop, VIGIL_RUN_NOWAIT);
  vigil_loop_close(loop);
}

/* ---- time ---- */

#if defined(_WIN32)
double vigil_cli_unix_time(void) {
  FILETIME ft;
  ULARGE_INTEGER u;

  /* 100 ns ticks since 1601-01-01; the Unix epoch is 11644473600 s later. */
  GetSystemTimeAsFileTime(&ft);
  u.LowPart = ft.dwLowDateTime;
  u.HighPart = ft.dwHighDateTime;
  return (double)(u.QuadPart / 10 - 11644473600000000ULL) / 1e6;
}
#else
double vigil_cli_unix_time(void) {
  struct timeval tv;

  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}
#endif

/* ---- JSON strings ---- */

/* Length of the UTF-8 sequence led by c (1 for ASCII), 0 for a byte that
 * cannot start one. */
static size_t utf8_seq_len(unsigned char c) {
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    return 2;
  if ((c & 0xF0) == 0xE0)
    return 3;
  if ((c & 0xF8) == 0xF0)
    return 4;
  return 0;
}

static size_t emit(char *out, size_t cap, size_t pos, const char *s, size_t n) {
  if (pos < cap) {
    size_t room = cap - 1 - pos;
    memcpy(out + pos, s, n < room ? n : room);
  }
  return pos + n;
}

size_t vigil_cli_json_escape(char *out, size_t cap, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, pos = 0;
  char esc[8];

  while (i < len) {
    unsigned char c = u[i];
    size_t n = utf8_seq_len(c);
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      pos = emit(out, cap, pos, esc, 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      const char *shortform = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
      if (shortform != NULL)
        pos = emit(out, cap, pos, shortform, 2);
      else
        pos = emit(out, cap, pos, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c));
      i++;
    } else if (n >= 1 && i + n <= len && (n == 1 || vigil_utf8_valid(u + i, n))) {
      pos = emit(out, cap, pos, s + i, n);
      i += n;
    } else {
      pos = emit(out, cap, pos, "\\ufffd", 6);
      i++;
    }
  }
  if (cap > 0)
    out[pos < cap ? pos : cap - 1] = '\0';
  return pos;
}

/* ---- event lines ---- */

static void put(vigil_cli_line *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(vigil_cli_line *l, const char *fmt, ...) {
  va_list ap;
  size_t room = sizeof(l->buf) - l->len;
  int n;

  if (l->overflow)
    return;
  va_start(ap, fmt);
  n = vsnprintf(l->buf + l->len, room, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
  va_end(ap);
  if (n < 0 || (size_t)n >= room)
    l->overflow = 1;
  else
    l->len += (size_t)n;
}

/* Text mode quotes a value only when a reader could not tell where it ends. */
static int needs_quotes(const char *s, size_t len) {
  if (len == 0)
    return 1;
  for (size_t k = 0; k < len; k++)
    if (s[k] == ' ' || s[k] == '"' || s[k] == '=' || (unsigned char)s[k] < 0x20)
      return 1;
  return 0;
}

static void put_escaped(vigil_cli_line *l, const char *s, size_t len, int quote) {
  size_t room, need;

  if (l->overflow)
    return;
  if (quote)
    put(l, "\"");
  room = sizeof(l->buf) - l->len;
  need = vigil_cli_json_escape(l->buf + l->len, room, s, len);
  if (need + 1 >= room) {
    l->overflow = 1;
    return;
  }
  l->len += need;
  if (quote)
    put(l, "\"");
}

static void put_key(vigil_cli_line *l, const char *key) {
  if (l->json)
    put(l, ",\"%s\":", key);
  else
    put(l, " %s=", key);
}

void vigil_cli_line_begin(vigil_cli_line *l, int json, const char *event, const char *peer,
                          const char *id, size_t id_len) {
  double t = vigil_cli_unix_time();

  l->json = json;
  l->overflow = 0;
  l->len = 0;
  if (json) {
    put(l, "{\"t\":%.6f,\"event\":\"%s\"", t, event);
  } else {
    time_t secs = (time_t)t;
    struct tm *tm = gmtime(&secs);
    char stamp[32] = "?";
    if (tm != NULL)
      strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", tm);
    put(l, "%s.%03dZ %s", stamp, (int)((t - (double)secs) * 1000.0) % 1000, event);
  }
  l->head_len = l->len;
  if (json) {
    vigil_cli_line_cstr(l, "peer", peer);
    vigil_cli_line_str(l, "id", id, id_len);
  } else {
    put(l, " %s", peer != NULL ? peer : "-");
    if (id != NULL)
      vigil_cli_line_str(l, "id", id, id_len);
  }
}

void vigil_cli_line_str(vigil_cli_line *l, const char *key, const char *s, size_t len) {
  if (s == NULL) {
    vigil_cli_line_null(l, key);
    return;
  }
  put_key(l, key);
  put_escaped(l, s, len, l->json || needs_quotes(s, len));
}

void vigil_cli_line_cstr(vigil_cli_line *l, const char *key, const char *s) {
  vigil_cli_line_str(l, key, s, s != NULL ? strlen(s) : 0);
}

void vigil_cli_line_u64(vigil_cli_line *l, const char *key, uint64_t v) {
  put_key(l, key);
  put(l, "%llu", (unsigned long long)v);
}

void vigil_cli_line_null(vigil_cli_line *l, const char *key) {
  if (!l->json)
    return; /* text lines simply leave unknown values out */
  put_key(l, key);
  put(l, "null");
}

void vigil_cli_line_bool(vigil_cli_line *l, const char *key, int v) {
  put_key(l, key);
  put(l, "%s", v ? "true" : "false");
}

void vigil_cli_line_ms(vigil_cli_line *l, const char *key, uint64_t ns) {
  put_key(l, key);
  put(l, "%llu.%03llu", (unsigned long long)(ns / 1000000), (unsigned long long)(ns / 1000 % 1000));
}

void vigil_cli_line_end(vigil_cli_line *l, FILE *f) {
  if (l->overflow) {
    l->overflow = 0;
    l->len = l->head_len;
    put_key(l, "truncated");
    put(l, "true");
  }
  put(l, "%s\n", l->json ? "}" : "");
  if (out_errno != 0)
    return; /* stdout is gone: the command is already stopping */
  errno = 0;
  if (fwrite(l->buf, 1, l->len, f) != l->len) {
    out_failed(errno);
    return;
  }
  vigil_cli_out_flush(f);
}

void vigil_cli_line_death(vigil_cli_line *l, const vigil_death *d, int established) {
  int by_close = d->close_received || d->close_sent;

  vigil_cli_line_cstr(l, "cause", vigil_cause_name(d->cause));
  vigil_cli_line_u64(l, "silent_ms", d->silent_ns / 1000000);
  vigil_cli_line_cstr(l, "detail", d->detail);
  vigil_cli_line_cstr(l, "error", d->error != 0 ? vigil_err_name(d->error) : NULL);
  if (by_close) {
    vigil_cli_line_u64(l, "close_code", d->close_code);
    vigil_cli_line_cstr(l, "close_by", d->close_received ? "peer" : "us");
    if (d->reason != NULL)
      vigil_cli_line_str(l, "reason", d->reason, d->reason_len);
    else
      vigil_cli_line_cstr(l, "reason", vigil_close_code_text(d->close_code));
    vigil_cli_line_u64(l, "retry_after_ms", d->retry_after_ms);
  } else {
    vigil_cli_line_null(l, "close_code");
    vigil_cli_line_null(l, "close_by");
    vigil_cli_line_null(l, "reason");
    vigil_cli_line_null(l, "retry_after_ms");
  }
  vigil_cli_line_u64(l, "timeout_ms", d->timeout_ms);
  if (d->last_rtt_ns != 0)
    vigil_cli_line_ms(l, "last_rtt_ms", d->last_rtt_ns);
  if (established && d->tcp.available) {
    vigil_cli_line_u64(l, "tcp_unacked", d->tcp.unacked);
    vigil_cli_line_u64(l, "tcp_retransmits", d->tcp.retransmits);
    vigil_cli_line_u64(l, "tcp_probes", d->tcp.probes);
    vigil_cli_line_u64(l, "tcp_last_ack_ms", d->tcp.last_ack_recv_ms);
    if (d->tcp.snd_wnd != UINT32_MAX)
      vigil_cli_line_u64(l, "tcp_snd_wnd", d->tcp.snd_wnd);
  }
}

void vigil_cli_data_head(uint8_t *msg, size_t size, uint64_t seq) {
  char head[32];
  int n = snprintf(head, sizeof(head), "seq=%llu ", (unsigned long long)seq);

  if (n > 0)
    memcpy(msg, head, (size_t)n < size ? (size_t)n : size);
}

void vigil_cli_data_count(vigil_cli_data *d, int send_rc) {
  if (send_rc == 0)
    d->sent++;
  else if (send_rc == VIGIL_EQUEUEFULL)
    d->queue_full++;
  else
    d->failed++;
}

void vigil_cli_data_add(vigil_cli_data *sum, const vigil_cli_data *d) {
  sum->sent += d->sent;
  sum->queue_full += d->queue_full;
  sum->failed += d->failed;
}

void vigil_cli_line_data(vigil_cli_line *l, const vigil_cli_data *d, const vigil_conn_info *ci) {
  vigil_cli_line_u64(l, "sent", d->sent);
  vigil_cli_line_u64(l, "queue_full", d->queue_full);
  vigil_cli_line_u64(l, "send_failed", d->failed);
  if (ci != NULL) {
    vigil_cli_line_u64(l, "unsent", ci->queued_messages);
    vigil_cli_line_u64(l, "unsent_bytes", ci->queued_bytes);
  }
}

void vigil_cli_line_failed(vigil_cli_line *l, const char *message, unsigned attempt,
                           const vigil_death *d) {
  vigil_cli_line_cstr(l, "message", message);
  vigil_cli_line_u64(l, "attempt", attempt);
  vigil_cli_line_death(l, d, 0);
}
