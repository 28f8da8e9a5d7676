/* Worker processes: the options every platform shares. The supervisor
 * itself is platform code (src/unix/workers.c forks and waits; Windows has
 * neither SO_REUSEPORT nor fork, src/win/workers.c says so). */
#include <string.h>

#include "vigil/workers.h"
#include "abi.h"
#include "workers.h"

static void config_defaults(vigil_workers_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->workers = 1;
  cfg->restart_base_ms = 100;
  cfg->restart_max_ms = 5000;
  cfg->stable_ms = 10000;
  cfg->max_restarts = 8;
  cfg->stop_timeout_ms = 10000;
}

void vigil_workers_config_init_sized(vigil_workers_config *cfg, size_t size) {
  vigil_workers_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

int vigil__workers_config_read(vigil_workers_config *out, const vigil_workers_config *in) {
  int rc;
  config_defaults(out);
  if ((rc = vigil__opts_read(out, sizeof *out, in)) != 0)
    return rc;
  if (out->run == NULL || out->workers == 0 || out->workers > VIGIL__MAX_WORKERS)
    return VIGIL_EINVAL;
  if (out->restart_base_ms == 0)
    out->restart_base_ms = 1;
  if (out->restart_max_ms < out->restart_base_ms)
    out->restart_max_ms = out->restart_base_ms;
  return 0;
}
