/* SPDX-License-Identifier: MIT */
/*
** Signals: neap.signal(name, fn) runs fn in a task at each delivery,
** neap.wait_signal parks a task until one arrives. With no neap handler,
** INT and TERM end the process as their default action would, after
** passing the signal on to the children neap spawned (neap_exit_on_signals).
*/
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neapi.h"

#define SIGNAL_MT "neap.signal"


typedef struct neap_signal {
  neap_handle h;
  uv_signal_t sig;
  int signum;
  neap_task *waiter;          /* wait_signal's task, or NULL for a callback */
} neap_signal;

static void signal_vt_close (neap_handle *h) {
  neap_signal *s = (neap_signal *)h;
  if (!(h->flags & NEAP_H_UVCLOSE) && s->signum > 0 && s->signum < 65)
    h->host->sigwatch[s->signum]--;
  neap__handle_uvclose(h, (uv_handle_t *)&s->sig);
}

static const neap_handle_vt signal_vt = {
  SIGNAL_MT, "signal watcher", signal_vt_close, signal_vt_close, NULL
};

static void push_signame (lua_State *L, int sig) {
  const char *n = neap__signal_name(sig);
  if (n) lua_pushstring(L, n);
  else lua_pushinteger(L, sig);
}

static int push_signame_p (lua_State *L, void *ud) {
  push_signame(L, (int)(intptr_t)ud);
  return 1;
}

static void signal_cb (uv_signal_t *us, int signum) {
  neap_signal *s = us->data;
  neap_host *host = s->h.host;
  lua_State *L = host->L;
  if (host->dying) return;
  if (s->waiter) {
    neap_task *t = s->waiter;
    s->waiter = NULL;
    neap__sched_wake_with(t, push_signame_p, (void *)(intptr_t)signum);
    neap__handle_close(&s->h);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->h.cbref);     /* {taskfn, fn} */
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  push_signame(L, signum);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lua_writestringerror("neap: signal: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static neap_signal *signal_new (lua_State *L, int signum) {
  neap_host *host = neap__host(L);
  neap_handle **box = neap__handle_newbox(L, SIGNAL_MT);
  neap_signal *s = calloc(1, sizeof *s);
  int r;
  if (s == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  neap__handle_init(host, &s->h, &signal_vt, box);
  uv_signal_init(host->loop, &s->sig);
  s->sig.data = s;
  s->signum = signum;
  r = uv_signal_start(&s->sig, signal_cb, signum);
  if (r < 0) {
    s->signum = 0;
    neap__handle_close(&s->h);
    lua_pop(L, 1);
    neap__push_error(L, r);
    return NULL;
  }
  if (signum < 65) host->sigwatch[signum]++;
  return s;
}

/* neap.core.signal(sig, fn, taskfn) -> watcher | nil, err, code */
static int signal_watch (lua_State *L) {
  int signum = neap__check_signal(L, 1, "signal");
  neap_signal *s;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  s = signal_new(L, signum);
  if (s == NULL) return 3;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  s->h.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  neap__handle_anchor(L, &s->h, -1);
  return 1;
}

static void wait_unpark (neap_task *t) {
  neap_signal *s = t->parked_on;
  s->waiter = NULL;
  neap__handle_close(&s->h);
}

/* neap.wait_signal(sig, {timeout=}) -> name | nil, "timeout", "timeout" */
static int signal_wait (lua_State *L) {
  int signum = neap__check_signal(L, 1, "wait_signal");
  double timeout = neap__opt_timeout(L, 2, "wait_signal");
  neap_task *t = neap__sched_check(L, "wait_signal");
  neap_signal *s = signal_new(L, signum);
  if (s == NULL) return 3;
  s->waiter = t;
  *s->h.box = NULL;   /* the box goes; the handle lives until it is closed */
  s->h.box = NULL;
  lua_pop(L, 1);
  return neap__sched_park(L, t, timeout, wait_unpark, s);
}

static int signal_stop (lua_State *L) {
  return neap__handle_close_l(L, SIGNAL_MT);
}

/* ====================================================== default INT/TERM */

/*
** What is process-wide, and why: a signal's disposition belongs to the
** process, so the INT/TERM policy of neap_exit_on_signals (these two
** watchers, the handler chained after libuv's, the host it acts for) is
** installed once per process. Everything else lives in its host.
*/
static uv_signal_t default_int, default_term;
static neap_host *volatile policy_host;   /* whose neap_exit_on_signals */

static void default_cb (uv_signal_t *us, int signum) {
  neap_host *h = policy_host;
  (void)us;
  if (h == NULL) return;
  if (signum < 65 && h->sigwatch[signum] > 0) return;   /* a script handles it */
  neap__process_kill_all(h, signum);
  fflush(stdout);
  fflush(stderr);
  uv_signal_stop(&default_int);
  uv_signal_stop(&default_term);
  signal(signum, SIG_DFL);
  raise(signum);
}

/*
** A task that never waits (a busy Lua loop) keeps libuv's loop from ever
** seeing INT or TERM. So, as lua5.4 does for INT, a handler chained after
** libuv's own sets a hook on the running task's thread; at its next
** instruction the hook applies the default policy. The thread is the one
** the scheduler is resuming (neap__sched_running).
*/
static struct sigaction prev_act[2];   /* libuv's handlers for INT, TERM */
static volatile sig_atomic_t busy_sig;

static void busy_hook (lua_State *L, lua_Debug *ar) {
  int sig = busy_sig;
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  busy_sig = 0;
  if (sig > 0) default_cb(NULL, sig);   /* returns if a script handles it */
}

static void chained_handler (int sig) {
  struct sigaction *p = &prev_act[sig == SIGTERM];
  lua_State *co = neap__sched_running;
  if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN)
    p->sa_handler(sig);   /* libuv's: the loop hears of it when it polls */
  if (co != NULL && policy_host != NULL && !(policy_host->sigwatch[sig] > 0)) {
    busy_sig = sig;
    lua_sethook(co, busy_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
}

static void chain (int sig) {
  struct sigaction sa;
  struct sigaction *p = &prev_act[sig == SIGTERM];
  if (sigaction(sig, NULL, p) != 0 || (p->sa_flags & SA_SIGINFO)) return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = chained_handler;
  sa.sa_flags = p->sa_flags;
  sa.sa_mask = p->sa_mask;
  sigaction(sig, &sa, NULL);
}

/* The binary's policy: INT and TERM end the process, children first. */
void neap_exit_on_signals (neap_host *h) {
  uv_signal_init(h->loop, &default_int);
  uv_signal_init(h->loop, &default_term);
  uv_signal_start(&default_int, default_cb, SIGINT);
  uv_signal_start(&default_term, default_cb, SIGTERM);
  uv_unref((uv_handle_t *)&default_int);
  uv_unref((uv_handle_t *)&default_term);
  chain(SIGINT);
  chain(SIGTERM);
  policy_host = h;
  h->default_signals = 1;
}

void neap__signal_free (neap_host *h) {
  if (!h->default_signals) return;
  h->default_signals = 0;
  policy_host = NULL;
  default_int.data = default_term.data = h;
  neap__host_uvclose(h, (uv_handle_t *)&default_int, NULL);
  neap__host_uvclose(h, (uv_handle_t *)&default_term, NULL);
}

int neap__signal_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"stop", signal_stop},
    {"close", signal_stop},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, SIGNAL_MT, meth, NULL);
  lua_pushcfunction(L, signal_watch);
  lua_setfield(L, -2, "signal");
  lua_pushcfunction(L, signal_wait);
  lua_setfield(L, -2, "wait_signal");
  return 0;
}
