/* SPDX-License-Identifier: MIT */
/*
** Threads: neap.thread(path, ...) runs a Lua file on a thread of its own,
** with a Lua state, a host and a loop of its own (the whole neap API).
** The two sides exchange messages: values copied into one malloc'd block
** (tmsg) by the sender and rebuilt by the receiver, queued under a mutex
** and announced by a uv_async_t on the receiver's loop. The parent's
** handle (t) and the thread's neap.parent are both "endpoints" of one
** shared record (tshared), which the parent owns: it frees it only after
** the thread has been joined.
*/
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "neapi.h"

#define THREAD_MT "neap.thread"
#define MAX_DEPTH 100            /* tables nested deeper do not cross */
/*
** A cancelled thread whose task never waits is interrupted by this signal,
** sent to that thread alone (pthread_kill): its handler sets a hook on the
** task being resumed, as lua5.4 does for INT, and the hook raises
** "cancelled". (A count hook set for good would do without a signal, but
** any hook puts Lua's VM on its slow path: twice the instructions.)
*/
#define NEAP_SIGCANCEL (SIGRTMAX - 2)

/* ====================================================== messages */

typedef struct tmsg {
  struct tmsg *next;
  size_t len;
  int n;                   /* values */
  unsigned char data[];
} tmsg;

enum { V_NIL, V_FALSE, V_TRUE, V_INT, V_FLT, V_STR, V_TAB, V_END };

typedef struct tq { tmsg *head, *tail; } tq;

static void tq_push (tq *q, tmsg *m) {
  m->next = NULL;
  if (q->tail) q->tail->next = m;
  else q->head = m;
  q->tail = m;
}

/* Moves all of 'from' to the end of 'to'. */
static void tq_move (tq *to, tq *from) {
  if (from->head == NULL) return;
  if (to->tail) to->tail->next = from->head;
  else to->head = from->head;
  to->tail = from->tail;
  from->head = from->tail = NULL;
}

static tmsg *tq_pop (tq *q) {
  tmsg *m = q->head;
  if (m) {
    q->head = m->next;
    if (q->head == NULL) q->tail = NULL;
  }
  return m;
}

static void tq_free (tq *q) {
  tmsg *m;
  while ((m = tq_pop(q)) != NULL) free(m);
}

/*
** Encoding: one tag byte per value; integers and floats as their 8 bytes,
** a string as its length (size_t) then its bytes, a table as its
** array-size hint and hash-size hint (int each), its key-value pairs, then
** V_END. Metatables do not cross.
*/
typedef struct enc {
  lua_State *L;
  int arg;                 /* the argument being encoded, for errors */
  const char *fname;
  int seen;                /* stack index of the set of tables on the path (0: none yet) */
  char path[160];          /* where in the value we are, for errors */
  size_t plen;
} enc;

static void enc_fail (enc *e, const char *what) {
  lua_State *L = e->L;
  char where[200];
  if (e->plen > 0) snprintf(where, sizeof where, "%s at %s", what, e->path);
  else snprintf(where, sizeof where, "%s", what);
  if (e->fname == NULL)
    luaL_error(L, "result #%d of the thread's main chunk: %s cannot cross "
               "to the parent", e->arg, where);
  luaL_error(L, "bad argument #%d to '%s' (%s cannot cross to a thread)",
             e->arg, e->fname, where);
}

/* Appends the key at 'k' to the path (for errors); returns the old length. */
static size_t enc_path_push (enc *e, int k) {
  size_t old = e->plen, room = sizeof e->path - old;
  int n = 0;
  if (room > 1) {
    if (lua_type(e->L, k) == LUA_TNUMBER)
      n = snprintf(e->path + old, room, "[%s]", lua_tostring(e->L, k));
    else if (lua_type(e->L, k) == LUA_TSTRING)
      n = snprintf(e->path + old, room, "[\"%.40s\"]", lua_tostring(e->L, k));
    else n = snprintf(e->path + old, room, "[%s]", luaL_typename(e->L, k));
  }
  if (n > 0) e->plen = old + ((size_t)n < room ? (size_t)n : room - 1);
  return old;
}

/* lua_tostring of a number key converts it in place: keys are copied first. */
static size_t enc_size (enc *e, int idx, int depth);

static size_t enc_table_size (enc *e, int idx, int depth) {
  lua_State *L = e->L;
  size_t n = 1 + 2 * sizeof(int) + 1;
  if (depth >= MAX_DEPTH) enc_fail(e, "a table nested too deep");
  luaL_checkstack(L, 6, "value nested too deep");
  if (e->seen == 0) {   /* the first table: the set of tables on the path */
    lua_newtable(L);
    e->seen = lua_gettop(L);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) != LUA_TNIL) enc_fail(e, "a table that contains itself (a cycle)");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->seen);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    size_t old;
    lua_pushvalue(L, top - 1);            /* a copy of the key, for the path */
    old = enc_path_push(e, top + 1);
    lua_pop(L, 1);
    n += enc_size(e, top - 1, depth + 1) + enc_size(e, top, depth + 1);
    e->plen = old;
    e->path[old] = '\0';
    lua_pop(L, 1);                        /* pop value, keep key */
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->seen);
  return n;
}

