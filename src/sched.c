/* SPDX-License-Identifier: MIT */
/*
** Tasks: coroutines run by the loop. A wait parks the running task (the
** only lua_yield in neap, tagged with a sentinel so a user's own
** coroutine.yield is never taken for a park); a waker pushes the results on
** the task's stack and queues it; the check phase of each loop turn resumes
** the queued tasks. Timeouts and cancellation wake a task the same way.
*/
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <limits.h>

#include "neapi.h"

#define TASK_MT "neap.task"

static char park_sentinel;   /* the value a parking task yields */

/*
** The task thread being resumed, or NULL: read by the INT/TERM handler
** (signal.c), which sets a hook on it so a task that never waits still
** hears the signal. One per OS thread (a neap.thread's host runs on its
** own, with the signals blocked: the handler runs on another thread).
*/
__thread lua_State *volatile neap__sched_running;

/*
** Anchors. The loop holds C pointers to every unfinished task, so each
** is kept reachable through a slot: an upvalue of one of the "pages", C
** closures of PAGE_SLOTS upvalues each, in an array in the registry. Not a
** table keyed by thread (as before), for Lua 5.4's collector:
** - a new task stored in a table the collector has traversed already
**   makes it traverse that whole table again in its atomic step (a
**   backward barrier); setting an upvalue marks the new value instead (a
**   forward barrier), so no page is traversed twice;
** - the collector reaches the threads in slot order, which follows the
**   order they were made in, so its atomic step, which traverses every
**   thread again and cannot be split, walks the threads mostly in the
**   order of their addresses rather than in a hash table's order (with
**   100,000 parked tasks: 11-15 ms instead of 17-35 ms, see
**   docs/performance.md).
** A task's slot is also in its thread's extra space (lua_getextraspace),
** so the running task is found with no lookup table; a thread that is no
** task (a coroutine made inside one copies the main thread's extra space,
** whatever it holds) is told apart by checking the slot's task runs on it.
*/
#define PAGE_SLOTS 255
static char pages_key;       /* registry: the array of pages */

static int page_fn (lua_State *L) {
  (void)L;
  return 0;
}

/* Pushes the box anchored in 'slot', or nil. */
static void anchor_push (lua_State *L, intptr_t slot) {
  int top = lua_gettop(L);
  if (slot > 0 && slot <= INT_MAX &&
      lua_rawgetp(L, LUA_REGISTRYINDEX, &pages_key) == LUA_TTABLE &&
      lua_rawgeti(L, -1, (lua_Integer)((slot - 1) / PAGE_SLOTS + 1)) == LUA_TFUNCTION &&
      lua_getupvalue(L, -1, (int)((slot - 1) % PAGE_SLOTS + 1)) != NULL) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_settop(L, top);
  lua_pushnil(L);
}

/* Sets 'slot' (whose page exists) to the value on top, which is popped. */
static void anchor_set (lua_State *L, int slot) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pages_key);
  lua_rawgeti(L, -1, (slot - 1) / PAGE_SLOTS + 1);   /* value, pages, page */
  lua_rotate(L, -3, -1);                             /* pages, page, value */
  lua_setupvalue(L, -2, (slot - 1) % PAGE_SLOTS + 1);
  lua_pop(L, 2);
}

/* Anchors the task 't' whose box is on top (not popped); raises on memory. */
static void anchor_task (lua_State *L, neap_host *h, neap_task *t) {
  int slot;
  if (h->tslot_nfree > 0) slot = h->tslot_free[h->tslot_nfree - 1];
  else {
    slot = h->tslot_next + 1;
    if ((slot - 1) % PAGE_SLOTS == 0) {   /* a new page */
      int i;
      luaL_checkstack(L, PAGE_SLOTS + 2, "tasks");
      lua_rawgetp(L, LUA_REGISTRYINDEX, &pages_key);
      for (i = 0; i < PAGE_SLOTS; i++) lua_pushnil(L);
      lua_pushcclosure(L, page_fn, PAGE_SLOTS);
      lua_rawseti(L, -2, (slot - 1) / PAGE_SLOTS + 1);
      lua_pop(L, 1);
    }
  }
  lua_pushvalue(L, -1);
  anchor_set(L, slot);   /* (allocates nothing: cannot fail) */
  h->ntasks++;
  if (h->tslot_nfree > 0) h->tslot_nfree--;
  else h->tslot_next = slot;
  t->slot = slot;
  {
    intptr_t v = slot;
    memcpy(lua_getextraspace(t->co), &v, sizeof v);
  }
}

/* The task 't' is over: its slot goes back for reuse. */
static void anchor_release (lua_State *L, neap_host *h, neap_task *t) {
  intptr_t zero = 0;
  if (t->slot == 0) return;
  h->ntasks--;
  lua_pushnil(L);
  anchor_set(L, t->slot);
  memcpy(lua_getextraspace(t->co), &zero, sizeof zero);
  if (h->tslot_nfree == h->tslot_cap) {
    int ncap = h->tslot_cap ? h->tslot_cap * 2 : 256;
    int *nf = realloc(h->tslot_free, (size_t)ncap * sizeof *nf);
    if (nf == NULL) {   /* the slot is not reused: harmless */
      t->slot = 0;
      return;
    }
    h->tslot_free = nf;
    h->tslot_cap = ncap;
  }
  h->tslot_free[h->tslot_nfree++] = t->slot;
  t->slot = 0;
}

