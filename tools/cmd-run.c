/* `vigil run`: an unmodified program, with kernel keepalive and
 * TCP_USER_TIMEOUT on every TCP socket it creates.
 *
 * The settings come from a detection budget (libvigil's
 * vigil_keepalive_from_budget: "dead within D, tolerating N lost probes";
 * the derivation is at the top of src/keepalive.c) or from explicit values,
 * and explicit values override the budget's field by field. They travel to
 * the program in the environment (VIGIL_RUN_KEEPALIVE, parsed by
 * tools/preload/vigil-preload.c), and LD_PRELOAD loads the library that
 * applies them; then this process execs the command, so the command's exit
 * status, signals and process id are its own.
 *
 * The preload library is looked for, in order: $VIGIL_PRELOAD_LIB; next to
 * this executable (the build tree); ../lib, ../lib64 and ../lib/<triplet>
 * relative to it (an installed prefix). Only Linux-style LD_PRELOAD is
 * supported; elsewhere the command says so and exits 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vigil.h"

#if !defined(_WIN32)
#include <glob.h>
#include <limits.h>
#include <unistd.h>
#endif

#define CMD "run"
#define PRELOAD_NAME "libvigil-preload.so"
#define DEFAULT_BUDGET_MS 30000u
#define DEFAULT_LOST 2u

static const char usage_text[] =
    "usage: vigil run [--budget D] [--lost N] [--idle D] [--interval D] [--count N]\n"
    "                 [--user-timeout D] [--verbose] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with kernel TCP keepalive and TCP_USER_TIMEOUT applied to every\n"
    "TCP socket it creates or accepts (through LD_PRELOAD of " PRELOAD_NAME "),\n"
    "so a program that never asked for them learns within the budget that the\n"
    "other end is gone (its read or write fails with ETIMEDOUT).\n"
    "\n"
    "  --budget D        the kernel declares a silent peer dead within D\n"
    "                    (default 30s); keepalive idle/interval/count and the user\n"
    "                    timeout are derived from it (see docs/ARCHITECTURE.md)\n"
    "  --lost N          lost probes tolerated within the budget (default 2)\n"
    "  --idle D          idle time before the first keepalive probe\n"
    "  --interval D      time between unanswered probes\n"
    "  --count N         unanswered probes before giving up\n"
    "  --user-timeout D  TCP_USER_TIMEOUT: data unacknowledged for D (or, with\n"
    "                    keepalive, silence for D) kills the connection\n"
    "  --verbose         the library prints what it applied to each socket\n"
    "\n"
    "Explicit values override the budget's. Keepalive has 1 s granularity.\n"
    "Exit status: the command's; 1 if it cannot be started; 2 bad usage.\n";

typedef struct run_opts {
  uint32_t budget_ms, lost, idle_ms, interval_ms, count, uto_ms;
  int verbose;
  int cmd_index;
} run_opts;

static int parse_args(int argc, char **argv, run_opts *o) {
  int i;
  memset(o, 0, sizeof(*o));
  o->lost = DEFAULT_LOST;
  for (i = 1; i < argc; i++) {
    int rc;
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (vigil_cli_is_help(argv[i])) {
      fputs(usage_text, stdout);
      return -1;
    }
    if ((rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--budget", &o->budget_ms)) ||
        (rc = vigil_cli_flag_uint(CMD, argc, argv, &i, "--lost", 0, 125, &o->lost)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--idle", &o->idle_ms)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--interval", &o->interval_ms)) ||
        (rc = vigil_cli_flag_uint(CMD, argc, argv, &i, "--count", 1, 127, &o->count)) ||
        (rc = vigil_cli_flag_duration(CMD, argc, argv, &i, "--user-timeout", &o->uto_ms))) {
      if (rc < 0)
        return VIGIL_CLI_USAGE;
    } else if (strcmp(argv[i], "--verbose") == 0) {
      o->verbose = 1;
    } else if (argv[i][0] == '-') {
      return vigil_cli_unknown(CMD, argv[i]);
    } else {
      break; /* the command, without "--" */
    }
  }
  if (i >= argc)
    return vigil_cli_usage(CMD, "missing COMMAND (see vigil run --help)");
  o->cmd_index = i;
  return 0;
}

