/* SPDX-License-Identifier: MIT */
/*
** Streams: one interface over TCP, Unix sockets, pipes, TTYs, files and
** closed descriptors. Reads land at the tail of the stream's buffer (the
** alloc callback hands out its free space), framing scans only new bytes,
** and a complete frame wakes the one parked reader. Writes try
** uv_try_write first and queue the rest without copying; a writer above
** the high-water mark parks until the queue drains below the low one.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "neapi.h"
#include "tls.h"

#define STREAM_MT "neap.stream"
#define READ_CHUNK (64 * 1024)


#define stream_deliver neap__stream_deliver
#define stream_flow neap__stream_flow

/* ====================================================== helpers */

neap_stream *neap__stream_check (lua_State *L, int idx) {
  return neap__handle_check(L, idx, STREAM_MT, "stream");
}

/*
** The stream at 'idx' for a read or a write, or NULL when it is closed:
** I/O on a closed stream is an outcome (nil, "closed", "ECLOSED"), not a
** mistake. Raises when 'idx' is not a stream (by the box's tag: a
** userdata given the streams' metatable is not one).
*/
neap_stream *neap__stream_check_io (lua_State *L, int idx) {
  neap_handle **box = neap__box_test(L, idx, STREAM_MT);
  if (box == NULL) luaL_typeerror(L, idx, STREAM_MT);   /* the usual error */
  return (neap_stream *)*box;
}

/* The box of the stream at 'idx' (its stream, or NULL once it is closed);
** raises when 'idx' is not a stream. A caller that runs Lua code (which
** may close it) reads the stream from the box again after that. */
neap_stream **neap__stream_box (lua_State *L, int idx) {
  neap_handle **box = neap__box_test(L, idx, STREAM_MT);
  if (box == NULL) luaL_typeerror(L, idx, STREAM_MT);   /* the usual error */
  return (neap_stream **)box;
}

/* Whether the value at 'idx' is a stream (open or closed), by address. */
int neap__is_stream (lua_State *L, int idx) {
  return neap__box_test(L, idx, STREAM_MT) != NULL;
}

int neap__stream_at_end (neap_stream *s) {
  return s->eof || s->err || (s->h.flags & NEAP_H_CLOSING);
}

/* Keeps the loop alive while a task waits on 's' or callbacks are set. */
void neap__stream_ref (neap_stream *s, int on) {
  (void)on;   /* (the state says it: reasons are a parked reader or writer) */
  if (s->kind == NEAP_S_FILE || s->kind == NEAP_S_NONE) return;
  if ((s->h.flags & NEAP_H_UVCLOSE) || s->released) return;
  if (s->reader || s->writers || (s->x && s->x->hs_waiter) || s->cb_armed)
    uv_ref(&neap__su(s)->handle);
  else uv_unref(&neap__su(s)->handle);
}

/* Wakes the parked reader of 's' with nil, "closed", "ECLOSED". */
static void stream_wake_closed (neap_task **slot) {
  neap_task *t = *slot;
  if (t == NULL) return;
  *slot = NULL;
  neap__sched_wake_closed(t);
}

/* Pushes nil, message, code for the error 'err' of 's' (ETLS: the engine's words). */
int neap__stream_push_err (lua_State *L, neap_stream *s, int err) {
  if (err == NEAP_ETLS && neap__stls(s)) return neap__tls_push_error(L, s);
  return neap__push_error(L, err);
}

typedef struct err_push {
  neap_stream *s;
  int err;
} err_push;

static int push_stream_err (lua_State *L, void *ud) {
  err_push *ep = ud;
  return neap__stream_push_err(L, ep->s, ep->err);
}

/* Wakes 't' with the error 'err' of 's'. */
void neap__stream_wake_err (neap_task *t, neap_stream *s, int err) {
  err_push ep;
  ep.s = s;
  ep.err = err;
  neap__sched_wake_with(t, push_stream_err, &ep);
}

/* ====================================================== uv streams */

/*
** Read blocks: an empty stream gives its block back (an idle connection
** holds none) to a small per-host cache, and takes one from it when data
** comes, so a busy stream does not malloc and free per read. A stream
** starts with a small block (4 KiB): a readable stream costs what its
** messages need, not 64 KiB (a host with 2,000 busy small-message streams
** held 2,000 x 64 KiB of heap, and its RSS crept towards that as the
** blocks' pages were touched at different offsets). A read that fills a
** small block, or a frame longer than half of one, moves the stream to
** 64 KiB blocks (its bytes, at most 4 KiB, are copied over once); three
** reads in a row of less than 1 KiB into large blocks move it back (one
** would not do: a stream whose messages end in a short read, 4,500 B as
** 4,096 + 404, would fill a small block and copy it for every message).
** A buffer that grew past a block (a bulk reader behind its data) is kept
** as the host's one spare and reused by the next stream that must grow, so
** a bulk transfer does not realloc and fault in fresh pages each time its
** buffer empties.
*/
#define BLOCK READ_CHUNK
#define BLOCK_CACHE 64
#define SBLOCK 4096
#define SBLOCK_CACHE 4096
#define SREAD_ROOM (SBLOCK / 2)
#define SMALL_READ 1024
#define SMALL_READS 3   /* (rsmall counts to SMALL_READS - 1) */
#define SPARE_MAX (4u << 20)

/* Keeps a free small block (a page of its own) in the cache: false when it
** is full or cannot grow, or the buffer is not such a block. */
static int cache_sblock (neap_host *h, char *base) {
  if (((uintptr_t)base & (SBLOCK - 1)) != 0) return 0;
  if (h->nsblocks == h->capsblocks) {
    int ncap = h->capsblocks ? h->capsblocks * 2 : 64;
    char **nb;
    if (ncap > SBLOCK_CACHE) return 0;
    if ((nb = realloc(h->sblocks, (size_t)ncap * sizeof *nb)) == NULL) return 0;
    h->sblocks = nb;
    h->capsblocks = ncap;
  }
  h->sblocks[h->nsblocks++] = base;
  return 1;
}

/* Gives a read buffer back: a block to its cache, a larger one as the spare. */
static void host_give_back (neap_host *h, char *base, size_t cap) {
  if (cap == SBLOCK && cache_sblock(h, base))
    return;
  if (cap == BLOCK && h->nblocks < BLOCK_CACHE && h->blocks != NULL)
    h->blocks[h->nblocks++] = base;
  else if (cap > BLOCK && cap <= SPARE_MAX && cap > h->spare_cap) {
    free(h->spare);   /* (the larger one is kept) */
    h->spare = base;
    h->spare_cap = cap;
  }
  else free(base);
}

