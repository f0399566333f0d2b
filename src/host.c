/* SPDX-License-Identifier: MIT */
/*
** The host: one lua_State and one libuv loop (its own or the embedder's),
** the ready queue's idle and check handles, luaopen_neap_core, and the
** public C API of neap.h. Teardown closes every handle before the state.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include <fcntl.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "neapi.h"

static char host_key;   /* registry: the host's box */

/* The host's box: the host, then a tag (host_key's address) that host_gc
** checks, as a handle's box (a userdata given the box's metatable through
** debug.getregistry is not the box). */
static void host_newbox (lua_State *L, neap_host *h) {
  void **box = lua_newuserdatauv(L, NEAP_BOX_SIZE, 0);
  box[0] = h;
  box[1] = &host_key;
}

typedef struct post_msg {
  struct post_msg *next;
  size_t namelen, len;
  char bytes[1];        /* name, NUL, data */
} post_msg;

/* The host's box in the registry, or NULL (by its tag: the registry can be
** reached, and the entry replaced, through debug.getregistry) */
static neap_host **host_box (lua_State *L) {
  void **box;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  box = lua_touserdata(L, -1);
  if (box != NULL && (lua_rawlen(L, -1) != NEAP_BOX_SIZE || box[1] != (void *)&host_key))
    box = NULL;
  lua_pop(L, 1);
  return (neap_host **)box;
}

neap_host *neap__host (lua_State *L) {
  neap_host **box = host_box(L);
  if (box == NULL || *box == NULL) luaL_error(L, "neap: the host is gone");
  return *box;
}

void neap__host_closed (neap_host *h) {
  h->pending_closes--;
}

void neap__host_set_error (neap_host *h, const char *msg) {
  free(h->error);
  h->error = msg ? strdup(msg) : NULL;
}

static void host_idle_gc_arm (neap_host *h);

static void host_check_cb (uv_check_t *c) {
  neap_host *h = c->data;
  neap__host_gc_adapt(h, h->L);   /* the collector's mode (below) */
  neap__handle_release_pending(h);
  neap__sched_run_ready(h);
  neap__stream_flush_all(h);   /* one write per stream for the whole turn */
  if (!h->igc_armed && h->resumes != h->igc_seen) host_idle_gc_arm(h);
}

static void host_internal_closed (uv_handle_t *hd) {
  neap__host_closed(hd->data);
}

/*
** uv_close for every libuv handle neap owns. An embedder that closed the
** loop's handles itself (a uv_walk before neap_free) leaves neap's closing
** already, and a second uv_close is an assertion in libuv: then 'cb' runs
** from host_flush_foreign, once the loop has run its closing phase.
*/
void neap__host_uvclose (neap_host *host, uv_handle_t *uvh, uv_close_cb cb) {
  if (!uv_is_closing(uvh)) {
    uv_close(uvh, cb);
    return;
  }
  if (cb == NULL) return;
  if (host->nforeign == host->capforeign) {
    int ncap = host->capforeign ? host->capforeign * 2 : 16;
    neap_foreign *nf = realloc(host->foreign, ncap * sizeof *nf);
    if (nf == NULL) abort();   /* (teardown could never finish) */
    host->foreign = nf;
    host->capforeign = ncap;
  }
  host->foreign[host->nforeign].uvh = uvh;
  host->foreign[host->nforeign].cb = cb;
  host->nforeign++;
}

/* neap__host_uvclose of a handle whose callback calls neap__host_closed. */
void neap__host_uvclose_counted (neap_host *host, uv_handle_t *uvh,
                                 uv_close_cb cb) {
  host->pending_closes++;
  neap__host_uvclose(host, uvh, cb);
}

/* After a uv_run: the close callbacks of handles someone else closed. */
static void host_flush_foreign (neap_host *host) {
  while (host->nforeign > 0) {
    neap_foreign f = host->foreign[--host->nforeign];
    f.cb(f.uvh);
  }
}

/* ====================================================== posts */

/* Protected: the post handler (at 1) gets the message 'p' (at 2). */
static int host_post_p (lua_State *L) {
  post_msg *p = lua_touserdata(L, 2);
  lua_settop(L, 1);
  lua_pushlstring(L, p->bytes, p->namelen);
  lua_pushlstring(L, p->bytes + p->namelen + 1, p->len);
  lua_call(L, 2, 0);
  return 0;
}

