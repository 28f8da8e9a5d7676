/* Tests of the `vigil` command.
 *
 * Two halves. The parsing helpers of tools/args.c and the line writer of
 * tools/events.c are compiled into this test
 * (the test target links only the library) and checked directly: durations,
 * counts, addresses and JSON escaping, where every reject must name a
 * reason. The commands themselves are run as the built binary
 * ($VIGIL_BINARY_DIR/vigil) in child processes: exit statuses, usage
 * messages, and the --json lines of serve and connect, including a death
 * with its cause. Every wait is bounded; every child is killed by pid. The
 * subprocess half needs fork/exec and skips on Windows. */
/* NOLINTBEGIN(bugprone-suspicious-include): the units under test */
#include "../tools/args.c"
#include "../tools/cli.c"
#include "../tools/events.c"
/* NOLINTEND(bugprone-suspicious-include) */

#include <stdlib.h>

#include "task.h"
#include "util-proc.h"
#include "util-redis.h"
#include "util-tls.h"

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---- durations ---- */

static int duration_ok(const char *s, uint32_t want) {
  uint32_t ms = 0;
  const char *why = NULL;
  return vigil_cli_parse_duration(s, &ms, &why) == 0 && ms == want;
}

static int duration_bad(const char *s) {
  uint32_t ms = 12345;
  const char *why = NULL;
  return vigil_cli_parse_duration(s, &ms, &why) == -1 && why != NULL && *why != '\0' && ms == 12345;
}

TEST_IMPL(duration_units) {
  ASSERT(duration_ok("250ms", 250));
  ASSERT(duration_ok("1ms", 1));
  ASSERT(duration_ok("3s", 3000));
  ASSERT(duration_ok("1.5s", 1500));
  ASSERT(duration_ok("0.25s", 250));
  ASSERT(duration_ok("2m", 120000));
  ASSERT(duration_ok("1h", 3600000));
  ASSERT(duration_ok("0.001s", 1));
  ASSERT(duration_ok("4294967295ms", 4294967295u));
  ASSERT(duration_ok("1193h", 1193u * 3600000u));
  return 0;
}

TEST_IMPL(duration_rejects) {
  const char *why = NULL;
  uint32_t ms;
  ASSERT(duration_bad(""));
  ASSERT(duration_bad("30")); /* no unit: ambiguous */
  ASSERT(duration_bad("3x"));
  ASSERT(duration_bad("3 s"));
  ASSERT(duration_bad("-3s"));
  ASSERT(duration_bad("+3s"));
  ASSERT(duration_bad(".5s"));
  ASSERT(duration_bad("1.s"));
  ASSERT(duration_bad("0ms"));
  ASSERT(duration_bad("0s"));
  ASSERT(duration_bad("0.5ms")); /* below the millisecond */
  ASSERT(duration_bad("1.0001s"));
  ASSERT(duration_bad("3ss"));
  ASSERT(duration_bad("3sx"));
  ASSERT(duration_bad("ms"));
  ASSERT(duration_bad("4294967296ms"));
  ASSERT(duration_bad("1194h"));
  ASSERT(duration_bad("99999999999999999999999s"));
  ASSERT(duration_bad("1.0000000001s"));
  ASSERT(vigil_cli_parse_duration(NULL, &ms, &why) == -1);
  ASSERT(vigil_cli_parse_duration("30", &ms, &why) == -1);
  ASSERT(strstr(why, "unit") != NULL);
  ASSERT(vigil_cli_parse_duration("99999h", &ms, &why) == -1);
  ASSERT(strstr(why, "large") != NULL);
  return 0;
}