/* An emptied read buffer goes back: a block to the cache, a larger one as the spare. */
void neap__stream_release_buf (neap_stream *s) {
  host_give_back(s->h.host, s->rb.base, s->rb.cap);
  s->rb.base = NULL;   /* (the 'consumed' count goes on) */
  s->rb.head = s->rb.tail = s->rb.cap = 0;
  if (s->npb == 0) neap__stream_free_pbufs(s);   /* nor a list of writes to gather */
}

/*
** The idle collection's part: frees the cached large blocks and the spare,
** gives the cached small blocks' pages back to the system (they stay
** allocated, so they leave no holes between the connections' objects that
** malloc_trim could not give back; a page comes back zeroed at its next
** use), and frees the turn arena of small writes when nothing is in it.
*/
void neap__host_drop_caches (neap_host *h) {
  while (h->nblocks > 0) free(h->blocks[--h->nblocks]);
  for (; h->nsadv < h->nsblocks; h->nsadv++)
    (void)madvise(h->sblocks[h->nsadv], SBLOCK, MADV_DONTNEED);
  free(h->spare);
  h->spare = NULL;
  h->spare_cap = 0;
  if (h->wa_len == 0) {
    free(h->wa);
    h->wa = NULL;
  }
  while (h->nspare_pbufs > 0) free(h->spare_pbufs[--h->nspare_pbufs]);
}

/* Teardown: every cached block freed. */
void neap__host_free_caches (neap_host *h) {
  neap__host_drop_caches(h);
  while (h->nsblocks > 0) free(h->sblocks[--h->nsblocks]);
  h->nsadv = 0;
  free(h->sblocks);
  h->sblocks = NULL;
  h->capsblocks = 0;
  free(h->blocks);
  h->blocks = NULL;
  free(h->wa);
  h->wa = NULL;
}

/* A free block of 'size' (BLOCK or SBLOCK) from its cache, or a new one. */
static char *host_block (neap_host *h, size_t size) {
  void *p;
  if (size == SBLOCK) {
    if (h->nsblocks > 0) {
      if (--h->nsblocks < h->nsadv) h->nsadv = h->nsblocks;
      return h->sblocks[h->nsblocks];
    }
    /* a page of its own: the idle collection can give it back whole */
    return posix_memalign(&p, SBLOCK, SBLOCK) == 0 ? p : NULL;
  }
  if (h->blocks == NULL && (h->blocks = malloc(BLOCK_CACHE * sizeof(char *))) == NULL)
    return NULL;
  if (h->nblocks > 0) return h->blocks[--h->nblocks];
  return malloc(size);   /* (a block, so that it goes back to the cache) */
}

void neap__stream_take_buf (neap_stream *s) {
  size_t size = (s->rbig || neap__stls(s)) ? BLOCK : SBLOCK;
  if (s->rb.base != NULL) return;
  if ((s->rb.base = host_block(s->h.host, size)) == NULL) return;
  s->rb.cap = size;
  s->rb.head = s->rb.tail = 0;
}

/*
** Room for a read at the tail of the buffer of 's' (at least half a block:
** a partial line left in a block is moved to its front, the block does not
** grow for it): a block from the cache when it has none; a small block
** that must grow, or whose stream reads in bulk, becomes a large one; when
** a large one must grow, the host's spare if that is large enough (its
** bytes move there and its old buffer goes back), else the buffer grows.
** (Also the reads of fs.c's polled descriptors.)
*/
#define READ_ROOM (READ_CHUNK / 2)

char *neap__stream_reserve (neap_stream *s, size_t *avail) {
  neap_host *h = s->h.host;
  neap_buf *b = &s->rb;
  size_t len;
  neap__stream_take_buf(s);
  len = neap__buf_len(b);
  if (b->cap == SBLOCK) {
    char *nb;
    if (!s->rbig && b->cap - len >= SREAD_ROOM)
      return neap__buf_reserve(b, SREAD_ROOM, avail);
    if ((nb = host_block(h, BLOCK)) == NULL)   /* no memory: it grows in place */
      return neap__buf_reserve(b, SREAD_ROOM, avail);
    if (len > 0) memcpy(nb, b->base + b->head, len);
    host_give_back(h, b->base, b->cap);
    b->base = nb;
    b->cap = BLOCK;
    b->head = 0;
    b->tail = len;
    s->rbig = 1;
    h->rbuf_moves++;
  }
  if (b->cap - len < READ_ROOM && h->spare != NULL &&
      h->spare_cap >= len + READ_CHUNK) {
    char *ob = b->base;
    size_t ocap = b->cap;
    if (len > 0) memcpy(h->spare, b->base + b->head, len);
    b->base = h->spare;
    b->cap = h->spare_cap;
    b->head = 0;
    b->tail = len;
    h->spare = NULL;
    h->spare_cap = 0;
    host_give_back(h, ob, ocap);
  }
  if (b->cap == 0)   /* none cached: a new block (cached again when it empties) */
    return neap__buf_reserve(b, READ_CHUNK, avail);
  if (b->cap - len < READ_ROOM) h->rbuf_grows++;
  return neap__buf_reserve(b, READ_ROOM, avail);
}

/* After a read of 'nread' > 0 bytes into the 'room' bytes it was given:
** counted in, and the stream's read size (small or large blocks) learnt. */
static void stream_commit (neap_stream *s, size_t nread, size_t room) {
  neap__buf_commit(&s->rb, nread);
  if (s->rb.cap == SBLOCK) {   /* it filled what it was given: bulk */
    if (nread == room) s->rbig = 1;
  }
  else if (nread >= SMALL_READ) s->rsmall = 0;
  else if (s->rsmall + 1 < SMALL_READS) s->rsmall++;
  else {   /* small reads in a row: small blocks (when this one empties) */
    s->rbig = 0;
    s->rsmall = 0;
  }
}

static void uvs_alloc (uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  neap_stream *s = hd->data;
  size_t avail = 0;
  char *p;
  if (neap__stls(s)) p = neap__buf_reserve(neap__tls_in(neap__stls(s)), READ_CHUNK, &avail);
  else p = neap__stream_reserve(s, &avail);
  (void)suggested;
  if (avail > (1u << 30)) avail = 1u << 30;   /* (a uv_buf_t length is 32 bits) */
  *buf = uv_buf_init(p, p ? (unsigned)avail : 0);
}

static void uvs_read (uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  neap_stream *s = st->data;
  if (neap__stls(s)) {   /* ciphertext: the engine decrypts into the buffer */
    if (nread == 0) return;
    if (nread > 0) neap__buf_commit(neap__tls_in(neap__stls(s)), (size_t)nread);
    if (s->h.host->dying) return;
    neap__tls_input(s, nread);
    stream_deliver(s);
    return;
  }
  if (nread > 0) stream_commit(s, (size_t)nread, buf->len);
  else if (nread == UV_EOF) s->eof = 1;
  else if (nread < 0) s->err = (int)nread;
  else return;
  if (s->h.host->dying) return;
  if (s->eof && s->release_at_eof && s->nwrites == 0 && !s->released) {
    /* a child's output at its end: give the descriptor back now */
    uv_read_stop(st);
    s->reading = 0;
    s->released = 1;
    neap__handle_detach_uv(&s->h, &neap__su(s)->handle);   /* (no longer counted as open) */
  }
  stream_deliver(s);
}

