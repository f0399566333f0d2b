/* SPDX-License-Identifier: MIT */
/*
** c_pipe: the ceiling for pipe throughput, by hand in C on libuv:
**   c_pipe BYTES CMD [ARG...]
** spawns CMD (cat) with piped stdin and stdout, writes BYTES of a fixed
** 64 KiB pattern in 64 KiB writes (at most 1 MiB queued), reads everything
** back and compares each byte with the pattern.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BLOCK 65536
static char block[BLOCK * 2];
static uv_loop_t *loop;
static uv_pipe_t in, out;
static uv_process_t proc;
static uint64_t total, sent, got;
static int queued, bad, closed_in;
static char rbuf[BLOCK];

static void pump (void);

static void on_written (uv_write_t *req, int status) {
  free(req);
  queued--;
  if (status) { fprintf(stderr, "c_pipe: write: %s\n", uv_strerror(status)); exit(1); }
  pump();
}

static void pump (void) {
  while (sent < total && queued < 16) {
    size_t n = total - sent < BLOCK ? (size_t)(total - sent) : BLOCK;
    uv_write_t *req = malloc(sizeof *req);
    uv_buf_t b = uv_buf_init(block, (unsigned)n);
    if (uv_write(req, (uv_stream_t *)&in, &b, 1, on_written)) { fprintf(stderr, "c_pipe: write failed\n"); exit(1); }
    sent += n;
    queued++;
  }
  if (sent == total && queued == 0 && !closed_in) {
    closed_in = 1;
    uv_close((uv_handle_t *)&in, NULL);
  }
}

static void on_alloc (uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h; (void)s;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0) { uv_close((uv_handle_t *)s, NULL); return; }
  size_t o = (size_t)(got % BLOCK);
  if (memcmp(b->base, block + o, (size_t)n) != 0) bad = 1;
  got += (uint64_t)n;
}

static void on_exit_cb (uv_process_t *p, int64_t status, int sig) {
  (void)status; (void)sig;
  uv_close((uv_handle_t *)p, NULL);
}

int main (int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: c_pipe BYTES CMD [ARG...]\n"); return 1; }
  total = (uint64_t)strtoull(argv[1], NULL, 10);
  for (int i = 0; i < BLOCK; i++) block[i] = (char)((i * 31 + 7) % 251);
  memcpy(block + BLOCK, block, BLOCK);
  loop = uv_default_loop();
  uv_pipe_init(loop, &in, 0);
  uv_pipe_init(loop, &out, 0);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE; stdio[0].data.stream = (uv_stream_t *)&in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE; stdio[1].data.stream = (uv_stream_t *)&out;
  stdio[2].flags = UV_INHERIT_FD; stdio[2].data.fd = 2;
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = argv[2]; o.args = argv + 2; o.exit_cb = on_exit_cb;
  o.stdio = stdio; o.stdio_count = 3;
  uint64_t t0 = uv_hrtime();
  int r = uv_spawn(loop, &proc, &o);
  if (r) { fprintf(stderr, "c_pipe: spawn: %s\n", uv_strerror(r)); return 1; }
  uv_read_start((uv_stream_t *)&out, on_alloc, on_read);
  pump();
  uv_run(loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  int ok = got == total && !bad;
  printf("RESULT mb_per_s=%.1f bytes=%llu verified=%s secs=%.3f\n", (double)got / secs / 1e6,
         (unsigned long long)got, ok ? "yes" : "NO", secs);
  return !ok;
}
