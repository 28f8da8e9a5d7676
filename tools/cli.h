/* Shared pieces of the `vigil` subcommands, in three files:
 *   args.c    argument parsing (durations, counts, addresses, flags) and
 *             usage errors;
 *   events.c  the event line writer, text or one JSON object per line (the
 *             schema is in docs/CLI.md), and the checks on stdout;
 *   cli.c     running a command: the loop and the signal watch.
 * The parsers and the line writer are unit tested directly by
 * tests/test-cli.c. */
#ifndef VIGIL_TOOLS_CLI_H
#define VIGIL_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil/loop.h"
#include "vigil/server.h"

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#endif

/* --send-size: at most the library's default max_message, which both
 * connect and serve accept and propose. */
#define VIGIL_CLI_SEND_SIZE_MAX 1048576u
#define VIGIL_CLI_SEND_SIZE_DEFAULT 64u

/* Exit statuses shared by every subcommand. */
#define VIGIL_CLI_OK 0
#define VIGIL_CLI_FAIL 1
#define VIGIL_CLI_USAGE 2

/* Longest peer address text: "[" IPv6 "]:" port. */
#define VIGIL_CLI_ADDRSTRLEN 64

/* ---- parsing: each returns 0, or -1 with *why set to a static reason ---- */

/* "250ms", "3s", "1.5s", "2m", "1h" -> milliseconds in 1..UINT32_MAX.
 * A plain number (no unit), a sign, garbage, a value below 1 ms or a
 * fraction of a millisecond, and overflow are rejected. */
int vigil_cli_parse_duration(const char *s, uint32_t *ms, const char **why);

/* A size in bytes: digits and a unit B, KiB, MiB, GiB (or K, M, G: also
 * binary), e.g. 64MiB; at least 1 byte, at most 2^63. */
int vigil_cli_parse_size(const char *s, uint64_t *bytes, const char **why);

/* A decimal integer in [min, max]; no sign, no spaces, no trailing text. */
int vigil_cli_parse_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out,
                         const char **why);

typedef struct vigil_cli_addr {
  char host[256]; /* "" when only a port was given (serve: all interfaces) */
  char port[6];   /* decimal text, as given to getaddrinfo */
  uint16_t port_num;
} vigil_cli_addr;

/* HOST:PORT, [IPv6]:PORT, and with port_only_ok also PORT and :PORT.
 * Port 0 is accepted only when port_only_ok (a server may ask the kernel to
 * choose). Checks the syntax only; resolution is vigil_cli_resolve(). */
int vigil_cli_parse_addr(const char *s, int port_only_ok, vigil_cli_addr *a, const char **why);

/* getaddrinfo() for a TCP stream socket; passive for a listener (an empty
 * host then means all interfaces). On success *res must be released with
 * freeaddrinfo(). Returns 0 or -1 with *why the resolver's message. */
int vigil_cli_resolve(const vigil_cli_addr *a, int passive, struct addrinfo **res,
                      const char **why);

/* "1.2.3.4:5" or "[::1]:5" into out (VIGIL_CLI_ADDRSTRLEN bytes). */
void vigil_cli_format_sockaddr(const struct sockaddr *sa, size_t salen, char *out, size_t cap);

/* ---- command lines ---- */

/* Prints "vigil CMD: MESSAGE" (one line, to stderr) and returns
 * VIGIL_CLI_USAGE, so a command can `return vigil_cli_usage(...)`. */
int vigil_cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Matches argv[*i] against a flag that takes a value, as "--flag VALUE" or
 * "--flag=VALUE". Returns 1 and sets *value (advancing *i past a separate
 * value), 0 when argv[*i] is another argument, or -1 after printing a usage
 * error when the value is missing. */
int vigil_cli_flag_value(const char *cmd, int argc, char **argv, int *i, const char *flag,
                         const char **value);

/* The same for value-taking flags of the common kinds; each returns 1 when
 * matched and parsed, 0 when argv[*i] is not this flag, -1 after printing a
 * usage error that names the flag and the bad value. */
int vigil_cli_flag_duration(const char *cmd, int argc, char **argv, int *i, const char *flag,
                            uint32_t *ms);
int vigil_cli_flag_uint(const char *cmd, int argc, char **argv, int *i, const char *flag,
                        uint32_t min, uint32_t max, uint32_t *out);

/* A flag without a value: 1 and *on = 1 when arg is exactly `flag`, else 0. */
int vigil_cli_flag_set(const char *arg, const char *flag, int *on);