TEST_IMPL(uint_parse) {
  uint32_t v = 0;
  const char *why;
  ASSERT_EQ(vigil_cli_parse_uint("0", 0, 10, &v, &why), 0);
  ASSERT_EQ(v, 0);
  ASSERT_EQ(vigil_cli_parse_uint("4294967295", 0, UINT32_MAX, &v, &why), 0);
  ASSERT_UEQ(v, 4294967295u);
  ASSERT_EQ(vigil_cli_parse_uint("4294967296", 0, UINT32_MAX, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint("11", 0, 10, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint("0", 1, 10, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint("-1", 0, 10, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint("1x", 0, 10, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint("", 0, 10, &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_uint(" 1", 0, 10, &v, &why), -1);
  return 0;
}

TEST_IMPL(size_parse) {
  uint64_t v = 7;
  const char *why;
  ASSERT_EQ(vigil_cli_parse_size("64MiB", &v, &why), 0);
  ASSERT_UEQ(v, (uint64_t)64 << 20);
  ASSERT_EQ(vigil_cli_parse_size("3G", &v, &why), 0);
  ASSERT_UEQ(v, (uint64_t)3 << 30);
  ASSERT_EQ(vigil_cli_parse_size("512K", &v, &why), 0);
  ASSERT_UEQ(v, (uint64_t)512 << 10);
  ASSERT_EQ(vigil_cli_parse_size("100B", &v, &why), 0);
  ASSERT_UEQ(v, 100);
  v = 7;
  ASSERT_EQ(vigil_cli_parse_size("64", &v, &why), -1); /* a unit is required */
  ASSERT_STR_EQ(why, "missing unit (use B, KiB, MiB or GiB, e.g. 64MiB)");
  ASSERT_EQ(vigil_cli_parse_size("64MB", &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_size("0MiB", &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_size("9999999999GiB", &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_size("-1MiB", &v, &why), -1);
  ASSERT_EQ(vigil_cli_parse_size("", &v, &why), -1);
  ASSERT_UEQ(v, 7); /* untouched on failure */
  return 0;
}

/* ---- addresses ---- */

TEST_IMPL(addr_parse) {
  vigil_cli_addr a;
  const char *why = NULL;

  ASSERT_EQ(vigil_cli_parse_addr("127.0.0.1:7000", 0, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "127.0.0.1");
  ASSERT_STR_EQ(a.port, "7000");
  ASSERT_EQ(a.port_num, 7000);
  ASSERT_EQ(vigil_cli_parse_addr("[::1]:65535", 0, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "::1");
  ASSERT_EQ(a.port_num, 65535);
  ASSERT_EQ(vigil_cli_parse_addr("localhost:1", 0, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "localhost");
  /* serve: PORT alone, :PORT, and port 0 */
  ASSERT_EQ(vigil_cli_parse_addr("7000", 1, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "");
  ASSERT_EQ(a.port_num, 7000);
  ASSERT_EQ(vigil_cli_parse_addr(":7001", 1, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "");
  ASSERT_EQ(a.port_num, 7001);
  ASSERT_EQ(vigil_cli_parse_addr("0", 1, &a, &why), 0);
  ASSERT_EQ(a.port_num, 0);
  ASSERT_EQ(vigil_cli_parse_addr("[::]:0", 1, &a, &why), 0);
  ASSERT_STR_EQ(a.host, "::");
  return 0;
}

TEST_IMPL(addr_rejects) {
  static const char *const bad_connect[] = {
      "",           "7000",        ":7000",   "host",     "host:",       "host:0",
      "host:65536", "host:70000x", "host:-1", "::1:7000", "[::1]7000",   "[::1]",
      "[]:7000",    "[::1:7000",   "a b:1",   "host:+80", "host:000080", NULL};
  static const char *const bad_serve[] = {"65536", "x", "-1", ":", "1:2:3", NULL};
  vigil_cli_addr a;
  char longhost[400];

  for (int k = 0; bad_connect[k] != NULL; k++) {
    const char *why = NULL;
    if (vigil_cli_parse_addr(bad_connect[k], 0, &a, &why) != -1 || why == NULL)
      TEST_FAIL_AT("'%s' was accepted as HOST:PORT", bad_connect[k]);
  }
  for (int k = 0; bad_serve[k] != NULL; k++) {
    const char *why = NULL;
    if (vigil_cli_parse_addr(bad_serve[k], 1, &a, &why) != -1 || why == NULL)
      TEST_FAIL_AT("'%s' was accepted as a listen address", bad_serve[k]);
  }
  memset(longhost, 'a', sizeof(longhost));
  memcpy(longhost + 300, ":80", 4);
  {
    const char *why = NULL;
    ASSERT_EQ(vigil_cli_parse_addr(longhost, 0, &a, &why), -1);
    ASSERT(strstr(why, "long") != NULL);
  }
  return 0;
}

TEST_IMPL(addr_resolve_and_format) {
  vigil_cli_addr a;
  struct addrinfo *res = NULL;
  const char *why = NULL;
  char text[VIGIL_CLI_ADDRSTRLEN];

#if defined(_WIN32)
  RETURN_SKIP("resolver needs WSAStartup, which the commands' loop does");
#endif
  ASSERT_EQ(vigil_cli_parse_addr("[::1]:7000", 0, &a, &why), 0);
  ASSERT_EQ(vigil_cli_resolve(&a, 0, &res, &why), 0);
  vigil_cli_format_sockaddr(res->ai_addr, res->ai_addrlen, text, sizeof(text));
  freeaddrinfo(res);
  ASSERT_STR_EQ(text, "[::1]:7000");
  ASSERT_EQ(vigil_cli_parse_addr("127.0.0.1:80", 0, &a, &why), 0);
  ASSERT_EQ(vigil_cli_resolve(&a, 0, &res, &why), 0);
  vigil_cli_format_sockaddr(res->ai_addr, res->ai_addrlen, text, sizeof(text));
  freeaddrinfo(res);
  ASSERT_STR_EQ(text, "127.0.0.1:80");
  ASSERT_EQ(vigil_cli_parse_addr("localhost:80", 0, &a, &why), 0);
  ASSERT_EQ(vigil_cli_resolve(&a, 0, &res, &why), 0);
  freeaddrinfo(res);
  ASSERT_EQ(vigil_cli_parse_addr("no-such-host.invalid:80", 0, &a, &why), 0);
  ASSERT_EQ(vigil_cli_resolve(&a, 0, &res, &why), -1);
  ASSERT_NOT_NULL(why);
  return 0;
}

/* ---- JSON ---- */

static const char *escaped(const char *s, size_t len) {
  static char out[256];
  size_t need = vigil_cli_json_escape(out, sizeof(out), s, len);
  return need < sizeof(out) ? out : "(overflow)";
}

TEST_IMPL(json_escape) {
  char small[8];
  ASSERT_STR_EQ(escaped("plain", 5), "plain");
  ASSERT_STR_EQ(escaped("a\"b\\c", 5), "a\\\"b\\\\c");
  ASSERT_STR_EQ(escaped("\n\r\t\x01\x1f\x7f", 6), "\\n\\r\\t\\u0001\\u001f\\u007f");
  ASSERT_STR_EQ(escaped("nul\0x", 5), "nul\\u0000x");
  /* valid UTF-8 is kept: e-acute, euro sign, U+1F600 */
  ASSERT_STR_EQ(escaped("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
                "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  /* invalid: lone continuation, truncated sequence, overlong, surrogate,
   * above U+10FFFF, 0xFF: one replacement per bad byte */
  ASSERT_STR_EQ(escaped("\x80", 1), "\\ufffd");
  ASSERT_STR_EQ(escaped("a\xc3", 2), "a\\ufffd");
  ASSERT_STR_EQ(escaped("\xc0\xaf", 2), "\\ufffd\\ufffd");
  ASSERT_STR_EQ(escaped("\xed\xa0\x80", 3), "\\ufffd\\ufffd\\ufffd");
  ASSERT_STR_EQ(escaped("\xf4\x90\x80\x80", 4), "\\ufffd\\ufffd\\ufffd\\ufffd");
  ASSERT_STR_EQ(escaped("\xff", 1), "\\ufffd");
  /* a short buffer is NUL-terminated and the needed length reported */
  ASSERT_EQ(vigil_cli_json_escape(small, sizeof(small), "0123456789", 10), 10);
  ASSERT_STR_EQ(small, "0123456");
  return 0;
}

/* --send-every's pieces: the message head, the result counts, a bare flag. */
TEST_IMPL(data_helpers) {
  uint8_t msg[12];
  vigil_cli_data d, sum;
  int on = 0;

  memset(msg, 'v', sizeof(msg));
  vigil_cli_data_head(msg, sizeof(msg), 7);
  ASSERT_EQ(memcmp(msg, "seq=7 vvvvvv", 12), 0);
  vigil_cli_data_head(msg, sizeof(msg), 12345);
  ASSERT_EQ(memcmp(msg, "seq=12345 vv", 12), 0);
  vigil_cli_data_head(msg, 3, 99); /* cut at the message size */
  ASSERT_EQ(memcmp(msg, "seq=12345 vv", 12), 0);
  memset(&d, 0, sizeof(d));
  vigil_cli_data_count(&d, 0);
  vigil_cli_data_count(&d, 0);
  vigil_cli_data_count(&d, VIGIL_EQUEUEFULL);
  vigil_cli_data_count(&d, VIGIL_ECLOSED);
  ASSERT_EQ(d.sent, 2);
  ASSERT_EQ(d.queue_full, 1);
  ASSERT_EQ(d.failed, 1);
  memset(&sum, 0, sizeof(sum));
  vigil_cli_data_add(&sum, &d);
  vigil_cli_data_add(&sum, &d);
  ASSERT_EQ(sum.sent, 4);
  ASSERT_EQ(sum.queue_full, 2);
  ASSERT_EQ(sum.failed, 2);
  ASSERT_EQ(vigil_cli_flag_set("--echox", "--echo", &on), 0);
  ASSERT_EQ(on, 0);
  ASSERT_EQ(vigil_cli_flag_set("--echo", "--echo", &on), 1);
  ASSERT_EQ(on, 1);
  return 0;
}

TEST_IMPL(json_line) {
  vigil_cli_line l;
  static char big[3000];

  vigil_cli_line_begin(&l, 1, "dead", "127.0.0.1:5", "c\"1", 3);
  vigil_cli_line_cstr(&l, "cause", "closed");
  vigil_cli_line_u64(&l, "silent_ms", 601);
  vigil_cli_line_ms(&l, "rtt_ms", 1234567);
  vigil_cli_line_null(&l, "reason");
  vigil_cli_line_bool(&l, "alive", 0);
  l.buf[l.len] = '\0';
  ASSERT(strncmp(l.buf, "{\"t\":", 5) == 0);
  ASSERT_NOT_NULL(strstr(l.buf, "\"event\":\"dead\",\"peer\":\"127.0.0.1:5\",\"id\":\"c\\\"1\","
                                "\"cause\":\"closed\",\"silent_ms\":601,\"rtt_ms\":1.234,"
                                "\"reason\":null,\"alive\":false"));
  /* overflow: the line degrades to its head plus "truncated", never cut */
  memset(big, 1, sizeof(big)); /* each byte escapes to 6 */
  vigil_cli_line_begin(&l, 1, "dead", NULL, NULL, 0);
  vigil_cli_line_str(&l, "reason", big, sizeof(big));
  vigil_cli_line_u64(&l, "n", 1);
  ASSERT(l.overflow);
  {
    FILE *f = tmpfile();
    char got[256];
    ASSERT_NOT_NULL(f);
    vigil_cli_line_end(&l, f);
    rewind(f);
    ASSERT_NOT_NULL(fgets(got, sizeof(got), f));
    fclose(f);
    ASSERT_NOT_NULL(strstr(got, "\"event\":\"dead\",\"truncated\":true}\n"));
  }
  /* text mode: quotes only when needed, nulls left out */
  vigil_cli_line_begin(&l, 0, "open", "[::1]:7", "c1", 2);
  vigil_cli_line_cstr(&l, "reason", "server full");
  vigil_cli_line_null(&l, "x");
  l.buf[l.len] = '\0';
  ASSERT_NOT_NULL(strstr(l.buf, "Z open [::1]:7 id=c1 reason=\"server full\""));
  ASSERT_NULL(strstr(l.buf, " x="));
  return 0;
}

/* ---- the binary, in child processes ---- */

#if !defined(_WIN32)
extern char **environ;

typedef struct child {
  pid_t pid;
  int out, err; /* read ends of its stdout / stderr */
  size_t out_len, err_len;
  char out_buf[16384], err_buf[4096];
} child;

static const char *vigil_path(void) {
  static char path[1024];
  const char *dir = getenv("VIGIL_BINARY_DIR");
  if (dir == NULL)
    return NULL;
  snprintf(path, sizeof(path), "%s/vigil", dir);
  return access(path, X_OK) == 0 ? path : NULL;
}

/* Starts vigil with argv (argv[0] is replaced by the binary's path); its
 * stdout goes to the file out_path when that is not NULL (c->out then
 * reads nothing), else to a pipe. */
static int child_start_to(child *c, char **argv, const char *out_path) {
  int out[2], err[2];
  posix_spawn_file_actions_t fa;
  int rc;

  memset(c, 0, sizeof(*c));
  if (pipe(out) != 0 || pipe(err) != 0)
    return -1;
  posix_spawn_file_actions_init(&fa);
  if (out_path != NULL)
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY, 0);
  else
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addclose(&fa, err[0]);
  argv[0] = (char *)vigil_path();
  rc = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  c->out = out[0];
  c->err = err[0];
  fcntl(c->out, F_SETFL, O_NONBLOCK);
  fcntl(c->err, F_SETFL, O_NONBLOCK);
  return rc == 0 ? 0 : -1;
}

static int child_start(child *c, char **argv) {
  return child_start_to(c, argv, NULL);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void drain(int fd, char *buf, size_t cap, size_t *len) {
  for (;;) {
    ssize_t n;
    if (*len + 1 >= cap)
      return;
    if (fd < 0)
      return;
    n = read(fd, buf + *len, cap - 1 - *len);
    if (n <= 0)
      return;
    *len += (size_t)n;
    buf[*len] = '\0';
  }
}

/* Next stdout line of c into line (without the newline), waiting at most
 * timeout_ms. Returns 1, or 0 on timeout or end of output. */
static int child_line(child *c, char *line, size_t cap, int timeout_ms) {
  uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
  for (;;) {
    char *nl = memchr(c->out_buf, '\n', c->out_len);
    struct pollfd p;
    uint64_t now;
    if (nl != NULL) {
      size_t n = (size_t)(nl - c->out_buf);
      snprintf(line, cap, "%.*s", (int)n, c->out_buf);
      memmove(c->out_buf, nl + 1, c->out_len - n - 1);
      c->out_len -= n + 1;
      c->out_buf[c->out_len] = '\0';
      return 1;
    }
    now = mono_ms();
    if (now >= deadline)
      return 0;
    p.fd = c->out;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, (int)(deadline - now)) <= 0)
      return 0;
    {
      size_t before = c->out_len;
      drain(c->out, c->out_buf, sizeof(c->out_buf), &c->out_len);
      if (c->out_len == before && (p.revents & (POLLHUP | POLLERR)))
        return 0;
    }
  }
}

/* Waits (bounded) for a line with event EVENT and, if id != NULL, "id":ID.
 * Lines before it are skipped. */
static int child_event(child *c, const char *event, const char *id, char *line, size_t cap,
                       int timeout_ms) {
  char ev[64], idk[300];
  uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
  snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
  snprintf(idk, sizeof(idk), "\"id\":\"%s\"", id != NULL ? id : "");
  while (mono_ms() < deadline) {
    if (!child_line(c, line, cap, (int)(deadline - mono_ms())))
      return 0;
    if (strstr(line, ev) != NULL && (id == NULL || strstr(line, idk) != NULL))
      return 1;
  }
  return 0;
}

/* Waits (bounded) for the child to exit; returns its status, or -1 after
 * killing it when it did not exit in time. Collects its stderr. */
static int child_wait(child *c, int timeout_ms) {
  uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    drain(c->err, c->err_buf, sizeof(c->err_buf), &c->err_len);
    drain(c->out, c->out_buf, sizeof(c->out_buf), &c->out_len);
    if (r == c->pid)
      break;
    if (mono_ms() >= deadline) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &status, 0);
      status = -1;
      break;
    }
    poll(NULL, 0, 10);
  }
  drain(c->err, c->err_buf, sizeof(c->err_buf), &c->err_len);
  if (c->out >= 0)
    close(c->out);
  close(c->err);
  if (status == -1)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits (bounded) until the child's stderr holds TEXT. Returns 1, or 0 on
 * timeout or end of output. */
static int child_stderr_has(child *c, const char *text, int timeout_ms) {
  uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
  for (;;) {
    struct pollfd p;
    uint64_t now;
    drain(c->err, c->err_buf, sizeof(c->err_buf), &c->err_len);
    if (strstr(c->err_buf, text) != NULL)
      return 1;
    now = mono_ms();
    if (now >= deadline)
      return 0;
    p.fd = c->err;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, (int)(deadline - now)) < 0)
      return 0;
    if ((p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN))
      return 0;
  }
}

static void child_kill(child *c) {
  kill(c->pid, SIGCONT);
  kill(c->pid, SIGKILL);
  child_wait(c, 2000);
}

/* Runs vigil to completion (bounded); returns its exit status. */
static int run_vigil(child *c, char **argv, int timeout_ms) {
  if (child_start(c, argv) != 0)
    return -2;
  return child_wait(c, timeout_ms);
}

/* ---- a flat JSON object checker: {"key": string|number|true|false|null, ...} ---- */

enum { J_NONE, J_STR, J_NUM, J_BOOL, J_NULL };

static const char *skip_string(const char *p) {
  for (p++; *p != '\0' && *p != '"'; p++)
    if (*p == '\\') {
      p++;
      if (*p == '\0')
        return NULL;
    } else if ((unsigned char)*p < 0x20) {
      return NULL;
    }
  return *p == '"' ? p + 1 : NULL;
}

static const char *skip_value(const char *p, int *type) {
  if (*p == '"') {
    *type = J_STR;
    return skip_string(p);
  }
  if (strncmp(p, "null", 4) == 0) {
    *type = J_NULL;
    return p + 4;
  }
  if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
    *type = J_BOOL;
    return p + (*p == 't' ? 4 : 5);
  }
  if (*p == '-' || isdigit((unsigned char)*p)) {
    char *end;
    (void)strtod(p, &end);
    *type = J_NUM;
    return end;
  }
  return NULL;
}

/* 1 if line is a valid flat object. */
static int json_valid(const char *line) {
  const char *p = line;
  int type;
  if (*p++ != '{')
    return 0;
  for (;;) {
    if (*p != '"' || (p = skip_string(p)) == NULL || *p++ != ':')
      return 0;
    if ((p = skip_value(p, &type)) == NULL)
      return 0;
    if (*p == '}')
      return p[1] == '\0';
    if (*p++ != ',')
      return 0;
  }
}

/* Type of key's value in line (J_NONE if absent); its text into out. */
static int json_get(const char *line, const char *key, char *out, size_t cap) {
  char pat[80];
  const char *p, *end;
  int type;
  snprintf(pat, sizeof(pat), "\"%s\":", key);
  p = strstr(line, pat);
  if (p == NULL)
    return J_NONE;
  p += strlen(pat);
  end = skip_value(p, &type);
  if (end == NULL)
    return J_NONE;
  if (type == J_STR)
    snprintf(out, cap, "%.*s", (int)(end - p - 2), p + 1);
  else
    snprintf(out, cap, "%.*s", (int)(end - p), p);
  return type;
}

static long json_num(const char *line, const char *key) {
  char v[64];
  return json_get(line, key, v, sizeof(v)) == J_NUM ? strtol(v, NULL, 10) : -1;
}

/* The common keys of every line (docs/CLI.md). */
static int json_common_ok(const char *line, const char *event) {
  char v[300];
  return json_valid(line) && json_get(line, "t", v, sizeof(v)) == J_NUM &&
         strtod(v, NULL) > 1.6e9 && json_get(line, "event", v, sizeof(v)) == J_STR &&
         strcmp(v, event) == 0 && json_get(line, "peer", v, sizeof(v)) != J_NONE &&
         json_get(line, "id", v, sizeof(v)) != J_NONE;
}

/* Starts `vigil serve 127.0.0.1:0 --json ARGS...`; returns the port. */
static int start_server(child *srv, const char *interval, const char *timeout) {
  char line[1024];
  char *argv[] = {NULL,        "serve",         "127.0.0.1:0",
                  "--json",    "--interval",    (char *)interval,
                  "--timeout", (char *)timeout, NULL};
  if (child_start(srv, argv) != 0 || !child_event(srv, "listening", NULL, line, sizeof(line), 5000))
    return -1;
  if (!json_common_ok(line, "listening"))
    return -1;
  return (int)json_num(line, "port");
}

/* Starts `vigil serve` with argv (its address 127.0.0.1:0) and waits for
 * its listening line; addr gets "127.0.0.1:PORT". Returns the port, or -1. */
static int serve_on(child *srv, char **argv, char *addr, size_t cap) {
  char line[1024];
  int port;
  if (child_start(srv, argv) != 0 || !child_event(srv, "listening", NULL, line, sizeof(line), 5000))
    return -1;
  port = (int)json_num(line, "port");
  snprintf(addr, cap, "127.0.0.1:%d", port);
  return port > 0 ? port : -1;
}
#endif

/* ---- tests of the binary ---- */

#define NEED_BINARY()                                                                              \
  do {                                                                                             \
    if (vigil_path() == NULL)                                                                      \
      RETURN_SKIP("VIGIL_BINARY_DIR/vigil not built");                                             \
  } while (0)

#if !defined(_WIN32)
/* A bad flag, duration or address: exit 2 and one line naming it. */
static int usage_case(const char *expect, char *a1, char *a2, char *a3, char *a4) {
  char *argv[] = {NULL, a1, a2, a3, a4, NULL};
  child c;
  int st = run_vigil(&c, argv, 5000);
  char *nl;
  if (st != 2) {
    fprintf(stderr, "vigil %s %s %s %s: exit %d, want 2\n", a1, a2 ? a2 : "", a3 ? a3 : "",
            a4 ? a4 : "", st);
    return 1;
  }
  nl = strchr(c.err_buf, '\n');
  if (strstr(c.err_buf, expect) == NULL || nl == NULL || nl[1] != '\0') {
    fprintf(stderr, "vigil %s ...: stderr does not name '%s' in one line: %s\n", a1, expect,
            c.err_buf);
    return 1;
  }
  return 0;
}
#endif

/* Defect 3 of issue 8: `vigil serve P` with another process on
 * 127.0.0.1:P printed `listening *:P` and held only [::]:P. It must exit 1
 * naming the address it could not bind. */
TEST_IMPL(serve_refuses_half_bind) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  struct sockaddr_in sin;
  socklen_t len = sizeof(sin);
  char port[16], want[64];
  int one = 1, fd;
  child c;
  NEED_BINARY();
  fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(fd >= 0);
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  snprintf(port, sizeof(port), "%u", (unsigned)ntohs(sin.sin_port));
  {
    char *argv[] = {NULL, "serve", port, NULL};
    int st = run_vigil(&c, argv, 5000);
    close(fd);
    ASSERT_EQ(st, 1);
  }
  snprintf(want, sizeof(want), "0.0.0.0:%s: address already in use", port);
  if (strstr(c.err_buf, want) == NULL)
    TEST_FAIL_AT("stderr does not say '%s': %s", want, c.err_buf);
  ASSERT(strstr(c.out_buf, "listening") == NULL);
  return 0;
#endif
}

TEST_IMPL(usage_errors) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  NEED_BINARY();
  ASSERT_EQ(usage_case("nope", "nope", NULL, NULL, NULL), 0);
  ASSERT_EQ(usage_case("--frobnicate", "--frobnicate", NULL, NULL, NULL), 0);
  ASSERT_EQ(usage_case("PORT", "serve", NULL, NULL, NULL), 0);
  ASSERT_EQ(usage_case("'3x'", "serve", "7000", "--interval", "3x"), 0);
  ASSERT_EQ(usage_case("--interval", "serve", "7000", "--interval", "3x"), 0);
  ASSERT_EQ(usage_case("'30'", "serve", "7000", "--timeout", "30"), 0);
  ASSERT_EQ(usage_case("99999", "serve", "99999", NULL, NULL), 0);
  ASSERT_EQ(usage_case("--bogus", "serve", "7000", "--bogus", NULL), 0);
  ASSERT_EQ(usage_case("--interval", "serve", "7000", "--interval", NULL), 0);
  ASSERT_EQ(usage_case("example.com", "connect", "example.com", NULL, NULL), 0);
  ASSERT_EQ(usage_case("--bogus", "connect", "127.0.0.1:1", "--bogus", NULL), 0);
  ASSERT_EQ(usage_case("99999999999h", "connect", "127.0.0.1:1", "--timeout", "99999999999h"), 0);
  ASSERT_EQ(usage_case("--timeout", "connect", "127.0.0.1:1", "--timeout=1s", NULL), 0);
  ASSERT_EQ(usage_case("extra", "connect", "127.0.0.1:1", "extra", NULL), 0);
  ASSERT_EQ(usage_case("[::1]7000", "probe", "[::1]7000", NULL, NULL), 0);
  ASSERT_EQ(usage_case("--count", "probe", "127.0.0.1:1", "--count", "0"), 0);
  ASSERT_EQ(usage_case("'x'", "probe", "127.0.0.1:1", "--count", "x"), 0);
  ASSERT_EQ(usage_case("--interval", "probe", "127.0.0.1:1", "--interval", "-1s"), 0);
  ASSERT_EQ(usage_case("--send-every", "connect", "127.0.0.1:1", "--send-size", "64"), 0);
  ASSERT_EQ(usage_case("--send-size", "connect", "127.0.0.1:1", "--send-size", "0"), 0);
  ASSERT_EQ(usage_case("--send-size", "connect", "127.0.0.1:1", "--send-size", "1048577"), 0);
  ASSERT_EQ(usage_case("'10x'", "connect", "127.0.0.1:1", "--send-every", "10x"), 0);
  ASSERT_EQ(usage_case("--echo", "connect", "127.0.0.1:1", "--echo", NULL), 0);
  ASSERT_EQ(usage_case("--send-every", "serve", "7000", "--send-size", "64"), 0);
  ASSERT_EQ(usage_case("'5'", "serve", "7000", "--rate-limit", "5"), 0);
  ASSERT_EQ(usage_case("--id", "token", "--secret", "/nonexistent", NULL), 0);
  ASSERT_EQ(usage_case("'3x'", "token", "--secret=/x", "--id=a", "--ttl=3x"), 0);
  ASSERT_EQ(usage_case("--check", "token", "--secret=/x", "--id=a", NULL), 0);
  ASSERT_EQ(usage_case("burst", "serve", "7000", "--rate-limit", "5/s,burst=0"), 0);
  ASSERT_EQ(usage_case("',x'", "serve", "7000", "--rate-limit", "5/m,x"), 0);
  /* short options name their long form; an unknown one is named as typed */
  ASSERT_EQ(usage_case("--interval: bad duration '3x'", "serve", "7000", "-i", "3x"), 0);
  ASSERT_EQ(usage_case("--count: bad number '0'", "probe", "127.0.0.1:1", "-c", "0"), 0);
  ASSERT_EQ(usage_case("unknown option '-x'", "probe", "127.0.0.1:1", "-x", NULL), 0);
  ASSERT_EQ(usage_case("--count needs a value", "probe", "127.0.0.1:1", "--count", NULL), 0);
  /* the library's rules, asked of the library (vigil_session_config_check) */
  ASSERT_EQ(usage_case("timeout 1500ms must be at least 2 x interval 1000ms", "connect",
                       "127.0.0.1:1", "--timeout", "1500ms"),
            0);
  ASSERT_EQ(usage_case("timeout 150ms must be at least 2 x the shortest interval 100ms", "serve",
                       "7000", "--timeout", "150ms"),
            0);
  return 0;
#endif
}

/* docs/CLI.md's usage-error examples are real: each "$ vigil ARGS" line of
 * the block after the usage-errors marker is run, and its stderr must be
 * exactly the line that follows, with exit 2 (scripts/cli-doc.sh writes
 * those lines from the binary; this catches a doc that drifted). */
TEST_IMPL(usage_errors_match_doc) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  static char doc[65536];
  char path[1024], *p, *end;
  const char *src = getenv("VIGIL_SOURCE_DIR");
  FILE *f;
  size_t n;
  int cases = 0;
  NEED_BINARY();
  ASSERT_NOT_NULL(src);
  snprintf(path, sizeof(path), "%s/docs/CLI.md", src);
  f = fopen(path, "r");
  ASSERT_NOT_NULL(f);
  n = fread(doc, 1, sizeof(doc) - 1, f);
  fclose(f);
  doc[n] = '\0';
  p = strstr(doc, "<!-- usage-errors");
  ASSERT_NOT_NULL(p);
  p = strstr(p, "```\n");
  ASSERT_NOT_NULL(p);
  p += 4;
  end = strstr(p, "```");
  ASSERT_NOT_NULL(end);
  *end = '\0';
  while (*p != '\0') {
    char *cmd = p, *want, *argv[16];
    int argc = 1;
    child c;
    ASSERT(strncmp(cmd, "$ vigil ", 8) == 0);
    want = strchr(cmd, '\n');
    ASSERT_NOT_NULL(want);
    *want++ = '\0';
    p = strchr(want, '\n');
    ASSERT_NOT_NULL(p);
    *p++ = '\0';
    char shown[256];
    snprintf(shown, sizeof(shown), "%s", cmd + 8);
    for (char *tok = strtok(cmd + 8, " "); tok != NULL && argc < 15; tok = strtok(NULL, " "))
      argv[argc++] = tok;
    argv[argc] = NULL;
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
    if (strncmp(c.err_buf, want, strlen(want)) != 0 || strcmp(c.err_buf + strlen(want), "\n") != 0)
      TEST_FAIL_AT("docs/CLI.md says\n  %s\nbut vigil %s printed\n  %s(run scripts/cli-doc.sh)",
                   want, shown, c.err_buf);
    cases++;
  }
  ASSERT_GE(cases, 4);
  return 0;
#endif
}

TEST_IMPL(help_and_version) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  static const char *const cmds[] = {"--help", "serve",        "connect", "probe",
                                     "run",    "idle-timeout", NULL};
  child c;
  NEED_BINARY();
  for (int k = 0; cmds[k] != NULL; k++) {
    char *argv[] = {NULL, (char *)cmds[k], k == 0 ? NULL : "--help", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    ASSERT_NOT_NULL(strstr(c.out_buf, "usage: vigil"));
  }
  /* `vigil help CMD` prints exactly what `vigil CMD --help` does */
  for (int k = 1; cmds[k] != NULL; k++) {
    static char want[16384];
    char *argv[] = {NULL, (char *)cmds[k], "--help", NULL};
    char *argv2[] = {NULL, "help", (char *)cmds[k], NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    snprintf(want, sizeof(want), "%s", c.out_buf);
    ASSERT_EQ(run_vigil(&c, argv2, 5000), 0);
    ASSERT_STR_EQ(c.out_buf, want);
  }
  ASSERT_EQ(usage_case("'nope'", "help", "nope", NULL, NULL), 0);
  {
    char *argv[] = {NULL, "--version", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    ASSERT_NOT_NULL(strstr(c.out_buf, "vigil 0."));
  }
  {
    char *argv[] = {NULL, NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
  }
  return 0;
#endif
}

TEST_IMPL(probe_closed_port) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  char port[32];
  int fd;
  child c;
  uint64_t t0;
  NEED_BINARY();
  /* a port bound but never listened on: connections to it are refused */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(fd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  snprintf(port, sizeof(port), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
  {
    char *argv[] = {NULL, "probe", port, "--timeout", "1s", NULL};
    t0 = mono_ms();
    ASSERT_EQ(run_vigil(&c, argv, 10000), 1);
    ASSERT_LT(mono_ms() - t0, 5000);
  }
  close(fd);
  return 0;
#endif
}

TEST_IMPL(probe_live_and_stopped) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, c;
  char addr[64], line[1024];
  int port;
  uint64_t t0;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "probe", addr, "--count", "2", "--interval", "100ms", NULL};
    int st = run_vigil(&c, argv, 10000);
    if (st != 0)
      child_kill(&srv);
    ASSERT_EQ(st, 0);
    ASSERT_NOT_NULL(strstr(c.out_buf, "2 pongs"));
  }
  {
    /* the short forms (getopt_long): -c --count, -i --interval, -j --json */
    char *argv[] = {NULL, "probe", "-c", "1", addr, "-i100ms", "-j", NULL};
    int st = run_vigil(&c, argv, 10000);
    if (st != 0)
      child_kill(&srv);
    ASSERT_EQ(st, 0);
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"event\":\"summary\""));
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"alive\":true"));
  }
  /* a frozen server: its kernel completes the TCP handshake, nobody answers */
  ASSERT_EQ(kill(srv.pid, SIGSTOP), 0);
  {
    char *argv[] = {NULL,         "probe", addr,        "--count", "1",
                    "--interval", "100ms", "--timeout", "500ms",   NULL};
    int st;
    t0 = mono_ms();
    st = run_vigil(&c, argv, 10000);
    child_kill(&srv);
    ASSERT_EQ(st, 1);
    /* Dead at the 500 ms timeout, and the process exits then: no socket
     * linger after a silence verdict (that would add a whole second). */
    ASSERT_GE(mono_ms() - t0, 500);
    ASSERT_LT(mono_ms() - t0, 1450);
  }
  (void)line;
  return 0;
#endif
}

TEST_IMPL(serve_connect_json) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  /* an id with a quote, a backslash and an e-acute: escaped, UTF-8 kept */
  static const char id[] = "t\"1\\\xc3\xa9";
  static const char id_json[] = "t\\\"1\\\\\xc3\xa9";
  child srv, cli, cli2;
  char addr[64], line[2048], v[300];
  int port;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL,    "connect",   addr,    "--id",   (char *)id, "--interval",
                    "100ms", "--timeout", "300ms", "--json", NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  /* the client: connecting, open with the agreed values, then RTTs */
  ASSERT(child_event(&cli, "connecting", NULL, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "connecting"));
  ASSERT(child_event(&cli, "open", NULL, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "open"));
  ASSERT_EQ(json_get(line, "id", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, id_json);
  ASSERT_EQ(json_num(line, "interval_ms"), 100);
  ASSERT_EQ(json_num(line, "timeout_ms"), 300);
  ASSERT(child_event(&cli, "rtt", NULL, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "rtt"));
  ASSERT_EQ(json_get(line, "rtt_ms", v, sizeof(v)), J_NUM);
  ASSERT(strtod(v, NULL) >= 0.0 && strtod(v, NULL) < 300.0);
  /* the server saw it open */
  ASSERT(child_event(&srv, "open", id_json, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "open"));
  ASSERT_EQ(json_get(line, "peer", v, sizeof(v)), J_STR);
  ASSERT(strncmp(v, "127.0.0.1:", 10) == 0);
  ASSERT_EQ(json_num(line, "conns"), 1);
  /* freeze the client: the server's verdict, never before the timeout */
  ASSERT_EQ(kill(cli.pid, SIGSTOP), 0);
  ASSERT(child_event(&srv, "dead", id_json, line, sizeof(line), 5000));
  kill(cli.pid, SIGCONT);
  child_kill(&cli);
  ASSERT(json_common_ok(line, "dead"));
  ASSERT_EQ(json_get(line, "cause", v, sizeof(v)), J_STR);
  ASSERT(strcmp(v, "heartbeat_timeout") == 0 || strcmp(v, "peer_stalled") == 0);
  ASSERT_GE(json_num(line, "silent_ms"), 300);
  ASSERT_EQ(json_num(line, "timeout_ms"), 300);
  /* a second client says goodbye on SIGINT: cause closed, code 0; exit 0 */
  {
    char *argv[] = {NULL,         "connect", addr,     "--id",        "t2",
                    "--interval", "100ms",   "--json", "--quiet-rtt", NULL};
    ASSERT_EQ(child_start(&cli2, argv), 0);
  }
  ASSERT(child_event(&cli2, "open", "t2", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "interval_ms"), 100);
  ASSERT(child_event(&srv, "open", "t2", line, sizeof(line), 5000));
  ASSERT_EQ(kill(cli2.pid, SIGINT), 0);
  ASSERT(child_event(&srv, "dead", "t2", line, sizeof(line), 5000));
  ASSERT_EQ(json_get(line, "cause", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "closed");
  ASSERT_EQ(json_num(line, "close_code"), 0);
  ASSERT(child_event(&cli2, "exit", "t2", line, sizeof(line), 5000));
  ASSERT_EQ(child_wait(&cli2, 5000), 0);
  /* the server shuts down on SIGTERM and exits 0 */
  ASSERT_EQ(kill(srv.pid, SIGTERM), 0);
  ASSERT(child_event(&srv, "shutdown", NULL, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "shutdown"));
  ASSERT_EQ(child_wait(&srv, 5000), 0);
  return 0;
#endif
}

TEST_IMPL(connect_reports_server_death) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, cli;
  char addr[64], line[2048], v[300];
  int port;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL,          "connect",        addr,        "--id",  "w1",
                    "--interval",  "100ms",          "--timeout", "300ms", "--json",
                    "--quiet-rtt", "--no-reconnect", NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  ASSERT(child_event(&cli, "open", "w1", line, sizeof(line), 5000));
  /* the server freezes: the client's own verdict, then it gives up (exit 1) */
  ASSERT_EQ(kill(srv.pid, SIGSTOP), 0);
  ASSERT(child_event(&cli, "dead", "w1", line, sizeof(line), 5000));
  child_kill(&srv);
  ASSERT(json_common_ok(line, "dead"));
  ASSERT_EQ(json_get(line, "cause", v, sizeof(v)), J_STR);
  ASSERT(strcmp(v, "heartbeat_timeout") == 0 || strcmp(v, "peer_stalled") == 0);
  ASSERT_GE(json_num(line, "silent_ms"), 300);
  ASSERT(child_event(&cli, "exit", "w1", line, sizeof(line), 5000));
  ASSERT_EQ(json_get(line, "reason", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "gave_up");
  ASSERT_EQ(child_wait(&cli, 5000), 1);
  return 0;
#endif
}

/* serve --send-every with a memory budget: the budget closes never-readers
 * inside vigil_conn_send, whose on_death used to free the peer the send
 * loop was walking (a use-after-free; the server died). The server must
 * close them for the budget and keep serving a healthy client. */
TEST_IMPL(serve_budget_closes_never_readers_while_sending) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, h;
  char addr[64], line[2048];
  char *srv_argv[] = {NULL,     "serve",        "127.0.0.1:0", "--json",      "--memory-budget",
                      "256KiB", "--send-every", "10ms",        "--send-size", "65536",
                      NULL};
  vigil_os_socket never[4];
  int port, i, closed = 0, st;
  NEED_BINARY();
  ASSERT_GT(port = serve_on(&srv, srv_argv, addr, sizeof(addr)), 0);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "healthy", "--json", "--quiet-rtt", NULL};
    ASSERT_EQ(child_start(&h, argv), 0);
    ASSERT(child_event(&srv, "open", "healthy", line, sizeof(line), 5000));
  }
  for (i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof id, "never-%d", i);
    ASSERT_EQ(util_raw_connect("127.0.0.1", (uint16_t)port, &never[i]), 0);
    ASSERT_EQ(util_raw_hello(never[i], id, 60000, 180000), 0);
  }
  while (closed < 4 && child_event(&srv, "dead", NULL, line, sizeof(line), 10000))
    if (strstr(line, "\"reason\":\"memory budget exceeded\"") != NULL)
      closed++;
  ASSERT_EQ(closed, 4);
  poll(NULL, 0, 300);
  ASSERT_EQ(waitpid(srv.pid, &st, WNOHANG), 0); /* still serving */
  ASSERT_EQ(waitpid(h.pid, &st, WNOHANG), 0);   /* and the healthy client is still connected */
  for (i = 0; i < 4; i++)
    util_raw_close(never[i]);
  child_kill(&h);
  child_kill(&srv);
  return 0;
#endif
}