static int uvs_read_start (neap_stream *s) {
  return uv_read_start(&neap__su(s)->stream, uvs_alloc, uvs_read);
}

static void uvs_read_stop (neap_stream *s) {
  uv_read_stop(&neap__su(s)->stream);
}

static void uvs_close (neap_stream *s) {
  neap__handle_uvclose(&s->h, &neap__su(s)->handle);   /* (released early: at once) */
}

static const neap_stream_backend uvs_backend = {
  uvs_read_start, uvs_read_stop, uvs_close, NULL, NULL
};

/* ====================================================== flow */

/*
** Starts or stops reading: read while someone waits for data, callbacks are
** set, or (after a first read) while the buffer is under its high-water
** mark; stop at the end or when nobody consumes and the buffer is full.
*/
void neap__stream_flow (neap_stream *s) {
  int want;
  if (s->h.flags & NEAP_H_UVCLOSE) return;
  want = s->started_reading && !s->eof && !s->err &&
         !(s->h.flags & NEAP_H_CLOSING) &&
         (s->reader || s->cb_armed || neap__buf_len(&s->rb) < neap__s_rhwm(s));
  if (want && (!s->reading || s->kind == NEAP_S_FILE)) {
    int r = s->be->read_start(s);
    if (r < 0) s->err = r;
    else s->reading = 1;
  }
  else if (!want && s->reading) {
    s->be->read_stop(s);
    s->reading = 0;
  }
}

/* Pushes the outcome 'r' of the framing request of 's' on L; consumes. */
static int stream_push_frame (lua_State *L, neap_stream *s, int r) {
  neap_frame *f = &s->rq.f;
  switch (r) {
    case NEAP_FRAME_OK:
      if (f->kind == NEAP_FRAME_ALL && f->len == 0 && s->err)
        return neap__stream_push_err(L, s, s->err);   /* an error, not an empty end */
      if (f->kind == NEAP_FRAME_PEEK) {
        lua_pushinteger(L, (lua_Integer)f->len);
        return 1;
      }
    {
      /* (pushes first: a push that fails for memory consumes nothing; what
      ** the frame says is taken first, and the buffer's place noted,
      ** because the pushes run the collector, whose finalizers may read
      ** from 's' (a frame of their own) or close it) */
      int nres = 1;
      size_t consume = f->consume;
      const char *b0 = s->rb.base, *d0 = neap__buf_data(&s->rb);
      size_t h0 = s->rb.head;
      if (f->kind == NEAP_FRAME_UNTIL) {   /* (the delimiter is the caller's
                                           ** string: alive while it reads) */
        const neap_delim *dl = f->which >= 0 ? &f->delims[f->which] : NULL;
        const char *dp = dl ? dl->p : NULL;
        size_t dn = dl ? dl->len : 0;
        lua_pushlstring(L, d0, f->len);
        if (dp) lua_pushlstring(L, dp, dn);
        else lua_pushnil(L);
        nres = 2;
      }
      else lua_pushlstring(L, d0, f->len);
      if (s->h.flags & NEAP_H_CLOSING)   /* closed meanwhile: what had come is given */
        return nres;
      if (s->rb.base != b0 || s->rb.head != h0)   /* consumed meanwhile */
        return luaL_error(L, "read: the stream was read meanwhile (by a finalizer?); "
                          "its bytes went to that read");
      neap__buf_consume(&s->rb, consume);
      if (neap__buf_len(&s->rb) == 0 && !neap__stream_fs_busy(s))
        neap__stream_release_buf(s);    /* an idle stream holds no buffer */
      return nres;
    }
    case NEAP_FRAME_TOOLARGE:
      return neap__push_fail(L, "frame too large");
    default:   /* END */
      if (f->kind == NEAP_FRAME_PEEK && s->eof && !s->err) {
        lua_pushinteger(L, 0);   /* readable: at the end */
        return 1;
      }
      if (s->err) return neap__stream_push_err(L, s, s->err);
      if (s->eof) return neap__push_fail(L, "eof");
      return neap__push_closed(L);
  }
}

typedef struct frame_push {
  neap_stream *s;
  int r;
} frame_push;

static int push_frame (lua_State *L, void *ud) {
  frame_push *fp = ud;
  return stream_push_frame(L, fp->s, fp->r);
}

static int push_frame_p (lua_State *L) {
  return push_frame(L, lua_touserdata(L, 1));
}

/*
** The frame a woken reader takes when it resumes, in its own thread: no
** protected call on the hot path. A large frame is pushed protected, so
** that no memory for it is nil, "not enough memory", "ENOMEM"; a small
** allocation that fails raises Lua's memory error in the task.
*/
static int stream_fill (lua_State *L, void *ud) {
  neap_stream *s = ud;
  frame_push fp;
  int top = lua_gettop(L);
  fp.s = s;
  fp.r = s->fill_r;
  s->filling = NULL;
  if (fp.r != NEAP_FRAME_OK || s->rq.f.len < 65536) return push_frame(L, &fp);
  lua_pushcfunction(L, push_frame_p);
  lua_pushlightuserdata(L, &fp);
  switch (lua_pcall(L, 1, LUA_MULTRET, 0)) {
    case LUA_OK: return lua_gettop(L) - top;
    case LUA_ERRMEM: break;
    default: return lua_error(L);   /* (not memory: stream_push_frame's own error) */
  }
  lua_settop(L, top);
  return neap__push_error(L, UV_ENOMEM);
}

/* ====================================================== callbacks */

/*
** s:on(...) holds no task while its stream is idle: the stream is "armed"
** with the frame its callbacks want (a line, or any bytes) in rq, its box
** anchored, and the frame's arrival (or the end, or a close) starts a pump
** task (start_pump(s, cbs), lua/neap/net.lua's, registered with
** core._stream_pump), which delivers what is buffered with reads that do
** not wait and arms the stream again when it is done.
*/
static char pump_key;   /* registry: the pump function */

/*
** Calls start_pump(box, cbs) for 's' (its box anchored at 'ref'). The call
** may run finalizers, which may use 's': the pump's task is its cb_task
** only if nothing armed it or changed its callbacks meanwhile.
*/
static int fire_p (lua_State *L) {
  neap_stream *s = lua_touserdata(L, 1);
  int ref = (int)lua_tointeger(L, 2);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);            /* 1: the box */
  lua_getiuservalue(L, 1, 1);                        /* 2: its callbacks */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pump_key);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);                                 /* 3: the pump's task */
  lua_getiuservalue(L, 1, 1);                        /* 4: the callbacks now */
  if (!s->cb_armed && s->cb_task == NULL && lua_rawequal(L, 2, 4))
    s->cb_task = lua_touserdata(L, 3);   /* (a task: only ever compared) */
  return 0;
}