/* The size of the value at 'idx' (absolute) encoded; raises on a value that
** cannot cross. */
static size_t enc_size (enc *e, int idx, int depth) {
  switch (lua_type(e->L, idx)) {
    case LUA_TNIL: case LUA_TBOOLEAN: return 1;
    case LUA_TNUMBER: return 1 + 8;
    case LUA_TSTRING: {
      size_t len;
      lua_tolstring(e->L, idx, &len);
      return 1 + sizeof(size_t) + len;
    }
    case LUA_TTABLE: return enc_table_size(e, idx, depth);
    default: {
      char what[64];
      snprintf(what, sizeof what, "a %s", luaL_typename(e->L, idx));
      enc_fail(e, what);
      return 0;
    }
  }
}

/* Writes the value at 'idx', which enc_size has measured (no error here). */
static unsigned char *enc_write (lua_State *L, int idx, unsigned char *p) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: *p++ = V_NIL; break;
    case LUA_TBOOLEAN: *p++ = lua_toboolean(L, idx) ? V_TRUE : V_FALSE; break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        *p++ = V_INT;
        memcpy(p, &i, 8);
      }
      else {
        lua_Number d = lua_tonumber(L, idx);
        *p++ = V_FLT;
        memcpy(p, &d, 8);
      }
      p += 8;
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      *p++ = V_STR;
      memcpy(p, &len, sizeof len);
      p += sizeof len;
      memcpy(p, s, len);        /* the one copy on the sending side */
      p += len;
      break;
    }
    default: {   /* LUA_TTABLE */
      int narr = (int)lua_rawlen(L, idx), nrec = 0;
      unsigned char *hint;
      *p++ = V_TAB;
      hint = p;
      p += 2 * sizeof(int);
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        int top = lua_gettop(L);
        p = enc_write(L, top - 1, p);
        p = enc_write(L, top, p);
        nrec++;
        lua_pop(L, 1);
      }
      nrec = nrec > narr ? nrec - narr : 0;
      memcpy(hint, &narr, sizeof narr);
      memcpy(hint + sizeof narr, &nrec, sizeof nrec);
      *p++ = V_END;
      break;
    }
  }
  return p;
}

/*
** The values at first..last of L's stack as one message, in one malloc:
** measured (and checked) first, then written. Raises "bad argument #i to
** 'fname' (...)" for a value that cannot cross; NULL only for no memory.
*/
static tmsg *msg_encode (lua_State *L, int first, int last, const char *fname,
                         int arg0) {
  enc e;
  size_t len = 0;
  tmsg *m;
  unsigned char *p;
  int i;
  e.L = L;
  e.fname = fname;
  e.plen = 0;
  e.path[0] = '\0';
  e.seen = 0;                     /* (made at the first table) */
  for (i = first; i <= last; i++) {
    e.arg = arg0 + (i - first);
    len += enc_size(&e, i, 0);
  }
  if (e.seen) lua_settop(L, e.seen - 1);   /* pop seen */
  m = malloc(sizeof *m + len);
  if (m == NULL) return NULL;
  m->next = NULL;
  m->len = len;
  m->n = last - first + 1;
  p = m->data;
  for (i = first; i <= last; i++) p = enc_write(L, i, p);
  return m;
}

/* Pushes one value read at 'p'; returns the position after it. */
static const unsigned char *dec_value (lua_State *L, const unsigned char *p) {
  switch (*p++) {
    case V_NIL: lua_pushnil(L); break;
    case V_FALSE: lua_pushboolean(L, 0); break;
    case V_TRUE: lua_pushboolean(L, 1); break;
    case V_INT: {
      lua_Integer i;
      memcpy(&i, p, 8);
      lua_pushinteger(L, i);
      p += 8;
      break;
    }
    case V_FLT: {
      lua_Number d;
      memcpy(&d, p, 8);
      lua_pushnumber(L, d);
      p += 8;
      break;
    }
    case V_STR: {
      size_t len;
      memcpy(&len, p, sizeof len);
      p += sizeof len;
      lua_pushlstring(L, (const char *)p, len);   /* the one copy on this side */
      p += len;
      break;
    }
    default: {   /* V_TAB */
      int narr, nrec;
      memcpy(&narr, p, sizeof narr);
      memcpy(&nrec, p + sizeof narr, sizeof nrec);
      p += 2 * sizeof(int);
      luaL_checkstack(L, 4, "value nested too deep");
      lua_createtable(L, narr, nrec);
      while (*p != V_END) {
        p = dec_value(L, p);
        p = dec_value(L, p);
        lua_rawset(L, -3);
      }
      p++;
      break;
    }
  }
  return p;
}

