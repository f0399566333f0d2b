/* SPDX-License-Identifier: MIT */
/*
** wsload: the WebSocket load generator of neap's benchmarks (C on libuv,
** one thread, 127.0.0.1 only).
**
**   wsload PORT CONNS DEPTH SIZE WARMUP SECS [SERVERPID]
**       CONNS connections, each upgraded with a GET / (RFC 6455 handshake,
**       the accept key checked), then DEPTH text messages of SIZE bytes in
**       flight, each sent as one masked frame (a nonzero key: servers skip
**       nothing); every echoed message is checked byte for byte against
**       what was sent. Counts echoed messages during SECS after WARMUP;
**       with SERVERPID, the server's CPU time too (srv_cpu=, per_cpu_s=),
**       and the share of the time it was ready to run but waited for a CPU
**       (srv_wait=, from /proc/PID/schedstat; 0 where there is none): a low
**       srv_cpu with a high srv_wait is a shared machine, not a stall.
**
** Output: one line "RESULT key=value ..." on stdout; a mismatch prints
** "VERIFY FAIL ..." and exits 2.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define PAT_SIZE 65536
#define PAT_MASK (PAT_SIZE - 1)
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const unsigned char mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };
static char pattern[PAT_SIZE * 2];
static unsigned char masked[PAT_SIZE * 2];   /* pattern ^ the key: frames are copied, not masked */
static uv_loop_t *loop;
static struct sockaddr_in addr;

static void die (const char *what, int err) {
  fprintf(stderr, "wsload: %s: %s\n", what, err ? uv_strerror(err) : "failed");
  exit(1);
}

static void verify_fail (const char *what, long a, long b) {
  printf("VERIFY FAIL %s (connection %ld, message %ld)\n", what, a, b);
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
  for (int i = 0; i < PAT_SIZE * 2; i++) masked[i] = (unsigned char)pattern[i] ^ mask_key[i & 3];
}

static inline size_t msg_off (uint64_t c, uint64_t k) {
  return (size_t)((c * 7919u + k * 131u) & PAT_MASK & ~(uint64_t)3);   /* (a multiple of 4: see 'masked') */
}

/* ------------------------------------------------------------ latency */

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

static double hist_pct (double p) {
  uint64_t want = (uint64_t)(p * (double)hist_n), seen = 0;
  if (hist_n == 0) return 0;
  if (want >= hist_n) want = hist_n - 1;
  for (size_t b = 0; b <= FINE + COARSE; b++) {
    seen += hist[b];
    if (seen > want) return b < FINE ? (double)b + 0.5 : (double)(b - FINE) * 1000.0 + 500.0;
  }
  return 0;
}

/* ------------------------------------------------------------ server CPU */

static int srv_pid;
static long srv_ticks0, srv_ticks1;
static double srv_wait0, srv_wait1;

/* The server's time waiting on a run queue, in seconds (0 if unknown). */
static double run_delay (int pid) {
  char path[64];
  unsigned long long run, wait;
  double d = 0;
  snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (fscanf(f, "%llu %llu", &run, &wait) == 2) d = (double)wait / 1e9;
  fclose(f);
  return d;
}

static long cpu_ticks (int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (long)(ut + st);
}

static void srv_mark (long *t) {
  if (srv_pid && (*t = cpu_ticks(srv_pid)) < 0) die("cannot read the server's CPU time", 0);
}

/* ------------------------------------------------------------ connections */

typedef struct conn {
  uv_tcp_t h;
  uv_connect_t creq;
  uint64_t id, sent, recvd;
  uint64_t *ts;
  int upgraded, closing;
  char head[1024];          /* the 101 response, while it comes */
  size_t hlen;
  unsigned char hb[10];     /* a frame header being read */
  size_t hgot, hneed;
  size_t plen, pgot;        /* the payload being read */
  char rbuf[65536];
} conn;

typedef struct { uv_write_t req; uv_buf_t buf; } wreq;

static int n_conns, depth, size;
static conn *conns;
static int measuring, stopping, closed;
static uint64_t total, m0, m1, t_start, t_end, n_upgraded;
static uv_timer_t phase_timer, hard_timer;
static double warm, secs;

