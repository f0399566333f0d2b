/* SPDX-License-Identifier: MIT */
/*
** Writing streams: s:write tries the kernel at once outside the loop and,
** inside tasks, gathers a turn's strings (anchored, never copied) into one
** writev per stream; a writer above the high-water mark parks until the
** queue is below the low one; flush waits for the queue, shutdown sends
** the FIN after it.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neapi.h"
#include "tls.h"

typedef struct write_req {
  uv_write_t req;          /* (libuv keeps its own copy of the buffer list) */
  neap_stream *s;
  size_t len;
  int ref;               /* registry ref of the string (or table) written */
  char *mem;             /* or memory of ours to free (TLS records) */
} write_req;

/* ====================================================== writes */

/*
** Drops 'n' written bytes from the front of 'bufs' (nb of them): returns
** the index of the first buffer with bytes left (nb when all went), whose
** start is moved past what was written of it.
*/
int neap__bufs_advance (uv_buf_t *bufs, int nb, size_t n) {
  int k = 0;
  while (k < nb && n >= bufs[k].len) n -= bufs[k++].len;
  if (k < nb) {
    bufs[k].base += n;
    bufs[k].len -= n;
  }
  return k;
}

/*
** Appends 'len' bytes at 'p' to 'out' as buffers of at most 'piece' bytes;
** returns how many it made (write_npieces counts them first).
*/
static size_t write_npieces (size_t len, size_t piece) {
  return len / piece + (len % piece != 0);
}

static int write_pieces (uv_buf_t *out, const char *p, size_t len,
                         size_t piece) {
  int n = 0;
  while (len > 0) {
    size_t k = len < piece ? len : piece;
    out[n++] = uv_buf_init((char *)p, (unsigned)k);   /* k <= 1 GiB */
    p += k;
    len -= k;
  }
  return n;
}

/*
** Wakes the parked writers whose wait is over: a write waits until the
** queue is below the low-water mark, a flush until it is empty; all wake
** with the error once the stream has failed. First parked, first woken.
*/
void neap__stream_wake_writer (neap_stream *s) {
  neap_task **pp = &s->writers;
  while (*pp) {
    neap_task *t = *pp;
    int done = s->werr || (t->wait_kind == 0 ? s->queued <= neap__s_lwm(s)
                                             : s->nwrites == 0);
    if (!done) {
      if (t->wait_kind == 0) break;   /* writes wake in order */
      pp = &t->link;
      continue;
    }
    *pp = t->link;
    t->link = NULL;
    if (s->werr) neap__stream_wake_err(t, s, s->werr);
    else {
      lua_pushvalue(t->co, 1);   /* write and flush return the stream */
      neap__sched_wake(t, 1);
    }
  }
  neap__stream_ref(s, 0);
}

/* Wakes every parked writer with nil, "closed", "ECLOSED". */
void neap__stream_wake_writers_closed (neap_stream *s) {
  while (s->writers) {
    neap_task *t = s->writers;
    s->writers = t->link;
    t->link = NULL;
    neap__sched_wake_closed(t);
  }
}

static void stream_unpark_writer (neap_task *t) {
  neap_stream *s = t->parked_on;
  neap_task **pp;
  for (pp = &s->writers; *pp; pp = &(*pp)->link)
    if (*pp == t) { *pp = t->link; break; }
  t->link = NULL;
  neap__stream_ref(s, 0);
}

/* Parks the running task 't' as a writer of kind 0 (drain) or 1 (flush). */
static int stream_park_writer (lua_State *L, neap_stream *s, neap_task *t,
                               int kind, double timeout) {
  neap_task **pp = &s->writers;
  while (*pp) pp = &(*pp)->link;
  *pp = t;
  t->link = NULL;
  t->wait_kind = (unsigned char)kind;
  lua_settop(L, 1);
  neap__stream_ref(s, 1);
  return neap__sched_park(L, t, timeout, stream_unpark_writer, s);
}

