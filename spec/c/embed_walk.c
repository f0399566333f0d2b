/* SPDX-License-Identifier: MIT */
/*
** Issue 18.14: an embedder that closes every handle of its loop with
** uv_walk before neap_free (as libuv programs do before uv_loop_close) hit
** libuv's assertion "uv_close: !uv__is_closing(handle)" in neap's teardown.
** Usage: embed_walk script.lua -> "closed: yes" and status 0. The script
** calls stop() when it has set up what it wants open.
*/
#include <stdio.h>
#include <uv.h>
#include <lua.h>

#include "neap.h"

static uv_loop_t loop;

static void stop_cb (uv_timer_t *t) {
  uv_stop(t->loop);
}

static int l_stop (lua_State *L) {
  (void)L;
  uv_stop(&loop);
  return 0;
}

static void close_walk (uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main (int argc, char **argv) {
  uv_timer_t stop;
  neap_host *host;
  int r;
  if (argc < 2) return 2;
  uv_loop_init(&loop);
  host = neap_new(&loop);
  lua_register(neap_lua(host), "stop", l_stop);
  if (neap_dofile(host, argv[1], argc - 1, argv + 1) != 0) {
    fprintf(stderr, "embed_walk: %s\n", neap_error(host));
    return 1;
  }
  uv_timer_init(&loop, &stop);
  uv_timer_start(&stop, stop_cb, 20000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);      /* the script runs until it calls stop() */
  uv_walk(&loop, close_walk, NULL);   /* close everything, neap's handles too */
  uv_run(&loop, UV_RUN_NOWAIT);
  neap_free(host);
  uv_run(&loop, UV_RUN_DEFAULT);
  r = uv_loop_close(&loop);
  printf("closed: %s\n", r == 0 ? "yes" : "no");
  return r == 0 ? 0 : 1;
}