/* ====================================================== names */

/*
** A task's name is not in its struct (most tasks have none): it is its
** box's second user value, which holds, while the task runs, nil, its name
** (a string), a serve task's connection (a stream) or, for a serve task
** with a name, {conn, name = name}; once it is over, its outcome table
** ({values..., n =, name =}) or, when none is kept, its name or nil.
*/
#define NAME_MAX_LEN 47   /* bytes of a name kept (docs/neap.md) */

/* Pushes the name the string at 'idx' gives (cut at a NUL or at
** NAME_MAX_LEN bytes), or nil for an empty one. */
static void name_push (lua_State *L, int idx) {
  size_t len, n;
  const char *s = lua_tolstring(L, idx, &len);
  n = strnlen(s, len < NAME_MAX_LEN ? len : NAME_MAX_LEN);
  if (n == 0) lua_pushnil(L);
  else if (n == len) lua_pushvalue(L, idx);
  else lua_pushlstring(L, s, n);
}

/* Pushes the name of the task 't' whose box is at 'box', or nil. */
static void task_push_name (lua_State *L, int box, neap_task *t) {
  int ty = lua_getiuservalue(L, box, 2);
  (void)t;
  if (ty == LUA_TSTRING) return;
  if (ty == LUA_TTABLE) {
    lua_pushliteral(L, "name");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
}

/* Sets the name of 't' (box at 'box') to the name or nil on top (popped). */
static void task_set_name_v (lua_State *L, int box, neap_task *t) {
  int ty;
  box = lua_absindex(L, box);
  ty = lua_getiuservalue(L, box, 2);        /* name, uv */
  if (ty == LUA_TTABLE) {
    lua_pushliteral(L, "name");
    lua_rotate(L, -3, -1);                  /* uv, "name", name */
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  else if (t->serve && ty == LUA_TUSERDATA) {   /* the connection: {conn, name =} */
    lua_createtable(L, 1, 1);
    lua_rotate(L, -2, 1);                   /* name, t, conn */
    lua_rawseti(L, -2, 1);
    lua_rotate(L, -2, 1);                   /* t, name */
    lua_setfield(L, -2, "name");
    lua_setiuservalue(L, box, 2);
  }
  else {
    lua_pop(L, 1);
    lua_setiuservalue(L, box, 2);
  }
}

/* ====================================================== lookup */

/*
** The task at 'idx' of host 'h', or NULL. A task is told by its size and
** its host pointer, which a userdata given the tasks' metatable
** (debug.setmetatable) or put in place of an anchor does not have: the
** other userdata carry a tag field for this (neap__udata_test), which
** would cost a parked task 8 bytes more (16 with the allocator's rounding,
** and the idle-connection bar is 2 KiB).
*/
static neap_task *task_test (lua_State *L, int idx, neap_host *h) {
  neap_task *t = lua_touserdata(L, idx);
  return t != NULL && lua_rawlen(L, idx) == sizeof *t && t->host == h ? t : NULL;
}

/* The task being resumed (per OS thread): the common answer below. */
static __thread neap_task *running_task;

/* The task whose thread is 'L', or NULL. */
neap_task *neap__sched_current (lua_State *L) {
  intptr_t slot;
  neap_task *t = running_task;
  if (t != NULL && t->co == L) return t;   /* (no lookup) */
  memcpy(&slot, lua_getextraspace(L), sizeof slot);
  if (slot <= 0 || slot > INT_MAX) return NULL;
  anchor_push(L, slot);
  t = lua_touserdata(L, -1);   /* (the anchors can be reached through
                                 debug.getregistry: told by size and thread) */
  if (t != NULL && lua_rawlen(L, -1) != sizeof *t) t = NULL;
  lua_pop(L, 1);
  return (t != NULL && t->co == L) ? t : NULL;
}

/*
** Why the running task 't' cannot park here, or NULL when it can: a
** failing task's <close> handlers run inside lua_resetthread, and C code
** such as a metamethod called by the VM or table.sort's comparator cannot
** be yielded across.
*/
static const char *park_refusal (lua_State *L, neap_task *t) {
  if (lua_isyieldable(L)) return NULL;
  if (t->closing) return "cannot wait while a failing task closes its variables";
  return "cannot wait here (attempt to yield across a C-call boundary)";
}

/* The running task; raises when 'fname' is called outside a task or where
** the task cannot wait. */
neap_task *neap__sched_check (lua_State *L, const char *fname) {
  neap_task *t = neap__sched_current(L);
  const char *why;
  if (t == NULL)
    luaL_error(L, "%s: a wait must run inside a task (neap.task or neap.run)",
               fname);
  else if ((why = park_refusal(L, t)) != NULL)
    luaL_error(L, "%s: %s", fname, why);
  return t;
}

/* ====================================================== ready queue */

void neap__idle_noop (uv_idle_t *idle) {
  (void)idle;
}

void neap__sched_ready (neap_host *h, neap_task *t) {
  if (h->rcount == h->rcap) {
    size_t ncap = h->rcap ? h->rcap * 2 : 64, i;
    neap_task **nq = malloc(ncap * sizeof *nq);
    if (nq == NULL) abort();
    for (i = 0; i < h->rcount; i++)
      nq[i] = h->ready[(h->rhead + i) % h->rcap];
    free(h->ready);
    h->ready = nq;
    h->rhead = 0;
    h->rcap = ncap;
  }
  h->ready[(h->rhead + h->rcount) % h->rcap] = t;
  if (h->rcount++ == 0) uv_idle_start(&h->idle, neap__idle_noop);
}

typedef struct task_timer {
  uv_timer_t timer;    /* first: the uv handle is the struct */
  neap_host *host;
} task_timer;

static void task_timer_closed (uv_handle_t *hd) {
  neap_host *host = ((task_timer *)hd)->host;
  free(hd);
  neap__host_closed(host);
}

static void task_close_timer (neap_task *t) {
  if (t->timer) {
    t->timer->data = NULL;
    neap__host_uvclose_counted(t->host, (uv_handle_t *)t->timer,
                               task_timer_closed);
    t->timer = NULL;
  }
}

/*
** Wakes a parked task whose results were pushed on its stack: 'n' values.
*/
static void task_wake (neap_task *t, int n) {
  if (t->status == NEAP_T_READY) {   /* a fill built now: its values only */
    t->nargs = n;
    return;
  }
  t->nargs = n;
  t->status = NEAP_T_READY;
  t->timed_out_ok = 0;
  t->unpark = NULL;
  t->parked_on = NULL;
  if (t->timer) uv_timer_stop(t->timer);
  neap__sched_ready(t->host, t);
}

void neap__sched_wake (neap_task *t, int n) {
  task_wake(t, n);
}

static char enomem_key;   /* registry: "ENOMEM", kept so pushing it allocates nothing */

typedef struct wake_push {
  neap_push_fn push;
  void *ud;
} wake_push;

static int wake_push_p (lua_State *L) {
  wake_push *wp = lua_touserdata(L, 1);
  lua_pop(L, 1);
  return wp->push(L, wp->ud);
}

/*
** Wakes the parked task 't' with the values 'push(L, ud)' returns, built
** in a protected call on the host's thread and moved to the task's: the
** loop's callbacks have no Lua error handler above them, so an allocation
** that fails there (a large frame under ulimit -v) would abort the process.
** On failure the task wakes with nil, "not enough memory", "ENOMEM" (or
** the error's own text) and the status is returned, so that the caller
** can undo what 'push' was to hand over.
*/
int neap__sched_wake_with (neap_task *t, neap_push_fn push, void *ud) {
  lua_State *L = t->host->L, *co = t->co;
  int top = lua_gettop(L), st = LUA_ERRMEM, n;
  wake_push wp;
  wp.push = push;
  wp.ud = ud;
  if (lua_checkstack(L, 2)) {
    lua_pushcfunction(L, wake_push_p);
    lua_pushlightuserdata(L, &wp);
    st = lua_pcall(L, 1, LUA_MULTRET, 0);
  }
  n = lua_gettop(L) - top;
  if (st == LUA_OK && lua_checkstack(co, n)) {
    lua_xmove(L, co, n);
    task_wake(t, n);
    return LUA_OK;
  }
  if (st == LUA_OK) st = LUA_ERRMEM;
  n = 0;
  if (lua_checkstack(co, 3)) {   /* (strings that exist already: no allocation) */
    lua_pushnil(co);
    if (st == LUA_ERRMEM || lua_type(L, -1) != LUA_TSTRING) {
      lua_pushliteral(co, "not enough memory");
      lua_pushliteral(co, "ENOMEM");
    }
    else {
      lua_pushvalue(L, -1);
      lua_xmove(L, co, 1);
      lua_pushliteral(co, "error");
    }
    n = 3;
  }
  lua_settop(L, top);
  task_wake(t, n);
  return st;
}

static int push_uverr (lua_State *L, void *ud) {
  return neap__push_error(L, (int)(intptr_t)ud);
}

static int push_closed (lua_State *L, void *ud) {
  (void)ud;
  return neap__push_closed(L);
}

/* Wakes 't' with nil, message, code for the libuv error 'uverr'. */
void neap__sched_wake_error (neap_task *t, int uverr) {
  neap__sched_wake_with(t, push_uverr, (void *)(intptr_t)uverr);
}

/* Wakes 't' with nil, "closed", "ECLOSED": what it waited on was closed. */
void neap__sched_wake_closed (neap_task *t) {
  neap__sched_wake_with(t, push_closed, NULL);
}

static void task_timeout (uv_timer_t *tm) {
  neap_task *t = tm->data;
  lua_State *co;
  if (t == NULL || t->status != NEAP_T_PARKED) return;
  co = t->co;
  if (t->unpark) t->unpark(t);
  if (t->timed_out_ok) {   /* sleep */
    lua_pushboolean(co, 1);
    task_wake(t, 1);
  }
  else {
    task_wake(t, neap__push_fail(co, "timeout"));
  }
}

/* Raises the cancellation error in the running task. */
static int park_raise_cancelled (lua_State *L) {
  lua_pushliteral(L, "cancelled");
  return lua_error(L);
}

/*
** The continuation of every park: a cancelled task raises "cancelled"
** where it waited (so it unwinds, running its pcall handlers and <close>
** variables); otherwise the values it was woken with are the results.
*/
static int park_k (lua_State *L, int status, lua_KContext ctx) {
  neap_task *t = (neap_task *)ctx;
  (void)status;
  if (t->cancel_raise) {
    t->cancel_raise = 0;
    t->post_k = NULL;
    return park_raise_cancelled(L);
  }
  if (t->fill) {   /* the results are built here, in the task itself */
    neap_push_fn fill = t->fill;
    t->fill = NULL;
    t->resume_n = fill(L, t->fill_ud);
  }
  if (t->post_k) {   /* the waiting function wants to see the results */
    lua_KFunction k = t->post_k;
    t->post_k = NULL;
    return k(L, LUA_YIELD, (lua_KContext)t->resume_n);
  }
  return t->resume_n;
}

/*
** Wakes the parked task 't' with the values 'fill(L, ud)' will push when it
** resumes, in its own thread (lua_resume protects it, at no cost): the hot
** path of a read. Whoever calls this keeps what 'fill' reads valid until
** then, or calls neap__sched_fill_now first.
*/
void neap__sched_wake_fill (neap_task *t, neap_push_fn fill, void *ud) {
  task_wake(t, 0);
  t->fill = fill;
  t->fill_ud = ud;
}

/* Builds the values of a pending fill now (what it reads is going away). */
void neap__sched_fill_now (neap_task *t) {
  neap_push_fn fill = t->fill;
  if (fill == NULL || t->status != NEAP_T_READY) return;
  t->fill = NULL;
  neap__sched_wake_with(t, fill, t->fill_ud);   /* (sets nargs; queued again) */
}

/* A park that does not happen undoes what its caller registered ('unpark'). */
static void park_undo (neap_task *t, neap_unpark_fn unpark, void *on) {
  t->post_k = NULL;
  t->parked_on = on;
  if (unpark) unpark(t);
  t->parked_on = NULL;
}

/*
** Parks the running task 't' (whose thread is 'L') until a waker pushes
** its results, 'timeout' seconds pass (-1: never) or it is cancelled.
** 'unpark' detaches it from what it waits on when woken by a timeout or a
** cancellation. Use as 'return neap__sched_park(...)': the values the
** task is woken with become the C function's results; a cancellation
** raises the error "cancelled" instead. A task already cancelled raises
** at once.
*/
int neap__sched_park (lua_State *L, neap_task *t, double timeout,
                      neap_unpark_fn unpark, void *on) {
  const char *why = park_refusal(L, t);
  if (why != NULL) {   /* (callers check first) */
    park_undo(t, unpark, on);
    return luaL_error(L, "%s", why);
  }
  if (t->cancelled) {
    park_undo(t, unpark, on);
    return park_raise_cancelled(L);
  }
  if (timeout >= 0 && t->timer == NULL) {
    task_timer *tt = malloc(sizeof *tt);
    if (tt == NULL) {
      park_undo(t, unpark, on);
      return luaL_error(L, "out of memory");
    }
    uv_timer_init(t->host->loop, &tt->timer);
    tt->host = t->host;
    t->timer = &tt->timer;
  }
  t->status = NEAP_T_PARKED;
  t->unpark = unpark;
  t->parked_on = on;
  if (timeout >= 0) {
    t->timer->data = t;
    uv_update_time(t->host->loop);
    uv_timer_start(t->timer, task_timeout, neap__ms(timeout), 0);
  }
  lua_pushlightuserdata(L, &park_sentinel);
  return lua_yieldk(L, 1, (lua_KContext)t, park_k);
}

/* neap__sched_park, then 'post' (with ctx = the number of results) when woken. */
int neap__sched_park_post (lua_State *L, neap_task *t, double timeout,
                           neap_unpark_fn unpark, void *on, lua_KFunction post) {
  t->post_k = post;
  if (t->cancelled) t->post_k = NULL;
  return neap__sched_park(L, t, timeout, unpark, on);
}

/* ====================================================== running */

/*
** Protected (on the host's thread): keeps a finished task's outcome in its
** box's second user value, {values..., n =} or, with 'failed', {err, n = 1,
** traceback = tb}. Stack: task, failed, values... (err, tb when failed).
*/
static int task_store_p (lua_State *L) {
  neap_task *t = lua_touserdata(L, 1);
  int failed = lua_toboolean(L, 2);
  int n = lua_gettop(L) - 2, i;
  lua_pushnil(L);
  anchor_push(L, t->slot);               /* nil, box */
  lua_createtable(L, failed ? 1 : n, 3);
  task_push_name(L, -2, t);
  lua_setfield(L, -2, "name");           /* res.name = its name */
  if (failed) {
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, 1);               /* res[1] = err */
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "traceback");
    n = 1;
  }
  else
    for (i = 1; i <= n; i++) {
      lua_pushvalue(L, 2 + i);
      lua_rawseti(L, -2, i);
    }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, -2, 2);           /* box.uv2 = res */
  return 0;
}