/* For an argument no flag matched: the first positional one goes to *slot;
 * an unknown option or a second positional argument is a usage error
 * (printed; returns VIGIL_CLI_USAGE). Returns 0 when stored. */
int vigil_cli_positional(const char *cmd, const char *arg, const char **slot);

/* Checks a peer id given on the command line (1..255 bytes of UTF-8).
 * Returns 0 or VIGIL_CLI_USAGE after printing why. */
int vigil_cli_check_id(const char *cmd, const char *id);

/* Options several commands share. A command names the ones it takes with a
 * mask; vigil_cli_parse_args fills them in. */
enum {
  VIGIL_CLI_OPT_ID = 1 << 0,        /* --id NAME (checked: 1..255 bytes of UTF-8) */
  VIGIL_CLI_OPT_INTERVAL = 1 << 1,  /* --interval D */
  VIGIL_CLI_OPT_TIMEOUT = 1 << 2,   /* --timeout D */
  VIGIL_CLI_OPT_KEEPALIVE = 1 << 3, /* --keepalive D and --no-keepalive */
  VIGIL_CLI_OPT_JSON = 1 << 4,      /* --json */
  VIGIL_CLI_OPT_PORT_ONLY = 1 << 5, /* the address may be PORT or :PORT (serve) */
  VIGIL_CLI_OPT_SEND = 1 << 6       /* --send-every D, --send-size N (default 64) */
};

typedef struct vigil_cli_common {
  vigil_cli_addr addr;                            /* the one positional argument, parsed */
  const char *id;                                 /* NULL when not given */
  uint32_t interval_ms, timeout_ms, keepalive_ms; /* 0 when not given */
  uint32_t send_every_ms, send_size;              /* 0: no data; size 64 then */
  int keepalive_off, json;
} vigil_cli_common;

/* One option of a command for vigil_cli_parse_args: --name (and -x when
 * short_name is not 0), stored into dst: an int set to 1 (FLAG), a const
 * char * (STRING), a uint32_t of milliseconds (DURATION) or a uint32_t in
 * [min, max] (UINT). mask: which VIGIL_CLI_OPT_* brings it (shared ones). */
typedef enum vigil_cli_kind {
  VIGIL_CLI_FLAG,
  VIGIL_CLI_STRING,
  VIGIL_CLI_DURATION,
  VIGIL_CLI_UINT
} vigil_cli_kind;

typedef struct vigil_cli_opt {
  const char *name; /* without the leading "--"; NULL ends a table */
  char short_name;
  vigil_cli_kind kind;
  void *dst;
  uint32_t min, max;
  unsigned mask;
} vigil_cli_opt;

/* Options one command may have, shared ones included. */
#define VIGIL_CLI_MAX_OPTS 32

/* The argument loop every network command runs, with getopt_long: --NAME
 * VALUE, --NAME=VALUE, and the short forms -i (--interval), -t (--timeout),
 * -j (--json), -h (--help, which prints usage_text to stdout) and the
 * command's own. The shared options of `mask` go to *common, the command's
 * own table `own` (ended by a NULL name; may be NULL) to their dst; the one
 * positional argument is the address, parsed into common->addr (a missing or
 * bad one is a usage error); then --id, if given, is checked, and
 * --send-size without --send-every is refused. Returns 0, -1 after printing
 * the help, or VIGIL_CLI_USAGE after printing one line why. */
int vigil_cli_parse_args(const char *cmd, const char *usage_text, unsigned mask, int argc,
                         char **argv, vigil_cli_common *common, const vigil_cli_opt *own);

/* A client's proposed --interval: the library's default when not given
 * (vigil_session_config_init: 1s), and at least the shortest interval a
 * server allows by default (100ms).
 * Returns 0 or VIGIL_CLI_USAGE after printing why. */
int vigil_cli_client_interval(const char *cmd, uint32_t *interval_ms);

/* The library's rules for a session config (vigil_session_config_check),
 * which the CLI never restates: 0, or VIGIL_CLI_USAGE after printing the
 * broken rule, e.g. "vigil connect: --interval/--timeout: timeout 1500ms must
 * be at least 2 x interval 1000ms". */
int vigil_cli_check_session(const char *cmd, const vigil_session_config *cfg, vigil_role role);

/* Kernel keepalive from --keepalive D / --no-keepalive (both 0: the
 * library's AUTO). Returns 0 or VIGIL_CLI_USAGE after printing why. */
