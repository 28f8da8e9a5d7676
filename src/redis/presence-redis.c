/* The Redis presence store: hiredis's asynchronous API on vigil's loop.
 *
 * Two connections: `cmd` runs the update scripts (in order: Redis runs a
 * connection's commands in the order they were sent) and `sub` listens on
 * this process's control channel, where another process that took over one
 * of our ids tells us to evict our connection of it.
 *
 * Ordering is decided inside Redis, atomically, by Lua scripts (EVAL). Each
 * connection has a token, node/worker/instance/generation, unique across
 * restarts (instance is random per process). The opening script makes the
 * token the record's owner, bumps the record's generation (HINCRBY) and, if
 * another token held the id online, publishes an eviction to its holder and
 * a takeover event; the death script changes the record only if it still
 * belongs to the dying token, so a late death never overwrites a newer
 * opening, and a repeated update changes nothing.
 *
 * The queue. Every update goes to a queue and stays there until Redis
 * acknowledges it, so a connection lost with updates in flight loses none:
 * they are sent again after reconnecting (the scripts make that harmless).
 * The queue is bounded (max_queue): past it an update is dropped and
 * counted, and once Redis is back every record of our own table is written
 * again (a sync), so Redis still ends up agreeing with us. An opening still
 * unsent when the same connection's death is queued is cancelled: sent
 * late, it could take over a newer holder in another process.
 *
 * The adapter (the part hiredis expects of an event library: addRead,
 * delRead, addWrite, delWrite, cleanup) is a vigil_fd_watch per context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include "abi.h"
#include "vigil.h"
#include "vigil/presence-redis.h"

#define CONNECT_TIMEOUT_MS 2000u
#define MAX_RETRY_MS 4000u
#define OFFLINE_TTL_MS "86400000" /* offline records are kept a day */

/* Unix time in ms (the `since` of records, the node beats). Our own, not
 * libvigil's internal one: the shared libvigil-redis links against
 * libvigil's public symbols only. */
static uint64_t wall_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  return (uint64_t)time(NULL) * 1000u;
}

/* ---- scripts (docs/PRESENCE.md) ------------------------------------------- */

static const char open_lua[] =
    "local k=KEYS[1]\n"
    "local h=redis.call('HMGET',k,'state','conn','holder','lgen','node','worker','cause')\n"
    "if h[2]==ARGV[1] and not (h[1]=='offline' and h[7]=='node_lost') then\n"
    "  if h[1]=='online' then redis.call('PEXPIRE',k,ARGV[7]) end\n"
    "  return 0\n"
    "end\n"
    "if h[1]=='online' and h[3] then\n"
    "  redis.call('SREM',ARGV[10]..'held:'..h[3],ARGV[9])\n"
    "  redis.call('PUBLISH',ARGV[10]..'ctl:'..h[3],'evict '..tostring(h[4])..' '..ARGV[9])\n"
    "  redis.call('PUBLISH',ARGV[10]..'events',cjson.encode({event='takeover',id=ARGV[9],"
    "from_node=h[5],from_worker=h[6],node=ARGV[3],worker=tonumber(ARGV[4]),"
    "at=tonumber(ARGV[6])}))\n"
    "end\n"
    "local g=redis.call('HINCRBY',k,'gen',1)\n"
    "redis.call('HSET',k,'state','online','conn',ARGV[1],'holder',ARGV[2],'lgen',ARGV[8],"
    "'node',ARGV[3],'worker',ARGV[4],'peer',ARGV[5],'since',ARGV[6])\n"
    "redis.call('PEXPIRE',k,ARGV[7])\n"
    "redis.call('SADD',ARGV[10]..'held:'..ARGV[2],ARGV[9])\n"
    "redis.call('PUBLISH',ARGV[10]..'events',cjson.encode({event='open',id=ARGV[9],"
    "node=ARGV[3],worker=tonumber(ARGV[4]),peer=ARGV[5],gen=g,at=tonumber(ARGV[6])}))\n"
    "return g\n";

/* A death applies to the record of its own connection, to no record, and
 * to a record of an older connection of this same process: our updates
 * reach Redis in our order, so an older one of ours still there means its
 * death (or the newer opening) was dropped from a full queue, and ours is
 * the newer truth (the sync after an outage relies on it). */
