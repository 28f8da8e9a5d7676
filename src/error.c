/* Error codes and cause names: both tables come from the X-macros in
 * include/vigil/errno.h so a new code is one line there. */
#include <stdio.h>

#include "vigil/errno.h"
#include "vigil/version.h"

const char *vigil_strerror(int err) {
  switch (err) {
#define VIGIL__STRERROR(name, value, msg)                                                          \
  case VIGIL_##name:                                                                               \
    return msg;
    VIGIL_ERRNO_MAP(VIGIL__STRERROR)
#undef VIGIL__STRERROR
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *vigil_err_name(int err) {
  switch (err) {
#define VIGIL__ERRNAME(name, value, msg)                                                           \
  case VIGIL_##name:                                                                               \
    return #name;
    VIGIL_ERRNO_MAP(VIGIL__ERRNAME)
#undef VIGIL__ERRNAME
  case 0:
    return "OK";
  default:
    return "EUNKNOWN";
  }
}

const char *vigil_cause_name(vigil_cause cause) {
  static const char *const names[] = {
#define VIGIL__CAUSE_NAME(name, str) str,
      VIGIL_CAUSE_MAP(VIGIL__CAUSE_NAME)
#undef VIGIL__CAUSE_NAME
  };
  if ((unsigned)cause >= (unsigned)VIGIL_CAUSE_COUNT)
    return "unknown";
  return names[cause];
}

unsigned vigil_version(void) {
  return VIGIL_VERSION_HEX;
}

const char *vigil_version_string(void) {
#define VIGIL__STR2(x) #x
#define VIGIL__STR(x) VIGIL__STR2(x)
  return VIGIL__STR(VIGIL_VERSION_MAJOR) "." VIGIL__STR(VIGIL_VERSION_MINOR) "." VIGIL__STR(
      VIGIL_VERSION_PATCH);
}
