#ifndef VIGIL_LOOP_INTERNAL_H
#define VIGIL_LOOP_INTERNAL_H

/* The seam between the portable loop (src/loop.c) and a platform backend
 * (src/unix/: epoll and poll behind one readiness-to-completion layer;
 * src/win/: IOCP). The build links exactly one platform.
 *
 * The portable layer validates arguments, keeps the handle flags and the
 * loop's counters, queues write requests on handle->write_queue, runs the
 * phases (clock, stall check, wheel, defers, completions) and calls user
 * completion callbacks for writes, connects and closes. The platform starts
 * operations and reports their completion:
 *
 *   portable -> platform                 platform -> portable
 *   vigil__tcp_listen                    tcp->on.connection(server, status)
 *   vigil__tcp_accept / accept_drop        (directly, from vigil__plat_poll)
 *   vigil__tcp_connect                   vigil__connect_done(req, status)
 *   vigil__tcp_read_start / read_stop    tcp->alloc_cb / tcp->on.read
 *                                          (directly, via vigil__read_cb)
 *   vigil__tcp_write (req queued)        vigil__write_done(req, status)
 *   vigil__tcp_close                     vigil__write_done(.., ECANCELED),
 *                                        vigil__connect_done(.., ECANCELED),
 *                                        then vigil__tcp_closed(tcp) once no
 *                                        operation of the handle is pending
 *
 * Completions reported with vigil__*_done are queued and their callbacks
 * run in phase 6, never from inside the call that started the operation.
 * Read and accept callbacks run from vigil__plat_poll (phase 3), after
 * which the platform must re-check the handle's flags: a callback may have
 * stopped reading or closed the handle.
 *
 * A completion-based backend (IOCP) maps naturally: listen posts AcceptEx
 * operations, read_start posts a zero-byte WSARecv whose completion means
 * "readable", write posts WSASend with req->bufs, connect uses ConnectEx,
 * and close cancels (CancelIoEx / closesocket) and calls vigil__tcp_closed
 * when the last OVERLAPPED of the handle came back. */

#include "queue.h"
#include "vigil/errno.h"
#include "vigil/loop.h"

/* Handle flags (tcp->flags). */
#define VIGIL__TCP_LISTENING 0x01u
#define VIGIL__TCP_READING 0x02u
#define VIGIL__TCP_CONNECTING 0x04u
#define VIGIL__TCP_CONNECTED 0x08u /* a stream: accepted or connected */
#define VIGIL__TCP_CLOSING 0x10u   /* vigil_tcp_close called */
#define VIGIL__TCP_CLOSED 0x20u    /* close callback done */
#define VIGIL__TCP_WATCH 0x40u     /* a vigil_fd_watch: the descriptor is not ours */
#define VIGIL__TCP_WATCH_R 0x80u   /* watch: wants readability */
#define VIGIL__TCP_WATCH_W 0x100u  /* watch: wants writability */

#define VIGIL__REQ_WRITE 1u
#define VIGIL__REQ_CONNECT 2u

/* Size suggested to alloc_cb, and how many reads one readiness event may
 * do before the loop moves on (fairness between busy connections). */
#define VIGIL__READ_SUGGEST 65536u
#define VIGIL__READS_PER_EVENT 32
/* Accepts per readiness event, for the same reason. */
#define VIGIL__ACCEPTS_PER_EVENT 128

/* ---- platform -> portable ------------------------------------------------- */

/* Call from vigil__plat_poll once the wait has returned (also on EINTR or
 * timeout) and before dispatching anything: it reads the clock, so read and
 * accept callbacks see the time the data arrived rather than the time the
 * wait began (a stale `now` there would date a frame up to one whole wait
 * too early, and a verdict could then come early), and it runs the stall
 * check. Calling it more than once per wait is harmless. If a platform never
 * calls it, the loop calls it after vigil__plat_poll returns. */
void vigil__loop_awake(vigil_loop *loop);

/* The wakeup (vigil__plat_wake) fired and the platform drained it: runs
 * the pending async callbacks and the posted calls (src/async.c). Call it
 * from vigil__plat_poll, in phase 3. */