static void stream_write_cb (uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  neap_stream *s = w->s;
  neap_host *host = s->h.host;
  s->queued -= w->len;
  s->nwrites--;
  if (!host->dying) luaL_unref(host->L, LUA_REGISTRYINDEX, w->ref);
  free(w->mem);
  free(w);
  if (status < 0 && status != UV_ECANCELED && !s->werr) s->werr = status;
  if (host->dying) return;
  if ((s->h.flags & NEAP_H_CLOSING) && s->nwrites == 0) {
    s->be->close(s);    /* a lingering close: all was sent */
    return;
  }
  neap__stream_wake_writer(s);
}

/*
** The anchor table of a batch that went at once: emptied and kept by the
** host for the next batch of any stream (no table made and collected per
** write), or let go when the host keeps enough.
*/
static void spare_anchor (neap_stream *s) {
  neap_host *h = s->h.host;
  lua_State *L = h->L;
  int i;
  if (h->nspare == (int)(sizeof h->spare_refs / sizeof h->spare_refs[0]) || s->pn > 64) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->pref);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->pref);
  for (i = 1; i <= s->pn; i++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, i);
  }
  lua_pop(L, 1);
  h->spare_refs[h->nspare++] = s->pref;
}

/* ====================================================== gathered writes */

/*
** Inside the loop, writes are gathered: each s:write appends its strings
** (anchored in one table per batch, no copy) to the stream's pending list,
** and after the tasks of a loop turn have run, every stream written to is
** flushed with one uv_try_write / uv_write (one writev for many lines).
*/

/*
** Small strings are copied instead (at most WA_SMALL bytes, into the
** host's turn arena of WA_CAP bytes, emptied after each flush_all): a copy
** of a few dozen bytes costs less than anchoring the string in the batch
** table and emptying it again, and consecutive small writes to one stream
** become one buffer of the writev. Not for TLS streams (their writes may
** wait for the handshake, past the turn; the engine copies them anyway).
** Bytes of the arena that the kernel does not take at once are copied out
** to memory of the write request's own (stream_unarena).
*/
#define WA_CAP (128 * 1024)
#define WA_SMALL 128

static int in_arena (neap_host *h, const char *p) {
  return h->wa != NULL && p >= h->wa && p < h->wa + WA_CAP;
}

/*
** A stream's list of gathered buffers starts at PB_FIRST entries. It is
** let go when the stream waits on an empty read buffer (an idle connection
** keeps none), and a list of the first size then waits in the host's
** spare_pbufs for the next stream that writes: a busy server takes it back
** at every turn, and malloc and free for it cost more than the write.
*/
#define PB_FIRST 16

/* Room for 'nb' more gathered buffers in 's'; raises on memory. */
static void pbufs_reserve (lua_State *L, neap_stream *s, int nb) {
  neap_host *h = s->h.host;
  int ncap;
  uv_buf_t *nbufs;
  if (s->npb + nb <= s->capb) return;
  if (s->capb == 0 && nb <= PB_FIRST && h->nspare_pbufs > 0) {
    s->pbufs = h->spare_pbufs[--h->nspare_pbufs];
    s->capb = PB_FIRST;
    return;
  }
  ncap = s->capb ? s->capb * 2 : PB_FIRST;
  while (ncap < s->npb + nb) ncap *= 2;
  nbufs = realloc(s->pbufs, ncap * sizeof *nbufs);
  if (nbufs == NULL) luaL_error(L, "write: out of memory");
  if (s->pbufs == NULL) h->pbufs_allocs++;
  s->pbufs = nbufs;
  s->capb = ncap;
}

/* Lets go of the (empty) list of gathered buffers of 's'. */
void neap__stream_free_pbufs (neap_stream *s) {
  neap_host *h = s->h.host;
  if (s->pbufs == NULL) return;
  if (s->capb == PB_FIRST && h->nspare_pbufs < NEAP_PBUFS_KEEP && !h->dying)
    h->spare_pbufs[h->nspare_pbufs++] = s->pbufs;
  else free(s->pbufs);
  s->pbufs = NULL;
  s->capb = 0;
}

