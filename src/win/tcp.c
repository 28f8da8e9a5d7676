/* TCP on Windows: every operation of the portable loop is an overlapped
 * Winsock operation whose completion arrives on the loop's I/O completion
 * port (core.c), with the handle as the completion key (a listener's pool
 * for listening sockets: see accept_pool).
 *
 *   listen   a pool of ACCEPT_SLOTS AcceptEx calls, each with a socket
 *            created in advance; a completed one is offered to the
 *            connection callback, then the slot is posted again;
 *   connect  ConnectEx (the socket must be bound first: to the wildcard
 *            address, port 0);
 *   read     a zero-byte WSARecv: its completion means "readable" (or
 *            failed), and the bytes are then taken with non-blocking recv
 *            until the socket is empty, as on POSIX. No buffer is pinned
 *            while a connection is idle, which is what keeps an idle
 *            connection cheap (the libuv technique);
 *   write    one WSASend per request, straight from the request's buffers
 *            (vigil_buf has WSABUF's layout); Windows keeps overlapped
 *            sends on one socket in order, so several may be in flight;
 *   close    CancelIoEx + closesocket; every outstanding OVERLAPPED still
 *            comes back through the port, and only when the last one has
 *            (tcp->plat.pending_ops reaches 0) may the close callback run,
 *            because until then the kernel may write into the handle's and
 *            the requests' memory.
 *
 * AcceptEx and ConnectEx are not exported by ws2_32: they are asked for
 * with WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) on the socket that
 * will use them, so a layered provider gets its own.
 *
 * Errors arrive as the NTSTATUS in OVERLAPPED.Internal and go through
 * vigil__win_ntstatus (error.c): a peer's reset is ERROR_NETNAME_DELETED
 * there and VIGIL_ECONNRESET here, a retransmission timeout
 * ERROR_SEM_TIMEOUT and VIGIL_ETIMEDOUT, exactly as a program calling
 * GetQueuedCompletionStatus would see them.
 *
 * Accept errors. A connection reset before it was accepted is dropped
 * silently (as accept4's ECONNABORTED on POSIX). Any other failure to
 * accept is reported to the connection callback; idle slots are posted
 * again when another slot completes, or ACCEPT_RETRY_MS later.
 * vigil_tcp_accept_drop is VIGIL_ENOTSUP: the pending-connection backlog
 * never fills with connections the process cannot take, because a
 * completed AcceptEx that nobody takes is closed here. */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "spare.h"

/* loop.h mirrors OVERLAPPED and WSABUF so it needs no windows.h. */
_Static_assert(sizeof(vigil__overlapped) == sizeof(OVERLAPPED), "OVERLAPPED size");
_Static_assert(_Alignof(vigil__overlapped) == _Alignof(OVERLAPPED), "OVERLAPPED alignment");
_Static_assert(offsetof(vigil__overlapped, event) == offsetof(OVERLAPPED, hEvent),
               "OVERLAPPED layout");
_Static_assert(sizeof(vigil_buf) == sizeof(WSABUF), "WSABUF size");
_Static_assert(offsetof(vigil_buf, len) == offsetof(WSABUF, len), "WSABUF len");
_Static_assert(offsetof(vigil_buf, base) == offsetof(WSABUF, buf), "WSABUF buf");

/* AcceptEx calls kept outstanding per listener: connections arriving
 * together are accepted by the kernel without waiting for the loop. */
#define ACCEPT_SLOTS 8
/* After AcceptEx could not be posted (no socket: out of handles or
 * memory), idle slots are retried this much later, so a listener whose
 * every slot failed does not stop accepting for good. */
#define ACCEPT_RETRY_MS 100
/* AcceptEx wants room for each address plus 16 bytes. */
#define ADDR_SPACE ((DWORD)(sizeof(struct sockaddr_storage) + 16))
/* Buffers per vigil_tcp_try_write; more are left for a later call. */
#define MAX_TRY_BUFS 64

typedef struct accept_slot {
  OVERLAPPED ov;
  SOCKET sock; /* INVALID_SOCKET while no AcceptEx is out */
  char addrs[2 * ADDR_SPACE];
} accept_slot;

