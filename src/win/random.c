/* The OS's random source on Windows: BCryptGenRandom with the system's
 * preferred generator (Windows 7 and later; no algorithm handle to open or
 * keep). What it is for is said in src/unix/random.c. */
#include <winsock2.h>
#include <windows.h>

#include <bcrypt.h>

#include "internal.h"

int vigil_random(void *buf, size_t len) {
  unsigned char *p = buf;
  if (buf == NULL && len > 0)
    return VIGIL_EINVAL;
  while (len > 0) {
    ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
    if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
      return VIGIL_ENOSYS;
    p += n;
    len -= n;
  }
  return 0;
}
