/* TLS as a transform of the byte stream, on OpenSSL 3 memory BIOs.
 *
 * Each connection is one SSL object between two memory BIOs: `in` holds
 * ciphertext that arrived (we write it, OpenSSL reads it), `out` holds
 * ciphertext OpenSSL produced (it writes, we take it and hand it to the
 * loop). Nothing here reads a socket or a clock, so the loop stays a
 * completion loop and the session never learns TLS exists: src/conn.c
 * decrypts what the loop read before the session sees it and encrypts what
 * the session framed before the loop writes it.
 *
 * Bounds. Inbound, OpenSSL itself bounds what it holds: it consumes `in`
 * one record at a time and refuses a record longer than the protocol's
 * maximum (16 KiB of plaintext plus expansion) with record_overflow, so
 * after each read `in` holds less than one record. Outbound, what the
 * application writes is taken out at once by the caller, but a peer can
 * make us produce ciphertext while it reads nothing (a KeyUpdate asking
 * for ours, over and over): `out` is capped at VIGIL_TLS_MAX_PENDING and
 * the connection fails with VIGIL_ENOBUFS past it. Handshake time is
 * bounded by the caller (the session's handshake deadline covers the TLS
 * handshake and the HELLO together).
 *
 * Policy. TLS 1.2 minimum (1.3 preferred by OpenSSL), renegotiation off,
 * buffers released while idle (SSL_MODE_RELEASE_BUFFERS: an idle TLS
 * connection holds no 16 KiB record buffers). Clients verify the chain and
 * the host name or IP address by default.
 *
 * A peer that is not speaking TLS at all is told apart from a broken one
 * by its first byte: every TLS record starts with a content type 20..23,
 * every vigil frame with 1..7. The server answers such a peer in plaintext
 * (src/conn.c) so a plaintext client learns that TLS is required instead
 * of reading an alert it cannot parse. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "vigil/tls.h"

static void config_defaults(vigil_tls_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
}

void vigil_tls_config_init_sized(vigil_tls_config *cfg, size_t size) {
  vigil_tls_config def;
  config_defaults(&def);
  vigil__opts_init(cfg, size, &def, sizeof def);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
  va_end(ap);
}

#if defined(VIGIL_HAVE_OPENSSL)

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct vigil_tls {
  SSL_CTX *ctx;
  vigil_role role;
  int id_from_cert;
};

struct vigil_tls_conn {
  SSL *ssl;
  BIO *in, *out;
  vigil_tls *t;
  int first; /* first byte fed, -1 before any */
  char err[200];
};

int vigil_tls_available(void) {
  return 1;
}

/* The reason of OpenSSL's last error ("no such file", "wrong version
 * number"), or `fallback`; clears the thread's error queue. */
static const char *ossl_reason(char *buf, size_t cap, const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  snprintf(buf, cap, "%s", r != NULL ? r : fallback);
  ERR_clear_error();
  return buf;
}

static int load_files(vigil_tls *t, const vigil_tls_config *cfg, char *err, size_t errlen) {
  char why[160];
  if (cfg->cert_file != NULL && SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
    set_err(err, errlen, "cannot load the certificate %s: %s", cfg->cert_file,
            ossl_reason(why, sizeof why, "unreadable"));
    return VIGIL_ENOENT;
  }
  if (cfg->key_file != NULL &&
      SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
    set_err(err, errlen, "cannot load the private key %s: %s", cfg->key_file,
            ossl_reason(why, sizeof why, "unreadable"));
    return VIGIL_ENOENT;
  }
  if (cfg->cert_file != NULL && SSL_CTX_check_private_key(t->ctx) != 1) {
    set_err(err, errlen, "the private key %s does not match the certificate %s", cfg->key_file,
            cfg->cert_file);
    ERR_clear_error();
    return VIGIL_EINVAL;
  }
  if (cfg->ca_file != NULL && SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1) {
    set_err(err, errlen, "cannot load the CA file %s: %s", cfg->ca_file,
            ossl_reason(why, sizeof why, "unreadable"));
    return VIGIL_ENOENT;
  }
  return 0;
}

