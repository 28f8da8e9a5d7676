/* Socket helpers for tests; see util-net.h. The platform differences
 * (Winsock start-up, closesocket, SOCKET vs int, error source) are kept
 * inside this file so test bodies stay portable. */
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef int util_socklen;
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef socklen_t util_socklen;
#endif

#include "keepalive-os.h"
#include "util-net.h"

int util_net_init(void) {
#ifdef _WIN32
  static int started;
  WSADATA wsa;
  if (!started) {
    int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (rc != 0)
      return rc == WSAVERNOTSUPPORTED ? VIGIL_ENOTSUP : VIGIL_ENOSYS;
    started = 1;
  }
#endif
  return 0;
}

int util_net_error(void) {
  return vigil__keepalive_os_last_error();
}

void util_net_close(vigil_os_socket sock) {
  if (sock == VIGIL_INVALID_SOCKET)
    return;
#ifdef _WIN32
  closesocket((SOCKET)sock);
#else
  close(sock);
#endif
}

static vigil_os_socket new_socket(int type) {
#ifdef _WIN32
  SOCKET s = socket(AF_INET, type, 0);
  return s == INVALID_SOCKET ? VIGIL_INVALID_SOCKET : (vigil_os_socket)s;
#else
  return socket(AF_INET, type, 0);
#endif
}

int util_net_udp_socket(vigil_os_socket *sock) {
  int err = util_net_init();
  *sock = VIGIL_INVALID_SOCKET;
  if (err != 0)
    return err;
  *sock = new_socket(SOCK_DGRAM);
  return *sock == VIGIL_INVALID_SOCKET ? util_net_error() : 0;
}

/* Listens on 127.0.0.1 with a kernel-chosen port, written to *addr. */
static int listen_loopback(vigil_os_socket *lsock, struct sockaddr_in *addr) {
  util_socklen len = (util_socklen)sizeof *addr;
  *lsock = new_socket(SOCK_STREAM);
  if (*lsock == VIGIL_INVALID_SOCKET)
    return util_net_error();
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr->sin_port = 0;
  if (bind(*lsock, (struct sockaddr *)addr, (util_socklen)sizeof *addr) != 0 ||
      listen(*lsock, 1) != 0 || getsockname(*lsock, (struct sockaddr *)addr, &len) != 0)
    return util_net_error();
  return 0;
}

int util_net_tcp_pair(vigil_os_socket *client, vigil_os_socket *server) {
  vigil_os_socket lsock = VIGIL_INVALID_SOCKET;
  struct sockaddr_in addr;
  int err;

  *client = VIGIL_INVALID_SOCKET;
  *server = VIGIL_INVALID_SOCKET;
  err = util_net_init();
  if (err == 0)
    err = listen_loopback(&lsock, &addr);
  if (err == 0) {
    *client = new_socket(SOCK_STREAM);
    if (*client == VIGIL_INVALID_SOCKET)
      err = util_net_error();
  }
  /* Loopback connect completes against the backlog before accept runs. */
  if (err == 0 && connect(*client, (struct sockaddr *)&addr, (util_socklen)sizeof addr) != 0)
    err = util_net_error();
  if (err == 0) {
#ifdef _WIN32
    SOCKET s = accept((SOCKET)lsock, NULL, NULL);
    *server = s == INVALID_SOCKET ? VIGIL_INVALID_SOCKET : (vigil_os_socket)s;
#else
    *server = accept(lsock, NULL, NULL);
#endif
    if (*server == VIGIL_INVALID_SOCKET)
      err = util_net_error();
  }
  util_net_close(lsock);
  if (err != 0) {
    util_net_close(*client);
    *client = VIGIL_INVALID_SOCKET;
  }
  return err;
}