/*
** Pushes the batch table anchoring the gathered strings of 's'. Making a
** table runs a step of the collector, and a finalizer may write to 's',
** flush it or close it meanwhile: the caller checks 's' again after this,
** and a table one of them made is the one used.
*/
static void push_anchor (lua_State *L, neap_stream *s) {
  neap_host *h = s->h.host;
  while (s->pref == LUA_NOREF) {
    if (h->nspare > 0) {   /* an emptied one (no allocation) */
      s->pref = h->spare_refs[--h->nspare];
      s->pn = 0;
      break;
    }
    lua_createtable(L, s->pn_hint > 16 ? s->pn_hint : 16, 0);   /* sized as the last batch */
    if (s->pref != LUA_NOREF) {   /* a finalizer's write made one */
      lua_pop(L, 1);
      break;
    }
    s->pref = luaL_ref(L, LUA_REGISTRYINDEX);   /* (no collector step) */
    s->pn = 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->pref);
}

/* Whether string 'i' of a gather goes to the turn's arena, given the
** arena's use 'used' so far (advanced for it). */
static int to_arena (int arena, size_t n, size_t *used) {
  if (!arena || n > WA_SMALL || *used + n > WA_CAP) return 0;
  *used += n;
  return 1;
}

/* Copies the 'n' bytes at 'p' into the turn's arena (room checked) as the
** next buffer of 's', joined to its last one when that ends right there. */
static inline void arena_put (neap_host *h, neap_stream *s, const char *p, size_t n) {
  char *a = h->wa + h->wa_len;
  uv_buf_t *last = s->npb > 0 ? &s->pbufs[s->npb - 1] : NULL;
  memcpy(a, p, n);
  h->wa_len += n;
  h->wa_in += n;
  if (last != NULL && last->base + last->len == a) last->len += (unsigned)n;
  else s->pbufs[s->npb++] = uv_buf_init(a, (unsigned)n);
}

/*
** Gathers the 'nargs' strings at 'first' (their 'nb' buffers, 'total'
** bytes) into the pending writes of 's'. Every call into Lua that may run
** the collector (the anchor table) comes first, and 's' is checked after
** it; then nothing but C until the strings are in the list (a finalizer
** that wrote to 's' or flushed it in the middle of the list overran it or
** freed it). 0, NEAP_GATHER_CLOSED, or the stream's write error.
*/
#define NEAP_GATHER_CLOSED 1

static int stream_gather (lua_State *L, neap_stream *s, int first, int nargs,
                          const uv_buf_t *bufs, int nb, size_t total) {
  neap_host *h = s->h.host;
  int i, anchored = 0, arena = nb == nargs && neap__stls(s) == NULL;   /* (no string in pieces) */
  size_t used;
  if (arena && h->wa == NULL && (h->wa = malloc(WA_CAP)) == NULL)
    arena = 0;   /* (no memory for it: anchored as the others) */
  if (arena && nargs == 1 && bufs[0].len <= WA_SMALL && h->wa_len + bufs[0].len <= WA_CAP) {
    /* the usual one: a small string copied into the arena, no Lua call */
    pbufs_reserve(L, s, 1);
    arena_put(h, s, bufs[0].base, bufs[0].len);
    s->pending += total;
    s->queued += total;
    neap__stream_mark_dirty(s);
    return 0;
  }
  for (i = 0, used = h->wa_len; i < nargs && !anchored; i++)
    if (!to_arena(arena, bufs[i].len, &used)) anchored = 1;
  if (anchored) {
    push_anchor(L, s);   /* (may run finalizers) */
    if (s->h.flags & NEAP_H_CLOSING) {
      lua_pop(L, 1);
      return NEAP_GATHER_CLOSED;
    }
    if (s->werr || s->shut) {
      lua_pop(L, 1);
      return s->werr ? s->werr : UV_EPIPE;
    }
  }
  /* from here on, C only: the decisions above still hold */
  pbufs_reserve(L, s, nb);   /* (raises on memory: nothing listed yet) */
  if (!arena) {
    for (i = 0; i < nargs; i++) {
      lua_pushvalue(L, first + i);
      lua_rawseti(L, -2, ++s->pn);   /* (no collector step) */
    }
    memcpy(s->pbufs + s->npb, bufs, nb * sizeof *bufs);
    s->npb += nb;
  }
  else for (i = 0, used = h->wa_len; i < nargs; i++) {
    if (to_arena(arena, bufs[i].len, &used)) arena_put(h, s, bufs[i].base, bufs[i].len);
    else {
      lua_pushvalue(L, first + i);
      lua_rawseti(L, -2, ++s->pn);
      s->pbufs[s->npb++] = bufs[i];
    }
  }
  if (anchored) lua_pop(L, 1);   /* the batch's table */
  s->pending += total;
  s->queued += total;
  neap__stream_mark_dirty(s);
  return 0;
}