/* A listener's AcceptEx state. The listening socket's completion key is
 * the pool (tagged with its low bit), not the handle: a closed listener's
 * cancelled accepts then come back to the pool, which outlives the handle
 * until the last of them, so a listener's close callback need not wait
 * for the kernel (and the handle may be reused at once, as on POSIX). */
typedef struct accept_pool {
  vigil_tcp *server; /* NULL once the listener is closed */
  vigil_loop *loop;
  unsigned pending; /* AcceptEx calls out */
  LPFN_ACCEPTEX accept_ex;
  int family;
  vigil_loop_timer retry; /* re-posts idle slots after a failure */
  accept_slot slots[ACCEPT_SLOTS];
} accept_pool;

#define POOL_TAG ((ULONG_PTR)1)

static SOCKET sock_of(const vigil_tcp *tcp) {
  return (SOCKET)tcp->socket;
}

static OVERLAPPED *ov_of(vigil__overlapped *o) {
  return (OVERLAPPED *)(void *)o;
}

static int is_closing(const vigil_tcp *tcp) {
  return (tcp->flags & VIGIL__TCP_CLOSING) != 0;
}

static vigil_write_req *first_write(const vigil_tcp *tcp) {
  return vigil_container_of(vigil_container_of(tcp->write_queue.next, vigil__req, link),
                            vigil_write_req, req);
}

/* ---- sockets -------------------------------------------------------------- */

/* Ties s to the loop's port with `key` as its completion key, and makes
 * it non-blocking (for the recv calls that drain it and for try_write;
 * overlapped operations are not affected). */
static int associate_key(vigil_loop *loop, SOCKET s, ULONG_PTR key) {
  u_long one = 1;
  /* A SOCKET is a kernel handle: the cast is how Windows means it. */
  /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
  if (CreateIoCompletionPort((HANDLE)s, vigil__win_port(loop), key, 0) == NULL)
    return vigil__win_error(GetLastError());
  if (ioctlsocket(s, (long)FIONBIO, &one) != 0)
    return vigil__win_sock_error();
  return 0;
}

static int associate(vigil_loop *loop, SOCKET s, vigil_tcp *tcp) {
  return associate_key(loop, s, (ULONG_PTR)tcp);
}

/* An overlapped TCP socket, not inherited by child processes, associated
 * with the loop when tcp is given. */
static int new_socket(vigil_loop *loop, int family, vigil_tcp *tcp, SOCKET *out) {
  SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
  int err;
  *out = INVALID_SOCKET;
  if (s == INVALID_SOCKET) {
    err = vigil__win_sock_error();
    return err != 0 ? err : VIGIL_EPROTO; /* never "success" without a socket */
  }
  /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
  (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  if (tcp != NULL) {
    err = associate(loop, s, tcp);
    if (err != 0) {
      closesocket(s);
      return err;
    }
  }
  *out = s;
  return 0;
}

static int extension(SOCKET s, GUID guid, void *fn, DWORD size) {
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof guid, fn, size, &bytes,
               NULL, NULL) != 0)
    return vigil__win_sock_error();
  return 0;
}

static int setopt_int(SOCKET s, int level, int name, int value) {
  if (setsockopt(s, level, name, (const char *)&value, (int)sizeof value) != 0)
    return vigil__win_sock_error();
  return 0;
}

void vigil__tcp_plat_init(vigil_tcp *tcp) {
  memset(&tcp->plat, 0, sizeof tcp->plat);
  tcp->plat.accepted = VIGIL_INVALID_SOCKET;
}

/* ---- operation bookkeeping ------------------------------------------------ */

static void finish_close(vigil_tcp *tcp) {
  vigil__tcp_closed(tcp);
}

/* One of tcp's operations came back. While closing, the last one lets the
 * close callback run. */
static void op_finished(vigil_tcp *tcp) {
  tcp->plat.pending_ops--;
  if (is_closing(tcp) && tcp->plat.pending_ops == 0)
    finish_close(tcp);
}

/* ---- listen and accept ---------------------------------------------------- */