/* Pushes the message's values; returns how many. May raise (memory). */
static int msg_push (lua_State *L, const tmsg *m) {
  const unsigned char *p = m->data;
  int i;
  luaL_checkstack(L, m->n + 2, "too many values");
  for (i = 0; i < m->n; i++) p = dec_value(L, p);
  return m->n;
}

static int msg_push_fn (lua_State *L, void *ud) {
  return msg_push(L, ud);
}

static int msg_push_p (lua_State *L) {
  return msg_push(L, lua_touserdata(L, 1));
}

/* A message of nil, 'err', "error" (for the thread's outcome); NULL: no memory. */
static tmsg *msg_fail (const char *err) {
  size_t len = strlen(err);
  tmsg *m = malloc(sizeof *m + 3 + 2 * sizeof len + len + 5);
  unsigned char *p;
  if (m == NULL) return NULL;
  m->next = NULL;
  m->n = 3;
  p = m->data;
  *p++ = V_NIL;
  *p++ = V_STR;
  memcpy(p, &len, sizeof len);
  p += sizeof len;
  memcpy(p, err, len);
  p += len;
  len = 5;
  *p++ = V_STR;
  memcpy(p, &len, sizeof len);
  p += sizeof len;
  memcpy(p, "error", 5);
  p += 5;
  m->len = (size_t)(p - m->data);
  return m;
}

/* ====================================================== the shared record */

typedef struct tshared {
  uv_mutex_t lock;         /* guards everything below but 'tid' */
  tq to_child, to_parent;
  uv_async_t *parent_wake; /* the parent endpoint's, until it closes */
  uv_async_t *child_wake;  /* neap.parent's, while the thread's host lives */
  int cancel;              /* t:cancel() or the parent's end asked it to stop */
  int ended;               /* the thread's host is gone: 'result' is set */
  tmsg *result;            /* the main chunk's outcome, as join returns it */
  char *path, *lpath, *lcpath;   /* the file; the parent's package.path, cpath */
  tmsg *args;
  uv_thread_t tid;
  int started;             /* 'tid' is a thread */
  int joined;              /* uv_thread_join has been called (parent's thread) */
  int top_level;           /* started outside any neap thread: on the exit list */
  struct tshared *next_top, *prev_top;
} tshared;

/* the thread's own record, in its thread (NULL elsewhere) */
static __thread tshared *self_sh;

static int sh_cancelled (tshared *sh) {
  int c;
  uv_mutex_lock(&sh->lock);
  c = sh->cancel;
  uv_mutex_unlock(&sh->lock);
  return c;
}

/* Asks the thread to stop: its loop wakes (a waiting task is cancelled)
** and the signal interrupts a task that never waits. Before the join only. */
static void sh_cancel (tshared *sh) {
  uv_mutex_lock(&sh->lock);
  sh->cancel = 1;
  if (sh->child_wake) uv_async_send(sh->child_wake);
  if (sh->started && !sh->ended) pthread_kill((pthread_t)sh->tid, NEAP_SIGCANCEL);
  uv_mutex_unlock(&sh->lock);
}

/* Waits until the cancelled thread has ended, interrupting it again now
** and then (a task that was not running when the signal came may start
** a busy loop later). Before the join only. */
static void sh_wait_end (tshared *sh) {
  int i;
  for (i = 1; ; i++) {   /* (polled: glibc's timed condition wait upsets helgrind) */
    int ended;
    uv_mutex_lock(&sh->lock);
    ended = sh->ended;
    if (!ended && i % 20 == 0) pthread_kill((pthread_t)sh->tid, NEAP_SIGCANCEL);
    uv_mutex_unlock(&sh->lock);
    if (ended) return;
    uv_sleep(1);
  }
}

/*
** Threads started outside neap threads, for the exit handler: os.exit
** in the main thread runs exit(), which must not leave threads running
** Lua while the process's destructors run (libuv's own joins its pool).
*/
static uv_once_t top_once = UV_ONCE_INIT;
static uv_mutex_t top_lock;
static tshared *top_list;

static void top_at_exit (void) {
  tshared *sh, *list;
  uv_mutex_lock(&top_lock);
  list = top_list;
  for (sh = list; sh; sh = sh->next_top) if (!sh->joined) sh_cancel(sh);
  for (sh = list; sh; sh = sh->next_top)
    if (!sh->joined) {
      sh_wait_end(sh);
      uv_thread_join(&sh->tid);
      sh->joined = 1;
    }
  uv_mutex_unlock(&top_lock);
}

