/* Presence in the CLI: `vigil serve --presence URL` (the Redis store on the
 * server's loop, with a line whenever Redis goes away or comes back), and
 * `vigil who` / `vigil watch`, which talk to Redis only (docs/PRESENCE.md).
 *
 * who and watch are one-shot tools with nothing else to do while Redis
 * answers, so they use hiredis's blocking API, with a timeout. Where the
 * build has no hiredis (mingw), all of it says so and fails cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "cli-presence.h"
#include "vigil.h"

#if defined(VIGIL_HAVE_HIREDIS)
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "vigil/presence-redis.h"
#endif

#define NO_REDIS                                                                                   \
  "this build of vigil has no Redis support (hiredis was not found when it was built; "            \
  "docs/WINDOWS.md)"

/* ---- serve ------------------------------------------------------------------ */

#if defined(VIGIL_HAVE_HIREDIS)
struct vigil_cli_presence {
  vigil_presence_redis *r;
  int json;
  int done;
};

static void on_state(vigil_presence_redis *r, int up, const char *why, void *user) {
  vigil_cli_presence *p = user;
  vigil_presence_redis_stats st;
  vigil_cli_line l;
  vigil_presence_redis_get_stats(r, &st);
  vigil_cli_line_begin(&l, p->json, "presence", "redis", NULL, 0);
  vigil_cli_line_cstr(&l, "state", up ? "ok" : "degraded");
  vigil_cli_line_cstr(&l, "why", why);
  vigil_cli_line_u64(&l, "queued", st.queued);
  vigil_cli_line_u64(&l, "dropped", st.dropped);
  vigil_cli_line_end(&l, stdout);
  if (!up)
    fprintf(stderr,
            "vigil serve: presence degraded: Redis unreachable (%s); detection goes on, "
            "updates are queued and reconciled when it returns\n",
            why);
}
#else
struct vigil_cli_presence {
  int unused;
};
#endif

int vigil_cli_presence_start(const char *cmd, const char *url, const char *node, uint32_t worker,
                             uint32_t node_timeout_ms, vigil_loop *loop, int json,
                             vigil_presence_store **store, vigil_cli_presence **out) {
#if defined(VIGIL_HAVE_HIREDIS)
  vigil_presence_redis_config cfg;
  vigil_cli_presence *p;
  const char *why = NULL;
  int rc;
  *out = NULL;
  vigil_presence_redis_config_init(&cfg);
  if (vigil_presence_url_parse(url, &cfg.url, &why) != 0) {
    fprintf(stderr, "vigil %s: --presence %s: %s\n", cmd, url, why);
    return VIGIL_CLI_USAGE;
  }
  if ((p = calloc(1, sizeof *p)) == NULL)
    return VIGIL_CLI_FAIL;
  p->json = json;
  cfg.node = node;
  cfg.worker = worker;
  cfg.node_timeout_ms = node_timeout_ms;
  cfg.on_state = on_state;
  cfg.user = p;
  if ((rc = vigil_presence_redis_new(&p->r, loop, &cfg)) != 0) {
    fprintf(stderr, "vigil %s: --presence: %s%s\n", cmd, vigil_strerror(rc),
            rc == VIGIL_EINVAL ? " (--node: 1..64 bytes, no '/' or space)" : "");
    free(p);
    return rc == VIGIL_EINVAL ? VIGIL_CLI_USAGE : VIGIL_CLI_FAIL;
  }
  *store = vigil_presence_redis_store(p->r);
  *out = p;
  return 0;
#else
  (void)url;
  (void)node;
  (void)worker;
  (void)node_timeout_ms;
  (void)loop;
  (void)json;
  *store = NULL;
  *out = NULL;
  fprintf(stderr, "vigil %s: --presence: %s\n", cmd, NO_REDIS);
  return VIGIL_CLI_FAIL;
#endif
}

#if defined(VIGIL_HAVE_HIREDIS)
static void on_closed(void *arg) {
  ((vigil_cli_presence *)arg)->done = 1;
}
#endif

void vigil_cli_presence_close(vigil_cli_presence *p, vigil_loop *loop) {
#if defined(VIGIL_HAVE_HIREDIS)
  if (p == NULL)
    return;
  vigil_presence_redis_close(p->r, 1000, on_closed, p);
  while (!p->done && vigil_loop_run(loop, VIGIL_RUN_ONCE) >= 0)
    ;
  free(p);
#else
  (void)p;
  (void)loop;
#endif
}