static void host_async_cb (uv_async_t *a) {
  neap_host *h = a->data;
  post_msg *p, *next;
  lua_State *L = h->L;
  if (h->dying) return;
  /* no handler yet (the script has not required "neap"): keep them */
  if (lua_getfield(L, LUA_REGISTRYINDEX, "neap.post_handler") != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  uv_mutex_lock(&h->post_lock);
  p = h->posts;
  h->posts = h->posts_tail = NULL;
  uv_mutex_unlock(&h->post_lock);
  for (; p; p = next) {
    next = p->next;
    if (!h->dying && lua_getfield(L, LUA_REGISTRYINDEX, "neap.post_handler")
                         == LUA_TFUNCTION) {
      lua_pushcfunction(L, host_post_p);
      lua_insert(L, -2);
      lua_pushlightuserdata(L, p);
      if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "neap: post handler failed: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
    else if (!h->dying) lua_pop(L, 1);
    free(p);
  }
}

int neap_post (neap_host *h, const char *name, const void *data, size_t len) {
  size_t nl = strlen(name);
  post_msg *p = malloc(sizeof *p + nl + len + 1);
  if (p == NULL) return UV_ENOMEM;
  p->next = NULL;
  p->namelen = nl;
  p->len = len;
  memcpy(p->bytes, name, nl + 1);
  if (len) memcpy(p->bytes + nl + 1, data, len);
  uv_mutex_lock(&h->post_lock);
  if (h->posts_tail) h->posts_tail->next = p;
  else h->posts = p;
  h->posts_tail = p;
  uv_mutex_unlock(&h->post_lock);
  return uv_async_send(&h->async);
}

/* neap.core.post_ref(on): posts keep the loop alive while a handler waits */
static int host_post_ref (lua_State *L) {
  neap_host *h = neap__host(L);
  if (lua_toboolean(L, 1)) uv_ref((uv_handle_t *)&h->async);
  else uv_unref((uv_handle_t *)&h->async);
  return 0;
}

typedef struct fd_probe { int fd, found; } fd_probe;

static void probe_handle (uv_handle_t *hd, void *arg) {
  fd_probe *p = arg;
  uv_os_fd_t fd;
  if (!p->found && uv_fileno(hd, &fd) == 0 && fd == p->fd) p->found = 1;
}

/*
** Whether 'fd' is one of the loop's own descriptors (its epoll fd, its
** wake-up and signal pipes, those libuv opened when the loop was made), one
** the loop already watches, or the descriptor of an open handle on the loop
** (a socket, pipe, TTY or poll, watched or not): wrapping it a second time
** would write into whatever reuses it once the first owner closes it.
*/
int neap__host_owns_fd (neap_host *h, int fd) {
  uv_loop_t *loop = h->loop;
  fd_probe probe;
  int i;
  if (fd == uv_backend_fd(loop)) return 1;
  if ((unsigned)fd < loop->nwatchers && loop->watchers[fd] != NULL) return 1;
  probe.fd = fd;
  probe.found = 0;
  uv_walk(loop, probe_handle, &probe);   /* closing handles have no fileno */
  if (probe.found) return 1;
  if (fd == loop->signal_pipefd[0] || fd == loop->signal_pipefd[1] ||
      fd == loop->async_wfd)
    return 1;
  for (i = 0; i < h->ninternal; i++)
    if (h->internal_fds[i] == fd) return 1;
  return 0;
}

/*
** The families of neap.core, as Lua's linit.c lists its libraries: each
** adds its functions to the module table; 'stop' (or NULL) stops what it
** watches at teardown, before the handles close.
*/
typedef struct neap_family {
  const char *name;
  int (*open) (lua_State *L);
  void (*stop) (neap_host *h);
} neap_family;

static const neap_family families[] = {
  {"sched", neap__sched_open, NULL},
  {"auxlib", neap__auxlib_open, NULL},
  {"stream", neap__stream_open, NULL},
  {"stream_write", neap__stream_write_open, NULL},
  {"tcp", neap__tcp_open, NULL},
  {"udp", neap__udp_open, NULL},
  {"process", neap__process_open, neap__process_free},
  {"fs", neap__fs_open, NULL},
  {"fsops", neap__fsops_open, NULL},
  {"watch", neap__watch_open, NULL},
  {"signal", neap__signal_open, neap__signal_free},
  {"timer", neap__timer_open, NULL},
  {"buffer", neap__bufobj_open, NULL},
  {"tls", neap__tlsstream_open, NULL},
  {"http", neap__http_open, NULL},
  {"thread", neap__thread_open, neap__thread_stop},
  {"ws", neap__ws_open, NULL},
  {NULL, NULL, NULL}
};

/* ====================================================== lifetime */

/* Which of descriptors 0..NEAP_FD_SCAN-1 are open, as a bitmap. */
#define NEAP_FD_SCAN 256
static void open_fds (unsigned char map[NEAP_FD_SCAN / 8]) {
  int fd;
  memset(map, 0, NEAP_FD_SCAN / 8);
  for (fd = 0; fd < NEAP_FD_SCAN; fd++)
    if (fcntl(fd, F_GETFD) != -1) map[fd / 8] |= (unsigned char)(1u << (fd % 8));
}

static int host_init (neap_host *h, uv_loop_t *loop) {
  unsigned char before[NEAP_FD_SCAN / 8], after[NEAP_FD_SCAN / 8];
  int fd;
  open_fds(before);
  if (loop == NULL) {
    if (uv_loop_init(&h->own) != 0) return -1;
    h->loop = &h->own;
    h->owns_loop = 1;
  }
  else h->loop = loop;
  uv_idle_init(h->loop, &h->idle);
  h->idle.data = h;     /* active (and so keeping the loop alive) while tasks are ready */
  uv_check_init(h->loop, &h->check);
  h->check.data = h;
  uv_check_start(&h->check, host_check_cb);
  uv_unref((uv_handle_t *)&h->check);
  uv_timer_init(h->loop, &h->igc);
  h->igc.data = h;
  uv_unref((uv_handle_t *)&h->igc);
  uv_mutex_init(&h->post_lock);
  uv_async_init(h->loop, &h->async, host_async_cb);
  h->async.data = h;
  uv_unref((uv_handle_t *)&h->async);
  /* the descriptors libuv opened for itself (its epoll fd, wake-up and
  ** lock pipes): neap.fd refuses them */
  open_fds(after);
  for (fd = 0; fd < NEAP_FD_SCAN && h->ninternal < NEAP_MAX_INTERNAL; fd++)
    if ((after[fd / 8] & ~before[fd / 8]) & (1u << (fd % 8)))
      h->internal_fds[h->ninternal++] = fd;
  signal(SIGPIPE, SIG_IGN);
#if defined(__GLIBC__) && defined(M_MXFAST)
  /* No fastbins (process-wide, as SIGPIPE above): after a GC cycle has
  ** freed a million small objects, glibc merges them all at the next
  ** larger malloc (malloc_consolidate), a pause of 50-250 ms with 100,000
  ** parked tasks; without fastbins a free merges at once (the per-thread
  ** tcache still serves small sizes first). See docs/performance.md. */
  mallopt(M_MXFAST, 0);
#endif
  h->gc_stress = getenv("NEAP_GC_STRESS") != NULL;
  return 0;
}

/* {====================================================== the collector */

/*
** The collector's mode, picked by the host for its Lua state until a
** script picks its own (see host_collectgarbage). Two modes, each where it
** wins (docs/performance.md, "The collector's mode"):
** - generational while the host is small: the bulk paths (a pipe read by
**   64 KiB or 1 MiB, lines, echo) make short-lived strings, which minor
**   collections free without traversing what lives on (stock lua5.4's
**   mode too);
** - incremental at a slow pace with many tasks or a large heap: Lua 5.4
**   keeps every old thread in its gray lists, so each minor collection
**   traverses all the threads again, and a major one is a whole
**   collection in one go. Lua 5.4 counts one swept object as one marked
**   stack slot, though sweeping (a cold object, often a free) costs far
**   more; at its default pace (step multiplier 100) the sweep of a whole
**   heap is due within some 40 KB of allocation, so one task that
**   allocates a little after a cycle pays for all of it: with 100,000
**   parked tasks, 100-300 ms at once. A multiplier of 5 spreads a cycle's
**   work over 20 times more allocation (the heap grows by about a tenth
**   more during a cycle) and steps of 1 KB keep each one small (about 640
**   units of work). The pause (when a cycle starts) stays Lua's 200%.
** Checked at each loop turn and when a task is made while generational: a
** few compares and the heap's size. Back to generational only well below
** the bounds (hysteresis) and a while after the last switch, since
** entering it completes a cycle and marks the whole heap once.
*/
#define NEAP_GC_PAUSE 200
#define NEAP_GC_STEPMUL 5
#define NEAP_GC_STEPSIZE 10
#define NEAP_GC_INC_TASKS 4000   /* more unfinished tasks: incremental */
#define NEAP_GC_INC_KB 8192      /* or a larger heap (KB) */
#define NEAP_GC_GEN_TASKS 2000   /* back to generational: fewer tasks, */
#define NEAP_GC_GEN_KB 4096      /* a smaller heap, */
#define NEAP_GC_GEN_MS 1000      /* and this long after the last switch */

/* Sets the collector of 'L' (any thread of the host's state) to 'gen'. */
static void host_gc_set (neap_host *h, lua_State *L, int gen) {
  int r = gen ? lua_gc(L, LUA_GCGEN, 0, 0)   /* (0: Lua's own multipliers) */
              : lua_gc(L, LUA_GCINC, NEAP_GC_PAUSE, NEAP_GC_STEPMUL,
                       NEAP_GC_STEPSIZE);
  if (r < 0) return;    /* inside a finalizer: Lua refuses, try again later */
  if (gen != h->gc_gen) h->gc_switches++;
  h->gc_gen = (unsigned char)gen;
  /* Lua's small blocks are kept for reuse only in generational mode: with
  ** thousands of tasks or a large heap, most new objects live long, and
  ** blocks kept from the garbage of a burst (accepting 10,000 connections)
  ** left holes when given back (13-15 bytes more per idle connection) */
  h->la_on = (unsigned char)gen;
  if (!gen) neap__host_lalloc_drop(h);
  h->gc_switch_ms = h->loop ? uv_now(h->loop) : 0;
}

/*
** The host's choice, checked now; 'L' is the running thread (a task
** making a task) or the host's. Nothing while a script owns the collector
** or has stopped it (a switch would collect).
*/
void neap__host_gc_adapt (neap_host *h, lua_State *L) {
  int kb;
  if (!h->gc_auto || h->dying || lua_gc(L, LUA_GCISRUNNING) != 1) return;
  kb = lua_gc(L, LUA_GCCOUNT);
  if (h->gc_gen) {
    if (h->ntasks > NEAP_GC_INC_TASKS || kb > NEAP_GC_INC_KB)
      host_gc_set(h, L, 0);
  }
  else if (h->ntasks < NEAP_GC_GEN_TASKS && kb < NEAP_GC_GEN_KB &&
           uv_now(h->loop) - h->gc_switch_ms >= NEAP_GC_GEN_MS)
    host_gc_set(h, L, 1);
}

/*
** The idle collection. A collection runs only when Lua allocates, so the
** garbage a burst of work left (the strings of the lines it echoed, the
** coroutines of the tasks it ran) stays in memory while the host waits
** for the next event, and with it the pages the heap cannot give back.
** Once no task has run for NEAP_IDLE_GC_MS to 2 x NEAP_IDLE_GC_MS after
** some did, the host collects in full, frees its cached large read
** blocks and the spare buffer and gives the cached small blocks' pages back
** (neap__host_drop_caches: a burst of busy streams filled the caches), and
** gives the heap's free pages back (malloc_trim), as Node.js collects when
** idle. Only while the host owns
** the collector and the heap is at most NEAP_IDLE_GC_KB (a full collection
** of that takes some 10-20 ms: an event that comes meanwhile waits that
** long; a larger heap is left to the incremental pace). The timer is
** unreferenced: it keeps no loop alive, and it stops after collecting.
*/
#define NEAP_IDLE_GC_MS 250
#define NEAP_IDLE_GC_KB (32 * 1024)

static void host_idle_gc (uv_timer_t *tm) {
  neap_host *h = tm->data;
  if (h->dying) return;
  if (h->resumes != h->igc_seen) {   /* tasks ran since the last tick */
    h->igc_seen = h->resumes;
    return;
  }
  uv_timer_stop(tm);
  h->igc_armed = 0;
  neap__host_lalloc_drop(h);   /* (also when the collection is not the host's) */
  if (!h->gc_auto || lua_gc(h->L, LUA_GCISRUNNING) != 1 ||
      lua_gc(h->L, LUA_GCCOUNT) > NEAP_IDLE_GC_KB)
    return;
  lua_gc(h->L, LUA_GCCOLLECT);
  neap__host_drop_caches(h);
  neap__host_lalloc_drop(h);   /* (what the collection freed into them) */
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  h->igc_runs++;
}

static void host_idle_gc_arm (neap_host *h) {
  if (h->dying || !h->gc_auto) return;
  h->igc_seen = h->resumes - 1;   /* (the first tick sees this turn's work) */
  if (uv_timer_start(&h->igc, host_idle_gc, NEAP_IDLE_GC_MS,
                     NEAP_IDLE_GC_MS) == 0)
    h->igc_armed = 1;
}

/* The host of 'L', or NULL when it is gone (never raises). */
static neap_host *host_peek (lua_State *L) {
  neap_host **box = host_box(L);
  return box ? *box : NULL;
}

/*
** collectgarbage, wrapped (upvalue 1: Lua's own): a script that sets the
** mode or the pace ("generational", "incremental", "setpause",
** "setstepmul") takes the collector over, and the host stops switching.
** The arguments are checked here as Lua checks them, so that an error
** names collectgarbage (Lua's own, called from C, would be '?').
*/
static int host_collectgarbage (lua_State *L) {
  static const char *const opts[] = {"stop", "restart", "collect",
    "count", "step", "setpause", "setstepmul", "isrunning",
    "generational", "incremental", NULL};
  static const int nints[] = {0, 0, 0, 0, 1, 1, 1, 0, 2, 3};
  int o = luaL_checkoption(L, 1, "collect", opts), i, n;
  neap_host *h;
  for (i = 0; i < nints[o]; i++) (void)luaL_optinteger(L, 2 + i, 0);
  n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  if ((o == 5 || o == 6 || o == 8 || o == 9) && (h = host_peek(L)) != NULL) {
    h->gc_auto = 0;
    if (o >= 8 && lua_toboolean(L, 1)) h->gc_gen = o == 8;   /* (fail: refused) */
  }
  return lua_gettop(L);
}

/* Puts the wrapper in place of the global collectgarbage (once). */
static void host_wrap_collectgarbage (lua_State *L) {
  lua_pushglobaltable(L);
  lua_pushliteral(L, "collectgarbage");
  if (lua_rawget(L, -2) == LUA_TFUNCTION &&
      lua_tocfunction(L, -1) != host_collectgarbage) {
    lua_pushcclosure(L, host_collectgarbage, 1);   /* _G, wrapper */
    lua_pushliteral(L, "collectgarbage");
    lua_insert(L, -2);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  else lua_pop(L, 2);
}

/* A new host takes the collector of 'L': generational to begin with. */
static void host_take_gc (neap_host *h, lua_State *L) {
  h->gc_auto = 1;
  h->gc_gen = 0;
  host_gc_set(h, L, 1);
  h->gc_switches = 0;
  host_wrap_collectgarbage(L);
}

/* neap.core._gc_mode() -> mode, "host" | "script", switches, idle collections (for specs) */
static int host_gc_mode (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_pushstring(L, h->gc_gen ? "generational" : "incremental");
  lua_pushstring(L, h->gc_auto ? "host" : "script");
  lua_pushinteger(L, (lua_Integer)h->gc_switches);
  lua_pushinteger(L, (lua_Integer)h->igc_runs);
  return 4;
}

/* }====================================================== */

/*
** Closes every handle, then runs the loop until all the close callbacks
** have run. On the embedder's loop only neap's own callbacks are awaited.
*/
static void host_teardown (neap_host *h) {
  const neap_family *f;
  if (h->dying) return;
  neap__sched_close_all(h);   /* (needs Lua: before 'dying') */
  h->dying = 1;
  for (f = families; f->name != NULL; f++)   /* stop watching signals, children */
    if (f->stop) f->stop(h);
  neap__handle_close_all(h);
  neap__host_uvclose(h, (uv_handle_t *)&h->idle, host_internal_closed);
  neap__host_uvclose(h, (uv_handle_t *)&h->check, host_internal_closed);
  neap__host_uvclose(h, (uv_handle_t *)&h->async, host_internal_closed);
  neap__host_uvclose(h, (uv_handle_t *)&h->igc, host_internal_closed);
  h->pending_closes += 4;
  while (h->pending_closes > 0 || h->handles != NULL) {
    neap__handle_close_all(h);
    uv_run(h->loop, UV_RUN_NOWAIT);
    host_flush_foreign(h);
    neap__handle_release_pending(h);
  }
  free(h->foreign);
  h->foreign = NULL;
  h->capforeign = 0;
  neap__fs_free(h);   /* opens still on the thread pool */
  /* A pool thread still working (a slow name lookup, a stat) signals the
  ** loop when it is done: the loop and the host must outlive it. */
  while (h->pool_reqs > 0) uv_run(h->loop, UV_RUN_ONCE);
  {
    post_msg *p = h->posts, *next;
    for (; p; p = next) { next = p->next; free(p); }
    h->posts = h->posts_tail = NULL;
  }
  uv_mutex_destroy(&h->post_lock);
  neap__host_free_caches(h);
  free(h->ready);
  h->ready = NULL;
  free(h->tslot_free);
  h->tslot_free = NULL;
  h->rcount = h->rcap = 0;
}

static void host_free_loop (neap_host *h) {
  if (h->owns_loop) {
    uv_run(h->loop, UV_RUN_NOWAIT);
    uv_loop_close(h->loop);
    h->owns_loop = 0;
  }
}

/* __gc of the host's box: the Lua state is closing. */
static int host_gc (lua_State *L) {
  neap_host **box = lua_touserdata(L, 1), *h;
  if (box == NULL || lua_rawlen(L, 1) != NEAP_BOX_SIZE ||
      ((void **)box)[1] != (void *)&host_key)
    return 0;   /* (not the box: a userdata given its metatable) */
  h = *box;
  if (h == NULL) return 0;
  *box = NULL;
  host_teardown(h);
  if (!h->owns_L) {       /* a module in someone else's Lua: all is ours */
    host_free_loop(h);
    free(h->error);
    free(h);
  }
  return 0;
}

/* ====================================================== module */

static int task_is_done (neap_task *t) {
  return t->status == NEAP_T_DONE || t->status == NEAP_T_FAILED;
}

/* neap.core.run_until(task): runs the loop until 'task' has finished */
static int host_run_until (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_State *saved = h->L;
  int done = 0;
  neap_task *t = neap__task_check(L, 1);
  if (neap__sched_current(L) != NULL)
    return luaL_error(L, "neap.run: already inside a task");
  if (h->in_loop)
    return luaL_error(L, "neap.run: the loop is already running (from a coroutine "
                      "inside a task?): use neap.task and join instead");
  h->L = L;
  h->in_loop++;
  /* (no Lua call in here: an error would leave the loop marked running) */
  while (!(done = task_is_done(t)))
    if (uv_run(h->loop, UV_RUN_ONCE) == 0 && h->rcount == 0) {
      done = task_is_done(t);
      break;
    }
  h->in_loop--;
  h->L = saved;
  lua_pushboolean(L, done);
  return 1;
}

/* neap.core.loop([mode]): runs the loop ("default", "once" or "nowait") */
static int host_loop (lua_State *L) {
  static const char *const modes[] = {"default", "once", "nowait", NULL};
  static const uv_run_mode m[] = {UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT};
  neap_host *h = neap__host(L);
  lua_State *saved = h->L;
  int mode = 0, r, poke = 0;
  if (!lua_isnoneornil(L, 1)) {
    const char *ms = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (ms == NULL)
      return luaL_error(L, "bad argument #1 to 'loop' (string expected, got %s)",
                        luaL_typename(L, 1));
    for (mode = 0; modes[mode] && strcmp(modes[mode], ms) != 0; mode++) {}
    if (modes[mode] == NULL)
      return luaL_error(L, "bad argument #1 to 'loop' (invalid option '%s')", ms);
  }
  if (neap__sched_current(L) != NULL)
    return luaL_error(L, "neap.loop: already inside a task");
  if (h->in_loop)
    return luaL_error(L, "neap.loop: the loop is already running");
  h->L = L;
  h->in_loop++;
  /* "nowait" polls once even when only unreferenced handles are open (a
  ** stream being read that nothing waits on): libuv's uv_run would return
  ** at once. The idle handle, active, makes the poll not block. */
  if (mode == 2 && !uv_is_active((uv_handle_t *)&h->idle)) {
    uv_idle_start(&h->idle, neap__idle_noop);
    poke = 1;
  }
  r = uv_run(h->loop, m[mode]);
  if (poke && h->rcount == 0) uv_idle_stop(&h->idle);
  h->in_loop--;
  h->L = saved;
  lua_pushboolean(L, r != 0 || h->rcount != 0);
  return 1;
}

/* neap.core.set_post_handler(fn): fn(name, data) gets each neap_post */
static int host_set_post_handler (lua_State *L) {
  neap_host *h = neap__host(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "neap.post_handler");
  uv_async_send(&h->async);   /* posts that came before the handler */
  return 0;
}

static int host_handle_count (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_pushinteger(L, h->nhandles);
  return 1;
}

/* the read blocks kept for reuse, both sizes; then the small ones
** (spec/regress/14-04-keepalive-block_spec.lua, 16-14-read-blocks) */
static int host_block_count (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_pushinteger(L, h->nblocks + h->nsblocks);
  lua_pushinteger(L, h->nsblocks);
  lua_pushinteger(L, h->nsblocks - h->nsadv);   /* small ones not given back */
  return 3;
}

static void *host_lalloc (void *ud, void *ptr, size_t osize, size_t nsize);

/* neap.core._lalloc() -> bytes waiting in the small blocks' lists, small
** allocations served from them, from malloc, the lists' bound; nil when
** the state is not neap_new's (a stock lua5.4's allocator) (spec 16-16) */
static int host_lalloc_stats (lua_State *L) {
  neap_host *h = neap__host(L);
  void *ud;
  if (lua_getallocf(L, &ud) != host_lalloc || ud != h) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)h->la_bytes);
  lua_pushinteger(L, (lua_Integer)h->la_hits);
  lua_pushinteger(L, (lua_Integer)h->la_misses);
  lua_pushinteger(L, (lua_Integer)NEAP_LA_CACHE);
  return 4;
}

static int host_version (lua_State *L) {
  lua_pushstring(L, NEAP_VERSION);
  return 1;
}

int luaopen_neap_core (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"loop", host_loop},
    {"run_until", host_run_until},
    {"post_ref", host_post_ref},
    {"set_post_handler", host_set_post_handler},
    {"_handle_count", host_handle_count},
    {"_block_count", host_block_count},
    {"_gc_mode", host_gc_mode},
    {"_lalloc", host_lalloc_stats},
    {"version", host_version},
    {NULL, NULL}
  };
  neap_host *h;
  const neap_family *f;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  if (lua_isnil(L, -1)) {         /* a module: the host is made here */
    lua_pop(L, 1);
    h = calloc(1, sizeof *h);
    if (h == NULL) return luaL_error(L, "neap: out of memory");
    if (host_init(h, NULL) != 0) {
      free(h);
      return luaL_error(L, "neap: cannot make a libuv loop");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    h->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    host_newbox(L, h);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, host_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
    host_take_gc(h, L);
  }
  else lua_pop(L, 1);
  lua_newtable(L);
  for (f = families; f->name != NULL; f++) f->open(L);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}

