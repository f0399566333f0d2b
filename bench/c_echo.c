/* SPDX-License-Identifier: MIT */
/*
** c_echo: the ceiling for the TCP benchmarks, a line echo server written by
** hand in C on libuv: c_echo PORT.
** Reads land in one shared buffer; every complete line is found (memchr,
** line by line) and all complete lines of one read go back in one uv_write;
** a partial line is kept in a buffer of its connection (allocated the first
** time one is needed) and the next read lands right after it. Reading
** pauses while more than 1 MiB waits to be written.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HIGH_WATER (1 << 20)
#define LOW_WATER (256 << 10)

typedef struct {
  uv_tcp_t h;
  char *buf;            /* a partial line carried to the next read; NULL when none was ever needed */
  size_t len, cap;
  int paused;
} conn;

typedef struct { uv_write_t req; uv_buf_t b; conn *c; } wreq;

static uv_loop_t *loop;
static char shared[256 << 10];   /* reads land here while no partial line waits */

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

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n <= 0) {
    if (n < 0) uv_close((uv_handle_t *)s, on_close);
    return;
  }
  /* the data: either the shared buffer, or the tail of the partial line */
  char *data;
  size_t len, pos;
  if (b->base == shared) { data = shared; len = (size_t)n; pos = 0; }
  else { data = c->buf; pos = c->len; c->len += (size_t)n; len = c->len; }
  /* frame: find each line; 'end' is just past the last complete one */
  size_t end = 0;
  char *nl;
  while ((nl = memchr(data + pos, '\n', len - pos)) != NULL) {
    pos = (size_t)(nl - data) + 1;
    end = pos;
  }
  if (end > 0) {
    wreq *w = malloc(sizeof *w + end);
    memcpy(w + 1, data, end);
    w->b = uv_buf_init((char *)(w + 1), (unsigned)end);
    w->c = c;
    if (uv_write(&w->req, s, &w->b, 1, on_written) != 0) {
      free(w);
      uv_close((uv_handle_t *)s, on_close);
      return;
    }
  }
  /* keep the partial line */
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
  if (argc < 2) { fprintf(stderr, "usage: c_echo PORT\n"); return 1; }
  loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
  uv_tcp_init(loop, &srv);
  int r = uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
  if (!r) r = uv_listen((uv_stream_t *)&srv, 511, on_conn);
  if (r) { fprintf(stderr, "c_echo: %s\n", uv_strerror(r)); return 1; }
  return uv_run(loop, UV_RUN_DEFAULT);
}
