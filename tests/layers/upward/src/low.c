/* A low file that reaches up: the violation. */
#include "low.h"
#include "high.h"

int low(void) {
  return 1;
}
