#ifndef VIGIL_LOOP_H
#define VIGIL_LOOP_H

/* The vigil event loop: TCP handles, requests, timers, end-of-iteration
 * hooks and stall detection, over epoll (Linux), poll (any POSIX) or IOCP
 * (Windows). The design essay is at the top of src/loop.c.
 *
 * Operation-based, as libuv: you start an operation (listen, connect, read,
 * write) and get a completion callback, so a completion port fits as well as
 * a readiness API. The caller allocates every structure here and owns it;
 * a vigil_tcp may be freed only in (or after) its close callback, a request
 * only in (or after) its completion callback.
 *
 * One iteration of vigil_loop_run():
 *   1. wait for I/O, at most until the wheel's next expiry (rounded up to
 *      the ms, so a timer never fires early), not at all if work is pending;
 *   2. read the clock (so the callbacks below see when data arrived, not
 *      when the wait began); if the loop itself stalled (a gap beyond what
 *      it asked to sleep, or a suspend seen as CLOCK_BOOTTIME jumping ahead
 *      of CLOCK_MONOTONIC), call the stall watchers -- before any timer, so
 *      a liveness engine can be told (vigil_session_stalled) before it
 *      would convict a peer for our own silence;
 *   3. run the ready I/O: accepts, connects, and every readable socket read
 *      until it is empty (or 32 reads, for fairness);
 *   4. read the clock again and run the timer wheel once (every timer due
 *      by then);
 *   5. run the deferred callbacks (vigil_loop_defer): the place to flush
 *      writes, so a pong rides in the same write as other pending bytes;
 *      vigil_tcp_write writes at once and waits for writability only on
 *      EAGAIN;
 *   6. run completions: write and connect callbacks, then close callbacks.
 *
 * Threading: a loop and its handles belong to one thread. Exactly two
 * functions here may be called from any thread: vigil_async_send (also from
 * a POSIX signal handler) and vigil_loop_post; everything else, including
 * closing an async handle, runs on the loop's thread. docs/RUNTIME.md
 * ("Threads") lists every thread-safe entry point of the library.
 *
 * Errors: negative VIGIL_E* (on POSIX, -errno). Every function lists them. */

#include <stddef.h>
#include <stdint.h>

#include "os.h"
#include "version.h"
#include "wheel.h"

/* Defined by <sys/socket.h> / <winsock2.h>; pointers only here, so this
 * header does not drag in the platform's socket headers. */
struct sockaddr;
struct sockaddr_storage;

typedef struct vigil_loop vigil_loop;
typedef struct vigil_tcp vigil_tcp;
typedef struct vigil_write_req vigil_write_req;
typedef struct vigil_connect_req vigil_connect_req;
typedef struct vigil_loop_timer vigil_loop_timer;
typedef struct vigil_defer vigil_defer;
typedef struct vigil_stall_watch vigil_stall_watch;
typedef struct vigil_async vigil_async;
typedef struct vigil_signal vigil_signal;

/* From a pointer to a member back to the structure that embeds it. */
#define vigil_container_of(ptr, type, member)                                                      \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Room for "[v6addr%scope]:port" plus NUL. */
#define VIGIL_ADDRSTRLEN 72

/* ---- buffers -------------------------------------------------------------- */

/* A byte range. On Windows the layout is WSABUF's, so arrays of them go to
 * WSASend without copying; build them with vigil_buf_init for portability. */
#if defined(_WIN32)
typedef struct vigil_buf {
  unsigned long len;
  char *base;
} vigil_buf;
#else
typedef struct vigil_buf {
  char *base;
  size_t len;
} vigil_buf;
#endif

/* A vigil_buf for [base, base + len). On Windows len is clamped to
 * ULONG_MAX (4 GiB - 1). */
VIGIL_EXTERN vigil_buf vigil_buf_init(char *base, size_t len);

/* ---- private plumbing (fields the library owns; do not touch) ----------- */

/* Circular doubly linked list node; a node alone is an empty list. */
typedef struct vigil__queue {
  struct vigil__queue *next;
  struct vigil__queue *prev;
} vigil__queue;

#if defined(_WIN32)
/* Layout of OVERLAPPED, so this header needs no windows.h; src/win checks
 * the size and alignment with static asserts. */
typedef struct vigil__overlapped {
  uintptr_t internal;
  uintptr_t internal_high;
  union {
    struct {
      uint32_t offset;
      uint32_t offset_high;
    } o;
    void *pointer;
  } u;
  void *event;
} vigil__overlapped;

typedef struct vigil__tcp_plat {
  vigil__overlapped read_ov; /* the zero-byte WSARecv that signals data */
  void *accept_state;        /* listener: the pool of pending AcceptEx */
  vigil_os_socket accepted;  /* listener: socket handed to vigil_tcp_accept */
  unsigned pending_ops;      /* overlapped operations not yet completed */
} vigil__tcp_plat;

