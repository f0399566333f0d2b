/* SPDX-License-Identifier: MIT */
/*
** Internal declarations shared by the C core: the host, the handle base,
** tasks and the scheduler, streams. Every non-static symbol is neap__*.
*/
#ifndef NEAPI_H
#define NEAPI_H

#include <stddef.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "neap.h"
#include "buf.h"

typedef struct neap_handle neap_handle;
typedef struct neap_task neap_task;
typedef struct neap_stream neap_stream;

/* ====================================================== host */

typedef struct neap_foreign {   /* a close callback neap__host_uvclose deferred */
  uv_handle_t *uvh;
  uv_close_cb cb;
} neap_foreign;


/* Lua's small blocks (host.c): NEAP_LA_CLASSES classes, 16 bytes apart;
** class k holds 16k - 8 bytes (glibc's chunk of 16k), up to NEAP_LA_MAX */
#define NEAP_LA_CLASSES 16
#define NEAP_LA_MAX (16 * NEAP_LA_CLASSES - 8)
/* and at most this many bytes of them wait for reuse (none under ASan) */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NEAP_LA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(NEAP_LA_ASAN)
#define NEAP_LA_CACHE 0
#else
#define NEAP_LA_CACHE (1024 * 1024)
#endif
/* the emptied lists of gathered writes a host keeps (none under ASan, so
** that it sees a use of one after its stream let go of it) */
#if NEAP_LA_CACHE == 0
#define NEAP_PBUFS_KEEP 0
#else
#define NEAP_PBUFS_KEEP NEAP_SPARE_PBUFS
#endif

struct neap_host {
  uv_loop_t *loop;
  uv_loop_t own;           /* used when the host owns its loop */
  int owns_loop;
  lua_State *L;            /* the main thread */
  int owns_L;              /* made by neap_new (else: a module in someone's Lua) */
  int dying;               /* tearing down: callbacks must not touch Lua */
  uv_idle_t idle;          /* active while tasks are ready: poll won't block */
  uv_check_t check;        /* runs the ready tasks after each poll */
  neap_task **ready;       /* ready queue (a ring) */
  size_t rhead, rcount, rcap;
  neap_handle *handles;    /* every handle not yet freed */
  neap_handle *releases;   /* closed, to be released at the next check phase */
  int nhandles;            /* open ones (not closing) */
  int pending_closes;      /* uv_close calls whose callback has not run */
  neap_task *main;         /* the main task, if any */
  neap_stream *dirty;      /* streams with gathered writes to flush */
  char **blocks;           /* cache of free read blocks (64 KiB) */
  int nblocks;
  char **sblocks;          /* cache of free small read blocks (4 KiB pages) */
  int nsblocks, capsblocks;
  int nsadv;               /* the first nsadv of them were given back to the system (madvise) */
  int spare_refs[16];      /* emptied anchor tables of gathered writes, for reuse */
  int nspare;
#define NEAP_SPARE_PBUFS 64   /* (none kept under ASan: NEAP_PBUFS_KEEP) */
  uv_buf_t *spare_pbufs[NEAP_SPARE_PBUFS];   /* emptied lists of gathered writes
                                               (of the first size), for reuse */
  int nspare_pbufs;
  size_t pbufs_allocs;     /* tests: lists of gathered writes taken from malloc */
  char *wa;                /* the turn's small writes, copied (stream_write.c) */
  size_t wa_len;           /* bytes of it in use (none after each flush_all) */
  size_t wa_in, wa_out;    /* bytes copied into it, and out to write requests (tests) */
  char *spare;             /* one free read buffer larger than a block, or NULL */
  size_t spare_cap;
  size_t rbuf_grows;       /* tests: times a stream's read buffer had to grow */
  size_t rbuf_moves;       /* tests: times a stream's bytes moved from a small block to a large one */
  int main_failed;
  char *error;             /* last error text for the C API */
  uv_async_t async;        /* neap_post */
  uv_mutex_t post_lock;
  struct post_msg *posts, *posts_tail;
  int default_signals;     /* neap_exit_on_signals was called */
  uv_signal_t sigchld;     /* reaps the children (process.c) */
  struct neap_process *live;   /* its children not yet reaped */
  int nref;                /* live children that keep the loop alive */
  int sigwatch[65];        /* neap.signal watchers per signal number */
  int sigchld_on;
  int in_loop;             /* uv_run is on the C stack: no re-entry */
  int in_tasks;            /* ready tasks are running (writes are gathered) */
  int gc_stress;           /* NEAP_GC_STRESS set: a full collection at every task switch */
#define NEAP_MAX_INTERNAL 8
  int internal_fds[NEAP_MAX_INTERNAL];   /* opened by libuv for the loop itself */
  int ninternal;
  int opens;               /* neap.open requests in flight (fs.c) */
  neap_foreign *foreign;   /* handles the embedder closed (neap__host_uvclose) */
  int nforeign, capforeign;
  int pool_reqs;           /* other thread-pool requests in flight (a name
                              lookup, neap.stat...): teardown waits for them */
  size_t write_piece;      /* tests: the longest uv_buf_t a write makes (0: NEAP_WRITE_PIECE) */
  void (*main_end) (neap_host *h);   /* the main task has ended (a neap.thread's host) */
  void (*pre_resume) (lua_State *co);  /* before each task's resume (a neap.thread's host) */
  int *tslot_free;         /* sched.c: anchor slots of finished tasks, for reuse */
  int tslot_nfree, tslot_cap;
  int tslot_next;          /* the next anchor slot never used (from 1) */
  int ntasks;              /* unfinished tasks (anchored, sched.c) */
  unsigned char gc_auto;   /* the host picks the collector's mode (no script has) */
  unsigned char gc_gen;    /* that mode: generational (1) or incremental (0) */
  unsigned gc_switches;    /* times the host switched it (tests) */
  uint64_t gc_switch_ms;   /* uv_now at the last switch */
  uv_timer_t igc;          /* the idle collection's timer (host.c) */
  unsigned char igc_armed; /* it runs */
  unsigned long resumes;   /* task resumes so far (sched.c) */
  unsigned long igc_seen;  /* 'resumes' at the timer's last tick */
  unsigned igc_runs;       /* idle collections done (tests) */
  /* Lua's allocator (host.c, neap_new's state only): free small blocks by
  ** size class of 16 bytes, a list linked through each block's first word */
  void *la_free[NEAP_LA_CLASSES];
  size_t la_bytes;         /* their blocks' chunks in glibc: bytes */
  unsigned char la_on;     /* freed blocks are kept (generational mode) */
  unsigned long la_hits, la_misses;   /* small allocations (tests) */
};