static int post_accept(vigil_tcp *server, accept_slot *slot) {
  accept_pool *pool = server->plat.accept_state;
  DWORD bytes = 0;
  int err = new_socket(server->loop, pool->family, NULL, &slot->sock);
  int e;

  if (err != 0) {
    slot->sock = INVALID_SOCKET;
    return err;
  }
  memset(&slot->ov, 0, sizeof slot->ov);
  if (!pool->accept_ex(sock_of(server), slot->sock, slot->addrs, 0, ADDR_SPACE, ADDR_SPACE, &bytes,
                       &slot->ov)) {
    e = WSAGetLastError();
    if (e != WSA_IO_PENDING) {
      closesocket(slot->sock);
      slot->sock = INVALID_SOCKET;
      return vigil__win_error((unsigned long)e);
    }
  }
  pool->pending++; /* success at once still posts a packet */
  return 0;
}

static void on_accept_retry(vigil_loop *loop, vigil_loop_timer *t);

static void arm_retry(vigil_tcp *server) {
  accept_pool *pool = server->plat.accept_state;
  vigil_loop *loop = server->loop;
  if (!vigil_loop_timer_armed(&pool->retry))
    vigil_loop_timer_arm(loop, &pool->retry, vigil_loop_now_ms(loop) + ACCEPT_RETRY_MS,
                         on_accept_retry);
}

/* Posts every idle slot; reports the first failure, and retries later. */
static void repost_accepts(vigil_tcp *server) {
  accept_pool *pool = server->plat.accept_state;
  unsigned i;
  int err;
  for (i = 0; i < ACCEPT_SLOTS; i++) {
    if (pool->slots[i].sock != INVALID_SOCKET)
      continue;
    err = post_accept(server, &pool->slots[i]);
    if (err != 0) {
      arm_retry(server);
      server->on.connection(server, err);
      return; /* the callback may have closed the listener */
    }
  }
}

static void on_accept_retry(vigil_loop *loop, vigil_loop_timer *t) {
  accept_pool *pool = vigil_container_of(t, accept_pool, retry);
  (void)loop;
  if (pool->server != NULL)
    repost_accepts(pool->server);
}

static void accept_complete(accept_pool *pool, accept_slot *slot, long status) {
  vigil_tcp *server = pool->server;
  SOCKET s = slot->sock;
  SOCKET lsock;
  int err;

  slot->sock = INVALID_SOCKET;
  pool->pending--;
  if (server == NULL) {
    /* The listener is gone: this was a cancelled accept. */
    closesocket(s);
    if (pool->pending == 0) {
      vigil__win_orphans(pool->loop, -1);
      free(pool);
    }
    return;
  }
  lsock = sock_of(server);
  err = vigil__win_ntstatus(status);
  /* Gives the socket the listener's properties; getpeername needs it. */
  if (err == 0 && setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&lsock,
                             (int)sizeof lsock) != 0)
    err = vigil__win_sock_error();
  if (err != 0) {
    closesocket(s);
    if (err != VIGIL_ECONNRESET && err != VIGIL_ECONNABORTED)
      server->on.connection(server, err);
  } else {
    server->plat.accepted = (vigil_os_socket)s;
    server->on.connection(server, 0);
    /* Not taken by vigil_tcp_accept in the callback: refuse it. */
    if (server->plat.accepted != VIGIL_INVALID_SOCKET) {
      closesocket((SOCKET)server->plat.accepted);
      server->plat.accepted = VIGIL_INVALID_SOCKET;
    }
  }
  /* The callback may have closed the listener (the pool may be gone). */
  if ((server->flags & (VIGIL__TCP_LISTENING | VIGIL__TCP_CLOSING)) == VIGIL__TCP_LISTENING)
    repost_accepts(server);
}

static int listen_options(SOCKET s, const struct sockaddr *addr, unsigned flags) {
  int err;
  /* Nobody else may bind this port while we hold it (Windows' SO_REUSEADDR
   * would let them steal it). Best effort: not every stack has it. */
  (void)setopt_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
  if (addr->sa_family != AF_INET6)
    return 0;
  /* Windows defaults to V6ONLY; clear it explicitly for dual stack. */
  err = setopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY, (flags & VIGIL_TCP_IPV6ONLY) != 0);
  return err;
}

