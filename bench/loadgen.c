/* SPDX-License-Identifier: MIT */
/*
** loadgen: the load generator of neap's benchmarks (C on libuv, one thread).
** Talks only to 127.0.0.1. Every byte received is checked against what was
** sent; a mismatch ends the run with "VERIFY FAIL" and exit status 2.
**
**   loadgen wait    PORT [SECS]                 wait until PORT accepts
**   loadgen echo    PORT CONNS DEPTH SIZE WARMUP SECS
**       CONNS connections, each with DEPTH lines of SIZE bytes (the newline
**       included) in flight; counts echoed lines during SECS after WARMUP.
**       DEPTH 1 is request/response.
**   loadgen kv      PORT CONNS DEPTH WARMUP SECS [SERVERPID]
**       key-value requests, pipelined as echo: request k of a connection
**       is "SET c<conn>k<n> <10 digits>" (k even) or "GET" of the key
**       just set (k odd), whose reply must be the value; "OK" for a SET.
**       Keys cycle over 1,000 per connection (no two connections share
**       one). Replies are 3 and 11 bytes; every byte is checked.
**   loadgen churn   PORT PARALLEL SIZE WARMUP SECS
**       PARALLEL clients, each looping: connect, one line, read it, close.
**   loadgen idle    PORT COUNT SERVERPID [SETTLE_MS]
**       opens COUNT connections (200 connecting at a time), one line echoed
**       on each (so each server connection is parked on its next read),
**       waits SETTLE_MS (1000), then reads the server's RSS; then every
**       connection sends one more line and checks its echo.
**   loadgen genlines FILE MIB SEED
**       writes about MIB MiB of lines of mixed length; prints lines and bytes.
**   loadgen tlsecho PORT CONNS DEPTH SIZE WARMUP SECS [SERVERPID]
**       echo over TLS: each connection does the client handshake first; the
**       warm-up starts when every handshake is done; then the same
**       pipelining and checks as echo.
**   loadgen handshakes PORT COUNT PARALLEL SIZE RESUME [SERVERPID]
**       COUNT TLS connections, PARALLEL at a time, each: connect, full
**       handshake, one line of SIZE bytes echoed and checked, close_notify,
**       close. One untimed connection comes first; with RESUME 1 its session
**       is kept and every timed connection resumes it (counted: resumed=).
**   total= counts every line echoed in the whole run (warm-up and drain
**   included), for per-line costs measured on the server (callgrind).
**   With SERVERPID, the server's CPU time (user + system, /proc) during the
**   measurement is reported too: srv_cpu= (the share of one CPU it used) and
**   per_cpu_s= (lines or handshakes per second of the server's CPU time),
**   which tells the server's cost even when the load generator is the
**   slower side.
**
** TLS is OpenSSL on memory BIOs under libuv, the client side only; the
** server's certificate is not verified (its cost would land on the load
** generator's CPU, not the server's). TLS 1.2 at least, OpenSSL's defaults
** otherwise (TLS 1.3, X25519, AES-128-GCM or whatever the server picks).
**
** Output: one line "RESULT key=value ..." on stdout.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define HOST "127.0.0.1"
#define PAT_SIZE 65536
#define PAT_MASK (PAT_SIZE - 1)

static char pattern[PAT_SIZE * 2];   /* printable, no newline; doubled for wrap */
static uv_loop_t *loop;
static struct sockaddr_in addr;
static int port;

static void die (const char *what, int err) {
  fprintf(stderr, "loadgen: %s: %s\n", what, err ? uv_strerror(err) : "failed");
  exit(1);
}

static void verify_fail (const char *fmt, long a, long b) {
  printf("VERIFY FAIL ");
  printf(fmt, a, b);
  printf("\n");
  fflush(stdout);
  exit(2);
}

static void make_pattern (void) {
  uint32_t x = 12345;
  for (int i = 0; i < PAT_SIZE; i++) {
    x = x * 1103515245u + 12345u;
    pattern[i] = (char)(33 + (x >> 16) % 94);
  }
  memcpy(pattern + PAT_SIZE, pattern, PAT_SIZE);
}

/* Where line number 'k' of connection 'c' starts in the pattern. */
static inline size_t line_off (uint64_t c, uint64_t k) {
  return (size_t)((c * 7919u + k * 131u) & PAT_MASK);
}

/* ------------------------------------------------------------ latency */

/* 1 us buckets up to 100 ms, then 1 ms buckets up to 100 s. */
#define FINE 100000
#define COARSE 100000
static uint64_t hist[FINE + COARSE + 1];
static uint64_t hist_n;

static void hist_add (uint64_t ns) {
  uint64_t us = ns / 1000;
  size_t b;
  if (us < FINE) b = (size_t)us;
  else if (us / 1000 < COARSE) b = FINE + (size_t)(us / 1000);
  else b = FINE + COARSE;
  hist[b]++;
  hist_n++;
}

