#ifndef VIGIL_ABI_INTERNAL_H
#define VIGIL_ABI_INTERNAL_H

/* Option structs that can grow (docs/ABI.md).
 *
 * Every public option struct begins with `size_t size`: the size of the
 * struct as the caller was compiled, written by its _init macro (which
 * passes sizeof *(cfg) to the library's _init_sized). A program built
 * against an older vigil.h has a smaller struct; a newer library must then
 * write no byte past it and read no field it lacks. These two helpers are
 * the only places that touch a caller's option struct as a whole:
 *
 *   opts_init  writes this library's defaults into the caller's `size`
 *              bytes (the fields both versions have), zeroes the rest of a
 *              newer caller's struct, and stores the caller's size;
 *   opts_read  copies the caller's struct over a copy that already holds
 *              the defaults, so a field the caller's version lacks keeps
 *              its default; a newer caller's fields that this library does
 *              not know must be zero (their default), else VIGIL_ENOTSUP:
 *              the program asked for something this library cannot do.
 *
 * The library then works on its own full-size copy, never on the caller's
 * struct. A struct embedded in another (vigil_session_config in the server
 * config) is part of the outer layout: growing it is an ABI break. */

#include <stddef.h>
#include <string.h>

#include "vigil/errno.h"

static inline void vigil__opts_init(void *dst, size_t size, const void *defaults,
                                    size_t full_size) {
  if (dst == NULL || size < sizeof(size_t))
    return;
  memset(dst, 0, size);
  memcpy(dst, defaults, size < full_size ? size : full_size);
  memcpy(dst, &size, sizeof size);
}

/* No option struct will ever be this large: a size beyond it is an
 * uninitialised struct, refused before it is read. */
#define VIGIL__OPTS_MAX 65536u

/* out holds the defaults (full_size bytes, this library's layout) on entry.
 * Returns 0, VIGIL_EINVAL (src NULL, or its size field was never set: the
 * struct was not initialised with its _init), VIGIL_ENOTSUP (a newer
 * caller set a field this library does not have). */
static inline int vigil__opts_read(void *out, size_t full_size, const void *src) {
  const unsigned char *p = (const unsigned char *)src;
  size_t size, i;

  if (src == NULL)
    return VIGIL_EINVAL;
  memcpy(&size, src, sizeof size);
  if (size < sizeof(size_t) || size > VIGIL__OPTS_MAX)
    return VIGIL_EINVAL;
  for (i = full_size; i < size; i++)
    if (p[i] != 0)
      return VIGIL_ENOTSUP;
  memcpy(out, src, size < full_size ? size : full_size);
  memcpy(out, &full_size, sizeof full_size);
  return 0;
}

#endif