/*
** Before the unsent rest of a batch goes to uv_write: the bytes of it in
** the turn's arena move to memory of the request's own (returned, or NULL
** when there are none; raises nothing: NULL and *err on no memory).
*/
static char *stream_unarena (neap_stream *s, int k, int *err) {
  neap_host *h = s->h.host;
  size_t n = 0;
  int i;
  char *mem, *p;
  *err = 0;
  for (i = k; i < s->npb; i++)
    if (in_arena(h, s->pbufs[i].base)) n += s->pbufs[i].len;
  if (n == 0) return NULL;
  if ((mem = malloc(n)) == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  h->wa_out += n;
  for (p = mem, i = k; i < s->npb; i++)
    if (in_arena(h, s->pbufs[i].base)) {
      memcpy(p, s->pbufs[i].base, s->pbufs[i].len);
      s->pbufs[i].base = p;
      p += s->pbufs[i].len;
    }
  return mem;
}

/* Puts 's' on its host's list of streams to flush after the turn. */
void neap__stream_mark_dirty (neap_stream *s) {
  neap_host *host = s->h.host;
  if (s->dirty) return;
  s->dirty = 1;
  s->next_dirty = host->dirty;
  host->dirty = s;
}

/*
** Writes what 'b' holds, taking its memory: libuv gets it without a copy,
** the write callback frees it, and 'b' is left empty. 'len' bytes leave
** the queue's count then. 0 or a UV error.
*/
int neap__stream_write_owned (neap_stream *s, neap_buf *b, size_t len) {
  write_req *w = malloc(sizeof *w);
  uv_buf_t ub;
  int r;
  if (w == NULL) return UV_ENOMEM;
  w->s = s;
  w->len = len;
  w->ref = LUA_NOREF;
  w->mem = b->base;
  ub = uv_buf_init(b->base + b->head, (unsigned)(b->tail - b->head));
  r = uv_write(&w->req, &neap__su(s)->stream, &ub, 1, stream_write_cb);
  if (r < 0) {
    free(w);
    return r;
  }
  memset(b, 0, sizeof *b);   /* (the counts of 'consumed' start over) */
  s->nwrites++;
  return 0;
}

void neap__stream_drop_pending (neap_stream *s) {
  s->queued -= s->pending;
  neap__stream_release_pending(s);
}

/* Lets go of the gathered writes' strings (still counted in 'queued'). */
void neap__stream_release_pending (neap_stream *s) {
  if (s->pref != LUA_NOREF && !s->h.host->dying) spare_anchor(s);
  s->pref = LUA_NOREF;
  s->npb = 0;
  s->pending = 0;
}

/* Hands the gathered writes of 's' to the kernel (and libuv for the rest). */
void neap__stream_flush_pending (neap_stream *s) {
  int k = 0;
  size_t left = s->pending;
  if (s->npb == 0) return;
  if (neap__stls(s)) {
    if (!(s->werr || (s->h.flags & NEAP_H_UVCLOSE))) {
      neap__tls_flush_pending(s);
      return;
    }
  }
  s->pn_hint = s->pn;
  if (s->werr || (s->h.flags & NEAP_H_UVCLOSE) || s->released) {
    neap__stream_drop_pending(s);
    return;
  }
  if (s->nwrites == 0) {
    int n = uv_try_write(&neap__su(s)->stream, s->pbufs, s->npb);
    if (n > 0) {
      left -= (size_t)n;
      k = neap__bufs_advance(s->pbufs, s->npb, (size_t)n);
    }
    else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
      s->werr = n;
      neap__stream_drop_pending(s);
      neap__stream_wake_writer(s);
      return;
    }
  }
  if (k == s->npb) {             /* all sent at once */
    s->queued -= s->pending;
    if (!s->h.host->dying && s->pref != LUA_NOREF) spare_anchor(s);
  }
  else {
    write_req *w = malloc(sizeof *w);
    int r = w ? 0 : UV_ENOMEM;
    char *mem = w ? stream_unarena(s, k, &r) : NULL;
    if (r < 0) {
      free(w);
      w = NULL;
    }
    if (w) {
      w->s = s;
      w->len = left;
      w->ref = s->pref;
      w->mem = mem;
      r = uv_write(&w->req, &neap__su(s)->stream, s->pbufs + k, s->npb - k,
                   stream_write_cb);
      if (r < 0) {
        free(mem);
        free(w);
      }
    }
    if (r < 0) {
      s->werr = r;
      neap__stream_drop_pending(s);
      neap__stream_wake_writer(s);
      return;
    }
    s->queued -= s->pending - left;
    s->nwrites++;
  }
  s->pref = LUA_NOREF;
  s->npb = 0;
  s->pending = 0;
  if ((s->reader != NULL || s->cb_armed) && s->rb.base == NULL) {
    /* its reader (or callbacks) wait on an empty buffer: an idle
    ** connection keeps no list of writes either (taken again at the next
    ** write) */
    neap__stream_free_pbufs(s);
  }
  neap__stream_wake_writer(s);
}