static double hist_pct (double p) {   /* microseconds */
  uint64_t want = (uint64_t)(p * (double)hist_n), seen = 0;
  if (hist_n == 0) return 0;
  if (want >= hist_n) want = hist_n - 1;
  for (size_t b = 0; b <= FINE + COARSE; b++) {
    seen += hist[b];
    if (seen > want) return b < FINE ? (double)b + 0.5 : (double)(b - FINE) * 1000.0 + 500.0;
  }
  return 0;
}

/* ------------------------------------------------------------ writes */

typedef struct { uv_write_t req; uv_buf_t buf; } wreq;

static void on_written (uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static int send_bytes (uv_stream_t *s, const char *data, size_t len) {
  wreq *w = malloc(sizeof *w + len);
  if (!w) die("malloc", 0);
  memcpy((char *)(w + 1), data, len);
  w->buf = uv_buf_init((char *)(w + 1), (unsigned)len);
  int r = uv_write(&w->req, s, &w->buf, 1, on_written);
  if (r) free(w);
  return r;
}

/* ------------------------------------------------------------ server CPU */

static int srv_pid;                /* 0: not measured */
static long srv_ticks0, srv_ticks1;

static long cpu_ticks (int pid) {  /* utime + stime, in clock ticks */
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');   /* the name may hold spaces */
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (long)(ut + st);
}

static void srv_mark (long *t) {
  if (srv_pid && (*t = cpu_ticks(srv_pid)) < 0) die("cannot read the server's CPU time", 0);
}

/* " srv_cpu=... per_cpu_s=..." for 'count' things in 'secs', or "" */
static const char *srv_result (double count, double secs) {
  static char out[128];
  if (!srv_pid) return "";
  double cpu = (double)(srv_ticks1 - srv_ticks0) / (double)sysconf(_SC_CLK_TCK);
  snprintf(out, sizeof out, " srv_cpu=%.3f per_cpu_s=%.0f", cpu / secs, cpu > 0 ? count / cpu : 0);
  return out;
}

/* ------------------------------------------------------------ TLS */

static SSL_CTX *tls_ctx;   /* set: the echo connections speak TLS */
static char plain[1 << 16];  /* where SSL_read decrypts to */

static void tls_die (const char *what) {
  unsigned long e = ERR_get_error();
  fprintf(stderr, "loadgen: %s: %s\n", what, e ? ERR_reason_error_string(e) : "failed");
  exit(1);
}

static void tls_init (void) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx) tls_die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
}

static SSL *tls_new (SSL_SESSION *resume) {
  SSL *ssl = SSL_new(tls_ctx);
  if (!ssl) tls_die("SSL_new");
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_connect_state(ssl);
  if (resume) SSL_set_session(ssl, resume);
  return ssl;
}

/* Sends what OpenSSL has written into the output BIO, as one uv_write. */
static void tls_flush (uv_stream_t *s, SSL *ssl) {
  BIO *w = SSL_get_wbio(ssl);
  size_t n = BIO_ctrl_pending(w);
  if (n == 0) return;
  wreq *q = malloc(sizeof *q + n);
  if (!q) die("malloc", 0);
  if (BIO_read(w, (char *)(q + 1), (int)n) != (int)n) die("BIO_read", 0);
  q->buf = uv_buf_init((char *)(q + 1), (unsigned)n);
  int r = uv_write(&q->req, s, &q->buf, 1, on_written);
  if (r) die("write", r);
}

static void tls_feed (SSL *ssl, const char *p, size_t n) {
  if (BIO_write(SSL_get_rbio(ssl), p, (int)n) != (int)n) die("BIO_write", 0);
}

/* Drives the handshake; 1 once it is done, 0 while it wants more. */
static int tls_handshake (uv_stream_t *s, SSL *ssl) {
  int r = SSL_do_handshake(ssl);
  tls_flush(s, ssl);
  if (r == 1) return 1;
  if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) tls_die("handshake");
  return 0;
}

/* Decrypts what is there into 'plain': the number of bytes (0: nothing
   yet), or -1 at the peer's close_notify. */
static int tls_read (SSL *ssl) {
  int r = SSL_read(ssl, plain, (int)sizeof plain);
  if (r > 0) return r;
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return -1;
  tls_die("read");
  return -1;
}

/* ------------------------------------------------------------ echo */

typedef struct conn {
  uv_tcp_t h;
  uv_connect_t creq;
  uint64_t id;
  uint64_t sent, recvd;     /* lines */
  size_t rx;                /* bytes of the current expected line seen */
  uint64_t *ts;             /* send times, ring of depth */
  int closing;
  SSL *ssl;                 /* TLS: the connection's engine */
  int ready;                /* TLS: the handshake is done */
  char rbuf[65536];
} conn;