/* vigil serve --rate-limit 1/m,burst=1: the first connection from
 * 127.0.0.1 opens, the second gets CLOSE ADDRESS_LIMIT (12) with a
 * retry-after of about a minute, and the server goes on serving. */
TEST_IMPL(serve_rate_limit) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv;
  char addr[64], line[2048];
  char *srv_argv[] = {NULL, "serve", "127.0.0.1:0", "--json", "--rate-limit", "1/m,burst=1", NULL};
  vigil_os_socket a, b;
  uint8_t buf[1024];
  vigil_frame fr;
  int port, st;
  NEED_BINARY();
  ASSERT_GT(port = serve_on(&srv, srv_argv, addr, sizeof(addr)), 0);
  ASSERT_EQ(util_raw_connect("127.0.0.1", (uint16_t)port, &a), 0);
  ASSERT_EQ(util_raw_hello(a, "first", 1000, 3000), 0);
  ASSERT(child_event(&srv, "open", "first", line, sizeof(line), 5000));
  ASSERT_EQ(util_raw_connect("127.0.0.1", (uint16_t)port, &b), 0);
  ASSERT_EQ(util_raw_expect(b, VIGIL_FRAME_CLOSE, 5000, &fr, buf, sizeof buf), 0);
  ASSERT_EQ(fr.u.close.code, VIGIL_CLOSE_ADDRESS_LIMIT);
  ASSERT_GT(fr.u.close.retry_after_ms, 50000);
  ASSERT_LE(fr.u.close.retry_after_ms, 60001);
  util_raw_close(b);
  ASSERT_EQ(waitpid(srv.pid, &st, WNOHANG), 0); /* still serving */
  util_raw_close(a);
  child_kill(&srv);
  return 0;