/* Starts the pump of the armed stream 's' (from a libuv callback, or a
** close: L is the running task's thread or the host's). */
static void stream_fire (neap_stream *s) {
  neap_host *host = s->h.host;
  lua_State *L = neap__sched_running ? neap__sched_running : host->L;
  int ref = s->cb_anchor;
  s->cb_armed = 0;
  s->cb_anchor = LUA_NOREF;   /* (the call below may arm it again) */
  if (host->dying) return;
  if (!lua_checkstack(L, 8)) {
    fprintf(stderr, "neap: stream callbacks: no stack to start them\n");
  }
  else {
    lua_pushcfunction(L, fire_p);
    lua_pushlightuserdata(L, s);
    lua_pushinteger(L, ref);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {   /* no memory: nothing delivered */
      fprintf(stderr, "neap: stream callbacks: %s\n",
              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
      lua_pop(L, 1);
      if (!s->cb_armed && s->cb_task == NULL) {
        /* no pump will come: the callbacks end here, as when a pump
        ** fails, and the stream goes back to tasks with its bytes (no
        ** allocation) */
        s->cb_owned = 0;
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);   /* the box */
        lua_pushnil(L);
        lua_setiuservalue(L, -2, 1);
        lua_pop(L, 1);   /* pop the box */
      }
    }
  }
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  if (!(s->h.flags & NEAP_H_CLOSING)) neap__stream_ref(s, 0);
}

/* The frame s:on's callbacks want: a line when 'line', else any bytes. */
static void cb_frame (neap_stream *s, int line) {
  memset(&s->rq.f, 0, sizeof s->rq.f);
  if (line) {
    s->rq.f.kind = NEAP_FRAME_LINE;
    s->rq.f.max = neap__s_max_frame(s);
  }
  else {
    s->rq.f.kind = NEAP_FRAME_READ;
    s->rq.f.n = READ_CHUNK;
  }
}

/* Ends the armed state with no pump (s:off, or a pump that takes over). */
static void stream_disarm (lua_State *L, neap_stream *s) {
  s->cb_armed = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, s->cb_anchor);
  s->cb_anchor = LUA_NOREF;
  if (!(s->h.flags & NEAP_H_CLOSING)) {
    neap__stream_ref(s, 0);
    stream_flow(s);
  }
}

/*
** New bytes, the end or an error arrived: satisfy the parked reader. When
** reading cannot go on (no memory to grow the buffer), that error is the
** reader's answer too, after the data before it.
*/
void neap__stream_deliver (neap_stream *s) {
  int pass, err;
  for (pass = 0; pass < 2; pass++) {
    neap_task *t = s->reader;
    if (t == NULL && s->cb_armed &&
        neap__buf_frame(&s->rb, &s->rq.f, neap__stream_at_end(s)) != NEAP_FRAME_MORE)
      stream_fire(s);   /* callbacks: a pump takes it from here */
    else if (t != NULL) {
      frame_push fp;
      fp.s = s;
      fp.r = neap__buf_frame(&s->rb, &s->rq.f, neap__stream_at_end(s));
      if (fp.r != NEAP_FRAME_MORE) {
        s->reader = NULL;
        s->filling = t;   /* the frame stays put until the task takes it */
        s->fill_r = fp.r;
        neap__sched_wake_fill(t, stream_fill, s);
        neap__stream_ref(s, 0);
      }
    }
    err = s->err;
    stream_flow(s);
    if (s->err == err || (s->reader == NULL && !s->cb_armed)) break;
  }
}

static void stream_unpark_reader (neap_task *t) {
  neap_stream *s = t->parked_on;
  if (s->reader == t) {
    s->reader = NULL;
    neap__stream_ref(s, 0);
    stream_flow(s);
  }
}

/*
** Raises unless a read may use 's' now. Called before a read touches the
** request, which belongs to the parked reader while there is one. NULL:
** the stream is closed (the read returns nil, "closed", "ECLOSED").
*/
static neap_stream *stream_reader_ok (lua_State *L, neap_stream *s,
                                      const char *fname) {
  if (s == NULL) return NULL;
  if (s->cb_owned && (s->cb_task == NULL || neap__sched_current(L) != s->cb_task))
    luaL_error(L, "%s: this stream delivers its data to callbacks "
               "(s:on); call s:off() first", fname);
  if (s->reader || s->filling)
    luaL_error(L, "%s: another task is already reading this stream", fname);
  return s;
}

static neap_stream *stream_check_reader (lua_State *L, const char *fname) {
  /* (1 is a stream: the caller checked it before the options; only what the
  ** box points at, the struct or NULL once closed, can have changed) */
  return stream_reader_ok(L, *(neap_stream **)lua_touserdata(L, 1), fname);
}

/*
** A read's options, taken before the read touches its stream: an options
** table's __index is user code, which may close the stream or start
** another read on it.
*/
typedef struct read_opts {
  double timeout;
  int keep;
} read_opts;

static void read_options (lua_State *L, int idx, const char *fname,
                          read_opts *o) {
  o->timeout = neap__opt_timeout(L, idx, fname);
  o->keep = 0;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "keep");
    o->keep = lua_toboolean(L, -1);
    lua_pop(L, 1);   /* pop keep */
  }
}

static int stream_read_frame_post (lua_State *L, neap_stream *s,
                                   double timeout, const char *fname,
                                   lua_KFunction post);

static int stream_read_frame (lua_State *L, neap_stream *s, double timeout,
                              const char *fname) {
  return stream_read_frame_post(L, s, timeout, fname, NULL);
}

/*
** The shared body of every read: answer from the buffer when it can,
** else park the running task as the stream's reader.
*/
static int stream_read_frame_post (lua_State *L, neap_stream *s,
                                   double timeout, const char *fname,
                                   lua_KFunction post) {
  int r;
  neap_task *t;
  s->rq.f.scan = 0;
  s->started_reading = 1;
  r = neap__buf_frame(&s->rb, &s->rq.f, neap__stream_at_end(s));
  if (r == NEAP_FRAME_MORE) {
    stream_flow(s);   /* a first read may find the end at once */
    r = neap__buf_frame(&s->rb, &s->rq.f, neap__stream_at_end(s));
  }
  if (r != NEAP_FRAME_MORE) {
    int n = stream_push_frame(L, s, r);
    stream_flow(s);
    return n;
  }
  if (timeout == 0) return neap__push_fail(L, "timeout");   /* a try, no wait */
  t = neap__sched_check(L, fname);
  s->reader = t;
  neap__stream_ref(s, 1);
  stream_flow(s);
  if (s->err) {   /* reading could not start (no memory): answer now */
    s->reader = NULL;
    neap__stream_ref(s, 0);
    return stream_push_frame(L, s, neap__buf_frame(&s->rb, &s->rq.f, 1));
  }
  return neap__sched_park_post(L, t, timeout, stream_unpark_reader, s, post);
}

