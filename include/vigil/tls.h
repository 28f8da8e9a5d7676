#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

/* TLS for vigil connections (OpenSSL 3), as a sans-I/O layer: a
 * vigil_tls_conn never touches a socket or a clock. The runtime (or your
 * own loop) feeds it the ciphertext that arrived and gets plaintext for
 * the session; it hands it the session's plaintext and gets ciphertext to
 * write. Between the two sides sit two OpenSSL memory BIOs, so the
 * completion model of the loop (reads and writes of raw bytes that finish
 * later) is unchanged: TLS is a transform of the byte stream, nothing
 * more. The heartbeat runs inside TLS; kernel keepalive, TCP_USER_TIMEOUT
 * and TCP_INFO evidence work on the socket underneath as without it.
 *
 * Policy: TLS 1.2 and 1.3 only; a client verifies the server's certificate
 * chain and its name (DNS name, or IP address when the name is numeric)
 * unless told not to; a server with a client CA requires a client
 * certificate (mutual TLS) and can take the peer id from its subject CN.
 *
 * Where the library was built without OpenSSL (the mingw build), every
 * function returns VIGIL_ENOTSUP and vigil_tls_available() is 0
 * (docs/TLS.md, docs/WINDOWS.md). */

#include <stddef.h>
#include <stdint.h>

#include "errno.h"
#include "session.h"
#include "version.h"

/* A TLS context: certificates, trust, policy. Shared by any number of
 * connections of one server or client; it must outlive them. */
typedef struct vigil_tls vigil_tls;

typedef struct vigil_tls_config {
  size_t size; /* set by vigil_tls_config_init: the struct's size as compiled (docs/ABI.md) */
  /* PEM certificate chain and its private key: required for a server,
   * optional for a client (its certificate for mutual TLS). */
  const char *cert_file;
  const char *key_file;
  /* PEM trust anchors. Client: the CAs that may sign the server's
   * certificate (NULL: the system's default store). Server: the CAs that
   * sign client certificates; setting it requires one of every client
   * (mutual TLS). */
  const char *ca_file;
  /* Client: 1 skips verification of the server's certificate (tests and
   * first steps only: anyone on the path can then read and change the
   * traffic). */
  int no_verify;
  /* Server (with ca_file): the peer id is the client certificate's subject
   * CN, whatever its HELLO says; a certificate without one is refused. */
  int id_from_cert;
} vigil_tls_config;

/* Defaults (everything off / NULL) and cfg->size. */
VIGIL_EXTERN void vigil_tls_config_init_sized(vigil_tls_config *cfg, size_t size);
#define vigil_tls_config_init(cfg) vigil_tls_config_init_sized((cfg), sizeof *(cfg))

/* 1 when the library was built with TLS (OpenSSL), 0 otherwise. */
VIGIL_EXTERN int vigil_tls_available(void);

/* Creates a context for `role` from cfg, loading its files. On failure
 * err (may be NULL) receives one line saying what could not be loaded and
 * why ("cannot load the certificate x.pem: no such file"). Returns 0 or
 * VIGIL_EINVAL (bad config: a server without certificate, a key that does
 * not match), VIGIL_ENOENT (a file could not be read or parsed),
 * VIGIL_ENOMEM, VIGIL_ENOTSUP (built without TLS; err says so). */
VIGIL_EXTERN int vigil_tls_new(vigil_tls **out, vigil_role role, const vigil_tls_config *cfg,
                               char *err, size_t errlen);
VIGIL_EXTERN void vigil_tls_free(vigil_tls *t);

/* ---- one connection -------------------------------------------------- */

typedef struct vigil_tls_conn vigil_tls_conn;

/* Ciphertext the layer may hold for the application to write; past it
 * vigil_tls_conn_read and _write fail with VIGIL_ENOBUFS. Output the peer
 * provokes while it reads nothing (a KeyUpdate asking for ours, over and
 * over) must not grow without bound. The runtime takes what it produced
 * after each write, so it holds at most one write's ciphertext (about
 * 66 KiB) plus what the peer provokes while a write is pending. */