/* Takes 's' off the host's list of streams with gathered writes. */
void neap__stream_undirty (neap_stream *s) {
  neap_stream **pp;
  if (!s->dirty) return;
  for (pp = &s->h.host->dirty; *pp; pp = &(*pp)->next_dirty)
    if (*pp == s) { *pp = s->next_dirty; break; }
  s->dirty = 0;
  s->next_dirty = NULL;
}

/* After the tasks of a loop turn: flush every stream written to. */
void neap__stream_flush_all (neap_host *h) {
  while (h->dirty) {
    neap_stream *s = h->dirty;
    h->dirty = s->next_dirty;
    s->dirty = 0;
    s->next_dirty = NULL;
    neap__stream_flush_pending(s);
  }
  h->wa_len = 0;   /* (what the kernel did not take was copied out) */
}

/*
** s:write(data, ...) -> s | nil, err, code. Strings are sent without a
** copy: what uv_try_write does not take at once is queued with a
** reference to the string itself.
*/
static int stream_write (lua_State *L) {
  neap_stream **box = neap__stream_box(L, 1), *s = *box;
  int nargs = lua_gettop(L) - 1, i, nb = 0, ref, r;
  uv_buf_t sbufs[16], *bufs = sbufs;
  const char *ps[16];
  size_t lens[16];
  size_t total = 0, npieces = 0;
  size_t piece = s && s->h.host->write_piece ? s->h.host->write_piece
                                             : NEAP_WRITE_PIECE;
  neap_task *t;
  /* the usual call first: one string, to a socket or a pipe, from a task
  ** (gathered for the turn's flush; the rest below does the same for it) */
  if (nargs == 1 && s != NULL && lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *p = lua_tolstring(L, 2, &len);
    if (len > 0 && len <= piece && !s->werr && !s->shut && !s->sync_writes &&
        s->kind != NEAP_S_NONE && s->be->write == NULL &&
        (s->h.host->in_tasks || neap__stls(s))) {
      sbufs[0] = uv_buf_init((char *)p, (unsigned)len);
      if ((r = stream_gather(L, s, 2, 1, sbufs, 1, len)) != 0) goto gather_failed;
      goto written;
    }
  }
  if (nargs < 1) luaL_argerror(L, 2, "string expected, got no value");
  if (nargs > 16) return luaL_error(L, "write: at most 16 strings at once");
  for (i = 0; i < nargs; i++) {
    size_t len;
    if (lua_type(L, i + 2) == LUA_TNUMBER) {
      lua_pushvalue(L, i + 2);
      lua_tostring(L, -1);
      lua_replace(L, i + 2);
    }
    ps[i] = luaL_checklstring(L, i + 2, &len);
    lens[i] = len;
    npieces += write_npieces(len, piece);
    total += len;
  }
  /* (a number's string, made above, and the list below run the collector,
  ** whose finalizers may close 's': read from the box after them) */
  if (npieces > 16) {   /* strings over 1 GiB: several buffers each */
    if (npieces > (size_t)INT_MAX / sizeof *bufs)
      return luaL_error(L, "write: out of memory");
    bufs = lua_newuserdatauv(L, npieces * sizeof *bufs, 0);   /* (above the arguments) */
  }
  if ((s = *box) == NULL) return neap__push_closed(L);
  for (i = 0; i < nargs; i++)
    nb += write_pieces(bufs + nb, ps[i], lens[i], piece);
  if (s->werr) return neap__stream_push_err(L, s, s->werr);
  if (s->shut) return neap__push_error(L, UV_EPIPE);
  if (total == 0) {
    lua_settop(L, 1);
    return 1;
  }
  if (s->kind == NEAP_S_NONE) return neap__push_error(L, UV_EBADF);
  if (s->sync_writes) {
    /* stdout and stderr: in order with print and io.write, and done at exit */
    fflush(s->fd == 2 ? stderr : stdout);
    if (s->kind == NEAP_S_FILE) {
      int r = neap__file_write_sync(s, bufs, nb);
      if (r < 0) return neap__push_error(L, r);
      lua_settop(L, 1);
      return 1;
    }
  }
  if (s->be->write == NULL && !s->sync_writes &&
      (s->h.host->in_tasks || neap__stls(s))) {   /* (TLS: encrypted at the flush) */
    if ((r = stream_gather(L, s, 2, nargs, bufs, nb, total)) != 0) goto gather_failed;
    goto written;
  }
  if (s->be->write == NULL && s->nwrites == 0 && s->npb == 0) {
    int n = uv_try_write(&neap__su(s)->stream, bufs, nb);
    if (n > 0) {
      int k = neap__bufs_advance(bufs, nb, (size_t)n);
      total -= (size_t)n;
      if (k == nb) {
        lua_settop(L, 1);
        return 1;
      }
      memmove(bufs, bufs + k, (nb - k) * sizeof *bufs);
      nb -= k;
    }
    else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
      s->werr = n;
      return neap__push_error(L, n);
    }
  }
  /* keep the strings alive until they are sent */
  if (nargs == 1) lua_pushvalue(L, 2);
  else {
    lua_createtable(L, nargs, 0);
    for (i = 0; i < nargs; i++) {
      lua_pushvalue(L, i + 2);
      lua_rawseti(L, -2, i + 1);
    }
  }
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if ((s = *box) == NULL) {   /* a finalizer closed it (the table's collector step) */
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return neap__push_closed(L);
  }
  if (s->be->write != NULL) {      /* files and polled descriptors */
    r = s->be->write(s, bufs, nb, total, ref);
    if (r < 0) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      return neap__push_error(L, r);
    }
  }
  else {
    write_req *w = malloc(sizeof *w);
    if (w == NULL) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      return luaL_error(L, "write: out of memory");
    }
    w->s = s;
    w->len = total;
    w->ref = ref;
    w->mem = NULL;
    r = uv_write(&w->req, &neap__su(s)->stream, bufs, nb, stream_write_cb);
    if (r < 0) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      free(w);
      s->werr = r;
      return neap__push_error(L, r);
    }
    s->queued += total;
    s->nwrites++;
  }
