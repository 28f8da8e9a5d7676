/* TLS under the session (src/tls.c, its use in src/conn.c), on loopback:
 * a server and a client on one loop, with certificates made at test time
 * (util-tls.c) in a temporary directory removed at the end.
 *
 * What must hold: heartbeats and messages of any size cross TLS (TLS 1.3
 * by default, the peer's certificate verified, the client's CN as the id
 * when the server asks); a peer speaking the other language (plaintext to
 * TLS, TLS to plaintext) gets a clear error within the handshake deadline;
 * a silent or dribbling TLS handshake meets the handshake deadline; a peer
 * that makes us write TLS records while it reads nothing hits the output
 * limit; a record longer than TLS allows is refused. Without OpenSSL (the
 * mingw build) TLS is compiled out and says so. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "task.h"
#include "util-net.h"
#include "util-proc.h"
#include "util-tls.h"
#include "vigil.h"

#if defined(VIGIL_HAVE_OPENSSL)
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define INTERVAL 100u
#define TIMEOUT 300u
#define HANDSHAKE 400u
#define WAIT 5000u

typedef struct fix {
  util_tls_certs certs;
  vigil_loop loop;
  vigil_server *srv;
  vigil_client *cli;
  vigil_tls *stls, *ctls;
  util_rec srec, crec;
  vigil_server_config scfg;
  vigil_client_config ccfg;
  uint16_t port;
} fix;

/* Certificates and the loop; RETURN_SKIP-worthy VIGIL_ENOTSUP without OpenSSL. */
static int fix_init(fix *f) {
  int rc;
  memset(f, 0, sizeof *f);
  if ((rc = util_tls_certs_make(&f->certs)) != 0)
    return rc;
  if ((rc = util_net_init()) != 0 || (rc = vigil_loop_init(&f->loop, NULL)) != 0)
    return rc;
  util_rec_init(&f->srec);
  util_rec_init(&f->crec);
  vigil_server_config_init(&f->scfg);
  f->scfg.session.interval_ms = f->scfg.session.min_interval_ms = INTERVAL;
  f->scfg.session.timeout_ms = TIMEOUT;
  f->scfg.session.handshake_timeout_ms = HANDSHAKE;
  f->scfg.cb = util_rec_callbacks();
  f->scfg.user = &f->srec;
  f->scfg.on_closed = util_rec_on_server_closed;
  vigil_client_config_init(&f->ccfg);
  f->ccfg.session.interval_ms = INTERVAL;
  f->ccfg.session.timeout_ms = TIMEOUT;
  f->ccfg.session.handshake_timeout_ms = HANDSHAKE;
  f->ccfg.session.id = "c1";
  f->ccfg.session.id_len = 2;
  f->ccfg.cb = util_rec_callbacks();
  f->ccfg.user = &f->crec;
  f->ccfg.on_closed = util_rec_on_client_closed;
  f->ccfg.no_reconnect = 1;
  return 0;
}

/* A TLS context; cert/key/ca may be NULL. */
static int make_tls(vigil_tls **out, vigil_role role, const char *cert, const char *key,
                    const char *ca, int id_from_cert) {
  vigil_tls_config cfg;
  char err[256] = "";
  int rc;
  vigil_tls_config_init(&cfg);
  cfg.cert_file = cert;
  cfg.key_file = key;
  cfg.ca_file = ca;
  cfg.id_from_cert = id_from_cert;
  rc = vigil_tls_new(out, role, &cfg, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "vigil_tls_new: %s (%s)\n", vigil_strerror(rc), err);
  return rc;
}

static int fix_server(fix *f) {
  int rc;
  f->scfg.tls = f->stls;
  if ((rc = vigil_server_new(&f->srv, &f->loop, &f->scfg)) != 0)
    return rc;
  return vigil_server_listen(f->srv, "127.0.0.1", 0, &f->port);
}

static int fix_client(fix *f, const char *host) {
  int rc;
  f->ccfg.tls = f->ctls;
  if ((rc = vigil_client_new(&f->cli, &f->loop, &f->ccfg)) != 0)
    return rc;
  return vigil_client_connect(f->cli, host, f->port);
}