neap_host *neap__host (lua_State *L);
void neap__host_lalloc_drop (neap_host *h);
void neap__idle_noop (uv_idle_t *idle);
/* A timeout of this many seconds or more (math.huge) is no timeout. */
#define NEAP_FOREVER 1e15
/*
** The most bytes one uv_buf_t carries: uv_buf_init takes an unsigned int
** (32 bits, as is the length itself on Windows), so a longer string is
** written as several buffers, never truncated.
*/
#define NEAP_WRITE_PIECE ((size_t)1 << 30)
int neap__host_owns_fd (neap_host *h, int fd);   /* one of the loop's own */
void neap__host_uvclose (neap_host *host, uv_handle_t *uvh, uv_close_cb cb);
void neap__host_uvclose_counted (neap_host *host, uv_handle_t *uvh,
                                 uv_close_cb cb);   /* cb calls neap__host_closed */
extern __thread lua_State *volatile neap__sched_running;   /* the task thread being resumed (per OS thread) */
void neap__fs_free (neap_host *h);   /* teardown: release and wait for opens in flight */
void neap__host_closed (neap_host *h);  /* a uv_close callback has run */
void neap__host_set_error (neap_host *h, const char *msg);
int neap__host_start_main (neap_host *h, int n);   /* function and n args on top: the main task */
/* The collector's mode, checked now (host.c); 'L' is the running thread. */
void neap__host_gc_adapt (neap_host *h, lua_State *L);

/* ====================================================== handles */

