#ifndef VIGIL_KEEPALIVE_H
#define VIGIL_KEEPALIVE_H

/* Portable kernel TCP keepalive and user timeout.
 *
 * One call applies explicit values, or values derived from a detection
 * budget ("dead within D, tolerate N lost probes"), then reads back what the
 * OS took and reports, per option, applied / unsupported / failed. A missing
 * option never fails the connection. The derivation formula is in
 * docs/ARCHITECTURE.md ("Kernel keepalive") and at the top of
 * src/keepalive.c. */

#include <stdint.h>

#include "os.h"
#include "version.h"

typedef struct vigil_keepalive {
  int enable;                /* SO_KEEPALIVE on (1) or off (0) */
  uint32_t idle_ms;          /* idle time before the first probe (0: leave) */
  uint32_t interval_ms;      /* between unanswered probes (0: leave) */
  uint32_t count;            /* probes before giving up (0: leave) */
  uint32_t user_timeout_ms;  /* TCP_USER_TIMEOUT / TCP_MAXRT (0: leave) */
} vigil_keepalive;

typedef enum vigil_keepalive_status {
  VIGIL_KEEPALIVE_NOT_REQUESTED = 0,
  VIGIL_KEEPALIVE_APPLIED,     /* set, and read back equal (or set where no read-back exists) */
  VIGIL_KEEPALIVE_UNSUPPORTED, /* this OS / version has no such option */
  VIGIL_KEEPALIVE_FAILED       /* the OS refused the value */
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

/* Derives values from a budget: the peer is declared dead by the kernel at
 * most budget_ms after the connection goes silent, tolerating lost_probes
 * unanswered probes before the last. Returns 0 or VIGIL_EINVAL (budget too
 * small to express at the OS's 1 s keepalive granularity). */
VIGIL_EXTERN int vigil_keepalive_from_budget(vigil_keepalive *ka, uint32_t budget_ms,
                                             uint32_t lost_probes);

/* Applies ka to sock. Returns 0 when every requested option is APPLIED or
 * UNSUPPORTED, else the first failure's error; report (may be NULL) says
 * what happened to each option. */
VIGIL_EXTERN int vigil_keepalive_apply(vigil_os_socket sock, const vigil_keepalive *ka,
                                       vigil_keepalive_report *report);

VIGIL_EXTERN const char *vigil_keepalive_option_name(vigil_keepalive_option opt);
VIGIL_EXTERN const char *vigil_keepalive_status_name(vigil_keepalive_status st);

#endif
