/* SPDX-License-Identifier: MIT */
/* Unit tests for the TLS engine in src/tls.c: a client and a server engine
   talking through memory, with certificates spec/c/mkcerts.sh makes at test
   time. Usage: test_tls [DIR] (DIR: made certificates; else made here). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "test.h"
#include "tls.h"

/* ---- the harness ---- */

/*
** What a test makes is released by the runner after it, so a test that
** returns early on a failure leaks nothing (for the asan build).
*/
static neap_tls_ctx *t_ctxs[64];
static int t_nctxs;
static neap_tls *t_conns[64];
static int t_nconns;
static neap_buf t_bufs[4];
static int t_nbufs;
static void *t_mem[16];
static int t_nmem;

static neap_buf *new_buf (void) {
  neap_buf *b;
  if (t_nbufs == (int)(sizeof t_bufs / sizeof t_bufs[0])) abort();
  b = &t_bufs[t_nbufs++];
  neap__buf_init(b);
  return b;
}

static void *t_keep (void *p) {
  if (t_nmem == (int)(sizeof t_mem / sizeof t_mem[0])) abort();
  if (p != NULL) t_mem[t_nmem++] = p;
  return p;
}

static unsigned t_seed;

static void t_release (void) {
  t_seed = 1;   /* each test draws the same numbers however it is run */
  while (t_nconns > 0) neap__tls_free(t_conns[--t_nconns]);
  while (t_nctxs > 0) neap__tls_ctx_unref(t_ctxs[--t_nctxs]);
  while (t_nbufs > 0) neap__buf_free(&t_bufs[--t_nbufs]);
  while (t_nmem > 0) free(t_mem[--t_nmem]);
}

/* ---- certificates, contexts, connections ---- */

static const char *t_dir;      /* where mkcerts.sh put the certificates */

/* The path of certificate file 'name' (8 can be alive at once). */
static const char *cert (const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 512, "%s/%s", t_dir, name);
  return p;
}

static char t_err[512];        /* the message of the last failed creation */

static neap_tls_ctx *new_ctx (const neap_tls_opts *o) {
  neap_tls_ctx *c;
  t_err[0] = '\0';
  c = neap__tls_ctx_new(o, t_err, sizeof t_err);
  if (c != NULL) {
    if (t_nctxs == (int)(sizeof t_ctxs / sizeof t_ctxs[0])) abort();
    t_ctxs[t_nctxs++] = c;
  }
  return c;
}

static neap_tls *new_conn (neap_tls_ctx *c, const char *name,
                           const void *sess, size_t sesslen) {
  neap_tls *t;
  t_err[0] = '\0';
  t = neap__tls_new(c, name, sess, sesslen, t_err, sizeof t_err);
  if (t != NULL) {
    if (t_nconns == (int)(sizeof t_conns / sizeof t_conns[0])) abort();
    t_conns[t_nconns++] = t;
  }
  return t;
}

/* A server context on certificate 'name' (name.pem and name.key). */
static neap_tls_ctx *server_ctx (const char *name, neap_tls_opts *o) {
  neap_tls_opts def;
  char c[64], k[64];
  if (o == NULL) {
    neap__tls_opts_init(&def);
    o = &def;
  }
  snprintf(c, sizeof c, "%s.pem", name);
  snprintf(k, sizeof k, "%s.key", name);
  o->server = 1;
  o->cert = cert(c);
  o->key = cert(k);
  return new_ctx(o);
}

/* A client context trusting ca.pem. */
static neap_tls_ctx *client_ctx (neap_tls_opts *o) {
  neap_tls_opts def;
  if (o == NULL) {
    neap__tls_opts_init(&def);
    o = &def;
  }
  if (o->ca == NULL) o->ca = cert("ca.pem");
  return new_ctx(o);
}

/* ---- the network in memory ---- */

static unsigned rnd (void) {
  t_seed = t_seed * 1103515245u + 12345u;
  return (t_seed >> 16) & 0x7fff;
}

/*
** Moves what 'from' has for the network into 'to's input, in pieces of at
** most 'piece' bytes (0: all at once), each step letting 'to' consume.
** Returns the bytes moved.
*/
static size_t move (neap_tls *from, neap_tls *to, size_t piece) {
  neap_buf *out = neap__tls_out(from), *in = neap__tls_in(to);
  size_t n = neap__buf_len(out), moved = 0;
  while (n > 0) {
    size_t k = n, avail;
    char *dst;
    if (piece > 0) k = 1 + rnd() % piece;
    if (k > n) k = n;
    dst = neap__buf_reserve(in, k, &avail);
    if (dst == NULL) abort();
    memcpy(dst, neap__buf_data(out), k);
    neap__buf_commit(in, k);
    neap__buf_consume(out, k);
    n -= k;
    moved += k;
  }
  return moved;
}

/*
** Runs both handshakes until both are done, one fails, or nothing moves.
** Returns 0 when both are done; '*rc' and '*rs' are their last outcomes.
*/
static int handshake (neap_tls *c, neap_tls *s, int *rc, int *rs) {
  int i;
  *rc = *rs = NEAP_TLS_WANT;
  for (i = 0; i < 100; i++) {
    size_t moved;
    *rc = neap__tls_handshake(c);
    moved = move(c, s, 0);
    *rs = neap__tls_handshake(s);
    moved += move(s, c, 0);
    if (*rc == NEAP_TLS_ERROR || *rs == NEAP_TLS_ERROR) return -1;
    if (*rc == NEAP_TLS_OK && *rs == NEAP_TLS_OK) return 0;
    if (moved == 0) return -1;
  }
  return -1;
}

