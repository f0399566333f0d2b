/* SPDX-License-Identifier: MIT */
/*
** c_tls_echo: the ceiling for the TLS benchmarks, a line echo server over
** TLS written by hand in C on libuv and OpenSSL: c_tls_echo PORT CERT KEY.
** OpenSSL works on memory BIOs (it never sees the socket): a read's
** ciphertext goes into the connection's input BIO, SSL_read decrypts into
** one shared buffer (after the partial line the connection carried over,
** if any); every complete line is found (memchr, line by line, as c_echo
** does) and all complete lines of one read callback go back in one
** SSL_write; the records, with any handshake messages and session tickets,
** leave in one uv_write. Reading pauses while more than 1 MiB waits to be
** written. Session tickets are OpenSSL's defaults (stateless, so a client
** can resume a session more than once).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define HIGH_WATER (1 << 20)
#define LOW_WATER (256 << 10)
#define PLAIN_SIZE (256 << 10)

typedef struct {
  uv_tcp_t h;
  SSL *ssl;
  char *carry;          /* a partial line carried to the next read */
  size_t len, cap;
  int paused, closing;
} conn;

typedef struct { uv_write_t req; uv_buf_t b; conn *c; } wreq;

static uv_loop_t *loop;
static SSL_CTX *ctx;
static char cipher[64 << 10];    /* reads land here */
static char plain[PLAIN_SIZE];   /* SSL_read decrypts here */

static void on_close (uv_handle_t *h) {
  conn *c = h->data;
  SSL_free(c->ssl);
  free(c->carry);
  free(c);
}

static void conn_close (conn *c) {
  if (c->closing) return;
  c->closing = 1;
  ERR_clear_error();
  uv_close((uv_handle_t *)&c->h, on_close);
}

static void on_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)h; (void)sug;
  *b = uv_buf_init(cipher, sizeof cipher);
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_written (uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  conn *c = w->c;
  free(w);
  if (status || c->closing) return;
  if (c->paused && c->h.write_queue_size < LOW_WATER) {
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
  }
}

/* Sends what OpenSSL wrote into the output BIO as one uv_write. */
static int flush (conn *c) {
  BIO *wb = SSL_get_wbio(c->ssl);
  size_t n = BIO_ctrl_pending(wb);
  if (n == 0) return 0;
  wreq *w = malloc(sizeof *w + n);
  if (!w || BIO_read(wb, w + 1, (int)n) != (int)n) { free(w); return -1; }
  w->b = uv_buf_init((char *)(w + 1), (unsigned)n);
  w->c = c;
  if (uv_write(&w->req, (uv_stream_t *)&c->h, &w->b, 1, on_written) != 0) { free(w); return -1; }
  return 0;
}

/* Echoes the complete lines of plain[0, len) in one SSL_write; keeps the
   rest in the connection's carry buffer. 0, or -1 on failure. */
static int echo_lines (conn *c, size_t len) {
  size_t pos = 0, end = 0;
  char *nl;
  while ((nl = memchr(plain + pos, '\n', len - pos)) != NULL) {
    pos = (size_t)(nl - plain) + 1;
    end = pos;
  }
  if (end > 0 && SSL_write(c->ssl, plain, (int)end) != (int)end) return -1;
  size_t rest = len - end;
  if (rest > c->cap) {
    c->cap = rest * 2;
    c->carry = realloc(c->carry, c->cap);
  }
  memcpy(c->carry, plain + end, rest);
  c->len = rest;
  return 0;
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n <= 0) {
    if (n < 0) conn_close(c);
    return;
  }
  if (BIO_write(SSL_get_rbio(c->ssl), b->base, (int)n) != (int)n) { conn_close(c); return; }
  /* decrypt all there is; the partial line of last time first */
  size_t len = c->len;
  memcpy(plain, c->carry, len);
  int eof = 0;
  for (;;) {
    if (len == sizeof plain) {
      if (echo_lines(c, len) != 0) { conn_close(c); return; }
      len = c->len;
      if (len == sizeof plain) { conn_close(c); return; }   /* a line longer than the buffer */
      memcpy(plain, c->carry, len);
    }
    int r = SSL_read(c->ssl, plain + len, (int)(sizeof plain - len));
    if (r > 0) { len += (size_t)r; continue; }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) { eof = 1; break; }
    flush(c);   /* a failure's alert */
    conn_close(c);
    return;
  }
  if (len > c->len && echo_lines(c, len) != 0) { conn_close(c); return; }
  if (eof) SSL_shutdown(c->ssl);   /* close_notify back */
  if (flush(c) != 0 || eof) { conn_close(c); return; }
  if (s->write_queue_size > HIGH_WATER && !c->paused) {
    c->paused = 1;
    uv_read_stop(s);
  }
}

static void on_conn (uv_stream_t *srv, int status) {
  if (status) return;
  conn *c = calloc(1, sizeof *c);
  uv_tcp_init(loop, &c->h);
  c->h.data = c;
  c->ssl = SSL_new(ctx);
  if (uv_accept(srv, (uv_stream_t *)&c->h) != 0 || !c->ssl) {
    conn_close(c);
    return;
  }
  SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(c->ssl);
  uv_tcp_nodelay(&c->h, 1);
  uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
}

int main (int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: c_tls_echo PORT CERT KEY\n"); return 1; }
  ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    unsigned long e = ERR_get_error();
    fprintf(stderr, "c_tls_echo: %s\n", e ? ERR_reason_error_string(e) : "cannot make the context");
    return 1;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
  uv_tcp_init(loop, &srv);
  int r = uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
  if (!r) r = uv_listen((uv_stream_t *)&srv, 511, on_conn);
  if (r) { fprintf(stderr, "c_tls_echo: %s\n", uv_strerror(r)); return 1; }
  return uv_run(loop, UV_RUN_DEFAULT);
}
