#include "low.h"

int mid(void) {
  return low();
}