/* Both handshakes must succeed. */
#define HANDSHAKE_OK(c, s) \
  do { \
    int rc_, rs_; \
    if (handshake((c), (s), &rc_, &rs_) != 0) \
      FAIL("handshake: client %d (%s), server %d (%s)", rc_, \
           neap__tls_error(c), rs_, neap__tls_error(s)); \
  } while (0)

/* Sends 'msg' from 'a' to 'b', which must read exactly it. */
static void exchange (neap_tls *a, neap_tls *b, const char *msg) {
  char got[256];
  size_t n = 0;
  int r;
  ASSERT_EQ(neap__tls_write(a, msg, strlen(msg)), NEAP_TLS_OK);
  ASSERT_TRUE(neap__tls_pending(a) > strlen(msg));
  move(a, b, 0);
  ASSERT_EQ(neap__tls_pending(a), 0);
  r = neap__tls_read(b, got, sizeof got - 1, &n);
  if (r != NEAP_TLS_OK) FAIL("read: %d (%s)", r, neap__tls_error(b));
  got[n] = '\0';
  ASSERT_STREQ(got, msg);
  r = neap__tls_read(b, got, sizeof got, &n);
  ASSERT_EQ(r, NEAP_TLS_WANT);
  move(b, a, 0);   /* (what the reader may have to say: tickets...) */
}

/* Reads on both sides (for what comes after a handshake: tickets, alerts). */
static void settle (neap_tls *c, neap_tls *s) {
  char tmp[64];
  size_t n;
  int i;
  for (i = 0; i < 3; i++) {
    neap__tls_read(c, tmp, sizeof tmp, &n);
    move(c, s, 0);
    neap__tls_read(s, tmp, sizeof tmp, &n);
    move(s, c, 0);
  }
}

/* ---- handshakes and data ---- */

static void test_handshake_and_info (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap_tls_peer p;
  size_t len;
  int i, found = 0;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_TRUE(c != NULL && s != NULL);
  ASSERT_EQ(neap__tls_done(c), 0);
  ASSERT_EQ(neap__tls_handshake(c), NEAP_TLS_WANT);
  ASSERT_TRUE(neap__tls_pending(c) > 0);   /* the ClientHello */
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_done(c), 1);
  ASSERT_EQ(neap__tls_done(s), 1);
  ASSERT_STREQ(neap__tls_version(c), "TLSv1.3");
  ASSERT_STREQ(neap__tls_version(s), "TLSv1.3");
  ASSERT_PREFIX(neap__tls_cipher(c), "TLS_");
  ASSERT_TRUE(neap__tls_alpn(c, &len) == NULL);
  ASSERT_STREQ(neap__tls_servername(s), "localhost");
  ASSERT_STREQ(neap__tls_servername(c), "localhost");
  ASSERT_EQ(neap__tls_resumed(c), 0);
  exchange(c, s, "hello");
  CHECK();
  exchange(s, c, "world");
  CHECK();
  /* the server's certificate, seen by the client */
  ASSERT_EQ(neap__tls_peer(c, &p), 0);
  t_keep(p.subject);
  t_keep(p.issuer);
  t_keep(p.altnames);
  for (i = 0; i < p.naltnames; i++) {
    t_keep(p.altnames[i]);
    found += strcmp(p.altnames[i], "localhost") == 0 ||
             strcmp(p.altnames[i], "127.0.0.1") == 0 ||
             strcmp(p.altnames[i], "::1") == 0;
  }
  ASSERT_STREQ(p.subject, "CN=localhost,O=neap");
  ASSERT_STREQ(p.issuer, "CN=neap test CA");
  ASSERT_EQ(p.naltnames, 3);
  ASSERT_EQ(found, 3);
  ASSERT_EQ(strlen(p.fingerprint), 64);
  ASSERT_TRUE(strspn(p.fingerprint, "0123456789abcdef") == 64);
  ASSERT_TRUE(p.not_before <= (int64_t)time(NULL) + 60);
  ASSERT_TRUE(p.not_after > (int64_t)time(NULL) + 20 * 86400);
  ASSERT_TRUE(p.not_after < (int64_t)time(NULL) + 40 * 86400);
  /* the client showed none */
  ASSERT_EQ(neap__tls_peer(s, &p), -1);
  ASSERT_TRUE(p.subject == NULL);
}

/* A handshake whose bytes arrive a few at a time. */
static void test_handshake_in_pieces (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  int i, rc = 0, rs = 0;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_TRUE(c != NULL && s != NULL);
  for (i = 0; i < 10000; i++) {
    rc = neap__tls_handshake(c);
    move(c, s, 7);
    rs = neap__tls_handshake(s);
    move(s, c, 7);
    if (rc != NEAP_TLS_WANT && rs != NEAP_TLS_WANT) break;
  }
  ASSERT_EQ(rc, NEAP_TLS_OK);
  ASSERT_EQ(rs, NEAP_TLS_OK);
  exchange(c, s, "in pieces");
}