#define NEAP_H_CLOSING  1u   /* close() was called */
#define NEAP_H_UVCLOSE  2u   /* uv_close was started */
#define NEAP_H_UNCOUNTED 4u  /* no longer counted as open (its fd was given back) */
#define NEAP_H_DETACHING 8u  /* its libuv handle is closing early (neap__handle_detach_uv) */
#define NEAP_H_UVGONE   16u  /* its libuv handle has closed; the struct lives on */

typedef struct neap_handle_vt {
  const char *mt;                      /* metatable name, "neap.stream" */
  const char *what;                    /* "stream", in messages */
  void (*close) (neap_handle *h);      /* wake waiters, start uv_close */
  void (*force) (neap_handle *h);      /* teardown: uv_close now */
  void (*release) (neap_handle *h);    /* frees what the kind owns (not 'h'), or NULL */
} neap_handle_vt;

struct neap_handle {
  const neap_handle_vt *vt;
  neap_host *host;
  neap_handle **box;       /* the Lua box that points here, or NULL */
  int anchor;              /* registry ref keeping the box alive, or LUA_NOREF */
  int cbref;               /* registry ref of a callback table, or LUA_NOREF */
  unsigned flags;
  neap_handle *next, *prev;
  neap_handle *next_release;   /* on the host's list of releases put off */
};

neap_handle **neap__handle_newbox (lua_State *L, const char *mt);

/*
** A handle's box: the pointer to its struct, then a tag, the address of
** its metatable's name ('mt'). Telling a box's type by the tag costs two
** compares; by the metatable (lua_getmetatable, lua_rawequal and a pop) it
** cost about 140 instructions, paid twice per echoed line (lines() and
** write). Lua code cannot make a full userdata, and C code would have to
** put our name's address in one of exactly this size; a box given another
** metatable (debug.setmetatable) is still the box it was.
*/
#define NEAP_BOX_SIZE (2 * sizeof(void *))
static inline neap_handle **neap__box_test (lua_State *L, int idx,
                                            const char *mt) {
  void **box = lua_touserdata(L, idx);
  if (box == NULL || lua_rawlen(L, idx) != NEAP_BOX_SIZE ||   /* (first: */
      box[1] != (const void *)mt)        /* a light userdata has length 0) */
    return NULL;
  return (neap_handle **)box;
}

/* The box at 'idx' of type 'mt', open or closed; raises when it is not one */
static inline neap_handle **neap__box_check (lua_State *L, int idx,
                                             const char *mt) {
  neap_handle **box = neap__box_test(L, idx, mt);
  if (box == NULL) luaL_typeerror(L, idx, mt);
  return box;
}

/*
** neap's other userdata (a task, a buffer, an HTTP parser, a WebSocket
** reader) carry the same tag in a field 'tag' of their struct, set when
** made: the test checks the userdata's size and that field, so a userdata
** given one of their metatables (debug.setmetatable) is refused, as a
** handle's box is, instead of being read as ours (a crash, or a double
** free at its __gc).
*/
static inline void *neap__udata_test_ (lua_State *L, int idx, const char *mt,
                                       size_t size, size_t off) {
  char *u = lua_touserdata(L, idx);
  if (u == NULL || lua_rawlen(L, idx) != size ||
      *(const char *const *)(void *)(u + off) != mt)
    return NULL;
  return u;
}
static inline void *neap__udata_check_ (lua_State *L, int idx, const char *mt,
                                        size_t size, size_t off) {
  void *u = neap__udata_test_(L, idx, mt, size, off);
  if (u == NULL) luaL_typeerror(L, idx, mt);
  return u;
}
#define neap__udata_test(L, idx, type, mt) \
  ((type *)neap__udata_test_(L, idx, mt, sizeof(type), offsetof(type, tag)))
#define neap__udata_check(L, idx, type, mt) \
  ((type *)neap__udata_check_(L, idx, mt, sizeof(type), offsetof(type, tag)))

void neap__handle_init (neap_host *host, neap_handle *h,
                        const neap_handle_vt *vt, neap_handle **box);
void *neap__handle_check (lua_State *L, int idx, const char *mt,
                          const char *what);