#endif
}

/* vigil token: a minted token checks as valid for its id, is refused for
 * another id and under another secret, and neither the secret nor a
 * too-short secret's bytes ever appear in the output. */
TEST_IMPL(token_mint_and_check) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  char path[] = "/tmp/vigil-test-secret-XXXXXXXX", path2[] = "/tmp/vigil-test-secret-XXXXXXXX";
  static const char secret[] = "SECRET-sekrit-0123456789-abcdefgh\n";
  char token[128];
  child c;
  int fd;
  NEED_BINARY();
  if (!vigil_token_available())
    RETURN_SKIP("built without OpenSSL: tokens compiled out");
  ASSERT_GE(fd = mkstemp(path), 0);
  ASSERT_EQ(write(fd, secret, sizeof secret - 1), (ssize_t)(sizeof secret - 1));
  close(fd);
  {
    char *argv[] = {NULL, "token", "--secret", path, "--id", "node-1", "--ttl", "30d", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    ASSERT_EQ(sscanf(c.out_buf, "%127s", token), 1);
    ASSERT_EQ(strncmp(token, "v1.", 3), 0);
    ASSERT_NULL(strstr(c.out_buf, "sekrit"));
  }
  {
    char *argv[] = {NULL, "token", "--secret", path, "--id", "node-1", "--check", token, NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
  }
  {
    char *argv[] = {NULL, "token", "--secret", path, "--id", "node-2", "--check", token, NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 1);
    ASSERT_NOT_NULL(strstr(c.err_buf, "credential refused"));
  }
  ASSERT_GE(fd = mkstemp(path2), 0);
  ASSERT_EQ(write(fd, "0123456789abcdefX", 17), 17);
  close(fd);
  {
    char *argv[] = {NULL, "token", "--secret", path2, "--id", "node-1", "--check", token, NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 1);
    ASSERT_NOT_NULL(strstr(c.err_buf, "credential refused"));
  }
  ASSERT_GE(fd = open(path2, O_WRONLY | O_TRUNC), 0);
  ASSERT_EQ(write(fd, "short-sekrit", 12), 12);
  close(fd);
  {
    char *argv[] = {NULL, "token", "--secret", path2, "--id", "node-1", "--ttl", "1d", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 1);
    ASSERT_NOT_NULL(strstr(c.err_buf, "at least 16"));
    ASSERT_NULL(strstr(c.err_buf, "sekrit"));
  }
  unlink(path);
  unlink(path2);
  return 0;
#endif
}

/* serve --auth-secret: probe --token-file with a token for its id is
 * alive; a token for another id, or none, gets connect_failed with close
 * code 13 (AUTH_FAILED) and exit 1; connect exits 1 at once (exit reason
 * auth_failed) instead of retrying; the serve lines of the refusals name
 * neither the refused id nor the token, and the server never says open
 * for them. */
TEST_IMPL(serve_auth_secret) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  char sec[] = "/tmp/vigil-test-secret-XXXXXXXX", tok[] = "/tmp/vigil-test-token-XXXXXXXX";
  static const char secret[] = "0123456789abcdef0123456789abcdef\n";
  char addr[64], line[2048], token[128], other[128];
  char *srv_argv[] = {NULL, "serve", "127.0.0.1:0", "--json", "--auth-secret", sec, NULL};
  child srv, c;
  int fd;
  NEED_BINARY();
  if (!vigil_token_available())
    RETURN_SKIP("built without OpenSSL: tokens compiled out");
  ASSERT_GE(fd = mkstemp(sec), 0);
  ASSERT_EQ(write(fd, secret, sizeof secret - 1), (ssize_t)(sizeof secret - 1));
  close(fd);
  {
    char *argv[] = {NULL, "token", "--secret", sec, "--id", "dev-1", "--ttl", "1h", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    ASSERT_EQ(sscanf(c.out_buf, "%127s", token), 1);
  }
  {
    char *argv[] = {NULL, "token", "--secret", sec, "--id", "dev-2", "--ttl", "1h", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 0);
    ASSERT_EQ(sscanf(c.out_buf, "%127s", other), 1);
  }
  ASSERT_GE(fd = mkstemp(tok), 0);
  ASSERT_EQ(write(fd, token, strlen(token)), (ssize_t)strlen(token));
  ASSERT_EQ(write(fd, "\n", 1), 1);
  close(fd);
  ASSERT_GT(serve_on(&srv, srv_argv, addr, sizeof(addr)), 0);
  {
    char *argv[] = {NULL, "probe", addr, "--id",   "dev-1", "--token-file",
                    tok,  "-c",    "1",  "--json", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 10000), 0);
    ASSERT(child_event(&srv, "open", "dev-1", line, sizeof(line), 5000));
  }
  {
    char *argv[] = {NULL,  "probe", addr, "--id",   "dev-1", "--token",
                    other, "-c",    "1",  "--json", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 10000), 1);
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"event\":\"connect_failed\""));
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"close_code\":13"));
    ASSERT(child_event(&srv, "rejected", NULL, line, sizeof(line), 5000));
    ASSERT_EQ(json_num(line, "close_code"), 13);
    ASSERT_NULL(strstr(line, "dev-1"));
    ASSERT_NULL(strstr(line, other + 14)); /* no part of the MAC */
  }
  {
    char *argv[] = {NULL, "connect", addr, "--id", "dev-1", "--json", "--quiet-rtt", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 10000), 1);
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"reason\":\"auth_failed\""));
    ASSERT_NOT_NULL(strstr(c.out_buf, "\"reason\":\"credential required\""));
    ASSERT_NULL(strstr(c.out_buf, "\"event\":\"reconnect\""));
    ASSERT_NOT_NULL(strstr(c.err_buf, "refused the credential"));
    ASSERT(child_event(&srv, "rejected", NULL, line, sizeof(line), 5000));
    ASSERT_NULL(strstr(line, "dev-1"));
  }
  {
    char *argv[] = {NULL, "connect", addr, "--token", token, "--token-file", tok, NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
  }
  child_kill(&srv);
  ASSERT_NULL(strstr(srv.out_buf, token + 14));
  unlink(sec);
  unlink(tok);
  return 0;
#endif
}

TEST_IMPL(serve_rejoin_and_full) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, a, b, c;
  char addr[64], line[2048], v[300];
  char *srv_argv[] = {NULL,    "serve",       "127.0.0.1:0", "--json", "--interval",
                      "100ms", "--max-conns", "2",           NULL};
  int port;
  NEED_BINARY();
  ASSERT_EQ(child_start(&srv, srv_argv), 0);
  ASSERT(child_event(&srv, "listening", NULL, line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "max_conns"), 2);
  port = (int)json_num(line, "port");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL,     "connect",     addr,         "--id",  "same",
                    "--json", "--quiet-rtt", "--interval", "100ms", NULL};
    ASSERT_EQ(child_start(&a, argv), 0);
    ASSERT(child_event(&srv, "open", "same", line, sizeof(line), 5000));
    ASSERT_EQ(child_start(&b, argv), 0);
  }
  /* the same id again: a takeover; the old connection dies with code 8 */
  ASSERT(child_event(&srv, "rejoin", "same", line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "rejoin"));
  ASSERT_EQ(json_get(line, "old_peer", v, sizeof(v)), J_STR);
  ASSERT(strncmp(v, "127.0.0.1:", 10) == 0);
  ASSERT(child_event(&a, "dead", "same", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "close_code"), 8);
  child_kill(&a); /* it would take the id back: stop it */
  /* two connections allowed: a third is refused with CLOSE 7, server full */
  {
    char *argv[] = {NULL, "connect", addr, "--id", "other", "--json", NULL};
    child second;
    ASSERT_EQ(child_start(&second, argv), 0);
    ASSERT(child_event(&srv, "open", "other", line, sizeof(line), 5000));
    {
      char *argv3[] = {NULL, "connect", addr, "--id", "third", "--json", "--no-reconnect", NULL};
      ASSERT_EQ(child_start(&c, argv3), 0);
    }
    ASSERT(child_event(&c, "connect_failed", "third", line, sizeof(line), 5000));
    ASSERT(json_common_ok(line, "connect_failed"));
    ASSERT_EQ(json_num(line, "close_code"), 7);
    ASSERT_EQ(json_get(line, "message", v, sizeof(v)), J_STR);
    ASSERT_EQ(child_wait(&c, 5000), 1);
    ASSERT(child_event(&srv, "rejected", NULL, line, sizeof(line), 5000));
    ASSERT_EQ(json_num(line, "close_code"), 7);
    child_kill(&second);
  }
  child_kill(&b);
  child_kill(&srv);
  return 0;
#endif
}

TEST_IMPL(probe_follows_server_interval) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, c;
  char addr[64];
  int port, st;
  NEED_BINARY();
  /* the server imposes 1 s; the probe asked for 100 ms and must wait for
   * the agreed pings instead of giving up on its own schedule */
  port = start_server(&srv, "1s", "3s");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL,         "probe", addr,        "--count", "3",
                    "--interval", "100ms", "--timeout", "200ms",   NULL};
    st = run_vigil(&c, argv, 15000);
  }
  child_kill(&srv);
  ASSERT_EQ(st, 0);
  ASSERT_NOT_NULL(strstr(c.out_buf, "interval 1000 ms"));
  ASSERT_NOT_NULL(strstr(c.out_buf, "3 pongs"));
  return 0;
#endif
}

/* A probe pings on its own schedule: --count N takes about N - 1
 * intervals (the first ping goes at once), even though the server's own
 * pings keep the link from ever being idle (defect 2 of issue 8: the probe
 * waited for idleness and took up to its deadline, 3 x as long). Three
 * runs, each bounded by N intervals + 1.5 s for the handshake and the
 * close; bench/probe-time.sh prints the distribution at 1 s intervals. */
TEST_IMPL(probe_takes_count_intervals) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  enum { count = 5, interval_ms = 200, runs = 3 };
  const uint64_t bound_ms = count * interval_ms + 1500;
  child srv, c;
  char addr[64];
  int port;
  NEED_BINARY();
  port = start_server(&srv, "200ms", "600ms"); /* the server pings every 150-200 ms */
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  for (int run = 0; run < runs; run++) {
    char *argv[] = {NULL, "probe", addr, "--count", "5", "--interval", "200ms", NULL};
    uint64_t t0 = mono_ms(), took;
    int st = run_vigil(&c, argv, 15000);
    took = mono_ms() - t0;
    fprintf(stderr, "probe --count %d --interval %dms: %llu ms (bound %llu), exit %d\n", count,
            interval_ms, (unsigned long long)took, (unsigned long long)bound_ms, st);
    if (st != 0 || took >= bound_ms)
      child_kill(&srv);
    ASSERT_EQ(st, 0);
    ASSERT_NOT_NULL(strstr(c.out_buf, "5 pings, 5 pongs, 0% loss"));
    ASSERT_LT(took, bound_ms);
  }
  child_kill(&srv);
  return 0;
#endif
}

/* Ctrl-C ends a probe like ping(8): the summary of what was measured, exit
 * 0 when a pong came back; 1 when none did (a frozen server). */
TEST_IMPL(probe_interrupted) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, c;
  char addr[64], line[1024], v[64];
  int port;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "probe", addr, "--count", "1000", "--interval", "100ms", "--json", NULL};
    ASSERT_EQ(child_start(&c, argv), 0);
  }
  ASSERT(child_event(&c, "rtt", NULL, line, sizeof(line), 5000));
  ASSERT(child_event(&c, "rtt", NULL, line, sizeof(line), 5000));
  ASSERT_EQ(kill(c.pid, SIGINT), 0);
  ASSERT(child_event(&c, "summary", NULL, line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "summary"));
  ASSERT_GE(json_num(line, "received"), 2);
  ASSERT_GE(json_num(line, "sent"), json_num(line, "received"));
  ASSERT_LE(json_num(line, "sent"), json_num(line, "received") + 1);
  ASSERT_EQ(json_get(line, "alive", v, sizeof(v)), J_BOOL);
  ASSERT_STR_EQ(v, "true");
  ASSERT_EQ(child_wait(&c, 5000), 0);
  /* nobody answers: interrupted before any pong, exit 1 */
  ASSERT_EQ(kill(srv.pid, SIGSTOP), 0);
  {
    char *argv[] = {NULL, "probe", addr, "--timeout", "5s", "--json", NULL};
    ASSERT_EQ(child_start(&c, argv), 0);
  }
  poll(NULL, 0, 300);
  ASSERT_EQ(kill(c.pid, SIGINT), 0);
  ASSERT(child_event(&c, "summary", NULL, line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "received"), 0);
  ASSERT_EQ(json_get(line, "alive", v, sizeof(v)), J_BOOL);
  ASSERT_STR_EQ(v, "false");
  ASSERT_EQ(child_wait(&c, 5000), 1);
  child_kill(&srv);
  return 0;