static void on_written (uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void write_buf (conn *c, wreq *w, size_t len) {
  w->buf = uv_buf_init((char *)(w + 1), (unsigned)len);
  int r = uv_write(&w->req, (uv_stream_t *)&c->h, &w->buf, 1, on_written);
  if (r) die("write", r);
}

/* n masked text frames of SIZE bytes, as one write */
static void send_msgs (conn *c, int n, uint64_t now) {
  size_t h = size < 126 ? 6 : 8, one = h + (size_t)size;
  wreq *w = malloc(sizeof *w + one * (size_t)n);
  if (!w) die("malloc", 0);
  unsigned char *p = (unsigned char *)(w + 1);
  for (int i = 0; i < n; i++) {
    const unsigned char *src = masked + msg_off(c->id, c->sent);
    p[0] = 0x81;
    if (size < 126) p[1] = (unsigned char)(0x80 | size);
    else { p[1] = 0x80 | 126; p[2] = (unsigned char)(size >> 8); p[3] = (unsigned char)size; }
    memcpy(p + h - 4, mask_key, 4);
    memcpy(p + h, src, (size_t)size);
    p += one;
    c->ts[c->sent % (uint64_t)depth] = now;
    c->sent++;
  }
  write_buf(c, w, one * (size_t)n);
}

static void on_closed (uv_handle_t *h) {
  (void)h;
  if (++closed == n_conns) {
    uv_close((uv_handle_t *)&phase_timer, NULL);
    uv_close((uv_handle_t *)&hard_timer, NULL);
  }
}

/* After the measurement, once every message has come back: a close frame
   (1000), then the connection closes. */
static void drain (conn *c) {
  if (c->closing || c->recvd != c->sent) return;
  c->closing = 1;
  wreq *w = malloc(sizeof *w + 8);
  unsigned char *p = (unsigned char *)(w + 1);
  p[0] = 0x88; p[1] = 0x82;
  memcpy(p + 2, mask_key, 4);
  p[6] = 0x03 ^ mask_key[0]; p[7] = 0xE8 ^ mask_key[1];
  write_buf(c, w, 8);
  uv_close((uv_handle_t *)&c->h, on_closed);
}

static void phase (uv_timer_t *t) {
  if (measuring == 0) {
    measuring = 1;
    m0 = total;
    srv_mark(&srv_ticks0);
    if (srv_pid) srv_wait0 = run_delay(srv_pid);
    t_start = uv_hrtime();
    uv_timer_start(t, phase, (uint64_t)(secs * 1000), 0);
  }
  else {
    measuring = 2;
    m1 = total;
    t_end = uv_hrtime();
    srv_mark(&srv_ticks1);
    if (srv_pid) srv_wait1 = run_delay(srv_pid);
    stopping = 1;
    for (int i = 0; i < n_conns; i++) drain(&conns[i]);
  }
}

/* Checks echoed frames; the number of messages they completed. */
static int consume (conn *c, const unsigned char *p, size_t left, uint64_t now) {
  int done = 0;
  while (left > 0) {
    if (c->hgot < c->hneed) {   /* the header */
      c->hb[c->hgot++] = *p++;
      left--;
      if (c->hgot == 2) {
        if (c->hb[0] != 0x81) verify_fail("not a whole text frame", (long)c->id, (long)c->recvd);
        if (c->hb[1] & 0x80) verify_fail("a masked frame from the server", (long)c->id, (long)c->recvd);
        c->hneed = (c->hb[1] & 0x7F) == 126 ? 4 : (c->hb[1] & 0x7F) == 127 ? 10 : 2;
      }
      if (c->hgot == c->hneed) {
        size_t n = c->hb[1] & 0x7F;
        if (n == 126) n = (size_t)c->hb[2] << 8 | c->hb[3];
        else if (n == 127) verify_fail("a 64-bit length", (long)c->id, (long)c->recvd);
        if (n != (size_t)size) verify_fail("a message of another size", (long)c->id, (long)c->recvd);
        if (c->recvd >= c->sent) verify_fail("a message nobody sent", (long)c->id, (long)c->recvd);
        c->plen = n;
        c->pgot = 0;
      }
      else continue;
      if (c->plen > 0) continue;
    }
    size_t m = c->plen - c->pgot;
    if (m > left) m = left;
    if (m && memcmp(p, pattern + msg_off(c->id, c->recvd) + c->pgot, m) != 0)
      verify_fail("an echoed message differs", (long)c->id, (long)c->recvd);
    c->pgot += m; p += m; left -= m;
    if (c->pgot == c->plen) {
      if (measuring == 1) hist_add(now - c->ts[c->recvd % (uint64_t)depth]);
      c->recvd++;
      total++;
      done++;
      c->hgot = 0;
      c->hneed = 2;
    }
  }
  return done;
}

static void on_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  conn *c = h->data;
  *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  const char *p = b->base;
  size_t left;
  uint64_t now = uv_hrtime();
  if (n < 0) {
    fprintf(stderr, "wsload: connection %lu: %s after %lu of %lu messages\n", (unsigned long)c->id,
            uv_strerror((int)n), (unsigned long)c->recvd, (unsigned long)c->sent);
    exit(1);
  }
  if (c->closing) return;
  left = (size_t)n;
  if (!c->upgraded) {   /* the 101 first */
    char *end;
    size_t take = left < sizeof c->head - 1 - c->hlen ? left : sizeof c->head - 1 - c->hlen;
    memcpy(c->head + c->hlen, p, take);
    c->hlen += take;
    c->head[c->hlen] = 0;
    if ((end = strstr(c->head, "\r\n\r\n")) == NULL) {
      if (c->hlen == sizeof c->head - 1) die("response head too long", 0);
      return;
    }
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0 || strstr(c->head, ACCEPT) == NULL) {
      printf("VERIFY FAIL bad upgrade response: %.60s\n", c->head);
      exit(2);
    }
    size_t used = (size_t)(end + 4 - c->head) - (c->hlen - take);
    p += used;
    left -= used;
    c->upgraded = 1;
    if (++n_upgraded == (uint64_t)n_conns)   /* the warm-up starts now */
      uv_timer_start(&phase_timer, phase, (uint64_t)(warm * 1000), 0);
    send_msgs(c, depth, now);
  }
  int done = consume(c, (const unsigned char *)p, left, now);
  if (stopping) drain(c);
  else if (done) send_msgs(c, done, now);
}