void *neap__handle_test (lua_State *L, int idx, const char *mt);
void neap__handle_close (neap_handle *h);
int neap__handle_close_l (lua_State *L, const char *mt);
void neap__handle_uvclose (neap_handle *h, uv_handle_t *uvh);
int neap__handle_closing (neap_handle *h);
void neap__handle_release (neap_handle *h);
void neap__handle_release_later (neap_handle *h);
void neap__handle_release_pending (neap_host *host);
void neap__handle_undo_init (neap_handle *h);
void neap__handle_detach_uv (neap_handle *h, uv_handle_t *uvh);
void neap__handle_uncount (neap_handle *h);
void neap__handle_anchor (lua_State *L, neap_handle *h, int idx);
void neap__handle_unanchor (neap_handle *h);
int neap__handle_gc (lua_State *L);
void neap__handle_close_all (neap_host *host);

/* ====================================================== tasks */

enum { NEAP_T_READY, NEAP_T_RUNNING, NEAP_T_PARKED, NEAP_T_DONE,
       NEAP_T_FAILED };

typedef void (*neap_unpark_fn) (neap_task *t);

struct neap_task {
  neap_host *host;         /* (also its tag: see sched.c, task_test) */
  lua_State *co;           /* the task's thread */
  /* (small: a parked task's object is part of the heap that 100,000 tasks
  ** or connections cost; 80 bytes. Its name, if any, is in its box's
  ** second user value, see sched.c) */
  unsigned char status;    /* NEAP_T_* */
  unsigned char wait_kind; /* what a parked task waits for (per wait list) */
  unsigned short cancelled : 1;
  unsigned short started : 1;
  unsigned short quiet : 1;       /* failures are not printed */
  unsigned short cancel_raise : 1;   /* the next resume raises "cancelled" */
  unsigned short by_cancel : 1;   /* it failed with the cancellation error */
  unsigned short is_main : 1;     /* a main chunk: its failure ends the binary */
  unsigned short closing : 1;     /* a failing task's <close> handlers are running */
  unsigned short no_results : 1;  /* it returned nothing (no table kept) */
  unsigned short timed_out_ok : 1;   /* a timeout is a normal wake (sleep) */
  unsigned short serve : 1;       /* a server:serve handler: its box's second
                                     user value holds the connection, closed
                                     at its end */
  int resume_n;            /* values given to the running resume */
  int nargs;               /* values waiting on co's stack for the resume */
  int slot;                /* its anchor slot while unfinished (sched.c), or 0 */
  lua_KFunction post_k;    /* see neap__sched_park_post */
  uv_timer_t *timer;       /* timeouts; made on first use */
  /* (a parked task has an unpark and what it is parked on; a woken one
  ** has neither, and may have a fill: they share the memory. task_wake
  ** clears unpark and parked_on before a fill is set, and a fill is taken
  ** before the task parks again) */
  union {
    neap_unpark_fn unpark;   /* parked: detaches the task from what it waits on */
    int (*fill) (lua_State *L, void *ud);   /* woken: see neap__sched_wake_fill */
  };
  union {
    void *parked_on;         /* parked: what it waits on */
    void *fill_ud;           /* woken: the fill's argument */
  };
  neap_task *link;         /* in a wait list of whatever it waits on */
  neap_task *joiners;      /* tasks parked in join() */
};

neap_task *neap__sched_current (lua_State *L);
neap_task *neap__task_check (lua_State *L, int idx);
neap_task *neap__sched_check (lua_State *L, const char *fname);
int neap__sched_park (lua_State *L, neap_task *t, double timeout,
                      neap_unpark_fn unpark, void *on);
void neap__sched_wake (neap_task *t, int n);
typedef int (*neap_push_fn) (lua_State *L, void *ud);
int neap__sched_wake_with (neap_task *t, neap_push_fn push, void *ud);
void neap__sched_wake_error (neap_task *t, int uverr);
void neap__sched_wake_closed (neap_task *t);
void neap__sched_wake_fill (neap_task *t, neap_push_fn fill, void *ud);
void neap__sched_fill_now (neap_task *t);
int neap__sched_park_post (lua_State *L, neap_task *t, double timeout,
                           neap_unpark_fn unpark, void *on, lua_KFunction post);
void neap__sched_ready (neap_host *h, neap_task *t);
int neap__sched_open (lua_State *L);
int neap__sched_spawn (lua_State *L);   /* neap.task(fn, ...) as a lua_CFunction */
void neap__sched_run_ready (neap_host *h);
void neap__sched_close_all (neap_host *h);

