/* SPDX-License-Identifier: MIT */
/*
** Embedding neap: this program runs its own libuv loop with a timer of its
** own, hosts a Lua script that serves TCP on the same loop, and posts
** events to the script from a second thread. Usage: embed script.lua
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "neap.h"

static neap_host *host;
static int ticks;

/* A C function the script can call: embed.ticks() */
static int l_ticks (lua_State *L) {
  lua_pushinteger(L, ticks);
  return 1;
}

static void on_tick (uv_timer_t *t) {
  if (++ticks == 3) uv_timer_stop(t);
}

static void poster (void *arg) {
  int i;
  char msg[32];
  (void)arg;
  for (i = 1; i <= 3; i++) {
    snprintf(msg, sizeof msg, "message %d", i);
    neap_post(host, "note", msg, strlen(msg));
    uv_sleep(20);
  }
  neap_post(host, "quit", "", 0);
}

int main (int argc, char **argv) {
  uv_loop_t loop;
  uv_timer_t timer;
  uv_thread_t thread;
  lua_State *L;
  int status;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua\n", argv[0]);
    return 2;
  }
  uv_loop_init(&loop);
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_tick, 10, 10);

  host = neap_new(&loop);                   /* neap's handles live on our loop */
  L = neap_lua(host);
  lua_newtable(L);
  lua_pushcfunction(L, l_ticks);
  lua_setfield(L, -2, "ticks");
  lua_setglobal(L, "embed");
  if (neap_dofile(host, argv[1], argc - 1, argv + 1) != 0) {
    fprintf(stderr, "embed: %s\n", neap_error(host));
    neap_free(host);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  uv_thread_create(&thread, poster, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);             /* our loop, running neap too */
  uv_thread_join(&thread);
  status = neap_error(host) ? 1 : 0;
  if (status) fprintf(stderr, "embed: script failed: %s\n", neap_error(host));
  neap_free(host);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("C: loop closed: %s\n", uv_loop_close(&loop) == 0 ? "yes" : "no");
  return status;
}
