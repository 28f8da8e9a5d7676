/* TCP on POSIX: turns readiness (from epoll or poll) into the completions
 * the portable loop expects.
 *
 * A handle's interest is derived, never stored by hand: it wants READ while
 * listening or reading, and WRITE while connecting or while writes are
 * queued; after every operation and every event, sync_interest() makes the
 * poller's registration match. So an idle connection with nothing queued is
 * registered for reading only, and a connection that is not reading and has
 * nothing to write is not registered at all.
 *
 * Reads drain the socket (up to VIGIL__READS_PER_EVENT buffers) before the
 * loop moves on, so every byte already here reaches the session before the
 * wheel runs. Writes go out at once from vigil_tcp_write; only the part the
 * kernel refuses (EAGAIN) waits for writability. Sends use MSG_NOSIGNAL so a
 * peer's reset is an EPIPE result, not a SIGPIPE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "spare.h"

#if !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL 0
#endif

/* iovecs per sendmsg; more buffers go in later calls. */
#define MAX_IOV 64

static const vigil__poller *poller(const vigil_tcp *tcp) {
  return tcp->loop->plat_ops;
}

static int sync_interest(vigil_tcp *tcp) {
  uint32_t wanted = 0;
  unsigned f = tcp->flags;

  if (tcp->socket < 0)
    return 0;
  if ((f & VIGIL__TCP_WATCH) != 0) {
    if ((f & (VIGIL__TCP_CLOSING | VIGIL__TCP_WATCH_R)) == VIGIL__TCP_WATCH_R)
      wanted |= VIGIL__IO_READ;
    if ((f & (VIGIL__TCP_CLOSING | VIGIL__TCP_WATCH_W)) == VIGIL__TCP_WATCH_W)
      wanted |= VIGIL__IO_WRITE;
  } else if ((f & VIGIL__TCP_CLOSING) == 0) {
    if ((f & (VIGIL__TCP_LISTENING | VIGIL__TCP_READING)) != 0)
      wanted |= VIGIL__IO_READ;
    if ((f & VIGIL__TCP_CONNECTING) != 0 ||
        ((f & VIGIL__TCP_CONNECTED) != 0 && !vigil__queue_empty(&tcp->write_queue)))
      wanted |= VIGIL__IO_WRITE;
  }
  tcp->plat.wanted = wanted;
  return poller(tcp)->update(tcp->loop, tcp);
}

#if !defined(HAVE_ACCEPT4)
static int set_nonblock_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    return vigil__unix_err();
  fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0)
    return vigil__unix_err();
  return 0;
}
#endif

static int new_socket(int family, int *out) {
  int fd;
#if defined(HAVE_ACCEPT4) /* and socket()'s SOCK_NONBLOCK | SOCK_CLOEXEC */
  fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return vigil__unix_err();
#else
  int err;
  fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0)
    return vigil__unix_err();
  err = set_nonblock_cloexec(fd);
  if (err != 0) {
    close(fd);
    return err;
  }
#endif
#if defined(SO_NOSIGPIPE)
  {
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
  *out = fd;
  return 0;
}

static int accept_one(int lfd, int *out) {
  int fd;
  for (;;) {
#if defined(HAVE_ACCEPT4) /* and socket()'s SOCK_NONBLOCK | SOCK_CLOEXEC */
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    fd = accept(lfd, NULL, NULL);
    if (fd >= 0 && set_nonblock_cloexec(fd) != 0) {
      close(fd);
      continue;
    }
#endif
    if (fd >= 0) {
      *out = fd;
      return 0;
    }
    /* A peer that reset before we accepted is no news to anybody. */
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    return vigil__unix_err();
  }
}

void vigil__tcp_plat_init(vigil_tcp *tcp) {
  tcp->plat.wanted = 0;
  tcp->plat.registered = 0;
  tcp->plat.index = 0;
  tcp->plat.accepted = -1;
}

static int setopt_int(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0)
    return vigil__unix_err();
  return 0;
}