/* ====================================================== the auxiliary library (auxlib.c) */

double neap__opt_timeout (lua_State *L, int idx, const char *fname);  /* {timeout=} */
double neap__opt_seconds (lua_State *L, int idx, const char *fname);  /* a number */
double neap__check_seconds (lua_State *L, double t, int idx, const char *fname);
void neap__newmeta (lua_State *L, const char *name, const luaL_Reg *meth,
                    const luaL_Reg *metameth);
void neap__newhandlemeta (lua_State *L, const char *name, const luaL_Reg *meth,
                          lua_CFunction tostring);   /* __gc, __close, __tostring */
uint64_t neap__ms (double seconds);   /* seconds to libuv ms, clamped */

int neap__pcall (lua_State *L, lua_CFunction f, void *ud);
struct sockaddr;
struct sockaddr_storage;
int neap__parse_addr (const char *host, int port, struct sockaddr_storage *ss);
int neap__push_addr (lua_State *L, const struct sockaddr *sa, int family);
int neap__reuseport (uv_handle_t *h);   /* SO_REUSEPORT on a socket not yet bound: 0 or a UV error */
int neap__check_delims (lua_State *L, int idx, const char *fname,
                        neap_delim *d, int room, neap_delim **out);
int neap__push_error (lua_State *L, int uverr);    /* nil, msg, code: 3 */
int neap__push_fail (lua_State *L, const char *word);  /* nil, w, w: 3 */
int neap__push_closed (lua_State *L);  /* nil, "closed", "ECLOSED": 3 */
int neap__auxlib_open (lua_State *L);

/* ====================================================== streams */

typedef struct neap_stream_backend neap_stream_backend;

/* (one: the common read_until of one delimiter; a list of more lives in a
** userdata on the reader's stack while it waits) */
#define NEAP_INLINE_DELIMS 1

typedef struct neap_readreq {
  neap_frame f;
  neap_delim d[NEAP_INLINE_DELIMS];
} neap_readreq;

/* A stream's libuv handle: only the member for its kind is allocated. */
typedef union neap_uvs {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
  uv_tty_t tty;
  uv_poll_t poll;
} neap_uvs;

/*
** What only some streams use, in an allocation of its own (s->x) made when
** a stream becomes a file, a polled descriptor or TLS (neap__stream_x):
** most streams are sockets, and 10,000 idle ones should not carry it.
** Freed with the stream, in its release (the end of its uv_close).
*/
typedef struct neap_stream_x {
  /* limits set by s:set_limits or s:_drain (the defaults: NEAP_S_HWM...) */
  size_t hwm, lwm;         /* write high and low water */
  size_t rhwm;             /* read: pause over this many unconsumed bytes */
  size_t max_frame;
  size_t drain_saved;      /* s:_drain: the read high-water mark to restore */
  double wtimeout;         /* a writer parks at most this long (-1: no limit) */
  int64_t offset;          /* files: next read offset, -1 for current */
  uv_fs_t *fsreq;          /* files: the read in flight */
  struct neap_fwrite *fq, *fq_tail;   /* files and polls: queued writes */
  struct neap_tls *tls;    /* TLS: the stream's engine (tlsstream.c), see neap__stls */
  neap_task *hs_waiter;    /* TLS: the task waiting for the handshake */
  int seek_gen;            /* files: a read in flight from before a seek is dropped */
  int pevents;             /* polls: the events watched */
  unsigned char append;    /* files: opened for appending */
  unsigned char tls_hs;    /* TLS: its handshake is under way */
} neap_stream_x;