/* ====================================================== reads */

/* s:read([n] [, opts]) -> up to n bytes (default 64 KiB) | nil, err, code */
static int stream_read (lua_State *L) {
  neap_stream *s;
  int opt = 2;
  lua_Integer n = READ_CHUNK;
  read_opts o;
  neap__stream_check_io(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n > 0, 2, "size must be positive");
    opt = 3;
  }
  else if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    luaL_typeerror(L, 2, "number or options table");
  read_options(L, opt, "read", &o);
  if ((s = stream_check_reader(L, "read")) == NULL) return neap__push_closed(L);
  s->rq.f.kind = NEAP_FRAME_READ;
  s->rq.f.n = (size_t)n;
  return stream_read_frame(L, s, o.timeout, "read");
}

/* s:read_exactly(n [, opts]) -> n bytes | nil, "eof", "eof" (bytes stay) */
static int stream_read_exactly (lua_State *L) {
  neap_stream *s;
  lua_Integer n;
  read_opts o;
  neap__stream_check_io(L, 1);
  n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "size must be >= 0");
  read_options(L, 3, "read_exactly", &o);
  if ((s = stream_check_reader(L, "read_exactly")) == NULL)
    return neap__push_closed(L);
  s->rq.f.kind = NEAP_FRAME_EXACTLY;
  s->rq.f.n = (size_t)n;
  return stream_read_frame(L, s, o.timeout, "read_exactly");
}

/* s:read_line{timeout=, keep=false} -> line | nil, err, code */
static int stream_read_line (lua_State *L) {
  neap_stream *s;
  read_opts o;
  neap__stream_check_io(L, 1);
  read_options(L, 2, "read_line", &o);
  if ((s = stream_check_reader(L, "read_line")) == NULL)
    return neap__push_closed(L);
  s->rq.f.kind = NEAP_FRAME_LINE;
  s->rq.f.keep = o.keep;
  s->rq.f.max = neap__s_max_frame(s);
  return stream_read_frame(L, s, o.timeout, "read_line");
}

/*
** The lines() iterator's last step: a line; nothing at EOF (or when the
** stream was closed); any other failure raises "lines: message (CODE)".
*/
static int lines_post (lua_State *L, int status, lua_KContext ctx) {
  int n = (int)ctx;
  const char *err, *code;
  (void)status;
  if (n >= 1 && !lua_isnil(L, -n)) {
    if (n > 1) lua_settop(L, lua_gettop(L) - n + 1);
    return 1;
  }
  err = n >= 2 ? lua_tostring(L, -n + 1) : "?";
  code = n >= 3 ? lua_tostring(L, -n + 2) : err;
  if (code && (strcmp(code, "eof") == 0 || strcmp(code, "ECLOSED") == 0))
    return 0;
  if (code && err && strcmp(code, err) != 0)
    return luaL_error(L, "lines: %s (%s)", err, code);
  return luaL_error(L, "lines: %s", err ? err : "?");
}

static int lines_iter (lua_State *L) {
  neap_stream *s;
  read_opts o;
  int n;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));   /* the stream at 1 */
  /* (a stream: stream_lines checked it) */
  if (lua_type(L, lua_upvalueindex(2)) == LUA_TNIL) {   /* no options: no lookups */
    o.timeout = -1;
    o.keep = 0;
  }
  else {
    lua_pushvalue(L, lua_upvalueindex(2));   /* the options at 2 */
    read_options(L, 2, "lines", &o);
  }
  s = stream_check_reader(L, "lines");
  if (s == NULL) return 0;   /* closed: the loop ends */
  s->rq.f.kind = NEAP_FRAME_LINE;
  s->rq.f.keep = o.keep;
  s->rq.f.max = neap__s_max_frame(s);
  n = stream_read_frame_post(L, s, o.timeout, "lines", lines_post);
  return lines_post(L, LUA_OK, (lua_KContext)n);
}

/*
** The step of s:lines() with no options: a light C function, with the
** stream as the loop's state (as pairs gives next, t), so a loop makes no
** closure (an idle connection in "for line in c:lines()" holds none).
*/
static char lines_step_key;   /* registry: the one step closure */

static int lines_step (lua_State *L) {
  neap_stream **box = (neap_stream **)neap__box_test(L, 1, STREAM_MT), *s;
  int n;
  lua_settop(L, 1);   /* (pops the for's control value) */
  if (box == NULL)
    return luaL_error(L, "lines: the iterator takes the stream as its "
                         "argument (for line in s:lines() do ... end)");
  s = stream_reader_ok(L, *box, "lines");
  if (s == NULL) return 0;   /* closed: the loop ends */
  s->rq.f.kind = NEAP_FRAME_LINE;
  s->rq.f.keep = 0;
  s->rq.f.max = neap__s_max_frame(s);
  n = stream_read_frame_post(L, s, -1, "lines", lines_post);
  return lines_post(L, LUA_OK, (lua_KContext)n);
}

/* s:lines([opts]) -> an iterator over lines (and, with no options, the
** stream: the generic for's state); ends at EOF, raises on other errors */
static int stream_lines (lua_State *L) {
  neap__stream_check_io(L, 1);   /* a closed stream: the loop ends at once */
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lines_step_key) != LUA_TFUNCTION) {
      lua_pop(L, 1);   /* the step, made once for every stream */
      luaL_getmetatable(L, STREAM_MT);
      lua_pushcclosure(L, lines_step, 1);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &lines_step_key);
    }
    lua_insert(L, 1);
    return 2;
  }
  neap__opt_timeout(L, 2, "lines");   /* check the options now */
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushcclosure(L, lines_iter, 2);
  return 1;
}

/* s:read_until(delims [, opts]) -> data, delimiter | nil, err, code */
static int stream_read_until (lua_State *L) {
  neap_stream *s;
  neap_delim *d;
  read_opts o;
  neap__stream_check_io(L, 1);
  lua_settop(L, 3);   /* the delimiters' strings go above the options */
  read_options(L, 3, "read_until", &o);
  if ((s = stream_check_reader(L, "read_until")) == NULL)
    return neap__push_closed(L);
  s->rq.f.ndelims = neap__check_delims(L, 2, "read_until", s->rq.d,
                                       NEAP_INLINE_DELIMS, &d);
  s->rq.f.delims = d;
  /* (raw gets: no user code; the strings stay on this stack while it waits) */
  s->rq.f.kind = NEAP_FRAME_UNTIL;
  s->rq.f.keep = o.keep;
  s->rq.f.max = neap__s_max_frame(s);
  return stream_read_frame(L, s, o.timeout, "read_until");
}