typedef struct vigil__req_plat {
  vigil__overlapped ov;
} vigil__req_plat;
#else
typedef struct vigil__tcp_plat {
  uint32_t wanted;          /* VIGIL__IO_* interest the handle needs */
  uint32_t registered;      /* interest the poller currently holds */
  uint32_t index;           /* poll backend: slot in its pollfd array */
  vigil_os_socket accepted; /* listener: fd handed to vigil_tcp_accept */
} vigil__tcp_plat;

typedef struct vigil__req_plat {
  int unused;
} vigil__req_plat;
#endif

/* ---- the loop ------------------------------------------------------------- */

typedef enum vigil_run_mode {
  VIGIL_RUN_DEFAULT = 0, /* until stopped or nothing is left to do */
  VIGIL_RUN_ONCE,        /* one iteration; waits for I/O if nothing is due */
  VIGIL_RUN_NOWAIT       /* one iteration; never waits */
} vigil_run_mode;

typedef enum vigil_backend {
  VIGIL_BACKEND_DEFAULT = 0, /* VIGIL_BACKEND env var, else the best one */
  VIGIL_BACKEND_EPOLL,       /* Linux */
  VIGIL_BACKEND_POLL,        /* any POSIX system; O(n) per wait */
  VIGIL_BACKEND_IOCP         /* Windows */
} vigil_backend;

typedef enum vigil_clock_id {
  VIGIL_CLOCK_MONOTONIC = 0, /* stops during suspend on Linux */
  VIGIL_CLOCK_BOOTTIME       /* keeps counting during suspend */
} vigil_clock_id;

/* A clock source in nanoseconds. Tests inject one to drive stall detection
 * without sleeping; it must never go backwards for either id. */
typedef uint64_t (*vigil_clock_fn)(void *arg, vigil_clock_id id);
/* The OS clocks, what a loop reads when its options name no clock (arg is
 * ignored): a clock injected for a test can wrap it. */
VIGIL_EXTERN uint64_t vigil_clock_os(void *arg, vigil_clock_id id);

/* Fills buf with len bytes from the OS's random source (getrandom,
 * arc4random_buf or /dev/urandom; BCryptGenRandom on Windows). The server
 * and the client seed each connection's ping jitter with it (the session,
 * which never touches the OS, takes its seed as a parameter); a program
 * embedding vigil_session alone uses it the same way. Not a key generator's
 * API, though the sources are the OS's cryptographic ones. Returns 0, or
 * VIGIL_EINVAL (buf NULL with len > 0), or the error of the source
 * (VIGIL_ENOENT: no /dev/urandom, VIGIL_ENOSYS...). */
VIGIL_EXTERN int vigil_random(void *buf, size_t len);

/* Options; zero means default for every field. A struct that can grow:
 * initialise with vigil_loop_options_init(). */
typedef struct vigil_loop_options {
  size_t size; /* set by vigil_loop_options_init: the struct's size as compiled (docs/ABI.md) */
  vigil_backend backend;
  /* A stall is reported when the loop comes back more than this much later
   * than it asked to, or the machine slept at least this long. Default
   * 500 ms. */
  uint32_t stall_threshold_ms;
  vigil_clock_fn clock; /* NULL: the OS clocks */
  void *clock_arg;
  /* Most vigil_loop_post calls queued and not yet run; one more gets
   * VIGIL_EQUEUEFULL. Default 4096. */
  uint32_t post_queue_max;
} vigil_loop_options;

typedef enum vigil_stall_kind {
  VIGIL_STALL_GAP = 1, /* the loop did not run for longer than planned */
  VIGIL_STALL_SUSPEND  /* the machine was suspended */
} vigil_stall_kind;

