/* SPDX-License-Identifier: MIT */
/*
** The TLS engine: OpenSSL 3 over two byte buffers, with no I/O of its own
** (no libuv, no Lua), so it is unit tested alone (spec/c/test_tls.c) as
** buf.c is. The network's ciphertext lands in a connection's 'in' buffer,
** OpenSSL's records for the network pile up in its 'out' buffer; what moves
** them, and when, is the caller's business.
*/
#ifndef NEAP_TLS_H
#define NEAP_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct neap_tls_ctx neap_tls_ctx;   /* settings shared by connections */
typedef struct neap_tls neap_tls;           /* one connection */

/* Outcomes of the operations on a connection. */
enum {
  NEAP_TLS_ERROR = -1,  /* failed for good: neap__tls_error says why */
  NEAP_TLS_OK = 0,      /* done (handshake), or bytes given (read) */
  NEAP_TLS_WANT = 1,    /* needs more ciphertext in 'in' (send 'out' first) */
  NEAP_TLS_EOF = 2      /* read: the peer's input ended (see close_notify) */
};

/* Servers: whether clients must show a certificate. */
enum {
  NEAP_TLS_PEER_NONE = 0,      /* never asked for */
  NEAP_TLS_PEER_OPTIONAL = 1,  /* asked for; checked against 'ca' if shown */
  NEAP_TLS_PEER_REQUIRE = 2    /* asked for; none is a failed handshake */
};

typedef struct neap_tls_sni {   /* a server's certificate for one name */
  const char *name;             /* "example.com" or "*.example.com" */
  const char *cert;             /* PEM file: the certificate and its chain */
  const char *key;              /* PEM file; NULL: in 'cert' */
} neap_tls_sni;

/* The options of a context (the Lua options of the issue, in C). */
typedef struct neap_tls_opts {
  int server;                   /* 0: client, 1: server */
  const char *cert;             /* PEM file (a server's is required) */
  const char *key;              /* PEM file; NULL: in 'cert' */
  const char *ca;               /* PEM file or directory; NULL: system store */
  int verify;                   /* client: check the chain and the name (1) */
  int verify_peer;              /* server: NEAP_TLS_PEER_* */
  const char *const *alpn;      /* protocols: offered, or in preference order */
  int nalpn;
  int min_version;              /* 12 (TLS 1.2, the default) or 13 */
  const neap_tls_sni *sni;      /* server: certificates by server name */
  int nsni;
} neap_tls_opts;

/* The peer's certificate, as plain C values (neap__tls_peer_free). */
typedef struct neap_tls_peer {
  char *subject;                /* one-line RFC 2253 */
  char *issuer;
  int64_t not_before;           /* seconds since the epoch */
  int64_t not_after;
  char fingerprint[65];         /* SHA-256, lower-case hex */
  char **altnames;              /* DNS names and IP addresses */
  int naltnames;
} neap_tls_peer;

/* ---- contexts ---- */

void neap__tls_opts_init (neap_tls_opts *o);
neap_tls_ctx *neap__tls_ctx_new (const neap_tls_opts *o, char *err,
                                 size_t errsz);
void neap__tls_ctx_ref (neap_tls_ctx *c);
void neap__tls_ctx_unref (neap_tls_ctx *c);
struct ssl_ctx_st *neap__tls_ctx_ssl (neap_tls_ctx *c);   /* SSL_CTX */

/* ---- connections ---- */

neap_tls *neap__tls_new (neap_tls_ctx *c, const char *servername,
                         const void *session, size_t sessionlen, char *err,
                         size_t errsz);
void neap__tls_free (neap_tls *t);
neap_buf *neap__tls_in (neap_tls *t);
neap_buf *neap__tls_out (neap_tls *t);
void neap__tls_input_end (neap_tls *t);

int neap__tls_handshake (neap_tls *t);
int neap__tls_read (neap_tls *t, char *dst, size_t cap, size_t *nread);
int neap__tls_read_buf (neap_tls *t, neap_buf *plain, size_t max,
                        size_t *nread);
int neap__tls_write (neap_tls *t, const void *p, size_t n);
int neap__tls_shutdown (neap_tls *t);

/* ---- state and information ---- */

const char *neap__tls_error (const neap_tls *t);
int neap__tls_done (const neap_tls *t);
size_t neap__tls_pending (const neap_tls *t);
int neap__tls_close_notified (const neap_tls *t);
const char *neap__tls_version (const neap_tls *t);
const char *neap__tls_cipher (const neap_tls *t);
const char *neap__tls_alpn (const neap_tls *t, size_t *len);
const char *neap__tls_servername (const neap_tls *t);
int neap__tls_resumed (const neap_tls *t);
unsigned char *neap__tls_session (const neap_tls *t, size_t *len);
int neap__tls_peer (const neap_tls *t, neap_tls_peer *p);
void neap__tls_peer_free (neap_tls_peer *p);

#endif