static void top_init (void) {
  uv_mutex_init(&top_lock);
  atexit(top_at_exit);
}

static void top_add (tshared *sh) {
  uv_once(&top_once, top_init);
  uv_mutex_lock(&top_lock);
  sh->top_level = 1;
  sh->prev_top = NULL;
  sh->next_top = top_list;
  if (top_list) top_list->prev_top = sh;
  top_list = sh;
  uv_mutex_unlock(&top_lock);
}

static void top_remove (tshared *sh) {
  if (!sh->top_level) return;
  uv_mutex_lock(&top_lock);
  if (sh->prev_top) sh->prev_top->next_top = sh->next_top;
  else top_list = sh->next_top;
  if (sh->next_top) sh->next_top->prev_top = sh->prev_top;
  sh->top_level = 0;
  uv_mutex_unlock(&top_lock);
}

/* Joins the thread (once): from the parent's thread only. */
static void sh_join (tshared *sh) {
  if (sh->top_level) {   /* (the exit handler may have joined it) */
    uv_mutex_lock(&top_lock);
    if (!sh->joined) uv_thread_join(&sh->tid);
    sh->joined = 1;
    uv_mutex_unlock(&top_lock);
    top_remove(sh);
  }
  else if (!sh->joined) {
    uv_thread_join(&sh->tid);
    sh->joined = 1;
  }
}

static void sh_free (tshared *sh) {
  tq_free(&sh->to_child);
  tq_free(&sh->to_parent);
  free(sh->result);
  free(sh->args);
  free(sh->path);
  free(sh->lpath);
  free(sh->lcpath);
  uv_mutex_destroy(&sh->lock);
  free(sh);
}

/* ====================================================== endpoints */

/* The parent's t, or the thread's neap.parent: one side of a tshared. */
typedef struct neap_tend {
  neap_handle h;
  uv_async_t async;        /* the other side's messages (and the thread's end) */
  tshared *sh;
  int is_parent;           /* t (else neap.parent) */
  tq inbox;                /* messages taken from the shared queue (this side only) */
  neap_task *receivers;    /* parked in receive, in order */
  neap_task *joiners;      /* parked in join */
  int ended;               /* (parent) the thread's end was seen */
  int cancel_seen;         /* (thread) the cancel was acted on */
  int detached;            /* (parent) the thread has ended: the async is given back */
} neap_tend;

static tq *inq (neap_tend *ep) {
  return ep->is_parent ? &ep->sh->to_parent : &ep->sh->to_child;
}

/* Waiting tasks keep the loop alive and the box reachable. */
static void tend_ref (neap_tend *ep) {
  neap_host *host = ep->h.host;
  if (ep->detached) {
    if (!host->dying) neap__handle_unanchor(&ep->h);
    return;
  }
  if (ep->receivers || ep->joiners) uv_ref((uv_handle_t *)&ep->async);
  else {
    uv_unref((uv_handle_t *)&ep->async);
    if (!host->dying) neap__handle_unanchor(&ep->h);
  }
}

static void list_remove (neap_task **pp, neap_task *t) {
  for (; *pp; pp = &(*pp)->link)
    if (*pp == t) { *pp = t->link; break; }
  t->link = NULL;
}

static void list_append (neap_task **pp, neap_task *t) {
  while (*pp) pp = &(*pp)->link;
  t->link = NULL;
  *pp = t;
}

static int push_result (lua_State *L, void *ud) {
  neap_tend *ep = ud;
  if (ep->sh->result == NULL) return neap__push_error(L, UV_ENOMEM);
  return msg_push(L, ep->sh->result);
}

/* Takes the shared queue into the inbox; 1 when the other side has ended. */
static int tend_take (neap_tend *ep) {
  int ended;
  uv_mutex_lock(&ep->sh->lock);
  tq_move(&ep->inbox, inq(ep));
  ended = ep->is_parent && ep->sh->ended;
  uv_mutex_unlock(&ep->sh->lock);
  return ended;
}

static void tend_unhook (neap_tend *ep) {
  uv_mutex_lock(&ep->sh->lock);
  if (ep->is_parent) ep->sh->parent_wake = NULL;
  else ep->sh->child_wake = NULL;
  uv_mutex_unlock(&ep->sh->lock);
}

static void tend_thread_ended (neap_tend *ep) {
  neap_task *j;
  ep->ended = 1;
  sh_join(ep->sh);            /* (it has ended: this does not block) */
  /* nothing more can come: the async goes, and t no longer counts as an
  ** open handle (its outcome stays for join) */
  tend_unhook(ep);
  ep->detached = 1;
  neap__handle_detach_uv(&ep->h, (uv_handle_t *)&ep->async);
  while ((j = ep->joiners) != NULL) {
    ep->joiners = j->link;
    j->link = NULL;
    neap__sched_wake_with(j, push_result, ep);
  }
}

