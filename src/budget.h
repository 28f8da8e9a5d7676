/* The server's memory budget: one account for the bytes every connection
 * holds in reassembly buffers, outbound queues and pending writes. The
 * design essay is at the top of src/budget.c. */
#ifndef VIGIL__BUDGET_H
#define VIGIL__BUDGET_H

#include <stddef.h>

#include "conn.h"

/* Charges n bytes to c before they are allocated. Returns 0, or
 * VIGIL_EPOLICY when c would pass its share of a budget that is short: c
 * has then been closed (CLOSE POLICY "memory budget exceeded", cause
 * policy) and nothing was charged. Making room for a connection within
 * its share closes the greediest connections above theirs. */
int vigil__budget_charge(vigil_conn *c, size_t n);
/* Returns n bytes charged to c (freed, or never allocated after all). */
void vigil__budget_release(vigil_conn *c, size_t n);

#endif
