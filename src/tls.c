/* SPDX-License-Identifier: MIT */
/*
** The TLS engine. A connection's SSL talks through a BIO of our own over two
** neap_buf: OpenSSL reads the network's ciphertext straight from where the
** network put it and appends its records where the network takes them, so
** no byte is copied into a memory BIO on the way (Node's NodeBIO idea).
** Every failure becomes a sentence in plain words, and OpenSSL's per-thread
** error queue is left empty after each call.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

typedef struct tls_sni {
  char *name;
  SSL_CTX *ctx;
} tls_sni;

struct neap_tls_ctx {
  SSL_CTX *ctx;
  int refs;
  int server;
  BIO_METHOD *bio;              /* the BIO of our connections */
  unsigned char *alpn;          /* server: its protocols, in wire format */
  size_t alpnlen;
  tls_sni *sni;
  int nsni;
};

struct neap_tls {
  SSL *ssl;
  neap_tls_ctx *ctx;
  neap_buf in;                  /* ciphertext from the network */
  neap_buf out;                 /* ciphertext for the network */
  int input_end;                /* no more ciphertext will come */
  int done;                     /* the handshake is done */
  int state;                    /* NEAP_TLS_ERROR or _EOF once reached */
  char *servername;             /* client: the name asked for */
  char err[256];
};

#define TLS_SID_CTX "neap"


/*
** {======================================================
** Errors in plain words
** =======================================================
*/

/* Copies 's' into 'out' with its first letter in lower case. */
static void tls_lower (char *out, size_t sz, const char *s) {
  snprintf(out, sz, "%s", s);
  if (out[0] != '\0') out[0] = (char)tolower((unsigned char)out[0]);
}

/*
** The reason of error 'e' in words: OpenSSL's own, the system's for a
** failed system call, without the "tlsv1 alert " of an alert from the peer.
*/
static void tls_reason (unsigned long e, char *out, size_t sz) {
  static const char *const alerts[] = {"sslv3 alert ", "tlsv1 alert ",
                                       "tlsv13 alert "};
  const char *r;
  size_t i;
  if (ERR_SYSTEM_ERROR(e)) {
    tls_lower(out, sz, strerror(ERR_GET_REASON(e)));
    return;
  }
  r = ERR_reason_error_string(e);
  if (r == NULL) {
    snprintf(out, sz, "error %d", ERR_GET_REASON(e));
    return;
  }
  for (i = 0; i < sizeof alerts / sizeof alerts[0]; i++) {
    size_t n = strlen(alerts[i]);
    if (strncmp(r, alerts[i], n) == 0) r += n;
  }
  tls_lower(out, sz, r);
}

/*
** Writes "what: reason" into 'out' from the first error of the queue (the
** cause; later ones say what gave up because of it) and empties the queue.
*/
static void tls_queue_error (char *out, size_t sz, const char *what) {
  char r[200];
  unsigned long e = ERR_get_error();
  if (e == 0) snprintf(r, sizeof r, "unknown error");
  else tls_reason(e, r, sizeof r);
  snprintf(out, sz, "%s: %s", what, r);
  ERR_clear_error();
}

/*
** Records why an operation ('what': "handshake failed"...) failed; a
** certificate that did not verify says which check it failed.
*/
static int tls_fail (neap_tls *t, const char *what, int sslerr) {
  unsigned long first = ERR_get_error(), e = first;
  long v = SSL_get_verify_result(t->ssl);
  int verify = 0;
  char r[200];
  while (e != 0) {
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
      verify = 1;
    e = ERR_get_error();
  }
  if (verify && v != X509_V_OK)
    snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  else {
    if (first != 0) tls_reason(first, r, sizeof r);
    else if (sslerr == SSL_ERROR_SYSCALL) snprintf(r, sizeof r, "unexpected eof");
    else snprintf(r, sizeof r, "unknown error");
    snprintf(t->err, sizeof t->err, "%s: %s", what, r);
  }
  ERR_clear_error();
  t->state = NEAP_TLS_ERROR;
  return NEAP_TLS_ERROR;
}

/* }====================================================== */


/*
** {======================================================
** The BIO over two neap_buf
** =======================================================
*/

static int bio_write (BIO *b, const char *p, size_t n, size_t *written) {
  neap_tls *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (neap__buf_append(&t->out, p, n) != 0) return 0;   /* out of memory */
  *written = n;
  return 1;
}

