/* Host name resolution off the loop thread, and the order in which the
 * client tries the addresses (src/resolve.c). Internal to the runtime. */
#ifndef VIGIL_RESOLVE_H
#define VIGIL_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* Addresses kept from one lookup (the rest are dropped). */
#define VIGIL__RESOLVE_MAX_ADDRS 16
/* Worker threads, process-wide. */
#define VIGIL__RESOLVE_THREADS 4
/* Lookups queued or running at once, process-wide (VIGIL_EBUSY beyond). */
#define VIGIL__RESOLVE_MAX_PENDING 64

typedef struct vigil__lookup vigil__lookup;

/* The result, on the loop thread: status 0 with n >= 1 addresses (port 0),
 * or a negative VIGIL_E* (VIGIL_ENOENT: no such name) with n = 0. */
typedef void (*vigil__lookup_cb)(void *arg, int status, const struct sockaddr_storage *addrs,
                                 size_t n);

/* Resolves host with fn(fn_arg, ...) (NULL: vigil_resolve_os) on a worker
 * thread; cb(arg, ...) runs on loop's thread, from the loop, never from
 * this call. Until then the lookup keeps the loop alive. Returns 0, or
 * VIGIL_EBUSY (VIGIL__RESOLVE_MAX_PENDING lookups already in flight),
 * VIGIL_EAGAIN (no worker thread could be started), VIGIL_ENOMEM,
 * VIGIL_EINVAL. */
int vigil__lookup_start(vigil__lookup **out, vigil_loop *loop, const char *host,
                        vigil_resolve_fn fn, void *fn_arg, vigil__lookup_cb cb, void *arg);

/* Gives up on a lookup: cb will not run and nothing of the caller is
 * touched when the worker finishes (a lookup already running finishes on
 * its thread and its result is dropped). From the loop's thread only. */
void vigil__lookup_cancel(vigil__lookup *l);

/* A numeric IPv4 or IPv6 address (no lookup, never blocks) into *out, port
 * 0. Returns 0, or VIGIL_EINVAL when host is not one. */
int vigil__resolve_numeric(const char *host, struct sockaddr_storage *out);

/* RFC 8305 section 4 order, in place: duplicates and families other than
 * IPv4 and IPv6 dropped, then IPv6 and IPv4 interleaved starting with
 * IPv6, each family keeping the resolver's order. Returns the new count. */
size_t vigil__resolve_order(struct sockaddr_storage *addrs, size_t n);

/* Test hook: sets the cap on lookups in flight (0: the default) and
 * returns the previous one. */
unsigned vigil__resolve_set_limit(unsigned max);

#endif
