/* SPDX-License-Identifier: MIT */
/*
** c_lines: the ceiling for line framing, by hand in C on libuv: reads its
** stdin (a pipe) and counts the lines and their bytes (newline excluded),
** finding each newline with memchr in a buffer that keeps a partial line.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static char *buf;
static size_t len, cap = 1 << 16;
static unsigned long long lines, bytes;

static void on_alloc (uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h; (void)s;
  if (cap - len < 16384) { cap *= 2; buf = realloc(buf, cap); }
  *b = uv_buf_init(buf + len, (unsigned)(cap - len));
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) {
    if (len > 0) { lines++; bytes += len; len = 0; }   /* unterminated last line */
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  size_t start = 0, scan = len;
  len += (size_t)n;
  char *nl;
  while ((nl = memchr(buf + scan, '\n', len - scan)) != NULL) {
    size_t end = (size_t)(nl - buf);
    lines++; bytes += end - start;
    start = scan = end + 1;
  }
  memmove(buf, buf + start, len - start);
  len -= start;
}

int main (void) {
  uv_loop_t *loop = uv_default_loop();
  uv_pipe_t in;
  buf = malloc(cap);
  uint64_t t0 = uv_hrtime();
  uv_pipe_init(loop, &in, 0);
  if (uv_pipe_open(&in, 0) != 0) { fprintf(stderr, "c_lines: stdin is not a pipe\n"); return 1; }
  uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
  uv_run(loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("RESULT lines_per_s=%.0f mb_per_s=%.1f lines=%llu bytes=%llu secs=%.3f\n",
         lines / secs, (bytes + lines) / secs / 1e6, lines, bytes, secs);
  return 0;
}