struct vigil_loop {
  void *data; /* for the user */
  /* private */
  void *plat;           /* backend state (poller, completion port) */
  const void *plat_ops; /* backend operations */
  vigil_backend backend;
  int stop_flag;
  vigil_clock_fn clock;
  void *clock_arg;
  uint64_t now_ns;         /* cached monotonic time of this iteration */
  uint64_t last_check_ns;  /* monotonic time of the last stall check */
  uint64_t boot_offset_ns; /* BOOTTIME - MONOTONIC at the last check */
  uint64_t stall_threshold_ns;
  int64_t planned_timeout_ms; /* the last wait asked; -1 forever, -2 restart */
  int awake;                  /* this iteration's wait has returned */
  unsigned nhandles;          /* initialised and not yet closed */
  unsigned active_handles;    /* listening or reading */
  unsigned active_reqs;       /* connects and writes in flight */
  vigil__queue done_reqs;     /* completed requests, callbacks pending */
  vigil_tcp *closing;         /* closed handles, close callbacks pending, */
  vigil_tcp **closing_tail;   /* in order (through close_next) */
  vigil__queue defers;        /* queued vigil_defer */
  vigil__queue stall_watchers;
  vigil__queue asyncs; /* vigil_async handles, initialised and not closed */
  int wake_pending;    /* atomic: the wakeup was signalled, not yet drained */
  int wake_fd[2];      /* POSIX: the wakeup's eventfd (twice) or pipe */
  void *posts;         /* the vigil_loop_post queue and its lock */
  /* Kernel receive stamps (src/rxstamp.c): realtime - monotonic as last
   * sampled, the loop time of that sample (0: never), whether it was no
   * clock step, and the arrival time of the running read callback's bytes. */
  int64_t rx_offset_ns;
  uint64_t rx_sampled_ns;
  int rx_offset_ok;
  uint64_t rx_ns;
  vigil_wheel wheel; /* ticks are monotonic milliseconds */
};

/* Defaults and opts->size (a macro: the caller's sizeof; docs/ABI.md). */
VIGIL_EXTERN void vigil_loop_options_init_sized(vigil_loop_options *opts, size_t size);
#define vigil_loop_options_init(opts) vigil_loop_options_init_sized((opts), sizeof *(opts))

/* Initialises loop (opts may be NULL); on error there is nothing to close.
 * A program that drives the loop with NOWAIT from a loop of its own should
 * call it at least every stall_threshold_ms: time between two runs counts
 * as a stall unless the previous run left nothing to do. Returns 0, or
 *   VIGIL_EINVAL   unknown backend, or VIGIL_BACKEND names none we know, or
 *                  opts never _init'ed (no size; docs/ABI.md)
 *   VIGIL_ENOTSUP  opts sets a field this library lacks (a newer vigil.h)
 *   VIGIL_ENOTSUP  the backend does not exist on this platform
 *   VIGIL_ENOMEM, or what the OS said (epoll_create1: VIGIL_EMFILE...). */
VIGIL_EXTERN int vigil_loop_init(vigil_loop *loop, const vigil_loop_options *opts);

/* Releases the loop's resources. Returns 0, or VIGIL_EBUSY while handles
 * are open or close callbacks are pending (run the loop until they ran). */
VIGIL_EXTERN int vigil_loop_close(vigil_loop *loop);

/* Runs the loop (see the iteration above); not reentrant (never call it
 * from a callback). Returns 0 when nothing is left
 * to do (no active handle, request, timer or deferred callback), 1 when
 * work remains (stopped, or ONCE / NOWAIT), or a negative error if the
 * backend's wait failed (the loop stays usable). */
VIGIL_EXTERN int vigil_loop_run(vigil_loop *loop, vigil_run_mode mode);

/* Makes vigil_loop_run return after the current iteration. */
VIGIL_EXTERN void vigil_loop_stop(vigil_loop *loop);

/* 1 when vigil_loop_run(DEFAULT) would have something to wait for. */
VIGIL_EXTERN int vigil_loop_alive(const vigil_loop *loop);

/* The monotonic time cached at the start of this iteration's callbacks, in
 * nanoseconds and in milliseconds (the wheel's ticks). */
VIGIL_EXTERN uint64_t vigil_loop_now_ns(const vigil_loop *loop);
VIGIL_EXTERN uint64_t vigil_loop_now_ms(const vigil_loop *loop);

/* Inside a read callback: when the bytes it reports reached this host, on
 * the loop's clock (nanoseconds). That is the kernel's receive stamp of the
 * last packet read where the OS gives one (Linux: SO_TIMESTAMPNS, converted
 * from the realtime clock), so a loop that was busy does not date a frame
 * by the time it got round to it. It may be after vigil_loop_now_ns (the
 * time the iteration's wait returned: bytes read later in a busy iteration
 * can have arrived after it), never after the read returned. Without a
 * stamp (Windows, POSIX without the option, a loop on an injected clock):
 * the loop's clock read after the read returned, or vigil_loop_now_ns when
 * that is later. Outside a read callback, or for an EOF or an error:
 * vigil_loop_now_ns(). */
VIGIL_EXTERN uint64_t vigil_loop_rx_time_ns(const vigil_loop *loop);

/* Refreshes the cached time (after a long computation in a callback). */
VIGIL_EXTERN void vigil_loop_update_time(vigil_loop *loop);

/* The backend in use: "epoll", "poll" or "iocp". */
VIGIL_EXTERN const char *vigil_loop_backend_name(const vigil_loop *loop);

/* ---- timers --------------------------------------------------------------- */