static void on_connected (uv_connect_t *req, int status) {
  conn *c = req->data;
  static const char up[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (status) die("connect", status);
  uv_tcp_nodelay(&c->h, 1);
  int r = uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
  if (r) die("read_start", r);
  wreq *w = malloc(sizeof *w + sizeof up);
  memcpy(w + 1, up, sizeof up - 1);
  write_buf(c, w, sizeof up - 1);
}

static void hard_stop (uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "wsload: hard time limit reached\n");
  exit(1);
}

int main (int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: wsload PORT CONNS DEPTH SIZE WARMUP SECS [SERVERPID]\n");
    return 1;
  }
  n_conns = atoi(argv[2]); depth = atoi(argv[3]); size = atoi(argv[4]);
  warm = atof(argv[5]); secs = atof(argv[6]);
  srv_pid = argc > 7 ? atoi(argv[7]) : 0;
  if (n_conns < 1 || depth < 1 || size < 1 || size > 65535 || secs <= 0) return 1;
  make_pattern();
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
  conns = calloc((size_t)n_conns, sizeof *conns);
  for (int i = 0; i < n_conns; i++) {
    conn *c = &conns[i];
    c->id = (uint64_t)i;
    c->hneed = 2;
    c->ts = calloc((size_t)depth, sizeof *c->ts);
    uv_tcp_init(loop, &c->h);
    c->h.data = c; c->creq.data = c;
    int r = uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&addr, on_connected);
    if (r) die("connect", r);
  }
  uv_timer_init(loop, &phase_timer);
  uv_timer_init(loop, &hard_timer);
  uv_timer_start(&hard_timer, hard_stop, (uint64_t)((warm + secs) * 1000) + 30000, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  if (measuring != 2) die("the run did not finish", 0);
  double s = (double)(t_end - t_start) / 1e9, msgs = (double)(m1 - m0);
  printf("RESULT msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f msgs=%.0f secs=%.3f",
         msgs / s, msgs * size / s / 1e6, hist_pct(0.5), hist_pct(0.99), msgs, s);
  if (srv_pid) {
    double cpu = (double)(srv_ticks1 - srv_ticks0) / (double)sysconf(_SC_CLK_TCK);
    printf(" srv_cpu=%.3f per_cpu_s=%.0f srv_wait=%.3f", cpu / s, cpu > 0 ? msgs / cpu : 0,
           (srv_wait1 - srv_wait0) / s);
  }
  printf("\n");
  return 0;
}