written:
  if (s->queued > neap__s_hwm(s) && (t = neap__sched_current(L)) != NULL &&
      !t->cancelled)
    return stream_park_writer(L, s, t, 0, neap__s_wtimeout(s));
  lua_settop(L, 1);
  return 1;
gather_failed:   /* a finalizer closed 's', or it failed, while the write began */
  if (r == NEAP_GATHER_CLOSED) return neap__push_closed(L);
  return r == UV_EPIPE && !s->werr ? neap__push_error(L, r) : neap__stream_push_err(L, s, r);
}

/* s:flush{timeout=} -> s once everything written so far is sent */
static int stream_flush (lua_State *L) {
  neap_stream *s = neap__stream_check_io(L, 1);
  double timeout = neap__opt_timeout(L, 2, "flush");
  neap_task *t;
  if (s == NULL) return neap__push_closed(L);
  neap__stream_undirty(s);
  neap__stream_flush_pending(s);
  if (s->werr) return neap__stream_push_err(L, s, s->werr);
  if (s->nwrites == 0) {
    lua_settop(L, 1);
    return 1;
  }
  t = neap__sched_check(L, "flush");
  return stream_park_writer(L, s, t, 1, timeout);
}

static void stream_shutdown_cb (uv_shutdown_t *req, int status) {
  neap_stream *s = req->data;
  free(req);
  if (status < 0 && status != UV_ECANCELED && !s->werr) s->werr = status;
  (void)s;
}

