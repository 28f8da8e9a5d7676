/* Windows error codes to VIGIL_E*: the one table (src/win/error.c) that
 * every Windows file uses, the loop's backend and the keepalive code alike,
 * so the same failure gets the same code wherever it surfaced. Part of the
 * errors layer: it needs nothing from the loop. */
#ifndef VIGIL_WIN_ERROR_H
#define VIGIL_WIN_ERROR_H

/* A Win32 error (GetLastError), which includes every Winsock error
 * (WSAGetLastError), as a VIGIL_E* code. 0 stays 0; a code the table does
 * not know becomes VIGIL_EPROTO. */
int vigil__win_error(unsigned long code);

/* The final NTSTATUS an overlapped operation left in OVERLAPPED.Internal,
 * as a VIGIL_E* code (0 for success). Goes through RtlNtStatusToDosError,
 * as GetQueuedCompletionStatus does, so a reset is ERROR_NETNAME_DELETED
 * and an I/O timeout ERROR_SEM_TIMEOUT before vigil__win_error. */
int vigil__win_ntstatus(long status);

/* WSAGetLastError() as a VIGIL_E* code. */
int vigil__win_sock_error(void);

#endif