#define BIG (10 * 1024 * 1024)

/*
** Sends BIG bytes from 'a' to 'b' in writes of random sizes, moved in
** random pieces, read into a plaintext neap_buf; they must arrive intact.
*/
static void send_big (neap_tls *a, neap_tls *b) {
  neap_buf *plain = new_buf();
  size_t sent = 0, got = 0, checked = 0;
  unsigned char chunk[70000];
  unsigned x = 7;
  size_t i;
  int r;
  for (i = 0; i < sizeof chunk; i++) chunk[i] = (unsigned char)(i * 31 + 7);
  while (got < BIG) {
    size_t n;
    if (sent < BIG) {
      size_t k = 1 + rnd() * 3 % sizeof chunk;
      if (k > BIG - sent) k = BIG - sent;
      for (i = 0; i < k; i++)   /* the stream: byte j is (j * 13) ^ (j >> 8) */
        chunk[i] = (unsigned char)(((sent + i) * 13) ^ ((sent + i) >> 8));
      ASSERT_EQ(neap__tls_write(a, chunk, k), NEAP_TLS_OK);
      sent += k;
    }
    move(a, b, 40000);
    r = neap__tls_read_buf(b, plain, 256 * 1024, &n);
    if (r == NEAP_TLS_ERROR) FAIL("read: %s", neap__tls_error(b));
    if (r == NEAP_TLS_OK) ASSERT_TRUE(n > 0);
    else ASSERT_EQ(n, 0);
    got += n;
    /* check and consume what arrived */
    while (neap__buf_len(plain) > 0) {
      unsigned char ch = (unsigned char)neap__buf_data(plain)[0];
      if (ch != (unsigned char)((checked * 13) ^ (checked >> 8)))
        FAIL("byte %zu differs", checked);
      neap__buf_consume(plain, 1);
      checked++;
    }
    x++;
    if (sent == BIG && neap__tls_pending(a) == 0 && r == NEAP_TLS_WANT &&
        got < BIG)
      FAIL("stalled at %zu of %d bytes", got, BIG);
  }
  ASSERT_EQ(got, BIG);
  ASSERT_EQ(checked, BIG);
  (void)x;
}

static void test_10mb_both_ways (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_TRUE(c != NULL && s != NULL);
  HANDSHAKE_OK(c, s);
  send_big(c, s);
  CHECK();
  send_big(s, c);
  CHECK();
  exchange(c, s, "after");
}

/*
** The sender may take 'out' whole (a write in flight keeps its bytes) while
** new records pile up in a fresh one; the peer reads both in order.
*/
static void test_out_taken (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap_buf *taken = new_buf(), *plain = new_buf();
  size_t n;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_write(c, "first ", 6), NEAP_TLS_OK);
  *taken = *neap__tls_out(c);              /* in flight */
  neap__buf_init(neap__tls_out(c));
  ASSERT_EQ(neap__tls_write(c, "second", 6), NEAP_TLS_OK);
  ASSERT_EQ(neap__buf_append(neap__tls_in(s), neap__buf_data(taken),
                             neap__buf_len(taken)), 0);
  move(c, s, 0);
  ASSERT_EQ(neap__tls_read_buf(s, plain, 1000, &n), NEAP_TLS_OK);
  ASSERT_EQ(n, 12);
  ASSERT_TRUE(memcmp(neap__buf_data(plain), "first second", 12) == 0);
}

/* A record read a byte at a time. */
static void test_small_reads (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  char got[32];
  size_t n, len = 0;
  int r;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_write(c, "byte by byte", 12), NEAP_TLS_OK);
  move(c, s, 0);
  while ((r = neap__tls_read(s, got + len, 1, &n)) == NEAP_TLS_OK) {
    ASSERT_EQ(n, 1);
    len++;
    ASSERT_TRUE(len < sizeof got);
  }
  ASSERT_EQ(r, NEAP_TLS_WANT);
  ASSERT_EQ(len, 12);
  ASSERT_TRUE(memcmp(got, "byte by byte", 12) == 0);
}

static void test_key_in_cert_file (void) {
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap__tls_opts_init(&o);
  o.server = 1;
  o.cert = cert("server-both.pem");
  sc = new_ctx(&o);
  if (sc == NULL) FAIL("%s", t_err);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  exchange(c, s, "one file");
}

static void test_min_version_13 (void) {
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc;
  neap_tls *c, *s;
  neap__tls_opts_init(&o);
  o.min_version = 13;
  sc = server_ctx("server", &o);
  neap__tls_opts_init(&o);
  o.min_version = 13;
  cc = client_ctx(&o);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_STREQ(neap__tls_version(c), "TLSv1.3");
}

/* ---- ALPN ---- */

static void test_alpn_server_preference (void) {
  const char *cl[] = {"h2", "http/1.1"}, *sl[] = {"http/1.1", "h2"};
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc;
  neap_tls *c, *s;
  const char *p;
  size_t len;
  neap__tls_opts_init(&o);
  o.alpn = sl;
  o.nalpn = 2;
  sc = server_ctx("server", &o);
  neap__tls_opts_init(&o);
  o.alpn = cl;
  o.nalpn = 2;
  cc = client_ctx(&o);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  p = neap__tls_alpn(c, &len);
  ASSERT_TRUE(p != NULL && len == 8 && memcmp(p, "http/1.1", 8) == 0);
  p = neap__tls_alpn(s, &len);
  ASSERT_TRUE(p != NULL && len == 8 && memcmp(p, "http/1.1", 8) == 0);
}