/* ====================================================== Lua's allocator */

/*
** The state neap_new makes allocates through this (a script under a stock
** lua5.4 keeps that interpreter's allocator). Lua frees its garbage in
** bursts (a collection step sweeps hundreds of objects) and allocates
** again one object at a time; glibc's per-thread cache holds 7 blocks of a
** size, so most of those went through its arenas: 150-250 instructions
** per small allocation or free, and a 64-byte echoed line makes and frees
** two strings. Blocks of at most NEAP_LA_MAX bytes are made in classes 16
** bytes apart: a block of class k holds 16k - 8 bytes, which glibc keeps in
** a chunk of 16k, as it would any size of the class (rounding up to 16k
** bytes would take a larger chunk for half the sizes: 37 B more per idle
** connection). A freed block waits in its class's list, up to
** NEAP_LA_CACHE bytes in all; Lua passes
** the size of every block it frees or resizes, so no header is needed. The
** lists are emptied by the idle collection and at teardown. Under
** AddressSanitizer nothing is kept, so that a use after free is reported.
** (docs/performance.md, "Lua's allocator")
*/

#define la_class(n) (((n) + 23) >> 4)     /* 1 .. NEAP_LA_CLASSES */
#define la_size(k) (((size_t)(k) << 4) - 8)  /* what a block of class k holds */
#define la_chunk(k) ((k) == 1 ? 32 : (size_t)(k) << 4)   /* glibc's chunk of it */

