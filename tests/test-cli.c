/* Tests of the `vigil` command.
 *
 * Two halves. The parsing helpers of tools/cli.c are compiled into this test
 * (the test target links only the library) and checked directly: durations,
 * counts, addresses and JSON escaping, where every reject must name a
 * reason. The commands themselves are run as the built binary
 * ($VIGIL_BINARY_DIR/vigil) in child processes: exit statuses, usage
 * messages, and the --json lines of serve and connect, including a death
 * with its cause. Every wait is bounded; every child is killed by pid. The
 * subprocess half needs fork/exec and skips on Windows. */
#include "../tools/cli.c"

#include <stdlib.h>

#include "task.h"

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
  return vigil_cli_parse_duration(s, &ms, &why) == -1 && why != NULL && *why != '\0' &&
         ms == 12345;
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
  ASSERT(duration_bad("30"));       /* no unit: ambiguous */
  ASSERT(duration_bad("3x"));
  ASSERT(duration_bad("3 s"));
  ASSERT(duration_bad("-3s"));
  ASSERT(duration_bad("+3s"));
  ASSERT(duration_bad(".5s"));
  ASSERT(duration_bad("1.s"));
  ASSERT(duration_bad("0ms"));
  ASSERT(duration_bad("0s"));
  ASSERT(duration_bad("0.5ms"));    /* below the millisecond */
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
      "", "7000", ":7000", "host", "host:", "host:0", "host:65536", "host:70000x",
      "host:-1", "::1:7000", "[::1]7000", "[::1]", "[]:7000", "[::1:7000", "a b:1",
      "host:+80", "host:000080", NULL};
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