#define VIGIL_TLS_MAX_PENDING (256ul * 1024ul)

/* A connection of context t. server_name (client only; may be NULL): the
 * name to verify and to send as SNI; a numeric address is verified
 * against the certificate's IP addresses and not sent. Returns 0,
 * VIGIL_ENOMEM, VIGIL_EINVAL, VIGIL_ENOTSUP. */
VIGIL_EXTERN int vigil_tls_conn_new(vigil_tls_conn **out, vigil_tls *t, const char *server_name);
VIGIL_EXTERN void vigil_tls_conn_free(vigil_tls_conn *c);

/* Ciphertext that arrived (copied). Returns 0 or VIGIL_ENOMEM. */
VIGIL_EXTERN int vigil_tls_conn_feed(vigil_tls_conn *c, const void *buf, size_t len);

/* Advances the handshake (a client's first call, with nothing fed, writes
 * its ClientHello) and decrypts up to cap bytes of plaintext into buf.
 * Returns the plaintext bytes (> 0); 0 when more ciphertext is needed
 * (there may be ciphertext to write: vigil_tls_conn_pending); VIGIL_EOF
 * when the peer closed TLS (close_notify); VIGIL_ENOBUFS past
 * VIGIL_TLS_MAX_PENDING; VIGIL_EPROTO when TLS failed (a bad certificate,
 * a peer that does not speak TLS, a corrupt record, an alert):
 * vigil_tls_conn_error says what. */
VIGIL_EXTERN long vigil_tls_conn_read(vigil_tls_conn *c, void *buf, size_t cap);

/* Encrypts len bytes of plaintext, all of them (only once
 * vigil_tls_conn_ready). Returns 0, VIGIL_ENOTCONN (handshake not done),
 * VIGIL_ENOBUFS (past VIGIL_TLS_MAX_PENDING), VIGIL_EPROTO. */
VIGIL_EXTERN int vigil_tls_conn_write(vigil_tls_conn *c, const void *buf, size_t len);

/* Queues TLS's own end (close_notify), best effort. */
VIGIL_EXTERN void vigil_tls_conn_shutdown(vigil_tls_conn *c);

/* Ciphertext waiting to be written, and taking up to cap bytes of it. */
VIGIL_EXTERN size_t vigil_tls_conn_pending(const vigil_tls_conn *c);
VIGIL_EXTERN size_t vigil_tls_conn_take(vigil_tls_conn *c, void *buf, size_t cap);

/* 1 once the handshake is complete. */
VIGIL_EXTERN int vigil_tls_conn_ready(const vigil_tls_conn *c);

/* 1 when the peer's first bytes were not a TLS record: it speaks plaintext
 * (a server may answer it in plaintext that it requires TLS). */
VIGIL_EXTERN int vigil_tls_conn_plaintext_peer(const vigil_tls_conn *c);

/* The last failure, as one line of text ("" when none). Lives as long as c. */
VIGIL_EXTERN const char *vigil_tls_conn_error(const vigil_tls_conn *c);

/* The negotiated protocol ("TLSv1.3") and cipher, "" before the handshake. */
VIGIL_EXTERN const char *vigil_tls_conn_version(const vigil_tls_conn *c);
VIGIL_EXTERN const char *vigil_tls_conn_cipher(const vigil_tls_conn *c);

/* The subject CN of the peer's verified certificate into buf (NUL
 * terminated). Returns its length, or VIGIL_ENOENT (no verified
 * certificate, or no CN), VIGIL_ENOSPACE (cap too small). */
VIGIL_EXTERN long vigil_tls_conn_peer_cn(const vigil_tls_conn *c, char *buf, size_t cap);

/* 1 when the context of c takes the peer id from the certificate. */
VIGIL_EXTERN int vigil_tls_conn_id_from_cert(const vigil_tls_conn *c);

#endif