void vigil_cli_presence_get(const vigil_cli_presence *p, vigil_cli_presence_figures *f) {
#if defined(VIGIL_HAVE_HIREDIS)
  vigil_presence_redis_stats st;
#endif
  memset(f, 0, sizeof *f);
  if (p == NULL)
    return;
#if defined(VIGIL_HAVE_HIREDIS)
  vigil_presence_redis_get_stats(p->r, &st);
  f->present = 1;
  f->processes = 1;
  f->up = st.up != 0;
  f->queued = st.queued;
  f->sent = st.sent;
  f->dropped = st.dropped;
  f->errors = st.errors;
  f->bad_input = st.bad_input;
  f->evictions = st.evictions;
  f->syncs = st.syncs;
  f->reconnects = st.reconnects;
  f->node_lost = st.node_lost;
#endif
}

/* ---- who / watch -------------------------------------------------------------- */

static const char who_usage[] =
    "usage: vigil who [--presence URL] [ID...] [-j|--json]\n"
    "\n"
    "The presence of each ID as Redis records it (or, with no ID, every id that\n"
    "is online): state, node, worker, peer, since, last cause and RTT. Talks to\n"
    "Redis only, never to a node.\n"
    "\n"
    "  --presence URL  redis://HOST[:PORT][/DB] or unix:///path[?db=N]\n"
    "                  (default redis://127.0.0.1:6379)\n"
    "  -j, --json      one JSON object per line\n"
    "\n"
    "Exit status: 0 if every named id is online, 1 if any is offline or unknown\n"
    "(or Redis cannot be asked), 2 for bad usage.\n";

static const char watch_usage[] =
    "usage: vigil watch [--presence URL] [-j|--json]\n"
    "\n"
    "A live stream of presence events from every node: open, dead (with its\n"
    "cause), takeover, one JSON object per line as Redis carries it (-j is\n"
    "accepted and changes nothing). A message on the channel that is not one\n"
    "of vigil's becomes a not_vigil line, escaped and cut to 256 bytes. Talks\n"
    "to Redis only. Runs until interrupted.\n"
    "\n"
    "  --presence URL  as for vigil who\n";

/* Options of who / watch: --presence URL, --json, positional ids. */
typedef struct pargs {
  const char *url;
  int json;
  char **ids;
  int nids;
} pargs;

static int parse(const char *cmd, const char *usage, int allow_ids, int argc, char **argv,
                 pargs *a) {
  int i;
  memset(a, 0, sizeof *a);
  a->url = "redis://127.0.0.1:6379";
  if ((a->ids = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
    return VIGIL_CLI_FAIL;
  for (i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (vigil_cli_is_help(s)) {
      fputs(usage, stdout);
      return -1;
    } else if (strcmp(s, "-j") == 0 || strcmp(s, "--json") == 0) {
      a->json = 1;
    } else if (strcmp(s, "--presence") == 0) {
      if (++i == argc) {
        fprintf(stderr, "vigil %s: --presence needs a URL\n", cmd);
        return VIGIL_CLI_USAGE;
      }
      a->url = argv[i];
    } else if (strncmp(s, "--presence=", 11) == 0) {
      a->url = s + 11;
    } else if (s[0] == '-' || !allow_ids) {
      return vigil_cli_unknown(cmd, s);
    } else if (strlen(s) > VIGIL_WIRE_MAX_ID) {
      fprintf(stderr, "vigil %s: id longer than %u bytes\n", cmd, VIGIL_WIRE_MAX_ID);
      return VIGIL_CLI_USAGE;
    } else {
      a->ids[a->nids++] = argv[i];
    }
  }
#if defined(VIGIL_HAVE_HIREDIS)
  {
    vigil_presence_url u;
    const char *why = NULL;
    if (vigil_presence_url_parse(a->url, &u, &why) != 0) {
      fprintf(stderr, "vigil %s: --presence %s: %s\n", cmd, a->url, why);
      return VIGIL_CLI_USAGE;
    }
  }
#endif
  return 0;
}

#if defined(VIGIL_HAVE_HIREDIS)
static redisContext *connect_redis(const char *cmd, const pargs *a) {
  vigil_presence_url u;
  const char *why = NULL;
  struct timeval tv = {2, 0};
  redisContext *c;
  if (vigil_presence_url_parse(a->url, &u, &why) != 0) {
    fprintf(stderr, "vigil %s: --presence %s: %s\n", cmd, a->url, why);
    return NULL;
  }
  c = u.is_unix ? redisConnectUnixWithTimeout(u.path, tv)
                : redisConnectWithTimeout(u.host, u.port, tv);
  if (c == NULL || c->err != 0) {
    fprintf(stderr, "vigil %s: cannot reach Redis at %s: %s\n", cmd, a->url,
            c != NULL ? c->errstr : "out of memory");
    if (c != NULL)
      redisFree(c);
    return NULL;
  }
  (void)redisSetTimeout(c, tv);
  if (u.db != 0) {
    redisReply *r = redisCommand(c, "SELECT %u", u.db);
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!ok) {
      fprintf(stderr, "vigil %s: Redis refused database %u\n", cmd, u.db);
      redisFree(c);
      return NULL;
    }
  }
  return c;
}

/* Marks the ids of lost nodes node_lost first (the reaper every node also
 * runs), so `who` is true even when the last node of a fleet died. A
 * failure here is not fatal: the records are read as they are. */
static void reap(redisContext *c) {
  char now[24];
  redisReply *r;
  snprintf(now, sizeof now, "%.0f", vigil_cli_unix_time() * 1000.0);
  r = redisCommand(c, "EVAL %s 0 vigil: %s 86400000", vigil_presence_reap_lua, now);
  if (r == NULL || r->type == REDIS_REPLY_ERROR)
    fprintf(stderr, "vigil who: the node reaper failed: %s\n", r != NULL ? r->str : c->errstr);
  else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0)
    fprintf(stderr, "vigil who: the node reaper skipped %lld keys that are not vigil's\n",
            r->element[1]->integer);
  freeReplyObject(r);
}

