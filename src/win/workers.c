/* Worker processes on Windows: none. Windows cannot spread one listening
 * port over processes (no SO_REUSEPORT) and has no fork, so a server runs
 * in one process there (docs/WINDOWS.md). */
#include "../workers.h"

int vigil_workers_run(const vigil_workers_config *cfg) {
  vigil_workers_config c;
  int rc = vigil__workers_config_read(&c, cfg);
  return rc != 0 ? rc : VIGIL_ENOTSUP;
}
