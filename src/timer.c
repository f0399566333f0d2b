/* SPDX-License-Identifier: MIT */
/*
** Timers: neap.timer(seconds, fn, {every=}) calls fn in a task of its own
** after 'seconds' and then every 'every' seconds until stopped. An active
** timer keeps the loop alive and its box reachable.
*/
#include <stdlib.h>

#include "neapi.h"

#define TIMER_MT "neap.timer"

typedef struct neap_timer {
  neap_handle h;
  uv_timer_t timer;
  int repeat;
} neap_timer;

static void timer_vt_close (neap_handle *h) {
  neap__handle_uvclose(h, (uv_handle_t *)&((neap_timer *)h)->timer);
}

static const neap_handle_vt timer_vt = {
  TIMER_MT, "timer", timer_vt_close, timer_vt_close, NULL
};

static void timer_cb (uv_timer_t *t) {
  neap_timer *tm = t->data;
  neap_host *host = tm->h.host;
  lua_State *L = host->L;
  if (host->dying) return;
  /* taskfn(fn, timer): the callback runs as a task */
  lua_rawgeti(L, LUA_REGISTRYINDEX, tm->h.cbref);     /* {task, fn} */
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tm->h.anchor);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lua_writestringerror("neap: timer: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);                                      /* pop {task, fn} */
  if (!tm->repeat) neap__handle_close(&tm->h);
}

/* neap.core.timer(seconds, every, fn, taskfn) -> timer */
static int timer_new (lua_State *L) {
  neap_host *host = neap__host(L);
  double after = luaL_checknumber(L, 1);
  double every = luaL_optnumber(L, 2, 0);
  uint64_t period;
  neap_handle **box;
  neap_timer *tm;
  luaL_argcheck(L, after >= 0, 1, "seconds must be >= 0");
  luaL_argcheck(L, every >= 0, 2, "every must be >= 0");
  period = neap__ms(every);
  if (period == 0 && every > 0) period = 1;   /* under 1 ms: 1 ms, as Node */
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  box = neap__handle_newbox(L, TIMER_MT);
  tm = calloc(1, sizeof *tm);
  if (tm == NULL) return luaL_error(L, "out of memory");
  neap__handle_init(host, &tm->h, &timer_vt, box);
  uv_timer_init(host->loop, &tm->timer);
  tm->timer.data = tm;
  tm->repeat = period > 0;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 4);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 2);
  tm->h.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  neap__handle_anchor(L, &tm->h, -1);
  uv_update_time(host->loop);
  uv_timer_start(&tm->timer, timer_cb, neap__ms(after), period);
  return 1;
}

/* timer:stop() -> true: the timer is stopped for good (and closed) */
static int timer_stop (lua_State *L) {
  return neap__handle_close_l(L, TIMER_MT);
}

static int timer_active (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, TIMER_MT);
  lua_pushboolean(L, *box != NULL);
  return 1;
}

int neap__timer_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"stop", timer_stop},
    {"close", timer_stop},
    {"active", timer_active},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, TIMER_MT, meth, NULL);
  lua_pushcfunction(L, timer_new);
  lua_setfield(L, -2, "timer");
  return 0;
}