static int e_conns, e_depth, e_size;
static conn *conns;
static int measuring, stopping;
static uint64_t m_lines0, m_lines1, total_lines, t_start, t_end;
static uint64_t n_connected;
static char *sendbuf;

static int kv_mode;   /* the echo machinery speaks the key-value protocol */
static size_t kv_req (uint64_t c, uint64_t k, char *out);

static void e_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  conn *c = h->data;
  *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void e_send (conn *c, int n, uint64_t now) {
  size_t len = 0;
  if (kv_mode) {
    for (int i = 0; i < n; i++) {
      len += kv_req(c->id, c->sent, sendbuf + len);
      c->ts[c->sent % (uint64_t)e_depth] = now;
      c->sent++;
    }
    int r = send_bytes((uv_stream_t *)&c->h, sendbuf, len);
    if (r) die("write", r);
    return;
  }
  for (int i = 0; i < n; i++) {
    size_t off = line_off(c->id, c->sent);
    memcpy(sendbuf + len, pattern + off, (size_t)e_size - 1);
    sendbuf[len + (size_t)e_size - 1] = '\n';
    len += (size_t)e_size;
    c->ts[c->sent % (uint64_t)e_depth] = now;
    c->sent++;
  }
  if (c->ssl) {
    if (SSL_write(c->ssl, sendbuf, (int)len) != (int)len) tls_die("write");
    tls_flush((uv_stream_t *)&c->h, c->ssl);
    return;
  }
  int r = send_bytes((uv_stream_t *)&c->h, sendbuf, len);
  if (r) die("write", r);
}

static int e_closed;
static uv_timer_t phase_timer, hard_timer;

static void e_handle_closed (uv_handle_t *h) {
  conn *c = h->data;
  if (c->ssl) SSL_free(c->ssl);
  c->ssl = NULL;
  if (++e_closed == e_conns) {
    uv_close((uv_handle_t *)&phase_timer, NULL);
    uv_close((uv_handle_t *)&hard_timer, NULL);
  }
}

static void e_shut (uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

/* After the measurement: once every line sent has come back, shut down the
   writing side; the server then sees EOF and closes, and we close at EOF. */
static void e_drain (conn *c) {
  if (c->closing || c->recvd != c->sent) return;
  c->closing = 1;
  if (c->ssl) {   /* close_notify, then the TCP write side */
    SSL_shutdown(c->ssl);
    tls_flush((uv_stream_t *)&c->h, c->ssl);
  }
  uv_shutdown_t *req = malloc(sizeof *req);
  if (uv_shutdown(req, (uv_stream_t *)&c->h, e_shut) != 0) {
    free(req);
    uv_close((uv_handle_t *)&c->h, e_handle_closed);
  }
}

static int e_consume (conn *c, const char *p, size_t left, uint64_t now);
static void e_phase (uv_timer_t *t);

/* ------------------------------------------------------------ key-value */


static unsigned long long kv_val (uint64_t c, uint64_t k) {   /* the value of SET number k */
  return (unsigned long long)((c * 2654435761u + k * 40503u + 12345u) % 10000000000ull);
}

/* Writes 'v' in decimal at 'out' with at least 'width' digits; its length. */
static size_t put_num (char *out, unsigned long long v, int width) {
  char tmp[24];
  int n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n < width) tmp[n++] = '0';
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return (size_t)n;
}

/* Request k of connection c, written at 'out'; its length. */
static size_t kv_req (uint64_t c, uint64_t k, char *out) {
  size_t n = 0;
  memcpy(out, k % 2 == 0 ? "SET c" : "GET c", 5);
  n = 5;
  n += put_num(out + n, c, 1);
  out[n++] = 'k';
  n += put_num(out + n, k / 2 % 1000, 1);
  if (k % 2 == 0) {
    out[n++] = ' ';
    n += put_num(out + n, kv_val(c, k), 10);
  }
  out[n++] = '\n';
  return n;
}

/* The reply to request k of connection c, at 'out'; its length. */
static size_t kv_reply (uint64_t c, uint64_t k, char *out) {
  size_t n;
  if (k % 2 == 0) { memcpy(out, "OK\n", 3); return 3; }
  n = put_num(out, kv_val(c, k - 1), 10);
  out[n++] = '\n';
  return n;
}

static int kv_consume (conn *c, const char *p, size_t left, uint64_t now) {
  int done = 0;
  char exp[32];
  size_t el = kv_reply(c->id, c->recvd, exp);
  while (left > 0) {
    if (c->recvd >= c->sent) verify_fail("connection %ld: %ld bytes nobody asked for", (long)c->id, (long)left);
    size_t need = el - c->rx, m = left < need ? left : need;
    if (memcmp(p, exp + c->rx, m) != 0)
      verify_fail("connection %ld: reply %ld differs", (long)c->id, (long)c->recvd);
    c->rx += m; p += m; left -= m;
    if (c->rx == el) {
      if (measuring == 1) hist_add(now - c->ts[c->recvd % (uint64_t)e_depth]);
      c->recvd++; c->rx = 0; done++; total_lines++;
      el = kv_reply(c->id, c->recvd, exp);
    }
  }
  return done;
}
static double e_warm, e_secs;

