#ifndef VIGIL_VERSION_H
#define VIGIL_VERSION_H

#define VIGIL_VERSION_MAJOR 0
#define VIGIL_VERSION_MINOR 1
#define VIGIL_VERSION_PATCH 0
#define VIGIL_VERSION_HEX                                                                          \
  ((VIGIL_VERSION_MAJOR << 16) | (VIGIL_VERSION_MINOR << 8) | VIGIL_VERSION_PATCH)

/* VIGIL_EXTERN marks the public ABI. The library is built with
 * -fvisibility=hidden, so anything not marked stays private to it. */
#if defined(_WIN32)
#if defined(VIGIL_BUILDING_SHARED)
#define VIGIL_EXTERN __declspec(dllexport)
#elif defined(VIGIL_SHARED)
#define VIGIL_EXTERN __declspec(dllimport)
#else
#define VIGIL_EXTERN
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define VIGIL_EXTERN __attribute__((visibility("default")))
#else
#define VIGIL_EXTERN
#endif

/* Version as "MAJOR.MINOR.PATCH". */
VIGIL_EXTERN const char *vigil_version_string(void);

/* The version of the library running, as VIGIL_VERSION_HEX: MAJOR << 16 |
 * MINOR << 8 | PATCH (0.1.0 is 0x000100), so a program can compare it with
 * the VIGIL_VERSION_HEX it was compiled against (docs/ABI.md). */
VIGIL_EXTERN unsigned vigil_version(void);

#endif