static void test_alpn_no_overlap (void) {
  const char *cl[] = {"h2"}, *sl[] = {"http/1.1"};
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc;
  neap_tls *c, *s;
  int rc, rs;
  neap__tls_opts_init(&o);
  o.alpn = sl;
  o.nalpn = 1;
  sc = server_ctx("server", &o);
  neap__tls_opts_init(&o);
  o.alpn = cl;
  o.nalpn = 1;
  cc = client_ctx(&o);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(handshake(c, s, &rc, &rs), -1);
  ASSERT_EQ(rs, NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s), "handshake failed: no application protocol");
  /* the server's alert tells the client */
  ASSERT_EQ(neap__tls_handshake(c), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(c), "handshake failed: no application protocol");
  ASSERT_EQ(ERR_peek_error(), 0);
}

/* A client that offers nothing gets no protocol from a server that has some. */
static void test_alpn_not_offered (void) {
  const char *sl[] = {"h2"};
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc = client_ctx(NULL);
  neap_tls *c, *s;
  size_t len;
  neap__tls_opts_init(&o);
  o.alpn = sl;
  o.nalpn = 1;
  sc = server_ctx("server", &o);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_TRUE(neap__tls_alpn(s, &len) == NULL);
  ASSERT_EQ(len, 0);
}

/* ---- SNI ---- */

/* Connects to 'sc' as 'name'; the certificate shown must be 'subject'. */
static void sni_check (neap_tls_ctx *sc, neap_tls_ctx *cc, const char *name,
                       const char *subject) {
  neap_tls *c = new_conn(cc, name, NULL, 0), *s = new_conn(sc, NULL, NULL, 0);
  neap_tls_peer p;
  ASSERT_TRUE(c != NULL && s != NULL);
  HANDSHAKE_OK(c, s);
  ASSERT_STREQ(neap__tls_servername(s), name);
  ASSERT_EQ(neap__tls_peer(c, &p), 0);
  if (strcmp(p.subject, subject) != 0) {
    char got[256];
    snprintf(got, sizeof got, "%s", p.subject);
    neap__tls_peer_free(&p);
    FAIL("%s: certificate %s, expected %s", name, got, subject);
  }
  neap__tls_peer_free(&p);
}

static void test_sni_chooses_certificate (void) {
  neap_tls_sni sni[2];
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc = client_ctx(NULL);
  neap__tls_opts_init(&o);
  sni[0].name = "other.test";
  sni[0].cert = cert("other.pem");
  sni[0].key = cert("other.key");
  sni[1].name = "*.other.test";
  sni[1].cert = cert("other.pem");
  sni[1].key = cert("other.key");
  o.sni = sni;
  o.nsni = 2;
  sc = server_ctx("server", &o);
  if (sc == NULL) FAIL("%s", t_err);
  sni_check(sc, cc, "other.test", "CN=other.test");
  CHECK();
  sni_check(sc, cc, "OTHER.test", "CN=other.test");
  CHECK();
  sni_check(sc, cc, "www.other.test", "CN=other.test");
  CHECK();
  sni_check(sc, cc, "localhost", "CN=localhost,O=neap");
}

/* ---- client certificates ---- */

static neap_tls_ctx *clientcert_server (int mode) {
  neap_tls_opts o;
  neap__tls_opts_init(&o);
  o.verify_peer = mode;
  o.ca = cert("clientca.pem");
  return server_ctx("server", &o);
}

static void test_client_cert_required_missing (void) {
  neap_tls_ctx *sc = clientcert_server(NEAP_TLS_PEER_REQUIRE);
  neap_tls_ctx *cc = client_ctx(NULL);
  neap_tls *c, *s;
  char tmp[16];
  size_t n;
  int rc, rs;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(handshake(c, s, &rc, &rs), -1);
  ASSERT_EQ(rs, NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s),
               "handshake failed: peer did not return a certificate");
  /* TLS 1.3: the client's handshake is done; its first read has the alert */
  ASSERT_EQ(neap__tls_read(c, tmp, sizeof tmp, &n), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(c), "read failed: certificate required");
}

static void test_client_cert_required_present (void) {
  neap_tls_ctx *sc = clientcert_server(NEAP_TLS_PEER_REQUIRE), *cc;
  neap_tls_opts o;
  neap_tls *c, *s;
  neap_tls_peer p;
  neap__tls_opts_init(&o);
  o.cert = cert("client.pem");
  o.key = cert("client.key");
  cc = client_ctx(&o);
  if (sc == NULL || cc == NULL) FAIL("%s", t_err);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  exchange(c, s, "with a certificate");
  CHECK();
  ASSERT_EQ(neap__tls_peer(s, &p), 0);
  t_keep(p.subject);
  t_keep(p.issuer);
  t_keep(p.altnames);
  if (p.naltnames > 0) t_keep(p.altnames[0]);
  ASSERT_STREQ(p.subject, "CN=neap client,O=neap");
  ASSERT_STREQ(p.issuer, "CN=neap client CA");
  ASSERT_EQ(p.naltnames, 1);
  ASSERT_STREQ(p.altnames[0], "client.test");
}