/* A wheel timer with its callback. Embed it in your own structure and get
 * back to that with vigil_container_of; arming allocates nothing. */
typedef void (*vigil_loop_timer_cb)(vigil_loop *loop, vigil_loop_timer *t);

struct vigil_loop_timer {
  vigil_timer node;       /* private */
  vigil_loop_timer_cb cb; /* private */
};

VIGIL_EXTERN void vigil_loop_timer_init(vigil_loop_timer *t);

/* Arms (or re-arms) t to call cb (not NULL) once the loop's now_ms >=
 * expires_ms (absolute, in vigil_loop_now_ms units). Never early: for a deadline in
 * nanoseconds pass (deadline_ns + 999999) / 1000000. A time already passed
 * fires in the next timer phase. An armed timer keeps the loop alive. */
VIGIL_EXTERN void vigil_loop_timer_arm(vigil_loop *loop, vigil_loop_timer *t, uint64_t expires_ms,
                                       vigil_loop_timer_cb cb);

/* Cancels t if armed; harmless if not. */
VIGIL_EXTERN void vigil_loop_timer_cancel(vigil_loop *loop, vigil_loop_timer *t);

VIGIL_EXTERN int vigil_loop_timer_armed(const vigil_loop_timer *t);

/* ---- end-of-iteration callbacks ------------------------------------------- */

/* A one-shot callback run after this iteration's I/O and timers (phase 5).
 * Embed one per connection and queue it whenever the connection has bytes
 * to flush: queueing an already queued defer does nothing, so many frames
 * produced in one iteration become one write. Queued during phase 5 it runs
 * in the next iteration (and that iteration's wait does not block). A
 * queued defer keeps the loop alive. */
typedef void (*vigil_defer_cb)(vigil_loop *loop, vigil_defer *d);

struct vigil_defer {
  vigil__queue link; /* private */
  vigil_defer_cb cb; /* private */
};

VIGIL_EXTERN void vigil_defer_init(vigil_defer *d, vigil_defer_cb cb);
VIGIL_EXTERN void vigil_loop_defer(vigil_loop *loop, vigil_defer *d);
VIGIL_EXTERN void vigil_loop_defer_cancel(vigil_loop *loop, vigil_defer *d);
VIGIL_EXTERN int vigil_defer_queued(const vigil_defer *d);

/* ---- stall watchers ------------------------------------------------------- */

/* Called in phase 2 when the loop stalled for stall_ns beyond what it had
 * planned (GAP) or the machine was suspended for stall_ns (SUSPEND). Does
 * not keep the loop alive. A callback may stop any watcher. */
typedef void (*vigil_stall_cb)(vigil_loop *loop, vigil_stall_watch *w, uint64_t stall_ns,
                               vigil_stall_kind kind);

struct vigil_stall_watch {
  vigil__queue link; /* private */
  vigil_stall_cb cb; /* private */
};

/* Starts (or, if started, keeps) w. Before its first start w must be
 * zero-filled (static, calloc, memset or `= {0}`). */
VIGIL_EXTERN void vigil_loop_stall_start(vigil_loop *loop, vigil_stall_watch *w, vigil_stall_cb cb);
/* Harmless if not started. */
VIGIL_EXTERN void vigil_loop_stall_stop(vigil_loop *loop, vigil_stall_watch *w);

/* ---- wakeups from other threads ------------------------------------------- */

/* An async handle (libuv's uv_async_t): any thread wakes the loop with
 * vigil_async_send and the callback runs once on the loop's thread, in
 * phase 3. Sends that come before the callback runs are coalesced into one
 * call; a send made while the callback runs gives one more call. Wakes the
 * loop through an eventfd (Linux), a self-pipe (other POSIX systems) or a
 * packet posted to the completion port (Windows). An initialised handle
 * keeps the loop alive until vigil_async_close. */
typedef void (*vigil_async_cb)(vigil_async *a);
typedef void (*vigil_async_close_cb)(vigil_async *a);

struct vigil_async {
  void *data; /* for the user */
  /* private */
  vigil_loop *loop;
  vigil_async_cb cb;
  vigil_async_close_cb close_cb;
  int pending;       /* atomic: sent, callback not yet run */
  unsigned closing;  /* vigil_async_close called */
  vigil__queue link; /* in loop->asyncs */
  vigil_defer close_defer;
};

/* Initialises a on loop with cb (not NULL). Loop thread only. Returns 0 or
 * VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_async_init(vigil_loop *loop, vigil_async *a, vigil_async_cb cb);

/* Makes a's callback run on the loop's thread (soon, once). Any thread;
 * async-signal-safe on POSIX (an atomic exchange and at most one write(2),
 * errno preserved). a must be initialised and not yet closed: the caller
 * makes sure no thread sends once vigil_async_close may have been called.
 * Returns 0. */