/* Hands the inbox to the parked receivers, in order. */
static void tend_deliver (neap_tend *ep) {
  neap_task *r;
  while ((r = ep->receivers) != NULL && ep->inbox.head != NULL) {
    tmsg *m = tq_pop(&ep->inbox);
    ep->receivers = r->link;
    r->link = NULL;
    if (neap__sched_wake_with(r, msg_push_fn, m) != LUA_OK) {
      /* 'r' got nil, "not enough memory": the message stays first in the
      ** inbox for the next receive, as on tend_receive's own path */
      m->next = ep->inbox.head;
      ep->inbox.head = m;
      if (ep->inbox.tail == NULL) ep->inbox.tail = m;
      break;
    }
    free(m);
  }
  if (ep->ended)   /* nothing more will come */
    while ((r = ep->receivers) != NULL) {
      ep->receivers = r->link;
      r->link = NULL;
      neap__sched_wake_closed(r);
    }
}

static void main_cancel (neap_host *h);

static void tend_async_cb (uv_async_t *a) {
  neap_tend *ep = a->data;
  neap_host *host = ep->h.host;
  if (host->dying || (ep->h.flags & NEAP_H_CLOSING)) return;
  if (tend_take(ep) && !ep->ended) tend_thread_ended(ep);
  tend_deliver(ep);
  if (!ep->is_parent && !ep->cancel_seen && sh_cancelled(ep->sh)) {
    ep->cancel_seen = 1;
    main_cancel(host);
  }
  tend_ref(ep);
}

/* The thread's end is awaited: asked to stop, then joined (this blocks
** until it reaches a wait, or the signal stops a busy task). */
static void tend_stop (neap_tend *ep) {
  if (!ep->is_parent) return;
  if (!ep->sh->joined) {
    sh_cancel(ep->sh);
    sh_wait_end(ep->sh);
  }
  sh_join(ep->sh);
  ep->ended = 1;
}

static void tend_vt_close (neap_handle *h) {
  neap_tend *ep = (neap_tend *)h;
  neap_task *t;
  tend_stop(ep);
  tend_unhook(ep);
  while ((t = ep->receivers) != NULL) {
    ep->receivers = t->link;
    t->link = NULL;
    neap__sched_wake_closed(t);
  }
  while ((t = ep->joiners) != NULL) {
    ep->joiners = t->link;
    t->link = NULL;
    neap__sched_wake_closed(t);
  }
  neap__handle_uvclose(h, (uv_handle_t *)&ep->async);
}

/* Teardown: no Lua any more. */
static void tend_vt_force (neap_handle *h) {
  neap_tend *ep = (neap_tend *)h;
  ep->receivers = ep->joiners = NULL;
  tend_stop(ep);
  tend_unhook(ep);
  neap__handle_uvclose(h, (uv_handle_t *)&ep->async);
}

static void tend_vt_release (neap_handle *h) {
  neap_tend *ep = (neap_tend *)h;
  tq_free(&ep->inbox);
  if (ep->is_parent) sh_free(ep->sh);
}

static const neap_handle_vt tend_vt = {
  THREAD_MT, "thread", tend_vt_close, tend_vt_force, tend_vt_release
};

/* Teardown of a host: every thread it started is asked to stop first, so
** they wind down together; the handles' force then joins each. */
static void thread_stop_all (neap_host *host) {
  neap_handle *h;
  for (h = host->handles; h; h = h->next)
    if (h->vt == &tend_vt && ((neap_tend *)h)->is_parent &&
        !((neap_tend *)h)->sh->joined)
      sh_cancel(((neap_tend *)h)->sh);
}

static neap_tend *tend_new (lua_State *L, neap_host *host, tshared *sh,
                            int is_parent) {
  neap_handle **box = neap__handle_newbox(L, THREAD_MT);
  neap_tend *ep = calloc(1, sizeof *ep);
  if (ep == NULL) return NULL;
  neap__handle_init(host, &ep->h, &tend_vt, box);
  if (uv_async_init(host->loop, &ep->async, tend_async_cb) != 0) {
    neap__handle_undo_init(&ep->h);
    return NULL;
  }
  ep->async.data = ep;
  uv_unref((uv_handle_t *)&ep->async);
  ep->sh = sh;
  ep->is_parent = is_parent;
  return ep;
}

/* ====================================================== the thread */

/* The thread's main task, or NULL. */
static neap_task *main_task (neap_host *h) {
  return h->main;
}