static void la_put (neap_host *h, void *p, size_t osize) {
  size_t k = la_class(osize);
  if (h->la_bytes + la_chunk(k) > NEAP_LA_CACHE || !h->la_on) {
    free(p);
    return;
  }
  *(void **)p = h->la_free[k - 1];
  h->la_free[k - 1] = p;
  h->la_bytes += la_chunk(k);
}

/* A block of class 'k' from malloc (its list is empty); when memory runs
** out, the lists are given back and it is tried again. Out of line, so
** that the usual paths below save no registers. */
static __attribute__((noinline)) void *la_miss (neap_host *h, size_t k) {
  void *p;
  h->la_misses++;
  p = malloc(la_size(k));
  if (p == NULL && h->la_bytes > 0) {
    neap__host_lalloc_drop(h);
    p = malloc(la_size(k));
  }
  return p;
}

/* A block of class 'k': from its list, else from malloc. */
static void *la_get (neap_host *h, size_t k) {
  void *p = h->la_free[k - 1];
  if (p == NULL) return la_miss(h, k);
  h->la_free[k - 1] = *(void **)p;
  h->la_bytes -= la_chunk(k);
  h->la_hits++;
  return p;
}

void neap__host_lalloc_drop (neap_host *h) {
  int k;
  for (k = 0; k < NEAP_LA_CLASSES; k++)
    while (h->la_free[k] != NULL) {
      void *p = h->la_free[k];
      h->la_free[k] = *(void **)p;
      free(p);
    }
  h->la_bytes = 0;
}