/*
** A client certificate from another CA fails even when it is optional (the
** client completes its chain from its own store: the server sees that root).
*/
static void test_client_cert_wrong_ca (void) {
  neap_tls_ctx *sc = clientcert_server(NEAP_TLS_PEER_OPTIONAL), *cc;
  neap_tls_opts o;
  neap_tls *c, *s;
  int rc, rs;
  neap__tls_opts_init(&o);
  o.cert = cert("server.pem");   /* signed by ca, not clientca */
  o.key = cert("server.key");
  cc = client_ctx(&o);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(handshake(c, s, &rc, &rs), -1);
  ASSERT_STREQ(neap__tls_error(s),
               "certificate verify failed: self-signed certificate in certificate chain");
}

static void test_client_cert_optional_absent (void) {
  neap_tls_ctx *sc = clientcert_server(NEAP_TLS_PEER_OPTIONAL);
  neap_tls_ctx *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap_tls_peer p;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  exchange(c, s, "no certificate");
  CHECK();
  ASSERT_EQ(neap__tls_peer(s, &p), -1);
}

/* TLS 1.2 (a client that offers no more): sessions, client certificates. */
static void test_tls12 (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls_ctx *rc = clientcert_server(NEAP_TLS_PEER_REQUIRE);
  neap_tls *c, *s;
  unsigned char *sess;
  size_t len, n;
  char tmp[8];
  int r1, r2;
  ASSERT_TRUE(sc != NULL && cc != NULL && rc != NULL);
  SSL_CTX_set_max_proto_version(neap__tls_ctx_ssl(cc), TLS1_2_VERSION);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_STREQ(neap__tls_version(c), "TLSv1.2");
  ASSERT_STREQ(neap__tls_version(s), "TLSv1.2");
  exchange(c, s, "twelve");
  CHECK();
  sess = t_keep(neap__tls_session(c, &len));   /* there at once in 1.2 */
  ASSERT_TRUE(sess != NULL);
  ASSERT_EQ(neap__tls_shutdown(c), NEAP_TLS_OK);
  move(c, s, 0);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_EOF);
  ASSERT_EQ(neap__tls_close_notified(s), 1);
  c = new_conn(cc, "localhost", sess, len);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_resumed(c), 1);
  /* a required certificate missing fails the client's handshake too */
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(rc, NULL, NULL, 0);
  ASSERT_EQ(handshake(c, s, &r1, &r2), -1);
  ASSERT_STREQ(neap__tls_error(s),
               "handshake failed: peer did not return a certificate");
  (void)r1;   /* (the server's alert is on its way) */
  ASSERT_EQ(neap__tls_handshake(c), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(c), "handshake failed: handshake failure");
}

/* ---- verification ---- */

/*
** A client of 'cc' connecting as 'name' to a server on certificate 'srv'
** must fail its handshake with 'msg'.
*/
static void verify_fails (neap_tls_ctx *cc, const char *srv, const char *name,
                          const char *msg) {
  neap_tls_ctx *sc = server_ctx(srv, NULL);
  neap_tls *c, *s;
  int rc, rs;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, name, NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_TRUE(c != NULL && s != NULL);
  ASSERT_EQ(handshake(c, s, &rc, &rs), -1);
  ASSERT_EQ(rc, NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(c), msg);
  ASSERT_EQ(ERR_peek_error(), 0);   /* nothing left for the next one */
  /* the failure is sticky */
  ASSERT_EQ(neap__tls_handshake(c), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(c), msg);
  /* the client's alert told the server */
  ASSERT_EQ(rs, NEAP_TLS_ERROR);
  ASSERT_PREFIX(neap__tls_error(s), "handshake failed: ");
}

static void test_verify_wrong_ca (void) {
  neap_tls_opts o;
  neap__tls_opts_init(&o);
  o.ca = cert("otherca.pem");
  verify_fails(client_ctx(&o), "server", "localhost",
               "certificate verify failed: unable to get local issuer certificate");
}

static void test_verify_wrong_host (void) {
  verify_fails(client_ctx(NULL), "server", "wrong.test",
               "certificate verify failed: hostname mismatch");
}

static void test_verify_expired (void) {
  verify_fails(client_ctx(NULL), "expired", "localhost",
               "certificate verify failed: certificate has expired");
}

static void test_verify_self_signed (void) {
  verify_fails(client_ctx(NULL), "self", "localhost",
               "certificate verify failed: self-signed certificate");
}

static void test_verify_wrong_ip (void) {
  verify_fails(client_ctx(NULL), "server", "10.1.2.3",
               "certificate verify failed: IP address mismatch");
}

/* The CA of a directory (c_rehash layout) is found too. */
static void test_verify_ca_directory (void) {
  neap_tls_opts o;
  neap__tls_opts_init(&o);
  o.ca = t_dir;   /* (no hashed links there: nothing is trusted) */
  verify_fails(client_ctx(&o), "server", "localhost",
               "certificate verify failed: unable to get local issuer certificate");
}

