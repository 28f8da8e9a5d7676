/* Helpers for the runtime tests (test-server.c, test-client.c): a hand-
 * driven "raw" vigil peer on a plain socket (so a test can misbehave in
 * ways the library never would: go silent after the handshake, flood
 * pings, send an oversized frame, reset), child processes to SIGSTOP, and
 * a loop runner with a deadline.
 *
 * The raw socket and process helpers exist on POSIX; on Windows they
 * return VIGIL_ENOTSUP and the tests that need them skip. */
#ifndef VIGIL_TEST_UTIL_PROC_H
#define VIGIL_TEST_UTIL_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* Runs fn once per loop backend this platform has (epoll and poll on
 * Linux, IOCP on Windows), printing "[name on backend]" first. Returns 0,
 * fn's first failure, or 77 (skip, after saying why) when no backend ran
 * it; a backend on which fn returns 77 is passed over. */
int util_for_each_backend(int (*fn)(vigil_backend), const char *name);

/* Runs the loop until *flag becomes non-zero or ms pass. Returns 1 if the
 * flag was set, 0 on timeout. */
int util_run_until(vigil_loop *loop, const int *flag, uint32_t ms);
/* Runs the loop until *counter >= target or ms pass; 1 if reached. */
int util_run_until_n(vigil_loop *loop, const int *counter, int target, uint32_t ms);
/* Runs the loop for ms, whatever happens. */
void util_run_for(vigil_loop *loop, uint32_t ms);
/* Monotonic time in ns (the OS clock, not the loop's cached one). */
uint64_t util_now_ns(void);
/* How long this thread has waited, runnable, for a CPU since it started
 * (ns; Linux /proc/thread-self/schedstat, 0 where the OS does not say).
 * Timing tests add the growth of this figure over their window to their
 * upper bound: lateness the scheduler imposed on an overloaded machine is
 * not the library's, while lateness of our own (a timer armed late, a
 * verdict deferred) still fails the bound on an idle or a busy machine. */
uint64_t util_cpu_wait_ns(void);

/* Blocking TCP socket connected to ip:port (numeric). */
int util_raw_connect(const char *ip, uint16_t port, vigil_os_socket *out);
/* Listening socket on ip, port 0; *port gets the port. */
int util_raw_listen(const char *ip, uint16_t *port, vigil_os_socket *out);
/* The same with a chosen listen() backlog. */
int util_raw_listen_n(const char *ip, uint16_t *port, int backlog, vigil_os_socket *out);
/* Accepts within timeout_ms. */
int util_raw_accept(vigil_os_socket l, uint32_t timeout_ms, vigil_os_socket *out);
/* Sends all of p. Returns 0 or an error. */
int util_raw_send(vigil_os_socket s, const void *p, size_t n);
/* Receives up to n bytes within timeout_ms: count, 0 at EOF, VIGIL_EAGAIN
 * on timeout, or the error (VIGIL_ECONNRESET...). */
long util_raw_recv(vigil_os_socket s, void *p, size_t n, uint32_t timeout_ms);
/* The local port of a socket, 0 if unknown. */
uint16_t util_raw_local_port(vigil_os_socket s);
/* Moves this process into a new network namespace with loopback up (for
 * fault tests that must not touch the host's network). Returns 0, or
 * VIGIL_ENOTSUP / VIGIL_EPERM when that is not possible here. */
int util_netns_enter(void);
/* A cable cut on demand, for the causes that need the peer's kernel to be
 * silent too (heartbeat_timeout, user_timeout, keepalive_timeout). Inside
 * a private network namespace (util_netns_enter), util_blackhole_prepare
 * installs an nftables rule that drops every incoming packet carrying a
 * mark; util_blackhole_cut puts that mark on a socket (SO_MARK), so every
 * packet it sends, data or bare ACK, is lost. Cutting both ends of a
 * connection blackholes it both ways, in-process and at once: no shell
 * command runs between the test's decision and the cut.
 * util_blackhole_unavailable says why this cannot work here (not root, no
 * nft, not Linux), or NULL. */