/* The value of field in an HGETALL reply, or NULL. */
static const char *hfield(const redisReply *r, const char *field) {
  size_t i;
  for (i = 0; i + 1 < r->elements; i += 2)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        r->element[i + 1]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, field) == 0)
      return r->element[i + 1]->str;
  return NULL;
}

static uint64_t num(const char *s) {
  char *end;
  unsigned long long v;
  if (s == NULL || s[0] < '0' || s[0] > '9')
    return 0;
  v = strtoull(s, &end, 10);
  return *end == '\0' ? (uint64_t)v : 0;
}

/* Prints one id's record; returns 1 if online. */
static int who_one(redisContext *c, const char *id, size_t id_len, int json) {
  redisReply *r = redisCommand(c, "HGETALL vigil:p:%b", id, id_len);
  vigil_cli_line l;
  const char *state;
  int online;
  if (r == NULL) {
    fprintf(stderr, "vigil who: Redis: %s\n", c->errstr);
    return -1;
  }
  vigil_cli_line_begin(&l, json, "who", r->type == REDIS_REPLY_ARRAY ? hfield(r, "peer") : NULL, id,
                       id_len);
  if (r->type != REDIS_REPLY_ARRAY) {
    vigil_cli_line_cstr(&l, "state", "unknown");
    vigil_cli_line_cstr(&l, "error", r->type == REDIS_REPLY_ERROR ? r->str : "not a record");
    vigil_cli_line_end(&l, stdout);
    freeReplyObject(r);
    return 0;
  }
  state = hfield(r, "state");
  if (state == NULL || (strcmp(state, "online") != 0 && strcmp(state, "offline") != 0))
    state = "unknown";
  online = strcmp(state, "online") == 0;
  vigil_cli_line_cstr(&l, "state", state);
  vigil_cli_line_cstr(&l, "node", hfield(r, "node"));
  if (hfield(r, "worker") != NULL)
    vigil_cli_line_u64(&l, "worker", num(hfield(r, "worker")));
  else
    vigil_cli_line_null(&l, "worker");
  vigil_cli_line_u64(&l, "since_ms", num(hfield(r, "since")));
  vigil_cli_line_cstr(&l, "cause", hfield(r, "cause"));
  if (hfield(r, "rtt_us") != NULL)
    vigil_cli_line_ms(&l, "rtt_ms", num(hfield(r, "rtt_us")) * 1000u);
  else
    vigil_cli_line_null(&l, "rtt_ms");
  vigil_cli_line_u64(&l, "gen", num(hfield(r, "gen")));
  vigil_cli_line_end(&l, stdout);
  freeReplyObject(r);
  return online;
}