/* The text lua5.4 prints for an error value: a string (or number), its
** __tostring, or "(error object is a X value)". */
static int task_error_text (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg != NULL) return 1;
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

/*
** Protected: the report of a failed task 't' (at 1) whose error value is
** at 2: leaves the message with its traceback. A __tostring that raises is
** reported as lua5.4 does, as the value's type.
*/
static int task_report_p (lua_State *L) {
  neap_task *t = lua_touserdata(L, 1);
  const char *msg;
  lua_pushcfunction(L, task_error_text);
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);                       /* pop what it raised */
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 2));
  }
  msg = lua_tostring(L, -1);
  luaL_traceback(L, t->co, msg, 0);
  return 1;
}

/*
** Runs 'f' with the task 't' and the 'n' values on top of the host
** thread's stack as arguments, protected: a callback of the loop has no
** Lua error handler above it, so an error there (out of memory) would
** abort the process. Returns the status; results are left on the stack.
*/
static int task_pcall (lua_State *L, lua_CFunction f, neap_task *t, int n,
                       int nres) {
  if (!lua_checkstack(L, 2)) {
    lua_pop(L, n);
    return LUA_ERRMEM;
  }
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, t);
  lua_rotate(L, -(n + 2), 2);            /* f, t, values... */
  return lua_pcall(L, n + 1, nres, 0);
}