/* realloc for a large block (or a fresh one: 'ptr' NULL); when memory runs
** out, the small blocks' lists are given back first and it is tried again */
static __attribute__((noinline)) void *la_large (neap_host *h, void *ptr,
                                                 size_t nsize) {
  void *p = realloc(ptr, nsize);
  if (p == NULL && h->la_bytes > 0) {
    neap__host_lalloc_drop(h);
    p = realloc(ptr, nsize);
  }
  return p;
}

static void *host_lalloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  neap_host *h = ud;
  if (ptr == NULL) {            /* ('osize' is then the kind of object) */
    if (nsize == 0) return NULL;
    return nsize <= NEAP_LA_MAX ? la_get(h, la_class(nsize)) : la_large(h, NULL, nsize);
  }
  if (osize > NEAP_LA_MAX) {    /* a large block: glibc's */
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return la_large(h, ptr, nsize <= NEAP_LA_MAX ? la_size(la_class(nsize)) : nsize);
  }
  if (nsize == 0) {
    la_put(h, ptr, osize);
    return NULL;
  }
  if (nsize > NEAP_LA_MAX) return la_large(h, ptr, nsize);
  if (la_class(nsize) == la_class(osize)) return ptr;
  /* another class: glibc's realloc, which can grow a chunk where it is
  ** (a stack or a table growing leaves no hole behind) */
  return la_large(h, ptr, la_size(la_class(nsize)));
}