static int listen_options(int fd, const struct sockaddr *addr, unsigned flags) {
  int err = setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (err != 0)
    return err;
  if ((flags & VIGIL_TCP_REUSEPORT) != 0) {
#if defined(SO_REUSEPORT)
    err = setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (err != 0)
      return err == VIGIL_ENOPROTOOPT ? VIGIL_ENOTSUP : err;
#else
    return VIGIL_ENOTSUP;
#endif
  }
  if (addr->sa_family == AF_INET6)
    err = setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & VIGIL_TCP_IPV6ONLY) != 0);
  return err;
}

int vigil__tcp_listen(vigil_tcp *tcp, const struct sockaddr *addr, int addrlen, int backlog,
                      unsigned flags) {
  int fd = -1, err;

  err = new_socket(addr->sa_family, &fd);
  if (err != 0)
    return err;
  err = listen_options(fd, addr, flags);
  if (err == 0 && bind(fd, addr, (socklen_t)addrlen) != 0)
    err = vigil__unix_err();
  if (err == 0 && listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
    err = vigil__unix_err();
  if (err == 0) {
    tcp->socket = fd;
    err = sync_interest(tcp);
    if (err != 0)
      tcp->socket = -1;
  }
  if (err != 0)
    close(fd);
  return err;
}

static void do_accept(vigil_tcp *server) {
  int i, fd = -1, err;

  for (i = 0; i < VIGIL__ACCEPTS_PER_EVENT; i++) {
    err = accept_one(server->socket, &fd);
    if (err == VIGIL_EAGAIN)
      return;
    if (err != 0) {
      server->on.connection(server, err);
      return;
    }
    server->plat.accepted = fd;
    server->on.connection(server, 0);
    /* Not taken by vigil_tcp_accept in the callback: refuse it. */
    if (server->plat.accepted >= 0) {
      close(server->plat.accepted);
      server->plat.accepted = -1;
    }
    if ((server->flags & VIGIL__TCP_LISTENING) == 0)
      return;
  }
}

int vigil__tcp_accept(vigil_tcp *server, vigil_tcp *client) {
  if (server->plat.accepted < 0)
    return VIGIL_EAGAIN;
  vigil__tcp_plat_init(client);
  client->socket = server->plat.accepted;
  server->plat.accepted = -1;
  return 0;
}

int vigil__tcp_accept_drop(vigil_tcp *server) {
  int fd = -1, err = accept_one(server->socket, &fd);
  if (err != 0)
    return err;
  close(fd);
  return 0;
}

vigil_os_socket vigil__spare_open(void) {
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void vigil__spare_close(vigil_os_socket fd) {
  if (fd >= 0)
    (void)close(fd);
}

/* Completes every queued write with err (a failed connection or a write
 * error: nothing after it can be delivered in order). */
static void fail_writes(vigil_tcp *tcp, int err) {
  while (!vigil__queue_empty(&tcp->write_queue))
    vigil__write_done(
        vigil_container_of(vigil_container_of(tcp->write_queue.next, vigil__req, link),
                           vigil_write_req, req),
        err);
}

/* Writes queued requests until done or EAGAIN. */
static void do_write(vigil_tcp *tcp) {
  struct iovec iov[MAX_IOV];
  struct msghdr msg;
  vigil_write_req *req;
  vigil_buf *b;
  unsigned i, n;
  ssize_t r;
  size_t left;

  while (!vigil__queue_empty(&tcp->write_queue)) {
    req = vigil_container_of(vigil_container_of(tcp->write_queue.next, vigil__req, link),
                             vigil_write_req, req);
    while (req->index < req->nbufs && req->bufs[req->index].len == 0)
      req->index++;
    if (req->index == req->nbufs) {
      vigil__write_done(req, 0);
      continue;
    }
    n = req->nbufs - req->index;
    if (n > MAX_IOV)
      n = MAX_IOV;
    for (i = 0; i < n; i++) {
      iov[i].iov_base = req->bufs[req->index + i].base;
      iov[i].iov_len = req->bufs[req->index + i].len;
    }
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    r = sendmsg(tcp->socket, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      fail_writes(tcp, vigil__unix_err());
      return;
    }
    vigil__write_progress(req, (size_t)r);
    for (left = (size_t)r; left > 0;) {
      b = &req->bufs[req->index];
      if (left < b->len) {
        b->base += left;
        b->len -= left;
        break;
      }
      left -= b->len;
      b->len = 0;
      req->index++;
    }
  }
}

static void finish_connect(vigil_tcp *tcp) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  int status;

  if (getsockopt(tcp->socket, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
    status = vigil__unix_err();
  else
    status = soerr != 0 ? -soerr : 0;
  if (status == VIGIL_EINPROGRESS)
    return; /* spurious wake-up; still connecting */
  vigil__connect_done(tcp->connect_req, status);
  if (status != 0)
    fail_writes(tcp, status);
  else
    do_write(tcp);
}

int vigil__tcp_connect(vigil_connect_req *req, const struct sockaddr *addr, int addrlen) {
  vigil_tcp *tcp = req->handle;
  int r, err;

  if (tcp->socket < 0) {
    err = new_socket(addr->sa_family, &tcp->socket);
    if (err != 0)
      return err;
  }
  do
    r = connect(tcp->socket, addr, (socklen_t)addrlen);
  while (r != 0 && errno == EINTR);
  if (r == 0) {
    vigil__connect_done(req, 0);
  } else if (errno != EINPROGRESS) {
    /* Refused at once (loopback can do that): report it the same way as a
     * later refusal, from the completion phase. */
    vigil__connect_done(req, vigil__unix_err());
    return 0;
  }
  err = sync_interest(tcp);
  if (err != 0 && r != 0)
    return err;
  return 0;
}

/* Whether reads are stamped with the kernel's receive time: only where
 * the OS has the option, and only for a loop on the OS clocks (an injected
 * clock has no relation to the kernel's). */
#if defined(HAVE_SO_TIMESTAMPNS)
static int stamps_wanted(const vigil_tcp *tcp) {
  return tcp->loop->clock == vigil__plat_clock;
}
#endif

int vigil__tcp_read_start(vigil_tcp *tcp) {
#if defined(HAVE_SO_TIMESTAMPNS)
  /* Best effort: without it reads are dated by the loop's clock. */
  if (stamps_wanted(tcp))
    (void)setopt_int(tcp->socket, SOL_SOCKET, SO_TIMESTAMPNS, 1);
#endif
  return sync_interest(tcp);
}

void vigil__tcp_read_stop(vigil_tcp *tcp) {
  (void)sync_interest(tcp);
}

static int still_reading(const vigil_tcp *tcp) {
  return (tcp->flags & (VIGIL__TCP_READING | VIGIL__TCP_CLOSING)) == VIGIL__TCP_READING;
}

#if defined(HAVE_SO_TIMESTAMPNS)
static uint64_t os_clock(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A sample whose window is at most this dates stamps to within half of it
 * (25 us, a fortieth of the wheel's 1 ms tick); two clock reads take ~150 ns
 * on this VM's kvm-clock, a few us under valgrind, and a preemption or an
 * interrupt between them far more. */
#define NARROW_WINDOW_NS 50000

/* realtime - monotonic, sampled once per loop iteration that reads (the
 * loop's now differs between iterations): up to three tries, stopping at
 * the first narrow window, else the narrowest (src/rxstamp.c). Each try is
 * three clock reads, ~70 ns each on this VM's kvm-clock; three tries every
 * time were 9 of the 13 clock reads of an iteration that reads. */
static void sample_offset(vigil_loop *loop) {
  uint64_t s[3][3];
  int64_t off;
  unsigned i, n = 0;
  if (loop->rx_sampled_ns == loop->now_ns)
    return;
  for (i = 0; i < 3; i++) {
    s[i][0] = os_clock(CLOCK_MONOTONIC);
    s[i][1] = os_clock(CLOCK_REALTIME);
    s[i][2] = os_clock(CLOCK_MONOTONIC);
    n++;
    if (s[i][2] >= s[i][0] && s[i][2] - s[i][0] <= NARROW_WINDOW_NS)
      break;
  }
  off = vigil__clock_offset((const uint64_t(*)[3])s, n);
  loop->rx_offset_ok =
      vigil__clock_offset_steady(loop->rx_offset_ns, loop->rx_sampled_ns, off, loop->now_ns);
  loop->rx_offset_ns = off;
  loop->rx_sampled_ns = loop->now_ns;
}

/* recv() that also returns the kernel's receive stamp of the last packet
 * read, on the loop's clock (0: none). */
static ssize_t recv_stamped(vigil_tcp *tcp, void *base, size_t len, uint64_t *rx_ns) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct timespec))];
  } ctl;
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *cm;
  ssize_t n;
  *rx_ns = 0;
  if (!stamps_wanted(tcp))
    return recv(tcp->socket, base, len, 0);
  iov.iov_base = base;
  iov.iov_len = len;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  n = recvmsg(tcp->socket, &msg, 0);
  if (n <= 0)
    return n;
  for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
    struct timespec ts;
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
        cm->cmsg_len < CMSG_LEN(sizeof ts))
      continue;
    memcpy(&ts, CMSG_DATA(cm), sizeof ts);
    if (ts.tv_sec <= 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
      break;
    sample_offset(tcp->loop);
    if (tcp->loop->rx_offset_ok)
      *rx_ns = vigil__rx_mono((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                              tcp->loop->rx_offset_ns);
    break;
  }
  return n;
}
#else
static ssize_t recv_stamped(vigil_tcp *tcp, void *base, size_t len, uint64_t *rx_ns) {
  *rx_ns = 0;
  return recv(tcp->socket, base, len, 0);
}
#endif