/* The task is over: unanchored (its box keeps the outcome). */
static void task_forget (neap_host *h, neap_task *t) {
  anchor_release(h->L, h, t);
}

/*
** A serve task has ended: pushes its connection (its box's second user
** value, which is cleared) on the host's thread, or nothing when it has
** none or there is no room. 'L' has a free slot for the box.
*/
static int serve_take_conn (lua_State *L, neap_task *t) {
  if (!t->serve || !lua_checkstack(L, 4)) return 0;
  t->serve = 0;
  anchor_push(L, t->slot);               /* box */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_getiuservalue(L, -1, 2) == LUA_TTABLE) {   /* box, {conn, name =} */
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -2, "name");         /* box, tbl, conn, name */
    lua_setiuservalue(L, -4, 2);         /* its name stays */
    lua_remove(L, -2);
  }
  else {                                 /* box, conn */
    lua_pushnil(L);
    lua_setiuservalue(L, -3, 2);
  }
  lua_remove(L, -2);                     /* conn */
  return 1;
}

/* Closes the connection serve_take_conn pushed (and pops it). */
static void serve_close_conn (lua_State *L) {
  /* (a stream: the user value can be set with debug.setuservalue) */
  neap_handle **box = neap__is_stream(L, -1) ? lua_touserdata(L, -1) : NULL;
  if (box && *box) neap__handle_close(*box);
  lua_pop(L, 1);
}

