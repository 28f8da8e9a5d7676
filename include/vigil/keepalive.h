#ifndef VIGIL_KEEPALIVE_H
#define VIGIL_KEEPALIVE_H

/* Portable kernel TCP keepalive and user timeout.
 *
 * One call applies explicit values, or values derived from a detection
 * budget ("dead within D, tolerate N lost probes"), then reads back what the
 * OS took and reports, per option, applied / unsupported / failed. A missing
 * option never fails the connection. The derivation formula, what each OS
 * offers and what the kernel does with the values are in docs/KEEPALIVE.md
 * and at the top of src/keepalive.c.
 *
 * Units: times are milliseconds here. Keepalive idle and interval are whole
 * seconds in every kernel, so they are rounded UP (1500 ms -> 2 s; 1 ms ->
 * 1 s, never 0, which kernels read as "default"); the user timeout is exact
 * on Linux (TCP_USER_TIMEOUT is ms) and rounded up to seconds where the OS
 * counts seconds (Windows TCP_MAXRT, macOS TCP_RXT_CONNDROPTIME). */

#include <stddef.h>
#include <stdint.h>

#include "os.h"
#include "version.h"

/* A request. It can grow (docs/ABI.md): fill it with vigil_keepalive_init
 * (everything off), vigil_keepalive_from_budget, or the initialiser
 * VIGIL_KEEPALIVE_INIT, which set `size`; then change the fields. */
typedef struct vigil_keepalive {
  size_t size;              /* the struct's size as compiled (set by the above) */
  int enable;               /* SO_KEEPALIVE on (nonzero) or off (0); always applied. When 0,
                               idle / interval / count are ignored (NOT_REQUESTED) */
  uint32_t idle_ms;         /* idle time before the first probe (0: leave) */
  uint32_t interval_ms;     /* between unanswered probes (0: leave) */
  uint32_t count;           /* probes before giving up (0: leave) */
  uint32_t user_timeout_ms; /* TCP_USER_TIMEOUT / TCP_MAXRT (0: leave) */
} vigil_keepalive;

#define VIGIL_KEEPALIVE_INIT                                                                       \
  { sizeof(vigil_keepalive), 0, 0, 0, 0, 0 }

/* Everything 0 (SO_KEEPALIVE off, nothing else touched) and ka->size: a
 * macro, so that the size is the caller's sizeof. */
VIGIL_EXTERN void vigil_keepalive_init_sized(vigil_keepalive *ka, size_t size);
#define vigil_keepalive_init(ka) vigil_keepalive_init_sized((ka), sizeof *(ka))

typedef enum vigil_keepalive_status {
  VIGIL_KEEPALIVE_NOT_REQUESTED = 0,
  VIGIL_KEEPALIVE_APPLIED,     /* set, and read back equal (or set where no read-back exists:
                                  Windows SIO_KEEPALIVE_VALS, then applied = the value sent) */
  VIGIL_KEEPALIVE_UNSUPPORTED, /* this OS / version / socket type has no such option: absent
                                  from the headers, or getsockopt says ENOPROTOOPT, EOPNOTSUPP
                                  or EINVAL (e.g. TCP options on a UDP or AF_UNIX socket) */
  VIGIL_KEEPALIVE_FAILED       /* the OS refused the value (error = its code), or took another
                                  value than asked (error = VIGIL_ERANGE, applied = what it
                                  took), or the socket itself is bad (VIGIL_EBADF) */
} vigil_keepalive_status;

typedef enum vigil_keepalive_option {
  VIGIL_KEEPALIVE_OPT_ENABLE = 0,
  VIGIL_KEEPALIVE_OPT_IDLE,
  VIGIL_KEEPALIVE_OPT_INTERVAL,
  VIGIL_KEEPALIVE_OPT_COUNT,
  VIGIL_KEEPALIVE_OPT_USER_TIMEOUT,
  VIGIL_KEEPALIVE_OPT_COUNT_
} vigil_keepalive_option;

typedef struct vigil_keepalive_report {
  vigil_keepalive_status status[VIGIL_KEEPALIVE_OPT_COUNT_];
  uint32_t applied[VIGIL_KEEPALIVE_OPT_COUNT_]; /* read-back value, in ms for times */
  int error[VIGIL_KEEPALIVE_OPT_COUNT_];        /* VIGIL_E* when FAILED */
} vigil_keepalive_report;

