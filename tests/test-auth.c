/* Ids bound to credentials, end to end on loopback (issue 12): a server
 * with an auth secret (tokens of vigil/token.h) or a verify callback, and
 * vigil clients presenting a credential in a version 2 HELLO.
 *
 * What must hold: a valid credential opens; a missing, wrong, expired or
 * forged one is refused with CLOSE AUTH_FAILED, a retry-after and a fixed
 * reason (never the token), and the id never reaches on_open, the
 * presence table or a presence store; a takeover needs a verified HELLO
 * for that id, so a refused one leaves the holder online; a client without
 * a credential still talks to a server without auth; the reconnecting
 * client sends its credential on every attempt and waits the retry-after.
 * Heartbeat 100 ms / 300 ms; every wait is bounded. The token cases skip
 * where the library has no OpenSSL (the mingw build); the callback cases
 * run everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "vigil.h"

#define INTERVAL 100u
#define TIMEOUT 300u
#define WAIT 3000u
#define RETRY_MS 5000u /* the test servers' auth_retry_after_ms */

static const char secret[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */

typedef struct fixture {
  vigil_loop loop;
  vigil_server *srv;
  vigil_presence_local *presence;
  util_rec rec;
  uint16_t port;
} fixture;

static void server_config(fixture *f, vigil_server_config *cfg) {
  util_rec_init(&f->rec);
  vigil_server_config_init(cfg);
  cfg->session.interval_ms = INTERVAL;
  cfg->session.timeout_ms = TIMEOUT;
  cfg->session.min_interval_ms = 50;
  cfg->cb = util_rec_callbacks();
  cfg->user = &f->rec;
  cfg->on_closed = util_rec_on_server_closed;
  cfg->auth_retry_after_ms = RETRY_MS;
  f->presence = NULL;
}

static int server_up(fixture *f, vigil_server_config *cfg) {
  int rc;
  if ((rc = util_net_init()) != 0)
    return rc;
  if ((rc = vigil_presence_local_new(&f->presence, 0)) != 0)
    return rc;
  cfg->presence = vigil_presence_local_store(f->presence);
  if ((rc = vigil_loop_init(&f->loop, NULL)) != 0)
    return rc;
  if ((rc = vigil_server_new(&f->srv, &f->loop, cfg)) != 0)
    return rc;
  return vigil_server_listen(f->srv, "127.0.0.1", 0, &f->port);
}

static int server_down(fixture *f) {
  int rc;
  (void)vigil_server_shutdown(f->srv, 500);
  if (!util_run_until(&f->loop, &f->rec.closed, WAIT))
    return VIGIL_ETIMEDOUT;
  util_run_for(&f->loop, 5);
  if ((rc = vigil_server_free(f->srv)) != 0)
    return rc;
  util_run_for(&f->loop, 5);
  vigil_presence_local_free(f->presence);
  return vigil_loop_close(&f->loop);
}

static void client_config(vigil_client_config *cfg, util_rec *rec, const char *id,
                          const char *cred) {
  util_rec_init(rec);
  vigil_client_config_init(cfg);
  cfg->session.interval_ms = INTERVAL;
  cfg->session.timeout_ms = TIMEOUT;
  cfg->session.id = id;
  cfg->session.id_len = strlen(id);
  cfg->cb = util_rec_callbacks();
  cfg->user = rec;
  cfg->on_reconnect = util_rec_on_reconnect;
  cfg->on_closed = util_rec_on_client_closed;
  cfg->no_reconnect = 1;
  cfg->credential = cred;
  cfg->credential_len = cred != NULL ? strlen(cred) : 0;
}

static void mint(const char *id, int64_t ttl_s, char *out) {
  uint64_t exp = (uint64_t)((int64_t)time(NULL) + ttl_s);
  if (vigil_token_mint(secret, sizeof secret - 1, id, strlen(id), exp, out, VIGIL_TOKEN_MAX + 1) !=
      0)
    out[0] = '\0';
}

/* Runs the loop until *a or *b is non-zero, at most ms. */
static int run_until_either(vigil_loop *loop, const int *a, const int *b, uint32_t ms) {
  uint64_t end = util_now_ns() + (uint64_t)ms * VIGIL_MS;
  while (*a == 0 && *b == 0 && util_now_ns() < end)
    util_run_for(loop, 5);
  return *a != 0 || *b != 0;
}

/* A client for id with credential cred (NULL: a version 1 HELLO) that
 * stops after one attempt; waits for it to open or be refused. */
static int attempt(fixture *f, const char *id, const char *cred, vigil_client **cli,
                   util_rec *rec) {
  vigil_client_config ccfg;
  client_config(&ccfg, rec, id, cred);
  ASSERT_EQ(vigil_client_new(cli, &f->loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_connect(*cli, "127.0.0.1", f->port), 0);
  ASSERT(run_until_either(&f->loop, &rec->opens, &rec->rejects, WAIT));
  return 0;
}

static int finish(fixture *f, vigil_client *cli, util_rec *rec) {
  (void)vigil_client_close(cli, 0);
  ASSERT(util_run_until(&f->loop, &rec->closed, WAIT));
  ASSERT_EQ(vigil_client_free(cli), 0);
  return 0;
}

/* The client was refused with AUTH_FAILED, the retry-after and `reason`,
 * and the server kept nothing of its id. */
static int refused(fixture *f, const util_rec *rec, const char *id, const char *reason,
                   const char *token) {
  vigil_server_stats st;
  vigil_metrics m;
  vigil_presence_record pr;
  ASSERT_EQ(rec->opens, 0);
  ASSERT_EQ(rec->rejects, 1);
  ASSERT_EQ(rec->death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_EQ(rec->death.close_received, 1);
  ASSERT_EQ(rec->death.close_code, VIGIL_CLOSE_AUTH_FAILED);
  ASSERT_UEQ(rec->death.retry_after_ms, RETRY_MS);
  ASSERT_STR_EQ(rec->reason, reason);
  /* The server's side: on_reject with the same words (before its CLOSE
   * was written), no on_open. */
  ASSERT_GE(f->rec.rejects, 1);
  ASSERT_STR_EQ(f->rec.detail, reason);
  ASSERT_EQ(f->rec.death.close_sent, 1);
  ASSERT_EQ(f->rec.death.close_code, VIGIL_CLOSE_AUTH_FAILED);
  if (token != NULL && token[0] != '\0') {
    ASSERT(strstr(f->rec.detail, token) == NULL);
    ASSERT(strstr(rec->reason, token) == NULL);
  }
  ASSERT_NULL(vigil_server_find(f->srv, id, strlen(id)));
  /* Never online in the store (an id that was opened before and left
   * keeps its offline record). */
  if (vigil_presence_local_get(f->presence, id, strlen(id), &pr) == 0)
    ASSERT_NE(pr.state, VIGIL_PRESENCE_ONLINE);
  vigil_server_get_stats(f->srv, &st);
  ASSERT_EQ(st.peers, 0);
  ASSERT_UGE(st.refused_auth, 1);
  /* An operator sees it as auth_failed, not as a broken handshake. */
  ASSERT_EQ(vigil_server_get_metrics(f->srv, &m), 0);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_AUTH_FAILED], st.refused_auth);
  ASSERT_UEQ(m.refused[VIGIL_REFUSED_BAD_HANDSHAKE], 0);
  ASSERT_STR_EQ(vigil_refusal_name(VIGIL_REFUSED_AUTH_FAILED), "auth_failed");
  return 0;
}

static int open_ok(fixture *f, const util_rec *rec, const char *id) {
  vigil_presence_record pr;
  ASSERT_EQ(rec->opens, 1);
  ASSERT(util_run_until(&f->loop, &f->rec.opens, WAIT));
  ASSERT_STR_EQ(f->rec.id, id);
  ASSERT_NOT_NULL(vigil_server_find(f->srv, id, strlen(id)));
  ASSERT_EQ(vigil_presence_local_get(f->presence, id, strlen(id), &pr), 0);
  ASSERT_EQ(pr.state, VIGIL_PRESENCE_ONLINE);
  return 0;
}

/* ---- tokens --------------------------------------------------------------- */

TEST_IMPL(valid_token_opens) {
  fixture f;
  vigil_server_config cfg;
  vigil_client *cli;
  util_rec rec;
  char tok[VIGIL_TOKEN_MAX + 1];
  vigil_server_stats st;
  if (!vigil_token_available())
    RETURN_SKIP("tokens need OpenSSL");
  server_config(&f, &cfg);
  cfg.auth_secret = secret;
  cfg.auth_secret_len = sizeof secret - 1;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  mint("dev-1", 3600, tok);
  ASSERT_EQ(attempt(&f, "dev-1", tok, &cli, &rec), 0);
  ASSERT_EQ(open_ok(&f, &rec, "dev-1"), 0);
  vigil_server_get_stats(f.srv, &st);
  ASSERT_EQ(st.refused_auth, 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* Each bad credential in turn against the same server: none, a token for
 * another id, an expired one, a forged MAC, a forged expiry, garbage. */
TEST_IMPL(bad_tokens_refused) {
  fixture f;
  vigil_server_config cfg;
  vigil_client *cli;
  util_rec rec;
  char other[VIGIL_TOKEN_MAX + 1], expired[VIGIL_TOKEN_MAX + 1], forged[VIGIL_TOKEN_MAX + 1],
      later[VIGIL_TOKEN_MAX + 8];
  char *dot;
  if (!vigil_token_available())
    RETURN_SKIP("tokens need OpenSSL");
  server_config(&f, &cfg);
  cfg.auth_secret = secret;
  cfg.auth_secret_len = sizeof secret - 1;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  mint("dev-2", 3600, other);
  mint("dev-1", -10, expired);
  mint("dev-1", 3600, forged);
  ASSERT(forged[0] != '\0' && other[0] != '\0' && expired[0] != '\0');
  /* The expiry pushed a second later, its MAC kept: a forgery too. */
  dot = strrchr(forged, '.');
  ASSERT_NOT_NULL(dot);
  snprintf(later, sizeof later, "v1.%llu%s", (unsigned long long)strtoull(forged + 3, NULL, 10) + 1,
           dot);
  forged[20] = forged[20] == 'A' ? 'B' : 'A'; /* one MAC character changed */

  ASSERT_EQ(attempt(&f, "dev-1", NULL, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "credential required", NULL), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "dev-1", other, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "authentication failed", other), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "dev-1", expired, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "credential expired", expired), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "dev-1", forged, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "authentication failed", forged), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "dev-1", later, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "authentication failed", later), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "dev-1", "not a token at all", &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "dev-1", "authentication failed", NULL), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(f.rec.opens, 0);
  ASSERT_EQ(f.rec.rejects, 6);
  ASSERT_EQ(vigil_presence_local_count(f.presence), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The holder of an id stays online through takeover attempts without the
 * right token; a HELLO with a valid token for the id takes over. */
TEST_IMPL(takeover_needs_verified_id) {
  fixture f;
  vigil_server_config cfg;
  vigil_client *holder, *cli;
  util_rec hrec, rec;
  char tok[VIGIL_TOKEN_MAX + 1], other[VIGIL_TOKEN_MAX + 1];
  vigil_conn *held;
  if (!vigil_token_available())
    RETURN_SKIP("tokens need OpenSSL");
  server_config(&f, &cfg);
  cfg.auth_secret = secret;
  cfg.auth_secret_len = sizeof secret - 1;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  mint("gate", 3600, tok);
  mint("intruder", 3600, other);
  ASSERT_EQ(attempt(&f, "gate", tok, &holder, &hrec), 0);
  ASSERT_EQ(open_ok(&f, &hrec, "gate"), 0);
  held = vigil_server_find(f.srv, "gate", 4);
  ASSERT_NOT_NULL(held);

  ASSERT_EQ(attempt(&f, "gate", NULL, &cli, &rec), 0); /* an old client, no token */
  ASSERT_EQ(rec.death.close_code, VIGIL_CLOSE_AUTH_FAILED);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "gate", other, &cli, &rec), 0); /* a valid token, another id's */
  ASSERT_EQ(rec.death.close_code, VIGIL_CLOSE_AUTH_FAILED);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  util_run_for(&f.loop, 2 * INTERVAL);
  ASSERT_PTR_EQ(vigil_server_find(f.srv, "gate", 4), held);
  ASSERT_EQ(hrec.deaths, 0);
  ASSERT_EQ(f.rec.deaths, 0);
  ASSERT_EQ(f.rec.opens, 1);

  /* The same verified id: the takeover happens. */
  ASSERT_EQ(attempt(&f, "gate", tok, &cli, &rec), 0);
  ASSERT_EQ(rec.opens, 1);
  ASSERT(util_run_until(&f.loop, &hrec.deaths, WAIT));
  ASSERT_EQ(hrec.death.close_code, VIGIL_CLOSE_TAKEOVER);
  ASSERT_EQ(f.rec.rejoin, 1);
  ASSERT(vigil_server_find(f.srv, "gate", 4) != held);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(finish(&f, holder, &hrec), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- without auth ------------------------------------------------------- */

/* A server without auth takes a version 1 HELLO (an old client) as
 * before, and a version 2 HELLO with a credential it has no use for. */
TEST_IMPL(no_auth_server_takes_old_and_new_clients) {
  fixture f;
  vigil_server_config cfg;
  vigil_client *cli;
  util_rec rec;
  server_config(&f, &cfg);
  ASSERT_EQ(server_up(&f, &cfg), 0);
  ASSERT_EQ(attempt(&f, "old", NULL, &cli, &rec), 0);
  ASSERT_EQ(open_ok(&f, &rec, "old"), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "new", "some credential", &cli, &rec), 0);
  ASSERT_EQ(rec.opens, 1);
  ASSERT(util_run_until_n(&f.loop, &f.rec.opens, 2, WAIT));
  ASSERT_STR_EQ(f.rec.id, "new");
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(f.rec.rejects, 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* ---- the verify callback ------------------------------------------------ */

typedef struct judge {
  int calls;
  char id[256], cred[256], peer[VIGIL_ADDRSTRLEN];
  int peer_ok; /* vigil_conn_get_info gave the peer and no id yet */
} judge;

static judge the_judge;

static int verify(vigil_conn *c, const char *id, size_t id_len, const uint8_t *cred,
                  size_t cred_len, void *user) {
  vigil_conn_info info;
  (void)user;
  the_judge.calls++;
  memcpy(the_judge.id, id, id_len);
  the_judge.id[id_len] = '\0';
  memcpy(the_judge.cred, cred, cred_len);
  the_judge.cred[cred_len] = '\0';
  vigil_conn_get_info(c, &info);
  memcpy(the_judge.peer, info.peer, sizeof the_judge.peer);
  the_judge.peer_ok = strncmp(info.peer, "127.0.0.1:", 10) == 0 && info.id == NULL;
  if (cred_len == 5 && memcmp(cred, "stale", 5) == 0)
    return VIGIL_EEXPIRED;
  return id_len == 2 && memcmp(id, "cb", 2) == 0 && cred_len == 11 &&
                 memcmp(cred, "open-sesame", 11) == 0
             ? 0
             : VIGIL_EAUTH;
}

TEST_IMPL(verify_callback_decides) {
  fixture f;
  vigil_server_config cfg;
  vigil_client *cli;
  util_rec rec;
  memset(&the_judge, 0, sizeof the_judge);
  server_config(&f, &cfg);
  cfg.verify = verify;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  ASSERT_EQ(attempt(&f, "cb", "open-sesame", &cli, &rec), 0);
  ASSERT_EQ(open_ok(&f, &rec, "cb"), 0);
  ASSERT_EQ(the_judge.calls, 1);
  ASSERT_STR_EQ(the_judge.id, "cb");
  ASSERT_STR_EQ(the_judge.cred, "open-sesame");
  ASSERT(the_judge.peer_ok);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "cb2", "open-sesame", &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "cb2", "authentication failed", "open-sesame"), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(attempt(&f, "cb", "stale", &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "cb", "credential expired", NULL), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  /* No credential: refused before the callback is asked. */
  ASSERT_EQ(attempt(&f, "cb", NULL, &cli, &rec), 0);
  ASSERT_EQ(refused(&f, &rec, "cb", "credential required", NULL), 0);
  ASSERT_EQ(finish(&f, cli, &rec), 0);
  ASSERT_EQ(the_judge.calls, 3);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

/* The reconnecting client: refused, it waits at least the retry-after
 * (no hot loop), sends its credential again on the next attempt, and a
 * credential renewed meanwhile (vigil_client_set_credential) is the one
 * the next attempt carries. */
static vigil_client *renew_cli;

static void renew_on_reject(vigil_conn *c, const vigil_death *d, void *user) {
  util_rec *r = user;
  vigil_conn_callbacks cb = util_rec_callbacks();
  cb.on_reject(c, d, user);
  if (r->rejects == 2)
    (void)vigil_client_set_credential(renew_cli, "open-sesame", 11);
}

TEST_IMPL(client_waits_retry_after_and_resends) {
  fixture f;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  util_rec rec;
  uint64_t t0;
  memset(&the_judge, 0, sizeof the_judge);
  server_config(&f, &cfg);
  cfg.verify = verify;
  cfg.auth_retry_after_ms = 300;
  ASSERT_EQ(server_up(&f, &cfg), 0);
  client_config(&ccfg, &rec, "cb", "wrong");
  ccfg.no_reconnect = 0;
  ccfg.backoff_base_ms = 10;
  ccfg.backoff_cap_ms = 20;
  ccfg.cb.on_reject = renew_on_reject;
  rec.loop = &f.loop;
  ASSERT_EQ(vigil_client_new(&renew_cli, &f.loop, &ccfg), 0);
  t0 = vigil_loop_now_ns(&f.loop);
  ASSERT_EQ(vigil_client_connect(renew_cli, "127.0.0.1", f.port), 0);
  ASSERT(util_run_until(&f.loop, &rec.opens, 4 * WAIT));
  ASSERT_EQ(rec.rejects, 2);
  ASSERT_EQ(the_judge.calls, 3); /* the credential went out on every attempt */
  ASSERT_STR_EQ(the_judge.cred, "open-sesame");
  ASSERT_GE(rec.ndelays, 2);
  ASSERT_UGE(rec.delays[0], 300); /* the retry-after, not the 20 ms backoff */
  ASSERT_UGE(rec.delays[1], 300);
  ASSERT_UGE(vigil_loop_now_ns(&f.loop) - t0, 600 * VIGIL_MS);
  ASSERT_EQ(finish(&f, renew_cli, &rec), 0);
  ASSERT_EQ(server_down(&f), 0);
  return 0;
}

TEST_IMPL(config_checked) {
  vigil_loop loop;
  vigil_server_config cfg;
  vigil_client_config ccfg;
  vigil_server *srv;
  vigil_client *cli;
  uint8_t big[256];
  ASSERT_EQ(vigil_loop_init(&loop, NULL), 0);
  vigil_server_config_init(&cfg);
  cfg.auth_secret = secret;
  cfg.auth_secret_len = 15; /* below VIGIL_TOKEN_SECRET_MIN */
  ASSERT_EQ(vigil_server_new(&srv, &loop, &cfg), VIGIL_EINVAL);
  cfg.auth_secret_len = sizeof secret - 1;
  cfg.verify = verify; /* one judge only */
  ASSERT_EQ(vigil_server_new(&srv, &loop, &cfg), VIGIL_EINVAL);
  cfg.verify = NULL;
  if (!vigil_token_available())
    ASSERT_EQ(vigil_server_new(&srv, &loop, &cfg), VIGIL_ENOTSUP);
  cfg.auth_secret = NULL; /* a length without a secret */
  ASSERT_EQ(vigil_server_new(&srv, &loop, &cfg), VIGIL_EINVAL);
  vigil_client_config_init(&ccfg);
  ccfg.session.id = "x";
  ccfg.session.id_len = 1;
  memset(big, 'k', sizeof big);
  ccfg.credential = big;
  ccfg.credential_len = 256;
  ASSERT_EQ(vigil_client_new(&cli, &loop, &ccfg), VIGIL_EINVAL);
  ccfg.credential = NULL;
  ccfg.credential_len = 1;
  ASSERT_EQ(vigil_client_new(&cli, &loop, &ccfg), VIGIL_EINVAL);
  ccfg.credential = big;
  ccfg.credential_len = 255;
  ASSERT_EQ(vigil_client_new(&cli, &loop, &ccfg), 0);
  ASSERT_EQ(vigil_client_set_credential(cli, big, 256), VIGIL_EINVAL);
  ASSERT_EQ(vigil_client_set_credential(cli, NULL, 0), 0);
  ASSERT_EQ(vigil_client_free(cli), 0);
  return vigil_loop_close(&loop);
}