/* A task returned 'nres' values: keep them for join. */
static void task_finish (neap_host *h, lua_State *co, neap_task *t, int nres) {
  lua_State *L = h->L;
  if (serve_take_conn(L, t)) serve_close_conn(L);   /* conn is closed when fn returns */
  if (nres == 0) t->no_results = 1;   /* (the common case: nothing to keep) */
  else if (lua_checkstack(L, nres + 4)) {
    lua_pushboolean(L, 0);
    lua_xmove(co, L, nres);
    if (task_pcall(L, task_store_p, t, nres + 1, 0) != LUA_OK)
      lua_pop(L, 1);   /* out of memory: join reports ENOMEM */
  }
  task_forget(h, t);
}

/*
** A task raised: report it (unless quiet), keep the error value and its
** traceback for join, and close its to-be-closed variables.
*/
static void task_failed (neap_host *h, neap_task *t) {
  lua_State *L = h->L, *co = t->co;
  int quiet, top = lua_gettop(L), serve = t->serve, conn;
  const char *tb;
  t->status = NEAP_T_FAILED;
  t->by_cancel = t->cancelled && lua_type(co, -1) == LUA_TSTRING &&
                 strcmp(lua_tostring(co, -1), "cancelled") == 0;
  quiet = t->quiet || t->by_cancel;
  if (!lua_checkstack(L, 8)) {           /* not even room to report it */
    lua_settop(co, 0);
    lua_resetthread(co);
    if (serve_take_conn(L, t)) serve_close_conn(L);
    task_forget(h, t);
    return;
  }
  lua_xmove(co, L, 1);                   /* err */
  lua_pushvalue(L, -1);
  if (task_pcall(L, task_report_p, t, 1, 1) != LUA_OK) {
    lua_pop(L, 1);                       /* out of memory */
    lua_pushliteral(L, "not enough memory");
  }
  tb = lua_tostring(L, -1);              /* err, tb */
  if (!quiet) {
    if (t->is_main)
      fprintf(stderr, "neap: %s\n", tb);
    else if (serve)
      fprintf(stderr, "neap: serve handler failed: %s\n", tb);
    else {
      const char *name;
      anchor_push(L, t->slot);           /* err, tb, box */
      task_push_name(L, -1, t);
      name = lua_tostring(L, -1);
      if (name)
        fprintf(stderr, "neap: task '%s' failed: %s\n", name, tb);
      else
        fprintf(stderr, "neap: task failed: %s\n", tb);
      lua_settop(L, top + 2);
    }
    fflush(stderr);
  }
  if (t->is_main) {
    neap__host_set_error(h, tb);
    h->main_failed = 1;
    uv_stop(h->loop);
  }
  conn = serve_take_conn(L, t);          /* err, tb [, conn] */
  lua_pushboolean(L, 1);
  lua_pushvalue(L, top + 1);
  lua_pushvalue(L, top + 2);             /* err, tb [, conn], true, err, tb */
  if (task_pcall(L, task_store_p, t, 3, 0) != LUA_OK)
    lua_pop(L, 1);
  lua_settop(co, 0);
  lua_pushvalue(L, top + 1);
  lua_xmove(L, co, 1);   /* the error stays the error unless a handler raises */
  t->closing = 1;   /* its <close> handlers run now and cannot wait */
  if (lua_resetthread(co) != LUA_OK && lua_gettop(co) > 0) {
    lua_xmove(co, L, 1);                 /* err, tb, the error after closing */
    if (!lua_rawequal(L, -1, top + 1) && !quiet) {   /* a handler raised */
      fprintf(stderr, "neap: and closing its variables raised: %s\n",
              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                             : "(a non-string error)");
      fflush(stderr);
    }
  }
  if (conn) {   /* a serve task's connection: closed after its variables */
    lua_settop(L, top + 3);
    serve_close_conn(L);
  }
  lua_settop(L, top);
  lua_settop(co, 0);
  t->closing = 0;
  task_forget(h, t);
}

