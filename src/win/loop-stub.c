/* Placeholder Windows backend: keeps the mingw build linking until the IOCP
 * backend (src/win/, behind src/loop-internal.h) exists. Every loop fails
 * to initialise with VIGIL_ENOTSUP, so nothing below it is ever reached.
 * Delete this file when the IOCP backend lands. */
#include <winsock2.h>
#include <windows.h>

#include "../loop-internal.h"

vigil_backend vigil__plat_default_backend(void) {
  return VIGIL_BACKEND_IOCP;
}

int vigil__plat_init(vigil_loop *loop, vigil_backend backend) {
  (void)loop;
  (void)backend;
  return VIGIL_ENOTSUP;
}

void vigil__plat_close(vigil_loop *loop) {
  (void)loop;
}

const char *vigil__plat_name(const vigil_loop *loop) {
  (void)loop;
  return "none";
}

int vigil__plat_poll(vigil_loop *loop, int timeout_ms) {
  (void)loop;
  (void)timeout_ms;
  return VIGIL_ENOTSUP;
}

uint64_t vigil__plat_clock(void *arg, vigil_clock_id id) {
  (void)arg;
  (void)id;
  return (uint64_t)GetTickCount64() * 1000000u;
}

unsigned vigil__plat_if_index(const char *name) {
  (void)name;
  return 0;
}

void vigil__tcp_plat_init(vigil_tcp *tcp) {
  (void)tcp;
}

int vigil__tcp_listen(vigil_tcp *tcp, const struct sockaddr *addr, int addrlen, int backlog,
                      unsigned flags) {
  (void)tcp;
  (void)addr;
  (void)addrlen;
  (void)backlog;
  (void)flags;
  return VIGIL_ENOTSUP;
}

int vigil__tcp_accept(vigil_tcp *server, vigil_tcp *client) {
  (void)server;
  (void)client;
  return VIGIL_ENOTSUP;
}

int vigil__tcp_accept_drop(vigil_tcp *server) {
  (void)server;
  return VIGIL_ENOTSUP;
}

int vigil__tcp_connect(vigil_connect_req *req, const struct sockaddr *addr, int addrlen) {
  (void)req;
  (void)addr;
  (void)addrlen;
  return VIGIL_ENOTSUP;
}

int vigil__tcp_read_start(vigil_tcp *tcp) {
  (void)tcp;
  return VIGIL_ENOTSUP;
}

void vigil__tcp_read_stop(vigil_tcp *tcp) {
  (void)tcp;
}

void vigil__tcp_write(vigil_write_req *req) {
  vigil__write_done(req, VIGIL_ENOTSUP);
}

long vigil__tcp_try_write(vigil_tcp *tcp, const vigil_buf *bufs, unsigned nbufs) {
  (void)tcp;
  (void)bufs;
  (void)nbufs;
  return VIGIL_ENOTSUP;
}

void vigil__tcp_close(vigil_tcp *tcp, int reset) {
  (void)reset;
  vigil__tcp_closed(tcp);
}

int vigil__tcp_nodelay(vigil_tcp *tcp, int enable) {
  (void)tcp;
  (void)enable;
  return VIGIL_ENOTSUP;
}

int vigil__tcp_name(const vigil_tcp *tcp, int peer, struct sockaddr *name, int *len) {
  (void)tcp;
  (void)peer;
  (void)name;
  (void)len;
  return VIGIL_ENOTSUP;
}