static void test_verify_off (void) {
  neap_tls_opts o;
  neap_tls_ctx *cc;
  const char *srv[] = {"self", "expired", "server"};
  int i;
  neap__tls_opts_init(&o);
  o.verify = 0;
  o.ca = cert("otherca.pem");
  cc = new_ctx(&o);
  ASSERT_TRUE(cc != NULL);
  for (i = 0; i < 3; i++) {
    neap_tls_ctx *sc = server_ctx(srv[i], NULL);
    neap_tls *c = new_conn(cc, "wrong.test", NULL, 0);
    neap_tls *s = new_conn(sc, NULL, NULL, 0);
    ASSERT_TRUE(c != NULL && s != NULL);
    HANDSHAKE_OK(c, s);
    exchange(c, s, "unverified");
    CHECK();
    ASSERT_STREQ(neap__tls_servername(s), "wrong.test");
    neap__tls_free(c);
    neap__tls_free(s);
    t_nconns -= 2;
  }
}

static void test_ip_certificate (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  const char *ips[] = {"127.0.0.1", "::1"};
  int i;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  for (i = 0; i < 2; i++) {
    neap_tls *c = new_conn(cc, ips[i], NULL, 0);
    neap_tls *s = new_conn(sc, NULL, NULL, 0);
    ASSERT_TRUE(c != NULL && s != NULL);
    HANDSHAKE_OK(c, s);
    ASSERT_TRUE(neap__tls_servername(s) == NULL);   /* no SNI for an address */
    ASSERT_STREQ(neap__tls_servername(c), ips[i]);
    exchange(c, s, "by address");
    CHECK();
  }
}

/* The system store (no ca) knows nothing of the test CA. */
static void test_verify_system_store (void) {
  neap_tls_opts o;
  neap_tls_ctx *cc;
  neap__tls_opts_init(&o);
  cc = new_ctx(&o);
  verify_fails(cc, "server", "localhost",
               "certificate verify failed: unable to get local issuer certificate");
}

/* ---- sessions ---- */

static void test_session_resumption (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  unsigned char *sess;
  size_t len;
  neap_tls_peer p;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_TRUE(neap__tls_session(s, &len) == NULL);   /* servers have none */
  exchange(s, c, "tickets come with this");
  CHECK();
  sess = t_keep(neap__tls_session(c, &len));
  ASSERT_TRUE(sess != NULL && len > 0);
  ASSERT_EQ(neap__tls_resumed(c), 0);
  /* a second connection with it is resumed */
  c = new_conn(cc, "localhost", sess, len);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_resumed(c), 1);
  ASSERT_EQ(neap__tls_resumed(s), 1);
  exchange(c, s, "resumed");
  CHECK();
  ASSERT_EQ(neap__tls_peer(c, &p), 0);   /* the certificate is remembered */
  t_keep(p.subject);
  t_keep(p.issuer);
  t_keep(p.altnames);
  while (p.naltnames > 0) t_keep(p.altnames[--p.naltnames]);
  ASSERT_STREQ(p.subject, "CN=localhost,O=neap");
  /* a session that does not parse: a full handshake */
  c = new_conn(cc, "localhost", "garbage", 7);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_TRUE(c != NULL);
  HANDSHAKE_OK(c, s);
  ASSERT_EQ(neap__tls_resumed(c), 0);
}

/* ---- the end of a connection ---- */

static void test_close_notify (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  char tmp[16];
  size_t n;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  settle(c, s);
  ASSERT_EQ(neap__tls_write(c, "last", 4), NEAP_TLS_OK);
  ASSERT_EQ(neap__tls_shutdown(c), NEAP_TLS_OK);
  ASSERT_EQ(neap__tls_shutdown(c), NEAP_TLS_OK);   /* once is enough */
  move(c, s, 0);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_OK);
  ASSERT_EQ(n, 4);
  ASSERT_EQ(neap__tls_close_notified(s), 0);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_EOF);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(neap__tls_close_notified(s), 1);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_EOF);
  /* the server may still answer, then close too */
  ASSERT_EQ(neap__tls_write(s, "bye", 3), NEAP_TLS_OK);
  ASSERT_EQ(neap__tls_shutdown(s), NEAP_TLS_OK);
  move(s, c, 0);
  ASSERT_EQ(neap__tls_read(c, tmp, sizeof tmp, &n), NEAP_TLS_OK);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(neap__tls_read(c, tmp, sizeof tmp, &n), NEAP_TLS_EOF);
}

/* The input ending between records, with no close_notify: a plain EOF. */
static void test_eof_without_close_notify (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  char tmp[16];
  size_t n;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  exchange(c, s, "then nothing");
  CHECK();
  neap__tls_input_end(s);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_EOF);
  ASSERT_EQ(neap__tls_close_notified(s), 0);
  ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_truncated_record (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap_buf *out;
  char tmp[64];
  size_t n, len;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  settle(c, s);
  ASSERT_EQ(neap__tls_write(c, "a record cut in two", 19), NEAP_TLS_OK);
  out = neap__tls_out(c);
  len = neap__buf_len(out);
  ASSERT_EQ(neap__buf_append(neap__tls_in(s), neap__buf_data(out), len / 2), 0);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_WANT);
  neap__tls_input_end(s);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s), "truncated record");
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_ERROR);
  ASSERT_EQ(ERR_peek_error(), 0);
}

