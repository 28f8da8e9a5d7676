#ifndef VIGIL_WIN_INTERNAL_H
#define VIGIL_WIN_INTERNAL_H

/* Windows platform internals shared by src/win/core.c (process start-up,
 * clocks, the completion port and its wait), src/win/error.c (error.h) and src/win/tcp.c (sockets
 * as overlapped operations). The design essay is at the top of tcp.c. */

#include <winsock2.h>
#include <ws2tcpip.h>

#include <mswsock.h> /* after winsock2.h: AcceptEx, ConnectEx, SO_UPDATE_* */
#include <windows.h>

#include "../loop-internal.h"
#include "error.h"

/* Handle flags private to this backend, above the portable ones of
 * loop-internal.h (which the portable layer preserves: it only ever sets
 * and clears its own bits). */
#define VIGIL__WIN_READ_PENDING 0x10000u /* the zero-byte WSARecv is out */

/* Starts Winsock (WSAStartup 2.2) and looks up the optional clock
 * functions, once per process; safe from any thread. Returns 0, or
 * VIGIL_ENOTSUP (no Winsock 2.2) or VIGIL_ENOSYS (Winsock failed). */
int vigil__win_init(void);

/* 1 when VIGIL_CLOCK_BOOTTIME is a distinct clock that counts suspended
 * time (QueryInterruptTimePrecise); 0 when it falls back to MONOTONIC. */
int vigil__win_has_boottime(void);

/* The loop's completion port (for associating sockets with it). */
HANDLE vigil__win_port(const vigil_loop *loop);

/* A closed listener's accept pool is waiting for its cancelled AcceptEx
 * packets (delta 1), or got the last one and is freed (delta -1). The
 * loop's close dequeues what is still due, so nothing leaks. */
void vigil__win_orphans(vigil_loop *loop, int delta);

/* One dequeued completion packet: runs the operation's completion. key is
 * the completion key tcp.c gave the socket, status the operation's
 * NTSTATUS, bytes what it transferred. */
void vigil__win_complete(ULONG_PTR key, OVERLAPPED *ov, long status, DWORD bytes);

/* The console control handler of src/win/signal.c: delivers a console
 * event to the vigil_signal handles that watch its signal; TRUE when one
 * did. Tests call it directly (a test cannot press Ctrl-C). */
BOOL vigil__win_console_event(DWORD type);

#endif