/* s:read_all{timeout=} -> everything up to EOF (maybe "") */
static int stream_read_all (lua_State *L) {
  neap_stream *s;
  read_opts o;
  neap__stream_check_io(L, 1);
  read_options(L, 2, "read_all", &o);
  if ((s = stream_check_reader(L, "read_all")) == NULL)
    return neap__push_closed(L);
  s->rq.f.kind = NEAP_FRAME_ALL;
  if (s->err && neap__buf_len(&s->rb) == 0) return neap__stream_push_err(L, s, s->err);
  return stream_read_frame(L, s, o.timeout, "read_all");
}

/*
** s:wait_readable{timeout=, above=} -> bytes buffered (0 at EOF) | nil, err, code:
** waits until a read would not wait (more than 'above' bytes, default 0,
** are buffered, or the end came), consuming nothing.
*/
static int stream_wait_readable (lua_State *L) {
  neap_stream *s;
  lua_Integer above = 0;
  read_opts o;
  neap__stream_check_io(L, 1);
  if (lua_istable(L, 2)) {   /* {above = n}: wait for more than n bytes */
    if (lua_getfield(L, 2, "above") != LUA_TNIL &&
        (!lua_isinteger(L, -1) || (above = lua_tointeger(L, -1)) < 0))
      return luaL_error(L, "bad argument #2 to 'wait_readable' (above must be "
                        "an integer >= 0)");
    lua_pop(L, 1);
  }
  read_options(L, 2, "wait_readable", &o);
  if ((s = stream_check_reader(L, "wait_readable")) == NULL)
    return neap__push_closed(L);
  s->rq.f.kind = NEAP_FRAME_PEEK;
  s->rq.f.n = (size_t)above;
  return stream_read_frame(L, s, o.timeout, "wait_readable");
}

/*
** s:_callbacks([cbs | false]) -> the callbacks table of s:on, or nil: with
** a table, callbacks own the stream's reads (raises when a task reads it);
** with false, they no longer do. Works on a closed stream too.
*/
static int stream_callbacks (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, STREAM_MT);
  neap_stream *s = (neap_stream *)*box;
  if (lua_gettop(L) >= 2) {
    int set = lua_istable(L, 2);
    if (!set) lua_pushnil(L);
    else if (s != NULL && (s->reader != NULL || s->filling != NULL))
      return luaL_error(L, "on: another task is already reading this stream");
    if (s != NULL) {
      s->cb_owned = set;
      s->cb_task = NULL;
      if (!set && s->cb_armed) stream_disarm(L, s);
    }
    lua_settop(L, set ? 2 : 3);
    lua_setiuservalue(L, 1, 1);
    return 0;
  }
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/*
** s:_arm(line [, pump]): the callbacks want a new frame (s:on, s:off), or
** the running pump ('pump' true) is done with what is buffered; the next
** frame (a line when 'line', else any bytes), the end or a close starts
** a pump. If one is there already, it starts now. While a pump runs, only
** it arms the stream: s:on from one of its callbacks does not, or a second
** pump would deliver while that callback waits.
*/
static int stream_arm (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  if (!s->cb_owned) return 0;
  if (s->cb_task != NULL &&
      (!lua_toboolean(L, 3) || neap__sched_current(L) != s->cb_task))
    return 0;   /* a pump runs: it arms the stream when it is done */
  s->cb_task = NULL;
  cb_frame(s, lua_toboolean(L, 2));
  if (!s->cb_armed) {
    lua_settop(L, 1);
    s->cb_anchor = luaL_ref(L, LUA_REGISTRYINDEX);
    s->cb_armed = 1;
  }
  s->started_reading = 1;
  neap__stream_ref(s, 1);
  stream_deliver(s);   /* a frame already here starts the pump; else reads go on */
  return 0;
}

/*
** s:_pump_read(cbs, line) -> the pump's next read, which does not wait: a
** line (when 'line') or the bytes buffered | nil, err, code ("timeout":
** nothing more now; "closed": the stream is closed) | false when s:on's
** callbacks are no longer 'cbs' (s:off, or a new s:on after it).
*/
static int stream_pump_read (lua_State *L) {
  neap_handle **box = lua_touserdata(L, 1);
  neap_stream *s;
  int line;
  lua_settop(L, 3);
  if (box == NULL || !neap__is_stream(L, 1))
    return luaL_typeerror(L, 1, "stream");
  lua_getiuservalue(L, 1, 1);
  if (!lua_rawequal(L, 2, 4)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  line = lua_toboolean(L, 3);
  lua_settop(L, 1);
  if ((s = (neap_stream *)*box) == NULL) return neap__push_closed(L);
  if (s->reader || s->filling)
    return luaL_error(L, "on: another task is already reading this stream");
  cb_frame(s, line);
  return stream_read_frame(L, s, 0, "on");
}

/*
** neap.core._stream_pump(fn) -> the previous fn (or nil): fn(s, cbs) -> task
** starts an armed stream's pump
*/
static int stream_set_pump (lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pump_key);
  lua_insert(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pump_key);
  return 1;
}

/*
** s:_drain(on): while on, read with no high-water mark even if no task
** reads (a child's pipe while the script waits for the child: the child
** cannot block on a full pipe, and its output stays readable).
*/
static int stream_drain (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  neap_stream_x *x;
  if (lua_toboolean(L, 2)) {
    if ((x = neap__stream_x(s)) == NULL) return luaL_error(L, "out of memory");
    if (!x->drain_saved) x->drain_saved = x->rhwm ? x->rhwm : 1;
    x->rhwm = (size_t)-1;
    s->started_reading = 1;
  }
  else if (s->x && s->x->drain_saved) {
    s->x->rhwm = s->x->drain_saved;
    s->x->drain_saved = 0;
  }
  stream_flow(s);
  return 0;
}

/* s:_consumed() -> bytes read from the buffer so far (the dispatcher's progress check) */
static int stream_consumed (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  lua_pushinteger(L, (lua_Integer)s->rb.consumed);
  return 1;
}

/* neap.core._rbuf_grows() -> times a read buffer grew, times a stream's
** bytes moved from a small block to a large one (tests) */
static int stream_rbuf_grows (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)neap__host(L)->rbuf_grows);
  lua_pushinteger(L, (lua_Integer)neap__host(L)->rbuf_moves);
  return 2;
}

/* s:buffered() -> bytes received and not yet read */
static int stream_buffered (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  lua_pushinteger(L, (lua_Integer)neap__buf_len(&s->rb));
  return 1;
}

