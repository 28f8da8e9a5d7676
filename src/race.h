/* Connection racing for the client: RFC 8305 Happy Eyeballs over the
 * addresses of one host (src/race.c). Internal to the runtime. */
#ifndef VIGIL_RACE_H
#define VIGIL_RACE_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

typedef struct vigil__race vigil__race;

/* The race is over. winner: a connection of the owner whose TCP connect
 * succeeded (phase CONNECTING, no session yet), and every other attempt is
 * closed. Or winner NULL: every address failed, or the deadline passed
 * (err VIGIL_ETIMEDOUT); err and last are the last attempt's error and
 * address. The race is freed after this callback returns. */
typedef void (*vigil__race_cb)(void *arg, vigil_conn *winner, int err, const struct sockaddr *last);

/* Races TCP connects to addrs[0..n) (tried in that order, port set to
 * `port`): a new attempt starts delay_ms after the previous one unless
 * that one connected, and at once when it failed; the first to connect
 * wins. At loop tick deadline_ms every attempt still running is given up.
 * Each connect started adds one to *connects. cb runs from the loop, never
 * from this call. Returns 0, or VIGIL_ENOMEM, VIGIL_EINVAL (n == 0). */
int vigil__race_start(vigil__race **out, vigil__owner *o, const struct sockaddr_storage *addrs,
                      size_t n, uint16_t port, uint32_t delay_ms, uint64_t deadline_ms,
                      uint64_t *connects, vigil__race_cb cb, void *arg);

/* Ends the race without a callback: every attempt is closed. */
void vigil__race_cancel(vigil__race *r);

#endif