static void task_wake_joiners (neap_host *h, neap_task *t);

/* Resumes 't' with the values waiting on its stack. */
static void task_resume (neap_host *h, neap_task *t) {
  lua_State *co = t->co;
  int nres = 0, st;
  int nargs = t->nargs;
  t->nargs = 0;
  h->resumes++;
  if (!t->started) {
    t->started = 1;
    if (t->cancelled) {    /* cancelled before it ever ran */
      lua_settop(co, 0);
      t->status = NEAP_T_DONE;
      task_finish(h, co, t, 0);
      task_wake_joiners(h, t);
      if (t->is_main && h->main_end) h->main_end(h);
      return;
    }
  }
  if (h->gc_stress) lua_gc(h->L, LUA_GCCOLLECT);   /* NEAP_GC_STRESS */
  t->status = NEAP_T_RUNNING;
  t->resume_n = nargs;
  if (h->pre_resume) h->pre_resume(co);
  neap__sched_running = co;   /* INT/TERM can reach a task that never waits */
  {
    neap_task *outer = running_task;
    running_task = t;
    st = lua_resume(co, NULL, nargs, &nres);
    running_task = outer;
  }
  neap__sched_running = NULL;
  if (st == LUA_YIELD) {
    int parked = (nres == 1 && lua_touserdata(co, -1) == &park_sentinel);
    lua_pop(co, nres);
    if (!parked) {  /* a plain coroutine.yield: let the others run */
      t->status = NEAP_T_READY;
      neap__sched_ready(h, t);
    }
    return;
  }
  task_close_timer(t);
  if (st == LUA_OK) {
    t->status = NEAP_T_DONE;
    task_finish(h, co, t, nres);
  }
  else task_failed(h, t);
  task_wake_joiners(h, t);
  if (t->is_main && h->main_end) h->main_end(h);
}

/* Runs the tasks that are ready, those woken meanwhile included. */
void neap__sched_run_ready (neap_host *h) {
  int budget = 100000;
  h->in_tasks++;
  while (h->rcount > 0 && budget-- > 0 && !h->dying) {
    neap_task *t = h->ready[h->rhead];
    h->rhead = (h->rhead + 1) % h->rcap;
    h->rcount--;
    if (t->status == NEAP_T_READY) task_resume(h, t);
    if (h->main_failed) break;
  }
  h->in_tasks--;
  if (h->rcount == 0) uv_idle_stop(&h->idle);
}

/* ====================================================== results */

/* Pushes true, results... or nil, err, code for a finished task. */
static int task_push_results (lua_State *L, int box, neap_task *t) {
  int n, i;
  if (t->cancelled && (t->status != NEAP_T_FAILED || t->by_cancel))
    return neap__push_fail(L, "cancelled");
  if (t->status == NEAP_T_DONE && t->no_results) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_getiuservalue(L, box, 2);
  if (!lua_istable(L, -1)) {   /* its outcome could not be kept */
    lua_pop(L, 1);
    return t->cancelled ? neap__push_fail(L, "cancelled")
                        : neap__push_error(L, UV_ENOMEM);
  }
  lua_getfield(L, -1, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 3, "too many results");
  if (t->status == NEAP_T_FAILED) {
    lua_pushnil(L);
    lua_rawgeti(L, -2, 1);
    lua_pushstring(L, "error");
    lua_remove(L, -4);
    return 3;
  }
  lua_pushboolean(L, 1);
  for (i = 1; i <= n; i++) lua_rawgeti(L, -1 - i, i);
  lua_remove(L, -2 - n);
  return n + 1;
}

typedef struct join_push {
  neap_task *t;            /* the task that finished */
  lua_State *jco;          /* a joiner's thread: its box is at index 1 */
} join_push;

static int push_join_results (lua_State *L, void *ud) {
  join_push *jp = ud;
  int n;
  lua_pushvalue(jp->jco, 1);
  lua_xmove(jp->jco, L, 1);              /* the box */
  n = task_push_results(L, lua_gettop(L), jp->t);
  lua_remove(L, -(n + 1));               /* pop the box */
  return n;
}

