#ifndef VIGIL_ERRNO_H
#define VIGIL_ERRNO_H

#include <errno.h>

#include "version.h"

/* Every vigil function that can fail returns 0 (or a count) on success and a
 * negative VIGIL_E* code on failure. Where the platform has an errno of the
 * same meaning, the code is exactly -errno, so a caller on POSIX can compare
 * against -ECONNRESET if it prefers. Where it does not (Windows lacks some,
 * and vigil adds its own protocol errors), the code comes from a private
 * range that no errno reaches.
 *
 * VIGIL__E(name, fallback) picks -name when the platform defines it. */
#if defined(_WIN32)
/* mingw-w64 defines many POSIX names with values that disagree with what
 * Winsock reports; use the private range for all of them so one table maps
 * WSA errors without collisions. */
#define VIGIL__E(name, fallback) (fallback)
#else
#define VIGIL__E(name, fallback) (-(name))
#endif

/* X(name, value, message). Keep messages short, lower case, and specific:
 * they end up in logs and in `vigil` command output. */
#define VIGIL_ERRNO_MAP(X)                                                                         \
  X(EAGAIN, VIGIL__E(EAGAIN, -3001), "resource temporarily unavailable")                           \
  X(EINVAL, VIGIL__E(EINVAL, -3002), "invalid argument")                                           \
  X(ENOMEM, VIGIL__E(ENOMEM, -3003), "out of memory")                                              \
  X(ENOBUFS, VIGIL__E(ENOBUFS, -3004), "no buffer space available")                                \
  X(EMSGSIZE, VIGIL__E(EMSGSIZE, -3005), "message too long")                                       \
  X(ECONNRESET, VIGIL__E(ECONNRESET, -3006), "connection reset by peer")                           \
  X(ECONNREFUSED, VIGIL__E(ECONNREFUSED, -3007), "connection refused")                             \
  X(ECONNABORTED, VIGIL__E(ECONNABORTED, -3008), "connection aborted")                             \
  X(ETIMEDOUT, VIGIL__E(ETIMEDOUT, -3009), "connection timed out")                                 \
  X(EHOSTUNREACH, VIGIL__E(EHOSTUNREACH, -3010), "host is unreachable")                            \
  X(ENETUNREACH, VIGIL__E(ENETUNREACH, -3011), "network is unreachable")                           \
  X(ENETDOWN, VIGIL__E(ENETDOWN, -3012), "network is down")                                        \
  X(EPIPE, VIGIL__E(EPIPE, -3013), "broken pipe")                                                  \
  X(EADDRINUSE, VIGIL__E(EADDRINUSE, -3014), "address already in use")                             \
  X(EADDRNOTAVAIL, VIGIL__E(EADDRNOTAVAIL, -3015), "address not available")                        \
  X(EAFNOSUPPORT, VIGIL__E(EAFNOSUPPORT, -3016), "address family not supported")                   \
  X(EMFILE, VIGIL__E(EMFILE, -3017), "too many open files")                                        \
  X(ENFILE, VIGIL__E(ENFILE, -3018), "file table overflow")                                        \
  X(ENOTSUP, VIGIL__E(ENOTSUP, -3019), "operation not supported")                                  \
  X(ENOPROTOOPT, VIGIL__E(ENOPROTOOPT, -3020), "protocol option not available")                    \
  X(EPROTO, VIGIL__E(EPROTO, -3021), "protocol error")                                             \
  X(EBADF, VIGIL__E(EBADF, -3022), "bad file descriptor")                                          \
  X(ENOTCONN, VIGIL__E(ENOTCONN, -3023), "socket is not connected")                                \
  X(EALREADY, VIGIL__E(EALREADY, -3024), "operation already in progress")                          \
  X(EINPROGRESS, VIGIL__E(EINPROGRESS, -3025), "operation in progress")                            \
  X(EINTR, VIGIL__E(EINTR, -3026), "interrupted system call")                                      \
  X(ECANCELED, VIGIL__E(ECANCELED, -3027), "operation canceled")                                   \
  X(EACCES, VIGIL__E(EACCES, -3028), "permission denied")                                          \
  X(EPERM, VIGIL__E(EPERM, -3029), "operation not permitted")                                      \
  X(ENOENT, VIGIL__E(ENOENT, -3030), "no such file or directory")                                  \
  X(ENOSYS, VIGIL__E(ENOSYS, -3031), "function not implemented")                                   \
  X(EBUSY, VIGIL__E(EBUSY, -3032), "resource busy")                                                \
  X(EEXIST, VIGIL__E(EEXIST, -3033), "already exists")                                             \
  X(ERANGE, VIGIL__E(ERANGE, -3034), "value out of range")                                         \
  X(EOF, -4095, "end of file")                                                                     \
  X(ENEEDMORE, -4001, "need more bytes")                                                           \
  X(EBADTYPE, -4002, "unknown frame type")                                                         \
  X(EBADVARINT, -4003, "malformed varint")                                                         \
  X(EFRAMESIZE, -4004, "frame larger than allowed")                                                \
  X(EBADMAGIC, -4005, "bad handshake magic")                                                       \
  X(EVERSION, -4006, "unsupported protocol version")                                               \
  X(EBADID, -4007, "peer id is not valid UTF-8 of 1 to 255 bytes")                                 \
  X(EBADFIELD, -4008, "field value out of range")                                                  \
  X(ETRAILING, -4009, "frame has bytes after its last field")                                      \
  X(EUNEXPECTED, -4010, "frame not allowed in this state")                                         \
  X(EMSGTOOBIG, -4011, "message larger than negotiated maximum")                                   \
  X(ECLOSED, -4012, "session is closed")                                                           \
  X(EQUEUEFULL, -4013, "outbound queue full")                                                      \
  X(EPOLICY, -4014, "closed by policy")                                                            \
  X(ENOSPACE, -4015, "output buffer too small")                                                    \
  X(EDEAD, -4016, "peer declared dead")                                                            \
  X(EUSAGE, -4017, "bad usage")                                                                    \
  X(EWORKER, -4018, "a worker process kept dying; its supervisor gave up")                         \
  X(EAUTH, -4019, "credential refused")                                                            \
  X(EEXPIRED, -4020, "credential expired")                                                         \
  X(EBADCRED, -4021, "HELLO credential length is 0 or does not fit")