int vigil_cli_keepalive(const char *cmd, uint32_t budget_ms, int off, vigil_keepalive_mode *mode,
                        vigil_keepalive *ka);

/* The peer address of c as text, or `fallback` while the connection has
 * none (a failed connect, a name that did not resolve). */
const char *vigil_cli_conn_peer(const vigil_conn_info *ci, const char *fallback);

/* "host:port", or "[v6]:port" for a host with a colon, into out. */
void vigil_cli_addr_text(const vigil_cli_addr *a, char *out, size_t cap);

/* Runs the loop until it is stopped. A failed wait leaves the loop usable,
 * so it goes on, unless waits keep failing: then it says so and returns
 * VIGIL_CLI_FAIL. Returns 0 once stopped. */
int vigil_cli_run_loop(const char *cmd, vigil_loop *loop);

/* 1 if arg is "--help" or "-h". */
int vigil_cli_is_help(const char *arg);

/* Prints the usage error for an argument no command recognised and returns
 * VIGIL_CLI_USAGE. */
int vigil_cli_unknown(const char *cmd, const char *arg);

/* ---- signals ---- */

/* SIGINT and SIGTERM (on Windows also Ctrl-Break) are vigil_signal handles
 * on the command's loop: the first delivery calls fn(arg, signo) from the
 * loop at once, and gives the signals back their previous disposition, so
 * a second one ends a shutdown that hangs the way it would end any program.
 * A failed stdout (see "stdout" below) calls fn(arg, 0) the same way: the
 * command stops as for a signal. */
typedef struct vigil_cli_sigwatch {
  vigil_signal sig[3];   /* SIGINT, SIGTERM, and on Windows SIGBREAK */
  unsigned nsig;         /* how many of them are initialised */
  vigil_loop_timer stop; /* fires fn(arg, 0) when stdout failed */
  vigil_loop *loop;
  void (*fn)(void *arg, int signo);
  void *arg;
} vigil_cli_sigwatch;

/* Stops the running command as a signal would (fn(arg, 0) of its watch,
 * from the loop, at once); nothing when no watch runs. events.c calls it
 * when stdout fails. */
void vigil_cli_request_stop(void);

/* From main, first: a write to a closed pipe then fails with EPIPE (and is
 * reported) instead of killing the process without a word. */
void vigil_cli_ignore_sigpipe(void);

/* From then on a watch takes SIGTERM only, not SIGINT (a worker process of
 * `vigil serve --workers`, whose supervisor handles Ctrl-C). */
void vigil_cli_sigwatch_term_only(void);

void vigil_cli_sigwatch_start(vigil_loop *loop, vigil_cli_sigwatch *w,
                              void (*fn)(void *arg, int signo), void *arg);
void vigil_cli_sigwatch_stop(vigil_loop *loop, vigil_cli_sigwatch *w);

/* The main loop of a long-running command: starts the signal watch
 * (fn(arg, signo) on SIGINT/SIGTERM) and runs the loop until stopped, as
 * vigil_cli_run_loop (0, or VIGIL_CLI_FAIL). */
int vigil_cli_loop_main(const char *cmd, vigil_loop *loop, vigil_cli_sigwatch *w,
                        void (*fn)(void *arg, int signo), void *arg);

/* From a command's final callback: stops the signal watch and the loop. */
void vigil_cli_loop_stop(vigil_loop *loop, vigil_cli_sigwatch *w);

/* After the server or client is freed: lets the loop run the close
 * callbacks that frees (nothing waits), then closes it. */
void vigil_cli_loop_finish(vigil_loop *loop);

/* ---- stdout ---- */

/* Every write to stdout is checked. The first that fails prints "vigil:
 * stdout: REASON" (strerror: "Broken pipe", "No space left on device") on
 * stderr, stops the running command through its signal watch (fn(arg, 0)),
 * and turns a successful exit status into 1; writes after it are skipped. */

/* fflush(f) and check f's error flag (for text written with printf):
 * 0, or -1 once stdout has failed. */
int vigil_cli_out_flush(FILE *f);

/* From now on, event lines for stdout are collected and written together
 * at the end of the loop iteration that produced them (whole lines, one
 * fwrite + fflush, before the loop waits again); NULL writes what is
 * collected and ends batching. For a command that prints nothing to stdout
 * but event lines (vigil_cli_out_flush(stdout) writes the batch first). */
void vigil_cli_out_batch(vigil_loop *loop);

