#include "high.h"
#include "low.h"

int high(void) {
  return low();
}