int vigil__tcp_listen(vigil_tcp *tcp, const struct sockaddr *addr, int addrlen, int backlog,
                      unsigned flags) {
  accept_pool *pool = NULL;
  SOCKET s = INVALID_SOCKET;
  unsigned i;
  int err;

  /* No SO_REUSEPORT: Windows cannot spread one port over processes. */
  if ((flags & VIGIL_TCP_REUSEPORT) != 0)
    return VIGIL_ENOTSUP;
  err = new_socket(tcp->loop, addr->sa_family, NULL, &s);
  if (err != 0)
    return err;
  err = listen_options(s, addr, flags);
  if (err == 0 && bind(s, addr, addrlen) != 0)
    err = vigil__win_sock_error();
  if (err == 0 && listen(s, backlog > 0 ? backlog : SOMAXCONN) != 0)
    err = vigil__win_sock_error();
  if (err == 0) {
    pool = calloc(1, sizeof *pool);
    if (pool == NULL)
      err = VIGIL_ENOMEM;
  }
  if (err == 0)
    err = extension(s, (GUID)WSAID_ACCEPTEX, &pool->accept_ex, (DWORD)sizeof pool->accept_ex);
  if (err == 0)
    err = associate_key(tcp->loop, s, (ULONG_PTR)pool | POOL_TAG);
  if (err != 0) {
    free(pool);
    closesocket(s);
    return err;
  }
  pool->server = tcp;
  pool->loop = tcp->loop;
  vigil_loop_timer_init(&pool->retry);
  pool->family = addr->sa_family;
  for (i = 0; i < ACCEPT_SLOTS; i++)
    pool->slots[i].sock = INVALID_SOCKET;
  tcp->socket = (vigil_os_socket)s;
  tcp->plat.accept_state = pool;
  for (i = 0; i < ACCEPT_SLOTS && err == 0; i++)
    err = post_accept(tcp, &pool->slots[i]);
  if (err != 0 && pool->pending == 0) {
    /* Not one accept could be posted: fail the listen. */
    tcp->plat.accept_state = NULL;
    tcp->socket = VIGIL_INVALID_SOCKET;
    free(pool);
    closesocket(s);
    return err;
  }
  if (err != 0)
    arm_retry(tcp); /* some slots are out; the rest later */
  return 0;
}

int vigil__tcp_accept(vigil_tcp *server, vigil_tcp *client) {
  SOCKET s = (SOCKET)server->plat.accepted;
  int err;
  if (server->plat.accepted == VIGIL_INVALID_SOCKET)
    return VIGIL_EAGAIN;
  vigil__tcp_plat_init(client);
  err = associate(client->loop, s, client);
  if (err != 0)
    return err; /* the socket stays with the server, which closes it */
  client->socket = server->plat.accepted;
  server->plat.accepted = VIGIL_INVALID_SOCKET;
  return 0;
}

int vigil__tcp_accept_drop(vigil_tcp *server) {
  (void)server;
  return VIGIL_ENOTSUP;
}

/* No spare descriptor: a failed AcceptEx is dropped here already. */
vigil_os_socket vigil__spare_open(void) {
  return VIGIL_INVALID_SOCKET;
}

void vigil__spare_close(vigil_os_socket fd) {
  (void)fd;
}

/* ---- writes --------------------------------------------------------------- */

static void post_write(vigil_write_req *req) {
  vigil_tcp *tcp = req->handle;
  DWORD sent = 0;
  int e;

  memset(&req->req.plat.ov, 0, sizeof req->req.plat.ov);
  if (WSASend(sock_of(tcp), (WSABUF *)(void *)(req->bufs + req->index),
              (DWORD)(req->nbufs - req->index), &sent, 0, ov_of(&req->req.plat.ov), NULL) != 0) {
    e = WSAGetLastError();
    if (e != WSA_IO_PENDING) {
      vigil__write_done(req, vigil__win_error((unsigned long)e));
      return;
    }
  }
  tcp->plat.pending_ops++;
}

/* Completes every queued write with err; only for writes never posted
 * (queued while connecting). */
static void fail_writes(vigil_tcp *tcp, int err) {
  while (!vigil__queue_empty(&tcp->write_queue))
    vigil__write_done(first_write(tcp), err);
}