static void do_read(vigil_tcp *tcp) {
  vigil_buf buf;
  ssize_t n;
  uint64_t rx_ns;
  int count;

  for (count = 0; count < VIGIL__READS_PER_EVENT && still_reading(tcp); count++) {
    buf.base = NULL;
    buf.len = 0;
    tcp->alloc_cb(tcp, VIGIL__READ_SUGGEST, &buf);
    if (buf.base == NULL || buf.len == 0) {
      vigil__read_cb(tcp, VIGIL_ENOBUFS, &buf);
      return;
    }
    if (buf.len > (size_t)LONG_MAX)
      buf.len = (size_t)LONG_MAX;
    do
      n = recv_stamped(tcp, buf.base, buf.len, &rx_ns);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
      vigil__read_cb_at(tcp, (long)n, &buf, rx_ns);
      if ((size_t)n < buf.len)
        return; /* drained: skip the EAGAIN round trip */
    } else if (n == 0) {
      vigil__read_cb(tcp, VIGIL_EOF, &buf);
      return;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      vigil__read_cb(tcp, 0, &buf);
      return;
    } else {
      vigil__read_cb(tcp, vigil__unix_err(), &buf);
      return;
    }
  }
}

void vigil__unix_io(vigil_tcp *tcp, unsigned events) {
  if ((tcp->flags & VIGIL__TCP_CLOSING) != 0)
    return;
  if ((tcp->flags & VIGIL__TCP_WATCH) != 0) {
    /* VIGIL__IO_* and VIGIL_FD_* have the same values; the callback may
     * change the interest or close the watch, and does its own syncing. */
    vigil__fd_watch_ready(tcp, events);
    return;
  }
  if ((tcp->flags & VIGIL__TCP_LISTENING) != 0) {
    if ((events & VIGIL__IO_READ) != 0)
      do_accept(tcp);
  } else if ((tcp->flags & VIGIL__TCP_CONNECTING) != 0) {
    if ((events & VIGIL__IO_WRITE) != 0)
      finish_connect(tcp);
  } else {
    if ((events & VIGIL__IO_READ) != 0 && still_reading(tcp))
      do_read(tcp);
    if ((events & VIGIL__IO_WRITE) != 0 && (tcp->flags & VIGIL__TCP_CLOSING) == 0 &&
        !vigil__queue_empty(&tcp->write_queue))
      do_write(tcp);
  }
  if ((tcp->flags & VIGIL__TCP_CLOSING) == 0 && sync_interest(tcp) != 0)
    fail_writes(tcp, VIGIL_ENOMEM);
}

