/* Facts about the machine that the runtime sizes its defaults from. Part
 * of the loop layer, implemented by the platform's core.c. */
#ifndef VIGIL_SYSMEM_H
#define VIGIL_SYSMEM_H

#include <stddef.h>

/* Physical memory in bytes, 0 if the system does not say. */
size_t vigil__phys_memory(void);

#endif