/*
** The handle's close: wake the waiters, stop reading, and close the
** descriptor once what was written before is sent (a lingering close).
*/
static void stream_vt_close (neap_handle *h) {
  neap_stream *s = (neap_stream *)h;
  if (s->filling && !h->host->dying) {   /* a woken reader's frame: take it now */
    neap_task *t = s->filling;
    neap__sched_fill_now(t);
    s->filling = NULL;
  }
  neap__stream_undirty(s);
  if (h->host->dying) neap__stream_drop_pending(s);
  else neap__stream_flush_pending(s);   /* what was written before close is sent */
  if (neap__stls(s) && !h->host->dying && !s->shut)
    neap__tls_shutdown_stream(s);   /* close_notify, if it can go at once */
  if (s->cb_armed) stream_fire(s);   /* its callbacks hear of the close */
  if (!h->host->dying) {
    stream_wake_closed(&s->reader);
    if (s->x) stream_wake_closed(&s->x->hs_waiter);
    neap__stream_wake_writers_closed(s);
  }
  if (s->reading && s->kind != NEAP_S_FILE && !s->released) {
    s->be->read_stop(s);
    s->reading = 0;
  }
  if (s->nwrites == 0 || h->host->dying) s->be->close(s);
  else if (s->kind != NEAP_S_FILE && s->kind != NEAP_S_NONE && !s->released)
    uv_ref(&neap__su(s)->handle);
}

static void stream_vt_force (neap_handle *h) {
  neap_stream *s = (neap_stream *)h;
  s->be->close(s);
}

/* The end of a stream: what its backend holds, its buffers. */
static void stream_vt_release (neap_handle *h) {
  neap_stream *s = (neap_stream *)h;
  if (s->be->release) s->be->release(s);
  if (neap__stls(s)) neap__tls_free(s->x->tls);
  free(s->x);
  s->npb = 0;
  neap__stream_free_pbufs(s);
  neap__buf_free(&s->rb);
}

static const neap_handle_vt stream_vt = {
  STREAM_MT, "stream", stream_vt_close, stream_vt_force, stream_vt_release
};

/* s:close() -> true; idempotent; pending writes are still sent */
static int stream_close (lua_State *L) {
  return neap__handle_close_l(L, STREAM_MT);
}

static int stream_is_closed (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, STREAM_MT);
  lua_pushboolean(L, *box == NULL);
  return 1;
}

/* s:set_limits{max_frame=, high_water=, low_water=, read_high_water=, write_timeout=} -> s */
static int stream_set_limits (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  static const char *const names[] = {"max_frame", "high_water", "low_water",
                                      "read_high_water", NULL};
  size_t *fields[4];
  int i;
  neap_stream_x *x;
  luaL_checktype(L, 2, LUA_TTABLE);
  if ((x = neap__stream_x(s)) == NULL) return luaL_error(L, "out of memory");
  fields[0] = &x->max_frame;
  fields[1] = &x->hwm;
  fields[2] = &x->lwm;
  fields[3] = &x->rhwm;
  for (i = 0; names[i]; i++) {
    if (lua_getfield(L, 2, names[i]) != LUA_TNIL) {
      lua_Integer v;
      if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < 0)
        return luaL_error(L, "bad argument #2 to 'set_limits' (%s must be an "
                          "integer >= 0)", names[i]);
      *fields[i] = (size_t)v;
    }
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 2, "write_timeout") != LUA_TNIL) {
    double v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0))
      return luaL_error(L, "bad argument #2 to 'set_limits' (write_timeout "
                        "must be >= 0)");
    x->wtimeout = v;
  }
  lua_pop(L, 1);
  if (x->lwm > x->hwm) x->lwm = x->hwm;
  stream_flow(s);
  lua_settop(L, 1);
  return 1;
}

/* s:limits() -> table of the current limits */
static int stream_limits (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)neap__s_max_frame(s));
  lua_setfield(L, -2, "max_frame");
  lua_pushinteger(L, (lua_Integer)neap__s_hwm(s));
  lua_setfield(L, -2, "high_water");
  lua_pushinteger(L, (lua_Integer)neap__s_lwm(s));
  lua_setfield(L, -2, "low_water");
  lua_pushinteger(L, (lua_Integer)neap__s_rhwm(s));
  lua_setfield(L, -2, "read_high_water");
  lua_pushinteger(L, (lua_Integer)s->queued);
  lua_setfield(L, -2, "queued");
  if (neap__s_wtimeout(s) >= 0) {
    lua_pushnumber(L, neap__s_wtimeout(s));
    lua_setfield(L, -2, "write_timeout");
  }
  return 1;
}

/* s:write_queue_size() -> bytes written but not yet sent */
static int stream_queued (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  lua_pushinteger(L, (lua_Integer)s->queued);
  return 1;
}

/* The names of the NEAP_S_* kinds, for s:kind() and tostring. */
static const char *const kinds[] = {"tcp", "pipe", "tty", "file", "poll",
                                    "none"};

static int stream_tostring (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, STREAM_MT);
  if (*box == NULL) lua_pushliteral(L, "neap.stream (closed)");
  else lua_pushfstring(L, "neap.stream (%s %p)", neap__stls((neap_stream *)*box)
                       ? "tls" : kinds[((neap_stream *)*box)->kind], (void *)*box);
  return 1;
}

static int stream_kind (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  lua_pushstring(L, neap__stls(s) ? "tls" : kinds[s->kind]);
  return 1;
}

/* s:fileno() -> the descriptor, or nil */
static int stream_fileno (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  uv_os_fd_t fd;
  if (s->kind == NEAP_S_FILE || s->kind == NEAP_S_POLL) fd = s->fd;
  else if (s->kind == NEAP_S_NONE || uv_fileno(&neap__su(s)->handle, &fd) != 0)
    return 0;
  lua_pushinteger(L, fd);
  return 1;
}

/* ====================================================== making streams */