static const char dead_lua[] =
    "local k=KEYS[1]\n"
    "local h=redis.call('HMGET',k,'state','conn','cause')\n"
    "if h[2]==ARGV[1] and h[1]=='offline' and h[3]~='node_lost' then return 0 end\n"
    "local n=#ARGV[2]+2\n"
    "local older=h[2] and string.sub(h[2],1,n-1)==ARGV[2]..'/' and\n"
    "  (tonumber(string.sub(h[2],n)) or 0)<(tonumber(string.sub(ARGV[1],n)) or 0)\n"
    "local applied=0\n"
    "if h[2]==ARGV[1] or not h[1] or older then\n"
    "  redis.call('SREM',ARGV[10]..'held:'..ARGV[2],ARGV[9])\n"
    "  redis.call('HSET',k,'state','offline','conn',ARGV[1],'node',ARGV[3],'worker',ARGV[4],"
    "'peer',ARGV[5],'since',ARGV[6],'cause',ARGV[8],'silent_ms',ARGV[11],'rtt_us',ARGV[12])\n"
    "  redis.call('HDEL',k,'holder')\n"
    "  redis.call('PEXPIRE',k,ARGV[7])\n"
    "  applied=1\n"
    "end\n"
    "redis.call('PUBLISH',ARGV[10]..'events',cjson.encode({event='dead',id=ARGV[9],"
    "node=ARGV[3],worker=tonumber(ARGV[4]),cause=ARGV[8],detail=ARGV[14],"
    "silent_ms=tonumber(ARGV[11]),rtt_us=tonumber(ARGV[12]),takeover=(ARGV[13]=='1'),"
    "applied=(applied==1),at=tonumber(ARGV[6])}))\n"
    "return applied\n";

/* The node heartbeat: this process's key, alive for node_timeout_ms, and
 * its entry in the holders hash (holder -> time of its last beat). */
static const char beat_lua[] = "redis.call('SET',ARGV[1]..'node:'..ARGV[2],ARGV[3],'PX',ARGV[4])\n"
                               "redis.call('HSET',ARGV[1]..'holders',ARGV[2],ARGV[5])\n"
                               "return 1\n";

/* A clean exit: no heartbeat to miss, nothing left to mark. */
static const char bye_lua[] = "redis.call('DEL',ARGV[1]..'node:'..ARGV[2])\n"
                              "redis.call('HDEL',ARGV[1]..'holders',ARGV[2])\n"
                              "redis.call('DEL',ARGV[1]..'held:'..ARGV[2])\n"
                              "return 1\n";

static const char refresh_lua[] =
    "local h=redis.call('HMGET',KEYS[1],'state','conn')\n"
    "if h[1]=='online' and h[2]==ARGV[1] then redis.call('PEXPIRE',KEYS[1],ARGV[2]) return 1 end\n"
    "return 0\n";

/* Keys of ours may hold what another client wrote: each read the reaper
 * depends on goes through redis.pcall, and an entry that is not ours (a
 * key of the wrong type) is skipped and counted instead of aborting the
 * script, which would leave every holder after it unreaped, on every beat
 * of every node. Returns {marked, skipped}. */
const char vigil_presence_reap_lua[] =
    "local p=ARGV[1]\n"
    "local now=tonumber(ARGV[2])\n"
    "local n,bad=0,0\n"
    "local function ok(r) return type(r)~='table' or r.err==nil end\n"
    "local hs=redis.pcall('HGETALL',p..'holders')\n"
    "if not ok(hs) then return {0,1} end\n"
    "for i=1,#hs,2 do\n"
    "  local h=hs[i]\n"
    "  if redis.call('EXISTS',p..'node:'..h)==0 then\n"
    "    local beat=tonumber(hs[i+1]) or now\n"
    "    local ids=redis.pcall('SMEMBERS',p..'held:'..h)\n"
    "    if not ok(ids) then bad=bad+1 ids={} end\n"
    "    for _,id in ipairs(ids) do\n"
    "      local k=p..'p:'..id\n"
    "      local r=redis.pcall('HMGET',k,'state','holder','node','worker')\n"
    "      if not ok(r) then\n"
    "        bad=bad+1\n"
    "      elseif r[1]=='online' and r[2]==h then\n"
    "        redis.call('HSET',k,'state','offline','since',ARGV[2],'cause','node_lost',"
    "'silent_ms',tostring(math.max(0,now-beat)))\n"
    "        redis.call('HDEL',k,'holder')\n"
    "        redis.call('PEXPIRE',k,ARGV[3])\n"
    "        redis.call('PUBLISH',p..'events',cjson.encode({event='dead',id=id,node=r[3],"
    "worker=tonumber(r[4]),cause='node_lost',detail='node heartbeat expired',"
    "silent_ms=math.max(0,now-beat),takeover=false,applied=true,at=now}))\n"
    "        n=n+1\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL',p..'held:'..h)\n"
    "    redis.call('HDEL',p..'holders',h)\n"
    "  end\n"
    "end\n"
    "return {n,bad}\n";

/* ---- state ------------------------------------------------------------------ */

typedef struct upd {
  struct upd *next;
  vigil_presence_kind kind;
  int bye; /* not an update: the clean exit's bye_lua, last in the queue */
  int cancelled;
  int takeover;
  vigil_cause cause;
  const char *detail;
  uint64_t gen, at_ms, silent_ns, rtt_ns;
  char peer[VIGIL_ADDRSTRLEN];
  size_t id_len;
  char id[];
} upd;