/* Derives values from a budget: the kernel declares the peer dead at most
 * budget_ms after the last segment it received from it (up to kernel timer
 * slack), tolerating lost_probes unanswered probes; data left
 * unacknowledged that long also kills the connection. With
 * S = budget_ms / 1000 (whole seconds, rounded down):
 *   count = lost_probes + 1, interval = S / (count + 1) s,
 *   idle = S - count * interval s, user_timeout = S s,
 * so idle + count * interval == user_timeout. Sets enable = 1. On error *ka
 * is left untouched.
 * Errors: VIGIL_EINVAL (ka NULL; lost_probes > 126; S < lost_probes + 2,
 * i.e. the budget is too small for 1 s keepalive granularity). */
VIGIL_EXTERN int vigil_keepalive_from_budget_sized(vigil_keepalive *ka, size_t size,
                                                   uint32_t budget_ms, uint32_t lost_probes);
#define vigil_keepalive_from_budget(ka, budget_ms, lost_probes)                                    \
  vigil_keepalive_from_budget_sized((ka), sizeof *(ka), (budget_ms), (lost_probes))

/* Sizing for a lossy path (docs/KEEPALIVE.md, "Sizing for a lossy path").
 * A probe's round trip fails when the probe or its ACK is lost, with
 * q = 1 - (1 - loss)^2 for a loss rate `loss` per packet each way; `count`
 * consecutive failures abort a healthy idle connection; it starts at most
 * horizon_s / idle_s probe series (every answer restarts the idle wait), so
 * the expected number of false deaths of one connection over horizon_s is
 * at most
 *   (horizon_s / idle_s) * q^count.
 * The model assumes independent losses and answers that come within one
 * interval. Returns that figure, or -1 for loss outside [0, 1), idle_s 0 or
 * count 0. */
VIGIL_EXTERN double vigil_keepalive_false_deaths(double loss, uint32_t count, uint32_t idle_s,
                                                 uint32_t horizon_s);

/* The smallest probe count (1 ... 127) whose vigil_keepalive_false_deaths()
 * is at most max_false_deaths, written to *count; pass count - 1 as
 * vigil_keepalive_from_budget's lost_probes. vigil's stated bound is 0.001
 * over 24 h (VIGIL_KEEPALIVE_FALSE_DEATHS, VIGIL_KEEPALIVE_HORIZON_S): at
 * idle 1 s, 20% loss needs 18. On error *count is left untouched.
 * Errors: VIGIL_EINVAL (count NULL; loss outside [0, 1); idle_s 0;
 * max_false_deaths not > 0), VIGIL_ERANGE (127 probes, Linux's maximum, are
 * not enough: the path is too lossy for keepalive alone). */
VIGIL_EXTERN int vigil_keepalive_count_for_loss(double loss, uint32_t idle_s, uint32_t horizon_s,
                                                double max_false_deaths, uint32_t *count);

#define VIGIL_KEEPALIVE_FALSE_DEATHS 0.001 /* per connection over the horizon */
#define VIGIL_KEEPALIVE_HORIZON_S 86400u   /* 24 h */

/* Applies ka to sock: SO_KEEPALIVE, then each nonzero value, each read back
 * with getsockopt. Returns 0 when every requested option is APPLIED or
 * UNSUPPORTED, else the first FAILED option's error (in option order);
 * report (may be NULL) says what happened to each option and is always
 * fully written.
 * Errors: VIGIL_EINVAL (ka NULL or never initialised: no size; a value the
 * OS refused or that no int can carry), VIGIL_ENOTSUP (ka sets a field of a
 * newer vigil.h that this library lacks; docs/ABI.md), VIGIL_EBADF (not a socket), VIGIL_ERANGE
 * (the OS took a different value), or another VIGIL_E* the OS returned. */
VIGIL_EXTERN int vigil_keepalive_apply(vigil_os_socket sock, const vigil_keepalive *ka,
                                       vigil_keepalive_report *report);

/* "enable", "idle", "interval", "count", "user_timeout"; "unknown" for
 * anything else. Never NULL. */
VIGIL_EXTERN const char *vigil_keepalive_option_name(vigil_keepalive_option opt);
/* "not_requested", "applied", "unsupported", "failed"; "unknown" for
 * anything else. Never NULL. */
VIGIL_EXTERN const char *vigil_keepalive_status_name(vigil_keepalive_status st);

#endif
