/* vigil's heartbeat in a libuv program (include/vigil/uv.h).
 *
 * The program keeps its own libuv code: it listens, accepts and connects
 * with uv_tcp_t handles it owns, and attaches vigil to each connected
 * handle. Here one process plays both ends on 127.0.0.1: the client
 * waits for its first round-trip time, sends a message, the server
 * echoes it, and the client then closes (CLOSE NORMAL). Each side
 * prints what vigil tells it, the server's verdict on the client
 * included. When vigil lets go of a handle (on_detach), the program
 * closes it. Built and run by ctest (example.uv_heartbeat). */
#include <stdio.h>
#include <string.h>

#include <uv.h>
#include <vigil.h>
#include <vigil/uv.h>

typedef struct end {
  const char *name;
  uv_tcp_t tcp;
  vigil_uv_conn vigil;
  int detached;
} end;

static uv_loop_t loop;
static uv_tcp_t listener;
static uv_timer_t watchdog;
static end server, client;
static int echoed, server_cause = -1;

static void on_tcp_closed(uv_handle_t *h) {
  (void)h;
}

/* vigil is done with the handle: the program closes it. Once both ends
 * are detached nothing is left and the loop ends. */
static void on_detach(vigil_uv_conn *c) {
  end *e = c->data;
  printf("%s: detached, closing the socket\n", e->name);
  e->detached = 1;
  uv_close((uv_handle_t *)&e->tcp, on_tcp_closed);
  if (server.detached && client.detached) {
    uv_close((uv_handle_t *)&watchdog, NULL);
    if (!uv_is_closing((uv_handle_t *)&listener))
      uv_close((uv_handle_t *)&listener, NULL);
  }
}

static void on_open(vigil_uv_conn *c, const vigil_open_info *info) {
  end *e = c->data;
  printf("%s: open with %s (%.*s), interval %u ms, timeout %u ms\n", e->name, info->peer,
         (int)info->id_len, info->id, info->interval_ms, info->timeout_ms);
}

static void on_rtt(vigil_uv_conn *c, uint64_t rtt_ns) {
  end *e = c->data;
  printf("%s: pong, rtt %.3f ms\n", e->name, (double)rtt_ns / 1e6);
  if (e == &client && !echoed)
    (void)vigil_uv_send(c, "hello over libuv", 16);
}

static void on_message(vigil_uv_conn *c, const uint8_t *msg, size_t len) {
  end *e = c->data;
  printf("%s: message \"%.*s\"\n", e->name, (int)len, (const char *)msg);
  if (e == &server) {
    (void)vigil_uv_send(c, msg, len); /* echo */
  } else {
    echoed = 1;
    (void)vigil_uv_close(c, VIGIL_CLOSE_NORMAL, NULL);
  }
}

static void on_death(vigil_uv_conn *c, const vigil_death *d) {
  end *e = c->data;
  printf("%s: peer gone: %s (%s) after %.0f ms of silence\n", e->name, vigil_cause_name(d->cause),
         d->detail ? d->detail : "-", (double)d->silent_ns / 1e6);
  if (e == &server)
    server_cause = (int)d->cause;
}

static void config(vigil_uv_config *cfg, vigil_role role) {
  vigil_uv_config_init(cfg);
  cfg->role = role;
  cfg->session.interval_ms = 100; /* ping after 75-100 ms of silence */
  cfg->session.timeout_ms = 300;  /* dead after 300 ms of silence */
  cfg->session.id = "uv-example";
  cfg->session.id_len = strlen(cfg->session.id);
  cfg->cb.on_open = on_open;
  cfg->cb.on_message = on_message;
  cfg->cb.on_rtt = on_rtt;
  cfg->cb.on_death = on_death;
  cfg->cb.on_reject = on_death;
  cfg->cb.on_detach = on_detach;
}

static void on_accept(uv_stream_t *l, int status) {
  vigil_uv_config cfg;
  if (status != 0)
    return;
  uv_tcp_init(&loop, &server.tcp);
  if (uv_accept(l, (uv_stream_t *)&server.tcp) != 0)
    return;
  uv_close((uv_handle_t *)&listener, NULL); /* one client is enough here */
  config(&cfg, VIGIL_ROLE_SERVER);
  server.vigil.data = &server;
  if (vigil_uv_attach(&server.vigil, &loop, &server.tcp, &cfg) != 0)
    uv_stop(&loop);
}

static void on_connect(uv_connect_t *req, int status) {
  vigil_uv_config cfg;
  (void)req;
  config(&cfg, VIGIL_ROLE_CLIENT);
  client.vigil.data = &client;
  if (status != 0 || vigil_uv_attach(&client.vigil, &loop, &client.tcp, &cfg) != 0)
    uv_stop(&loop);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "example did not finish in time\n");
  uv_stop(&loop);
}

int main(void) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = (int)sizeof bound;
  uv_connect_t req;

  server.name = "server";
  client.name = "client";
  uv_loop_init(&loop);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&loop, &listener);
  if (uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&listener, 16, on_accept) != 0 ||
      uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &len) != 0)
    return 1;
  uv_tcp_init(&loop, &client.tcp);
  uv_tcp_connect(&req, &client.tcp, (const struct sockaddr *)&bound, on_connect);
  uv_timer_init(&loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, 5000, 0); /* bounded: never hang */

  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "handles left open\n");
    return 1;
  }
  return echoed && server_cause == VIGIL_CAUSE_CLOSED ? 0 : 1;
}
