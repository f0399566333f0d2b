/* SPDX-License-Identifier: MIT */
/*
** Streams that libuv cannot treat as streams: regular files and devices
** (read and written on the thread pool, so the loop never blocks on
** disk), descriptors that can only be polled for readiness (uv_poll), and
** closed ones. Also neap.open and seek.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "neapi.h"

#define FILE_CHUNK (256 * 1024)

typedef struct neap_fwrite {
  uv_fs_t req;
  struct neap_fwrite *next;
  neap_stream *s;
  int64_t off;             /* where to write; -1: the current position */
  int ref;                 /* registry ref of the strings */
  int nb;
  uv_buf_t bufs[1];
} neap_fwrite;

/* ====================================================== shared */

/* After a queued write finished: a lingering close, or wake the writer. */
static void write_done (neap_stream *s) {
  if (s->h.host->dying) return;
  if ((s->h.flags & NEAP_H_CLOSING) && s->nwrites == 0) {
    s->be->close(s);
    return;
  }
  neap__stream_wake_writer(s);
}

static neap_fwrite *fwrite_new (neap_stream *s, uv_buf_t *bufs, int nb,
                                int ref) {
  neap_fwrite *w = malloc(sizeof *w + (nb - 1) * sizeof(uv_buf_t));
  if (w == NULL) return NULL;
  w->req.data = w;
  w->s = s;
  w->ref = ref;
  w->nb = nb;
  w->next = NULL;
  w->off = -1;
  memcpy(w->bufs, bufs, nb * sizeof *bufs);
  return w;
}

/* Drops 'n' written bytes from the front of w's buffers. */
static void fwrite_advance (neap_fwrite *w, size_t n) {
  int k = neap__bufs_advance(w->bufs, w->nb, n);
  memmove(w->bufs, w->bufs + k, (w->nb - k) * sizeof(uv_buf_t));
  w->nb -= k;
}

static void fwrite_free (neap_stream *s, neap_fwrite *w) {
  s->x->fq = w->next;
  if (s->x->fq == NULL) s->x->fq_tail = NULL;
  s->nwrites--;
  if (!s->h.host->dying) luaL_unref(s->h.host->L, LUA_REGISTRYINDEX, w->ref);
  free(w);
}

static void fwrite_enqueue (neap_stream *s, neap_fwrite *w, size_t total) {
  s->queued += total;
  s->nwrites++;
  if (s->x->fq_tail) s->x->fq_tail->next = w;
  else s->x->fq = w;
  s->x->fq_tail = w;
}

/* ====================================================== files */

/* A closed file is released once its requests in flight have finished. */
static void file_maybe_free (neap_stream *s) {
  if (!(s->h.flags & NEAP_H_UVCLOSE) ||
      (s->x && (s->x->fsreq || s->x->fq))) return;   /* (no x: a dead stream) */
  neap__handle_release_later(&s->h);
}

static void file_release (neap_stream *s) {
  if (s->fd > 2) {
    uv_fs_t req;
    uv_fs_close(NULL, &req, s->fd, NULL);
    uv_fs_req_cleanup(&req);
  }
}

typedef struct file_read {
  uv_fs_t req;
  int gen;                 /* the stream's seek_gen when it started */
} file_read;

static void file_read_cb (uv_fs_t *req) {
  neap_stream *s = req->data;
  ssize_t n = req->result;
  int stale = ((file_read *)req)->gen != s->x->seek_gen;   /* (see seek) */
  uv_fs_req_cleanup(req);
  free(req);
  s->x->fsreq = NULL;
  if (s->h.flags & NEAP_H_UVCLOSE) {
    file_maybe_free(s);
    return;
  }
  if (stale) { /* a seek came meanwhile: these bytes are from before it */ }
  else if (n > 0) {
    neap__buf_commit(&s->rb, (size_t)n);
    if (s->x->offset >= 0) s->x->offset += n;
  }
  else if (n == 0) s->eof = 1;
  else s->err = (int)n;
  if (s->h.host->dying) return;
  neap__stream_deliver(s);
}