/* No id named: every online id (SCAN, so a big Redis is not blocked). */
static int who_all(redisContext *c, int json) {
  char cursor[32] = "0";
  do {
    redisReply *r = redisCommand(c, "SCAN %s MATCH vigil:p:* COUNT 1000", cursor);
    size_t i;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
      fprintf(stderr, "vigil who: Redis: unexpected SCAN reply\n");
      freeReplyObject(r);
      return VIGIL_CLI_FAIL;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (i = 0; i < r->element[1]->elements; i++) {
      const redisReply *k = r->element[1]->element[i];
      redisReply *st;
      if (k->type != REDIS_REPLY_STRING || k->len <= 8)
        continue;
      st = redisCommand(c, "HGET %b state", k->str, k->len);
      if (st != NULL && st->type == REDIS_REPLY_STRING && strcmp(st->str, "online") == 0)
        (void)who_one(c, k->str + 8, k->len - 8, json);
      freeReplyObject(st);
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return VIGIL_CLI_OK;
}
#endif

int vigil_cmd_who(int argc, char **argv) {
  pargs a;
  int rc = parse("who", who_usage, 1, argc, argv, &a), i, all = 1;
#if defined(VIGIL_HAVE_HIREDIS)
  redisContext *c;
#endif
  if (rc != 0) {
    free(a.ids);
    return rc < 0 ? VIGIL_CLI_OK : rc;
  }
#if defined(VIGIL_HAVE_HIREDIS)
  if ((c = connect_redis("who", &a)) == NULL) {
    free(a.ids);
    return VIGIL_CLI_FAIL;
  }
  reap(c);
  if (a.nids == 0)
    rc = who_all(c, a.json);
  for (i = 0; i < a.nids; i++) {
    int on = who_one(c, a.ids[i], strlen(a.ids[i]), a.json);
    if (on != 1)
      all = 0;
  }
  redisFree(c);
  free(a.ids);
  if (a.nids == 0)
    return rc;
  return all ? VIGIL_CLI_OK : VIGIL_CLI_FAIL;
#else
  (void)i;
  (void)all;
  free(a.ids);
  fprintf(stderr, "vigil who: %s\n", NO_REDIS);
  return VIGIL_CLI_FAIL;
#endif
}

#if defined(VIGIL_HAVE_HIREDIS)
#define WATCH_MAX_EVENT 65536u /* ours are a few hundred bytes */
#define WATCH_RAW_SHOWN 256u

/* Whether a message can be one of our events, to be printed as it came: a
 * JSON object on one line of UTF-8 text naming its event. Anyone who can
 * PUBLISH to vigil:events can send anything else. */
static int looks_ours(const char *s, size_t len) {
  size_t i;
  if (len < 2 || len > WATCH_MAX_EVENT || s[0] != '{' || s[len - 1] != '}')
    return 0;
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
      return 0;
  for (i = 0; i + 9 <= len; i++)
    if (memcmp(s + i, "\"event\":\"", 9) == 0)
      return vigil_utf8_valid((const uint8_t *)s, len);
  return 0;
}

/* Anything else is one not_vigil line instead, JSON like the rest of the
 * stream: its size, its first WATCH_RAW_SHOWN bytes escaped (no control
 * byte or invalid UTF-8 reaches the terminal or a JSON reader), and how
 * many such messages came so far. */
static int print_message(const char *s, size_t len, uint64_t *not_ours) {
  vigil_cli_line l;
  if (looks_ours(s, len)) {
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
    return vigil_cli_out_flush(stdout);
  }
  (*not_ours)++;
  vigil_cli_line_begin(&l, 1, "not_vigil", NULL, NULL, 0);
  vigil_cli_line_cstr(&l, "channel", "vigil:events");
  vigil_cli_line_u64(&l, "bytes", len);
  vigil_cli_line_str(&l, "raw", s, len < WATCH_RAW_SHOWN ? len : WATCH_RAW_SHOWN);
  vigil_cli_line_bool(&l, "cut", len > WATCH_RAW_SHOWN);
  vigil_cli_line_u64(&l, "not_vigil", *not_ours);
  vigil_cli_line_end(&l, stdout);
  return vigil_cli_out_failed() ? -1 : 0;
}
#endif

int vigil_cmd_watch(int argc, char **argv) {
  pargs a;
  int rc = parse("watch", watch_usage, 0, argc, argv, &a);
#if defined(VIGIL_HAVE_HIREDIS)
  redisContext *c;
  redisReply *r;
  uint64_t not_ours = 0;
#endif
  free(a.ids);
  if (rc != 0)
    return rc < 0 ? VIGIL_CLI_OK : rc;
#if defined(VIGIL_HAVE_HIREDIS)
  if ((c = connect_redis("watch", &a)) == NULL)
    return VIGIL_CLI_FAIL;
  {
    struct timeval forever = {0, 0};
    (void)redisSetTimeout(c, forever); /* events may be hours apart */
  }
  r = redisCommand(c, "SUBSCRIBE vigil:events");
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
    fprintf(stderr, "vigil watch: Redis refused SUBSCRIBE\n");
    freeReplyObject(r);
    redisFree(c);
    return VIGIL_CLI_FAIL;
  }
  freeReplyObject(r);
  if (!a.json)
    fprintf(stderr, "vigil watch: subscribed to vigil:events at %s\n", a.url);
  fflush(stderr);
  while (redisGetReply(c, (void **)&r) == REDIS_OK) {
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING &&
        print_message(r->element[2]->str, r->element[2]->len, &not_ours) != 0) {
      freeReplyObject(r);
      redisFree(c);
      return VIGIL_CLI_FAIL;
    }
    freeReplyObject(r);
  }
  fprintf(stderr, "vigil watch: lost Redis: %s (%llu messages were not vigil's)\n", c->errstr,
          (unsigned long long)not_ours);
  redisFree(c);
  return VIGIL_CLI_FAIL;
#else
  fprintf(stderr, "vigil watch: %s\n", NO_REDIS);
  return VIGIL_CLI_FAIL;
#endif
}
