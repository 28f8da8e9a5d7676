/* Built against an installed libvigil-redis, as a user would (pkg-config
 * vigil-redis, or CMake find_package(vigil COMPONENTS redis)): the header,
 * the library and hiredis resolve together. It parses a URL, then starts a
 * store on a loop towards a Redis that is not there (a unix socket path
 * that does not exist) and closes it: hiredis really runs, nothing waits
 * for a server. */
#include <stdio.h>
#include <string.h>

#include <vigil.h>
#include <vigil/presence-redis.h>

static int closed;

static void on_closed(void *user) {
  (void)user;
  closed = 1;
}

int main(void) {
  vigil_presence_redis_config cfg;
  vigil_presence_redis_stats st;
  vigil_presence_redis *r = NULL;
  vigil_loop loop;
  const char *why = NULL;
  int rc, i;

  vigil_presence_redis_config_init(&cfg);
  if (vigil_presence_url_parse("redis://127.0.0.1:6380/2", &cfg.url, &why) != 0 ||
      cfg.url.port != 6380 || cfg.url.db != 2 ||
      vigil_presence_url_parse("redis://host.example", &cfg.url, &why) == 0 || why == NULL) {
    fprintf(stderr, "consumer-redis: URL parsing is wrong\n");
    return 1;
  }
  if (vigil_presence_url_parse("unix:///nonexistent/vigil-consumer.sock", &cfg.url, NULL) != 0 ||
      vigil_loop_init(&loop, NULL) != 0)
    return 1;
  cfg.node = "consumer";
  if ((rc = vigil_presence_redis_new(&r, &loop, &cfg)) != 0) {
    fprintf(stderr, "consumer-redis: new: %s\n", vigil_strerror(rc));
    return 1;
  }
  for (i = 0; i < 3; i++)
    (void)vigil_loop_run(&loop, VIGIL_RUN_NOWAIT);
  vigil_presence_redis_get_stats(r, &st);
  vigil_presence_redis_close(r, 100, on_closed, NULL);
  for (i = 0; i < 1000 && !closed; i++)
    (void)vigil_loop_run(&loop, VIGIL_RUN_ONCE);
  if (!closed || st.up || vigil_loop_close(&loop) != 0 || strlen(vigil_presence_reap_lua) < 100) {
    fprintf(stderr, "consumer-redis: closed %d, up %d\n", closed, st.up);
    return 1;
  }
  printf("consumer-redis: vigil %s, a store without Redis: up %d, queued %llu, closed\n",
         vigil_version_string(), st.up, (unsigned long long)st.queued);
  return 0;
}