#endif
}

/* Defect 4 of issue 8: every close waited the whole 1 s linger, because
 * both ends waited for the other to close first. Ctrl-C on `connect`
 * against a live server must end it at once (the issue asks < 100 ms, and
 * an idle machine takes about 50 ms, most of it the signal watch's poll;
 * the bound leaves room for ASan on a loaded machine and still fails the
 * 1.0 s linger, which is a timer and cannot come early). */
#define CLOSE_BOUND_CONNECT_MS 900u
#define CLOSE_BOUND_SERVE_MS 900u
#define CLOSE_CLIENTS 40

TEST_IMPL(connect_exits_at_once_on_sigint) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, c;
  char addr[64], line[2048], v[64];
  uint64_t t0, took;
  int port, st;
  NEED_BINARY();
  port = start_server(&srv, "1s", "3s");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "bye", "--json", "--quiet-rtt", NULL};
    ASSERT_EQ(child_start(&c, argv), 0);
  }
  ASSERT(child_event(&c, "open", "bye", line, sizeof(line), 5000));
  ASSERT(child_event(&srv, "open", "bye", line, sizeof(line), 5000));
  t0 = mono_ms();
  ASSERT_EQ(kill(c.pid, SIGINT), 0);
  st = child_wait(&c, 5000);
  took = mono_ms() - t0;
  fprintf(stderr, "connect exited %llu ms after SIGINT (bound %u ms)\n", (unsigned long long)took,
          CLOSE_BOUND_CONNECT_MS);
  /* the server saw the goodbye, not a crash */
  if (!child_event(&srv, "dead", "bye", line, sizeof(line), 5000))
    line[0] = '\0';
  child_kill(&srv);
  ASSERT_EQ(st, 0);
  ASSERT_LT(took, CLOSE_BOUND_CONNECT_MS);
  ASSERT_EQ(json_get(line, "cause", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "closed");
  ASSERT_EQ(json_get(line, "close_by", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "peer");
  return 0;
#endif
}

/* The same for SIGTERM on `serve` with 40 live clients (the issue asks
 * < 300 ms): each client is told "server shutting down" and sees cause
 * closed, close_code 1 (GOING_AWAY). */
TEST_IMPL(serve_exits_at_once_on_sigterm) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  static child cl[CLOSE_CLIENTS];
  child srv;
  char addr[64], line[2048], v[64], id[16];
  uint64_t t0, took;
  int port, st, i, started = 0, closed = 0;
  NEED_BINARY();
  port = start_server(&srv, "1s", "3s");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  for (i = 0; i < CLOSE_CLIENTS; i++) {
    /* They keep running (reconnecting) after the server's goodbye: 40
     * processes exiting at once (under ASan, each with its leak check)
     * would starve the server being timed of CPU. */
    char *argv[] = {NULL, "connect", addr, "--id", id, "--json", "--quiet-rtt", NULL};
    snprintf(id, sizeof(id), "c%d", i);
    if (child_start(&cl[i], argv) != 0)
      break;
    started++;
  }
  for (i = 0; i < started; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    if (!child_event(&cl[i], "open", id, line, sizeof(line), 10000))
      break;
  }
  if (started < CLOSE_CLIENTS || i < started) {
    for (i = 0; i < started; i++)
      child_kill(&cl[i]);
    child_kill(&srv);
    TEST_FAIL_AT("%d of %d clients started, fewer opened", started, CLOSE_CLIENTS);
  }
  t0 = mono_ms();
  ASSERT_EQ(kill(srv.pid, SIGTERM), 0);
  st = child_wait(&srv, 5000);
  took = mono_ms() - t0;
  fprintf(stderr, "serve with %d clients exited %llu ms after SIGTERM (bound %u ms)\n",
          CLOSE_CLIENTS, (unsigned long long)took, CLOSE_BOUND_SERVE_MS);
  for (i = 0; i < CLOSE_CLIENTS; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    if (child_event(&cl[i], "dead", id, line, sizeof(line), 5000) &&
        json_get(line, "cause", v, sizeof(v)) == J_STR && strcmp(v, "closed") == 0 &&
        json_num(line, "close_code") == 1)
      closed++;
    else
      fprintf(stderr, "client %s: %s\n", id, line);
    child_kill(&cl[i]);
  }
  ASSERT_EQ(st, 0);
  ASSERT_EQ(closed, CLOSE_CLIENTS);
  ASSERT_LT(took, CLOSE_BOUND_SERVE_MS);
  return 0;
#endif
}

/* `vigil connect ... | head -3`: once the reader has gone, the next line
 * fails with EPIPE. The command says so on stderr, still says goodbye to the
 * server (it stops as for a signal), and exits 1. It used to run forever. */
TEST_IMPL(stdout_closed_pipe) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, cli;
  char addr[64], line[2048], v[300];
  int port, st;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "h3", "--interval", "100ms", "--json", NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  for (int k = 0; k < 3; k++) /* connecting, open, rtt */
    ASSERT(child_line(&cli, line, sizeof(line), 5000));
  close(cli.out); /* head -3 exits */
  cli.out = -1;
  st = child_wait(&cli, 5000);
  if (st != 1)
    child_kill(&srv);
  ASSERT_EQ(st, 1);
  ASSERT_NOT_NULL(strstr(cli.err_buf, "vigil: stdout: Broken pipe\n"));
  ASSERT(child_event(&srv, "dead", "h3", line, sizeof(line), 5000));
  child_kill(&srv);
  ASSERT_EQ(json_get(line, "cause", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "closed");
  ASSERT_EQ(json_num(line, "close_code"), 0);
  return 0;
#endif
}

/* A full stdout (> /dev/full) is an error too, whether the command writes
 * once and exits (--help), runs until stopped (serve), or prints text with
 * printf (probe): the reason on stderr, exit 1. Each used to exit 0 or run
 * on. */
TEST_IMPL(stdout_full) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, c;
  char addr[64];
  int port, st;
  NEED_BINARY();
  if (access("/dev/full", W_OK) != 0)
    RETURN_SKIP("no /dev/full");
  {
    char *argv[] = {NULL, "--help", NULL};
    ASSERT_EQ(child_start_to(&c, argv, "/dev/full"), 0);
    ASSERT_EQ(child_wait(&c, 5000), 1);
    ASSERT_NOT_NULL(strstr(c.err_buf, "vigil: stdout: No space left on device\n"));
  }
  {
    char *argv[] = {NULL, "serve", "127.0.0.1:0", "--json", NULL};
    ASSERT_EQ(child_start_to(&c, argv, "/dev/full"), 0);
    ASSERT_EQ(child_wait(&c, 5000), 1);
    ASSERT_NOT_NULL(strstr(c.err_buf, "vigil: stdout: No space left on device\n"));
  }
  port = start_server(&srv, "100ms", "300ms");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "probe", addr, "--count", "1", "--interval", "100ms", NULL};
    ASSERT_EQ(child_start_to(&c, argv, "/dev/full"), 0);
    st = child_wait(&c, 5000);
  }
  child_kill(&srv);
  ASSERT_EQ(st, 1);
  ASSERT_NOT_NULL(strstr(c.err_buf, "vigil: stdout: No space left on device\n"));
  return 0;
#endif
}