VIGIL_EXTERN int vigil_async_send(vigil_async *a);

/* Closes a (loop thread): a pending send is dropped, the callback never
 * runs again, and cb (may be NULL) runs from the loop (phase 5); only then
 * may the memory go. Calling it twice is harmless (the first cb wins). */
VIGIL_EXTERN void vigil_async_close(vigil_async *a, vigil_async_close_cb cb);

/* Runs fn(loop, arg) on the loop's thread, in phase 3 of a coming
 * iteration; calls run in the order they were posted. Any thread (not from
 * a signal handler: it takes a lock). The loop must outlive the call; a
 * queued call keeps the loop alive, and vigil_loop_close says VIGIL_EBUSY
 * until it ran. Returns 0, or
 *   VIGIL_EQUEUEFULL  post_queue_max calls are already waiting: nothing was
 *                     queued (the loop is not keeping up; retry later)
 *   VIGIL_EINVAL      NULL loop or fn
 *   VIGIL_ENOMEM */
typedef void (*vigil_post_cb)(vigil_loop *loop, void *arg);
VIGIL_EXTERN int vigil_loop_post(vigil_loop *loop, vigil_post_cb fn, void *arg);

/* ---- signals ------------------------------------------------------------- */

/* A signal handle: signum's delivery becomes a callback on the loop's
 * thread, in phase 3, so a program stops on SIGINT / SIGTERM without
 * polling a flag. POSIX: a sigaction handler (installed while some handle
 * watches the signal, the previous disposition restored when the last one
 * stops) that wakes each watching handle's loop through its vigil_async;
 * every loop and handle watching a signal gets it. Windows: a console
 * control handler (SetConsoleCtrlHandler), CTRL_C_EVENT delivered as SIGINT,
 * CTRL_BREAK_EVENT as SIGBREAK, CTRL_CLOSE / LOGOFF / SHUTDOWN_EVENT as
 * SIGTERM (Windows ends the process soon after a close event); other
 * numbers give VIGIL_ENOTSUP there. Deliveries between two callbacks are
 * coalesced into one call. A started handle keeps the loop alive. */
typedef void (*vigil_signal_cb)(vigil_signal *s, int signum);
typedef void (*vigil_signal_close_cb)(vigil_signal *s);

struct vigil_signal {
  void *data; /* for the user */
  /* private */
  vigil_async async; /* what the OS handler sends */
  vigil_signal_cb cb;
  vigil_signal_close_cb close_cb;
  int signum;        /* 0 while stopped */
  int caught;        /* atomic: deliveries not yet reported */
  vigil__queue link; /* in the process-wide list of started handles */
};

/* Initialises s on loop (loop thread). Returns 0 or VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_signal_init(vigil_loop *loop, vigil_signal *s);

/* Starts watching signum (restarts with the new one if started). Returns 0,
 * or VIGIL_EINVAL (NULL cb, a number out of range, SIGKILL / SIGSTOP),
 * VIGIL_ENOTSUP (Windows: not SIGINT, SIGBREAK or SIGTERM), or what
 * sigaction / SetConsoleCtrlHandler said. */
VIGIL_EXTERN int vigil_signal_start(vigil_signal *s, vigil_signal_cb cb, int signum);

/* Stops watching (a delivery not yet reported is dropped); harmless if
 * stopped. Returns 0. */
VIGIL_EXTERN int vigil_signal_stop(vigil_signal *s);

/* Stops and closes s; cb (may be NULL) runs from the loop, then the memory
 * may go. */
VIGIL_EXTERN void vigil_signal_close(vigil_signal *s, vigil_signal_close_cb cb);

/* ---- TCP ------------------------------------------------------------------ */

typedef void (*vigil_close_cb)(vigil_tcp *tcp);
/* A new connection is waiting (status 0): call vigil_tcp_accept from the
 * callback, or it is closed when the callback returns. status < 0: accept
 * failed (VIGIL_EMFILE, VIGIL_ENFILE, VIGIL_ENOBUFS, VIGIL_ENOMEM...); the
 * listener keeps listening and the OS will report the waiting connection
 * again on the next iteration, so on EMFILE free a descriptor (the spare
 * descriptor trick) and call vigil_tcp_accept_drop. */
typedef void (*vigil_connection_cb)(vigil_tcp *server, int status);
/* Supply a buffer for up to `suggested` bytes (64 KiB). A zero-length or
 * NULL buffer makes read_cb report VIGIL_ENOBUFS. */