const char *util_blackhole_unavailable(void);
int util_blackhole_prepare(void);
int util_blackhole_cut(vigil_os_socket s);
/* Runs a shell command; 0 when it exited 0. */
int util_sh(const char *cmd);
/* Close with FIN, or with RST (SO_LINGER 0). */
void util_raw_close(vigil_os_socket s);
void util_raw_reset(vigil_os_socket s);

/* Raw client handshake: sends HELLO(id, interval, timeout). */
int util_raw_hello(vigil_os_socket s, const char *id, uint32_t interval_ms, uint32_t timeout_ms);
/* Reads frames until one of `type` arrives (skipping others) within
 * timeout_ms; fills *f (payload copied into buf). Returns 0, VIGIL_EOF,
 * VIGIL_EAGAIN (timeout) or an error. */
int util_raw_expect(vigil_os_socket s, uint8_t type, uint32_t timeout_ms, vigil_frame *f,
                    uint8_t *buf, size_t cap);
/* Raw server side: reads the HELLO and answers WELCOME with these values. */
int util_raw_welcome(vigil_os_socket s, uint32_t interval_ms, uint32_t timeout_ms,
                     uint32_t timeout_wait_ms);

/* 1 where the build reads the kernel's TCP state for cause evidence
 * (VIGIL_HAVE_TCP_EVIDENCE: Linux's TCP_INFO; not in the generic POSIX
 * build), else 0. */
#if defined(VIGIL_HAVE_TCP_EVIDENCE)
#define UTIL_TCP_EVIDENCE 1
#else
#define UTIL_TCP_EVIDENCE 0
#endif

/* The cause a silent peer whose kernel still ACKs must get: peer_stalled
 * where the OS gives TCP evidence (always on Linux), else the heartbeat
 * verdict stands (docs/RUNTIME.md, "Causes from evidence"). */
vigil_cause util_stalled_cause(const vigil_death *d);

/* Child processes. fn runs in the child, whose exit status is fn's
 * return value. */
int util_proc_spawn(int (*fn)(void *arg), void *arg, long *pid);
int util_proc_stop(long pid);
int util_proc_cont(long pid);
/* SIGKILL (if still running) and reap; returns the exit status or -1. */
int util_proc_kill(long pid);
/* Waits for the child to exit within timeout_ms: its exit status, or -1. */
int util_proc_wait(long pid, uint32_t timeout_ms);

/* A recorder of runtime callbacks: pass util_rec_callbacks() as the
 * config's cb and the util_rec as user. Strings are copied. */
typedef struct util_rec {
  int opens, messages, rtts, deaths, rejects, unsent, reconnects, closed;
  int rejoin;
  int echo;         /* answer every message with the same bytes */
  vigil_conn *conn; /* the last opened connection (NULL at death) */
  char peer[VIGIL_ADDRSTRLEN], old_peer[VIGIL_ADDRSTRLEN], id[256];
  unsigned attempt;
  uint32_t interval_ms, timeout_ms;
  int ka_error; /* from the last on_open */
  vigil_keepalive ka;
  vigil_keepalive_report ka_report;
  vigil_death death;      /* the last death or reject */
  vigil_cause died_cause; /* the last on_death alone */
  uint16_t died_close_code;
  char detail[200], reason[128];
  uint64_t open_ns, death_ns;           /* util_now_ns() at the callbacks */
  uint64_t open_wait_ns, death_wait_ns; /* util_cpu_wait_ns() at the callbacks */
  uint8_t msg[256];
  size_t msg_len;
  size_t unsent_bytes, unsent_written;
  uint32_t delays[64];
  unsigned attempts[64];
  /* With `loop` set: the loop's time (vigil_loop_now_ns) at each
   * on_reconnect and on_reject. The loop's time, not the OS clock: the
   * retry timer counts its delay from the loop's time of the iteration
   * that announced it, which may be a little before the callback runs. */
  const vigil_loop *loop;
  uint64_t reconnect_ns[64];
  uint64_t reject_ns[64];
  int ndelays;
} util_rec;

void util_rec_init(util_rec *r);
vigil_conn_callbacks util_rec_callbacks(void);
void util_rec_on_reconnect(vigil_client *cli, unsigned attempt, uint32_t delay_ms, void *user);
void util_rec_on_client_closed(vigil_client *cli, void *user);
void util_rec_on_server_closed(vigil_server *srv, void *user);

#endif