static void post_queued_writes(vigil_tcp *tcp) {
  vigil__queue *q, *next;
  /* post_write may complete a request at once, unlinking it: keep next. */
  for (q = tcp->write_queue.next; q != &tcp->write_queue; q = next) {
    next = q->next;
    post_write(vigil_container_of(vigil_container_of(q, vigil__req, link), vigil_write_req, req));
  }
}

void vigil__tcp_write(vigil_write_req *req) {
  if ((req->handle->flags & VIGIL__TCP_CONNECTING) != 0)
    return; /* posted once connected */
  post_write(req);
}

static void write_complete(vigil_tcp *tcp, vigil_write_req *req, long status) {
  int err = vigil__win_ntstatus(status);
  /* Closing: the bytes were already taken off the queue's count. A send
   * that finished before the cancel says so truthfully. */
  if (is_closing(tcp) && err != 0)
    err = VIGIL_ECANCELED;
  vigil__write_done(req, err);
  op_finished(tcp);
}

long vigil__tcp_try_write(vigil_tcp *tcp, const vigil_buf *bufs, unsigned nbufs, int last) {
  WSABUF wb[MAX_TRY_BUFS]; /* WSASend wants them writable; ours are const */
  DWORD sent = 0;
  unsigned i, n = nbufs > MAX_TRY_BUFS ? MAX_TRY_BUFS : nbufs;
  (void)last; /* Winsock cannot hold bytes back for the FIN: two segments */
  for (i = 0; i < n; i++) {
    wb[i].len = bufs[i].len;
    wb[i].buf = bufs[i].base;
  }
  if (WSASend(sock_of(tcp), wb, (DWORD)n, &sent, 0, NULL, NULL) != 0)
    return vigil__win_sock_error();
  return (long)sent;
}

/* ---- connect -------------------------------------------------------------- */

static int bind_wildcard(SOCKET s, int family) {
  struct sockaddr_storage ss;
  int len, e;
  memset(&ss, 0, sizeof ss);
  ss.ss_family = (short)family;
  len = family == AF_INET6 ? (int)sizeof(struct sockaddr_in6) : (int)sizeof(struct sockaddr_in);
  if (bind(s, (struct sockaddr *)&ss, len) == 0)
    return 0;
  e = WSAGetLastError();
  return e == WSAEINVAL ? 0 : vigil__win_error((unsigned long)e); /* already bound */
}

int vigil__tcp_connect(vigil_connect_req *req, const struct sockaddr *addr, int addrlen) {
  vigil_tcp *tcp = req->handle;
  LPFN_CONNECTEX connect_ex = NULL;
  SOCKET s = INVALID_SOCKET;
  int err, e;

  if (tcp->socket == VIGIL_INVALID_SOCKET) {
    err = new_socket(tcp->loop, addr->sa_family, tcp, &s);
    if (err != 0)
      return err;
    tcp->socket = (vigil_os_socket)s;
  }
  s = sock_of(tcp);
  err = bind_wildcard(s, addr->sa_family);
  if (err == 0)
    err = extension(s, (GUID)WSAID_CONNECTEX, &connect_ex, (DWORD)sizeof connect_ex);
  if (err != 0) {
    vigil__connect_done(req, err);
    return 0;
  }
  memset(&req->req.plat.ov, 0, sizeof req->req.plat.ov);
  if (!connect_ex(s, addr, addrlen, NULL, 0, NULL, ov_of(&req->req.plat.ov))) {
    e = WSAGetLastError();
    if (e != WSA_IO_PENDING) {
      /* Reported from the completion phase, like a later refusal. */
      vigil__connect_done(req, vigil__win_error((unsigned long)e));
      return 0;
    }
  }
  tcp->plat.pending_ops++;
  return 0;
}