/* Closes what runs, frees everything, removes the certificates. */
static int fix_end(fix *f) {
  int rc = 0;
  if (f->cli != NULL) {
    (void)vigil_client_close(f->cli, 200);
    if (!util_run_until(&f->loop, &f->crec.closed, WAIT))
      rc = VIGIL_ETIMEDOUT;
    if (vigil_client_free(f->cli) != 0)
      rc = VIGIL_EBUSY;
  }
  if (f->srv != NULL) {
    (void)vigil_server_shutdown(f->srv, 200);
    if (!util_run_until(&f->loop, &f->srec.closed, WAIT))
      rc = VIGIL_ETIMEDOUT;
    if (vigil_server_free(f->srv) != 0)
      rc = VIGIL_EBUSY;
  }
  util_run_for(&f->loop, 5);
  if (vigil_loop_close(&f->loop) != 0)
    rc = VIGIL_EBUSY;
  vigil_tls_free(f->stls);
  vigil_tls_free(f->ctls);
  util_tls_certs_remove(&f->certs);
  return rc;
}

#define FIX_INIT_OR_SKIP(f)                                                                        \
  do {                                                                                             \
    int rc__ = fix_init(f);                                                                        \
    if (rc__ == VIGIL_ENOTSUP)                                                                     \
      RETURN_SKIP("built without TLS (no OpenSSL)");                                               \
    ASSERT_EQ(rc__, 0);                                                                            \
  } while (0)

/* The standard pair: server with its certificate, client trusting the CA. */
static int fix_tls_pair(fix *f) {
  int rc;
  if ((rc = make_tls(&f->stls, VIGIL_ROLE_SERVER, f->certs.server, f->certs.server_key, NULL, 0)) !=
          0 ||
      (rc = make_tls(&f->ctls, VIGIL_ROLE_CLIENT, NULL, NULL, f->certs.ca, 0)) != 0)
    return rc;
  return fix_server(f);
}

/* ---- what TLS carries ------------------------------------------------------ */

TEST_IMPL(compiled_in_or_out) {
  vigil_tls_config cfg;
  vigil_tls *t = NULL;
  char err[128] = "";
  vigil_tls_config_init(&cfg);
#if defined(VIGIL_HAVE_OPENSSL)
  ASSERT_EQ(vigil_tls_available(), 1);
  /* a server without a certificate is a usage error, said in words */
  ASSERT_EQ(vigil_tls_new(&t, VIGIL_ROLE_SERVER, &cfg, err, sizeof err), VIGIL_EINVAL);
  ASSERT_NOT_NULL(strstr(err, "needs a certificate"));
  cfg.cert_file = "/nonexistent/cert.pem";
  cfg.key_file = "/nonexistent/key.pem";
  ASSERT_EQ(vigil_tls_new(&t, VIGIL_ROLE_SERVER, &cfg, err, sizeof err), VIGIL_ENOENT);
  ASSERT_NOT_NULL(strstr(err, "/nonexistent/cert.pem"));
  ASSERT_NULL(t);
#else
  ASSERT_EQ(vigil_tls_available(), 0);
  ASSERT_EQ(vigil_tls_new(&t, VIGIL_ROLE_CLIENT, &cfg, err, sizeof err), VIGIL_ENOTSUP);
  ASSERT_NOT_NULL(strstr(err, "built without TLS"));
  ASSERT_NULL(t);
#endif
  return 0;
}

static uint8_t big[300000];
static size_t big_received;

static void on_big(vigil_conn *c, const uint8_t *msg, size_t len, void *user) {
  util_rec *r = user;
  (void)c;
  r->messages++;
  if (len == sizeof big && memcmp(msg, big, len) == 0)
    big_received++;
}

