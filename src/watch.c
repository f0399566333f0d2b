/* SPDX-License-Identifier: MIT */
/*
** File watches: neap.watch(path) on libuv's fs events (inotify). Events
** that come while no task waits in w:next() are queued, up to WATCH_QMAX;
** later ones are dropped and counted. A watcher keeps the loop alive only
** while a task waits on it.
*/
#include <stdlib.h>
#include <string.h>

#include "neapi.h"

#define WATCH_MT "neap.watcher"
#define WATCH_QMAX 1024

typedef struct wevent {
  char *name;              /* malloc'd, or NULL when libuv gave none */
  int events;              /* UV_RENAME | UV_CHANGE */
} wevent;

typedef struct neap_watch {
  neap_handle h;
  uv_fs_event_t ev;
  neap_task *waiter;       /* the task in w:next(), or NULL */
  wevent *q;               /* a ring of events nobody has taken yet */
  size_t head, count, cap;
  lua_Integer dropped;     /* events lost to a full queue */
  int err;                 /* a sticky error from libuv, or 0 */
} neap_watch;

/* The end of a watcher: the events nobody took. */
static void watch_vt_release (neap_handle *h) {
  neap_watch *w = (neap_watch *)h;
  while (w->count > 0) {
    free(w->q[w->head].name);
    w->head = (w->head + 1) % w->cap;
    w->count--;
  }
  free(w->q);
}

/* Close: a waiting task wakes with nil, "closed", "ECLOSED" (not during
** teardown, which must not touch Lua); the memory goes in the close callback. */
static void watch_vt_close (neap_handle *h) {
  neap_watch *w = (neap_watch *)h;
  neap_task *t = w->waiter;
  if (h->flags & NEAP_H_UVCLOSE) return;
  w->waiter = NULL;
  if (t != NULL && !h->host->dying) {
    t->parked_on = NULL;
    neap__sched_wake_closed(t);
  }
  neap__handle_uvclose(h, (uv_handle_t *)&w->ev);
}

static const neap_handle_vt watch_vt = {
  WATCH_MT, "watcher", watch_vt_close, watch_vt_close, watch_vt_release
};

/* Pushes the event table { name =, change = }. */
static int push_event (lua_State *L, void *ud) {
  wevent *e = ud;
  lua_createtable(L, 0, 2);
  if (e->name) {
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "name");
  }
  lua_pushstring(L, (e->events & UV_RENAME) ? "rename" : "change");
  lua_setfield(L, -2, "change");
  return 1;
}

static int push_uverr (lua_State *L, void *ud) {
  return neap__push_error(L, *(int *)ud);
}

/* No task waits any more: the watcher no longer keeps the loop alive. */
static void watch_idle (neap_watch *w) {
  w->waiter = NULL;
  uv_unref((uv_handle_t *)&w->ev);
  neap__handle_unanchor(&w->h);
}

static void watch_cb (uv_fs_event_t *ev, const char *filename, int events,
                      int status) {
  neap_watch *w = ev->data;
  wevent e;
  if (w->h.host->dying || (w->h.flags & NEAP_H_CLOSING)) return;
  if (status < 0) {
    if (!w->err) w->err = status;
    if (w->waiter) {
      neap_task *t = w->waiter;
      watch_idle(w);
      t->parked_on = NULL;
      neap__sched_wake_with(t, push_uverr, &w->err);
    }
    return;
  }
  e.events = events;
  e.name = NULL;
  if (filename && (e.name = strdup(filename)) == NULL) {
    w->dropped++;   /* no memory for it */
    return;
  }
  if (w->waiter) {
    neap_task *t = w->waiter;
    watch_idle(w);
    t->parked_on = NULL;
    neap__sched_wake_with(t, push_event, &e);
    free(e.name);
    return;
  }
  if (w->count == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 16, i;
    wevent *nq = ncap <= WATCH_QMAX ? malloc(ncap * sizeof *nq) : NULL;
    if (nq == NULL) {
      free(e.name);
      w->dropped++;
      return;
    }
    for (i = 0; i < w->count; i++) nq[i] = w->q[(w->head + i) % w->cap];
    free(w->q);
    w->q = nq;
    w->head = 0;
    w->cap = ncap;
  }
  w->q[(w->head + w->count) % w->cap] = e;
  w->count++;
}

