/* SPDX-License-Identifier: MIT */
/*
** c_spawn: the ceiling for process spawning, by hand in C on libuv:
**   c_spawn N INFLIGHT [HOLD_MIB]
** runs /bin/true N times with INFLIGHT children at once (uv_spawn, stdio to
** /dev/null, exit callback starts the next). With HOLD_MIB, first allocates
** and touches that much memory, to show what a big parent costs a spawn.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static int total, started, done, fails;
static char *argv_true[] = {"/bin/true", NULL};

static void start_one (void);

static void on_close (uv_handle_t *h) { free(h); }

static void on_exit_cb (uv_process_t *p, int64_t status, int sig) {
  if (status != 0 || sig != 0) fails++;
  done++;
  uv_close((uv_handle_t *)p, on_close);
  if (started < total) start_one();
}

static void start_one (void) {
  uv_process_t *p = malloc(sizeof *p);
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = argv_true[0];
  o.args = argv_true;
  o.exit_cb = on_exit_cb;
  o.stdio_count = 0;   /* every descriptor to /dev/null */
  started++;
  int r = uv_spawn(loop, p, &o);
  if (r) { fprintf(stderr, "c_spawn: %s\n", uv_strerror(r)); exit(1); }
}

int main (int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: c_spawn N INFLIGHT [HOLD_MIB]\n"); return 1; }
  total = atoi(argv[1]);
  int inflight = atoi(argv[2]);
  size_t hold = argc > 3 ? (size_t)atol(argv[3]) << 20 : 0;
  char *mem = NULL;
  if (hold) {
    mem = malloc(hold);
    if (!mem) { fprintf(stderr, "c_spawn: no memory\n"); return 1; }
    for (size_t i = 0; i < hold; i += 4096) mem[i] = (char)i;
  }
  loop = uv_default_loop();
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < inflight && started < total; i++) start_one();
  uv_run(loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("RESULT spawns_per_s=%.0f spawns=%d fails=%d secs=%.3f\n", done / secs, done, fails, secs);
  if (mem) mem[1] = 1;
  return fails != 0 || done != total;
}