struct neap_stream {
  neap_handle h;
  const neap_stream_backend *be;
  neap_buf rb;
  neap_readreq rq;         /* the parked reader's request */
  neap_task *reader;
  neap_task *writers;      /* parked on backpressure or flush, in order */
  uv_buf_t *pbufs;         /* gathered writes not yet given to libuv */
  size_t pending;          /* their bytes (also counted in 'queued') */
  neap_stream *next_dirty;
  size_t queued;           /* bytes written but not yet sent */
  neap_task *cb_task;      /* s:on's pump while it runs: the only task that may read */
  neap_task *filling;      /* woken with a frame it has not taken yet */
  neap_stream_x *x;        /* files, polls, TLS: see above; or NULL */
  int npb, capb;
  int pref, pn, pn_hint;   /* registry ref of the table anchoring them; count */
  int nwrites;             /* write requests in flight */
  short err;               /* sticky read error (a libuv error or NEAP_ETLS: 16 bits) */
  short werr;              /* sticky write error */
  int fd;                  /* files and polled fds, or -1 */
  int cb_anchor;           /* s:on, armed: registry ref of the box, or LUA_NOREF */
  signed char fill_r;      /* 'filling''s frame's outcome (NEAP_FRAME_*) */
  unsigned char kind;      /* NEAP_S_* */
  /* (flags as bits: 10,000 idle connections are 10,000 streams) */
  unsigned char dirty : 1;            /* on the host's list of streams to flush */
  unsigned char reading : 1;          /* reads started */
  unsigned char started_reading : 1;  /* a first read was asked for */
  unsigned char eof : 1;
  unsigned char shut : 1;             /* shutdown requested */
  unsigned char sync_writes : 1;      /* stdout/stderr: blocking writes, after fflush */
  unsigned char release_at_eof : 1;   /* a child's output pipe: close the fd at EOF */
  unsigned char released : 1;         /* its fd was given back at EOF (the handle lives on) */
  unsigned char cb_owned : 1;         /* s:on callbacks are set: other tasks may not read */
  unsigned char cb_armed : 1;         /* no pump runs: a frame (rq) starts one (stream_fire) */
  unsigned char rbig : 1;             /* its reads fill small blocks: it takes 64 KiB ones */
  unsigned char rsmall : 2;           /* consecutive small reads into a large block (back to small ones at SMALL_READS) */
};

/* A stream's libuv handle: right after the struct, sized for its kind. */
static inline neap_uvs *neap__su (neap_stream *s) {
  return (neap_uvs *)(s + 1);
}

/* A TLS stream's engine, or NULL (in s->x: most streams are not TLS). */
static inline struct neap_tls *neap__stls (const neap_stream *s) {
  return s->x ? s->x->tls : NULL;
}

/* s->x, made on first use (NULL: out of memory). */
neap_stream_x *neap__stream_x (neap_stream *s);
/* The limits of a stream with no s->x. */
#define NEAP_S_HWM (256 * 1024)
#define NEAP_S_LWM (64 * 1024)
#define NEAP_S_RHWM (256 * 1024)
static inline size_t neap__s_hwm (const neap_stream *s) {
  return s->x ? s->x->hwm : NEAP_S_HWM;
}
static inline size_t neap__s_lwm (const neap_stream *s) {
  return s->x ? s->x->lwm : NEAP_S_LWM;
}
static inline size_t neap__s_rhwm (const neap_stream *s) {
  return s->x ? s->x->rhwm : NEAP_S_RHWM;
}
static inline size_t neap__s_max_frame (const neap_stream *s) {
  return s->x ? s->x->max_frame : NEAP_DEFAULT_MAX_FRAME;
}
static inline double neap__s_wtimeout (const neap_stream *s) {
  return s->x ? s->x->wtimeout : -1;
}
/* A file read is in flight (the read buffer must stay). */
static inline int neap__stream_fs_busy (const neap_stream *s) {
  return s->x != NULL && s->x->fsreq != NULL;
}

enum { NEAP_S_TCP, NEAP_S_PIPE, NEAP_S_TTY, NEAP_S_FILE, NEAP_S_POLL,
       NEAP_S_NONE };

struct neap_stream_backend {
  int (*read_start) (neap_stream *s);
  void (*read_stop) (neap_stream *s);
  void (*close) (neap_stream *s);
  /* NULL for libuv streams; else queues 'nb' buffers (total bytes) kept
  ** alive by registry ref 'ref', which the backend releases */
  int (*write) (neap_stream *s, uv_buf_t *bufs, int nb, size_t total, int ref);
  void (*release) (neap_stream *s);   /* at the end: descriptors, queues; or NULL */
};

