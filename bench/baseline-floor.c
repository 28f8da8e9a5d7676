/* The floor for bench-connections: the least a heartbeat server can do on
 * Linux, so the benchmark can say how far above it vigil and libuv are.
 *
 * One epoll descriptor, level-triggered, the socket's descriptor as the
 * event's data; no timers (it never declares anyone dead: it only answers),
 * no per-connection object. Reads go to one static buffer and every whole
 * frame in it is answered at once with a send(); the rare tail of an
 * incomplete frame (a read that split a frame) is copied to a small
 * allocation hung off a table indexed by descriptor, freed as soon as the
 * frame completes. So an idle connection costs this process one pointer
 * (8 B in that table) and the kernel its socket and epoll item: what any
 * server must pay, and what bench-connections prints the others against.
 *
 * It speaks the same subset of protocol v1 as baseline-uv-heartbeat.c:
 *   HELLO 0x01 -> WELCOME 0x02 (version 1, the client's interval, timeout,
 *                 interval/2, max_frame, max_message as varints)
 *   PING  0x03 00 -> PONG 0x04 00
 *   CLOSE 0x07 -> connection closed
 *   anything else is skipped by its length.
 *
 * usage: baseline-floor [--host H] [--port P]
 * Prints "listening PORT" once bound (port 0: the kernel picks), and on
 * SIGTERM/SIGINT a line of counters before it exits. Linux only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_HELLO 0x01
#define FRAME_WELCOME 0x02
#define FRAME_PING 0x03
#define FRAME_PONG 0x04
#define FRAME_CLOSE 0x07
#define FRAME_MAX 512 /* a HELLO is at most 292 bytes; pings are 2 */

/* An incomplete frame held back between reads. */
typedef struct tail {
  size_t len;
  uint8_t b[FRAME_MAX];
} tail;

static int epfd;
static tail **tails; /* by descriptor */
static size_t ntails;
static volatile sig_atomic_t stop;
static unsigned long long n_conns, n_pings, n_hello;
static uint8_t rbuf[65536 + FRAME_MAX];

/* LEB128 varint: returns bytes used, 0 if incomplete, -1 if malformed. */
static int get_varint(const uint8_t *p, size_t n, uint32_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < n && i < 5; i++) {
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      if (x > UINT32_MAX)
        return -1;
      *v = (uint32_t)x;
      return (int)i + 1;
    }
  }
  return n >= 5 ? -1 : 0;
}