/* Wakes the tasks parked in t:join(), with results built under protection
** (a million results are more than a thread's stack takes). */
static void task_wake_joiners (neap_host *h, neap_task *t) {
  neap_task *j = t->joiners;
  (void)h;
  t->joiners = NULL;
  while (j) {
    neap_task *next = j->link;
    j->link = NULL;
    if (j->status == NEAP_T_PARKED) {
      join_push jp;
      jp.t = t;
      jp.jco = j->co;
      neap__sched_wake_with(j, push_join_results, &jp);
    }
    j = next;
  }
}

/* ====================================================== Lua functions */

/* The task at 'idx' (by its tag); raises when it is not one. */
neap_task *neap__task_check (lua_State *L, int idx) {
  neap_task *t = task_test(L, idx, neap__host(L));
  if (t == NULL) luaL_typeerror(L, idx, TASK_MT);
  return t;
}

#define task_check neap__task_check

/*
** A new task running the function at 'fidx' with the 'nargs' values after
** it, named by the string at 'name' (or 0: no name); leaves its box on top.
*/
static neap_task *task_new (lua_State *L, int fidx, int nargs, int name) {
  neap_host *h = neap__host(L);
  neap_task *t;
  lua_State *co;
  t = lua_newuserdatauv(L, sizeof *t, 2);
  memset(t, 0, sizeof *t);
  t->host = h;
  t->status = NEAP_T_READY;
  luaL_setmetatable(L, TASK_MT);
  if (name) {
    name_push(L, name);
    lua_setiuservalue(L, -2, 2);           /* box.uv2 = its name */
  }
  co = lua_newthread(L);                   /* box, thread */
  t->co = co;
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 1);             /* box.uv1 = thread */
  lua_pop(L, 1);                           /* pop thread */
  anchor_task(L, h, t);                    /* (the box on top) */
  lua_pushvalue(L, fidx);
  lua_xmove(L, co, 1);                     /* the function */
  {
    int i;
    luaL_checkstack(co, nargs + 1, "too many arguments");
    for (i = 1; i <= nargs; i++) lua_pushvalue(L, fidx + i);
    lua_xmove(L, co, nargs);
  }
  t->nargs = nargs;
  neap__sched_ready(h, t);
  if (h->gc_auto && h->gc_gen) neap__host_gc_adapt(h, L);   /* many tasks? */
  return t;
}

/*
** neap.task([name,] fn, ...) -> task: starts fn(...) as a task on the next
** turn of the loop.
*/
int neap__sched_spawn (lua_State *L) {
  int base = 1, name = 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    name = 1;
    base = 2;
  }
  luaL_checktype(L, base, LUA_TFUNCTION);
  task_new(L, base, lua_gettop(L) - base, name);
  return 1;
}

/*
** neap.core.serve_task(fn, conn) -> task: fn(conn) as a task, with no
** wrapper frame (an idle connection's coroutine is most of its memory):
** conn is closed when fn returns or raises, and a failure is reported as
** "neap: serve handler failed: ..." (server:serve, net.lua).
*/
static int sched_serve_task (lua_State *L) {
  neap_task *t;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_argcheck(L, neap__is_stream(L, 2), 2, "stream expected");
  lua_settop(L, 2);
  t = task_new(L, 1, 1, 0);                /* fn, conn, box */
  t->serve = 1;
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);             /* box.uv2 = conn (until its end) */
  return 1;
}

/* task:join{timeout=} -> true, results... | nil, err, code */
static void join_unpark (neap_task *j) {
  neap_task *t = j->parked_on, **pp;
  for (pp = &t->joiners; *pp; pp = &(*pp)->link)
    if (*pp == j) { *pp = j->link; break; }
  j->link = NULL;
}

static int task_join (lua_State *L) {
  neap_task *t = task_check(L, 1);
  double timeout = neap__opt_timeout(L, 2, "join");
  neap_task *self;
  if (t->status == NEAP_T_DONE || t->status == NEAP_T_FAILED)
    return task_push_results(L, 1, t);
  self = neap__sched_check(L, "join");
  if (self == t) return luaL_error(L, "join: a task cannot join itself");
  lua_settop(L, 1);     /* the box stays at index 1 for the waker */
  self->link = t->joiners;
  t->joiners = self;
  return neap__sched_park(L, self, timeout, join_unpark, t);
}

static void task_unpark_cancelled (neap_task *t) {
  if (t->unpark) t->unpark(t);
  t->cancel_raise = 1;
  task_wake(t, 0);
}

/* task:cancel() -> true if the task was still running */
static int task_cancel (lua_State *L) {
  neap_task *t = task_check(L, 1);
  if (t->status == NEAP_T_DONE || t->status == NEAP_T_FAILED) {
    lua_pushboolean(L, 0);
    return 1;
  }
  t->cancelled = 1;
  if (t->status == NEAP_T_PARKED) task_unpark_cancelled(t);
  lua_pushboolean(L, 1);
  return 1;
}

/* task:status() -> "ready" | "running" | "parked" | "done" | "failed" | "cancelled" */
static int task_status (lua_State *L) {
  static const char *const names[] = {"ready", "running", "parked", "done",
                                      "failed"};
  neap_task *t = task_check(L, 1);
  if (t->cancelled)   /* unwinding, or finished after a cancel */
    lua_pushliteral(L, "cancelled");
  else
    lua_pushstring(L, names[t->status]);
  return 1;
}