typedef enum vigil_errno {
#define VIGIL__ERRNO_ENUM(name, value, msg) VIGIL_##name = (value),
  VIGIL_ERRNO_MAP(VIGIL__ERRNO_ENUM)
#undef VIGIL__ERRNO_ENUM
      VIGIL_ERRNO_MAX__ = -5000
} vigil_errno;

/* Causes of death. Every closed connection carries exactly one. The names
 * (vigil_cause_name) are a contract: they appear in `vigil --json` output. */
#define VIGIL_CAUSE_MAP(X)                                                                         \
  X(NONE, "none")                                                                                  \
  X(CLOSED, "closed")                                                                              \
  X(RESET, "reset")                                                                                \
  X(HEARTBEAT_TIMEOUT, "heartbeat_timeout")                                                        \
  X(PEER_STALLED, "peer_stalled")                                                                  \
  X(KEEPALIVE_TIMEOUT, "keepalive_timeout")                                                        \
  X(USER_TIMEOUT, "user_timeout")                                                                  \
  X(UNREACHABLE, "unreachable")                                                                    \
  X(PROTOCOL_ERROR, "protocol_error")                                                              \
  X(POLICY, "policy")                                                                              \
  X(LOCAL, "local")

typedef enum vigil_cause {
#define VIGIL__CAUSE_ENUM(name, str) VIGIL_CAUSE_##name,
  VIGIL_CAUSE_MAP(VIGIL__CAUSE_ENUM)
#undef VIGIL__CAUSE_ENUM
      VIGIL_CAUSE_COUNT
} vigil_cause;

/* Text for a VIGIL_E* code (or any negative errno), never NULL. */
VIGIL_EXTERN const char *vigil_strerror(int err);
/* Symbolic name of a VIGIL_E* code ("ECONNRESET"), never NULL. */
VIGIL_EXTERN const char *vigil_err_name(int err);
/* The contract name of a cause ("heartbeat_timeout"), never NULL. */
VIGIL_EXTERN const char *vigil_cause_name(vigil_cause cause);

#endif
