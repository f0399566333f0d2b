/* SPDX-License-Identifier: MIT */
/*
** libFuzzer target for src/tls.c: arbitrary bytes, in arbitrary splits, as
** the network input of a server-side engine, alone or after a real
** ClientHello (so they reach the later states of the handshake). The engine
** must fail cleanly: no crash, no leak, no error left in OpenSSL's queue.
** The server's key and self-signed certificate are made at start with the
** OpenSSL API (a fuzz target runs no openssl command).
*/
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls.h"

static neap_tls_ctx *server;
static char hello[4096];       /* a real ClientHello */
static size_t hellolen;

/* Writes a P-256 key and a self-signed certificate for it as PEM to 'f'. */
static void make_cert (FILE *f) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *n;
  if (k == NULL || x == NULL) abort();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
  X509_set_pubkey(x, k);
  n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, n);
  if (!X509_sign(x, k, EVP_sha256()) || !PEM_write_X509(f, x) ||
      !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
    abort();
  X509_free(x);
  EVP_PKEY_free(k);
}

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  char path[] = "/tmp/neap-fuzz-tls-XXXXXX", err[256];
  const char *alpn[] = {"h2", "http/1.1"};
  neap_tls_opts o;
  neap_tls_ctx *cc;
  neap_tls *c;
  neap_buf *out;
  int fd = mkstemp(path);
  FILE *f;
  (void)argc; (void)argv;
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) abort();
  make_cert(f);
  fclose(f);
  neap__tls_opts_init(&o);
  o.server = 1;
  o.cert = path;
  o.alpn = alpn;
  o.nalpn = 2;
  server = neap__tls_ctx_new(&o, err, sizeof err);
  unlink(path);
  if (server == NULL) {
    fprintf(stderr, "fuzz_tls: %s\n", err);
    abort();
  }
  /* a client's first flight */
  neap__tls_opts_init(&o);
  o.verify = 0;
  o.alpn = alpn;
  o.nalpn = 2;
  cc = neap__tls_ctx_new(&o, err, sizeof err);
  if (cc == NULL) abort();
  c = neap__tls_new(cc, "localhost", NULL, 0, err, sizeof err);
  if (c == NULL || neap__tls_handshake(c) != NEAP_TLS_WANT) abort();
  out = neap__tls_out(c);
  hellolen = neap__buf_len(out);
  if (hellolen > sizeof hello) abort();
  memcpy(hello, neap__buf_data(out), hellolen);
  neap__tls_free(c);
  neap__tls_ctx_unref(cc);
  return 0;
}

/* Appends 'p[0..n)' to the engine's input; runs it; 0 while it goes on. */
static int feed (neap_tls *t, neap_buf *plain, const uint8_t *p, size_t n) {
  size_t got;
  int r;
  if (n > 0 && neap__buf_append(neap__tls_in(t), (const char *)p, n) != 0)
    abort();
  r = neap__tls_handshake(t);
  if (r == NEAP_TLS_OK) {
    do {
      r = neap__tls_read_buf(t, plain, 65536, &got);
      neap__buf_consume(plain, neap__buf_len(plain));
    } while (r == NEAP_TLS_OK);
  }
  /* what the server says goes nowhere */
  neap__buf_consume(neap__tls_out(t), neap__tls_pending(t));
  if (r == NEAP_TLS_ERROR && strcmp(neap__tls_error(t), "no error") == 0)
    abort();   /* every failure says why */
  if (ERR_peek_error() != 0) abort();   /* the queue is left empty */
  return r == NEAP_TLS_ERROR || r == NEAP_TLS_EOF;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  char err[256];
  neap_buf plain;
  neap_tls *t;
  size_t piece, i = 1;
  if (size < 1) return 0;
  t = neap__tls_new(server, NULL, NULL, 0, err, sizeof err);
  if (t == NULL) abort();
  neap__buf_init(&plain);
  piece = (size_t)(data[0] >> 1) * 7 + 1;   /* the split of the input */
  if ((data[0] & 1) && feed(t, &plain, (const uint8_t *)hello, hellolen))
    goto done;
  while (i < size) {
    size_t k = size - i < piece ? size - i : piece;
    if (feed(t, &plain, data + i, k)) goto done;
    i += k;
  }
  neap__tls_input_end(t);
  feed(t, &plain, NULL, 0);
  neap__tls_shutdown(t);
done:
  neap__tls_free(t);
  neap__buf_free(&plain);
  return 0;
}
