/* SPDX-License-Identifier: MIT */
/*
** c_timers: the ceiling for timers, by hand in C on libuv:
**   c_timers N MIN_MS MAX_MS
** starts N one-shot uv_timer_t of random length in [MIN_MS, MAX_MS] ms and
** reports how late each fired (p50, p99, max) and the total time.
*/
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct { uv_timer_t t; uint64_t due; } tm;
static double *late;
static int n, fired;
static uint64_t t_last;

static int cmp (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void on_timer (uv_timer_t *t) {
  tm *m = (tm *)t;
  uint64_t now = uv_hrtime();
  late[fired++] = ((double)now - (double)m->due) / 1e6;
  t_last = now;
  uv_close((uv_handle_t *)t, NULL);
}

int main (int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: c_timers N MIN_MS MAX_MS\n"); return 1; }
  n = atoi(argv[1]);
  double min_ms = atof(argv[2]), max_ms = atof(argv[3]);
  uv_loop_t *loop = uv_default_loop();
  tm *ts = calloc((size_t)n, sizeof *ts);
  late = calloc((size_t)n, sizeof *late);
  srand(1);
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < n; i++) {
    double ms = min_ms + (double)rand() / RAND_MAX * (max_ms - min_ms);
    uv_update_time(loop);   /* the loop's clock is cached; the timer counts from now */
    ts[i].due = uv_hrtime() + (uint64_t)(ms * 1e6);
    uv_timer_init(loop, &ts[i].t);
    uv_timer_start(&ts[i].t, on_timer, (uint64_t)ms, 0);
  }
  double setup = (double)(uv_hrtime() - t0) / 1e9;
  uv_run(loop, UV_RUN_DEFAULT);
  qsort(late, (size_t)fired, sizeof *late, cmp);
  printf("RESULT total_s=%.3f setup_s=%.3f late_p50_ms=%.2f late_p99_ms=%.2f late_min_ms=%.2f late_max_ms=%.2f fired=%d\n",
         (double)(t_last - t0) / 1e9, setup, late[fired / 2], late[(int)(fired * 0.99)], late[0], late[fired - 1], fired);
  return fired != n;
}