typedef struct adapter {
  vigil_fd_watch w;
  redisAsyncContext *ac; /* NULL once hiredis let go of it */
  unsigned events;
  struct vigil_presence_redis *r;
} adapter;

struct vigil_presence_redis {
  vigil_presence_store store;
  vigil_presence_redis_config cfg;
  char node[65];
  char holder[128]; /* node/worker/instance: our control channel suffix */
  char ttl[16];
  char ctl_channel[160];
  vigil_loop *loop;
  vigil_server *srv;
  vigil_presence_local *table;
  redisAsyncContext *cmd, *sub;
  int cmd_ok, sub_ok, up, tearing, closing, ever_up;
  unsigned adapters; /* fd watches not yet through their close callback */
  upd *head, *tail, *next_send;
  size_t count;
  int need_sync;
  uint32_t retry_ms;
  vigil_loop_timer retry_timer, connect_timer, refresh_timer, close_timer, node_timer;
  vigil_defer done_defer;
  void (*close_cb)(void *user);
  void *close_user;
  vigil_presence_redis_stats st;
};

/* ---- the hiredis adapter ---------------------------------------------------- */

static void adapter_io(vigil_fd_watch *w, unsigned events) {
  adapter *a = w->data;
  if ((events & VIGIL_FD_READABLE) != 0 && a->ac != NULL)
    redisAsyncHandleRead(a->ac);
  /* The read may have freed the context (cleanup cleared a->ac). */
  if ((events & VIGIL_FD_WRITABLE) != 0 && a->ac != NULL)
    redisAsyncHandleWrite(a->ac);
}

static void adapter_sync(adapter *a) {
  (void)vigil_fd_watch_set(&a->w, a->events, adapter_io);
}

static void ev_add_read(void *p) {
  adapter *a = p;
  a->events |= VIGIL_FD_READABLE;
  adapter_sync(a);
}

static void ev_del_read(void *p) {
  adapter *a = p;
  a->events &= ~VIGIL_FD_READABLE;
  adapter_sync(a);
}

static void ev_add_write(void *p) {
  adapter *a = p;
  a->events |= VIGIL_FD_WRITABLE;
  adapter_sync(a);
}

static void ev_del_write(void *p) {
  adapter *a = p;
  a->events &= ~VIGIL_FD_WRITABLE;
  adapter_sync(a);
}

static void maybe_done(vigil_presence_redis *r);

static void adapter_closed(vigil_fd_watch *w) {
  adapter *a = w->data;
  vigil_presence_redis *r = a->r;
  free(a);
  r->adapters--;
  maybe_done(r);
}

/* hiredis is freeing the context; the descriptor is closed right after. */
static void ev_cleanup(void *p) {
  adapter *a = p;
  a->ac = NULL;
  vigil_fd_watch_close(&a->w, adapter_closed);
}

static int adapter_attach(vigil_presence_redis *r, redisAsyncContext *ac) {
  adapter *a = calloc(1, sizeof *a);
  if (a == NULL)
    return VIGIL_ENOMEM;
  if (vigil_fd_watch_init(r->loop, &a->w, ac->c.fd) != 0) {
    free(a);
    return VIGIL_ENOTSUP;
  }
  a->w.data = a;
  a->ac = ac;
  a->r = r;
  r->adapters++;
  ac->ev.data = a;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  /* hiredis learns that a non-blocking connect finished from the first
   * writability, and asks for it only once a command is queued. */
  ev_add_write(a);
  return 0;
}

/* ---- connection management -------------------------------------------------- */

static void set_up(vigil_presence_redis *r, int up, const char *why) {
  if (r->up == up && (up || r->ever_up >= 0))
    return;
  r->up = up;
  r->st.up = up;
  if (up)
    r->ever_up = 1;
  else
    r->ever_up = 0;
  if (r->cfg.on_state != NULL && !r->closing)
    r->cfg.on_state(r, up, why, r->cfg.user);
}

static void reconnect_later(vigil_presence_redis *r);

/* Drops both connections (whichever remain) and, unless closing, plans a
 * reconnect. Safe to re-enter from hiredis's disconnect callbacks. */