/* A handshake cut short by the end of the input. */
static void test_truncated_handshake (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  neap_buf *out;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(neap__tls_handshake(c), NEAP_TLS_WANT);
  out = neap__tls_out(c);
  ASSERT_EQ(neap__buf_append(neap__tls_in(s), neap__buf_data(out),
                             neap__buf_len(out) - 10), 0);
  ASSERT_EQ(neap__tls_handshake(s), NEAP_TLS_WANT);
  neap__tls_input_end(s);
  ASSERT_EQ(neap__tls_handshake(s), NEAP_TLS_ERROR);
  ASSERT_PREFIX(neap__tls_error(s), "handshake failed: unexpected eof");
  ASSERT_EQ(ERR_peek_error(), 0);
}

/*
** Something that is not TLS instead of a ClientHello: an error at once, or
** (what looks like the start of a long record) once the input ends.
*/
static void not_a_hello (const char *p, size_t n, const char *msg) {
  neap_tls_ctx *sc = server_ctx("server", NULL);
  neap_tls *s;
  int r;
  ASSERT_TRUE(sc != NULL);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(neap__buf_append(neap__tls_in(s), p, n), 0);
  r = neap__tls_handshake(s);
  if (r == NEAP_TLS_WANT && msg == NULL) {
    neap__tls_input_end(s);
    r = neap__tls_handshake(s);
  }
  ASSERT_EQ(r, NEAP_TLS_ERROR);
  if (msg) ASSERT_STREQ(neap__tls_error(s), msg);
  else ASSERT_PREFIX(neap__tls_error(s), "handshake failed: ");
  ASSERT_EQ(ERR_peek_error(), 0);
  ASSERT_EQ(neap__tls_read(s, (char *)t_msg, 0, &n), NEAP_TLS_ERROR);
  ASSERT_EQ(neap__tls_write(s, "x", 1), NEAP_TLS_ERROR);
}

static void test_garbage_hello (void) {
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  char junk[600];
  int i;
  not_a_hello(http, sizeof http - 1, "handshake failed: http request");
  CHECK();
  not_a_hello("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10, NULL);
  CHECK();
  for (i = 0; i < 20; i++) {
    size_t k;
    for (k = 0; k < sizeof junk; k++) junk[k] = (char)rnd();
    junk[0] = (char)(0x10 + i);   /* (a record type, or none) */
    not_a_hello(junk, sizeof junk, NULL);
    CHECK();
  }
}

/* Garbage in the middle of a connection is an error on that connection. */
static void test_garbage_after_handshake (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  neap_tls *c, *s;
  char junk[300], tmp[64];
  size_t n, k;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  HANDSHAKE_OK(c, s);
  settle(c, s);
  memcpy(junk, "\x17\x03\x03\x01\x00", 5);   /* an application data record */
  for (k = 5; k < sizeof junk; k++) junk[k] = (char)rnd();
  ASSERT_EQ(neap__buf_append(neap__tls_in(s), junk, sizeof junk), 0);
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s), "read failed: decryption failed or bad record mac");
  ASSERT_EQ(ERR_peek_error(), 0);
}

/* Freed at every step of a handshake. */
static void test_free_mid_handshake (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL), *cc = client_ctx(NULL);
  int stop;
  ASSERT_TRUE(sc != NULL && cc != NULL);
  for (stop = 0; stop < 6; stop++) {
    neap_tls *c = neap__tls_new(cc, "localhost", NULL, 0, t_err, sizeof t_err);
    neap_tls *s = neap__tls_new(sc, NULL, NULL, 0, t_err, sizeof t_err);
    int i;
    ASSERT_TRUE(c != NULL && s != NULL);
    for (i = 0; i < stop; i++) {
      neap__tls_handshake(c);
      move(c, s, 0);
      neap__tls_handshake(s);
      move(s, c, 0);
    }
    if (stop == 5) neap__tls_write(c, "x", 1);
    neap__tls_free(c);
    neap__tls_free(s);
  }
  neap__tls_free(NULL);
}

/* Operations out of order fail with a message and no crash. */
static void test_misuse (void) {
  neap_tls_ctx *sc = server_ctx("server", NULL);
  neap_tls *s;
  char tmp[8];
  size_t n;
  ASSERT_TRUE(sc != NULL);
  s = new_conn(sc, NULL, NULL, 0);
  ASSERT_EQ(neap__tls_write(s, "x", 1), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s), "write failed: handshake not done");
  ASSERT_EQ(neap__tls_read(s, tmp, sizeof tmp, &n), NEAP_TLS_ERROR);
  ASSERT_STREQ(neap__tls_error(s), "read failed: handshake not done");
  ASSERT_EQ(neap__tls_shutdown(s), NEAP_TLS_OK);   /* nothing to say yet */
  ASSERT_EQ(neap__tls_pending(s), 0);
  ASSERT_EQ(neap__tls_handshake(s), NEAP_TLS_WANT);   /* still usable */
}

/* ---- contexts that cannot be made ---- */

/* Context options 'o' must fail with a message beginning with 'msg'. */
static void ctx_fails (neap_tls_opts *o, const char *msg) {
  ASSERT_TRUE(new_ctx(o) == NULL);
  ASSERT_STREQ(t_err, msg);
  ASSERT_EQ(ERR_peek_error(), 0);
}

