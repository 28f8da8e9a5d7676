/* `vigil serve`: placeholder until the runtime (server.c / client.c) lands. */
#include <stdio.h>

#include "commands.h"

int vigil_cmd_serve(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "vigil serve: not built yet\n");
  return 2;
}
