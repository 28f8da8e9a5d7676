/* Baseline for bench-connections: a heartbeat server written the way people
 * write one today on libuv, without libvigil.
 *
 * Per connection, the usual pair of handles: a uv_tcp_t, and a uv_timer_t
 * used as a read timeout that is restarted on every read (uv_timer_start
 * again: a removal and an insertion in libuv's timer heap). Each write
 * allocates its request, as in the libuv guide; reads share one static
 * buffer (kinder to the baseline than the guide's malloc(suggested_size)
 * per read, so the comparison does not flatter vigil).
 *
 * It speaks just enough of vigil's wire protocol v1 (include/vigil/wire.h,
 * docs/PROTOCOL.md), hand-rolled as a user without the library would, for
 * the same load generator to drive it and `vigil serve` alike:
 *   frame    = type:u8  length:varint(LEB128)  payload[length]
 *   HELLO    0x01 -> answered with WELCOME 0x02 (version 1, then the
 *               client's interval, timeout, interval/2, max_frame,
 *               max_message as varints)
 *   PING     0x03 00 -> answered with PONG 0x04 00
 *   CLOSE    0x07 -> connection closed
 *   anything else is skipped by its length.
 *
 * usage: baseline-uv-heartbeat [--host H] [--port P] [--timeout-ms T]
 * Prints "listening PORT" once bound (port 0: the kernel picks), and on
 * SIGTERM/SIGINT a line of counters before it exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define FRAME_HELLO 0x01
#define FRAME_WELCOME 0x02
#define FRAME_PING 0x03
#define FRAME_PONG 0x04
#define FRAME_CLOSE 0x07
#define RX_CAP 512 /* a HELLO is at most 292 bytes; pings are 2 */

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uint32_t timeout_ms;
  int closing;
  int handles_open;
  size_t rx_len;
  uint8_t rx[RX_CAP];
} conn;

typedef struct write_req {
  uv_write_t req;
  uv_buf_t buf;
  uint8_t data[32];
} write_req;

static uv_loop_t *loop;
static uint32_t default_timeout_ms = 3000;
static unsigned long long n_conns, n_pings, n_timeouts, n_hello;
static uint8_t read_buf[65536];

static void on_handle_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->handles_open == 0) {
    free(c);
    n_conns--;
  }
}

static void conn_close(conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  if (status < 0)
    conn_close(req->handle->data);
  free(w);
}

static void send_bytes(conn *c, const uint8_t *b, size_t n) {
  write_req *w = malloc(sizeof(*w));
  if (w == NULL || n > sizeof(w->data)) {
    free(w);
    conn_close(c);
    return;
  }
  memcpy(w->data, b, n);
  w->buf = uv_buf_init((char *)w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write) < 0) {
    free(w);
    conn_close(c);
  }
}

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

static void answer_hello(conn *c, const uint8_t *p, uint32_t len) {
  uint32_t f[4] = {0, 0, 0, 0}; /* interval, timeout, max_frame, max_message */
  size_t off = 5;
  uint8_t out[32], body[26];
  size_t bl = 0, ol = 0;

  if (len < 11 || memcmp(p, "VIGL", 4) != 0) {
    conn_close(c);
    return;
  }
  for (int k = 0; k < 4; k++) {
    int used = get_varint(p + off, len - off, &f[k]);
    if (used <= 0) {
      conn_close(c);
      return;
    }
    off += (size_t)used;
  }
  if (f[0] < 100)
    f[0] = 100;
  if (f[1] < 2 * f[0])
    f[1] = 2 * f[0];
  c->timeout_ms = f[1];
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
  send_bytes(c, out, ol + bl);
}

/* Handles every whole frame in c->rx; keeps an incomplete tail. */
static void process(conn *c) {
  static const uint8_t pong[2] = {FRAME_PONG, 0};
  size_t off = 0;

  while (!c->closing && off < c->rx_len) {
    uint32_t len = 0;
    int used = get_varint(c->rx + off + 1, c->rx_len - off - 1, &len);
    if (used == 0)
      break;
    if (used < 0 || len > RX_CAP - 6) {
      conn_close(c);
      return;
    }
    if (c->rx_len - off - 1 - (size_t)used < len)
      break;
    const uint8_t *payload = c->rx + off + 1 + used;
    switch (c->rx[off]) {
    case FRAME_HELLO:
      answer_hello(c, payload, len);
      break;
    case FRAME_PING:
      n_pings++;
      send_bytes(c, pong, sizeof(pong));
      break;
    case FRAME_CLOSE:
      conn_close(c);
      return;
    default:
      break;
    }
    off += 1 + (size_t)used + len;
  }
  memmove(c->rx, c->rx + off, c->rx_len - off);
  c->rx_len -= off;
}

static void on_timeout(uv_timer_t *t) {
  n_timeouts++;
  conn_close(t->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  size_t done = 0;

  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0)
    return;
  /* the read timeout, reset on every read */
  uv_timer_start(&c->timer, on_timeout, c->timeout_ms, 0);
  while (done < (size_t)nread && !c->closing) {
    size_t take = RX_CAP - c->rx_len;
    if (take > (size_t)nread - done)
      take = (size_t)nread - done;
    memcpy(c->rx + c->rx_len, buf->base + done, take);
    c->rx_len += take;
    done += take;
    process(c);
    if (c->rx_len == RX_CAP)
      conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  conn *c;

  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  c->timeout_ms = default_timeout_ms;
  n_conns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, c->timeout_ms, 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  printf("conns %llu hellos %llu pings %llu timeouts %llu\n", n_conns, n_hello, n_pings,
         n_timeouts);
  fflush(stdout);
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, rc;
  struct sockaddr_storage ss;
  int namelen = sizeof(ss);
  uv_tcp_t server;
  uv_signal_t sigterm, sigint;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--timeout-ms") == 0)
      default_timeout_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
  }
  loop = uv_default_loop();
  uv_tcp_init(loop, &server);
  if (strchr(host, ':') != NULL)
    rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc == 0)
    rc = uv_tcp_bind(&server, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&server, 511, on_connection);
  if (rc != 0) {
    fprintf(stderr, "baseline-uv-heartbeat: %s:%d: %s\n", host, port, uv_strerror(rc));
    return 1;
  }
  uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &namelen);
  printf("listening %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fflush(stdout);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
