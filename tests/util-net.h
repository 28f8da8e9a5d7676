/* Socket helpers shared by the test programs, the same on POSIX and
 * Windows (Winsock), so a test body needs no #ifdef to get a connected
 * TCP pair. Errors are VIGIL_E* codes, as everywhere in vigil. */
#ifndef VIGIL_TEST_UTIL_NET_H
#define VIGIL_TEST_UTIL_NET_H

#include "vigil.h"

/* Starts Winsock once per process (no-op on POSIX). Returns 0 or a
 * VIGIL_E* code. Every other helper calls it, so tests rarely need to. */
int util_net_init(void);

/* A connected TCP pair on loopback: listens on 127.0.0.1 port 0, connects,
 * accepts, closes the listener. Both sockets are blocking. Returns 0 or a
 * VIGIL_E* code (then both are VIGIL_INVALID_SOCKET). */
int util_net_tcp_pair(vigil_os_socket *client, vigil_os_socket *server);

/* An unconnected UDP socket (AF_INET). Returns 0 or a VIGIL_E* code. */
int util_net_udp_socket(vigil_os_socket *sock);

/* Closes sock; VIGIL_INVALID_SOCKET is ignored. */
void util_net_close(vigil_os_socket sock);

/* The calling thread's last socket error (errno / WSAGetLastError) as a
 * VIGIL_E* code. */
int util_net_error(void);

#endif