TEST_IMPL(heartbeat_and_messages) {
  fix f;
  size_t i;
  const vigil_tls_conn *t;
  vigil_conn_callbacks cb;
  FIX_INIT_OR_SKIP(&f);
  for (i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)(i * 7u + i / 251u);
  cb = util_rec_callbacks();
  cb.on_message = on_big;
  f.scfg.cb = cb;
  f.ccfg.cb = cb;
  ASSERT_EQ(fix_tls_pair(&f), 0);
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.opens, WAIT));
  ASSERT(util_run_until(&f.loop, &f.crec.opens, WAIT));
  t = vigil_conn_tls(f.crec.conn);
  ASSERT_NOT_NULL(t);
  ASSERT_STR_EQ(vigil_tls_conn_version(t), "TLSv1.3");
  ASSERT_STR_EQ(f.srec.id, "c1");
  /* heartbeats inside TLS: RTTs on both ends, nobody dies */
  ASSERT(util_run_until_n(&f.loop, &f.crec.rtts, 3, WAIT));
  ASSERT(util_run_until_n(&f.loop, &f.srec.rtts, 3, WAIT));
  /* messages larger than a TLS record, a wbuf fill and a kernel write, both ways */
  for (i = 0; i < 3; i++) { /* 900 KB: within the 1 MiB queue */
    ASSERT_EQ(vigil_client_send(f.cli, big, sizeof big), 0);
    ASSERT_EQ(vigil_conn_send(f.srec.conn, big, sizeof big), 0);
  }
  ASSERT(util_run_until_n(&f.loop, &f.srec.messages, 3, WAIT));
  ASSERT(util_run_until_n(&f.loop, &f.crec.messages, 3, WAIT));
  ASSERT_EQ(big_received, 6);
  {
    vigil_conn_info ci;
    /* every queued byte left the queue: all its ciphertext reached the kernel */
    util_run_for(&f.loop, 50);
    vigil_conn_get_info(f.srec.conn, &ci);
    ASSERT_EQ(ci.queued_bytes, 0);
    vigil_conn_get_info(f.crec.conn, &ci);
    ASSERT_EQ(ci.queued_bytes, 0);
  }
  ASSERT_EQ(f.srec.deaths + f.crec.deaths + f.srec.rejects + f.crec.rejects, 0);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- certificates ---------------------------------------------------------- */

/* A client that cannot verify the server: rejected, saying why. */
static int verify_fails(const char *ca, const char *host, const char *name, const char *why) {
  fix f;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(make_tls(&f.stls, VIGIL_ROLE_SERVER, f.certs.server, f.certs.server_key, NULL, 0), 0);
  ASSERT_EQ(make_tls(&f.ctls, VIGIL_ROLE_CLIENT, NULL, NULL,
                     strcmp(ca, "other") == 0 ? f.certs.other_ca : f.certs.ca, 0),
            0);
  ASSERT_EQ(fix_server(&f), 0);
  f.ccfg.tls_name = name;
  ASSERT_EQ(fix_client(&f, host), 0);
  ASSERT(util_run_until(&f.loop, &f.crec.rejects, WAIT));
  ASSERT_EQ(f.crec.opens + f.srec.opens, 0);
  ASSERT_EQ(f.crec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  if (strstr(f.crec.detail, why) == NULL)
    TEST_FAIL_AT("detail \"%s\" lacks \"%s\"", f.crec.detail, why);
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

TEST_IMPL(unknown_ca_refused) {
  return verify_fails("other", "127.0.0.1", NULL, "certificate verify failed");
}

TEST_IMPL(wrong_name_refused) {
  return verify_fails("ca", "127.0.0.1", "example.com", "hostname mismatch");
}

TEST_IMPL(name_and_ip_verified) {
  fix f;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(fix_tls_pair(&f), 0);
  f.ccfg.tls_name = "localhost"; /* the DNS name, though we connect to the address */
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.crec.opens, WAIT));
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

TEST_IMPL(mutual_tls_id_from_cert) {
  fix f;
  vigil_tls *anon = NULL;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(make_tls(&f.stls, VIGIL_ROLE_SERVER, f.certs.server, f.certs.server_key, f.certs.ca, 1),
            0);
  ASSERT_EQ(make_tls(&f.ctls, VIGIL_ROLE_CLIENT, f.certs.client, f.certs.client_key, f.certs.ca, 0),
            0);
  ASSERT_EQ(fix_server(&f), 0);
  /* the HELLO says c1; the certificate says gw-17, and the certificate wins */
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.opens, WAIT));
  ASSERT_STR_EQ(f.srec.id, "gw-17");
  ASSERT_NOT_NULL(vigil_server_find(f.srv, "gw-17", 5));
  ASSERT_NULL(vigil_server_find(f.srv, "c1", 2));
  (void)vigil_client_close(f.cli, 200);
  ASSERT(util_run_until(&f.loop, &f.crec.closed, WAIT));
  ASSERT_EQ(vigil_client_free(f.cli), 0);
  /* without a client certificate: no handshake, no id */
  util_rec_init(&f.crec);
  ASSERT_EQ(make_tls(&anon, VIGIL_ROLE_CLIENT, NULL, NULL, f.certs.ca, 0), 0);
  vigil_tls_free(f.ctls); /* its client is gone */
  f.ctls = anon;
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_NOT_NULL(strstr(f.srec.detail, "certificate"));
  ASSERT(util_run_until(&f.loop, &f.crec.rejects, WAIT));
  ASSERT_EQ(f.crec.opens, 0);
  ASSERT_EQ(f.srec.opens, 1);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- credentials over TLS ------------------------------------------------- */