static int file_read_start (neap_stream *s) {
  uv_fs_t *req;
  size_t avail = 0;
  char *p;
  uv_buf_t b;
  int r;
  if (s->x->fsreq || s->eof || s->err) return 0;
  p = neap__buf_reserve(&s->rb, FILE_CHUNK, &avail);
  if (p == NULL) return UV_ENOMEM;
  req = malloc(sizeof(file_read));
  if (req == NULL) return UV_ENOMEM;
  req->data = s;
  if (avail > NEAP_WRITE_PIECE) avail = NEAP_WRITE_PIECE;   /* (unsigned) must not cut it */
  b = uv_buf_init(p, (unsigned)avail);
  r = uv_fs_read(s->h.host->loop, req, s->fd, &b, 1, s->x->offset, file_read_cb);
  if (r < 0) {
    free(req);
    return r;
  }
  ((file_read *)req)->gen = s->x->seek_gen;
  s->x->fsreq = req;
  return 0;
}

static void file_read_stop (neap_stream *s) {
  (void)s;   /* the read in flight finishes; no new one starts */
}

static void file_close (neap_stream *s) {
  if (neap__handle_closing(&s->h)) file_maybe_free(s);
}

static void file_write_next (neap_stream *s);

static void file_write_cb (uv_fs_t *req) {
  neap_fwrite *w = req->data;
  neap_stream *s = w->s;
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  if (r >= 0) {
    s->queued -= (size_t)r;
    if (w->off >= 0) w->off += r;
    fwrite_advance(w, (size_t)r);
    if (w->nb > 0 && r > 0) {   /* a short write: the rest */
      file_write_next(s);
      return;
    }
    if (w->nb > 0) r = UV_EIO;
  }
  if (r < 0) {
    size_t k, left = 0;
    for (k = 0; k < (size_t)w->nb; k++) left += w->bufs[k].len;
    s->queued -= left;
    if (!s->werr) s->werr = (int)r;
  }
  fwrite_free(s, w);
  if (s->x->fq) file_write_next(s);
  if (s->h.flags & NEAP_H_UVCLOSE) {
    file_maybe_free(s);
    return;
  }
  write_done(s);
}

static void file_write_next (neap_stream *s) {
  neap_fwrite *w = s->x->fq;
  int r = uv_fs_write(s->h.host->loop, &w->req, s->fd, w->bufs, w->nb,
                      w->off, file_write_cb);
  if (r < 0) {
    w->req.result = r;
    file_write_cb(&w->req);
  }
}

static int file_write (neap_stream *s, uv_buf_t *bufs, int nb, size_t total,
                       int ref) {
  neap_fwrite *w = fwrite_new(s, bufs, nb, ref);
  int first;
  if (w == NULL) return UV_ENOMEM;
  if (s->x->offset >= 0 && !s->x->append) {
    /* bytes read ahead are not the position: write where reading stands */
    size_t ahead = neap__buf_len(&s->rb);
    if (ahead > 0 || s->x->fsreq) {
      s->x->offset -= (int64_t)ahead;
      neap__buf_consume(&s->rb, ahead);
      s->x->seek_gen++;
      s->eof = 0;
    }
    w->off = s->x->offset;
    s->x->offset += (int64_t)total;
  }
  first = (s->x->fq == NULL);
  fwrite_enqueue(s, w, total);
  if (first) file_write_next(s);
  return 0;
}

/* Writes all of 'bufs' to a file at once (stdout and stderr as files). */
int neap__file_write_sync (neap_stream *s, uv_buf_t *bufs, int nb) {
  while (nb > 0) {
    uv_fs_t req;
    int k, r = uv_fs_write(NULL, &req, s->fd, bufs, nb, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r < 0) return r;
    k = neap__bufs_advance(bufs, nb, (size_t)r);
    bufs += k;
    nb -= k;
  }
  return 0;
}

static const neap_stream_backend file_backend = {
  file_read_start, file_read_stop, file_close, file_write, file_release
};

int neap__stream_init_file (neap_stream *s, int fd, int64_t offset) {
  s->fd = fd;   /* (closed by its release even when what follows fails) */
  if (neap__stream_x(s) == NULL) return UV_ENOMEM;
  s->kind = NEAP_S_FILE;
  s->be = &file_backend;
  s->fd = fd;
  s->x->offset = offset;
  return 0;
}

static int none_read_start (neap_stream *s) {
  s->eof = 1;
  neap__stream_deliver(s);
  return 0;
}

const neap_stream_backend neap__none_backend = {
  none_read_start, file_read_stop, file_close, NULL, file_release
};

/* ====================================================== polled fds */

