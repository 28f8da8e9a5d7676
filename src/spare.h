/* The spare descriptor of the EMFILE trick (redis, libev): the server holds
 * one while all is well; when accept fails with EMFILE or ENFILE it closes
 * the spare to make room, accepts and drops the waiting connection
 * (vigil_tcp_accept_drop), then reopens the spare. Without it a listener
 * whose backlog holds a connection the process cannot take stays readable
 * forever and the loop spins.
 *
 * Part of the loop layer, implemented by the platform's tcp.c:
 * src/unix/tcp.c opens /dev/null; src/win/tcp.c needs none (IOCP drops a
 * failed accept itself) and returns VIGIL_INVALID_SOCKET. */
#ifndef VIGIL_SPARE_H
#define VIGIL_SPARE_H

#include "vigil/os.h"

/* A spare descriptor, or VIGIL_INVALID_SOCKET (none needed, or none left). */
vigil_os_socket vigil__spare_open(void);
/* Closes a spare; harmless on VIGIL_INVALID_SOCKET. */
void vigil__spare_close(vigil_os_socket fd);

#endif