extern const neap_stream_backend neap__none_backend;
void neap__stream_deliver (neap_stream *s);
void neap__stream_flow (neap_stream *s);
void neap__stream_release_buf (neap_stream *s);   /* an emptied read buffer: to the block cache */
void neap__stream_take_buf (neap_stream *s);      /* a read buffer from the block cache */
void neap__host_drop_caches (neap_host *h);       /* idle: cached read blocks freed or given back, the spare, an empty turn arena */
void neap__host_free_caches (neap_host *h);       /* teardown: all of them freed */
int neap__stream_at_end (neap_stream *s);
void neap__stream_wake_writer (neap_stream *s);
void neap__stream_flush_all (neap_host *h);
void neap__stream_wake_writers_closed (neap_stream *s);
void neap__stream_drop_pending (neap_stream *s);
void neap__stream_flush_pending (neap_stream *s);
void neap__stream_undirty (neap_stream *s);
int neap__stream_write_open (lua_State *L);
int neap__stream_write_owned (neap_stream *s, neap_buf *b, size_t len);
void neap__stream_release_pending (neap_stream *s);
void neap__stream_free_pbufs (neap_stream *s);
char *neap__stream_reserve (neap_stream *s, size_t *avail);
neap_stream **neap__stream_box (lua_State *L, int idx);
void neap__stream_mark_dirty (neap_stream *s);
int neap__stream_push_err (lua_State *L, neap_stream *s, int err);
void neap__stream_wake_err (neap_task *t, neap_stream *s, int err);
/* TLS inside a stream (tlsstream.c); NEAP_ETLS: the engine says why */
#define NEAP_ETLS (-30001)
void neap__tls_input (neap_stream *s, ssize_t nread);
void neap__tls_flush_pending (neap_stream *s);
void neap__tls_shutdown_stream (neap_stream *s);
int neap__tls_push_error (lua_State *L, neap_stream *s);
int neap__tlsstream_open (lua_State *L);
int neap__bufs_advance (uv_buf_t *bufs, int nb, size_t n);
/* stream methods defined in other files; stream.c installs them all */
extern const luaL_Reg neap__stream_write_meth[], neap__tcp_stream_meth[],
                      neap__fs_stream_meth[], neap__fsops_stream_meth[],
                      neap__tls_stream_meth[];
int neap__file_write_sync (neap_stream *s, uv_buf_t *bufs, int nb);
int neap__stream_init_poll (neap_stream *s, int fd);
int neap__fs_open (lua_State *L);
int neap__fsops_open (lua_State *L);
int neap__watch_open (lua_State *L);

neap_stream *neap__stream_new (lua_State *L, int kind);
int neap__stream_init_uv (neap_stream *s);   /* after u.* was initialised */
int neap__stream_init_file (neap_stream *s, int fd, int64_t offset);   /* 0 or UV_ENOMEM */
neap_stream *neap__stream_check (lua_State *L, int idx);
neap_stream *neap__stream_check_io (lua_State *L, int idx);  /* NULL: closed */
int neap__is_stream (lua_State *L, int idx);   /* by address, no lookup by name */
int neap__stream_open (lua_State *L);
void neap__stream_ref (neap_stream *s, int on);
int neap__stream_wrap_fd (lua_State *L, int fd, int std);

/* ====================================================== the rest */

int neap__tcp_open (lua_State *L);
int neap__process_open (lua_State *L);
int neap__signal_open (lua_State *L);
void neap__signal_free (neap_host *h);
int neap__udp_open (lua_State *L);
int neap__bufobj_open (lua_State *L);
neap_buf *neap__bufobj_test (lua_State *L, int idx);   /* a neap.buffer's bytes, or NULL */
int neap__http_open (lua_State *L);   /* llhttp over stream buffers (http.c) */
int neap__ws_open (lua_State *L);     /* WebSocket framing over stream buffers (ws.c) */
const char *neap__signal_name (int sig);
int neap__check_signal (lua_State *L, int idx, const char *fname);
void neap__process_kill_all (neap_host *h, int sig);
void neap__process_free (neap_host *h);
int neap__timer_open (lua_State *L);
int neap__thread_open (lua_State *L);   /* neap.thread (thread.c) */
void neap__thread_stop (neap_host *h);
int neap__lua_preload (lua_State *L);

#endif