typedef void (*vigil_alloc_cb)(vigil_tcp *tcp, size_t suggested, vigil_buf *buf);
/* nread > 0: bytes arrived in buf->base. nread == 0: nothing after all
 * (EAGAIN); just release buf. nread < 0: VIGIL_EOF (the peer closed
 * cleanly), VIGIL_ECONNRESET, VIGIL_ETIMEDOUT, VIGIL_EHOSTUNREACH, ...;
 * reading has stopped. buf is what alloc_cb gave (maybe empty for an error
 * before the first alloc); the callback owns it. */
typedef void (*vigil_read_cb)(vigil_tcp *tcp, long nread, const vigil_buf *buf);
/* status 0: every byte was handed to the kernel. Else the error
 * (VIGIL_EPIPE, VIGIL_ECONNRESET, ...) or VIGIL_ECANCELED if the handle was
 * closed first. */
typedef void (*vigil_write_cb)(vigil_write_req *req, int status);
/* status 0: connected. Else VIGIL_ECONNREFUSED, VIGIL_ETIMEDOUT,
 * VIGIL_EHOSTUNREACH, VIGIL_ENETUNREACH, ... or VIGIL_ECANCELED. */
typedef void (*vigil_connect_cb)(vigil_connect_req *req, int status);

/* Kept small: a server embeds one per connection (docs/SCALE.md). */
struct vigil_tcp {
  void *data; /* for the user */
  /* private */
  vigil_loop *loop;
  vigil_os_socket socket;
  unsigned flags;
  vigil_close_cb close_cb;
  union {                           /* a listener never reads, a stream never accepts */
    vigil_connection_cb connection; /* listener */
    vigil_read_cb read;             /* stream */
  } on;
  vigil_alloc_cb alloc_cb;
  vigil_connect_req *connect_req;
  vigil__queue write_queue;     /* requests not completely written, in order */
  size_t write_queue_size;      /* bytes in them not yet written */
  struct vigil_tcp *close_next; /* in loop->closing, once closed */
  vigil__tcp_plat plat;
};

#define VIGIL_WRITE_INLINE_BUFS 4

/* What every request starts with (private). The loop keeps completed
 * requests of both kinds in one queue and tells them apart by `type`; an
 * IOCP backend gets from an OVERLAPPED back to its request through it. */
typedef struct vigil__req {
  vigil__queue link; /* in handle->write_queue, then loop->done_reqs */
  unsigned type;     /* VIGIL__REQ_WRITE / VIGIL__REQ_CONNECT */
  int status;        /* result, once complete */
  vigil__req_plat plat;
} vigil__req;

struct vigil_write_req {
  void *data; /* for the user */
  /* private */
  vigil__req req;
  vigil_tcp *handle;
  vigil_write_cb cb;
  unsigned nbufs;  /* buffers in bufs */
  unsigned index;  /* first buffer not completely written */
  vigil_buf *bufs; /* bufsml, or allocated when nbufs > 4 */
  vigil_buf bufsml[VIGIL_WRITE_INLINE_BUFS];
};

struct vigil_connect_req {
  void *data; /* for the user */
  /* private */
  vigil__req req;
  vigil_tcp *handle;
  vigil_connect_cb cb;
};

/* Flags for vigil_tcp_bind_listen. SO_REUSEADDR is always set on POSIX (a
 * restarted server can rebind while old connections sit in TIME_WAIT); on
 * Windows SO_EXCLUSIVEADDRUSE is set instead. */
#define VIGIL_TCP_REUSEPORT 1u /* SO_REUSEPORT: several processes share the port */
#define VIGIL_TCP_IPV6ONLY                                                                         \
  2u /* IPv6 address: no IPv4-mapped peers. Without                                                \
        it IPV6_V6ONLY is cleared (dual stack). */

/* Initialises a handle with no socket yet. Returns 0 or VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_tcp_init(vigil_loop *loop, vigil_tcp *tcp);

/* Creates a socket of addr's family, binds it, listens, and calls cb for
 * every connection. backlog <= 0 means SOMAXCONN. Returns 0, or
 * VIGIL_EINVAL (bad handle state or address family), VIGIL_EADDRINUSE,
 * VIGIL_EADDRNOTAVAIL, VIGIL_EAFNOSUPPORT (no IPv6 here), VIGIL_EACCES,
 * VIGIL_ENOTSUP (REUSEPORT unavailable), VIGIL_EMFILE, ... On error the
 * handle is left without a socket (still close it). */
VIGIL_EXTERN int vigil_tcp_bind_listen(vigil_tcp *tcp, const struct sockaddr *addr, int backlog,
                                       unsigned flags, vigil_connection_cb cb);

