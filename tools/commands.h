/* The `vigil` subcommands. Each lives in tools/cmd-<name>.c and returns the
 * process exit status: 0 success, 1 failure (dead, unreachable, ...), 2 bad
 * usage. The dispatcher is tools/vigil.c. */
#ifndef VIGIL_TOOLS_COMMANDS_H
#define VIGIL_TOOLS_COMMANDS_H

int vigil_cmd_serve(int argc, char **argv);
int vigil_cmd_connect(int argc, char **argv);
int vigil_cmd_probe(int argc, char **argv);
int vigil_cmd_run(int argc, char **argv);
int vigil_cmd_idle_timeout(int argc, char **argv);
int vigil_cmd_status(int argc, char **argv);
int vigil_cmd_who(int argc, char **argv);
int vigil_cmd_watch(int argc, char **argv);
int vigil_cmd_token(int argc, char **argv);

#endif