void vigil__tcp_write(vigil_write_req *req) {
  vigil_tcp *tcp = req->handle;
  if ((tcp->flags & VIGIL__TCP_CONNECTING) != 0)
    return; /* goes out once connected */
  /* Only the first queued write may go now; later ones wait behind it. */
  if (tcp->write_queue.next != &req->req.link)
    return;
  do_write(tcp);
  if (sync_interest(tcp) != 0)
    fail_writes(tcp, VIGIL_ENOMEM);
}

long vigil__tcp_try_write(vigil_tcp *tcp, const vigil_buf *bufs, unsigned nbufs, int last) {
  struct iovec iov[MAX_IOV];
  struct msghdr msg;
  unsigned i, n = nbufs > MAX_IOV ? MAX_IOV : nbufs;
  int flags = MSG_NOSIGNAL;
  ssize_t r;
#if defined(MSG_MORE)
  /* Held back for the FIN that follows at once (vigil_tcp_try_write_last):
   * the kernel tacks the FIN onto a segment it has not sent yet. Only when
   * this call covers every buffer: otherwise no FIN follows, and Linux
   * would send the held bytes of an idle connection only 200 ms later. A
   * write the kernel takes only in part, for want of room, is pushed before
   * it returns. */
  if (last && n == nbufs)
    flags |= MSG_MORE;
#else
  (void)last;
#endif

  for (i = 0; i < n; i++) {
    iov[i].iov_base = bufs[i].base;
    iov[i].iov_len = bufs[i].len;
  }
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  do
    r = sendmsg(tcp->socket, &msg, flags);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return vigil__unix_err();
  return (long)r;
}

