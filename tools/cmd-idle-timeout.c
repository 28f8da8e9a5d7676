/* Placeholder for `vigil idle-timeout`, so the vigil command links before the
 * fault-suite engineer writes the real one (they own this file and will
 * replace it whole). */
#include <stdio.h>

#include "commands.h"

int vigil_cmd_idle_timeout(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "vigil idle-timeout: not built yet\n");
  return 2;
}