/*
** Pushes a new stream box and returns its struct, ready for the caller to
** initialise u.* (then neap__stream_init_uv) or to make it a file.
*/
neap_stream *neap__stream_new (lua_State *L, int kind) {
  neap_host *host = neap__host(L);
  neap_handle **box = neap__handle_newbox(L, STREAM_MT);
  size_t hsize;
  neap_stream *s;
  switch (kind) {   /* only the libuv handle this kind uses is allocated */
    case NEAP_S_TCP: hsize = sizeof(uv_tcp_t); break;
    case NEAP_S_PIPE: hsize = sizeof(uv_pipe_t); break;
    case NEAP_S_TTY: hsize = sizeof(uv_tty_t); break;
    case NEAP_S_FILE: hsize = 0; break;
    default: hsize = sizeof(uv_poll_t); break;   /* none, or polled later */
  }
  s = calloc(1, sizeof *s + hsize);
  if (s == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  neap__handle_init(host, &s->h, &stream_vt, box);
  neap__buf_init(&s->rb);
  s->kind = (unsigned char)kind;
  s->fd = -1;
  s->pref = LUA_NOREF;
  s->cb_anchor = LUA_NOREF;
  s->be = &neap__none_backend;
  return s;
}

neap_stream_x *neap__stream_x (neap_stream *s) {
  neap_stream_x *x;
  if (s->x != NULL || (x = calloc(1, sizeof *x)) == NULL) return s->x;
  x->hwm = NEAP_S_HWM;
  x->lwm = NEAP_S_LWM;
  x->rhwm = NEAP_S_RHWM;
  x->max_frame = NEAP_DEFAULT_MAX_FRAME;
  x->wtimeout = -1;
  x->offset = -1;
  return s->x = x;
}

/* After u.* is initialised: a libuv stream, unreferenced until waited on. */
int neap__stream_init_uv (neap_stream *s) {
  s->be = &uvs_backend;
  neap__su(s)->handle.data = s;
  uv_unref(&neap__su(s)->handle);
  return 0;
}

/*
** Pushes a stream over descriptor 'fd': a TTY, pipe or socket becomes a
** libuv stream, a regular file or device goes through the thread pool,
** and a closed descriptor reads as EOF. 'std' marks stdio (writes block).
*/
int neap__stream_wrap_fd (lua_State *L, int fd, int std) {
  neap_host *host = neap__host(L);
  uv_handle_type t = uv_guess_handle(fd);
  neap_stream *s;
  int r = 0;
  switch (t) {
    case UV_TTY:
      s = neap__stream_new(L, NEAP_S_TTY);
      r = uv_tty_init(host->loop, &neap__su(s)->tty, fd, fd == 0);
      break;
    case UV_NAMED_PIPE:
      s = neap__stream_new(L, NEAP_S_PIPE);
      r = uv_pipe_init(host->loop, &neap__su(s)->pipe, 0);
      if (r == 0) r = uv_pipe_open(&neap__su(s)->pipe, fd);
      break;
    case UV_TCP:
      s = neap__stream_new(L, NEAP_S_TCP);
      r = uv_tcp_init(host->loop, &neap__su(s)->tcp);
      if (r == 0) r = uv_tcp_open(&neap__su(s)->tcp, fd);
      break;
    case UV_FILE:
      s = neap__stream_new(L, NEAP_S_FILE);
      if (neap__stream_init_file(s, fd, -1) < 0) return luaL_error(L, "out of memory");
      if (std && fd > 0) s->sync_writes = 1;
      return 1;
    default:
      s = neap__stream_new(L, NEAP_S_NONE);
      s->fd = fd;
      if (neap__stream_init_poll(s, fd) < 0) s->kind = NEAP_S_NONE;
      return 1;
  }
  if (r < 0) {
    /* not usable as a libuv stream: read and write it as a file */
    s->kind = NEAP_S_FILE;
    if (neap__stream_init_file(s, fd, -1) < 0) return luaL_error(L, "out of memory");
    return 1;
  }
  neap__stream_init_uv(s);
  s->fd = fd;
  if (std && fd > 0) {
    uv_stream_set_blocking(&neap__su(s)->stream, 1);
    s->sync_writes = 1;
  }
  return 1;
}

/* neap.core.std(fd) -> the stream of stdin, stdout or stderr */
static int stream_std (lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
  return neap__stream_wrap_fd(L, fd, 1);
}

/*
** Whether a stream not yet freed holds 'fd' without a libuv handle of its
** own (a file, or a polled descriptor, whose fd is closed only when the
** stream is freed): neap__host_owns_fd sees the others.
*/
static int stream_holds_fd (neap_host *h, int fd) {
  neap_handle *hd;
  for (hd = h->handles; hd; hd = hd->next) {
    neap_stream *s = (neap_stream *)hd;
    if (hd->vt == &stream_vt && s->fd == fd &&
        (s->kind == NEAP_S_FILE || s->kind == NEAP_S_POLL ||
         s->kind == NEAP_S_NONE))
      return 1;
  }
  return 0;
}

/* neap.core.wrap_fd(fd) -> stream over any descriptor not already held */
static int stream_wrap (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_Integer n = luaL_checkinteger(L, 1);
  int fd = (int)n;
  if (n != fd || fcntl(fd, F_GETFD) == -1)   /* (2^32 + 2 is not 2) */
    return neap__push_error(L, UV_EBADF);
  if (neap__host_owns_fd(h, fd) || stream_holds_fd(h, fd))
    return neap__push_error(L, UV_EBUSY);
  return neap__stream_wrap_fd(L, fd, 0);
}

/* neap.core.dup_fd(fd) -> a close-on-exec duplicate */
static int stream_dup (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  int fd = n == (int)n ? fcntl((int)n, F_DUPFD_CLOEXEC, 3) : (errno = EBADF, -1);
  if (fd < 0) return neap__push_error(L, uv_translate_sys_error(errno));
  lua_pushinteger(L, fd);
  return 1;
}

int neap__stream_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"read", stream_read},
    {"read_exactly", stream_read_exactly},
    {"read_line", stream_read_line},
    {"read_until", stream_read_until},
    {"read_all", stream_read_all},
    {"lines", stream_lines},
    {"buffered", stream_buffered},
    {"_consumed", stream_consumed},
    {"wait_readable", stream_wait_readable},
    {"_callbacks", stream_callbacks},
    {"_arm", stream_arm},
    {"_pump_read", stream_pump_read},
    {"_drain", stream_drain},
    {"close", stream_close},
    {"is_closed", stream_is_closed},
    {"set_limits", stream_set_limits},
    {"limits", stream_limits},
    {"write_queue_size", stream_queued},
    {"kind", stream_kind},
    {"fileno", stream_fileno},
    {NULL, NULL}
  };
  /* the methods of other files: writes, sockets, files, stat */
  static const luaL_Reg *const more[] = {
    neap__stream_write_meth, neap__tcp_stream_meth, neap__fs_stream_meth,
    neap__fsops_stream_meth, neap__tls_stream_meth, NULL
  };
  int i;
  neap__newhandlemeta(L, STREAM_MT, meth, stream_tostring);
  luaL_getmetatable(L, STREAM_MT);
  lua_getfield(L, -1, "__index");
  /* every method again, with the metatable as upvalue 1 (see check_io) */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, meth, 1);
  for (i = 0; more[i] != NULL; i++) {
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, more[i], 1);
  }
  lua_pop(L, 2);   /* pop __index, metatable */
  lua_pushcfunction(L, stream_std);
  lua_setfield(L, -2, "std");
  lua_pushcfunction(L, stream_wrap);
  lua_setfield(L, -2, "wrap_fd");
  lua_pushcfunction(L, stream_dup);
  lua_setfield(L, -2, "dup_fd");
  lua_pushcfunction(L, stream_rbuf_grows);
  lua_setfield(L, -2, "_rbuf_grows");
  lua_pushcfunction(L, stream_set_pump);
  lua_setfield(L, -2, "_stream_pump");
  luaL_getmetatable(L, STREAM_MT);
  lua_setfield(L, -2, "stream_meta");
  return 0;
}