int vigil__fd_watch_sync(vigil_tcp *tcp) {
  return sync_interest(tcp);
}

void vigil__tcp_close(vigil_tcp *tcp, int reset) {
  struct linger lg;

  if ((tcp->flags & VIGIL__TCP_WATCH) != 0) {
    tcp->plat.wanted = 0; /* the descriptor is its owner's to close */
    (void)poller(tcp)->update(tcp->loop, tcp);
    tcp->socket = -1;
    vigil__tcp_closed(tcp);
    return;
  }

  if (tcp->socket >= 0) {
    tcp->plat.wanted = 0;
    (void)poller(tcp)->update(tcp->loop, tcp);
    if (reset) {
      lg.l_onoff = 1;
      lg.l_linger = 0;
      (void)setsockopt(tcp->socket, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(tcp->socket);
    tcp->socket = -1;
  }
  if (tcp->plat.accepted >= 0) {
    close(tcp->plat.accepted);
    tcp->plat.accepted = -1;
  }
  if (tcp->connect_req != NULL)
    vigil__connect_done(tcp->connect_req, VIGIL_ECANCELED);
  fail_writes(tcp, VIGIL_ECANCELED);
  vigil__tcp_closed(tcp);
}

int vigil__tcp_shutdown(vigil_tcp *tcp) {
  if (shutdown(tcp->socket, SHUT_WR) != 0)
    return vigil__unix_err();
  return 0;
}

int vigil__tcp_nodelay(vigil_tcp *tcp, int enable) {
  return setopt_int(tcp->socket, IPPROTO_TCP, TCP_NODELAY, enable);
}

int vigil__tcp_name(const vigil_tcp *tcp, int peer, struct sockaddr *name, int *len) {
  socklen_t sl = (socklen_t)*len;
  int r = peer ? getpeername(tcp->socket, name, &sl) : getsockname(tcp->socket, name, &sl);
  if (r != 0)
    return vigil__unix_err();
  *len = (int)sl;
  return 0;
}
