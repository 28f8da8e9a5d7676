/* Embedding vigil's liveness engine in a loop of your own.
 *
 * The session never touches a socket or reads a clock: you give it the bytes
 * you received and the time, and it gives you events, the bytes to write and
 * the time it next wants to be woken. Here a client and a server session talk
 * over a socketpair driven by poll(); the server's peer then goes silent and
 * the client reports it dead at exactly its timeout. This file is the README's
 * example and is built and run by ctest (example.embed_session). */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vigil.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Write whatever the engine has queued (control frames only here). */
static void flush(vigil_session *s, int fd) {
  uint8_t out[512];
  long n;
  while ((n = vigil_session_write(s, now_ns(), out, sizeof out, NULL, 0, NULL)) > 0)
    if (write(fd, out, (size_t)n) != n)
      return;
}

/* Feed received bytes; print what the engine reports. Returns 1 once dead. */
static int feed(vigil_session *s, const char *who, const uint8_t *buf, size_t len) {
  vigil_event ev;
  long used;
  do {
    used = vigil_session_recv(s, now_ns(), buf, len, &ev);
    if (used < 0 && ev.type != VIGIL_EVENT_DEAD)
      return 1;
    if (ev.type == VIGIL_EVENT_OPEN)
      printf("%s: open\n", who);
    if (ev.type == VIGIL_EVENT_PONG)
      printf("%s: pong, rtt %.3f ms\n", who, (double)ev.rtt_ns / 1e6);
    if (ev.type == VIGIL_EVENT_DEAD)
      return 1;
    if (used > 0) {
      buf += used;
      len -= (size_t)used;
    }
  } while (used > 0 || ev.type != VIGIL_EVENT_NONE);
  return 0;
}

int main(void) {
  vigil_session client, server;
  vigil_session_config cfg;
  vigil_event ev;
  uint8_t buf[4096];
  int fds[2];
  uint64_t start = now_ns(), silent_since = 0;

  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
    return 1;
  vigil_session_config_init(&cfg);
  cfg.interval_ms = 100; /* ping after 75-100 ms of silence */
  cfg.timeout_ms = 300;  /* dead after 300 ms of silence */
  cfg.id = "example";
  cfg.id_len = 7;
  if (vigil_session_init(&client, VIGIL_ROLE_CLIENT, &cfg, now_ns()) != 0 ||
      vigil_session_init(&server, VIGIL_ROLE_SERVER, &cfg, now_ns()) != 0)
    return 1;

  for (;;) {
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    uint64_t deadline = vigil_session_deadline(&client), t = now_ns();
    int wait_ms = deadline <= t ? 0 : (int)((deadline - t + 999999) / 1000000);
    ssize_t n;

    flush(&client, fds[0]);
    if (silent_since == 0)
      flush(&server, fds[1]);
    poll(p, 2, wait_ms > 50 ? 50 : wait_ms);
    if ((p[0].revents & POLLIN) && (n = read(fds[0], buf, sizeof buf)) > 0 &&
        feed(&client, "client", buf, (size_t)n))
      break;
    /* After half a second the server's side stops reading and answering:
     * a hung peer whose socket stays open. */
    if (silent_since == 0 && now_ns() - start > 500000000u)
      silent_since = now_ns();
    if (silent_since == 0 && (p[1].revents & POLLIN) && (n = read(fds[1], buf, sizeof buf)) > 0)
      feed(&server, "server", buf, (size_t)n);
    if (vigil_session_expire(&client, now_ns(), &ev) == 0 && ev.type == VIGIL_EVENT_DEAD) {
      printf("client: peer dead (%s, %s) after %.0f ms of silence\n", vigil_cause_name(ev.cause),
             ev.detail, (double)ev.silent_ns / 1e6);
      close(fds[0]);
      close(fds[1]);
      return ev.cause == VIGIL_CAUSE_HEARTBEAT_TIMEOUT && ev.silent_ns >= 300 * VIGIL_MS ? 0 : 1;
    }
    if (silent_since == 0)
      vigil_session_expire(&server, now_ns(), &ev);
    if (now_ns() - start > 5000000000u)
      return 1; /* bounded: never hang */
  }
  return 1;
}