static int task_set_name (lua_State *L) {
  neap_task *t = task_check(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "bad argument #1 to 'set_name' (string expected, got %s)",
                      luaL_typename(L, 2));
  lua_settop(L, 2);
  name_push(L, 2);
  task_set_name_v(L, 1, t);
  lua_settop(L, 1);
  return 1;
}

static int task_get_name (lua_State *L) {
  neap_task *t = task_check(L, 1);
  task_push_name(L, 1, t);
  return 1;
}

/* task:_quiet(): its failure is reported by whoever runs it (neap.run) */
static int task_quiet (lua_State *L) {
  neap_task *t = task_check(L, 1);
  t->quiet = 1;
  return 0;
}

static int task_tostring (lua_State *L) {
  neap_task *t = task_check(L, 1);
  const char *name;
  task_push_name(L, 1, t);
  name = lua_tostring(L, -1);
  lua_pushfstring(L, "neap.task (%s%s%p)", name ? name : "", name ? " " : "",
                  (void *)t);
  return 1;
}

/*
** Teardown: the timers of the tasks still alive. (Tasks have no __gc: a
** finalizer on every task made each GC cycle's atomic step walk them all;
** a task's timer closes when it finishes, and here for the rest.)
*/
void neap__sched_close_all (neap_host *h) {
  lua_State *L = h->L;
  if (L == NULL) return;
  int slot;
  for (slot = 1; slot <= h->tslot_next; slot++) {
    neap_task *t;
    anchor_push(L, slot);
    t = task_test(L, -1, h);
    if (t) task_close_timer(t);
    lua_pop(L, 1);
  }
}

/* neap.sleep(seconds) -> true | nil, "cancelled" */
static int sched_sleep (lua_State *L) {
  double s = luaL_checknumber(L, 1);
  neap_task *t = neap__sched_check(L, "sleep");
  luaL_argcheck(L, s >= 0, 1, "seconds must be >= 0");
  t->timed_out_ok = 1;
  return neap__sched_park(L, t, s, NULL, NULL);
}

/* neap.core.park([timeout]): a wait for the Lua layer's own wait lists */
static void core_unpark (neap_task *t) { (void)t; }

static int sched_park (lua_State *L) {
  const char *fname = luaL_optstring(L, 2, "park");   /* the Lua wait's name */
  double timeout = neap__opt_seconds(L, 1, fname);
  neap_task *t = neap__sched_check(L, fname);
  return neap__sched_park(L, t, timeout, core_unpark, NULL);
}

/* neap.core.wake(task, ...) -> true if the task was parked by park() */
static int sched_wake (lua_State *L) {
  neap_task *t = task_check(L, 1);
  int n = lua_gettop(L) - 1;
  if (t->status != NEAP_T_PARKED || t->unpark != core_unpark) {
    lua_pushboolean(L, 0);
    return 1;
  }
  luaL_checkstack(t->co, n, "too many values");
  lua_xmove(L, t->co, n);
  task_wake(t, n);
  lua_pushboolean(L, 1);
  return 1;
}

static int sched_current (lua_State *L) {
  neap_task *t = neap__sched_current(L);
  if (t == NULL) return 0;
  anchor_push(L, t->slot);
  return 1;
}

static int sched_now (lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

/* neap.core._ntasks() -> tasks not yet finished (tests) */
static int sched_ntasks (lua_State *L) {
  lua_pushinteger(L, neap__host(L)->ntasks);
  return 1;
}

/* neap.core.task_done(task) -> true when finished (for neap.run) */
static int sched_task_done (lua_State *L) {
  neap_task *t = task_check(L, 1);
  lua_pushboolean(L, t->status == NEAP_T_DONE || t->status == NEAP_T_FAILED);
  return 1;
}

/* neap.core.task_error(task) -> error value, traceback (failed tasks) */
static int sched_task_error (lua_State *L) {
  neap_task *t = task_check(L, 1);
  if (t->status != NEAP_T_FAILED) return 0;
  lua_getiuservalue(L, 1, 2);
  lua_rawgeti(L, -1, 1);
  lua_getfield(L, -2, "traceback");
  return 2;
}

int neap__sched_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"join", task_join},
    {"cancel", task_cancel},
    {"status", task_status},
    {"set_name", task_set_name},
    {"name", task_get_name},
    {"_quiet", task_quiet},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__tostring", task_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"task", neap__sched_spawn},
    {"serve_task", sched_serve_task},
    {"sleep", sched_sleep},
    {"park", sched_park},
    {"wake", sched_wake},
    {"current", sched_current},
    {"now", sched_now},
    {"task_done", sched_task_done},
    {"task_error", sched_task_error},
    {"_ntasks", sched_ntasks},
    {NULL, NULL}
  };
  neap__newmeta(L, TASK_MT, meth, metameth);
  lua_pushliteral(L, "ENOMEM");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &enomem_key);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &pages_key) != LUA_TTABLE) {
    intptr_t zero = 0;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pages_key);
    /* Lua leaves the main thread's extra space as malloc gave it, and
    ** every coroutine.create copies it: zero, it names no task */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    memcpy(lua_getextraspace(lua_tothread(L, -1)), &zero, sizeof zero);
    lua_pop(L, 1);
  }
  else lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