static void e_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n < 0) {
    if (stopping && n == UV_EOF && c->recvd == c->sent) {
      uv_close((uv_handle_t *)&c->h, e_handle_closed);
      return;
    }
    fprintf(stderr, "loadgen: connection %lu: %s after %lu of %lu lines\n", (unsigned long)c->id,
            uv_strerror((int)n), (unsigned long)c->recvd, (unsigned long)c->sent);
    exit(1);
  }
  uint64_t now = uv_hrtime();
  int done = 0;
  if (kv_mode) done = kv_consume(c, b->base, (size_t)n, now);
  else if (!c->ssl) done = e_consume(c, b->base, (size_t)n, now);
  else {
    tls_feed(c->ssl, b->base, (size_t)n);
    if (!c->ready) {
      if (!tls_handshake(s, c->ssl)) return;
      c->ready = 1;
      if (++n_connected == (uint64_t)e_conns)   /* the warm-up starts now */
        uv_timer_start(&phase_timer, e_phase, (uint64_t)(e_warm * 1000), 0);
      e_send(c, e_depth, now);
    }
    int k;
    while ((k = tls_read(c->ssl)) > 0) done += e_consume(c, plain, (size_t)k, now);
  }
  if (stopping) e_drain(c);
  else if (done) e_send(c, done, now);
}

/* Checks 'n' echoed bytes; the number of lines they completed. */
static int e_consume (conn *c, const char *p, size_t left, uint64_t now) {
  int done = 0;
  while (left > 0) {
    if (c->recvd >= c->sent) verify_fail("connection %ld: %ld bytes nobody sent", (long)c->id, (long)left);
    size_t need = (size_t)e_size - c->rx, m = left < need ? left : need;
    size_t off = line_off(c->id, c->recvd) + c->rx;
    size_t body = c->rx < (size_t)e_size - 1 ? (size_t)e_size - 1 - c->rx : 0;
    if (body > m) body = m;
    if (body && memcmp(p, pattern + off, body) != 0)
      verify_fail("connection %ld: line %ld differs", (long)c->id, (long)c->recvd);
    if (m > body && p[body] != '\n')
      verify_fail("connection %ld: line %ld has no newline", (long)c->id, (long)c->recvd);
    c->rx += m; p += m; left -= m;
    if (c->rx == (size_t)e_size) {
      if (measuring == 1) hist_add(now - c->ts[c->recvd % (uint64_t)e_depth]);
      c->recvd++; c->rx = 0; done++; total_lines++;
    }
  }
  return done;
}

static void e_connected (uv_connect_t *req, int status) {
  conn *c = req->data;
  if (status) die("connect", status);
  uv_tcp_nodelay(&c->h, 1);
  if (stopping) die("connecting took longer than the whole run", 0);
  int r = uv_read_start((uv_stream_t *)&c->h, e_alloc, e_read);
  if (r) die("read_start", r);
  if (tls_ctx) {   /* the lines go once the handshake is done */
    c->ssl = tls_new(NULL);
    if (tls_handshake((uv_stream_t *)&c->h, c->ssl)) die("handshake done without the server", 0);
    return;
  }
  n_connected++;
  e_send(c, e_depth, uv_hrtime());
}

static void e_phase (uv_timer_t *t) {
  if (measuring == 0) {
    measuring = 1;
    m_lines0 = total_lines;
    srv_mark(&srv_ticks0);
    t_start = uv_hrtime();
    uv_timer_start(t, e_phase, (uint64_t)(e_secs * 1000), 0);
  }
  else {
    measuring = 2;
    m_lines1 = total_lines;
    t_end = uv_hrtime();
    srv_mark(&srv_ticks1);
    stopping = 1;
    for (int i = 0; i < e_conns; i++) e_drain(&conns[i]);
  }
}

static void hard_stop (uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "loadgen: hard time limit reached\n");
  exit(1);
}