void vigil__loop_wakeup(vigil_loop *loop);

/* Queue a completion; callbacks run in phase 6. */
void vigil__write_done(vigil_write_req *req, int status);
void vigil__connect_done(vigil_connect_req *req, int status);
/* Every operation of tcp has completed after vigil__tcp_close: its close
 * callback may run (phase 6). Call exactly once per close. */
void vigil__tcp_closed(vigil_tcp *tcp);
/* The written byte count of a write request: handle->write_queue_size
 * shrinks by n (the platform calls this as bytes go out). */
void vigil__write_progress(vigil_write_req *req, size_t n);

/* ---- portable -> platform ------------------------------------------------- */

/* The backend this platform picks for VIGIL_BACKEND_DEFAULT when the
 * environment names none. */
vigil_backend vigil__plat_default_backend(void);
/* Sets up loop->plat / loop->plat_ops for `backend` (never DEFAULT).
 * Returns 0, VIGIL_ENOTSUP (not on this platform) or an OS error. */
int vigil__plat_init(vigil_loop *loop, vigil_backend backend);
void vigil__plat_close(vigil_loop *loop);
/* Makes the loop's wait return (now, or at once if it is not waiting) and
 * vigil__plat_poll call vigil__loop_wakeup. Any thread; async-signal-safe
 * on POSIX (one write(2), errno preserved). Several calls before the
 * wait returns may give one vigil__loop_wakeup. */
void vigil__plat_wake(vigil_loop *loop);
const char *vigil__plat_name(const vigil_loop *loop);
/* Waits up to timeout_ms (-1: forever, 0: not at all) and runs the ready
 * I/O. Returns 0, or a negative error if waiting itself failed (EINTR is
 * not an error: return 0). */
int vigil__plat_poll(vigil_loop *loop, int timeout_ms);
/* The OS clocks (the default vigil_clock_fn). BOOTTIME falls back to
 * MONOTONIC where the OS has no such clock. */
uint64_t vigil__plat_clock(void *arg, vigil_clock_id id);
/* Interface index for an IPv6 scope name ("eth0"), 0 if unknown. */
unsigned vigil__plat_if_index(const char *name);

/* Initialises tcp->plat for a handle with no socket (from vigil_tcp_init,
 * and for the client in vigil_tcp_accept before the socket moves in). */
void vigil__tcp_plat_init(vigil_tcp *tcp);
/* tcp has no socket; create one of addr's family, set options per flags,
 * bind, listen, and start accepting (on.connection is set). On error the
 * handle is left without a socket. */
int vigil__tcp_listen(vigil_tcp *tcp, const struct sockaddr *addr, int addrlen, int backlog,
                      unsigned flags);
/* Moves the accepted socket into client (which gets CONNECTED from the
 * portable layer). VIGIL_EAGAIN when none is waiting. */
int vigil__tcp_accept(vigil_tcp *server, vigil_tcp *client);
int vigil__tcp_accept_drop(vigil_tcp *server);
/* Starts connecting req->handle (creating its socket if it has none).
 * Errors found at once may be returned (no socket could be made) or
 * reported through vigil__connect_done; either way exactly one. */
int vigil__tcp_connect(vigil_connect_req *req, const struct sockaddr *addr, int addrlen);
int vigil__tcp_read_start(vigil_tcp *tcp);
void vigil__tcp_read_stop(vigil_tcp *tcp);
/* req was just appended to tcp->write_queue: write what can be written
 * (unless the handle is still connecting) and wait for the rest. */
void vigil__tcp_write(vigil_write_req *req);
/* last: these are the last bytes this side sends (vigil_tcp_try_write_last);
 * an OS that can hold them back for the FIN that follows does so. */
long vigil__tcp_try_write(vigil_tcp *tcp, const vigil_buf *bufs, unsigned nbufs, int last);
/* Stop everything, close the socket (abortively if reset), and complete
 * pending operations as described above. */
void vigil__tcp_close(vigil_tcp *tcp, int reset);
/* shutdown(SHUT_WR / SD_SEND); the caller checked that no write is queued. */
int vigil__tcp_shutdown(vigil_tcp *tcp);
int vigil__tcp_nodelay(vigil_tcp *tcp, int enable);
int vigil__tcp_name(const vigil_tcp *tcp, int peer, struct sockaddr *name, int *len);