static int bio_read (BIO *b, char *p, size_t n, size_t *nread) {
  neap_tls *t = BIO_get_data(b);
  size_t len = neap__buf_len(&t->in);
  BIO_clear_retry_flags(b);
  if (len == 0) {
    if (!t->input_end) BIO_set_retry_read(b);   /* not yet: wait for more */
    return 0;
  }
  if (n > len) n = len;
  memcpy(p, neap__buf_data(&t->in), n);
  neap__buf_consume(&t->in, n);
  *nread = n;
  return 1;
}

static long bio_ctrl (BIO *b, int cmd, long num, void *ptr) {
  neap_tls *t = BIO_get_data(b);
  (void)num; (void)ptr;
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return t->input_end && neap__buf_len(&t->in) == 0;
    case BIO_CTRL_PENDING: return (long)neap__buf_len(&t->in);
    case BIO_CTRL_WPENDING: return (long)neap__buf_len(&t->out);
    default: return 0;
  }
}

static int bio_create (BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method (void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "neap");
  if (m == NULL) return NULL;
  if (!BIO_meth_set_write_ex(m, bio_write) ||
      !BIO_meth_set_read_ex(m, bio_read) ||
      !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
    BIO_meth_free(m);
    return NULL;
  }
  return m;
}

/* }====================================================== */


/*
** {======================================================
** Contexts
** =======================================================
*/

void neap__tls_opts_init (neap_tls_opts *o) {
  memset(o, 0, sizeof *o);
  o->verify = 1;
  o->min_version = 12;
}

/* Loads a certificate chain and its key into 'ctx'; 0, or -1 and 'err'. */
static int ctx_use_cert (SSL_CTX *ctx, const char *cert, const char *key,
                         char *err, size_t errsz) {
  char what[300];
  if (key == NULL) key = cert;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    snprintf(what, sizeof what, "cannot load certificate %s", cert);
    tls_queue_error(err, errsz, what);
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) != ERR_LIB_X509 ||
        (ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH &&
         ERR_GET_REASON(e) != X509_R_KEY_TYPE_MISMATCH)) {
      snprintf(what, sizeof what, "cannot load key %s", key);
      tls_queue_error(err, errsz, what);
      return -1;
    }
  }
  else if (SSL_CTX_check_private_key(ctx) == 1)
    return 0;
  snprintf(err, errsz, "key %s does not match certificate %s", key, cert);
  ERR_clear_error();
  return -1;
}