static int cmd_echo (int argc, char **argv) {
  if (argc < 8) return 1;
  e_conns = atoi(argv[3]); e_depth = atoi(argv[4]); e_size = atoi(argv[5]);
  e_warm = atof(argv[6]); e_secs = atof(argv[7]);
  srv_pid = argc > 8 ? atoi(argv[8]) : 0;
  if (e_conns < 1 || e_depth < 1 || e_size < 2 || e_secs <= 0) return 1;
  conns = calloc((size_t)e_conns, sizeof *conns);
  sendbuf = malloc((size_t)e_depth * (size_t)(e_size > 64 ? e_size : 64));
  for (int i = 0; i < e_conns; i++) {
    conn *c = &conns[i];
    c->id = (uint64_t)i;
    c->ts = calloc((size_t)e_depth, sizeof *c->ts);
    uv_tcp_init(loop, &c->h);
    c->h.data = c; c->creq.data = c;
    int r = uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&addr, e_connected);
    if (r) die("connect", r);
  }
  uv_timer_init(loop, &phase_timer);
  uv_timer_init(loop, &hard_timer);
  if (!tls_ctx)   /* TLS: once every handshake is done */
    uv_timer_start(&phase_timer, e_phase, (uint64_t)(e_warm * 1000), 0);
  uv_timer_start(&hard_timer, hard_stop, (uint64_t)((e_warm + e_secs) * 1000) + 30000, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  if (measuring != 2) die("the run did not finish", 0);
  double secs = (double)(t_end - t_start) / 1e9;
  double lines = (double)(m_lines1 - m_lines0);
  printf("RESULT msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f lines=%.0f secs=%.3f total=%llu%s\n",
         lines / secs, lines * e_size / secs / 1e6, hist_pct(0.5), hist_pct(0.99), lines, secs,
         (unsigned long long)total_lines, srv_result(lines, secs));
  return 0;
}

/* ------------------------------------------------------------ churn */

typedef struct client {
  uv_tcp_t h;
  uv_connect_t creq;
  uint64_t n;           /* cycles done by this client */
  uint64_t t0;
  size_t rx;
  int id;
  char rbuf[4096];
} client;

static int c_par, c_size;
static client *clients;
static uint64_t c_done, c_m0, c_m1;
static void c_start (client *c);

static void c_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  client *c = h->data;
  *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static int c_finished;
static void c_closed (uv_handle_t *h) {
  client *c = h->data;
  if (!stopping) c_start(c);
  else if (++c_finished == c_par) {
    uv_close((uv_handle_t *)&phase_timer, NULL);
    uv_close((uv_handle_t *)&hard_timer, NULL);
  }
}

static void c_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client *c = s->data;
  if (n < 0) {
    fprintf(stderr, "loadgen: churn client %d: %s\n", c->id, uv_strerror((int)n));
    exit(1);
  }
  size_t off = line_off((uint64_t)c->id, c->n);
  for (ssize_t i = 0; i < n; i++) {
    char want = c->rx == (size_t)c_size - 1 ? '\n' : pattern[off + c->rx];
    if (c->rx >= (size_t)c_size || b->base[i] != want)
      verify_fail("churn client %ld: cycle %ld differs", (long)c->id, (long)c->n);
    c->rx++;
  }
  if (c->rx == (size_t)c_size) {
    if (measuring == 1) hist_add(uv_hrtime() - c->t0);
    c->n++; c_done++;
    uv_close((uv_handle_t *)&c->h, c_closed);
  }
}

static void c_connected (uv_connect_t *req, int status) {
  client *c = req->data;
  if (status) die("churn connect", status);
  uv_tcp_nodelay(&c->h, 1);
  char line[4096];
  memcpy(line, pattern + line_off((uint64_t)c->id, c->n), (size_t)c_size - 1);
  line[c_size - 1] = '\n';
  int r = send_bytes((uv_stream_t *)&c->h, line, (size_t)c_size);
  if (r) die("churn write", r);
  r = uv_read_start((uv_stream_t *)&c->h, c_alloc, c_read);
  if (r) die("churn read_start", r);
}

static void c_start (client *c) {
  c->rx = 0;
  c->t0 = uv_hrtime();
  uv_tcp_init(loop, &c->h);
  c->h.data = c; c->creq.data = c;
  int r = uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&addr, c_connected);
  if (r) die("churn connect", r);
}

static void c_phase (uv_timer_t *t) {
  if (measuring == 0) {
    measuring = 1; c_m0 = c_done; t_start = uv_hrtime();
    uv_timer_start(t, c_phase, (uint64_t)(e_secs * 1000), 0);
  }
  else {
    measuring = 2; c_m1 = c_done; t_end = uv_hrtime(); stopping = 1;
    /* each client ends the cycle it is in; the last one closes the timers */
  }
}