/* s:shutdown() -> s: no more writes; the peer reads EOF after the queue */
static int stream_shutdown (lua_State *L) {
  neap_stream *s = neap__stream_check_io(L, 1);
  if (s == NULL) return neap__push_closed(L);
  lua_settop(L, 1);
  if (s->shut) return 1;
  neap__stream_undirty(s);
  neap__stream_flush_pending(s);   /* the queue goes out before the FIN */
  if (neap__stls(s)) neap__tls_shutdown_stream(s);   /* and close_notify */
  s->shut = 1;
  if (s->kind == NEAP_S_TCP || s->kind == NEAP_S_PIPE) {
    uv_shutdown_t *req = malloc(sizeof *req);
    int r;
    if (req == NULL) return luaL_error(L, "shutdown: out of memory");
    req->data = s;
    r = uv_shutdown(req, &neap__su(s)->stream, stream_shutdown_cb);
    if (r < 0) {
      free(req);
      return neap__push_error(L, r);
    }
  }
  return 1;
}

/* neap.core._write_arena() -> bytes of small writes copied into the turn's
** arena, and bytes of it copied out to queued writes (tests) */
static int stream_write_arena (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_pushinteger(L, (lua_Integer)h->wa_in);
  lua_pushinteger(L, (lua_Integer)h->wa_out);
  return 2;
}

/* neap.core._write_lists() -> lists of gathered writes taken from malloc so
** far, emptied ones the host holds for reuse now, and how many it may
** hold (0 under ASan) (tests) */
static int stream_write_lists (lua_State *L) {
  neap_host *h = neap__host(L);
  lua_pushinteger(L, (lua_Integer)h->pbufs_allocs);
  lua_pushinteger(L, h->nspare_pbufs);
  lua_pushinteger(L, NEAP_PBUFS_KEEP);
  return 3;
}

/* neap.core._write_piece(n): tests only: writes make buffers of at most n bytes */
static int stream_write_piece (lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, n >= 0, 1, "size must be >= 0");
  neap__host(L)->write_piece = (size_t)n;
  return 0;
}

/* The stream methods of this file, installed by stream.c. */
const luaL_Reg neap__stream_write_meth[] = {
  {"write", stream_write},
  {"flush", stream_flush},
  {"shutdown", stream_shutdown},
  {NULL, NULL}
};

int neap__stream_write_open (lua_State *L) {
  lua_pushcfunction(L, stream_write_piece);
  lua_setfield(L, -2, "_write_piece");
  lua_pushcfunction(L, stream_write_arena);
  lua_setfield(L, -2, "_write_arena");
  lua_pushcfunction(L, stream_write_lists);
  lua_setfield(L, -2, "_write_lists");
  return 0;
}