static void teardown(vigil_presence_redis *r, const char *why) {
  redisAsyncContext *c = r->cmd, *s = r->sub;
  if (r->tearing)
    return;
  r->tearing = 1;
  r->cmd = r->sub = NULL;
  r->cmd_ok = r->sub_ok = 0;
  vigil_loop_timer_cancel(r->loop, &r->connect_timer);
  if (r->closing)
    vigil_loop_timer_cancel(r->loop, &r->close_timer);
  if (c != NULL)
    redisAsyncFree(c);
  if (s != NULL)
    redisAsyncFree(s);
  r->next_send = r->head; /* unacknowledged updates go again */
  r->tearing = 0;
  /* While we were away our node key may have expired and another node
   * marked our ids node_lost: once back, every record is written again. */
  if (r->up)
    r->need_sync = 1;
  set_up(r, 0, why);
  if (!r->closing)
    reconnect_later(r);
  else
    maybe_done(r);
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status) {
  vigil_presence_redis *r = ac->data;
  (void)status;
  if (r == NULL || r->cmd != ac)
    return;
  r->cmd = NULL;
  teardown(r, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status) {
  vigil_presence_redis *r = ac->data;
  (void)status;
  if (r == NULL || r->sub != ac)
    return;
  r->sub = NULL;
  teardown(r, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void flush_queue(vigil_presence_redis *r);
static void node_beat(vigil_presence_redis *r);
static void sync_all(vigil_presence_redis *r);
static void on_update_reply(redisAsyncContext *ac, void *reply, void *priv);

static void check_up(vigil_presence_redis *r) {
  if (!r->cmd_ok || !r->sub_ok || r->up)
    return;
  vigil_loop_timer_cancel(r->loop, &r->connect_timer);
  r->retry_ms = r->cfg.retry_ms;
  set_up(r, 1, "connected");
  node_beat(r); /* alive at once, before our first opening */
  flush_queue(r);
  if (r->need_sync)
    sync_all(r);
}

static void on_cmd_connect(const redisAsyncContext *ac, int status) {
  vigil_presence_redis *r = ac->data;
  if (r == NULL || r->cmd != ac)
    return;
  if (status != REDIS_OK) {
    r->cmd = NULL; /* hiredis frees it */
    teardown(r, ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
    return;
  }
  r->cmd_ok = 1;
  check_up(r);
}

static void handle_control(vigil_presence_redis *r, const redisReply *msg);

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv) {
  vigil_presence_redis *r = priv;
  const redisReply *m = reply;
  (void)ac;
  if (m == NULL || r->sub == NULL)
    return;
  if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
      m->element[0]->type != REDIS_REPLY_STRING) {
    r->st.bad_input++;
    return;
  }
  if (strcmp(m->element[0]->str, "subscribe") == 0) {
    r->sub_ok = 1;
    check_up(r);
  } else if (strcmp(m->element[0]->str, "message") == 0) {
    handle_control(r, m->element[2]);
  }
}

static void on_sub_connect(const redisAsyncContext *ac, int status) {
  vigil_presence_redis *r = ac->data;
  if (r == NULL || r->sub != ac)
    return;
  if (status != REDIS_OK) {
    r->sub = NULL;
    teardown(r, ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
  }
}

static redisAsyncContext *open_ctx(vigil_presence_redis *r) {
  const vigil_presence_url *u = &r->cfg.url;
  redisAsyncContext *ac =
      u->is_unix ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(u->host, u->port);
  if (ac == NULL)
    return NULL;
  if (ac->err != 0 || adapter_attach(r, ac) != 0) {
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = r;
  return ac;
}

static void on_connect_timeout(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_presence_redis *r = vigil_container_of(t, vigil_presence_redis, connect_timer);
  (void)loop;
  teardown(r, "no answer from Redis within 2 s");
}

static void ignore_reply(redisAsyncContext *ac, void *reply, void *priv) {
  vigil_presence_redis *r = priv;
  const redisReply *rep = reply;
  (void)ac;
  if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
    r->st.errors++;
}

static void connect_now(vigil_presence_redis *r) {
  r->cmd = open_ctx(r);
  r->sub = open_ctx(r);
  if (r->cmd == NULL || r->sub == NULL) {
    teardown(r, "cannot create a connection to Redis");
    return;
  }
  redisAsyncSetConnectCallback(r->cmd, on_cmd_connect);
  redisAsyncSetDisconnectCallback(r->cmd, on_cmd_disconnect);
  redisAsyncSetConnectCallback(r->sub, on_sub_connect);
  redisAsyncSetDisconnectCallback(r->sub, on_sub_disconnect);
  if (r->cfg.url.db != 0) {
    char db[16];
    snprintf(db, sizeof db, "%u", r->cfg.url.db);
    redisAsyncCommand(r->cmd, ignore_reply, r, "SELECT %s", db);
  }
  redisAsyncCommand(r->sub, on_sub_message, r, "SUBSCRIBE %s", r->ctl_channel);
  vigil_loop_timer_arm(r->loop, &r->connect_timer, vigil_loop_now_ms(r->loop) + CONNECT_TIMEOUT_MS,
                       on_connect_timeout);
}

static void on_retry(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_presence_redis *r = vigil_container_of(t, vigil_presence_redis, retry_timer);
  (void)loop;
  r->st.reconnects++;
  connect_now(r);
}

static void reconnect_later(vigil_presence_redis *r) {
  if (vigil_loop_timer_armed(&r->retry_timer))
    return;
  vigil_loop_timer_arm(r->loop, &r->retry_timer, vigil_loop_now_ms(r->loop) + r->retry_ms,
                       on_retry);
  r->retry_ms = r->retry_ms * 2 > MAX_RETRY_MS ? MAX_RETRY_MS : r->retry_ms * 2;
}

/* ---- control messages ------------------------------------------------------- */

/* "evict GEN ID": another process took ID over from our connection GEN.
 * Anything else is not ours: counted, ignored. */
static void handle_control(vigil_presence_redis *r, const redisReply *msg) {
  const char *p, *end;
  uint64_t gen = 0;
  size_t digits = 0;
  if (msg->type != REDIS_REPLY_STRING || msg->len < 8 || msg->len > 6 + 21 + 256 ||
      memcmp(msg->str, "evict ", 6) != 0) {
    r->st.bad_input++;
    return;
  }
  p = msg->str + 6;
  end = msg->str + msg->len;
  while (p < end && *p >= '0' && *p <= '9' && digits < 20) {
    uint64_t d = (uint64_t)(*p - '0');
    if (gen > (UINT64_MAX - d) / 10)
      break;
    gen = gen * 10 + d;
    p++;
    digits++;
  }
  if (digits == 0 || gen == 0 || p >= end || *p != ' ' || (size_t)(end - p - 1) == 0 ||
      (size_t)(end - p - 1) > VIGIL_WIRE_MAX_ID) {
    r->st.bad_input++;
    return;
  }
  p++;
  if (r->srv != NULL && vigil_server_evict(r->srv, p, (size_t)(end - p), gen) == 0)
    r->st.evictions++;
}

/* ---- updates ---------------------------------------------------------------- */

static void fmt_u64(char *buf, size_t n, uint64_t v) {
  snprintf(buf, n, "%llu", (unsigned long long)v);
}

static void on_update_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Sends one update (from the queue, or a sync from the table). */
static void send_update(vigil_presence_redis *r, vigil_presence_kind kind, const char *id,
                        size_t id_len, uint64_t gen, const char *peer, uint64_t at_ms,
                        vigil_cause cause, const char *detail, uint64_t silent_ns, uint64_t rtt_ns,
                        int takeover, redisCallbackFn *fn) {
  char key[300], token[200], worker[16], since[24], lgen[24], silent[24], rtt[24];
  const char *argv[18];
  size_t len[18];
  int i, n;
  memcpy(key, "vigil:p:", 8); // NOLINT(bugprone-not-null-terminated-result): a length goes with it
  memcpy(key + 8, id, id_len);
  snprintf(token, sizeof token, "%s/%llu", r->holder, (unsigned long long)gen);
  snprintf(worker, sizeof worker, "%u", (unsigned)r->cfg.worker);
  fmt_u64(since, sizeof since, at_ms);
  fmt_u64(lgen, sizeof lgen, gen);
  fmt_u64(silent, sizeof silent, silent_ns / VIGIL_MS);
  fmt_u64(rtt, sizeof rtt, rtt_ns / 1000u);
  argv[0] = "EVAL";
  argv[1] = kind == VIGIL_PRESENCE_OPEN ? open_lua : dead_lua;
  argv[2] = "1";
  argv[3] = key;
  argv[4] = token;
  argv[5] = r->holder;
  argv[6] = r->node;
  argv[7] = worker;
  argv[8] = peer;
  argv[9] = since;
  argv[12] = id;
  argv[13] = "vigil:";
  if (kind == VIGIL_PRESENCE_OPEN) {
    argv[10] = r->ttl;
    argv[11] = lgen;
    n = 14;
  } else {
    argv[10] = OFFLINE_TTL_MS;
    argv[11] = vigil_cause_name(cause);
    argv[14] = silent;
    argv[15] = rtt;
    argv[16] = takeover ? "1" : "0";
    argv[17] = detail != NULL ? detail : "";
    n = 18;
  }
  for (i = 0; i < n; i++) /* the key and the id are not NUL-terminated */
    len[i] = i == 3 ? 8 + id_len : i == 12 ? id_len : strlen(argv[i]);
  redisAsyncCommandArgv(r->cmd, fn, r, n, argv, len);
}

static void send_script(vigil_presence_redis *r, const char *script, const char *const *extra,
                        int nextra, redisCallbackFn *fn);

static void pop_head(vigil_presence_redis *r) {
  upd *u;
  if (r->head == NULL || r->head == r->next_send)
    return;
  u = r->head;
  r->head = u->next;
  if (r->tail == u)
    r->tail = NULL;
  free(u);
  r->count--;
  r->st.queued = r->count;
}

static void on_update_reply(redisAsyncContext *ac, void *reply, void *priv) {
  vigil_presence_redis *r = priv;
  const redisReply *rep = reply;
  if (rep == NULL || ac != r->cmd)
    return; /* lost with the connection: sent again after reconnecting */
  if (rep->type == REDIS_REPLY_ERROR)
    r->st.errors++;
  else
    r->st.sent++;
  pop_head(r);
  if (r->head == NULL && r->need_sync && r->up)
    sync_all(r); /* drops while connected: the queue just drained */
  if (r->closing && r->head == NULL)
    teardown(r, "closed");
}

static void flush_queue(vigil_presence_redis *r) {
  upd *u;
  if (!r->up || r->cmd == NULL)
    return;
  for (u = r->next_send; u != NULL; u = u->next) {
    if (u->bye)
      send_script(r, bye_lua, NULL, 0, on_update_reply);
    else if (!u->cancelled)
      send_update(r, u->kind, u->id, u->id_len, u->gen, u->peer, u->at_ms, u->cause, u->detail,
                  u->silent_ns, u->rtt_ns, u->takeover, on_update_reply);
    else /* a no-op, so every entry still gets one reply, in order */
      redisAsyncCommand(r->cmd, on_update_reply, r, "PING");
  }
  r->next_send = NULL;
}

static void on_sync_reply(redisAsyncContext *ac, void *reply, void *priv) {
  vigil_presence_redis *r = priv;
  const redisReply *rep = reply;
  (void)ac;
  if (rep == NULL)
    r->need_sync = 1; /* lost: do it again once back */
  else if (rep->type == REDIS_REPLY_ERROR)
    r->st.errors++;
}

static int sync_one(const char *id, size_t id_len, const vigil_presence_record *rec, void *arg) {
  vigil_presence_redis *r = arg;
  send_update(r, rec->state == VIGIL_PRESENCE_ONLINE ? VIGIL_PRESENCE_OPEN : VIGIL_PRESENCE_DEAD,
              id, id_len, rec->gen, rec->peer, rec->since_ms, rec->last_cause, NULL, rec->silent_ns,
              rec->last_rtt_ns, rec->takeover, on_sync_reply);
  return 0;
}

/* After drops: writes every record of our table, so Redis agrees with it. */
static void sync_all(vigil_presence_redis *r) {
  r->need_sync = 0;
  r->st.syncs++;
  vigil_presence_local_each(r->table, sync_one, r);
}

/* An unsent opening of the connection now dying must not go out: it is
 * turned into a PING (a no-op that keeps replies paired with entries). */
static void cancel_open(vigil_presence_redis *r, const vigil_presence_event *ev) {
  upd *u;
  for (u = r->next_send; u != NULL; u = u->next)
    if (u->kind == VIGIL_PRESENCE_OPEN && u->gen == ev->gen && !u->cancelled)
      u->cancelled = 1;
}

static int redis_report(vigil_presence_store *st, const vigil_presence_event *ev) {
  vigil_presence_redis *r = (vigil_presence_redis *)(void *)st;
  upd *u;
  int rc = vigil_presence_local_apply(r->table, ev);
  if (rc < 0)
    return rc;
  if (ev->kind == VIGIL_PRESENCE_DEAD && r->next_send != NULL)
    cancel_open(r, ev);
  if (r->count >= r->cfg.max_queue || (u = calloc(1, sizeof *u + ev->id_len)) == NULL) {
    r->st.dropped++;
    r->need_sync = 1;
    return 0;
  }
  u->kind = ev->kind;
  u->gen = ev->gen;
  u->at_ms = ev->at_ms;
  u->cause = ev->cause;
  u->detail = ev->detail;
  u->silent_ns = ev->silent_ns;
  u->rtt_ns = ev->rtt_ns;
  u->takeover = ev->takeover;
  snprintf(u->peer, sizeof u->peer, "%s", ev->peer != NULL ? ev->peer : "");
  memcpy(u->id, ev->id, ev->id_len);
  u->id_len = ev->id_len;
  if (r->tail != NULL)
    r->tail->next = u;
  else
    r->head = u;
  r->tail = u;
  if (r->next_send == NULL)
    r->next_send = u;
  r->count++;
  r->st.queued = r->count;
  flush_queue(r);
  return 0;
}

static void redis_bind(vigil_presence_store *st, struct vigil_server *srv) {
  ((vigil_presence_redis *)(void *)st)->srv = srv;
}

static const vigil_presence_ops redis_ops = {redis_report, redis_bind};

/* ---- expiry refresh --------------------------------------------------------- */

static int refresh_one(const char *id, size_t id_len, const vigil_presence_record *rec, void *arg) {
  vigil_presence_redis *r = arg;
  char key[300], token[200];
  const char *argv[6];
  size_t len[6];
  int i;
  if (rec->state != VIGIL_PRESENCE_ONLINE)
    return 0;
  memcpy(key, "vigil:p:", 8); // NOLINT(bugprone-not-null-terminated-result): a length goes with it
  memcpy(key + 8, id, id_len);
  snprintf(token, sizeof token, "%s/%llu", r->holder, (unsigned long long)rec->gen);
  argv[0] = "EVAL";
  argv[1] = refresh_lua;
  argv[2] = "1";
  argv[3] = key;
  argv[4] = token;
  argv[5] = r->ttl;
  for (i = 0; i < 6; i++)
    len[i] = i == 3 ? 8 + id_len : strlen(argv[i]);
  redisAsyncCommandArgv(r->cmd, ignore_reply, r, 6, argv, len);
  return 0;
}

static void on_refresh(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_presence_redis *r = vigil_container_of(t, vigil_presence_redis, refresh_timer);
  if (r->up && r->cmd != NULL)
    vigil_presence_local_each(r->table, refresh_one, r);
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + r->cfg.ttl_ms / 3, on_refresh);
}

/* ---- node heartbeat ----------------------------------------------------------- */

/* EVAL script 0 "vigil:" holder [extra...]: the node scripts name their
 * keys from the prefix and the holder. */
static void send_script(vigil_presence_redis *r, const char *script, const char *const *extra,
                        int nextra, redisCallbackFn *fn) {
  const char *argv[8];
  int i;
  argv[0] = "EVAL";
  argv[1] = script;
  argv[2] = "0";
  argv[3] = "vigil:";
  argv[4] = r->holder;
  for (i = 0; i < nextra && i < 3; i++)
    argv[5 + i] = extra[i];
  redisAsyncCommandArgv(r->cmd, fn, r, 5 + i, argv, NULL);
}

static void on_reap_reply(redisAsyncContext *ac, void *reply, void *priv) {
  vigil_presence_redis *r = priv;
  const redisReply *rep = reply;
  (void)ac;
  if (rep == NULL)
    return;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
      rep->element[0]->type != REDIS_REPLY_INTEGER ||
      rep->element[1]->type != REDIS_REPLY_INTEGER) {
    r->st.errors++;
    return;
  }
  if (rep->element[0]->integer > 0)
    r->st.node_lost += (uint64_t)rep->element[0]->integer;
  if (rep->element[1]->integer > 0)
    r->st.bad_input += (uint64_t)rep->element[1]->integer;
}

/* Every node_timeout/4: our heartbeat (a key that lives 3/4 of the node
 * timeout: three beats may be missed before it is gone), then the reaper,
 * which marks the ids of every holder whose key is gone node_lost. A node
 * killed at t stops beating before t, its key is gone by t + 3T/4, and the
 * next reap of any other node comes within T/4 of that: by t + T. */
static void node_beat(vigil_presence_redis *r) {
  char ttl[16], now[24];
  const char *a[3], *argv[6];
  snprintf(ttl, sizeof ttl, "%u", (unsigned)(r->cfg.node_timeout_ms / 4 * 3));
  fmt_u64(now, sizeof now, wall_ms());
  a[0] = r->node;
  a[1] = ttl;
  a[2] = now;
  send_script(r, beat_lua, a, 3, ignore_reply);
  argv[0] = "EVAL";
  argv[1] = vigil_presence_reap_lua;
  argv[2] = "0";
  argv[3] = "vigil:";
  argv[4] = now;
  argv[5] = OFFLINE_TTL_MS;
  redisAsyncCommandArgv(r->cmd, on_reap_reply, r, 6, argv, NULL);
}

static void on_node_timer(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_presence_redis *r = vigil_container_of(t, vigil_presence_redis, node_timer);
  if (r->up && r->cmd != NULL)
    node_beat(r);
  vigil_loop_timer_arm(loop, t, vigil_loop_now_ms(loop) + r->cfg.node_timeout_ms / 4,
                       on_node_timer);
}

/* ---- public ----------------------------------------------------------------- */

static void config_defaults(vigil_presence_redis_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->url.port = 6379;
  snprintf(cfg->url.host, sizeof cfg->url.host, "127.0.0.1");
}

void vigil_presence_redis_config_init_sized(vigil_presence_redis_config *cfg, size_t size) {
  vigil_presence_redis_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

static void on_done_defer(vigil_loop *loop, vigil_defer *d) {
  vigil_presence_redis *r = vigil_container_of(d, vigil_presence_redis, done_defer);
  (void)loop;
  if (r->close_cb != NULL)
    r->close_cb(r->close_user);
  vigil_presence_local_free(r->table);
  while (r->head != NULL) {
    upd *u = r->head;
    r->head = u->next;
    free(u);
  }
  free(r);
}

static void maybe_done(vigil_presence_redis *r) {
  if (r->closing && r->adapters == 0 && r->cmd == NULL && r->sub == NULL &&
      !vigil_defer_queued(&r->done_defer))
    vigil_loop_defer(r->loop, &r->done_defer);
}

int vigil_presence_redis_new(vigil_presence_redis **out, vigil_loop *loop,
                             const vigil_presence_redis_config *cfg_in) {
  vigil_presence_redis_config copy, *cfg = &copy;
  vigil_presence_redis *r;
  char host[65];
  unsigned instance;
  int rc;
  if (out == NULL || loop == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  config_defaults(&copy); /* fields an older caller lacks keep their default */
  if ((rc = vigil__opts_read(&copy, sizeof copy, cfg_in)) != 0)
    return rc;
  if (cfg->node != NULL && (cfg->node[0] == '\0' || strlen(cfg->node) > 64 ||
                            strchr(cfg->node, '/') != NULL || strchr(cfg->node, ' ') != NULL))
    return VIGIL_EINVAL;
  if ((r = calloc(1, sizeof *r)) == NULL)
    return VIGIL_ENOMEM;
  if (vigil_presence_local_new(&r->table, 0) != 0) {
    free(r);
    return VIGIL_ENOMEM;
  }
  r->store.ops = &redis_ops;
  r->cfg = *cfg;
  r->loop = loop;
  if (r->cfg.max_queue == 0)
    r->cfg.max_queue = 10000;
  if (r->cfg.ttl_ms < 300)
    r->cfg.ttl_ms = 15000;
  if (r->cfg.retry_ms == 0)
    r->cfg.retry_ms = 250;
  if (r->cfg.node_timeout_ms == 0)
    r->cfg.node_timeout_ms = 5000;
  if (r->cfg.node_timeout_ms < 200)
    r->cfg.node_timeout_ms = 200;
  r->retry_ms = r->cfg.retry_ms;
  if (cfg->node != NULL)
    snprintf(r->node, sizeof r->node, "%s", cfg->node);
  else if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') {
    host[sizeof host - 1] = '\0';
    snprintf(r->node, sizeof r->node, "%s", host);
  } else
    snprintf(r->node, sizeof r->node, "node");
  r->cfg.node = r->node;
  /* Instance: tells this process's generations from a restarted one's. */
  instance = (unsigned)getpid() ^ (unsigned)vigil_loop_now_ns(loop) ^ (unsigned)(uintptr_t)r;
  snprintf(r->holder, sizeof r->holder, "%s/%u/%08x", r->node, (unsigned)r->cfg.worker, instance);
  snprintf(r->ctl_channel, sizeof r->ctl_channel, "vigil:ctl:%s", r->holder);
  snprintf(r->ttl, sizeof r->ttl, "%u", (unsigned)r->cfg.ttl_ms);
  r->ever_up = -1;
  vigil_loop_timer_init(&r->retry_timer);
  vigil_loop_timer_init(&r->connect_timer);
  vigil_loop_timer_init(&r->refresh_timer);
  vigil_loop_timer_init(&r->close_timer);
  vigil_loop_timer_init(&r->node_timer);
  vigil_loop_timer_arm(loop, &r->node_timer, vigil_loop_now_ms(loop) + r->cfg.node_timeout_ms / 4,
                       on_node_timer);
  vigil_defer_init(&r->done_defer, on_done_defer);
  vigil_loop_timer_arm(loop, &r->refresh_timer, vigil_loop_now_ms(loop) + r->cfg.ttl_ms / 3,
                       on_refresh);
  connect_now(r);
  *out = r;
  return 0;
}

vigil_presence_store *vigil_presence_redis_store(vigil_presence_redis *r) {
  return r != NULL ? &r->store : NULL;
}

const vigil_presence_local *vigil_presence_redis_table(const vigil_presence_redis *r) {
  return r != NULL ? r->table : NULL;
}

void vigil_presence_redis_get_stats(const vigil_presence_redis *r, vigil_presence_redis_stats *st) {
  if (r == NULL || st == NULL)
    return;
  *st = r->st;
  st->queued = r->count;
}

static void on_close_timer(vigil_loop *loop, vigil_loop_timer *t) {
  vigil_presence_redis *r = vigil_container_of(t, vigil_presence_redis, close_timer);
  (void)loop;
  teardown(r, "closed");
}

void vigil_presence_redis_close(vigil_presence_redis *r, uint32_t timeout_ms,
                                void (*cb)(void *user), void *user) {
  if (r == NULL || r->closing)
    return;
  r->closing = 1;
  r->close_cb = cb;
  r->close_user = user;
  vigil_loop_timer_cancel(r->loop, &r->retry_timer);
  vigil_loop_timer_cancel(r->loop, &r->refresh_timer);
  vigil_loop_timer_cancel(r->loop, &r->node_timer);
  if (r->up) { /* the updates still queued go first, then bye */
    upd *u = calloc(1, sizeof *u);
    if (u != NULL) {
      u->bye = 1;
      if (r->tail != NULL)
        r->tail->next = u;
      else
        r->head = u;
      r->tail = u;
      if (r->next_send == NULL)
        r->next_send = u;
      r->count++;
      flush_queue(r);
    }
  }
  if (r->up && r->head != NULL) {
    vigil_loop_timer_arm(r->loop, &r->close_timer, vigil_loop_now_ms(r->loop) + timeout_ms,
                         on_close_timer);
    return;
  }
  teardown(r, "closed");
}