static void poll_release (neap_stream *s) {
  while (s->x && s->x->fq) fwrite_free(s, s->x->fq);
  if (s->fd > 2) close(s->fd);
}

static void poll_close (neap_stream *s) {
  neap__handle_uvclose(&s->h, &neap__su(s)->handle);
}

static void poll_cb (uv_poll_t *pl, int status, int events);

#define POLL_READ (64 * 1024)   /* the least room a read of a polled descriptor gets */

static void poll_update (neap_stream *s) {
  int ev = (s->reading ? UV_READABLE : 0) | (s->x->fq ? UV_WRITABLE : 0);
  if (s->h.flags & NEAP_H_UVCLOSE) return;
  if (ev == s->x->pevents) return;
  s->x->pevents = ev;
  if (ev) uv_poll_start(&neap__su(s)->poll, ev, poll_cb);
  else uv_poll_stop(&neap__su(s)->poll);
}

/* Writes queued data until the descriptor would block; 0 or an error. */
static int poll_flush (neap_stream *s) {
  while (s->x->fq) {
    neap_fwrite *w = s->x->fq;
    ssize_t n = writev(s->fd, (struct iovec *)w->bufs, w->nb);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      return uv_translate_sys_error(errno);
    }
    s->queued -= (size_t)n;
    fwrite_advance(w, (size_t)n);
    if (w->nb == 0) fwrite_free(s, w);
  }
  return 0;
}

static void poll_cb (uv_poll_t *pl, int status, int events) {
  neap_stream *s = pl->data;
  if (s->h.host->dying) return;
  if (status < 0) {
    s->err = status;
    events = UV_READABLE;
  }
  if ((events & UV_WRITABLE) && s->x->fq) {
    int r = poll_flush(s);
    if (r < 0) {
      s->werr = r;
      while (s->x->fq) {
        size_t k;
        for (k = 0; k < (size_t)s->x->fq->nb; k++) s->queued -= s->x->fq->bufs[k].len;
        fwrite_free(s, s->x->fq);
      }
    }
    poll_update(s);
    write_done(s);
    if (s->h.flags & NEAP_H_UVCLOSE) return;
  }
  if ((events & UV_READABLE) && s->reading && !s->err) {
    size_t avail = 0;
    char *p;
    ssize_t n;
    /* a block from the host's cache, a large one: a datagram must fit whole
    ** (64 KiB of room, as the buffer grows for a partial line before it) */
    s->rbig = 1;
    p = neap__stream_reserve(s, &avail);
    if (p != NULL && avail < POLL_READ) p = neap__buf_reserve(&s->rb, POLL_READ, &avail);
    n = p ? read(s->fd, p, avail) : -1;
    if (n > 0) neap__buf_commit(&s->rb, (size_t)n);
    else if (n == 0) s->eof = 1;
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    else s->err = p ? uv_translate_sys_error(errno) : UV_ENOMEM;
  }
  if (s->eof || s->err) s->reading = 0;
  poll_update(s);
  neap__stream_deliver(s);
}

static int poll_read_start (neap_stream *s) {
  s->reading = 1;
  poll_update(s);
  return 0;
}

static void poll_read_stop (neap_stream *s) {
  s->reading = 0;
  poll_update(s);
}

static int poll_write (neap_stream *s, uv_buf_t *bufs, int nb, size_t total,
                       int ref) {
  neap_fwrite *w = fwrite_new(s, bufs, nb, ref);
  int r;
  if (w == NULL) return UV_ENOMEM;
  fwrite_enqueue(s, w, total);
  r = poll_flush(s);
  if (r < 0) {
    s->werr = r;
    return r;
  }
  poll_update(s);
  return 0;
}

static const neap_stream_backend poll_backend = {
  poll_read_start, poll_read_stop, poll_close, poll_write, poll_release
};