/* neap.parent's cancel: the main task stops at its next wait. */
static void main_cancel (neap_host *h) {
  lua_State *L = h->L;
  neap_task *t = main_task(h);
  if (t == NULL || t->status == NEAP_T_DONE || t->status == NEAP_T_FAILED) {
    uv_stop(h->loop);
    return;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "neap.main");
  if (lua_getfield(L, -1, "cancel") == LUA_TFUNCTION) {
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  else lua_pop(L, 2);
}

/* The main task has ended: a cancelled thread stops (its other tasks and
** handles go with its host). */
static void thread_main_end (neap_host *h) {
  if (self_sh && sh_cancelled(self_sh)) uv_stop(h->loop);
}

/* Set by the signal on the task being resumed: a busy task of a cancelled
** thread raises "cancelled" at its next instruction. */
static void cancel_hook (lua_State *L, lua_Debug *ar) {
  neap_task *t;
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (self_sh == NULL || !sh_cancelled(self_sh)) return;
  t = neap__sched_current(L);
  if (t == NULL || t->closing) return;
  t->cancelled = 1;
  lua_pushliteral(L, "cancelled");
  lua_error(L);
}

static void thread_pre_resume (lua_State *co);

static int os_exit_refused (lua_State *L) {
  return luaL_error(L, "os.exit: not allowed in a thread (return from its main "
                    "chunk, or raise an error, to end it)");
}

/* Protected: the thread's state is made ready and its main task started. */
static int thread_setup_p (lua_State *L) {
  tshared *sh = lua_touserdata(L, 1);
  neap_host *h = neap__host(L);
  neap_tend *ep;
  int n, st;
  lua_settop(L, 0);
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    if (sh->lpath) { lua_pushstring(L, sh->lpath); lua_setfield(L, -2, "path"); }
    if (sh->lcpath) { lua_pushstring(L, sh->lcpath); lua_setfield(L, -2, "cpath"); }
  }
  lua_pop(L, 1);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, os_exit_refused);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "neap.core");
  lua_call(L, 1, 0);
  ep = tend_new(L, h, sh, 0);
  if (ep == NULL) return luaL_error(L, "not enough memory");
  lua_setfield(L, LUA_REGISTRYINDEX, "neap.parent");
  uv_mutex_lock(&sh->lock);
  sh->child_wake = &ep->async;
  if (sh->cancel || sh->to_child.head) uv_async_send(&ep->async);
  uv_mutex_unlock(&sh->lock);
  h->main_end = thread_main_end;
  h->pre_resume = thread_pre_resume;
  st = luaL_loadfile(L, sh->path);
  if (st != LUA_OK) return lua_error(L);
  n = msg_push(L, sh->args);
  if (neap__host_start_main(h, n) != 0)
    return luaL_error(L, "%s", neap_error(h) ? neap_error(h) : "cannot start");
  return 0;
}

/* Protected: the main task's outcome, as join returns it, as a message. */
static const char result_lua[] =
  "local main, core = ...\n"
  "if not core.task_done(main) then\n"
  "  return nil, 'the thread ended with its main task still waiting for "
  "something that nothing could wake', 'error'\n"
  "end\n"
  "local r = table.pack(main:join())\n"
  "if not r[1] and r[3] == 'error' then\n"
  "  local e, tb = core.task_error(main)\n"
  "  return nil, type(tb) == 'string' and tb or tostring(e), 'error'\n"
  "end\n"
  "return table.unpack(r, 1, r.n)\n";

static int thread_result_p (lua_State *L) {
  tmsg **out = lua_touserdata(L, 1);
  int base;
  lua_settop(L, 0);
  if (luaL_loadbuffer(L, result_lua, sizeof result_lua - 1, "=(thread)") != LUA_OK)
    return lua_error(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "neap.main");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "neap.core");
  lua_call(L, 1, 1);
  lua_call(L, 2, LUA_MULTRET);
  base = 1;
  if (lua_gettop(L) == 0) lua_pushboolean(L, 1);
  *out = msg_encode(L, base, lua_gettop(L), NULL, 1);
  return 0;
}