TEST_IMPL(connect_sends_data) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, cli;
  char addr[64], line[2048];
  char *srv_argv[] = {NULL,    "serve",  "127.0.0.1:0",      "--json", "--interval",
                      "100ms", "--echo", "--print-messages", NULL};
  long sent, received;
  int port;
  NEED_BINARY();
  ASSERT_GT(port = serve_on(&srv, srv_argv, addr, sizeof(addr)), 0);
  {
    char *argv[] = {NULL,         "connect",     addr,     "--id",        "d1",
                    "--interval", "100ms",       "--json", "--quiet-rtt", "--send-every",
                    "50ms",       "--send-size", "100",    NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  /* the client says what it will send; the server sees each message */
  ASSERT(child_event(&cli, "open", "d1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "send_every_ms"), 50);
  ASSERT_EQ(json_num(line, "send_size"), 100);
  ASSERT(child_event(&srv, "message", "d1", line, sizeof(line), 5000));
  ASSERT(json_common_ok(line, "message"));
  ASSERT_EQ(json_num(line, "bytes"), 100);
  ASSERT_EQ(json_num(line, "messages"), 1);
  ASSERT(child_event(&srv, "message", "d1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "messages"), 2);
  ASSERT(child_event(&srv, "message", "d1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "messages"), 3);
  /* goodbye: the client counts what it sent and what the echo brought back */
  ASSERT_EQ(kill(cli.pid, SIGINT), 0);
  ASSERT(child_event(&cli, "dead", "d1", line, sizeof(line), 5000));
  sent = json_num(line, "sent");
  ASSERT_GE(sent, 3);
  ASSERT_GE(json_num(line, "received"), 1);
  ASSERT_EQ(json_num(line, "queue_full"), 0);
  ASSERT_EQ(json_num(line, "send_failed"), 0);
  ASSERT_EQ(json_num(line, "unsent"), 0); /* a goodbye writes the queue first */
  ASSERT_EQ(json_num(line, "unsent_bytes"), 0);
  received = json_num(line, "received");
  ASSERT(child_event(&cli, "exit", "d1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "sent"), sent);
  ASSERT_EQ(json_num(line, "received"), received);
  ASSERT_EQ(json_num(line, "unsent"), 0);
  ASSERT_EQ(child_wait(&cli, 5000), 0);
  /* the server's dead line counts every message that arrived */
  ASSERT(child_event(&srv, "dead", "d1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "messages"), sent);
  child_kill(&srv);
  return 0;
#endif
}

#if !defined(_WIN32)
/* The dead line of a stalled peer that had 1 MiB messages pending (sent
 * with --send-every): a silence verdict no sooner than timeout_ms, and data
 * still pending (queued: it comes back through on_unsent) or refused for
 * backpressure. Returns the unsent count, or -1 (after saying why). */
static long stalled_with_data(const char *line, long timeout_ms) {
  char v[300];
  long unsent = json_num(line, "unsent"), queue_full = json_num(line, "queue_full");

  if (!json_common_ok(line, "dead") || json_get(line, "cause", v, sizeof(v)) != J_STR ||
      (strcmp(v, "heartbeat_timeout") != 0 && strcmp(v, "peer_stalled") != 0) ||
      json_num(line, "silent_ms") < timeout_ms || json_num(line, "sent") < 1 || unsent < 0 ||
      queue_full < 0 || unsent + queue_full == 0 ||
      json_num(line, "unsent_bytes") != unsent * 1048576) {
    fprintf(stderr, "not a stall with data pending: %s\n", line);
    return -1;
  }
  return unsent;
}
#endif

TEST_IMPL(connect_data_pending_stopped_server) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, cli;
  char addr[64], line[2048];
  long unsent;
  int port;
  uint64_t t0;
  NEED_BINARY();
  port = start_server(&srv, "100ms", "1s");
  ASSERT_GT(port, 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  {
    /* 1 MiB every 20 ms: far more than the socket buffers (a few MiB on
     * loopback) and the 1 MiB queue hold in the 1 s timeout */
    char *argv[] = {
        NULL,           "connect",   addr,          "--id",    "p1",          "--interval",
        "100ms",        "--timeout", "1s",          "--json",  "--quiet-rtt", "--no-reconnect",
        "--send-every", "20ms",      "--send-size", "1048576", NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  ASSERT(child_event(&cli, "open", "p1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "send_size"), 1048576);
  ASSERT(child_event(&srv, "open", "p1", line, sizeof(line), 5000));
  ASSERT_EQ(kill(srv.pid, SIGSTOP), 0);
  t0 = mono_ms();
  ASSERT(child_event(&cli, "dead", "p1", line, sizeof(line), 5000));
  child_kill(&srv);
  ASSERT_LT(mono_ms() - t0, 4000);
  unsent = stalled_with_data(line, 1000);
  ASSERT_GE(unsent, 0);
  /* on_unsent handed back exactly what was queued at the death */
  ASSERT(child_event(&cli, "exit", "p1", line, sizeof(line), 5000));
  ASSERT_EQ(json_num(line, "unsent"), unsent);
  ASSERT_EQ(child_wait(&cli, 5000), 1);
  return 0;
#endif
}

TEST_IMPL(serve_data_pending_stopped_client) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child srv, cli;
  char addr[64], line[2048];
  /* the server pushes 1 MiB every 20 ms to every client */
  char *srv_argv[] = {NULL,          "serve",     "127.0.0.1:0", "--json",       "--interval",
                      "100ms",       "--timeout", "1s",          "--send-every", "20ms",
                      "--send-size", "1048576",   NULL};
  int port;
  NEED_BINARY();
  ASSERT_GT(port = serve_on(&srv, srv_argv, addr, sizeof(addr)), 0);
  {
    char *argv[] = {NULL,    "connect",   addr, "--id",   "s1",          "--interval",
                    "100ms", "--timeout", "1s", "--json", "--quiet-rtt", NULL};
    ASSERT_EQ(child_start(&cli, argv), 0);
  }
  ASSERT(child_event(&srv, "open", "s1", line, sizeof(line), 5000));
  ASSERT_EQ(kill(cli.pid, SIGSTOP), 0);
  /* the verdict comes from the heartbeat, not from the queue-full policy */
  ASSERT(child_event(&srv, "dead", "s1", line, sizeof(line), 5000));
  child_kill(&cli);
  ASSERT_GE(stalled_with_data(line, 1000), 0);
  ASSERT_EQ(json_num(line, "messages"), 0);
  ASSERT_EQ(kill(srv.pid, SIGTERM), 0);
  ASSERT(child_event(&srv, "shutdown", NULL, line, sizeof(line), 5000));
  ASSERT_EQ(child_wait(&srv, 5000), 0);
  return 0;
#endif
}

/* TLS from the command line (docs/TLS.md): `vigil probe --tls` against
 * `vigil serve --tls-*` measures RTTs over TLS 1.3; a plaintext probe of
 * that server, and a TLS probe of a plaintext server, fail at once with
 * the reason. Certificates are made at test time (util-tls.c). */
#if !defined(_WIN32)
static int tls_serve(child *srv, const util_tls_certs *tc, int tls) {
  char line[1024];
  char *argv[] = {NULL,    "serve",      "127.0.0.1:0",      "--json",    "--interval",
                  "100ms", "--tls-cert", (char *)tc->server, "--tls-key", (char *)tc->server_key,
                  NULL};
  if (!tls)
    argv[6] = NULL;
  if (child_start(srv, argv) != 0 || !child_event(srv, "listening", NULL, line, sizeof(line), 5000))
    return -1;
  return (int)json_num(line, "port");
}
#endif

TEST_IMPL(tls_probe_measures_rtt) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  util_tls_certs tc;
  child srv, plain, p;
  char addr[64], paddr[64], line[2048], v[64];
  int port, pport, rc;
  NEED_BINARY();
  rc = util_tls_certs_make(&tc);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("built without TLS (no OpenSSL)");
  ASSERT_EQ(rc, 0);
  ASSERT_GT(port = tls_serve(&srv, &tc, 1), 0);
  ASSERT_GT(pport = tls_serve(&plain, &tc, 0), 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  snprintf(paddr, sizeof(paddr), "127.0.0.1:%d", pport);
  {
    char *argv[] = {NULL,     "probe",   addr, "--tls",      "--tls-ca", tc.ca,
                    "--json", "--count", "3",  "--interval", "100ms",    NULL};
    ASSERT_EQ(child_start(&p, argv), 0);
    ASSERT(child_event(&p, "open", NULL, line, sizeof(line), 5000));
    ASSERT_EQ(json_get(line, "tls", v, sizeof(v)), J_STR);
    ASSERT_STR_EQ(v, "TLSv1.3");
    ASSERT(child_event(&p, "summary", NULL, line, sizeof(line), 5000));
    ASSERT_EQ(json_num(line, "received"), 3);
    ASSERT_EQ(json_get(line, "rtt_avg_ms", v, sizeof(v)), J_NUM);
    ASSERT(strtod(v, NULL) > 0);
    ASSERT_EQ(child_wait(&p, 5000), 0);
  }
  ASSERT(child_event(&srv, "open", NULL, line, sizeof(line), 5000));
  ASSERT_EQ(json_get(line, "tls", v, sizeof(v)), J_STR);
  ASSERT_STR_EQ(v, "TLSv1.3");
  {
    /* plaintext probe, TLS server: told so in plaintext */
    char *argv[] = {NULL, "probe", addr, "--json", "--count", "1", "--interval", "100ms", NULL};
    uint64_t t0 = mono_ms();
    ASSERT_EQ(child_start(&p, argv), 0);
    ASSERT(child_event(&p, "connect_failed", NULL, line, sizeof(line), 5000));
    ASSERT_EQ(json_get(line, "reason", v, sizeof(v)), J_STR);
    ASSERT_STR_EQ(v, "this server requires TLS");
    ASSERT_EQ(child_wait(&p, 5000), 1);
    ASSERT_LT(mono_ms() - t0, 2000); /* well within the probe's 300 ms handshake + slack */
  }
  {
    /* TLS probe, plaintext server */
    char *argv[] = {NULL,     "probe",   paddr, "--tls",      "--tls-ca", tc.ca,
                    "--json", "--count", "1",   "--interval", "100ms",    NULL};
    ASSERT_EQ(child_start(&p, argv), 0);
    ASSERT(child_event(&p, "connect_failed", NULL, line, sizeof(line), 5000));
    ASSERT_NOT_NULL(strstr(line, "does not speak TLS"));
    ASSERT_EQ(child_wait(&p, 5000), 1);
  }
  ASSERT(child_event(&plain, "rejected", NULL, line, sizeof(line), 5000));
  ASSERT_NOT_NULL(strstr(line, "TLS client on a plaintext server"));
  kill(srv.pid, SIGTERM);
  kill(plain.pid, SIGTERM);
  ASSERT_EQ(child_wait(&srv, 5000), 0);
  ASSERT_EQ(child_wait(&plain, 5000), 0);
  util_tls_certs_remove(&tc);
  return 0;
#endif
}

/* openssl s_client against `vigil serve --tls-*`: TLS 1.3 by default, the
 * expected certificate, verified; TLS 1.2 still allowed, TLS 1.1 refused. */
#if !defined(_WIN32)
static int s_client(int port, const char *ca, const char *extra, char *out, size_t cap) {
  char cmd[1024];
  FILE *f;
  size_t n;
  snprintf(cmd, sizeof(cmd),
           "openssl s_client -connect 127.0.0.1:%d -CAfile %s -servername localhost "
           "-verify_return_error -brief %s </dev/null 2>&1",
           port, ca, extra);
  if ((f = popen(cmd, "r")) == NULL)
    return -1;
  n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  return pclose(f);
}
#endif

TEST_IMPL(tls_s_client_sees_tls13) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  util_tls_certs tc;
  child srv;
  char out[8192];
  int port, rc;
  NEED_BINARY();
  if (system("command -v openssl >/dev/null") != 0)
    RETURN_SKIP("no openssl command (Debian: openssl)");
  rc = util_tls_certs_make(&tc);
  if (rc == VIGIL_ENOTSUP)
    RETURN_SKIP("built without TLS (no OpenSSL)");
  ASSERT_EQ(rc, 0);
  ASSERT_GT(port = tls_serve(&srv, &tc, 1), 0);
  ASSERT_EQ(s_client(port, tc.ca, "", out, sizeof(out)), 0);
  if (strstr(out, "Protocol version: TLSv1.3") == NULL ||
      strstr(out, "Peer certificate: CN = localhost") == NULL ||
      strstr(out, "Verification: OK") == NULL)
    TEST_FAIL_AT("openssl s_client said:\n%s", out);
  ASSERT_EQ(s_client(port, tc.ca, "-tls1_2", out, sizeof(out)), 0);
  ASSERT_NOT_NULL(strstr(out, "Protocol version: TLSv1.2"));
  ASSERT_NE(s_client(port, tc.ca, "-tls1_1", out, sizeof(out)), 0);
  ASSERT_NULL(strstr(out, "CONNECTION ESTABLISHED"));
  kill(srv.pid, SIGTERM);
  ASSERT_EQ(child_wait(&srv, 5000), 0);
  util_tls_certs_remove(&tc);
  return 0;
#endif
}

/* Presence through the CLI: serve --presence records gw-1; `vigil who`
 * says online (exit 0) with node and worker; the client is SIGSTOPped;
 * within timeout + 1 s who says offline, cause peer_stalled (exit 1), and
 * `vigil watch` printed the open and the dead events. */
#if !defined(_WIN32)
/* The presence round trip (issue 9's must-show) against `vigil serve` in
 * one process (workers 0: --worker 3) or with --workers N. */
static int who_watch_round_trip(int workers) {
  static util_redis rd;
  child srv, cl, who, watch;
  char url[160], addr[64], line[1024], cause[64] = "", nworkers[16], want_worker[32];
  int port = -1, st = -1, i;
  uint64_t t0;
  memset(&rd, 0, sizeof rd);
  if (util_redis_start(&rd) != 0)
    RETURN_SKIP("redis-server not installed or did not start");
  snprintf(url, sizeof url, "unix://%s", rd.sock);
  snprintf(nworkers, sizeof nworkers, "%d", workers > 0 ? workers : 3);
  {
    char *argv[] = {NULL,
                    "serve",
                    "127.0.0.1:0",
                    "--json",
                    "-i",
                    "100ms",
                    "-t",
                    "300ms",
                    "--presence",
                    url,
                    "--node",
                    "n1",
                    workers > 0 ? "--workers" : "--worker",
                    nworkers,
                    NULL};
    if (child_start(&srv, argv) != 0) {
      util_redis_cleanup(&rd);
      TEST_FAIL_AT("serve did not start");
    }
    /* one listening and one presence line per worker, in any order */
    for (i = 0; i < 2 * (workers > 0 ? workers : 1); i++) {
      if (!child_line(&srv, line, sizeof line, 5000) ||
          (strstr(line, "\"event\":\"presence\"") != NULL &&
           strstr(line, "\"state\":\"ok\"") == NULL)) {
        child_kill(&srv);
        util_redis_cleanup(&rd);
        TEST_FAIL_AT("no listening / presence ok line: %s", line);
      }
      if (strstr(line, "\"event\":\"listening\"") != NULL)
        port = (int)json_num(line, "port");
      else if (strstr(line, "\"event\":\"worker_start\"") != NULL)
        i--; /* the supervisor's */
    }
    ASSERT_GT(port, 0);
  }
  {
    char *argv[] = {NULL, "watch", "--presence", url, NULL};
    ASSERT_EQ(child_start(&watch, argv), 0);
    /* events published before the SUBSCRIBE reach no one (Redis pub/sub) */
    if (!child_stderr_has(&watch, "subscribed to vigil:events", 5000)) {
      snprintf(line, sizeof line, "watch never subscribed: %.900s", watch.err_buf);
      child_kill(&watch);
      child_kill(&srv);
      util_redis_cleanup(&rd);
      TEST_FAIL_AT("%s", line);
    }
  }
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "gw-1", "-i", "100ms", "-t", "300ms", NULL};
    ASSERT_EQ(child_start(&cl, argv), 0);
  }
  if (!child_event(&srv, "open", "gw-1", line, sizeof line, 5000))
    goto fail;
  /* with --workers, the worker the kernel gave the client, named by its line */
  snprintf(want_worker, sizeof want_worker, "\"worker\":%ld",
           workers > 0 ? json_num(line, "worker") : 3);
  if (workers > 0 && (json_num(line, "worker") < 0 || json_num(line, "worker") >= workers))
    goto fail;
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-1", "--json", NULL};
    uint64_t end = mono_ms() + 3000;
    do /* the update may still be on its way to Redis */
      st = run_vigil(&who, argv, 5000);
    while (st != 0 && mono_ms() < end);
    if (st != 0 || strstr(who.out_buf, "\"state\":\"online\"") == NULL ||
        strstr(who.out_buf, "\"node\":\"n1\"") == NULL || strstr(who.out_buf, want_worker) == NULL)
      goto fail;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(who.out_buf, "\n"), who.out_buf);
    if (!json_valid(line))
      goto fail;
  }
  kill(cl.pid, SIGSTOP);
  t0 = mono_ms();
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-1", "--json", NULL};
    const char *c;
    do
      st = run_vigil(&who, argv, 5000);
    while (st == 0 && mono_ms() < t0 + 300 + 1000 + 500);
    ASSERT_LE(mono_ms() - t0, 300 + 1000 + 1000); /* timeout + 1 s, + one who run */
    /* Presence records the server's own verdict. That is peer_stalled when
     * the frozen client's kernel ACKed the server's ping in time; with a
     * 300 ms timeout a delayed ACK on a loaded machine can leave only
     * silence (heartbeat_timeout), so the cause is compared with the
     * server's line rather than fixed. */
    if (!child_event(&srv, "dead", "gw-1", line, sizeof line, 3000) ||
        (c = strstr(line, "\"cause\":\"")) == NULL)
      goto fail;
    snprintf(cause, sizeof cause, "%.*s\"", (int)(9 + strcspn(c + 9, "\"")), c);
    ASSERT(strcmp(cause, "\"cause\":\"peer_stalled\"") == 0 ||
           strcmp(cause, "\"cause\":\"heartbeat_timeout\"") == 0);
    if (st != 1 || strstr(who.out_buf, cause) == NULL)
      goto fail;
  }
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-unknown", NULL};
    ASSERT_EQ(run_vigil(&who, argv, 5000), 1);
    ASSERT_NOT_NULL(strstr(who.out_buf, "state=unknown"));
  }
  {
    char *argv[] = {NULL, "who", "--presence", "redis://nohost:1", "x", NULL};
    ASSERT_EQ(run_vigil(&who, argv, 5000), 2);
    ASSERT_NOT_NULL(strstr(who.err_buf, "no name lookup"));
  }
  if (!child_event(&watch, "open", "gw-1", line, sizeof line, 3000) || !json_valid(line))
    goto fail;
  if (!child_event(&watch, "dead", "gw-1", line, sizeof line, 3000) || strstr(line, cause) == NULL)
    goto fail;
  child_kill(&cl);
  child_kill(&watch);
  kill(srv.pid, SIGTERM);
  ASSERT_EQ(child_wait(&srv, 5000), 0);
  util_redis_cleanup(&rd);
  return 0;
fail:
  fprintf(stderr, "who: %d %s%s\nline: %s\n", st, who.out_buf, who.err_buf, line);
  child_kill(&cl);
  child_kill(&watch);
  child_kill(&srv);
  util_redis_cleanup(&rd);
  return 1;
}
#endif

TEST_IMPL(presence_who_watch) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  NEED_BINARY();
  return who_watch_round_trip(0);
#endif
}

/* Issue 9's presence round trip with two worker processes sharing the port. */
TEST_IMPL(presence_who_watch_workers) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn; one process on Windows");
#else
  NEED_BINARY();
  return who_watch_round_trip(2);
#endif
}

#if !defined(_WIN32)
/* 1 while pid exists and is not a zombie. */
static int alive(long pid) {
  char path[64], buf[256];
  FILE *f;
  const char *p;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if ((f = fopen(path, "r")) == NULL)
    return kill((pid_t)pid, 0) == 0;
  p = fgets(buf, sizeof buf, f);
  fclose(f);
  p = p != NULL ? strrchr(buf, ')') : NULL;
  return p != NULL && p[1] == ' ' && p[2] != 'Z';
}
#endif

/* `vigil serve --workers 2`: a worker killed with SIGKILL is started again
 * by its supervisor, its clients reconnect (to either worker) and are open
 * again, the other worker's clients never notice, and SIGTERM to the
 * supervisor stops every worker cleanly (exit 0, no worker left). */
TEST_IMPL(serve_workers_restart) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn; one process on Windows");
#else
  enum { MAXC = 16 };
  child srv, cl[MAXC];
  char line[1024], addr[64], ids[MAXC][16];
  long pid[2] = {0, 0}, newpid = 0;
  int worker_of[MAXC], n = 0, per[2] = {0, 0}, i, port = -1, listening = 0, victims = 0;
  int reopened = 0, restarted = 0, others_dead = 0;
  uint64_t end;
  NEED_BINARY();
  {
    char *argv[] = {NULL, "serve", "127.0.0.1:0", "--json", "-i", "100ms",
                    "-t", "300ms", "--workers",   "2",      NULL};
    ASSERT_EQ(child_start(&srv, argv), 0);
  }
  end = mono_ms() + 5000;
  while ((listening < 2 || pid[0] <= 0 || pid[1] <= 0) && mono_ms() < end &&
         child_line(&srv, line, sizeof line, 1000)) {
    long w = json_num(line, "worker");
    if (strstr(line, "\"event\":\"worker_start\"") != NULL && w >= 0 && w < 2)
      pid[w] = json_num(line, "pid");
    if (strstr(line, "\"event\":\"listening\"") != NULL) {
      listening++;
      port = (int)json_num(line, "port");
    }
  }
  if (listening < 2 || pid[0] <= 0 || pid[1] <= 0) {
    child_kill(&srv);
    TEST_FAIL_AT("workers did not start: %s", line);
  }
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  /* clients until both workers have some (the kernel spreads them) */
  while (n < MAXC && (n < 6 || per[0] == 0 || per[1] == 0)) {
    char *argv[] = {NULL, "connect", addr, "--id", ids[n], "-i", "100ms", "-t", "300ms", NULL};
    snprintf(ids[n], sizeof ids[n], "w-%d", n);
    ASSERT_EQ(child_start(&cl[n], argv), 0);
    if (!child_event(&srv, "open", ids[n], line, sizeof line, 5000))
      break;
    worker_of[n] = (int)json_num(line, "worker");
    if (worker_of[n] == 0 || worker_of[n] == 1)
      per[worker_of[n]]++;
    n++;
  }
  if (per[0] == 0 || per[1] == 0)
    goto fail;
  kill((pid_t)pid[0], SIGKILL);
  /* restart + every victim open again; no death on worker 1 */
  victims = per[0];
  end = mono_ms() + 8000;
  while ((reopened < victims || !restarted) && mono_ms() < end &&
         child_line(&srv, line, sizeof line, 1000)) {
    if (strstr(line, "\"event\":\"worker_start\"") != NULL && json_num(line, "worker") == 0) {
      newpid = json_num(line, "pid");
      restarted = json_num(line, "restarts") == 1 && newpid != pid[0];
    }
    if (strstr(line, "\"event\":\"worker_exit\"") != NULL &&
        (json_num(line, "worker") != 0 || json_num(line, "signal") != 9 ||
         json_num(line, "restart_in_ms") <= 0))
      goto fail;
    if (strstr(line, "\"event\":\"dead\"") != NULL && json_num(line, "worker") == 1)
      others_dead++;
    if (strstr(line, "\"event\":\"open\"") != NULL)
      for (i = 0; i < n; i++) {
        char key[40];
        snprintf(key, sizeof key, "\"id\":\"%.16s\"", ids[i]);
        if (strstr(line, key) != NULL && worker_of[i] == 0) {
          worker_of[i] = -1; /* counted once */
          reopened++;
        }
      }
  }
  fprintf(stderr, "%d clients (%d on worker 0, %d on worker 1); killed worker 0: %d reopened\n", n,
          per[0], per[1], reopened);
  ASSERT(restarted);
  ASSERT_EQ(reopened, victims);
  ASSERT_EQ(others_dead, 0);
  ASSERT(!alive(pid[0]));
  for (i = 0; i < n; i++)
    child_kill(&cl[i]);
  kill(srv.pid, SIGTERM);
  ASSERT_EQ(child_wait(&srv, 10000), 0);
  ASSERT(!alive(newpid));
  ASSERT(!alive(pid[1]));
  return 0;
fail:
  fprintf(stderr, "per worker %d/%d, line: %s\n", per[0], per[1], line);
  for (i = 0; i < n; i++)
    child_kill(&cl[i]);
  child_kill(&srv);
  return 1;
#endif
}

/* Bad --workers values are usage errors; a taken port fails at once. */
TEST_IMPL(serve_workers_usage) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  child c;
  NEED_BINARY();
  {
    char *argv[] = {NULL, "serve", "0", "--workers", "0", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
  }
  {
    char *argv[] = {NULL, "serve", "0", "--workers", "257", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
  }
  {
    char *argv[] = {NULL, "serve", "0", "--workers", "2", "--worker", "1", NULL};
    ASSERT_EQ(run_vigil(&c, argv, 5000), 2);
    ASSERT_NOT_NULL(strstr(c.err_buf, "--worker"));
  }
  {
    /* a port held without SO_REUSEPORT */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    char port[32];
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(port, sizeof port, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    {
      char *argv[] = {NULL, "serve", port, "--workers", "2", NULL};
      ASSERT_EQ(run_vigil(&c, argv, 5000), 1);
      ASSERT_NOT_NULL(strstr(c.err_buf, "cannot listen"));
    }
    close(fd);
  }
  return 0;
#endif
}

#if !defined(_WIN32)
/* `vigil serve --presence URL --node NAME --node-timeout 1s`, waiting for
 * its listening and presence-ok lines; returns its port or -1. */
static int start_node(child *srv, const char *url, const char *node) {
  char line[1024];
  int port = -1, i;
  char *argv[] = {NULL,     "serve",      "127.0.0.1:0",    "--json",     "-i",
                  "100ms",  "-t",         "300ms",          "--presence", (char *)url,
                  "--node", (char *)node, "--node-timeout", "1s",         NULL};
  if (child_start(srv, argv) != 0)
    return -1;
  for (i = 0; i < 2; i++) {
    if (!child_line(srv, line, sizeof line, 5000))
      return -1;
    if (strstr(line, "\"event\":\"listening\"") != NULL)
      port = (int)json_num(line, "port");
    else if (strstr(line, "\"state\":\"ok\"") == NULL)
      return -1;
  }
  return port;
}
#endif

/* Issue 9: a node's own death. Two nodes on one Redis with a 1 s node
 * timeout; kill -9 of n1 makes n2 mark n1's client offline with cause
 * node_lost (and publish it) within the node timeout, while n2's own client
 * stays online; when n2, the last node, is killed too, `vigil who` (which
 * runs the reaper itself) reports its client node_lost. */
TEST_IMPL(presence_node_lost) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#else
  static util_redis rd;
  child n1, n2, ca, cb, who, watch;
  char url[160], addr[64], line[1024];
  int p1, p2, st = -1;
  uint64_t t0, took;
  NEED_BINARY();
  memset(&rd, 0, sizeof rd);
  memset(&watch, 0, sizeof watch);
  memset(&ca, 0, sizeof ca);
  memset(&cb, 0, sizeof cb);
  memset(&n1, 0, sizeof n1);
  memset(&n2, 0, sizeof n2);
  if (util_redis_start(&rd) != 0)
    RETURN_SKIP("redis-server not installed or did not start");
  snprintf(url, sizeof url, "unix://%s", rd.sock);
  p1 = start_node(&n1, url, "n1");
  p2 = start_node(&n2, url, "n2");
  if (p1 <= 0 || p2 <= 0)
    goto fail;
  {
    char *argv[] = {NULL, "watch", "--presence", url, NULL};
    ASSERT_EQ(child_start(&watch, argv), 0);
    if (!child_stderr_has(&watch, "subscribed to vigil:events", 5000))
      goto fail;
  }
  snprintf(addr, sizeof addr, "127.0.0.1:%d", p1);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "gw-a", "-i", "100ms", "-t", "300ms", NULL};
    ASSERT_EQ(child_start(&ca, argv), 0);
  }
  snprintf(addr, sizeof addr, "127.0.0.1:%d", p2);
  {
    char *argv[] = {NULL, "connect", addr, "--id", "gw-b", "-i", "100ms", "-t", "300ms", NULL};
    ASSERT_EQ(child_start(&cb, argv), 0);
  }
  {
    /* the two nodes publish independently: either open may come first */
    int seen_a = 0, seen_b = 0;
    uint64_t until = mono_ms() + 5000;
    while (!(seen_a && seen_b) && mono_ms() < until) {
      if (!child_event(&watch, "open", NULL, line, sizeof line, (int)(until - mono_ms())))
        break;
      seen_a |= strstr(line, "\"id\":\"gw-a\"") != NULL;
      seen_b |= strstr(line, "\"id\":\"gw-b\"") != NULL;
    }
    if (!(seen_a && seen_b))
      goto fail;
  }
  sleep(1); /* n1 beats a few times while serving */
  kill(n1.pid, SIGKILL);
  t0 = mono_ms();
  if (!child_event(&watch, "dead", "gw-a", line, sizeof line, 5000))
    goto fail;
  took = mono_ms() - t0;
  fprintf(stderr, "kill -9 of n1: gw-a node_lost on watch after %llu ms (node timeout 1000 ms)\n",
          (unsigned long long)took);
  if (strstr(line, "\"cause\":\"node_lost\"") == NULL || strstr(line, "\"node\":\"n1\"") == NULL)
    goto fail;
  ASSERT_ULE(took, 1000 + 500); /* the bound, + the loaded machine's timer and pub/sub delays */
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-b", "--json", NULL};
    st = run_vigil(&who, argv, 5000);
    if (st != 0)
      goto fail; /* n2's own client was not touched */
  }
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-a", "--json", NULL};
    st = run_vigil(&who, argv, 5000);
    if (st != 1 || strstr(who.out_buf, "\"cause\":\"node_lost\"") == NULL)
      goto fail;
  }
  /* the last node: nobody beats, `who` reaps */
  kill(n2.pid, SIGKILL);
  child_wait(&n2, 2000);
  child_wait(&n1, 2000);
  n1.pid = n2.pid = 0;
  poll(NULL, 0, 1000 + 200);
  {
    char *argv[] = {NULL, "who", "--presence", url, "gw-b", "--json", NULL};
    st = run_vigil(&who, argv, 5000);
    if (st != 1 || strstr(who.out_buf, "\"cause\":\"node_lost\"") == NULL ||
        strstr(who.out_buf, "\"node\":\"n2\"") == NULL)
      goto fail;
  }
  child_kill(&ca);
  child_kill(&cb);
  child_kill(&watch);
  util_redis_cleanup(&rd);
  return 0;
fail:
  fprintf(stderr, "who: %d %s%s\nline: %s\nwatch: %s\n", st, who.out_buf, who.err_buf, line,
          watch.out_buf);
  if (ca.pid > 0)
    child_kill(&ca);
  if (cb.pid > 0)
    child_kill(&cb);
  if (watch.pid > 0)
    child_kill(&watch);
  if (n1.pid > 0)
    child_kill(&n1);
  if (n2.pid > 0)
    child_kill(&n2);
  fprintf(stderr, "n1: %s%s\nn2: %s%s\ngw-a: %s\ngw-b: %s\n", n1.out_buf, n1.err_buf, n2.out_buf,
          n2.err_buf, ca.err_buf, cb.err_buf);
  util_redis_cleanup(&rd);
  return 1;
#endif
}

/* ---- takeover races between processes (issue 9) ----------------------------
 *
 * The same id connects to two `vigil serve` processes at once, RACES times
 * (VIGIL_RACES, default 100 in the suite; docs/PRESENCE.md gives the 1,000
 * run). The clients are this test's own (vigil_client on its loop); the
 * servers are real processes on one Redis, and `vigil watch` reports what
 * they published. Each race must end with exactly one holder: one client
 * closed with CLOSE TAKEOVER, the other still open, Redis `online` naming
 * the survivor's node and worker with both openings applied (gen + 2), and
 * the loser's death published with takeover true and, when it came from
 * another process, applied false (it did not overwrite the record). Then
 * the survivor closes and Redis must say offline: no stale online. */
#if !defined(_WIN32) && defined(VIGIL_HAVE_HIREDIS)
#include <hiredis/hiredis.h>

typedef struct race_ev {
  int opens, deads, takeover_deads, applied_deads;
  char open_at[2][80]; /* node/worker of each opening */
  char loser_at[80];   /* node/worker of the takeover death */
  int loser_applied;
  long gen[2];
} race_ev;

/* The servers' own lines are not needed here, but must be read: serve
 * ends when its stdout is full. */
static child *race_servers[2];

static void race_discard(void) {
  int i;
  for (i = 0; i < 2; i++)
    if (race_servers[i] != NULL && race_servers[i]->pid > 0) {
      child *c = race_servers[i];
      drain(c->out, c->out_buf, sizeof c->out_buf, &c->out_len);
      c->out_len = 0;
      c->out_buf[0] = '\0';
    }
}

/* Reads the watch lines that have arrived (no wait) into e. */
static int race_read_events(child *watch, race_ev *e) {
  char line[1024], node[64], v[16];
  race_discard();
  drain(watch->out, watch->out_buf, sizeof watch->out_buf, &watch->out_len);
  while (child_line(watch, line, sizeof line, 0)) {
    char at[80];
    if (!json_valid(line) || strstr(line, "\"id\":\"race\"") == NULL)
      continue;
    if (json_get(line, "node", node, sizeof node) != J_STR)
      node[0] = '\0';
    snprintf(at, sizeof at, "%s/%ld", node, json_num(line, "worker"));
    if (strstr(line, "\"event\":\"open\"") != NULL) {
      if (e->opens < 2) {
        snprintf(e->open_at[e->opens], sizeof e->open_at[0], "%s", at);
        e->gen[e->opens] = json_num(line, "gen");
      }
      e->opens++;
    } else if (strstr(line, "\"event\":\"dead\"") != NULL) {
      int applied = json_get(line, "applied", v, sizeof v) == J_BOOL && strcmp(v, "true") == 0;
      e->deads++;
      e->applied_deads += applied;
      if (json_get(line, "takeover", v, sizeof v) == J_BOOL && strcmp(v, "true") == 0) {
        e->takeover_deads++;
        snprintf(e->loser_at, sizeof e->loser_at, "%s", at);
        e->loser_applied = applied;
      }
    }
  }
  return 0;
}

static long race_hnum(redisContext *rc, const char *field) {
  redisReply *r = redisCommand(rc, "HGET vigil:p:race %s", field);
  long v = r != NULL && r->type == REDIS_REPLY_STRING ? strtol(r->str, NULL, 10) : 0;
  freeReplyObject(r);
  return v;
}

static int race_hstr(redisContext *rc, const char *field, char *out, size_t cap) {
  redisReply *r = redisCommand(rc, "HGET vigil:p:race %s", field);
  int ok = r != NULL && r->type == REDIS_REPLY_STRING;
  snprintf(out, cap, "%s", ok ? r->str : "");
  freeReplyObject(r);
  return ok;
}

static int race_client(vigil_loop *loop, int port, util_rec *r, vigil_client **out) {
  vigil_client_config c;
  util_rec_init(r);
  vigil_client_config_init(&c);
  c.session.interval_ms = 500;
  c.session.timeout_ms = 5000;
  c.session.id = "race";
  c.session.id_len = 4;
  c.cb = util_rec_callbacks();
  c.user = r;
  c.on_closed = util_rec_on_client_closed;
  c.no_reconnect = 1;
  if (vigil_client_new(out, loop, &c) != 0)
    return -1;
  return vigil_client_connect(*out, "127.0.0.1", (uint16_t)port);
}

/* vigil serve on url with extra arguments; waits for nlisten listening and
 * presence-ok lines. Returns the port or -1. */
static int race_serve(child *srv, const char *url, const char *node, const char *workers,
                      int nlisten) {
  char line[1024];
  int port = -1, seen = 0, ok = 0;
  uint64_t end = mono_ms() + 10000;
  char *argv[] = {NULL,         "serve",     "127.0.0.1:0", "--json",     "-i", "500ms", "-t", "5s",
                  "--presence", (char *)url, "--node",      (char *)node, NULL, NULL,    NULL};
  if (workers != NULL) {
    argv[12] = "--workers";
    argv[13] = (char *)workers;
  }
  if (child_start(srv, argv) != 0)
    return -1;
  while ((seen < nlisten || ok < nlisten) && mono_ms() < end &&
         child_line(srv, line, sizeof line, 2000)) {
    if (strstr(line, "\"event\":\"listening\"") != NULL) {
      port = (int)json_num(line, "port");
      seen++;
    } else if (strstr(line, "\"event\":\"presence\"") != NULL &&
               strstr(line, "\"state\":\"ok\"") != NULL) {
      ok++;
    }
  }
  return seen == nlisten && ok == nlisten ? port : -1;
}

/* One race; returns 0, or 1 with why filled. *cross: the two openings came
 * from different processes. */
static int race_once(vigil_loop *loop, redisContext *rc, child *watch, int pa, int pb, int *cross,
                     char *why, size_t cap) {
  vigil_client *ca = NULL, *cb = NULL;
  util_rec ra, rb;
  race_ev e;
  long g0 = race_hnum(rc, "gen");
  util_rec *surv = NULL, *loser = NULL;
  vigil_client *sc = NULL;
  char state[16] = "", where[80] = "", node[64] = "", worker[16] = "";
  const char *want_at;
  uint64_t end;
  int rc_ = 1;
  memset(&e, 0, sizeof e);
  if (race_client(loop, pa, &ra, &ca) != 0 || race_client(loop, pb, &rb, &cb) != 0) {
    snprintf(why, cap, "client setup failed");
    goto out;
  }
  /* Settled: one client closed by TAKEOVER, both openings and the loser's
   * death published, Redis online at gen + 2. */
  end = mono_ms() + 8000;
  for (;;) {
    util_run_for(loop, 2);
    race_read_events(watch, &e);
    if (ra.deaths + ra.rejects + rb.deaths + rb.rejects == 1 &&
        (ra.deaths + ra.rejects == 1 ? rb.opens : ra.opens) == 1 && e.opens == 2 &&
        e.takeover_deads == 1 && race_hnum(rc, "gen") == g0 + 2)
      break;
    if (mono_ms() >= end || ra.deaths + ra.rejects + rb.deaths + rb.rejects > 1) {
      snprintf(why, cap,
               "not settled: client deaths %d+%d, opens %d/%d, rejects %d/%d, closed %d/%d, "
               "watch opens %d deads %d (takeover %d), gen %ld (was %ld)",
               ra.deaths, rb.deaths, ra.opens, rb.opens, ra.rejects, rb.rejects, ra.closed,
               rb.closed, e.opens, e.deads, e.takeover_deads, race_hnum(rc, "gen"), g0);
      goto out;
    }
  }
  /* The loser heard CLOSE TAKEOVER: a death, or a reject when the server
   * had opened it and taken it over before its WELCOME was written. */
  loser = ra.deaths + ra.rejects == 1 ? &ra : &rb;
  surv = loser == &ra ? &rb : &ra;
  sc = loser == &ra ? cb : ca;
  if (loser->death.close_code != VIGIL_CLOSE_TAKEOVER || surv->opens != 1) {
    snprintf(why, cap, "loser closed with %u, survivor opens %d", loser->death.close_code,
             surv->opens);
    goto out;
  }
  util_run_for(loop, 20); /* a wrong eviction would come now */
  race_read_events(watch, &e);
  race_hstr(rc, "state", state, sizeof state);
  race_hstr(rc, "node", node, sizeof node);
  race_hstr(rc, "worker", worker, sizeof worker);
  snprintf(where, sizeof where, "%s/%s", node, worker);
  *cross = strcmp(e.open_at[0], e.open_at[1]) != 0;
  /* the survivor's process: the opening that is not the loser's */
  want_at = strcmp(e.open_at[0], e.loser_at) == 0 ? e.open_at[1] : e.open_at[0];
  if (surv->deaths + surv->rejects != 0 || strcmp(state, "online") != 0 ||
      strcmp(where, want_at) != 0 || e.gen[0] != g0 + 1 || e.gen[1] != g0 + 2 ||
      (*cross && e.loser_applied)) {
    snprintf(why, cap,
             "survivor deaths %d; Redis %s at %s, survivor at %s (openings at %s, %s, gens "
             "%ld %ld, from %ld); loser applied %d",
             surv->deaths, state, where, want_at, e.open_at[0], e.open_at[1], e.gen[0], e.gen[1],
             g0, e.loser_applied);
    goto out;
  }
  /* no stale online: the survivor leaves, Redis says offline */
  (void)vigil_client_close(sc, 0);
  end = mono_ms() + 8000;
  for (;;) {
    util_run_for(loop, 2);
    race_read_events(watch, &e);
    race_hstr(rc, "state", state, sizeof state);
    if (e.deads == 2 && e.applied_deads >= 1 && strcmp(state, "offline") == 0)
      break;
    if (mono_ms() >= end) {
      snprintf(why, cap, "after the survivor left: Redis %s, deaths published %d (applied %d)",
               state, e.deads, e.applied_deads);
      goto out;
    }
  }
  rc_ = 0;
out:
  if (ca != NULL)
    (void)vigil_client_close(ca, 0);
  if (cb != NULL)
    (void)vigil_client_close(cb, 0);
  if (ca != NULL && !util_run_until(loop, &ra.closed, 5000))
    rc_ = 1;
  if (cb != NULL && !util_run_until(loop, &rb.closed, 5000))
    rc_ = 1;
  if (ca != NULL)
    (void)vigil_client_free(ca);
  if (cb != NULL)
    (void)vigil_client_free(cb);
  return rc_;
}

static int race_count(void) {
  const char *s = getenv("VIGIL_RACES");
  long n = s != NULL ? strtol(s, NULL, 10) : 0;
  return n > 0 && n <= 100000 ? (int)n : 100;
}

/* workers: one `serve --workers 2`, both clients to its port (the kernel
 * picks the worker); else two nodes on two ports. */
static int takeover_race(int workers) {
  static util_redis rd;
  child s1, s2, watch;
  vigil_loop loop;
  redisContext *rc = NULL;
  char url[160], why[512] = "";
  int p1, p2, i, cross = 0, races = race_count(), failed = 0, loop_up = 0;
  uint64_t t0;
  memset(&rd, 0, sizeof rd);
  memset(&s1, 0, sizeof s1);
  memset(&s2, 0, sizeof s2);
  memset(&watch, 0, sizeof watch);
  if (util_redis_start(&rd) != 0)
    RETURN_SKIP("redis-server not installed or did not start");
  snprintf(url, sizeof url, "unix://%s", rd.sock);
  if (workers) {
    p1 = p2 = race_serve(&s1, url, "w", "2", 2);
  } else {
    p1 = race_serve(&s1, url, "n1", NULL, 1);
    p2 = race_serve(&s2, url, "n2", NULL, 1);
  }
  if (p1 <= 0 || p2 <= 0) {
    snprintf(why, sizeof why, "serve did not start");
    goto fail;
  }
  {
    char *argv[] = {NULL, "watch", "--presence", url, NULL};
    if (child_start(&watch, argv) != 0 ||
        !child_stderr_has(&watch, "subscribed to vigil:events", 5000)) {
      snprintf(why, sizeof why, "watch did not subscribe");
      goto fail;
    }
  }
  race_servers[0] = &s1;
  race_servers[1] = &s2;
  rc = redisConnectUnix(rd.sock);
  if (rc == NULL || rc->err != 0 || vigil_loop_init(&loop, NULL) != 0) {
    snprintf(why, sizeof why, "no Redis context or loop");
    goto fail;
  }
  loop_up = 1;
  t0 = mono_ms();
  for (i = 0; i < races; i++) {
    int c = 0;
    char detail[400] = "";
    if (race_once(&loop, rc, &watch, p1, p2, &c, detail, sizeof detail) != 0) {
      snprintf(why, sizeof why, "race %d: %s", i, detail);
      goto fail;
    }
    cross += c;
  }
  fprintf(stderr,
          "%d races of one id (%s): exactly one holder each time, %d between two processes; "
          "%llu ms\n",
          races, workers ? "serve --workers 2" : "two serve nodes", cross,
          (unsigned long long)(mono_ms() - t0));
  if (cross == 0) {
    snprintf(why, sizeof why, "no race was between two processes");
    goto fail;
  }
  goto done;
fail:
  failed = 1;
  fprintf(stderr, "%s\nserve: %.2000s\nwatch: %.2000s\n", why, s1.err_buf, watch.err_buf);
done:
  if (loop_up) {
    util_run_for(&loop, 10);
    (void)vigil_loop_close(&loop);
  }
  if (rc != NULL)
    redisFree(rc);
  race_servers[0] = race_servers[1] = NULL;
  if (watch.pid > 0)
    child_kill(&watch);
  if (s1.pid > 0) {
    kill(s1.pid, SIGTERM);
    if (child_wait(&s1, 10000) != 0)
      failed = 1;
  }
  if (s2.pid > 0) {
    kill(s2.pid, SIGTERM);
    if (child_wait(&s2, 10000) != 0)
      failed = 1;
  }
  util_redis_cleanup(&rd);
  return failed;
}
#endif

/* Issue 9: two `vigil serve` nodes on two ports, one Redis. */
TEST_IMPL(presence_takeover_race_nodes) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#elif !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  NEED_BINARY();
  return takeover_race(0);
#endif
}