/* What luaL_newstate installs, for a state made with our allocator: a
** panic that says why, and warnings off until "@on". */
static int host_panic (lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  fflush(stderr);
  return 0;   /* Lua aborts */
}

static void host_warn_off (void *ud, const char *msg, int tocont);
static void host_warn_on (void *ud, const char *msg, int tocont);

/* A part of a message being written; the last one ends the line. */
static void host_warn_cont (void *ud, const char *msg, int tocont) {
  fputs(msg, stderr);
  if (!tocont) fputs("\n", stderr);
  fflush(stderr);
  lua_setwarnf((lua_State *)ud, tocont ? host_warn_cont : host_warn_on, ud);
}

/* "@on" and "@off" (a whole message starting with '@') switch warnings. */
static int host_warn_control (void *ud, const char *msg, int tocont) {
  if (tocont || msg[0] != '@') return 0;
  if (strcmp(msg + 1, "on") == 0) lua_setwarnf((lua_State *)ud, host_warn_on, ud);
  else if (strcmp(msg + 1, "off") == 0)
    lua_setwarnf((lua_State *)ud, host_warn_off, ud);
  return 1;
}

static void host_warn_off (void *ud, const char *msg, int tocont) {
  (void)host_warn_control(ud, msg, tocont);
}

static void host_warn_on (void *ud, const char *msg, int tocont) {
  if (host_warn_control(ud, msg, tocont)) return;
  fputs("Lua warning: ", stderr);
  host_warn_cont(ud, msg, tocont);
}