static size_t put_varint(uint8_t *p, uint32_t v) {
  size_t i = 0;
  while (v >= 0x80) {
    p[i++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[i++] = (uint8_t)v;
  return i;
}

static void conn_close(int fd) {
  if ((size_t)fd < ntails) {
    free(tails[fd]);
    tails[fd] = NULL;
  }
  close(fd); /* also leaves the epoll set */
  n_conns--;
}

/* 0, or -1 if the connection is to be closed. */
static int answer_hello(int fd, const uint8_t *p, uint32_t len) {
  uint32_t f[4] = {0, 0, 0, 0}; /* interval, timeout, max_frame, max_message */
  size_t off = 5, bl = 0, ol = 0;
  uint8_t out[32], body[26];

  if (len < 11 || memcmp(p, "VIGL", 4) != 0)
    return -1;
  for (int k = 0; k < 4; k++) {
    int used = get_varint(p + off, len - off, &f[k]);
    if (used <= 0)
      return -1;
    off += (size_t)used;
  }
  if (f[0] < 100)
    f[0] = 100;
  if (f[1] < 2 * f[0])
    f[1] = 2 * f[0];
  body[bl++] = 1;
  bl += put_varint(body + bl, f[0]);
  bl += put_varint(body + bl, f[1]);
  bl += put_varint(body + bl, f[0] / 2);
  bl += put_varint(body + bl, f[2]);
  bl += put_varint(body + bl, f[3]);
  out[ol++] = FRAME_WELCOME;
  ol += put_varint(out + ol, (uint32_t)bl);
  memcpy(out + ol, body, bl);
  n_hello++;
  return send(fd, out, ol + bl, MSG_NOSIGNAL) == (ssize_t)(ol + bl) ? 0 : -1;
}

/* Answers every whole frame of b[0..n); returns the offset of the
 * incomplete tail (n if none), or -1 if the connection is to be closed. */
static long process(int fd, const uint8_t *b, size_t n) {
  static const uint8_t pong[2] = {FRAME_PONG, 0};
  size_t off = 0;

  while (off < n) {
    uint32_t len = 0;
    int used = get_varint(b + off + 1, n - off - 1, &len);
    if (used == 0)
      break;
    if (used < 0 || len > FRAME_MAX - 6)
      return -1;
    if (n - off - 1 - (size_t)used < len)
      break;
    switch (b[off]) {
    case FRAME_HELLO:
      if (answer_hello(fd, b + off + 1 + used, len) != 0)
        return -1;
      break;
    case FRAME_PING:
      n_pings++;
      if (send(fd, pong, sizeof(pong), MSG_NOSIGNAL) != (ssize_t)sizeof(pong))
        return -1;
      break;
    case FRAME_CLOSE:
      return -1;
    default:
      break;
    }
    off += 1 + (size_t)used + len;
  }
  return (long)off;
}

/* Keeps b[0..n) as fd's tail (n < FRAME_MAX); -1 when out of memory. */
static int keep_tail(int fd, const uint8_t *b, size_t n) {
  if ((size_t)fd >= ntails) {
    size_t want = (size_t)fd * 2 + 64;
    tail **t = realloc(tails, want * sizeof(*t));
    if (t == NULL)
      return -1;
    memset(t + ntails, 0, (want - ntails) * sizeof(*t));
    tails = t;
    ntails = want;
  }
  if (tails[fd] == NULL && (tails[fd] = malloc(sizeof(tail))) == NULL)
    return -1;
  memcpy(tails[fd]->b, b, n);
  tails[fd]->len = n;
  return 0;
}

static void on_readable(int fd) {
  size_t have = 0;
  ssize_t r;
  long used;

  if ((size_t)fd < ntails && tails[fd] != NULL) {
    have = tails[fd]->len;
    memcpy(rbuf, tails[fd]->b, have);
    free(tails[fd]);
    tails[fd] = NULL;
  }
  r = recv(fd, rbuf + have, sizeof(rbuf) - have, 0);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
    if (have > 0 && keep_tail(fd, rbuf, have) != 0)
      conn_close(fd);
    return;
  }
  if (r <= 0) {
    conn_close(fd);
    return;
  }
  have += (size_t)r;
  used = process(fd, rbuf, have);
  if (used < 0 || have - (size_t)used >= FRAME_MAX ||
      (have > (size_t)used && keep_tail(fd, rbuf + used, have - (size_t)used) != 0))
    conn_close(fd);
}

static void on_accept(int lfd) {
  for (;;) {
    struct epoll_event ev;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    n_conns++;
  }
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, lfd, one = 1;
  struct sockaddr_in sa;
  socklen_t salen = sizeof(sa);
  struct epoll_event ev;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = (int)strtol(argv[i + 1], NULL, 10);
  }
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (lfd < 0 || epfd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
      setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 511) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
    fprintf(stderr, "baseline-floor: %s:%d: %s\n", host, port, strerror(errno));
    return 1;
  }
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  printf("listening %d\n", ntohs(sa.sin_port));
  fflush(stdout);
  while (!stop) {
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, -1);
    for (int k = 0; k < n; k++) {
      if (evs[k].data.fd == lfd)
        on_accept(lfd);
      else
        on_readable(evs[k].data.fd);
    }
  }
  printf("conns %llu hellos %llu pings %llu\n", n_conns, n_hello, n_pings);
  return 0;
}
