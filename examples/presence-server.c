/* A vigil server and client on one loop: the client opens, says goodbye, and
 * the server reports the death with its cause. This file is the README's
 * server example and is built and run by ctest (example.presence_server). */
#include <stdio.h>

#include <vigil.h>

static vigil_server *srv;
static int deaths;

static void on_open(vigil_conn *c, const vigil_open_info *info, void *user) {
  (void)info;
  (void)user;
  vigil_conn_close(c, VIGIL_CLOSE_NORMAL, "goodbye"); /* a client that leaves politely */
}

static void on_death(vigil_conn *c, const vigil_death *d, void *user) {
  (void)c;
  (void)user;
  printf("a client died: %s (%s), silent for %llu ms\n", vigil_cause_name(d->cause),
         d->detail ? d->detail : "-", (unsigned long long)(d->silent_ns / VIGIL_MS));
  if (d->cause == VIGIL_CAUSE_CLOSED)
    deaths++;
  vigil_server_shutdown(srv, 100);
}

static void on_client_death(vigil_conn *c, const vigil_death *d, void *user) {
  (void)c;
  (void)d;
  (void)user;
}

static void on_closed(vigil_client *cli, void *user) {
  (void)user;
  vigil_client_free(cli);
}

static void on_server_closed(vigil_server *s, void *user) {
  (void)user;
  vigil_server_free(s);
}

int main(void) {
  vigil_loop loop;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_client *cli;
  uint16_t port;

  if (vigil_loop_init(&loop, NULL) != 0)
    return 1;
  vigil_server_config_init(&cfg);
  cfg.session.interval_ms = 1000; /* ping after 0.75-1 s of silence */
  cfg.session.timeout_ms = 3000;  /* dead after 3 s of silence, never sooner */
  cfg.cb.on_death = on_death;
  cfg.on_closed = on_server_closed;
  if (vigil_server_new(&srv, &loop, &cfg) != 0 ||
      vigil_server_listen(srv, "127.0.0.1", 0, &port) != 0)
    return 1;

  vigil_client_config_init(&ccfg);
  ccfg.session.id = "gw-17";
  ccfg.session.id_len = 5;
  ccfg.no_reconnect = 1;
  ccfg.cb.on_open = on_open;
  ccfg.cb.on_death = on_client_death;
  ccfg.on_closed = on_closed;
  if (vigil_client_new(&cli, &loop, &ccfg) != 0 ||
      vigil_client_connect(cli, "127.0.0.1", port) != 0)
    return 1;

  vigil_loop_run(&loop, VIGIL_RUN_DEFAULT); /* returns when nothing is left */
  return vigil_loop_close(&loop) == 0 && deaths == 1 ? 0 : 1;
}