static int argerr (lua_State *L, int arg, const char *fname, const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* neap.watch(path [, opts]) -> watcher | nil, err, code */
static int watch_new (lua_State *L) {
  neap_host *host = neap__host(L);
  size_t len;
  const char *path;
  neap_handle **box;
  neap_watch *w;
  int r;
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushfstring(L, "path must be a string, got %s", luaL_typename(L, 1));
    argerr(L, 1, "watch", lua_tostring(L, -1));
  }
  path = lua_tolstring(L, 1, &len);
  if (strlen(path) != len) argerr(L, 1, "watch", "path contains a NUL byte");
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2)) {
      lua_pushfstring(L, "options table expected, got %s", luaL_typename(L, 2));
      argerr(L, 2, "watch", lua_tostring(L, -1));
    }
    lua_getfield(L, 2, "recursive");
    if (lua_toboolean(L, -1))
      argerr(L, 2, "watch", "recursive watches are not supported on Linux");
    lua_pop(L, 1);   /* pop recursive */
  }
  lua_settop(L, 1);
  box = neap__handle_newbox(L, WATCH_MT);
  w = calloc(1, sizeof *w);
  if (w == NULL) return luaL_error(L, "out of memory");
  neap__handle_init(host, &w->h, &watch_vt, box);
  uv_fs_event_init(host->loop, &w->ev);
  w->ev.data = w;
  r = uv_fs_event_start(&w->ev, watch_cb, path, 0);
  if (r < 0) {
    neap__handle_close(&w->h);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, uv_strerror(r));
    lua_pushstring(L, uv_err_name(r));
    return 3;
  }
  uv_unref((uv_handle_t *)&w->ev);
  return 1;
}

static void watch_unpark (neap_task *t) {
  neap_watch *w = t->parked_on;
  if (w != NULL && w->waiter == t) watch_idle(w);
}

/* w:next([opts]) -> { name =, change = } | nil, "timeout", "timeout" |
** nil, "closed", "ECLOSED" */
static int watch_next (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, WATCH_MT);
  neap_watch *w = (neap_watch *)*box;
  double timeout = neap__opt_timeout(L, 2, "next");
  neap_task *t;
  if (w == NULL) return neap__push_closed(L);
  if (w->count > 0) {   /* (taken off the queue once its table is made) */
    push_event(L, &w->q[w->head]);
    free(w->q[w->head].name);
    w->head = (w->head + 1) % w->cap;
    w->count--;
    return 1;
  }
  if (w->err) return neap__push_error(L, w->err);
  if (w->waiter)
    return luaL_error(L, "next: another task is already waiting on this watcher");
  t = neap__sched_check(L, "next");
  lua_settop(L, 1);
  w->waiter = t;
  uv_ref((uv_handle_t *)&w->ev);
  neap__handle_anchor(L, &w->h, 1);
  return neap__sched_park(L, t, timeout, watch_unpark, w);
}

/* w:dropped() -> how many events were lost to a full queue */
static int watch_dropped (lua_State *L) {
  neap_watch *w = neap__handle_check(L, 1, WATCH_MT, "watcher");
  lua_pushinteger(L, w->dropped);
  return 1;
}

static int watch_close (lua_State *L) {
  return neap__handle_close_l(L, WATCH_MT);
}

int neap__watch_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"next", watch_next},
    {"dropped", watch_dropped},
    {"close", watch_close},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, WATCH_MT, meth, NULL);
  lua_pushcfunction(L, watch_new);
  lua_setfield(L, -2, "watch");
  return 0;
}