/* Takes the connection announced to on_connection into `client` (an
 * initialised handle with no socket). Returns 0, or VIGIL_EAGAIN (none
 * waiting: call it only from on_connection with status 0), VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_tcp_accept(vigil_tcp *server, vigil_tcp *client);

/* Accepts one waiting connection and closes it at once: after an EMFILE,
 * with a descriptor freed, this tells the peer "no" instead of leaving it
 * in the backlog (and the loop spinning). Returns 0, VIGIL_EAGAIN (none
 * waiting), VIGIL_EMFILE (still no descriptor), VIGIL_EINVAL (not a
 * listener), VIGIL_ENOTSUP (IOCP: completed accepts are dropped by closing
 * them; the backend does this itself). */
VIGIL_EXTERN int vigil_tcp_accept_drop(vigil_tcp *server);

/* Connects to addr (creating a socket of its family if the handle has
 * none); cb reports the outcome, never from inside this call. After a
 * failed connect, close the handle; to retry, init it again (in or after
 * the close callback) and connect anew. Returns 0
 * (cb will be called), or VIGIL_EINVAL (bad state: listening, connected,
 * already connecting, closing), VIGIL_EAFNOSUPPORT, VIGIL_EMFILE, ... */
VIGIL_EXTERN int vigil_tcp_connect(vigil_connect_req *req, vigil_tcp *tcp,
                                   const struct sockaddr *addr, vigil_connect_cb cb);

/* Starts reading: alloc_cb then read_cb for data as it arrives. Returns 0,
 * or VIGIL_EINVAL (NULL callback, closing, or a listener), VIGIL_ENOTCONN
 * (no connection yet), VIGIL_EALREADY (already reading). */
VIGIL_EXTERN int vigil_tcp_read_start(vigil_tcp *tcp, vigil_alloc_cb alloc_cb,
                                      vigil_read_cb read_cb);

/* Stops reading; harmless if not reading. Returns 0. */
VIGIL_EXTERN int vigil_tcp_read_stop(vigil_tcp *tcp);

/* Queues bufs (the array is copied; the bytes must stay valid until cb) and
 * writes at once as much as the kernel takes; the rest goes when the socket
 * is writable. Writes complete in order. Allowed while connecting (sent
 * once connected). Returns 0 (cb will be called), or VIGIL_EINVAL (nbufs 0,
 * NULL arguments, not a stream), VIGIL_ENOTCONN (never connected),
 * VIGIL_EPIPE (closing), VIGIL_ENOMEM (more than 4 bufs and no memory).
 * Backpressure: vigil_tcp_write_queue_size() says how much is still queued. */
VIGIL_EXTERN int vigil_tcp_write(vigil_write_req *req, vigil_tcp *tcp, const vigil_buf bufs[],
                                 unsigned nbufs, vigil_write_cb cb);

/* Writes what the kernel takes right now, without queueing. Returns the
 * byte count (maybe less than asked), or VIGIL_EAGAIN (nothing could be
 * written now, or earlier writes are still queued), VIGIL_ENOTCONN,
 * VIGIL_EPIPE, VIGIL_ECONNRESET, VIGIL_EINVAL, ... */
VIGIL_EXTERN long vigil_tcp_try_write(vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs);

/* vigil_tcp_try_write for the last bytes this side will send: when the
 * kernel takes all of them, our direction ends too (vigil_tcp_shutdown),
 * and where the OS can hold the bytes back for it (Linux: MSG_MORE) they
 * and the FIN leave in one segment, not two: half the packets, and half
 * the kernel's work, for a goodbye. When the kernel takes less, or
 * nothing, nothing is ended; the return value is vigil_tcp_try_write's. */
VIGIL_EXTERN long vigil_tcp_try_write_last(vigil_tcp *tcp, const vigil_buf bufs[], unsigned nbufs);

/* Bytes accepted by vigil_tcp_write and not yet handed to the kernel. */
VIGIL_EXTERN size_t vigil_tcp_write_queue_size(const vigil_tcp *tcp);

/* Closes the handle: reading stops, the socket is closed, queued writes and
 * a pending connect complete with VIGIL_ECANCELED, then cb (may be NULL)
 * runs from the loop; only then may the memory be freed. Calling it twice
 * is harmless (the first cb wins). */
VIGIL_EXTERN void vigil_tcp_close(vigil_tcp *tcp, vigil_close_cb cb);

/* As vigil_tcp_close, but the peer sees a reset (SO_LINGER 0): unsent data
 * is discarded and its reads fail with ECONNRESET. */
VIGIL_EXTERN void vigil_tcp_close_reset(vigil_tcp *tcp, vigil_close_cb cb);

VIGIL_EXTERN int vigil_tcp_is_closing(const vigil_tcp *tcp);
/* Non-zero while reads are started (vigil_tcp_read_start; an EOF or a read
 * error stops them). */