/* Issue 9: two worker processes of one `vigil serve --workers 2`. */
TEST_IMPL(presence_takeover_race_workers) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn; one process on Windows");
#elif !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  NEED_BINARY();
  return takeover_race(1);
#endif
}

/* `vigil watch` prints what Redis carries on vigil:events, and anyone who
 * can PUBLISH there can send anything: text with a terminal escape and a
 * newline, bytes that are not UTF-8, a control byte or bad UTF-8 inside
 * something JSON-shaped, JSON naming no event, an empty message, 100 KB.
 * Each must become one not_vigil line (valid JSON, UTF-8, no control byte:
 * the message's start escaped, its size, cut when longer than 256 bytes,
 * the count so far); an event of ours after them is printed as it came. */
TEST_IMPL(presence_watch_not_ours) {
#if defined(_WIN32)
  RETURN_SKIP("runs the binary with posix_spawn");
#elif !defined(VIGIL_HAVE_HIREDIS)
  RETURN_SKIP("built without hiredis: the Redis store is compiled out");
#else
  static util_redis rd;
  static char huge[100000];
  static const struct {
    const char *s;
    size_t len; /* 0: strlen */
  } junk[] = {
      {"hello \x1b[31mred\x1b[0m\nsecond line", 0},
      {"\xff\xfe{\"event\":\"open\"}", 0},
      {"{\"event\":\"dead\",\"id\":\"a\x1b[2J\"}", 0},
      {"{\"event\":\"open\",\"id\":\"\xc3\x28\"}", 0},
      {"{\"x\":1}", 0},
      {"", 0},
      {huge, sizeof huge},
  };
  static const char ours[] = "{\"event\":\"open\",\"id\":\"gw-ok\",\"node\":\"n1\",\"worker\":0}";
  child watch;
  redisContext *rc = NULL;
  char url[160], line[4096], want[64];
  size_t i, k, n = sizeof junk / sizeof junk[0];
  int failed = 0;
  NEED_BINARY();
  memset(&rd, 0, sizeof rd);
  if (util_redis_start(&rd) != 0)
    RETURN_SKIP("redis-server not installed or did not start");
  memset(huge, 'h', sizeof huge);
  snprintf(url, sizeof url, "unix://%s", rd.sock);
  {
    char *argv[] = {NULL, "watch", "--presence", url, NULL};
    if (child_start(&watch, argv) != 0) {
      util_redis_cleanup(&rd);
      TEST_FAIL_AT("watch did not start");
    }
  }
  rc = redisConnectUnix(rd.sock);
  if (rc == NULL || rc->err != 0 || !child_stderr_has(&watch, "subscribed to vigil:events", 5000))
    failed = __LINE__;
  for (i = 0; i < n && !failed; i++)
    freeReplyObject(redisCommand(rc, "PUBLISH vigil:events %b", junk[i].s,
                                 junk[i].len != 0 ? junk[i].len : strlen(junk[i].s)));
  if (!failed)
    freeReplyObject(redisCommand(rc, "PUBLISH vigil:events %s", ours));
  for (i = 0; i < n && !failed; i++) {
    size_t len = junk[i].len != 0 ? junk[i].len : strlen(junk[i].s);
    if (!child_line(&watch, line, sizeof line, 5000) || !json_valid(line) ||
        strstr(line, "\"event\":\"not_vigil\"") == NULL ||
        !vigil_utf8_valid((const uint8_t *)line, strlen(line))) {
      failed = __LINE__;
      break;
    }
    for (k = 0; line[k] != '\0'; k++)
      if ((unsigned char)line[k] < 0x20 || line[k] == 0x7f)
        failed = __LINE__;
    snprintf(want, sizeof want, "\"bytes\":%zu", len);
    if (strstr(line, want) == NULL ||
        strstr(line, len > 256 ? "\"cut\":true" : "\"cut\":false") == NULL)
      failed = __LINE__;
    snprintf(want, sizeof want, "\"not_vigil\":%zu}", i + 1);
    if (strstr(line, want) == NULL)
      failed = __LINE__;
  }
  if (!failed && (!child_line(&watch, line, sizeof line, 5000) || strcmp(line, ours) != 0))
    failed = __LINE__;
  child_kill(&watch);
  if (rc != NULL)
    redisFree(rc);
  util_redis_cleanup(&rd);
  if (failed)
    TEST_FAIL_AT("line %d of the test: %.1000s", failed, line);
  return 0;
#endif
}
