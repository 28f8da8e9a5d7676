#ifndef VIGIL_OS_H
#define VIGIL_OS_H

#include <stdint.h>

/* The platform's socket handle: an int descriptor on POSIX, a SOCKET on
 * Windows (kept as uintptr_t here so this header needs no winsock2.h). */
#if defined(_WIN32)
typedef uintptr_t vigil_os_socket;
#define VIGIL_INVALID_SOCKET (~(uintptr_t)0)
#else
typedef int vigil_os_socket;
#define VIGIL_INVALID_SOCKET (-1)
#endif

#endif