/* 1 once a write to stdout has failed. */
int vigil_cli_out_failed(void);

/* At exit, from main: flushes and closes stdout, checking both, and returns
 * `status`, or VIGIL_CLI_FAIL instead of VIGIL_CLI_OK when stdout failed. */
int vigil_cli_out_exit(int status);

/* ---- time ---- */

/* Wall-clock seconds since the Unix epoch, with microseconds. */
double vigil_cli_unix_time(void);

/* ---- event lines ---- */

/* One event line under construction. Keys are added in order; the line is
 * written with a single fwrite and flushed, so concurrent readers of a pipe
 * never see half a line. If the line would not fit, it is replaced by the
 * event with a "truncated":true key instead of being cut mid-value. */
typedef struct vigil_cli_line {
  int json;
  int overflow;
  size_t len;
  size_t head_len; /* bytes of the fixed prefix (t, event) */
  char buf[6144];
} vigil_cli_line;

/* From then on every line carries "worker": N (a worker process of
 * `vigil serve --workers`); before it, no line has the key. */
void vigil_cli_set_worker(unsigned worker);

/* Starts a line: t (now), event, peer, id (id_len bytes; NULL: null), and
 * the worker number once vigil_cli_set_worker was called. */
void vigil_cli_line_begin(vigil_cli_line *l, int json, const char *event, const char *peer,
                          const char *id, size_t id_len);
void vigil_cli_line_str(vigil_cli_line *l, const char *key, const char *s, size_t len);
void vigil_cli_line_cstr(vigil_cli_line *l, const char *key, const char *s); /* NULL: null */
void vigil_cli_line_u64(vigil_cli_line *l, const char *key, uint64_t v);
void vigil_cli_line_null(vigil_cli_line *l, const char *key);
void vigil_cli_line_bool(vigil_cli_line *l, const char *key, int v);
/* A duration in nanoseconds printed as milliseconds with 3 decimals. */
void vigil_cli_line_ms(vigil_cli_line *l, const char *key, uint64_t ns);
/* Writes the line and a newline to f, then flushes f; a failure of either
 * is handled as described under "stdout". */
void vigil_cli_line_end(vigil_cli_line *l, FILE *f);

/* The keys every death / reject line carries (docs/CLI.md, "Death keys"):
 * cause, silent_ms, detail, error, close_code, close_by, reason,
 * retry_after_ms, timeout_ms; with `established`, also the kernel's
 * evidence when there is some (for a connection that never completed,
 * TCP_INFO's timestamps mean nothing). */
void vigil_cli_line_death(vigil_cli_line *l, const vigil_death *d, int established);

/* The keys of a failed connection attempt (`connect_failed`): message
 * (human text), attempt, then the death keys of a connection that never
 * completed. */
void vigil_cli_line_failed(vigil_cli_line *l, const char *message, unsigned attempt,
                           const vigil_death *d);

/* ---- data in flight (--send-every of connect and serve) ---- */

/* What became of the messages one connection was given. */
typedef struct vigil_cli_data {
  uint64_t sent;       /* accepted by the library */
  uint64_t queue_full; /* refused with VIGIL_EQUEUEFULL (backpressure) */
  uint64_t failed;     /* refused for any other reason */
} vigil_cli_data;

/* Writes "seq=SEQ " at the start of msg (cut at size). Filled once with
 * filler, a buffer only needs this per message: SEQ only grows, so each
 * head covers the previous one. */
void vigil_cli_data_head(uint8_t *msg, size_t size, uint64_t seq);

/* Counts a send's result (0, VIGIL_EQUEUEFULL, or another error). */
void vigil_cli_data_count(vigil_cli_data *d, int send_rc);

/* Adds d into the totals *sum. */
void vigil_cli_data_add(vigil_cli_data *sum, const vigil_cli_data *d);

/* The keys sent, queue_full, send_failed; with ci (a connection at its
 * death) also unsent and unsent_bytes: what was still queued, which the
 * library hands back through on_unsent right after. */
void vigil_cli_line_data(vigil_cli_line *l, const vigil_cli_data *d, const vigil_conn_info *ci);

/* Appends s[0..len) to out as the body of a JSON string (no quotes):
 * '"', '\\' and control characters escaped, valid UTF-8 kept, each byte of
 * invalid UTF-8 replaced by \ufffd. Returns the length the full escape
 * needs; writes at most cap - 1 bytes plus a NUL (when cap > 0). */
size_t vigil_cli_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