static int cmd_churn (int argc, char **argv) {
  if (argc < 7) return 1;
  c_par = atoi(argv[3]); c_size = atoi(argv[4]); e_warm = atof(argv[5]); e_secs = atof(argv[6]);
  if (c_par < 1 || c_size < 2 || c_size > 4096) return 1;
  clients = calloc((size_t)c_par, sizeof *clients);
  for (int i = 0; i < c_par; i++) { clients[i].id = i; c_start(&clients[i]); }
  uv_timer_init(loop, &phase_timer);
  uv_timer_init(loop, &hard_timer);
  uv_timer_start(&phase_timer, c_phase, (uint64_t)(e_warm * 1000), 0);
  uv_timer_start(&hard_timer, hard_stop, (uint64_t)((e_warm + e_secs) * 1000) + 30000, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  if (measuring != 2) die("the run did not finish", 0);
  double secs = (double)(t_end - t_start) / 1e9;
  double n = (double)(c_m1 - c_m0);
  printf("RESULT conns_per_s=%.0f p50_us=%.0f p99_us=%.0f conns=%.0f secs=%.3f\n",
         n / secs, hist_pct(0.5), hist_pct(0.99), n, secs);
  return 0;
}

/* ------------------------------------------------------------ handshakes */

typedef struct hs {
  uv_tcp_t h;
  uv_connect_t creq;
  SSL *ssl;
  uint64_t id, t0;
  size_t rx;
  int ready;
  char rbuf[16384];
} hs;

static int h_count, h_par, h_size, h_resume;
static int h_started, h_done, h_resumed, h_finished;
static int h_priming = 1;       /* the untimed first connection */
static SSL_SESSION *h_session;  /* RESUME: the first connection's session */
static hs *hss;
static void h_start (hs *c);

static void h_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  hs *c = h->data;
  *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void h_closed (uv_handle_t *h) {
  hs *c = h->data;
  SSL_free(c->ssl);
  c->ssl = NULL;
  if (h_priming) {   /* the timed part starts: PARALLEL connections at once */
    h_priming = 0;
    srv_mark(&srv_ticks0);
    t_start = uv_hrtime();
    for (int i = 0; i < h_par; i++) h_start(&hss[i]);
  }
  else if (h_started < h_count) h_start(c);
  else if (++h_finished == h_par || h_finished == h_count) {
    t_end = uv_hrtime();
    srv_mark(&srv_ticks1);
    uv_close((uv_handle_t *)&hard_timer, NULL);
  }
}

static void h_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  hs *c = s->data;
  if (n < 0) {
    fprintf(stderr, "loadgen: handshake connection %lu: %s\n", (unsigned long)c->id, uv_strerror((int)n));
    exit(1);
  }
  tls_feed(c->ssl, b->base, (size_t)n);
  if (!c->ready) {
    if (!tls_handshake(s, c->ssl)) return;
    c->ready = 1;
    if (!h_priming && SSL_session_reused(c->ssl)) h_resumed++;
    char line[4096];
    memcpy(line, pattern + line_off(c->id, 0), (size_t)h_size - 1);
    line[h_size - 1] = '\n';
    if (SSL_write(c->ssl, line, h_size) != h_size) tls_die("write");
    tls_flush(s, c->ssl);
  }
  int k;
  while ((k = tls_read(c->ssl)) > 0) {
    size_t off = line_off(c->id, 0);
    for (int i = 0; i < k; i++) {
      char want = c->rx == (size_t)h_size - 1 ? '\n' : pattern[off + c->rx];
      if (c->rx >= (size_t)h_size || plain[i] != want)
        verify_fail("handshake connection %ld: byte %ld differs", (long)c->id, (long)c->rx);
      c->rx++;
    }
  }
  if (k < 0) verify_fail("handshake connection %ld: close_notify after %ld bytes", (long)c->id, (long)c->rx);
  if (c->rx < (size_t)h_size) return;
  if (h_priming) {
    h_session = SSL_get1_session(c->ssl);
    if (h_resume && (!h_session || !SSL_SESSION_is_resumable(h_session))) {
      fprintf(stderr, "loadgen: the server gave no session to resume (no session ticket)\n");
      exit(1);
    }
  }
  else {
    hist_add(uv_hrtime() - c->t0);
    h_done++;
  }
  SSL_shutdown(c->ssl);   /* close_notify goes out before the close */
  tls_flush(s, c->ssl);
  uv_read_stop(s);
  uv_close((uv_handle_t *)&c->h, h_closed);
}

static void h_connected (uv_connect_t *req, int status) {
  hs *c = req->data;
  if (status) {
    fprintf(stderr, "loadgen: handshake connect %lu: %s\n", (unsigned long)c->id, uv_strerror(status));
    exit(1);
  }
  uv_tcp_nodelay(&c->h, 1);
  c->ssl = tls_new(h_resume && !h_priming ? h_session : NULL);
  int r = uv_read_start((uv_stream_t *)&c->h, h_alloc, h_read);
  if (r) die("handshake read_start", r);
  if (tls_handshake((uv_stream_t *)&c->h, c->ssl)) die("handshake done without the server", 0);
}

static void h_start (hs *c) {
  c->id = (uint64_t)h_started++;
  c->rx = 0;
  c->ready = 0;
  c->t0 = uv_hrtime();
  uv_tcp_init(loop, &c->h);
  c->h.data = c; c->creq.data = c;
  int r = uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&addr, h_connected);
  if (r) die("handshake connect", r);
}

