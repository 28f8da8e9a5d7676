/* `vigil`: the dispatcher. Each subcommand lives in tools/cmd-<name>.c and
 * receives argv starting at its own name, so its argv[0] is the command and
 * its exit status is the process's (0 ok, 1 failure, 2 bad usage). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vigil.h"

struct command {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
    {"serve", vigil_cmd_serve, "run a server; print who opened, died (and why), rejoined"},
    {"connect", vigil_cmd_connect, "stay connected; print RTTs, deaths, reconnects"},
    {"probe", vigil_cmd_probe, "handshake + N pings, like ping(8); exit 0 alive, 1 dead"},
    {"run", vigil_cmd_run,
     "run a program with kernel keepalive + TCP_USER_TIMEOUT on its TCP sockets"},
    {"idle-timeout", vigil_cmd_idle_timeout, "find a middlebox's idle timeout"},
    {"status", vigil_cmd_status, "one-screen summary of a server's metrics endpoint"},
    {"who", vigil_cmd_who, "presence of ids in Redis; exit 0 if all online"},
    {"watch", vigil_cmd_watch, "live presence events from every node (Redis)"},
    {"token", vigil_cmd_token, "mint or check a credential binding an id to a secret"},
    {NULL, NULL, NULL}};

static void usage(FILE *f) {
  fprintf(f, "usage: vigil COMMAND [ARGS...]\n"
             "       vigil COMMAND --help   (or: vigil help COMMAND)\n"
             "       vigil --version\n\n"
             "Tells you quickly and truthfully when the other end of a TCP connection\n"
             "is gone, and why.\n\ncommands:\n");
  for (const struct command *c = commands; c->name != NULL; c++)
    fprintf(f, "  %-13s %s\n", c->name, c->summary);
  fprintf(f, "\nexit status: 0 ok, 1 failure (dead, unreachable), 2 bad usage.\n"
             "Durations take a unit: 250ms, 3s, 2m, 1h. See docs/CLI.md.\n");
}

static int run(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return VIGIL_CLI_USAGE;
  }
  if (strcmp(argv[1], "help") == 0 && argc >= 3) {
    /* `vigil help CMD` is `vigil CMD --help`, word for word */
    char help_flag[] = "--help";
    char *sub[] = {argv[2], help_flag, NULL};
    for (const struct command *c = commands; c->name != NULL; c++)
      if (strcmp(argv[2], c->name) == 0)
        return c->fn(2, sub);
    return vigil_cli_usage(NULL, "no command '%s' (see vigil --help)", argv[2]);
  }
  if (vigil_cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return VIGIL_CLI_OK;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("vigil %s\n", vigil_version_string());
    return VIGIL_CLI_OK;
  }
  for (const struct command *c = commands; c->name != NULL; c++)
    if (strcmp(argv[1], c->name) == 0)
      return c->fn(argc - 1, argv + 1);
  if (argv[1][0] == '-')
    return vigil_cli_usage(NULL, "unknown option '%s' (see vigil --help)", argv[1]);
  return vigil_cli_usage(NULL, "unknown command '%s' (see vigil --help)", argv[1]);
}

int main(int argc, char **argv) {
  vigil_cli_ignore_sigpipe();
  return vigil_cli_out_exit(run(argc, argv));
}