static char asked_id[256];

static int verify_cert_id(vigil_conn *c, const char *id, size_t id_len, const uint8_t *cred,
                          size_t cred_len, void *user) {
  (void)c, (void)user;
  memcpy(asked_id, id, id_len);
  asked_id[id_len] = '\0';
  return id_len == 5 && memcmp(id, "gw-17", 5) == 0 && cred_len == 1 && cred[0] == 'k'
             ? 0
             : VIGIL_EAUTH;
}

/* A token travels inside TLS: the right one opens, none is refused with
 * CLOSE AUTH_FAILED, which the client reads through TLS. With mutual TLS
 * and id_from_cert the verifier is asked about the certificate's id
 * (gw-17), not the HELLO's (c1). */
TEST_IMPL(credentials_over_tls) {
  static const char secret[] = "0123456789abcdef0123456789abcdef";
  char tok[VIGIL_TOKEN_MAX + 1];
  fix f;
  FIX_INIT_OR_SKIP(&f);
  f.scfg.auth_secret = secret;
  f.scfg.auth_secret_len = sizeof secret - 1;
  ASSERT_EQ(fix_tls_pair(&f), 0);
  ASSERT_EQ(vigil_token_mint(secret, sizeof secret - 1, "c1", 2, (uint64_t)time(NULL) + 600, tok,
                             sizeof tok),
            0);
  f.ccfg.credential = tok;
  f.ccfg.credential_len = strlen(tok);
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.opens, WAIT));
  ASSERT_STR_EQ(f.srec.id, "c1");
  (void)vigil_client_close(f.cli, 200);
  ASSERT(util_run_until(&f.loop, &f.crec.closed, WAIT));
  ASSERT_EQ(vigil_client_free(f.cli), 0);
  util_rec_init(&f.crec);
  f.ccfg.credential = NULL;
  f.ccfg.credential_len = 0;
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.crec.rejects, WAIT));
  ASSERT_EQ(f.crec.death.close_received, 1);
  ASSERT_EQ(f.crec.death.close_code, VIGIL_CLOSE_AUTH_FAILED);
  ASSERT_STR_EQ(f.crec.reason, "credential required");
  ASSERT_EQ(f.srec.opens, 1);
  ASSERT_EQ(fix_end(&f), 0);

  /* mutual TLS: the verifier judges the certificate's id */
  FIX_INIT_OR_SKIP(&f);
  f.scfg.verify = verify_cert_id;
  ASSERT_EQ(make_tls(&f.stls, VIGIL_ROLE_SERVER, f.certs.server, f.certs.server_key, f.certs.ca, 1),
            0);
  ASSERT_EQ(make_tls(&f.ctls, VIGIL_ROLE_CLIENT, f.certs.client, f.certs.client_key, f.certs.ca, 0),
            0);
  ASSERT_EQ(fix_server(&f), 0);
  f.ccfg.credential = "k";
  f.ccfg.credential_len = 1;
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.opens, WAIT));
  ASSERT_STR_EQ(asked_id, "gw-17");
  ASSERT_STR_EQ(f.srec.id, "gw-17");
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- the wrong language ------------------------------------------------------ */

TEST_IMPL(plaintext_client_on_tls_server) {
  fix f;
  uint64_t t0;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(fix_tls_pair(&f), 0);
  vigil_tls_free(f.ctls);
  f.ctls = NULL; /* the client speaks plaintext */
  t0 = util_now_ns();
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.crec.rejects, WAIT));
  /* told in plaintext, at once, not left to its handshake deadline */
  ASSERT_LT(util_now_ns() - t0, (uint64_t)HANDSHAKE * VIGIL_MS);
  ASSERT(f.crec.death.close_received);
  ASSERT_EQ(f.crec.death.close_code, VIGIL_CLOSE_POLICY);
  ASSERT_STR_EQ(f.crec.reason, "this server requires TLS");
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_STR_EQ(f.srec.detail, "plaintext client on a TLS server");
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