/* ====================================================== C API */

neap_host *neap_new (uv_loop_t *loop) {
  neap_host *h = calloc(1, sizeof *h);
  lua_State *L;
  if (h == NULL) return NULL;
  if (host_init(h, loop) != 0) {
    free(h);
    return NULL;
  }
  L = lua_newstate(host_lalloc, h);
  if (L != NULL) {
    lua_atpanic(L, host_panic);
    lua_setwarnf(L, host_warn_off, L);
  }
  if (L == NULL) {
    neap__host_lalloc_drop(h);   /* what a failed lua_newstate freed */
    host_teardown(h);
    host_free_loop(h);
    free(h);
    return NULL;
  }
  h->L = L;
  h->owns_L = 1;
  luaL_openlibs(L);
  host_take_gc(h, L);
  host_newbox(L, h);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, host_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_neap_core);
  lua_setfield(L, -2, "neap.core");
  lua_pop(L, 1);
#ifdef NEAP_EMBED_LUA
  neap__lua_preload(L);
#endif
  return h;
}

lua_State *neap_lua (neap_host *h) { return h->L; }
uv_loop_t *neap_loop (neap_host *h) { return h->loop; }
const char *neap_error (neap_host *h) { return h->error; }

/* Starts the function on top of the stack, with 'n' arguments above it, as the main task. */
int neap__host_start_main (neap_host *h, int n) {
  lua_State *L = h->L;
  int fidx = lua_gettop(L) - n;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "neap.core");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    neap__host_set_error(h, lua_tostring(L, -1));
    lua_settop(L, fidx - 1);
    return 1;
  }
  lua_getfield(L, -1, "task");
  lua_remove(L, -2);              /* pop core */
  lua_insert(L, fidx);            /* task, f, args... */
  lua_call(L, n + 1, 1);
  h->main = neap__task_check(L, -1);
  h->main->is_main = 1;
  lua_setfield(L, LUA_REGISTRYINDEX, "neap.main");   /* keep it */
  return 0;
}