static int cmd_handshakes (int argc, char **argv) {
  if (argc < 7) return 1;
  h_count = atoi(argv[3]); h_par = atoi(argv[4]); h_size = atoi(argv[5]); h_resume = atoi(argv[6]);
  srv_pid = argc > 7 ? atoi(argv[7]) : 0;
  if (h_count < 1 || h_par < 1 || h_size < 2 || h_size > 4096) return 1;
  if (h_par > h_count) h_par = h_count;
  tls_init();
  hss = calloc((size_t)h_par, sizeof *hss);
  uv_timer_init(loop, &hard_timer);
  uv_timer_start(&hard_timer, hard_stop, 120000, 0);
  h_start(&hss[0]);
  h_started = 0;   /* the priming connection is not one of the COUNT */
  uv_run(loop, UV_RUN_DEFAULT);
  if (h_done != h_count) die("not every handshake was done", 0);
  double secs = (double)(t_end - t_start) / 1e9;
  printf("RESULT hs_per_s=%.0f p50_us=%.0f p99_us=%.0f handshakes=%d resumed=%d secs=%.3f%s\n",
         h_count / secs, hist_pct(0.5), hist_pct(0.99), h_done, h_resumed, secs, srv_result(h_count, secs));
  return 0;
}

/* ------------------------------------------------------------ idle */

static int i_count, i_started, i_ready, i_pending;
static client *idles;
static int i_pid;
#define I_SIZE 16
#define I_PARALLEL 200

static long rss_kib (int pid) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) { kib = atol(line + 6); break; }
  fclose(f);
  return kib;
}

static void i_next (void);

static int i_echoed;   /* connections whose second line came back (at the end) */

static void i_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client *c = s->data;
  if (n < 0) {
    if (stopping) return;
    fprintf(stderr, "loadgen: idle connection %d: %s\n", c->id, uv_strerror((int)n));
    exit(1);
  }
  size_t off = line_off((uint64_t)c->id, c->n);
  for (ssize_t i = 0; i < n; i++) {
    char want = c->rx == I_SIZE - 1 ? '\n' : pattern[off + c->rx];
    if (c->rx >= I_SIZE || b->base[i] != want)
      verify_fail("idle connection %ld: echo %ld differs", (long)c->id, (long)c->n);
    c->rx++;
  }
  if (c->rx == I_SIZE) {
    uv_read_stop(s);
    if (c->n > 0) {   /* the line sent at the end */
      if (++i_echoed == i_count) uv_stop(loop);
      return;
    }
    i_ready++; i_pending--;
    if (i_ready == i_count) uv_stop(loop);
    else i_next();
  }
}

/* Sends client c its line number c->n and reads the echo. */
static void i_send (client *c) {
  char line[I_SIZE];
  memcpy(line, pattern + line_off((uint64_t)c->id, c->n), I_SIZE - 1);
  line[I_SIZE - 1] = '\n';
  c->rx = 0;
  int r = send_bytes((uv_stream_t *)&c->h, line, I_SIZE);
  if (r) die("idle write", r);
  r = uv_read_start((uv_stream_t *)&c->h, c_alloc, i_read);
  if (r) die("idle read_start", r);
}

static void i_connected (uv_connect_t *req, int status) {
  client *c = req->data;
  if (status) {
    fprintf(stderr, "loadgen: idle connect %d of %d: %s\n", c->id, i_count, uv_strerror(status));
    exit(1);
  }
  c->n = 0;
  i_send(c);
}

static void i_next (void) {
  while (i_started < i_count && i_pending < I_PARALLEL) {
    client *c = &idles[i_started];
    c->id = i_started++;
    i_pending++;
    uv_tcp_init(loop, &c->h);
    c->h.data = c; c->creq.data = c;
    int r = uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&addr, i_connected);
    if (r) die("idle connect", r);
  }
}