static void test_ctx_errors (void) {
  neap_tls_opts o;
  const char *bad[] = {""};
  char msg[600];
  neap__tls_opts_init(&o);
  o.server = 1;
  ctx_fails(&o, "a server needs a certificate (cert)");
  CHECK();
  o.cert = "/nonexistent/cert.pem";
  ctx_fails(&o, "cannot load certificate /nonexistent/cert.pem: no such file or directory");
  CHECK();
  o.cert = cert("ca.key");   /* a key, not a certificate */
  snprintf(msg, sizeof msg, "cannot load certificate %s: no start line", o.cert);
  ctx_fails(&o, msg);
  CHECK();
  o.cert = cert("server.pem");
  ASSERT_TRUE(new_ctx(&o) == NULL);   /* (the key is not in server.pem) */
  ASSERT_PREFIX(t_err, "cannot load key ");
  o.key = "/nonexistent/key.pem";
  ctx_fails(&o, "cannot load key /nonexistent/key.pem: no such file or directory");
  CHECK();
  o.key = cert("other.key");
  snprintf(msg, sizeof msg, "key %s does not match certificate %s", o.key,
           o.cert);
  ctx_fails(&o, msg);
  CHECK();
  o.key = cert("server.key");
  o.verify_peer = NEAP_TLS_PEER_REQUIRE;
  o.ca = "/nonexistent/ca.pem";
  ctx_fails(&o, "cannot load ca /nonexistent/ca.pem: no such file or directory");
  CHECK();
  o.verify_peer = NEAP_TLS_PEER_NONE;
  o.min_version = 11;
  ctx_fails(&o, "min_version must be 1.2 or 1.3");
  CHECK();
  o.min_version = 12;
  o.alpn = bad;
  o.nalpn = 1;
  ctx_fails(&o, "alpn: protocol names are 1 to 255 bytes");
  CHECK();
  neap__tls_opts_init(&o);
  o.ca = "/nonexistent/ca.pem";
  ctx_fails(&o, "cannot load ca /nonexistent/ca.pem: no such file or directory");
}

/* A context outlives its creator's reference while connections use it. */
static void test_ctx_refcount (void) {
  neap_tls_opts o;
  neap_tls_ctx *sc, *cc;
  neap_tls *c, *s;
  neap__tls_opts_init(&o);
  o.server = 1;
  o.cert = cert("server.pem");
  o.key = cert("server.key");
  sc = neap__tls_ctx_new(&o, t_err, sizeof t_err);
  neap__tls_opts_init(&o);
  o.ca = cert("ca.pem");
  cc = neap__tls_ctx_new(&o, t_err, sizeof t_err);
  ASSERT_TRUE(sc != NULL && cc != NULL);
  c = new_conn(cc, "localhost", NULL, 0);
  s = new_conn(sc, NULL, NULL, 0);
  neap__tls_ctx_unref(sc);   /* the connections keep them */
  neap__tls_ctx_unref(cc);
  HANDSHAKE_OK(c, s);
  exchange(c, s, "still here");
}

/* ---- the runner ---- */

static const test tests[] = {
  T(test_handshake_and_info),
  T(test_handshake_in_pieces),
  T(test_10mb_both_ways),
  T(test_out_taken),
  T(test_small_reads),
  T(test_key_in_cert_file),
  T(test_min_version_13),
  T(test_alpn_server_preference),
  T(test_alpn_no_overlap),
  T(test_alpn_not_offered),
  T(test_sni_chooses_certificate),
  T(test_client_cert_required_missing),
  T(test_client_cert_required_present),
  T(test_client_cert_wrong_ca),
  T(test_client_cert_optional_absent),
  T(test_tls12),
  T(test_verify_wrong_ca),
  T(test_verify_wrong_host),
  T(test_verify_expired),
  T(test_verify_self_signed),
  T(test_verify_wrong_ip),
  T(test_verify_ca_directory),
  T(test_verify_system_store),
  T(test_verify_off),
  T(test_ip_certificate),
  T(test_session_resumption),
  T(test_close_notify),
  T(test_eof_without_close_notify),
  T(test_truncated_record),
  T(test_truncated_handshake),
  T(test_garbage_hello),
  T(test_garbage_after_handshake),
  T(test_free_mid_handshake),
  T(test_misuse),
  T(test_ctx_errors),
  T(test_ctx_refcount),
};

int main (int argc, char **argv) {
  char tmpl[] = "/tmp/neap-tls-XXXXXX", cmd[600];
  const char *src = getenv("NEAP_SRC");   /* the source tree; default: . */
  int r;
  if (argc > 1) t_dir = argv[1];
  else {
    t_dir = mkdtemp(tmpl);
    snprintf(cmd, sizeof cmd, "sh %s/spec/c/mkcerts.sh %s", src ? src : ".",
             t_dir ? t_dir : "");
    if (t_dir == NULL || system(cmd) != 0) {
      printf("cannot make the certificates (%s)\n", cmd);
      printf("0 passed, 1 failed\n");
      return 1;
    }
  }
  t_release();
  r = run_tests(tests, sizeof tests / sizeof tests[0], t_release);
  if (argc <= 1) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", t_dir);
    if (system(cmd) != 0) printf("cannot remove %s\n", t_dir);
  }
  return r;
}