int neap_dofile (neap_host *h, const char *path, int argc, char **argv) {
  lua_State *L = h->L;
  int i, st;
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  if (path != NULL && strcmp(path, "-") == 0) path = NULL;
  st = luaL_loadfile(L, path);
  if (st != LUA_OK) {
    neap__host_set_error(h, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  luaL_checkstack(L, argc, "too many arguments");
  for (i = 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return neap__host_start_main(h, argc > 0 ? argc - 1 : 0);
}

int neap_dostring (neap_host *h, const char *code, const char *name) {
  lua_State *L = h->L;
  if (luaL_loadbuffer(L, code, strlen(code), name ? name : "=(string)")
      != LUA_OK) {
    neap__host_set_error(h, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return neap__host_start_main(h, 0);
}

int neap_run (neap_host *h) {
  h->in_loop++;
  uv_run(h->loop, UV_RUN_DEFAULT);
  h->in_loop--;
  return h->main_failed ? 1 : 0;
}

void neap_free (neap_host *h) {
  if (h == NULL) return;
  if (h->owns_L && h->L) {
    lua_close(h->L);       /* finalizers; the host's box tears down last */
    h->L = NULL;
    neap__host_lalloc_drop(h);
  }
  host_teardown(h);
  host_free_loop(h);
  free(h->error);
  free(h);
}