static void sleep_ms (int ms) {
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static int cmd_idle (int argc, char **argv) {
  if (argc < 5) return 1;
  i_count = atoi(argv[3]); i_pid = atoi(argv[4]);
  int settle_ms = argc > 5 ? atoi(argv[5]) : 1000;
  if (i_count < 1) return 1;
  long before = rss_kib(i_pid);
  if (before < 0) die("no such server process", 0);
  idles = calloc((size_t)i_count, sizeof *idles);
  uv_timer_init(loop, &hard_timer);
  uv_timer_start(&hard_timer, hard_stop, 120000, 0);
  uint64_t t0 = uv_hrtime();
  i_next();
  uv_run(loop, UV_RUN_DEFAULT);
  double setup = (double)(uv_hrtime() - t0) / 1e9;
  if (i_ready != i_count) die("not every connection was echoed", 0);
  sleep_ms(settle_ms);   /* let the server settle */
  long after = rss_kib(i_pid);
  /* then every connection echoes one more line: all of them still work */
  for (int i = 0; i < i_count; i++) {
    idles[i].n = 1;
    i_send(&idles[i]);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (i_echoed != i_count) die("not every connection echoed its line at the end", 0);
  printf("RESULT bytes_per_conn=%.0f rss_before_mib=%.1f rss_after_mib=%.1f conns=%d setup_s=%.2f echoed_end=%d\n",
         (double)(after - before) * 1024.0 / i_count, before / 1024.0, after / 1024.0, i_count, setup, i_echoed);
  fflush(stdout);
  stopping = 1;
  return 0;   /* exiting closes every connection */
}

/* ------------------------------------------------------------ wait */

static int w_ok;
static void w_connected (uv_connect_t *req, int status) {
  w_ok = status == 0;
  uv_close((uv_handle_t *)req->handle, NULL);
}

static int cmd_wait (int argc, char **argv) {
  double secs = argc > 3 ? atof(argv[3]) : 10;
  uint64_t deadline = uv_hrtime() + (uint64_t)(secs * 1e9);
  while (uv_hrtime() < deadline) {
    uv_tcp_t h;
    uv_connect_t req;
    w_ok = 0;
    uv_tcp_init(loop, &h);
    if (uv_tcp_connect(&req, &h, (struct sockaddr *)&addr, w_connected) == 0)
      uv_run(loop, UV_RUN_DEFAULT);
    else
      uv_close((uv_handle_t *)&h, NULL), uv_run(loop, UV_RUN_DEFAULT);
    if (w_ok) return 0;
    sleep_ms(20);
  }
  fprintf(stderr, "loadgen: nothing listens on port %d\n", port);
  return 1;
}

/* ------------------------------------------------------------ genlines */

static int cmd_genlines (int argc, char **argv) {
  if (argc < 5) return 1;
  const char *path = argv[2];
  uint64_t want = (uint64_t)atol(argv[3]) << 20, bytes = 0, lines = 0, body = 0;
  uint32_t x = (uint32_t)atol(argv[4]) * 2654435761u + 1;
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); return 1; }
  static char buf[1 << 16];
  while (bytes < want) {
    x = x * 1103515245u + 12345u;
    uint32_t r = (x >> 8) % 100, len;
    x = x * 1103515245u + 12345u;
    if (r < 70) len = (x >> 8) % 81;            /* most lines short */
    else if (r < 95) len = 80 + (x >> 8) % 321; /* some longer */
    else len = 400 + (x >> 8) % 3601;           /* a few long */
    fwrite(pattern + ((x >> 4) & PAT_MASK), 1, len, f);
    fputc('\n', f);
    bytes += len + 1; body += len; lines++;
  }
  (void)buf;
  if (fclose(f) != 0) { perror(path); return 1; }
  printf("lines=%llu bytes=%llu\n", (unsigned long long)lines, (unsigned long long)body);
  return 0;
}

int main (int argc, char **argv) {
  int bad = 1;
  if (argc < 3) goto usage;
  setvbuf(stdout, NULL, _IOLBF, 0);
  make_pattern();
  if (strcmp(argv[1], "genlines") == 0) return cmd_genlines(argc, argv);
  loop = uv_default_loop();
  port = atoi(argv[2]);
  uv_ip4_addr(HOST, port, &addr);
  if (strcmp(argv[1], "wait") == 0) return cmd_wait(argc, argv);
  if (strcmp(argv[1], "echo") == 0) bad = cmd_echo(argc, argv);
  else if (strcmp(argv[1], "tlsecho") == 0) { tls_init(); bad = cmd_echo(argc, argv); }
  else if (strcmp(argv[1], "kv") == 0 && argc >= 7) {
    /* as echo with SIZE 16 (the size only sizes buffers and MB/s) */
    char *av[10] = { argv[0], argv[1], argv[2], argv[3], argv[4], "16", argv[5], argv[6],
                     argc > 7 ? argv[7] : NULL, NULL };
    kv_mode = 1;
    bad = cmd_echo(argc + 1, av);
  }
  else if (strcmp(argv[1], "handshakes") == 0) bad = cmd_handshakes(argc, argv);
  else if (strcmp(argv[1], "churn") == 0) bad = cmd_churn(argc, argv);
  else if (strcmp(argv[1], "idle") == 0) bad = cmd_idle(argc, argv);
  if (!bad) return 0;
usage:
  fprintf(stderr, "usage: loadgen wait PORT [SECS] | echo PORT CONNS DEPTH SIZE WARMUP SECS |\n"
                  "       churn PORT PARALLEL SIZE WARMUP SECS | idle PORT COUNT SERVERPID [SETTLE_MS] |\n"
                  "       genlines FILE MIB SEED | tlsecho PORT CONNS DEPTH SIZE WARMUP SECS [SERVERPID] |\n"
                  "       handshakes PORT COUNT PARALLEL SIZE RESUME [SERVERPID] |\n"
                  "       kv PORT CONNS DEPTH WARMUP SECS [SERVERPID]\n");
  return 1;
}
