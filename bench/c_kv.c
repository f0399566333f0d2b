/* SPDX-License-Identifier: MIT */
/*
** c_kv: the ceiling for the key-value benchmark, a line protocol server
** written by hand in C on libuv: c_kv PORT.
**   "SET key value\n" -> "OK\n"; "GET key\n" -> "value\n" or "NIL\n".
** The store is one open-addressing hash table (keys and values of at most
** 31 bytes). As c_echo: reads land in one shared buffer, every complete
** line is answered, and all replies of one read go back in one uv_write; a
** partial line is kept per connection. Reading pauses while more than
** 1 MiB waits to be written.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HIGH_WATER (1 << 20)
#define LOW_WATER (256 << 10)
#define SLOTS (1 << 18)
#define MAXLEN 31

typedef struct { unsigned char klen, vlen; char k[MAXLEN], v[MAXLEN]; } slot;
static slot *table;

static uint32_t hash (const char *p, size_t n) {
  uint32_t h = 2166136261u;
  while (n--) h = (h ^ (unsigned char)*p++) * 16777619u;
  return h;
}

static slot *find (const char *k, size_t n) {   /* the key's slot, or the empty one for it */
  uint32_t i = hash(k, n) & (SLOTS - 1);
  while (table[i].klen && (table[i].klen != n || memcmp(table[i].k, k, n) != 0))
    i = (i + 1) & (SLOTS - 1);
  return &table[i];
}

typedef struct {
  uv_tcp_t h;
  char *buf;            /* a partial line carried to the next read */
  size_t len, cap;
  int paused;
} conn;

typedef struct { uv_write_t req; uv_buf_t b; conn *c; } wreq;

static uv_loop_t *loop;
static char shared[256 << 10];

static void on_close (uv_handle_t *h) {
  conn *c = h->data;
  free(c->buf);
  free(c);
}

static void on_alloc (uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  conn *c = h->data;
  if (c->len == 0) { *b = uv_buf_init(shared, sizeof shared); return; }
  if (c->cap - c->len < 65536) {
    c->cap = c->cap * 2 > c->len + 65536 ? c->cap * 2 : c->len + 65536;
    c->buf = realloc(c->buf, c->cap);
  }
  *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_written (uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  conn *c = w->c;
  free(w);
  if (status) return;
  if (c->paused && c->h.write_queue_size < LOW_WATER) {
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
  }
}

/* Appends the reply to one request line to 'out'; returns its length. */
static size_t answer (const char *line, size_t n, char *out) {
  if (n > 4 && memcmp(line, "GET ", 4) == 0) {
    slot *e = find(line + 4, n - 4);
    if (!e->klen) { memcpy(out, "NIL\n", 4); return 4; }
    memcpy(out, e->v, e->vlen);
    out[e->vlen] = '\n';
    return (size_t)e->vlen + 1;
  }
  if (n > 4 && memcmp(line, "SET ", 4) == 0) {
    const char *k = line + 4, *sp = memchr(k, ' ', n - 4);
    size_t kl = sp ? (size_t)(sp - k) : n - 4, vl = sp ? n - 4 - kl - 1 : 0;
    if (kl > 0 && kl <= MAXLEN && vl <= MAXLEN) {
      slot *e = find(k, kl);
      e->klen = (unsigned char)kl;
      memcpy(e->k, k, kl);
      e->vlen = (unsigned char)vl;
      memcpy(e->v, sp ? sp + 1 : "", vl);
      memcpy(out, "OK\n", 3);
      return 3;
    }
  }
  memcpy(out, "ERR\n", 4);
  return 4;
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n <= 0) {
    if (n < 0) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  char *data;
  size_t len, pos = 0, end = 0, scan;
  if (b->base == shared) { data = shared; len = (size_t)n; scan = 0; }
  else { data = c->buf; scan = c->len; c->len += (size_t)n; len = c->len; }
  /* at most one reply (of at most 32 bytes) per 5 bytes of requests */
  wreq *w = malloc(sizeof *w + (len / 5 + 1) * (MAXLEN + 1));
  size_t olen = 0;
  char *out = (char *)(w + 1), *nl;
  while ((nl = memchr(data + scan, '\n', len - scan)) != NULL) {
    size_t e = (size_t)(nl - data);
    olen += answer(data + pos, e - pos, out + olen);
    pos = scan = e + 1;
    end = pos;
  }
  if (olen > 0) {
    w->b = uv_buf_init(out, (unsigned)olen);
    w->c = c;
    if (uv_write(&w->req, s, &w->b, 1, on_written) != 0) {
      free(w);
      uv_close((uv_handle_t *)s, on_close);
      return;
    }
  }
  else free(w);
  size_t rest = len - end;
  if (data == shared) {
    if (rest) {
      if (c->cap < rest + 65536) { c->cap = rest + 65536; c->buf = realloc(c->buf, c->cap); }
      memcpy(c->buf, shared + end, rest);
    }
    c->len = rest;
  }
  else {
    memmove(c->buf, c->buf + end, rest);
    c->len = rest;
  }
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
  if (uv_accept(srv, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, on_close);
    return;
  }
  uv_tcp_nodelay(&c->h, 1);
  uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
}

int main (int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: c_kv PORT\n"); return 1; }
  table = calloc(SLOTS, sizeof *table);
  loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
  uv_tcp_init(loop, &srv);
  int r = uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
  if (!r) r = uv_listen((uv_stream_t *)&srv, 511, on_conn);
  if (r) { fprintf(stderr, "c_kv: %s\n", uv_strerror(r)); return 1; }
  return uv_run(loop, UV_RUN_DEFAULT);
}