/* Budget first (default when nothing explicit is given), then overrides. */
static int derive(const run_opts *o, vigil_keepalive *ka) {
  int explicit_any = o->idle_ms || o->interval_ms || o->count || o->uto_ms;
  uint32_t budget = o->budget_ms;
  vigil_keepalive_init(ka);
  if (budget == 0 && !explicit_any)
    budget = DEFAULT_BUDGET_MS;
  if (budget != 0 && vigil_keepalive_from_budget(ka, budget, o->lost) != 0)
    return vigil_cli_usage(CMD,
                           "--budget %u ms cannot tolerate %u lost probes at 1 s "
                           "keepalive granularity (need at least %u s)",
                           budget, o->lost, o->lost + 2);
  if (o->idle_ms)
    ka->idle_ms = o->idle_ms;
  if (o->interval_ms)
    ka->interval_ms = o->interval_ms;
  if (o->count)
    ka->count = o->count;
  if (o->uto_ms)
    ka->user_timeout_ms = o->uto_ms;
  ka->enable = ka->idle_ms || ka->interval_ms || ka->count;
  return 0;
}

#if defined(_WIN32)

int vigil_cmd_run(int argc, char **argv) {
  run_opts o;
  vigil_keepalive ka;
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  /* Bad values are still a usage error here, as on POSIX. */
  if ((rc = derive(&o, &ka)) != 0)
    return rc;
  fprintf(stderr, "vigil run: needs LD_PRELOAD, which Windows does not have\n");
  return VIGIL_CLI_FAIL;
}

#else

static int usable(const char *path) {
  return access(path, R_OK) == 0;
}

/* Fills out with the preload library's path; 0, or -1 if none is found. */
static int find_preload(char *out, size_t cap) {
  static const char *const rel[] = {"/", "/../lib/", "/../lib64/"};
  char exe[PATH_MAX], pattern[PATH_MAX + 64];
  const char *env = getenv("VIGIL_PRELOAD_LIB");
  ssize_t n;
  char *slash;
  glob_t g;
  if (env != NULL && env[0] != '\0') {
    snprintf(out, cap, "%s", env);
    return usable(out) ? 0 : -1;
  }
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return -1;
  exe[n] = '\0';
  slash = strrchr(exe, '/');
  if (slash == NULL)
    return -1;
  *slash = '\0';
  for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
    if ((size_t)snprintf(out, cap, "%s%s%s", exe, rel[i], PRELOAD_NAME) < cap && usable(out))
      return 0;
  }
  snprintf(pattern, sizeof(pattern), "%s/../lib/*/%s", exe, PRELOAD_NAME);
  if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
    snprintf(out, cap, "%s", g.gl_pathv[0]);
    globfree(&g);
    return 0;
  }
  return -1;
}

static int set_environment(const vigil_keepalive *ka, const char *lib, int verbose) {
  char value[96], *preload;
  const char *old = getenv("LD_PRELOAD");
  size_t need;
  snprintf(value, sizeof(value), "%u,%u,%u,%u", ka->enable ? ka->idle_ms : 0,
           ka->enable ? ka->interval_ms : 0, ka->enable ? ka->count : 0, ka->user_timeout_ms);
  if (setenv("VIGIL_RUN_KEEPALIVE", value, 1) != 0)
    return -1;
  if (verbose && setenv("VIGIL_RUN_VERBOSE", "1", 1) != 0)
    return -1;
  need = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
  preload = malloc(need);
  if (preload == NULL)
    return -1;
  snprintf(preload, need, "%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");
  if (setenv("LD_PRELOAD", preload, 1) != 0) {
    free(preload);
    return -1;
  }
  free(preload);
  return 0;
}

int vigil_cmd_run(int argc, char **argv) {
  run_opts o;
  vigil_keepalive ka;
  char lib[PATH_MAX];
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
  if ((rc = derive(&o, &ka)) != 0)
    return rc;
  if (find_preload(lib, sizeof(lib)) != 0) {
    fprintf(stderr,
            "vigil run: cannot find %s next to the vigil executable or in its "
            "lib directory (set VIGIL_PRELOAD_LIB)\n",
            PRELOAD_NAME);
    return VIGIL_CLI_FAIL;
  }
  if (set_environment(&ka, lib, o.verbose) != 0) {
    fprintf(stderr, "vigil run: cannot set the environment\n");
    return VIGIL_CLI_FAIL;
  }
  if (o.verbose)
    fprintf(stderr,
            "vigil run: keepalive idle %u ms, interval %u ms, count %u, "
            "user timeout %u ms, via %s\n",
            ka.idle_ms, ka.interval_ms, ka.count, ka.user_timeout_ms, lib);
  execvp(argv[o.cmd_index], argv + o.cmd_index);
  fprintf(stderr, "vigil run: cannot run '%s': %s\n", argv[o.cmd_index], strerror(errno));
  return VIGIL_CLI_FAIL;
}

#endif
