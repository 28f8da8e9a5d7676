/* `vigil probe`: placeholder until the runtime (server.c / client.c) lands. */
#include <stdio.h>

#include "commands.h"

int vigil_cmd_probe(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "vigil probe: not built yet\n");
  return 2;
}