VIGIL_EXTERN int vigil_tcp_is_reading(const vigil_tcp *tcp);

/* The OS socket (for keepalive, TCP_INFO), or VIGIL_INVALID_SOCKET before
 * one exists. Do not close it or change its blocking mode. */
VIGIL_EXTERN vigil_os_socket vigil_tcp_socket(const vigil_tcp *tcp);

/* Ends our direction of the stream: the peer reads end of stream after
 * the bytes already written (shutdown(SHUT_WR), a FIN), while reads here
 * go on until the peer's own end of stream. Only with no write queued, so
 * nothing of ours is cut off. Returns 0, VIGIL_EAGAIN (writes still queued
 * or still connecting), VIGIL_ENOTCONN, VIGIL_EPIPE (closing), VIGIL_EBADF,
 * or the OS error. Writing afterwards fails. */
VIGIL_EXTERN int vigil_tcp_shutdown(vigil_tcp *tcp);

/* TCP_NODELAY on (1) or off (0). Returns 0, VIGIL_EBADF (no socket) or the
 * OS error. */
VIGIL_EXTERN int vigil_tcp_nodelay(vigil_tcp *tcp, int enable);

/* Local and remote address. *len is in/out (bytes); pass
 * sizeof(struct sockaddr_storage). Returns 0, VIGIL_EBADF (no socket),
 * VIGIL_ENOTCONN, VIGIL_EINVAL. */
VIGIL_EXTERN int vigil_tcp_sockname(const vigil_tcp *tcp, struct sockaddr *name, int *len);
VIGIL_EXTERN int vigil_tcp_peername(const vigil_tcp *tcp, struct sockaddr *name, int *len);

/* ---- watching a descriptor another library owns --------------------------- */

/* For a library that does its own reads and writes on a socket it made (a
 * database client such as hiredis) and only needs to be told when that
 * socket is readable or writable: the watch never reads, writes or closes
 * the descriptor. Readiness-based backends only (epoll, poll); on Windows
 * (IOCP) every call below returns VIGIL_ENOTSUP. A watch with interest
 * keeps the loop alive. */
#define VIGIL_FD_READABLE 1u
#define VIGIL_FD_WRITABLE 2u

typedef struct vigil_fd_watch vigil_fd_watch;
/* events: VIGIL_FD_* that are ready (an error or hang-up sets both). */
typedef void (*vigil_fd_watch_cb)(vigil_fd_watch *w, unsigned events);
typedef void (*vigil_fd_watch_close_cb)(vigil_fd_watch *w);

struct vigil_fd_watch {
  void *data; /* for the user */
  /* private */
  vigil_tcp tcp;
  vigil_fd_watch_cb cb;
  vigil_fd_watch_close_cb close_cb;
};

/* Initialises w for fd (non-blocking, owned by the caller) with no
 * interest. Returns 0, VIGIL_EINVAL or VIGIL_ENOTSUP (no readiness API). */
VIGIL_EXTERN int vigil_fd_watch_init(vigil_loop *loop, vigil_fd_watch *w, vigil_os_socket fd);

/* Sets the interest to `events` (VIGIL_FD_*; 0 stops watching) and the
 * callback (not NULL when events != 0). Returns 0, VIGIL_EINVAL (closing,
 * bad events) or the poller's error. */
VIGIL_EXTERN int vigil_fd_watch_set(vigil_fd_watch *w, unsigned events, vigil_fd_watch_cb cb);

/* Stops watching at once (the descriptor may be closed right after this
 * call) and calls cb (may be NULL) from the loop; only then may w be
 * freed. The descriptor is left open. */
VIGIL_EXTERN void vigil_fd_watch_close(vigil_fd_watch *w, vigil_fd_watch_close_cb cb);

/* ---- addresses ------------------------------------------------------------ */

/* Parses "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80" or "localhost:80"
 * (127.0.0.1) into *out; literal addresses only, no name lookup. Returns
 * 0, or VIGIL_EINVAL (malformed, with no partial result). */
VIGIL_EXTERN int vigil_ip_parse(const char *text, struct sockaddr_storage *out);

/* Formats sa as "1.2.3.4:80" or "[::1]:80" into buf (VIGIL_ADDRSTRLEN is
 * enough). Returns the length, or VIGIL_EAFNOSUPPORT (neither IPv4 nor
 * IPv6), VIGIL_ENOSPACE (buf too small), VIGIL_EINVAL (NULL argument). */
VIGIL_EXTERN int vigil_ip_format(const struct sockaddr *sa, char *buf, size_t size);

/* sizeof the sockaddr for sa's family (IPv4 / IPv6), or 0 if neither. */
VIGIL_EXTERN int vigil_ip_len(const struct sockaddr *sa);

#endif