/* ---- signals (src/signal.c, src/unix/signal.c, src/win/signal.c) -------- */

/* Adds s to the process-wide list of handles watching signum, installing
 * the OS handler if it is the first (s->signum is still 0). Returns 0,
 * VIGIL_EINVAL (no such signal, or one that cannot be caught) or
 * VIGIL_ENOTSUP. */
int vigil__plat_signal_add(vigil_signal *s, int signum);
/* Removes s (started) from the list; the last one of its signal restores
 * the disposition found before the first. */
void vigil__plat_signal_remove(vigil_signal *s);
/* For the OS handler, once per delivery to a watching handle: counts it
 * and wakes the handle's loop. Async-signal-safe. */
void vigil__signal_deliver(vigil_signal *s);

/* ---- the post queue (src/async.c) ------------------------------------------ */

/* Allocates loop->posts with room for at most max calls (0: default).
 * Returns 0 or VIGIL_ENOMEM. */
int vigil__posts_init(vigil_loop *loop, uint32_t max);
/* 1 while posted calls wait to run (any thread may have added them). */
int vigil__posts_waiting(const vigil_loop *loop);
void vigil__posts_free(vigil_loop *loop);

/* A vigil_fd_watch (flag VIGIL__TCP_WATCH) changed its interest (the
 * WATCH_R / WATCH_W flags): make the poller match. Returns 0, the poller's
 * error, or VIGIL_ENOTSUP where the backend has no readiness API. The
 * platform never reads, writes or closes a watched descriptor; on close it
 * only drops the registration. Readiness goes to vigil__fd_watch_ready. */
int vigil__fd_watch_sync(vigil_tcp *tcp);
void vigil__fd_watch_ready(vigil_tcp *tcp, unsigned events);

/* ---- helpers for platforms ------------------------------------------------ */

/* Calls read_cb with nread (and buf, or an empty one if NULL). For an EOF
 * or an error (nread < 0) it first stops reading (flags, counters and
 * vigil__tcp_read_stop), so the handle is quiet unless the callback starts
 * reading again. */
void vigil__read_cb(vigil_tcp *tcp, long nread, const vigil_buf *buf);
/* The same for bytes stamped rx_ns on the loop's clock (0: no stamp);
 * vigil_loop_rx_time_ns() returns their date (vigil__rx_date) during the
 * callback. */
void vigil__read_cb_at(vigil_tcp *tcp, long nread, const vigil_buf *buf, uint64_t rx_ns);

/* ---- receive timestamps (src/rxstamp.c; reads no clock) ------------------- */

/* CLOCK_REALTIME - loop clock from n samples, each three readings taken in
 * the order monotonic, realtime, monotonic: the realtime reading minus the
 * end of the narrowest window (the smallest offset it allows, so that
 * converted stamps err late, never early). */
int64_t vigil__clock_offset(const uint64_t (*s)[3], unsigned n);
/* 1 when offset, sampled at loop time now, differs from prev (sampled at
 * prev_at; 0: no previous sample) by at most 1 ms + 1000 ppm of the time
 * between: a slew, not a step of the realtime clock. */
int vigil__clock_offset_steady(int64_t prev, uint64_t prev_at, int64_t offset, uint64_t now);
/* A realtime receive stamp on the loop's clock: real_ns - offset; 0 (no
 * stamp) when real_ns is 0 or the result would be out of range. */
uint64_t vigil__rx_mono(uint64_t real_ns, int64_t offset);
/* When the bytes a read just returned arrived, on the loop's clock: rx_ns
 * (their stamp, 0: none) when that is not after now_ns (the loop's now),
 * else the earlier of rx_ns and clock()'s reading, taken now, after the
 * read; the reading itself when there is no stamp. clock is called only in
 * the second case. Never before the bytes were sent, never in the future. */
uint64_t vigil__rx_date(uint64_t rx_ns, uint64_t now_ns, vigil_clock_fn clock, void *clock_arg);

#endif