/* Makes 's' watch 'fd' for readiness; 0 or a UV error. */
int neap__stream_init_poll (neap_stream *s, int fd) {
  int r;
  if (neap__stream_x(s) == NULL) return UV_ENOMEM;
  r = uv_poll_init(s->h.host->loop, &neap__su(s)->poll, fd);
  if (r < 0) return r;
  s->kind = NEAP_S_POLL;
  s->be = &poll_backend;
  s->fd = fd;
  neap__su(s)->handle.data = s;
  uv_unref(&neap__su(s)->handle);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

/* ====================================================== neap.open */

typedef struct open_req {
  uv_fs_t req;
  neap_task *t;
  neap_host *host;
  int append;
  int flags;
  char *fifo;              /* the path, when it is a FIFO (its open may block) */
  int hold_fd;             /* the FIFO's other end, held open to release it */
  struct open_req *next, *prev;   /* opens in flight (all hosts) */
} open_req;

/* Opens in flight, of every host: process-wide because the atexit handler
** (release_at_exit) must unblock them all; teardown takes only its own.
** Hosts on several threads (neap.thread) share it: 'opens_lock' guards it. */
static open_req *opens;
static pthread_mutex_t opens_lock = PTHREAD_MUTEX_INITIALIZER;

static int push_file (lua_State *L, int fd, int append) {
  neap_stream *s;
  struct stat st;
  if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    return neap__stream_wrap_fd(L, fd, 0);   /* a FIFO is a pipe stream */
  s = neap__stream_new(L, NEAP_S_FILE);
  if (neap__stream_init_file(s, fd, append ? -1 : 0) < 0)
    return luaL_error(L, "out of memory");   /* (the box's __gc closes fd) */
  s->x->append = append;
  if (append) {   /* reads of an "a+" file start at the beginning */
    s->x->offset = 0;
  }
  return 1;
}

typedef struct open_push {
  int fd, append;
} open_push;

static int push_file_p (lua_State *L, void *ud) {
  open_push *op = ud;
  int n = push_file(L, op->fd, op->append);
  op->fd = -1;   /* the stream owns it now */
  return n;
}

static void open_cb (uv_fs_t *req) {
  open_req *o = (open_req *)req;
  neap_task *t = o->t;
  int r = (int)req->result, append = o->append;
  uv_fs_req_cleanup(req);
  if (o->hold_fd >= 0) close(o->hold_fd);
  pthread_mutex_lock(&opens_lock);
  if (o->prev) o->prev->next = o->next;
  else opens = o->next;
  if (o->next) o->next->prev = o->prev;
  pthread_mutex_unlock(&opens_lock);
  o->host->opens--;
  free(o->fifo);
  free(o);
  if (t == NULL || t->host->dying) {   /* the waiter gave up */
    if (r >= 0) close(r);
    return;
  }
  t->parked_on = NULL;
  if (r < 0) neap__sched_wake_error(t, r);
  else {
    open_push op;
    op.fd = r;
    op.append = append;
    if (neap__sched_wake_with(t, push_file_p, &op) != LUA_OK && op.fd >= 0)
      close(op.fd);   /* no memory for the stream: the descriptor goes */
  }
}

/*
** Nobody waits for 'o' any more. An open of a FIFO blocks its pool thread
** until the other end opens, so, unless the request can still be taken
** off the pool's queue, the other end is opened (read-write, which never
** blocks and serves a reader and a writer alike) and held until open_cb
** runs: the open returns, open_cb closes both, and no thread, loop or exit
** waits forever. Another open of the same FIFO that is blocked at that
** moment is released too (and then sees the end of the stream).
*/
static void open_release (open_req *o) {
  o->t = NULL;
  if (o->fifo == NULL || o->hold_fd >= 0) return;
  if (uv_cancel((uv_req_t *)&o->req) == 0) return;   /* not started: open_cb gets ECANCELED */
  o->hold_fd = open(o->fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

static void open_unpark (neap_task *t) {
  open_req *o = t->parked_on;
  if (o != NULL) open_release(o);
}

/* Teardown: release the host's opens in flight and wait for them to end. */
void neap__fs_free (neap_host *h) {
  open_req *o;
  pthread_mutex_lock(&opens_lock);
  for (o = opens; o; o = o->next)
    if (o->host == h) open_release(o);
  pthread_mutex_unlock(&opens_lock);
  while (h->opens > 0) uv_run(h->loop, UV_RUN_ONCE);
}

/* At exit (os.exit): libuv joins its pool threads; none may stay blocked. */
static void release_at_exit (void) {
  open_req *o;
  pthread_mutex_lock(&opens_lock);
  for (o = opens; o; o = o->next)
    if (o->fifo != NULL && o->hold_fd < 0)
      o->hold_fd = open(o->fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  pthread_mutex_unlock(&opens_lock);
}

/*
** neap.core.open(path, flags, append [, timeout]) -> stream | nil, err, code.
** Inside a task the open runs on the thread pool; outside, it is immediate.
*/
static int fs_open (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *path = luaL_checkstring(L, 1);
  int flags = (int)luaL_checkinteger(L, 2);
  int append = lua_toboolean(L, 3);
  double timeout = neap__opt_seconds(L, 4, "open");
  neap_task *t = neap__sched_current(L);
  open_req *o;
  int r;
  if (t == NULL) {
    uv_fs_t req;
    r = uv_fs_open(NULL, &req, path, flags, 0666, NULL);
    uv_fs_req_cleanup(&req);
    if (r < 0) return neap__push_error(L, r);
    return push_file(L, r, append);
  }
  o = malloc(sizeof *o);
  if (o == NULL) return luaL_error(L, "out of memory");
  o->t = t;
  o->host = host;
  o->append = append;
  o->flags = flags;
  o->fifo = NULL;
  o->hold_fd = -1;
  {
    static int at_exit;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
      o->fifo = strdup(path);
      pthread_mutex_lock(&opens_lock);
      if (!at_exit) at_exit = atexit(release_at_exit) == 0;
      pthread_mutex_unlock(&opens_lock);
    }
  }
  r = uv_fs_open(host->loop, &o->req, path, flags, 0666, open_cb);
  if (r < 0) {
    free(o->fifo);
    free(o);
    return neap__push_error(L, r);
  }
  pthread_mutex_lock(&opens_lock);
  o->prev = NULL;
  o->next = opens;
  if (opens) opens->prev = o;
  opens = o;
  pthread_mutex_unlock(&opens_lock);
  host->opens++;
  return neap__sched_park(L, t, timeout, open_unpark, o);
}

/* s:seek([whence [, offset]]) -> position | nil, err, code (files only) */
static int fs_seek (lua_State *L) {
  static const char *const modes[] = {"set", "cur", "end", NULL};
  neap_stream *s = neap__stream_check(L, 1);
  int whence = luaL_checkoption(L, 2, "cur", modes);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  int64_t pos, base;
  if (s->kind != NEAP_S_FILE || s->x->offset < 0)
    return luaL_error(L, "seek: not a file opened with neap.open");
  base = s->x->offset - (int64_t)neap__buf_len(&s->rb);   /* where reading stands */
  if (whence == 0) pos = off;
  else if (whence == 1) pos = base + off;
  else {
    uv_fs_t req;
    int r = uv_fs_fstat(NULL, &req, s->fd, NULL);
    if (r < 0) {
      uv_fs_req_cleanup(&req);
      return neap__push_error(L, r);
    }
    pos = (int64_t)req.statbuf.st_size + off;
    uv_fs_req_cleanup(&req);
  }
  if (pos < 0) return neap__push_error(L, UV_EINVAL);
  if (pos != base || s->eof) {
    neap__buf_consume(&s->rb, neap__buf_len(&s->rb));
    s->x->offset = pos;
    s->eof = 0;
    s->err = 0;
    s->x->seek_gen++;   /* a read in flight is dropped */
  }
  lua_pushinteger(L, pos);
  return 1;
}

/* The stream methods of this file, installed by stream.c. */
const luaL_Reg neap__fs_stream_meth[] = {
  {"seek", fs_seek},
  {NULL, NULL}
};

/*
** Registers open, and core.O: libuv's open(2) flags, which neap.util turns
** io.open modes into (their values differ between systems).
*/
int neap__fs_open (lua_State *L) {
  static const struct { const char *name; int flag; } oflags[] = {
    {"RDONLY", UV_FS_O_RDONLY}, {"WRONLY", UV_FS_O_WRONLY},
    {"RDWR", UV_FS_O_RDWR}, {"CREAT", UV_FS_O_CREAT},
    {"TRUNC", UV_FS_O_TRUNC}, {"APPEND", UV_FS_O_APPEND}
  };
  size_t i;
  lua_pushcfunction(L, fs_open);
  lua_setfield(L, -2, "open");
  lua_createtable(L, 0, sizeof oflags / sizeof oflags[0]);
  for (i = 0; i < sizeof oflags / sizeof oflags[0]; i++) {
    lua_pushinteger(L, oflags[i].flag);
    lua_setfield(L, -2, oflags[i].name);
  }
  lua_setfield(L, -2, "O");   /* core.O */
  return 0;
}