static void thread_entry (void *arg) {
  tshared *sh = arg;
  neap_host *h;
  tmsg *res = NULL;
  sigset_t all;
  /* the process's signals go to the other threads: the binary's INT and
  ** TERM policy and libuv's handlers run there (children spawned here
  ** get an empty mask: process.c sets it) */
  sigfillset(&all);
  sigdelset(&all, NEAP_SIGCANCEL);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  self_sh = sh;
  h = neap_new(NULL);
  if (h == NULL) res = msg_fail("neap.thread: cannot make a host");
  else {
    lua_State *L = neap_lua(h);
    lua_pushcfunction(L, thread_setup_p);
    lua_pushlightuserdata(L, sh);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      const char *msg = lua_tostring(L, -1);
      fprintf(stderr, "neap: thread %s: %s\n", sh->path, msg ? msg : "?");
      fflush(stderr);
      res = msg_fail(msg ? msg : "(error object is not a string)");
      lua_pop(L, 1);
    }
    else {
      neap_run(h);
      lua_pushcfunction(L, thread_result_p);
      lua_pushlightuserdata(L, &res);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        free(res);
        res = msg_fail(msg ? msg : "the thread's results cannot cross");
        lua_pop(L, 1);
      }
    }
    neap_free(h);
  }
  self_sh = NULL;
  uv_mutex_lock(&sh->lock);
  sh->result = res;   /* (NULL: no memory; join says ENOMEM) */
  sh->ended = 1;
  if (sh->parent_wake) uv_async_send(sh->parent_wake);
  uv_mutex_unlock(&sh->lock);
}

static __thread volatile sig_atomic_t cancel_pending;

/* The handler of NEAP_SIGCANCEL, in the thread it was sent to: the task
** being resumed is hooked now, or the next one when none is. */
static void cancel_signal (int sig) {
  lua_State *co = neap__sched_running;
  (void)sig;
  if (co != NULL) lua_sethook(co, cancel_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  else cancel_pending = 1;
}

/* The host's pre_resume: a signal that came between tasks hooks the next. */
static void thread_pre_resume (lua_State *co) {
  if (cancel_pending) {
    cancel_pending = 0;
    lua_sethook(co, cancel_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
}

static uv_once_t sig_once = UV_ONCE_INIT;

static void sig_init (void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cancel_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(NEAP_SIGCANCEL, &sa, NULL);
}

/* ====================================================== Lua functions */

static char *dup_field (lua_State *L, const char *k) {
  char *s = NULL;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1) && lua_getfield(L, -1, k) == LUA_TSTRING)
    s = strdup(lua_tostring(L, -1));
  lua_settop(L, lua_gettop(L) - (lua_istable(L, -1) ? 1 : 2));
  return s;
}

/* neap.thread(path, ...) -> t | nil, err, code */
static int thread_new (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *path;
  int top = lua_gettop(L), r;
  /* named by hand: luaL_argerror would say 'neap.core.thread', and a number
  ** must not pass as a path */
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "bad argument #1 to 'thread' (string expected, got %s)",
                      luaL_typename(L, 1));
  path = lua_tostring(L, 1);
  tshared *sh;
  neap_tend *ep;
  tmsg *args = msg_encode(L, 2, top, "thread", 2);
  if (args == NULL) return luaL_error(L, "not enough memory");
  sh = calloc(1, sizeof *sh);
  if (sh == NULL) {
    free(args);
    return luaL_error(L, "not enough memory");
  }
  sh->args = args;
  sh->path = strdup(path);
  {
    int t0 = lua_gettop(L);
    sh->lpath = dup_field(L, "path");
    lua_settop(L, t0);
    sh->lcpath = dup_field(L, "cpath");
    lua_settop(L, t0);
  }
  uv_mutex_init(&sh->lock);
  uv_once(&sig_once, sig_init);
  ep = tend_new(L, host, sh, 1);
  if (ep == NULL || sh->path == NULL) {
    if (ep) neap__handle_close(&ep->h);   /* (frees sh when released) */
    else sh_free(sh);
    return luaL_error(L, "not enough memory");
  }
  sh->parent_wake = &ep->async;
  sh->joined = 1;   /* (nothing to join yet) */
  r = uv_thread_create(&sh->tid, thread_entry, sh);
  if (r != 0) {
    neap__handle_close(&ep->h);
    return neap__push_error(L, r);
  }
  sh->joined = 0;
  uv_mutex_lock(&sh->lock);
  sh->started = 1;
  uv_mutex_unlock(&sh->lock);
  if (self_sh == NULL) top_add(sh);
  return 1;
}

static neap_tend *tend_check (lua_State *L) {
  return neap__handle_check(L, 1, THREAD_MT, "thread");
}

/* t:send(v), neap.parent:send(v) -> true | nil, "closed", "ECLOSED" */
static int tend_send (lua_State *L) {
  neap_tend *ep = tend_check(L);
  tshared *sh = ep->sh;
  tmsg *m;
  lua_settop(L, 2);
  m = msg_encode(L, 2, 2, "send", 1);
  if (m == NULL) return luaL_error(L, "not enough memory");
  uv_mutex_lock(&sh->lock);
  if (ep->is_parent && sh->ended) {
    uv_mutex_unlock(&sh->lock);
    free(m);
    return neap__push_closed(L);
  }
  if (ep->is_parent) {
    tq_push(&sh->to_child, m);
    if (sh->child_wake) uv_async_send(sh->child_wake);
  }
  else {
    tq_push(&sh->to_parent, m);
    if (sh->parent_wake) uv_async_send(sh->parent_wake);
  }
  uv_mutex_unlock(&sh->lock);
  lua_pushboolean(L, 1);
  return 1;
}