/* Trusts the certificates of 'ca' (a file or a directory; NULL: system's). */
static int ctx_use_ca (SSL_CTX *ctx, const char *ca, int server, char *err,
                       size_t errsz) {
  struct stat st;
  char what[300];
  int ok;
  if (ca == NULL) ok = SSL_CTX_set_default_verify_paths(ctx);
  else if (stat(ca, &st) == 0 && S_ISDIR(st.st_mode))
    ok = SSL_CTX_load_verify_dir(ctx, ca);
  else {
    ok = SSL_CTX_load_verify_file(ctx, ca);
    if (ok && server) {   /* tell clients which issuers the server takes */
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
      if (names != NULL) SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  if (ok != 1) {
    snprintf(what, sizeof what, "cannot load ca %s", ca ? ca : "(system)");
    tls_queue_error(err, errsz, what);
    return -1;
  }
  return 0;
}

/* The protocols of 'o' in ALPN's wire format (length-prefixed names). */
static int ctx_alpn_wire (const neap_tls_opts *o, unsigned char **wire,
                          size_t *len, char *err, size_t errsz) {
  size_t n = 0, i;
  unsigned char *w;
  for (i = 0; i < (size_t)o->nalpn; i++) {
    size_t l = strlen(o->alpn[i]);
    if (l == 0 || l > 255) {
      snprintf(err, errsz, "alpn: protocol names are 1 to 255 bytes");
      return -1;
    }
    n += 1 + l;
  }
  w = malloc(n);
  if (w == NULL) {
    snprintf(err, errsz, "out of memory");
    return -1;
  }
  *wire = w;
  *len = n;
  for (i = 0; i < (size_t)o->nalpn; i++) {
    size_t l = strlen(o->alpn[i]);
    *w++ = (unsigned char)l;
    memcpy(w, o->alpn[i], l);
    w += l;
  }
  return 0;
}

/*
** Server: the first of its protocols that the client offers; no overlap
** ends the handshake ("no application protocol").
*/
static int ctx_alpn_select (SSL *ssl, const unsigned char **out,
                            unsigned char *outlen, const unsigned char *in,
                            unsigned int inlen, void *arg) {
  neap_tls_ctx *c = arg;
  size_t i = 0;
  (void)ssl;
  while (i < c->alpnlen) {
    size_t l = c->alpn[i], j = 0;
    while (j < inlen) {
      size_t cl = in[j];
      if (j + 1 + cl > inlen) break;   /* malformed: ignore the rest */
      if (cl == l && memcmp(in + j + 1, c->alpn + i + 1, l) == 0) {
        *out = in + j + 1;
        *outlen = (unsigned char)l;
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + cl;
    }
    i += 1 + l;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Whether SNI pattern 'pat' names 'host' ("*." covers one label). */
static int ctx_sni_match (const char *pat, const char *host) {
  if (pat[0] == '*' && pat[1] == '.') {
    const char *dot = strchr(host, '.');
    return dot != NULL && dot != host && strcasecmp(dot, pat + 1) == 0;
  }
  return strcasecmp(pat, host) == 0;
}

/* Server: switches to the certificate named by the client's SNI, if any. */
static int ctx_servername (SSL *ssl, int *alert, void *arg) {
  neap_tls_ctx *c = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  int i;
  (void)alert;
  if (name == NULL) return SSL_TLSEXT_ERR_NOACK;
  for (i = 0; i < c->nsni; i++) {
    if (ctx_sni_match(c->sni[i].name, name)) {
      SSL_set_SSL_CTX(ssl, c->sni[i].ctx);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_OK;   /* the default certificate */
}

/* A new SSL_CTX with the settings every one of ours has. */
static SSL_CTX *ctx_base (int server, int min_version) {
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL) return NULL;
  SSL_CTX_set_min_proto_version(ctx, min_version == 13 ? TLS1_3_VERSION
                                                       : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server)
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
                                   sizeof TLS_SID_CTX - 1);
  return ctx;
}

static void ctx_free (neap_tls_ctx *c) {
  int i;
  for (i = 0; i < c->nsni; i++) {
    free(c->sni[i].name);
    SSL_CTX_free(c->sni[i].ctx);
  }
  free(c->sni);
  free(c->alpn);
  SSL_CTX_free(c->ctx);
  BIO_meth_free(c->bio);
  free(c);
}

/* The SNI certificates of a server: one SSL_CTX each. */
static int ctx_sni (neap_tls_ctx *c, const neap_tls_opts *o, char *err,
                    size_t errsz) {
  int i;
  c->sni = calloc((size_t)o->nsni, sizeof *c->sni);
  if (c->sni == NULL) goto oom;
  for (i = 0; i < o->nsni; i++) {
    tls_sni *s = &c->sni[c->nsni];
    if (o->sni[i].name == NULL || o->sni[i].cert == NULL) {
      snprintf(err, errsz, "sni: each name needs a certificate");
      return -1;
    }
    s->name = strdup(o->sni[i].name);
    s->ctx = ctx_base(1, o->min_version);
    if (s->name == NULL || s->ctx == NULL) {
      free(s->name);
      SSL_CTX_free(s->ctx);
      goto oom;
    }
    c->nsni++;
    if (ctx_use_cert(s->ctx, o->sni[i].cert, o->sni[i].key, err, errsz) != 0)
      return -1;
  }
  return 0;
oom:
  snprintf(err, errsz, "out of memory");
  return -1;
}

/*
** A context from options 'o', with one reference; NULL with the reason in
** 'err' ("cannot load certificate /x.pem: no such file or directory").
*/
neap_tls_ctx *neap__tls_ctx_new (const neap_tls_opts *o, char *err,
                                 size_t errsz) {
  neap_tls_ctx *c;
  ERR_clear_error();
  if (o->min_version != 0 && o->min_version != 12 && o->min_version != 13) {
    snprintf(err, errsz, "min_version must be 1.2 or 1.3");
    return NULL;
  }
  if (o->server && o->cert == NULL) {
    snprintf(err, errsz, "a server needs a certificate (cert)");
    return NULL;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL) goto oom;
  c->refs = 1;
  c->server = o->server;
  c->bio = bio_method();
  c->ctx = ctx_base(o->server, o->min_version);
  if (c->bio == NULL || c->ctx == NULL) goto oom;
  if (o->cert != NULL && ctx_use_cert(c->ctx, o->cert, o->key, err, errsz) != 0)
    goto fail;
  if (o->server) {
    if (o->verify_peer != NEAP_TLS_PEER_NONE) {
      if (ctx_use_ca(c->ctx, o->ca, 1, err, errsz) != 0) goto fail;
      SSL_CTX_set_verify(c->ctx, o->verify_peer == NEAP_TLS_PEER_REQUIRE
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER, NULL);
    }
    if (o->nalpn > 0) {
      if (ctx_alpn_wire(o, &c->alpn, &c->alpnlen, err, errsz) != 0) goto fail;
      SSL_CTX_set_alpn_select_cb(c->ctx, ctx_alpn_select, c);
    }
    if (o->nsni > 0) {
      if (ctx_sni(c, o, err, errsz) != 0) goto fail;
      SSL_CTX_set_tlsext_servername_callback(c->ctx, ctx_servername);
      SSL_CTX_set_tlsext_servername_arg(c->ctx, c);
    }
  }
  else {
    if (o->verify) {
      if (ctx_use_ca(c->ctx, o->ca, 0, err, errsz) != 0) goto fail;
      SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (o->nalpn > 0) {
      unsigned char *wire;
      size_t len;
      int bad;
      if (ctx_alpn_wire(o, &wire, &len, err, errsz) != 0) goto fail;
      bad = SSL_CTX_set_alpn_protos(c->ctx, wire, (unsigned int)len);
      free(wire);
      if (bad) goto oom;   /* (0 is success here) */
    }
  }
  ERR_clear_error();
  return c;
oom:
  snprintf(err, errsz, "out of memory");
fail:
  ERR_clear_error();
  if (c != NULL) ctx_free(c);
  return NULL;
}

void neap__tls_ctx_ref (neap_tls_ctx *c) {
  __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void neap__tls_ctx_unref (neap_tls_ctx *c) {
  if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
    ctx_free(c);
}

/* The SSL_CTX underneath, for settings the options do not have (tests). */
SSL_CTX *neap__tls_ctx_ssl (neap_tls_ctx *c) {
  return c->ctx;
}

/* }====================================================== */


/*
** {======================================================
** Connections
** =======================================================
*/

static int is_ip (const char *s) {
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* Client: SNI and the name the certificate must carry (an address for IP). */
static int tls_set_name (neap_tls *t, const char *name) {
  int verify = SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE;
  t->servername = strdup(name);
  if (t->servername == NULL) return 0;
  if (is_ip(name))   /* no SNI for an address (RFC 6066) */
    return !verify || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
                                                     name);
  if (!SSL_set_tlsext_host_name(t->ssl, name)) return 0;
  if (verify) {
    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(t->ssl, name);
  }
  return 1;
}

/*
** A connection of context 'c' (which it references), before its handshake.
** Client: 'servername' (or NULL) is sent as SNI and checked against the
** certificate; 'session' (or NULL) is a session of neap__tls_session to
** resume (one that does not parse is ignored: a full handshake). NULL with
** the reason in 'err'.
*/
neap_tls *neap__tls_new (neap_tls_ctx *c, const char *servername,
                         const void *session, size_t sessionlen, char *err,
                         size_t errsz) {
  neap_tls *t = calloc(1, sizeof *t);
  BIO *bio;
  ERR_clear_error();
  if (t == NULL) goto oom;
  neap__buf_init(&t->in);
  neap__buf_init(&t->out);
  t->ssl = SSL_new(c->ctx);
  if (t->ssl == NULL) goto oom;
  t->ctx = c;
  neap__tls_ctx_ref(c);
  bio = BIO_new(c->bio);
  if (bio == NULL) goto oom;
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);   /* (one reference, owned by the SSL) */
  if (c->server) SSL_set_accept_state(t->ssl);
  else {
    SSL_set_connect_state(t->ssl);
    if (servername != NULL && !tls_set_name(t, servername)) {
      snprintf(err, errsz, "bad server name %s", servername);
      goto fail;
    }
    if (session != NULL && sessionlen > 0) {
      const unsigned char *p = session;
      SSL_SESSION *s = d2i_SSL_SESSION(NULL, &p, (long)sessionlen);
      if (s != NULL) {
        SSL_set_session(t->ssl, s);
        SSL_SESSION_free(s);
      }
    }
  }
  ERR_clear_error();
  return t;
oom:
  snprintf(err, errsz, "out of memory");
fail:
  ERR_clear_error();
  neap__tls_free(t);
  return NULL;
}

/* Frees 't' in any state (no alert is sent: see neap__tls_shutdown). */
void neap__tls_free (neap_tls *t) {
  if (t == NULL) return;
  SSL_free(t->ssl);
  neap__tls_ctx_unref(t->ctx);
  neap__buf_free(&t->in);
  neap__buf_free(&t->out);
  free(t->servername);
  free(t);
  ERR_clear_error();
}

/*
** The network's ciphertext goes at the tail of this buffer (reserve, receive
** into it, commit); the engine consumes it.
*/
neap_buf *neap__tls_in (neap_tls *t) {
  return &t->in;
}

/*
** Records for the network, to send and consume. The caller may also take
** the whole buffer (copy the struct, then neap__buf_init the original), so
** that a write in flight keeps its bytes while new records pile up.
*/
neap_buf *neap__tls_out (neap_tls *t) {
  return &t->out;
}

/* The network's input has ended: what 'in' holds is the last of it. */
void neap__tls_input_end (neap_tls *t) {
  t->input_end = 1;
}

/*
** Advances the handshake with what 'in' holds. NEAP_TLS_OK once done,
** NEAP_TLS_WANT for more input, NEAP_TLS_ERROR. After any outcome 'out' may
** hold records to send (a failure's alert too).
*/
int neap__tls_handshake (neap_tls *t) {
  int r;
  if (t->state == NEAP_TLS_ERROR) return NEAP_TLS_ERROR;
  if (t->done) return NEAP_TLS_OK;
  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->done = 1;
    ERR_clear_error();
    return NEAP_TLS_OK;
  }
  r = SSL_get_error(t->ssl, r);
  if (r == SSL_ERROR_WANT_READ && !t->input_end) {
    ERR_clear_error();
    return NEAP_TLS_WANT;
  }
  if (r == SSL_ERROR_WANT_READ || (r == SSL_ERROR_SYSCALL &&
                                   ERR_peek_error() == 0)) {
    ERR_clear_error();
    snprintf(t->err, sizeof t->err, "handshake failed: unexpected eof");
    t->state = NEAP_TLS_ERROR;
    return NEAP_TLS_ERROR;
  }
  return tls_fail(t, "handshake failed", r);
}

/*
** Decrypts up to 'cap' bytes into 'dst'. NEAP_TLS_OK with '*nread' > 0;
** NEAP_TLS_WANT for more input; NEAP_TLS_EOF when the peer's data ended,
** by close_notify or by the end of the input at a record boundary (ask
** neap__tls_close_notified which); NEAP_TLS_ERROR (a record cut short
** by the end of the input is one: "truncated record").
*/
int neap__tls_read (neap_tls *t, char *dst, size_t cap, size_t *nread) {
  int r, partial;
  *nread = 0;
  if (t->state != NEAP_TLS_OK) return t->state;
  if (!t->done) {
    snprintf(t->err, sizeof t->err, "read failed: handshake not done");
    return NEAP_TLS_ERROR;
  }
  ERR_clear_error();
  partial = SSL_has_pending(t->ssl) || neap__buf_len(&t->in) > 0;
  if (SSL_read_ex(t->ssl, dst, cap, nread) == 1) {
    ERR_clear_error();
    return NEAP_TLS_OK;
  }
  r = SSL_get_error(t->ssl, 0);
  if (r == SSL_ERROR_WANT_READ && !t->input_end) {
    ERR_clear_error();
    return NEAP_TLS_WANT;
  }
  if (r == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return t->state = NEAP_TLS_EOF;
  }
  if (r == SSL_ERROR_WANT_READ ||
      (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING
       && ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL) ||
      (r == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
    ERR_clear_error();
    if (!partial) return t->state = NEAP_TLS_EOF;
    snprintf(t->err, sizeof t->err, "truncated record");
    return t->state = NEAP_TLS_ERROR;
  }
  return tls_fail(t, "read failed", r);
}

/*
** Decrypts into the tail of 'plain' (up to 'max' bytes, at least one when
** NEAP_TLS_OK), so the plaintext lands where framing reads it. An EOF or an
** error met after some bytes is returned by the next call.
*/
int neap__tls_read_buf (neap_tls *t, neap_buf *plain, size_t max,
                        size_t *nread) {
  size_t total = 0;
  int r = NEAP_TLS_OK;
  while (total < max) {
    size_t avail, n, want = max - total < 16384 ? max - total : 16384;
    char *dst = neap__buf_reserve(plain, want, &avail);
    if (dst == NULL) {
      if (total > 0) break;
      snprintf(t->err, sizeof t->err, "read failed: out of memory");
      *nread = 0;
      return NEAP_TLS_ERROR;   /* not sticky: the engine is fine */
    }
    if (avail > max - total) avail = max - total;
    r = neap__tls_read(t, dst, avail, &n);
    if (r != NEAP_TLS_OK) break;
    neap__buf_commit(plain, n);
    total += n;
  }
  *nread = total;
  return total > 0 ? NEAP_TLS_OK : r;
}

/*
** Encrypts 'p[0..n)' into records appended to 'out'. NEAP_TLS_OK when all
** of it is there, else NEAP_TLS_ERROR.
*/
int neap__tls_write (neap_tls *t, const void *p, size_t n) {
  const char *s = p;
  if (t->state == NEAP_TLS_ERROR) return NEAP_TLS_ERROR;
  if (!t->done) {
    snprintf(t->err, sizeof t->err, "write failed: handshake not done");
    return NEAP_TLS_ERROR;
  }
  ERR_clear_error();
  while (n > 0) {   /* (a partial write is one record, or a full 'out') */
    size_t w;
    if (SSL_write_ex(t->ssl, s, n, &w) != 1)
      return tls_fail(t, "write failed", SSL_get_error(t->ssl, 0));
    s += w;
    n -= w;
  }
  ERR_clear_error();
  return NEAP_TLS_OK;
}

/*
** Appends a close_notify to 'out' (once; nothing before the handshake is
** done or after a failure). NEAP_TLS_OK or NEAP_TLS_ERROR.
*/
int neap__tls_shutdown (neap_tls *t) {
  int r;
  if (!t->done || t->state == NEAP_TLS_ERROR ||
      (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
    return t->state == NEAP_TLS_ERROR ? NEAP_TLS_ERROR : NEAP_TLS_OK;
  ERR_clear_error();
  r = SSL_shutdown(t->ssl);   /* 0: sent, the peer's not yet received */
  if (r < 0) return tls_fail(t, "shutdown failed", SSL_get_error(t->ssl, r));
  ERR_clear_error();
  return NEAP_TLS_OK;
}

/* }====================================================== */


/*
** {======================================================
** State and information
** =======================================================
*/

/* Why the last operation failed, in plain words. */
const char *neap__tls_error (const neap_tls *t) {
  return t->err[0] ? t->err : "no error";
}

int neap__tls_done (const neap_tls *t) {
  return t->done;
}

/* Bytes of ciphertext waiting in 'out' for the network. */
size_t neap__tls_pending (const neap_tls *t) {
  return neap__buf_len(&t->out);
}

/* Whether the peer's close_notify has arrived. */
int neap__tls_close_notified (const neap_tls *t) {
  return (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

/* "TLSv1.3"... */
const char *neap__tls_version (const neap_tls *t) {
  return SSL_get_version(t->ssl);
}

/* The cipher suite's name ("(NONE)" before the handshake). */
const char *neap__tls_cipher (const neap_tls *t) {
  return SSL_get_cipher_name(t->ssl);
}

/* The protocol ALPN chose ('*len' bytes, not terminated), or NULL. */
const char *neap__tls_alpn (const neap_tls *t, size_t *len) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  *len = n;
  return n > 0 ? (const char *)p : NULL;
}

/* Server: the name the client asked for; client: the name given. */
const char *neap__tls_servername (const neap_tls *t) {
  if (t->ctx->server)
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
  return t->servername;
}

int neap__tls_resumed (const neap_tls *t) {
  return SSL_session_reused(t->ssl);
}

/*
** Client: the session as bytes to give neap__tls_new later (malloc'd, the
** caller frees); NULL when there is none to resume yet (TLS 1.3 tickets
** come after the handshake, with the first reads).
*/
unsigned char *neap__tls_session (const neap_tls *t, size_t *len) {
  SSL_SESSION *s;
  unsigned char *buf = NULL, *p;
  int n;
  *len = 0;
  if (t->ctx->server) return NULL;
  s = SSL_get1_session(t->ssl);
  if (s == NULL) return NULL;
  if (SSL_SESSION_is_resumable(s) && (n = i2d_SSL_SESSION(s, NULL)) > 0 &&
      (buf = malloc((size_t)n)) != NULL) {
    p = buf;
    i2d_SSL_SESSION(s, &p);
    *len = (size_t)n;
  }
  SSL_SESSION_free(s);
  ERR_clear_error();
  return buf;
}

/* 'name' as one RFC 2253 line (UTF-8 kept as it is), malloc'd. */
static char *peer_name (const X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p, *s = NULL;
  long n;
  if (b == NULL) return NULL;
  if (X509_NAME_print_ex(b, name, 0,
                         XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
    n = BIO_get_mem_data(b, &p);
    s = malloc((size_t)n + 1);
    if (s != NULL) {
      memcpy(s, p, (size_t)n);
      s[n] = '\0';
    }
  }
  BIO_free(b);
  return s;
}

static int64_t peer_time (const ASN1_TIME *a) {
  struct tm tm;
  if (a == NULL || !ASN1_TIME_to_tm(a, &tm)) return 0;
  return (int64_t)timegm(&tm);
}

/* The DNS names and IP addresses of the subjectAltName of 'x'. */
static int peer_altnames (X509 *x, neap_tls_peer *p) {
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  int i, n, ok = 1;
  if (gens == NULL) return 1;
  n = sk_GENERAL_NAME_num(gens);
  p->altnames = calloc((size_t)n + 1, sizeof *p->altnames);
  if (p->altnames == NULL) ok = 0;
  for (i = 0; ok && i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    char buf[INET6_ADDRSTRLEN], *s = NULL;
    if (g->type == GEN_DNS) {
      const ASN1_IA5STRING *d = g->d.dNSName;
      s = strndup((const char *)ASN1_STRING_get0_data(d),
                  (size_t)ASN1_STRING_length(d));
    }
    else if (g->type == GEN_IPADD) {
      int len = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
      if ((len == 4 && inet_ntop(AF_INET, a, buf, sizeof buf)) ||
          (len == 16 && inet_ntop(AF_INET6, a, buf, sizeof buf)))
        s = strdup(buf);
    }
    else continue;
    if (s == NULL) ok = 0;
    else p->altnames[p->naltnames++] = s;
  }
  GENERAL_NAMES_free(gens);
  return ok;
}

/*
** The peer's certificate, in 'p' (neap__tls_peer_free it). 0, or -1 when
** the peer showed none (or out of memory).
*/
int neap__tls_peer (const neap_tls *t, neap_tls_peer *p) {
  X509 *x = SSL_get0_peer_certificate(t->ssl);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  memset(p, 0, sizeof *p);
  if (x == NULL) return -1;
  p->subject = peer_name(X509_get_subject_name(x));
  p->issuer = peer_name(X509_get_issuer_name(x));
  p->not_before = peer_time(X509_get0_notBefore(x));
  p->not_after = peer_time(X509_get0_notAfter(x));
  if (X509_digest(x, EVP_sha256(), md, &mdlen))
    for (i = 0; i < mdlen && i < 32; i++)
      snprintf(p->fingerprint + 2 * i, 3, "%02x", md[i]);
  if (p->subject == NULL || p->issuer == NULL || !peer_altnames(x, p)) {
    neap__tls_peer_free(p);
    ERR_clear_error();
    return -1;
  }
  ERR_clear_error();
  return 0;
}

void neap__tls_peer_free (neap_tls_peer *p) {
  int i;
  free(p->subject);
  free(p->issuer);
  for (i = 0; i < p->naltnames; i++) free(p->altnames[i]);
  free(p->altnames);
  memset(p, 0, sizeof *p);
}

/* }====================================================== */