TEST_IMPL(tls_client_on_plaintext_server) {
  fix f;
  uint64_t t0;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(make_tls(&f.ctls, VIGIL_ROLE_CLIENT, NULL, NULL, f.certs.ca, 0), 0);
  ASSERT_EQ(fix_server(&f), 0); /* no TLS */
  t0 = util_now_ns();
  ASSERT_EQ(fix_client(&f, "127.0.0.1"), 0);
  ASSERT(util_run_until(&f.loop, &f.crec.rejects, WAIT));
  ASSERT_LT(util_now_ns() - t0, (uint64_t)HANDSHAKE * VIGIL_MS);
  ASSERT_EQ(f.crec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  if (strstr(f.crec.detail, "does not speak TLS") == NULL)
    TEST_FAIL_AT("detail: %s", f.crec.detail);
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  ASSERT_STR_EQ(f.srec.detail, "TLS client on a plaintext server");
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- limits ------------------------------------------------------------------ */

/* A raw TCP peer that sends `pre` (may be empty) and then nothing: the
 * server's handshake deadline ends it, no sooner, saying TLS. */
static int silent_handshake(const uint8_t *pre, size_t n) {
  fix f;
  vigil_os_socket s;
  uint64_t t0, took;
  int rc;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(fix_tls_pair(&f), 0);
  rc = util_raw_connect("127.0.0.1", f.port, &s);
  if (rc == VIGIL_ENOTSUP) {
    (void)fix_end(&f);
    RETURN_SKIP("raw sockets need POSIX");
  }
  ASSERT_EQ(rc, 0);
  t0 = util_now_ns();
  if (n > 0)
    ASSERT_EQ(util_raw_send(s, pre, n), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  took = util_now_ns() - t0;
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_POLICY);
  ASSERT_STR_EQ(f.srec.detail, "TLS handshake not completed within the handshake timeout");
  ASSERT_EQ(f.srec.death.close_sent, 0);                  /* no CLOSE can travel before TLS is up */
  ASSERT_GE(took, (uint64_t)(HANDSHAKE - 20) * VIGIL_MS); /* the accept preceded t0 a little */
  ASSERT_LT(took, (uint64_t)(HANDSHAKE + 1500) * VIGIL_MS);
  util_raw_close(s);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

TEST_IMPL(silent_peer_meets_handshake_deadline) {
  return silent_handshake(NULL, 0);
}

TEST_IMPL(half_client_hello_meets_handshake_deadline) {
  /* a handshake record header promising 512 bytes, and 3 of them */
  static const uint8_t part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01};
  return silent_handshake(part, sizeof part);
}

TEST_IMPL(oversized_record_refused) {
  /* a record header announcing 18,433 bytes: more than TLS allows */
  static const uint8_t hdr[] = {0x16, 0x03, 0x03, 0x48, 0x01};
  fix f;
  vigil_os_socket s;
  uint64_t t0;
  int rc;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(fix_tls_pair(&f), 0);
  rc = util_raw_connect("127.0.0.1", f.port, &s);
  if (rc == VIGIL_ENOTSUP) {
    (void)fix_end(&f);
    RETURN_SKIP("raw sockets need POSIX");
  }
  ASSERT_EQ(rc, 0);
  t0 = util_now_ns();
  ASSERT_EQ(util_raw_send(s, hdr, sizeof hdr), 0);
  ASSERT(util_run_until(&f.loop, &f.srec.rejects, WAIT));
  /* refused on the header, not after waiting for 18 KiB or a deadline */
  ASSERT_LT(util_now_ns() - t0, (uint64_t)HANDSHAKE * VIGIL_MS);
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_PROTOCOL_ERROR);
  ASSERT_NOT_NULL(strstr(f.srec.detail, "TLS: "));
  util_raw_close(s);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- a stopped TLS peer ------------------------------------------------------- */

static fix *child_fix;

/* A TLS client in a child process, stopped and then killed by the parent. */
static int child_tls_client(void *arg) {
  fix *f = child_fix;
  vigil_loop loop;
  vigil_client *cli;
  (void)arg;
  if (vigil_loop_init(&loop, NULL) != 0)
    return 10;
  f->ccfg.tls = f->ctls;
  f->ccfg.session.id = "stopped";
  f->ccfg.session.id_len = 7;
  if (vigil_client_new(&cli, &loop, &f->ccfg) != 0 ||
      vigil_client_connect(cli, "127.0.0.1", f->port) != 0)
    return 11;
  util_run_for(&loop, 20000);
  return 0;
}

TEST_IMPL(sigstopped_client_is_peer_stalled) {
  fix f;
  long pid;
  uint64_t stop_ns, wait0;
  int rc;
  FIX_INIT_OR_SKIP(&f);
  ASSERT_EQ(fix_tls_pair(&f), 0);
  child_fix = &f;
  rc = util_proc_spawn(child_tls_client, NULL, &pid);
  if (rc == VIGIL_ENOTSUP) {
    (void)fix_end(&f);
    RETURN_SKIP("needs fork() and SIGSTOP (POSIX)");
  }
  ASSERT_EQ(rc, 0);
  rc = 1;
  if (util_run_until(&f.loop, &f.srec.opens, WAIT)) {
    util_run_for(&f.loop, 3 * INTERVAL); /* heartbeats flow inside TLS */
    if (f.srec.deaths == 0 && util_proc_stop(pid) == 0) {
      stop_ns = util_now_ns();
      wait0 = util_cpu_wait_ns();
      if (util_run_until(&f.loop, &f.srec.deaths, WAIT))
        rc = 0;
    }
  }
  (void)util_proc_kill(pid);
  ASSERT_EQ(rc, 0);
  fprintf(stderr, "SIGSTOP -> verdict in %.1f ms; silent_ms=%.1f; cause %s (%s)\n",
          (double)(f.srec.death_ns - stop_ns) / 1e6, (double)f.srec.death.silent_ns / 1e6,
          vigil_cause_name(f.srec.death.cause), f.srec.detail);
  /* the same cause and timing as without TLS (test-server.c) */
  ASSERT_EQ(f.srec.death.cause, util_stalled_cause(&f.srec.death));
  ASSERT_UGE(f.srec.death.silent_ns, (uint64_t)TIMEOUT * VIGIL_MS);
  ASSERT_ULE(f.srec.death_ns - stop_ns,
             (uint64_t)(TIMEOUT + 100) * VIGIL_MS + (f.srec.death_wait_ns - wait0));
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
}

/* ---- the output limit ----------------------------------------------------------- */

#if defined(VIGIL_HAVE_OPENSSL) && !defined(_WIN32)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *flood_ca;

/* A TLS client that never reads and asks for key updates, each of which
 * the server must answer with a record of its own. Exit status: 0 when
 * the server ended the connection, 2 when it never did. */
static int key_update_flood(void *arg) {
  struct sockaddr_in sa;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl;
  int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096, i;
  (void)arg;
  if (ctx == NULL || fd < 0 || SSL_CTX_load_verify_locations(ctx, flood_ca, NULL) != 1)
    return 10;
  /* a small window, so the server's kernel stops taking its answers soon */
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(child_fix->port);
  sa.sin_addr.s_addr = htonl(0x7f000001u);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (ssl = SSL_new(ctx)) == NULL)
    return 11;
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1)
    return 12;
  for (i = 0; i < 200000; i++)
    if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1)
      return 0; /* the server closed on us */
  return 2;
}
#endif