static int check_config(vigil_role role, const vigil_tls_config *cfg, char *err, size_t errlen) {
  if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
    set_err(err, errlen, "a certificate needs its key and a key its certificate");
    return VIGIL_EINVAL;
  }
  if (role == VIGIL_ROLE_SERVER && cfg->cert_file == NULL) {
    set_err(err, errlen, "a TLS server needs a certificate and a key");
    return VIGIL_EINVAL;
  }
  if (cfg->id_from_cert && (role != VIGIL_ROLE_SERVER || cfg->ca_file == NULL)) {
    set_err(err, errlen,
            "the id can come from a client certificate only on a server with a "
            "client CA");
    return VIGIL_EINVAL;
  }
  return 0;
}

int vigil_tls_new(vigil_tls **out, vigil_role role, const vigil_tls_config *cfg_in, char *err,
                  size_t errlen) {
  vigil_tls_config cfg;
  vigil_tls *t;
  int rc;
  if (out == NULL || cfg_in == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  config_defaults(&cfg);
  if ((rc = vigil__opts_read(&cfg, sizeof cfg, cfg_in)) != 0)
    return rc;
  if ((rc = check_config(role, &cfg, err, errlen)) != 0)
    return rc;
  if ((t = calloc(1, sizeof *t)) == NULL)
    return VIGIL_ENOMEM;
  t->role = role;
  t->id_from_cert = cfg.id_from_cert;
  t->ctx = SSL_CTX_new(role == VIGIL_ROLE_SERVER ? TLS_server_method() : TLS_client_method());
  if (t->ctx == NULL) {
    free(t);
    return VIGIL_ENOMEM;
  }
  (void)SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
  if ((rc = load_files(t, &cfg, err, errlen)) != 0) {
    vigil_tls_free(t);
    return rc;
  }
  if (role == VIGIL_ROLE_CLIENT && !cfg.no_verify) {
    if (cfg.ca_file == NULL)
      (void)SSL_CTX_set_default_verify_paths(t->ctx);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  } else if (role == VIGIL_ROLE_SERVER && cfg.ca_file != NULL) {
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  *out = t;
  return 0;
}

void vigil_tls_free(vigil_tls *t) {
  if (t == NULL)
    return;
  SSL_CTX_free(t->ctx);
  free(t);
}

/* Client: SNI and the name to verify (DNS name or IP address). */
static int set_server_name(vigil_tls_conn *c, const char *name) {
  X509_VERIFY_PARAM *p = SSL_get0_param(c->ssl);
  ASN1_OCTET_STRING *ip;
  if (name == NULL || name[0] == '\0')
    return 0;
  if ((ip = a2i_IPADDRESS(name)) != NULL) {
    ASN1_OCTET_STRING_free(ip);
    return X509_VERIFY_PARAM_set1_ip_asc(p, name) == 1 ? 0 : VIGIL_EINVAL;
  }
  ERR_clear_error();
  if (SSL_set_tlsext_host_name(c->ssl, name) != 1 || X509_VERIFY_PARAM_set1_host(p, name, 0) != 1)
    return VIGIL_EINVAL;
  return 0;
}

int vigil_tls_conn_new(vigil_tls_conn **out, vigil_tls *t, const char *server_name) {
  vigil_tls_conn *c;
  int rc;
  if (out == NULL || t == NULL)
    return VIGIL_EINVAL;
  *out = NULL;
  if ((c = calloc(1, sizeof *c)) == NULL)
    return VIGIL_ENOMEM;
  c->t = t;
  c->first = -1;
  c->ssl = SSL_new(t->ctx);
  c->in = BIO_new(BIO_s_mem());
  c->out = BIO_new(BIO_s_mem());
  if (c->ssl == NULL || c->in == NULL || c->out == NULL) {
    BIO_free(c->in);
    BIO_free(c->out);
    SSL_free(c->ssl);
    free(c);
    ERR_clear_error();
    return VIGIL_ENOMEM;
  }
  /* An empty `in` means "not yet", never end of file. */
  BIO_set_mem_eof_return(c->in, -1);
  BIO_set_mem_eof_return(c->out, -1);
  SSL_set_bio(c->ssl, c->in, c->out); /* the SSL owns both now */
  if (t->role == VIGIL_ROLE_SERVER) {
    SSL_set_accept_state(c->ssl);
  } else {
    SSL_set_connect_state(c->ssl);
    if ((rc = set_server_name(c, server_name)) != 0) {
      vigil_tls_conn_free(c);
      ERR_clear_error();
      return rc;
    }
  }
  *out = c;
  return 0;
}

void vigil_tls_conn_free(vigil_tls_conn *c) {
  if (c == NULL)
    return;
  SSL_free(c->ssl);
  free(c);
}

int vigil_tls_conn_feed(vigil_tls_conn *c, const void *buf, size_t len) {
  if (len == 0)
    return 0;
  if (c->first < 0)
    c->first = *(const unsigned char *)buf;
  if (len > (size_t)INT32_MAX || BIO_write(c->in, buf, (int)len) != (int)len) {
    ERR_clear_error();
    return VIGIL_ENOMEM;
  }
  return 0;
}

int vigil_tls_conn_plaintext_peer(const vigil_tls_conn *c) {
  return c->first >= 0 && (c->first < 20 || c->first > 23);
}

/* Records why TLS failed and returns VIGIL_EPROTO. */
static long fail(vigil_tls_conn *c) {
  long vr = SSL_get_verify_result(c->ssl);
  char why[160];
  if (vigil_tls_conn_plaintext_peer(c)) {
    snprintf(c->err, sizeof c->err, "the %s does not speak TLS (its first byte is 0x%02x%s)",
             c->t->role == VIGIL_ROLE_SERVER ? "client" : "server", (unsigned)c->first,
             c->first >= 1 && c->first <= 7 ? ": a plaintext vigil peer" : "");
    ERR_clear_error();
  } else if (vr != X509_V_OK) {
    snprintf(c->err, sizeof c->err, "certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
    ERR_clear_error();
  } else {
    snprintf(c->err, sizeof c->err, "TLS: %s", ossl_reason(why, sizeof why, "failed"));
  }
  return VIGIL_EPROTO;
}

static int over_pending(vigil_tls_conn *c) {
  if (BIO_ctrl_pending(c->out) <= VIGIL_TLS_MAX_PENDING)
    return 0;
  snprintf(c->err, sizeof c->err,
           "more than %lu bytes of TLS output not taken (the peer is not reading)",
           VIGIL_TLS_MAX_PENDING);
  return 1;
}

/* The outcome of an SSL call that returned r <= 0: 0 to wait for more
 * input, VIGIL_EOF, or a failure. */
static long settle(vigil_tls_conn *c, int r) {
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    ERR_clear_error();
    return over_pending(c) ? VIGIL_ENOBUFS : 0;
  case SSL_ERROR_ZERO_RETURN:
    ERR_clear_error();
    return VIGIL_EOF;
  default:
    return fail(c);
  }
}

long vigil_tls_conn_read(vigil_tls_conn *c, void *buf, size_t cap) {
  int r;
  if (!SSL_is_init_finished(c->ssl)) {
    r = SSL_do_handshake(c->ssl);
    if (r != 1)
      return settle(c, r);
  }
  if (cap > (size_t)INT32_MAX)
    cap = (size_t)INT32_MAX;
  r = SSL_read(c->ssl, buf, (int)cap);
  if (r <= 0)
    return settle(c, r);
  return over_pending(c) ? VIGIL_ENOBUFS : r;
}

int vigil_tls_conn_write(vigil_tls_conn *c, const void *buf, size_t len) {
  int r;
  if (!SSL_is_init_finished(c->ssl))
    return VIGIL_ENOTCONN;
  if (len == 0)
    return 0;
  if (len > (size_t)INT32_MAX)
    return VIGIL_EINVAL;
  r = SSL_write(c->ssl, buf, (int)len);
  if (r <= 0) {
    long rc = settle(c, r);
    return rc == 0 ? (int)fail(c) : (int)rc; /* a memory BIO never makes us wait */
  }
  return over_pending(c) ? VIGIL_ENOBUFS : 0;
}

void vigil_tls_conn_shutdown(vigil_tls_conn *c) {
  if (SSL_is_init_finished(c->ssl))
    (void)SSL_shutdown(c->ssl);
  ERR_clear_error();
}

size_t vigil_tls_conn_pending(const vigil_tls_conn *c) {
  return BIO_ctrl_pending(c->out);
}

size_t vigil_tls_conn_take(vigil_tls_conn *c, void *buf, size_t cap) {
  int n;
  if (cap > (size_t)INT32_MAX)
    cap = (size_t)INT32_MAX;
  n = BIO_read(c->out, buf, (int)cap);
  return n > 0 ? (size_t)n : 0;
}

int vigil_tls_conn_ready(const vigil_tls_conn *c) {
  return SSL_is_init_finished(c->ssl);
}

const char *vigil_tls_conn_error(const vigil_tls_conn *c) {
  return c->err;
}

const char *vigil_tls_conn_version(const vigil_tls_conn *c) {
  return SSL_is_init_finished(c->ssl) ? SSL_get_version(c->ssl) : "";
}

const char *vigil_tls_conn_cipher(const vigil_tls_conn *c) {
  const char *s = SSL_is_init_finished(c->ssl) ? SSL_get_cipher_name(c->ssl) : NULL;
  return s != NULL ? s : "";
}

long vigil_tls_conn_peer_cn(const vigil_tls_conn *c, char *buf, size_t cap) {
  X509 *x = SSL_get0_peer_certificate(c->ssl);
  X509_NAME *name;
  int n;
  char tmp[256];
  if (x == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
    return VIGIL_ENOENT;
  name = X509_get_subject_name(x);
  n = X509_NAME_get_text_by_NID(name, NID_commonName, tmp, (int)sizeof tmp);
  ERR_clear_error();
  if (n <= 0 || (size_t)n >= sizeof tmp)
    return VIGIL_ENOENT;
  if ((size_t)n >= cap)
    return VIGIL_ENOSPACE;
  memcpy(buf, tmp, (size_t)n + 1);
  return n;
}

int vigil_tls_conn_id_from_cert(const vigil_tls_conn *c) {
  return c->t->id_from_cert;
}

#else /* built without OpenSSL: every entry point says so */

int vigil_tls_available(void) {
  return 0;
}

int vigil_tls_new(vigil_tls **out, vigil_role role, const vigil_tls_config *cfg, char *err,
                  size_t errlen) {
  (void)role;
  (void)cfg;
  if (out != NULL)
    *out = NULL;
  set_err(err, errlen, "built without TLS (no OpenSSL when this vigil was built)");
  return VIGIL_ENOTSUP;
}

void vigil_tls_free(vigil_tls *t) {
  (void)t;
}

int vigil_tls_conn_new(vigil_tls_conn **out, vigil_tls *t, const char *server_name) {
  (void)t;
  (void)server_name;
  if (out != NULL)
    *out = NULL;
  return VIGIL_ENOTSUP;
}

void vigil_tls_conn_free(vigil_tls_conn *c) {
  (void)c;
}

int vigil_tls_conn_feed(vigil_tls_conn *c, const void *buf, size_t len) {
  (void)c;
  (void)buf;
  (void)len;
  return VIGIL_ENOTSUP;
}

long vigil_tls_conn_read(vigil_tls_conn *c, void *buf, size_t cap) {
  (void)c;
  (void)buf;
  (void)cap;
  return VIGIL_ENOTSUP;
}

int vigil_tls_conn_write(vigil_tls_conn *c, const void *buf, size_t len) {
  (void)c;
  (void)buf;
  (void)len;
  return VIGIL_ENOTSUP;
}

void vigil_tls_conn_shutdown(vigil_tls_conn *c) {
  (void)c;
}

size_t vigil_tls_conn_pending(const vigil_tls_conn *c) {
  (void)c;
  return 0;
}

size_t vigil_tls_conn_take(vigil_tls_conn *c, void *buf, size_t cap) {
  (void)c;
  (void)buf;
  (void)cap;
  return 0;
}

int vigil_tls_conn_ready(const vigil_tls_conn *c) {
  (void)c;
  return 0;
}

int vigil_tls_conn_plaintext_peer(const vigil_tls_conn *c) {
  (void)c;
  return 0;
}

const char *vigil_tls_conn_error(const vigil_tls_conn *c) {
  (void)c;
  return "built without TLS";
}

const char *vigil_tls_conn_version(const vigil_tls_conn *c) {
  (void)c;
  return "";
}

const char *vigil_tls_conn_cipher(const vigil_tls_conn *c) {
  (void)c;
  return "";
}

long vigil_tls_conn_peer_cn(const vigil_tls_conn *c, char *buf, size_t cap) {
  (void)c;
  (void)buf;
  (void)cap;
  return VIGIL_ENOTSUP;
}

int vigil_tls_conn_id_from_cert(const vigil_tls_conn *c) {
  (void)c;
  return 0;
}

#endif
