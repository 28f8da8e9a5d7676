#ifndef HIGH_H
#define HIGH_H
#include "low.h"
int high(void);
#endif