static void receive_unpark (neap_task *t) {
  neap_tend *ep = t->parked_on;
  list_remove(&ep->receivers, t);
  tend_ref(ep);
}

/* t:receive{timeout=}, neap.parent:receive{timeout=} -> value | nil, err, code */
static int tend_receive (lua_State *L) {
  neap_tend *ep = tend_check(L);
  double timeout = neap__opt_timeout(L, 2, "receive");
  neap_task *self;
  if (ep->inbox.head == NULL) {
    if (tend_take(ep) && !ep->ended) tend_thread_ended(ep);
    tend_deliver(ep);   /* tasks parked before this one come first */
    tend_ref(ep);
  }
  if (ep->inbox.head != NULL) {
    /* Off the inbox first: the decoding runs the collector, whose
    ** finalizers may receive too (they take the next message); decoded in
    ** a protected call, so that on an error it goes back first. */
    tmsg *m = tq_pop(&ep->inbox);
    int top = lua_gettop(L);
    lua_pushcfunction(L, msg_push_p);
    lua_pushlightuserdata(L, m);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
      m->next = ep->inbox.head;
      ep->inbox.head = m;
      if (ep->inbox.tail == NULL) ep->inbox.tail = m;
      return lua_error(L);
    }
    free(m);
    return lua_gettop(L) - top;
  }
  if (ep->ended) return neap__push_closed(L);
  self = neap__sched_check(L, "receive");
  list_append(&ep->receivers, self);
  if (ep->is_parent) neap__handle_anchor(L, &ep->h, 1);   /* (neap.parent: the registry holds it) */
  tend_ref(ep);
  return neap__sched_park(L, self, timeout, receive_unpark, ep);
}

static void join_unpark (neap_task *t) {
  neap_tend *ep = t->parked_on;
  list_remove(&ep->joiners, t);
  tend_ref(ep);
}

/* t:join{timeout=} -> true, results... | nil, err, "error" | nil, "timeout", "timeout" */
static int tend_join (lua_State *L) {
  neap_tend *ep = tend_check(L);
  double timeout = neap__opt_timeout(L, 2, "join");
  neap_task *self;
  if (!ep->is_parent)
    return luaL_error(L, "join: neap.parent is the thread's parent (only the "
                      "thread that started a thread joins it)");
  if (!ep->ended && tend_take(ep)) tend_thread_ended(ep);
  if (ep->ended) return push_result(L, ep);
  self = neap__sched_check(L, "join");
  list_append(&ep->joiners, self);
  neap__handle_anchor(L, &ep->h, 1);
  tend_ref(ep);
  return neap__sched_park(L, self, timeout, join_unpark, ep);
}

/* t:cancel() -> true if the thread was still running */
static int tend_cancel (lua_State *L) {
  neap_tend *ep = tend_check(L);
  int running;
  if (!ep->is_parent)
    return luaL_error(L, "cancel: neap.parent cannot be cancelled (only the "
                      "thread that started a thread cancels it)");
  uv_mutex_lock(&ep->sh->lock);
  running = !ep->sh->ended;
  uv_mutex_unlock(&ep->sh->lock);
  if (running) sh_cancel(ep->sh);
  lua_pushboolean(L, running);
  return 1;
}

static int tend_close (lua_State *L) {
  return neap__handle_close_l(L, THREAD_MT);
}

static int tend_tostring (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, THREAD_MT);
  neap_tend *ep = (neap_tend *)*box;
  if (ep == NULL) lua_pushliteral(L, "neap.thread (closed)");
  else if (ep->is_parent)
    lua_pushfstring(L, "neap.thread (%s%s)", ep->sh->path, ep->ended ? ", ended" : "");
  else lua_pushliteral(L, "neap.thread (parent)");
  return 1;
}

/* neap.core.parent() -> neap.parent in a thread, nil elsewhere */
static int thread_parent (lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "neap.parent");
  return 1;
}

void neap__thread_stop (neap_host *h) {
  thread_stop_all(h);
}

int neap__thread_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"send", tend_send},
    {"receive", tend_receive},
    {"join", tend_join},
    {"cancel", tend_cancel},
    {"close", tend_close},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, THREAD_MT, meth, tend_tostring);
  lua_pushcfunction(L, thread_new);
  lua_setfield(L, -2, "thread");
  lua_pushcfunction(L, thread_parent);
  lua_setfield(L, -2, "parent");
  return 0;
}