static void connect_complete(vigil_tcp *tcp, vigil_connect_req *req, long status) {
  int err = vigil__win_ntstatus(status);
  if (is_closing(tcp)) {
    vigil__connect_done(req, VIGIL_ECANCELED);
    op_finished(tcp);
    return;
  }
  tcp->plat.pending_ops--;
  /* Makes getpeername, shutdown and SO_* reads work on the socket. */
  if (err == 0 && setsockopt(sock_of(tcp), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
    err = vigil__win_sock_error();
  vigil__connect_done(req, err);
  if (err != 0)
    fail_writes(tcp, err);
  else
    post_queued_writes(tcp);
}

/* ---- reads ---------------------------------------------------------------- */

static int still_reading(const vigil_tcp *tcp) {
  return (tcp->flags & (VIGIL__TCP_READING | VIGIL__TCP_CLOSING)) == VIGIL__TCP_READING;
}

static int post_read(vigil_tcp *tcp) {
  WSABUF none;
  DWORD flags = 0, got = 0;
  int e;

  none.len = 0;
  none.buf = NULL;
  memset(&tcp->plat.read_ov, 0, sizeof tcp->plat.read_ov);
  if (WSARecv(sock_of(tcp), &none, 1, &got, &flags, ov_of(&tcp->plat.read_ov), NULL) != 0) {
    e = WSAGetLastError();
    if (e != WSA_IO_PENDING)
      return vigil__win_error((unsigned long)e);
  }
  tcp->flags |= VIGIL__WIN_READ_PENDING;
  tcp->plat.pending_ops++;
  return 0;
}

int vigil__tcp_read_start(vigil_tcp *tcp) {
  if ((tcp->flags & VIGIL__WIN_READ_PENDING) != 0)
    return 0; /* left out by an earlier read_stop: it serves again */
  return post_read(tcp);
}

void vigil__tcp_read_stop(vigil_tcp *tcp) {
  /* The zero-byte read stays out (it holds no buffer); its completion is
   * ignored unless reading has started again by then. */
  (void)tcp;
}

/* Reads what the socket holds, up to VIGIL__READS_PER_EVENT buffers. */
static void drain(vigil_tcp *tcp) {
  vigil_buf buf;
  int count, n, want;

  for (count = 0; count < VIGIL__READS_PER_EVENT && still_reading(tcp); count++) {
    buf.base = NULL;
    buf.len = 0;
    tcp->alloc_cb(tcp, VIGIL__READ_SUGGEST, &buf);
    if (buf.base == NULL || buf.len == 0) {
      vigil__read_cb(tcp, VIGIL_ENOBUFS, &buf);
      return;
    }
    want = buf.len > (unsigned long)INT_MAX ? INT_MAX : (int)buf.len;
    n = recv(sock_of(tcp), buf.base, want, 0);
    if (n > 0) {
      vigil__read_cb(tcp, (long)n, &buf);
      if (n < want)
        return; /* drained: skip the WSAEWOULDBLOCK round trip */
    } else if (n == 0) {
      vigil__read_cb(tcp, VIGIL_EOF, &buf);
      return;
    } else {
      n = vigil__win_sock_error();
      vigil__read_cb(tcp, n == VIGIL_EAGAIN ? 0 : (long)n, &buf);
      return;
    }
  }
}

static void read_complete(vigil_tcp *tcp, long status) {
  int err;
  tcp->flags &= ~VIGIL__WIN_READ_PENDING;
  if (is_closing(tcp)) {
    op_finished(tcp);
    return;
  }
  tcp->plat.pending_ops--;
  if (!still_reading(tcp))
    return;
  err = vigil__win_ntstatus(status);
  if (err != 0) {
    vigil__read_cb(tcp, err, NULL);
    return;
  }
  drain(tcp);
  /* A callback may have stopped, restarted (posting its own read) or
   * closed the handle. */
  if (still_reading(tcp) && (tcp->flags & VIGIL__WIN_READ_PENDING) == 0) {
    err = post_read(tcp);
    if (err != 0)
      vigil__read_cb(tcp, err, NULL);
  }
}

/* ---- completion dispatch -------------------------------------------------- */

void vigil__win_complete(ULONG_PTR key, OVERLAPPED *ov, long status, DWORD bytes) {
  vigil_tcp *tcp;
  vigil__req *r;
  (void)bytes; /* stream sends complete whole or fail; reads are zero-byte */
  /* Completion keys are the pointers associate_key was given. */
  if ((key & POOL_TAG) != 0) {
    accept_complete((accept_pool *)(key & ~POOL_TAG), /* NOLINT(performance-no-int-to-ptr) */
                    vigil_container_of(ov, accept_slot, ov), status);
    return;
  }
  tcp = (vigil_tcp *)key; /* NOLINT(performance-no-int-to-ptr) */
  if (ov == ov_of(&tcp->plat.read_ov)) {
    read_complete(tcp, status);
    return;
  }
  r = vigil_container_of((vigil__overlapped *)(void *)ov, vigil__req, plat.ov);
  if (r->type == VIGIL__REQ_WRITE)
    write_complete(tcp, vigil_container_of(r, vigil_write_req, req), status);
  else
    connect_complete(tcp, vigil_container_of(r, vigil_connect_req, req), status);
}

/* ---- close and the rest --------------------------------------------------- */

/* Posted writes still own their bytes until their packets come back, but
 * they leave the queue's count now: the handle will send nothing more. */
static void forget_posted_writes(vigil_tcp *tcp) {
  vigil__queue *q;
  vigil_write_req *req;
  size_t left;
  unsigned i;
  for (q = tcp->write_queue.next; q != &tcp->write_queue; q = q->next) {
    req = vigil_container_of(vigil_container_of(q, vigil__req, link), vigil_write_req, req);
    for (left = 0, i = req->index; i < req->nbufs; i++)
      left += req->bufs[i].len;
    vigil__write_progress(req, left);
    req->index = req->nbufs;
  }
}

/* The listener's socket is closed: its accepts come back cancelled to the
 * pool, which frees itself after the last one. */
static void orphan_pool(vigil_tcp *tcp) {
  accept_pool *pool = tcp->plat.accept_state;
  tcp->plat.accept_state = NULL;
  pool->server = NULL;
  vigil_loop_timer_cancel(tcp->loop, &pool->retry);
  if (pool->pending == 0)
    free(pool);
  else
    vigil__win_orphans(tcp->loop, 1); /* vigil_loop_close waits for it */
}

/* IOCP completes operations; it has no "tell me when readable" for a
 * socket another library reads. */
int vigil__fd_watch_sync(vigil_tcp *tcp) {
  (void)tcp;
  return VIGIL_ENOTSUP;
}

void vigil__tcp_close(vigil_tcp *tcp, int reset) {
  SOCKET s = sock_of(tcp);
  struct linger lg;

  if (tcp->socket != VIGIL_INVALID_SOCKET) {
    if (reset) {
      lg.l_onoff = 1;
      lg.l_linger = 0;
      (void)setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, (int)sizeof lg);
    }
    /* Every outstanding operation completes (cancelled) through the port;
     * closesocket alone would do it on Windows, CancelIoEx makes sure. */
    (void)CancelIoEx((HANDLE)s, NULL); /* NOLINT(performance-no-int-to-ptr) */
    closesocket(s);
    tcp->socket = VIGIL_INVALID_SOCKET;
  }
  if (tcp->plat.accepted != VIGIL_INVALID_SOCKET) {
    closesocket((SOCKET)tcp->plat.accepted);
    tcp->plat.accepted = VIGIL_INVALID_SOCKET;
  }
  if (tcp->plat.accept_state != NULL)
    orphan_pool(tcp);
  if ((tcp->flags & VIGIL__TCP_CONNECTING) != 0)
    fail_writes(tcp, VIGIL_ECANCELED); /* never posted */
  else
    forget_posted_writes(tcp);
  if (tcp->plat.pending_ops == 0)
    finish_close(tcp);
}

int vigil__tcp_shutdown(vigil_tcp *tcp) {
  if (shutdown(sock_of(tcp), SD_SEND) != 0)
    return vigil__win_sock_error();
  return 0;
}

int vigil__tcp_nodelay(vigil_tcp *tcp, int enable) {
  return setopt_int(sock_of(tcp), IPPROTO_TCP, TCP_NODELAY, enable);
}

int vigil__tcp_name(const vigil_tcp *tcp, int peer, struct sockaddr *name, int *len) {
  int r = peer ? getpeername(sock_of(tcp), name, len) : getsockname(sock_of(tcp), name, len);
  if (r != 0)
    return vigil__win_sock_error();
  return 0;
}