TEST_IMPL(output_limit_ends_a_peer_that_does_not_read) {
#if defined(VIGIL_HAVE_OPENSSL) && !defined(_WIN32)
  fix f;
  long pid;
  int status;
  FIX_INIT_OR_SKIP(&f);
  f.scfg.session.handshake_timeout_ms = 90000; /* the limit, not the deadline, must end it */
  ASSERT_EQ(fix_tls_pair(&f), 0);
  child_fix = &f;
  flood_ca = f.certs.ca;
  ASSERT_EQ(util_proc_spawn(key_update_flood, NULL, &pid), 0);
  if (!util_run_until(&f.loop, &f.srec.rejects, 60000)) {
    (void)util_proc_kill(pid);
    TEST_FAIL_AT("the server never ended the flooding peer");
  }
  ASSERT_EQ(f.srec.death.cause, VIGIL_CAUSE_POLICY);
  if (strstr(f.srec.detail, "TLS output not taken") == NULL) {
    (void)util_proc_kill(pid);
    TEST_FAIL_AT("detail: %s", f.srec.detail);
  }
  util_run_for(&f.loop, 50);
  status = util_proc_wait(pid, 5000);
  if (status < 0)
    (void)util_proc_kill(pid);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(fix_end(&f), 0);
  return 0;
#else
  RETURN_SKIP("built without TLS (no OpenSSL) or no fork()");
#endif
}
