/* The server's connection rate limit per source address: a token bucket
 * per address in a bounded table. The design essay is at the top of
 * src/ratelimit.c. Sans-I/O: time is a parameter. */
#ifndef VIGIL__RATELIMIT_H
#define VIGIL__RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define VIGIL__RATE_KEY_MAX 17 /* vigil__conn_addr_key: family + 16 bytes */

typedef struct {
  uint64_t tat_ns; /* theoretical arrival time; <= now: the bucket is full */
  uint8_t keylen;  /* 0: never used */
  uint8_t key[VIGIL__RATE_KEY_MAX];
} vigil__rate_slot;

typedef struct {
  vigil__rate_slot *slots;
  size_t mask;           /* number of slots - 1 (a power of two) */
  uint64_t interval_ns;  /* one token every interval */
  uint64_t tolerance_ns; /* (burst - 1) x interval */
  uint32_t seed;
} vigil__rate;

enum {
  VIGIL__RATE_OK = 0,      /* admitted, one token taken */
  VIGIL__RATE_LIMITED = 1, /* this address is over its rate */
  VIGIL__RATE_FULL = 2     /* no room to track one more address */
};

/* Probing stops after this many slots: a lookup costs at most this many
 * key compares, and a table whose window is full of limited addresses
 * answers VIGIL__RATE_FULL. */
#define VIGIL__RATE_PROBE 16

/* per_minute >= 1 connections per minute, burst >= 1, sources >= 1 (the
 * table holds the next power of two at or above it, at least
 * VIGIL__RATE_PROBE). Returns 0, VIGIL_EINVAL or VIGIL_ENOMEM. */
int vigil__rate_init(vigil__rate *r, uint32_t per_minute, uint32_t burst, uint32_t sources,
                     uint32_t seed);
void vigil__rate_free(vigil__rate *r);
/* Takes one token for the address key[0..n), n >= 1, at now_ns. Returns a
 * VIGIL__RATE_* value; for LIMITED and FULL *wait_ns is how long until
 * the answer could change (never 0). */
int vigil__rate_take(vigil__rate *r, const uint8_t *key, size_t n, uint64_t now_ns,
                     uint64_t *wait_ns);

#endif
