/* SPDX-License-Identifier: MIT */
/*
** The file system by path: stat, readdir, mkdir, rmdir, unlink, rename,
** realpath, chmod, symlink, readlink, mkdtemp, copyfile, and s:stat() on a
** stream. Each runs on libuv's thread pool while the calling task parks; a
** request whose waiter gave up (cancelled, or the host torn down) finishes
** on its own and touches neither the task nor Lua.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "neapi.h"

enum { OP_STAT, OP_LSTAT, OP_FSTAT, OP_READDIR, OP_MKDIR, OP_RMDIR,
       OP_UNLINK, OP_RENAME, OP_REALPATH, OP_CHMOD, OP_SYMLINK, OP_READLINK,
       OP_MKDTEMP, OP_COPYFILE };

typedef struct fsop {
  uv_fs_t req;
  neap_task *t;            /* the waiter; NULL once it gave up */
  neap_host *host;
  int op;
  int fd;                  /* s:stat(): a duplicate of the stream's fd */
  int mode;
  int parents;             /* mkdir -p */
  int checking;            /* mkdir -p: the final stat of an existing path */
  size_t len, end;         /* mkdir -p: the path's length; the prefix tried */
  char *path2;             /* the second path (rename, copyfile, symlink) */
  char *cur;               /* mkdir -p: the prefix tried */
  char path[1];            /* the path(s), for messages; more follow */
} fsop;

/* ====================================================== results */

static const char *mode_type (uint64_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "unknown";
  }
}

static double ts (uv_timespec_t t) {
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void push_stat (lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 11);
  lua_pushstring(L, mode_type(st->st_mode));
  lua_setfield(L, -2, "type");
#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  SETI("size", st->st_size);
  SETI("mode", st->st_mode & 07777);
  SETI("uid", st->st_uid);
  SETI("gid", st->st_gid);
  SETI("nlink", st->st_nlink);
  SETI("ino", st->st_ino);
  SETI("dev", st->st_dev);
#undef SETI
  lua_pushnumber(L, ts(st->st_atim));
  lua_setfield(L, -2, "atime");
  lua_pushnumber(L, ts(st->st_mtim));
  lua_setfield(L, -2, "mtime");
  lua_pushnumber(L, ts(st->st_ctim));
  lua_setfield(L, -2, "ctime");
}

static const char *dirent_type (uv_dirent_type_t t) {
  switch (t) {
    case UV_DIRENT_FILE: return "file";
    case UV_DIRENT_DIR: return "directory";
    case UV_DIRENT_LINK: return "link";
    case UV_DIRENT_FIFO: return "fifo";
    case UV_DIRENT_SOCKET: return "socket";
    case UV_DIRENT_CHAR: return "char";
    case UV_DIRENT_BLOCK: return "block";
    default: return "unknown";
  }
}

/*
** Pushes nil, message, code for the failure 'r' of 'o': the message names
** the path ("/x/y: no such file or directory"), or both paths for the
** functions that take two ("a -> b: ...").
*/
static int push_fserror (lua_State *L, fsop *o, int r) {
  const char *p = o->cur ? o->cur : o->path;
  lua_pushnil(L);
  if (o->op == OP_FSTAT)
    lua_pushstring(L, uv_strerror(r));
  else if (o->path2)
    lua_pushfstring(L, "%s -> %s: %s", p, o->path2, uv_strerror(r));
  else
    lua_pushfstring(L, "%s: %s", p, uv_strerror(r));
  lua_pushstring(L, uv_err_name(r));
  return 3;
}

/* Protected (on the host's thread): the results of the finished 'o'. */
static int fsop_push_p (lua_State *L, void *ud) {
  fsop *o = ud;
  int r = (int)o->req.result, i = 0;
  uv_dirent_t ent;
  if (o->checking) {   /* mkdir -p of a path that exists: a directory? */
    if (r >= 0 && !S_ISDIR(o->req.statbuf.st_mode)) r = UV_EEXIST;
    else if (r < 0 && r != UV_ENOMEM) r = UV_EEXIST;
  }
  if (r < 0) return push_fserror(L, o, r);
  switch (o->op) {
    case OP_STAT: case OP_LSTAT: case OP_FSTAT:
      push_stat(L, &o->req.statbuf);
      return 1;
    case OP_READDIR:
      lua_newtable(L);
      while (uv_fs_scandir_next(&o->req, &ent) != UV_EOF) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, ent.name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, dirent_type(ent.type));
        lua_setfield(L, -2, "type");
        lua_rawseti(L, -2, ++i);
      }
      return 1;
    case OP_REALPATH: case OP_READLINK:
      lua_pushstring(L, o->req.ptr);
      return 1;
    case OP_MKDTEMP:
      lua_pushstring(L, o->req.path);
      return 1;
    default:
      lua_pushboolean(L, 1);
      return 1;
  }
}

/* ====================================================== mkdir -p */

static void fsop_cb (uv_fs_t *req);

/* The next step of mkdir -p after the request on 'o->cur' ended: 1 when
** another request was started. */
static int mkdirp_next (fsop *o) {
  int r = (int)o->req.result;
  size_t i;
  if (o->checking) return 0;
  if (r == 0 || r == UV_EEXIST) {
    if (o->end == o->len) {
      if (r == 0) return 0;
      o->checking = 1;   /* it exists: it must be a directory */
      uv_fs_req_cleanup(&o->req);
      r = uv_fs_stat(o->host->loop, &o->req, o->path, fsop_cb);
      if (r < 0) o->req.result = r;
      return r == 0;
    }
    i = o->end;   /* go down one component */
    while (i < o->len && o->path[i] == '/') i++;
    while (i < o->len && o->path[i] != '/') i++;
  }
  else if (r == UV_ENOENT) {   /* go up one component */
    i = o->end;
    while (i > 0 && o->path[i - 1] != '/') i--;
    if (i == 0) return 0;      /* no parent to make */
    i--;
    while (i > 0 && o->path[i - 1] == '/') i--;
    if (i == 0) return 0;      /* the parent is "/" */
  }
  else return 0;
  o->end = i;
  memcpy(o->cur, o->path, i);
  o->cur[i] = '\0';
  uv_fs_req_cleanup(&o->req);
  r = uv_fs_mkdir(o->host->loop, &o->req, o->cur, o->mode, fsop_cb);
  if (r < 0) o->req.result = r;
  return r == 0;
}

/* ====================================================== requests */

static void fsop_free (fsop *o) {
  uv_fs_req_cleanup(&o->req);
  if (o->fd >= 0) close(o->fd);
  o->host->pool_reqs--;
  free(o);
}

static void fsop_cb (uv_fs_t *req) {
  fsop *o = (fsop *)req;
  neap_task *t = o->t;
  if (t == NULL || o->host->dying) {   /* the waiter gave up */
    fsop_free(o);
    return;
  }
  if (o->parents && mkdirp_next(o)) return;
  t->parked_on = NULL;
  o->t = NULL;
  neap__sched_wake_with(t, fsop_push_p, o);
  fsop_free(o);
}

static void fsop_unpark (neap_task *t) {
  fsop *o = t->parked_on;
  if (o != NULL) o->t = NULL;   /* the request runs on; its callback frees it */
}

/* Teardown: wait for the requests still on the thread pool. */
/* ====================================================== arguments */

static int argerr (lua_State *L, int arg, const char *fname, const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* The path at 'idx': a string with no NUL byte in it. */
static const char *check_path (lua_State *L, int idx, const char *fname,
                               const char *what, size_t *len) {
  const char *p;
  if (lua_type(L, idx) != LUA_TSTRING) {
    lua_pushfstring(L, "%s must be a string, got %s", what,
                    luaL_typename(L, idx));
    argerr(L, idx, fname, lua_tostring(L, -1));
  }
  p = lua_tolstring(L, idx, len);
  if (strlen(p) != *len) {
    lua_pushfstring(L, "%s contains a NUL byte", what);
    argerr(L, idx, fname, lua_tostring(L, -1));
  }
  return p;
}

/* A permission mode: an integer from 0 to 0xFFF (07777). */
static int check_mode (lua_State *L, int idx, int arg, const char *fname) {
  int isint = 0;
  lua_Integer m = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) m = lua_tointegerx(L, idx, &isint);
  if (!isint || m < 0 || m > 07777)
    argerr(L, arg, fname, "mode must be an integer from 0 to 0xFFF (octal 7777)");
  return (int)m;
}

/*
** Checks the arguments of the function 'op' (named 'fname'), starts its
** request and parks the running task until it ends.
*/
static int fsop_run (lua_State *L, int op, const char *fname) {
  neap_host *host = neap__host(L);
  const char *p1 = NULL, *p2 = NULL;
  size_t l1 = 0, l2 = 0;
  int mode = 0777, parents = 0, fd = -1, r;
  neap_task *t = NULL;
  fsop *o;
  uv_loop_t *loop = host->loop;
  switch (op) {
    case OP_FSTAT: {
      neap_stream *s = neap__stream_check(L, 1);
      uv_os_fd_t sfd = -1;
      if (s->kind == NEAP_S_FILE || s->kind == NEAP_S_POLL) sfd = s->fd;
      else if (s->kind == NEAP_S_NONE || uv_fileno(&neap__su(s)->handle, &sfd) != 0)
        sfd = -1;
      t = neap__sched_check(L, fname);
      if (sfd < 0) return neap__push_error(L, UV_EBADF);
      /* the stream may close while the pool thread runs: it gets a copy */
      fd = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) return neap__push_error(L, uv_translate_sys_error(errno));
      break;
    }
    case OP_RENAME: case OP_COPYFILE: case OP_SYMLINK:
      p1 = check_path(L, 1, fname, op == OP_SYMLINK ? "target" : "path", &l1);
      p2 = check_path(L, 2, fname, "path", &l2);
      break;
    case OP_MKDTEMP:
      p1 = check_path(L, 1, fname, "prefix", &l1);
      break;
    default:
      p1 = check_path(L, 1, fname, "path", &l1);
      break;
  }
  if (op == OP_CHMOD) mode = check_mode(L, 2, 2, fname);
  if (op == OP_MKDIR && !lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2)) {
      lua_pushfstring(L, "options table expected, got %s", luaL_typename(L, 2));
      argerr(L, 2, fname, lua_tostring(L, -1));
    }
    if (lua_getfield(L, 2, "mode") != LUA_TNIL) mode = check_mode(L, -1, 2, fname);
    lua_getfield(L, 2, "parents");
    parents = lua_toboolean(L, -1);
    lua_pop(L, 2);   /* pop mode, parents */
  }
  if (op != OP_FSTAT) t = neap__sched_check(L, fname);
  o = malloc(sizeof *o + l1 + 6 + l2 + 1 + (parents ? l1 + 1 : 0));
  if (o == NULL) {
    if (fd >= 0) close(fd);
    return luaL_error(L, "out of memory");
  }
  memset(o, 0, sizeof *o);
  o->t = t;
  o->host = host;
  o->op = op;
  o->fd = fd;
  o->mode = mode;
  o->parents = parents;
  if (p1) memcpy(o->path, p1, l1 + 1);
  if (op == OP_MKDTEMP) memcpy(o->path + l1, "XXXXXX", 7);   /* (mkdtemp's template) */
  if (p2) {
    o->path2 = o->path + l1 + 7;
    memcpy(o->path2, p2, l2 + 1);
  }
  if (parents) {
    o->cur = o->path + l1 + 7 + l2 + 1;
    o->len = l1;
    while (o->len > 1 && o->path[o->len - 1] == '/') o->len--;
    o->end = o->len;
    memcpy(o->cur, o->path, o->len);
    o->cur[o->len] = '\0';
  }
  switch (op) {
    case OP_STAT: r = uv_fs_stat(loop, &o->req, o->path, fsop_cb); break;
    case OP_LSTAT: r = uv_fs_lstat(loop, &o->req, o->path, fsop_cb); break;
    case OP_FSTAT: r = uv_fs_fstat(loop, &o->req, fd, fsop_cb); break;
    case OP_READDIR: r = uv_fs_scandir(loop, &o->req, o->path, 0, fsop_cb); break;
    case OP_MKDIR:
      r = uv_fs_mkdir(loop, &o->req, parents ? o->cur : o->path, mode, fsop_cb);
      break;
    case OP_RMDIR: r = uv_fs_rmdir(loop, &o->req, o->path, fsop_cb); break;
    case OP_UNLINK: r = uv_fs_unlink(loop, &o->req, o->path, fsop_cb); break;
    case OP_RENAME:
      r = uv_fs_rename(loop, &o->req, o->path, o->path2, fsop_cb);
      break;
    case OP_REALPATH: r = uv_fs_realpath(loop, &o->req, o->path, fsop_cb); break;
    case OP_CHMOD: r = uv_fs_chmod(loop, &o->req, o->path, mode, fsop_cb); break;
    case OP_SYMLINK:
      r = uv_fs_symlink(loop, &o->req, o->path, o->path2, 0, fsop_cb);
      break;
    case OP_READLINK: r = uv_fs_readlink(loop, &o->req, o->path, fsop_cb); break;
    case OP_MKDTEMP: r = uv_fs_mkdtemp(loop, &o->req, o->path, fsop_cb); break;
    default:
      r = uv_fs_copyfile(loop, &o->req, o->path, o->path2, 0, fsop_cb);
      break;
  }
  if (r < 0) {
    int n;
    lua_settop(L, 0);
    n = push_fserror(L, o, r);
    uv_fs_req_cleanup(&o->req);
    if (fd >= 0) close(fd);
    free(o);
    return n;
  }
  host->pool_reqs++;
  return neap__sched_park(L, t, -1, fsop_unpark, o);
}

static int fs_stat (lua_State *L) { return fsop_run(L, OP_STAT, "stat"); }
static int fs_lstat (lua_State *L) { return fsop_run(L, OP_LSTAT, "lstat"); }
static int fs_fstat (lua_State *L) { return fsop_run(L, OP_FSTAT, "stat"); }
static int fs_readdir (lua_State *L) { return fsop_run(L, OP_READDIR, "readdir"); }
static int fs_mkdir (lua_State *L) { return fsop_run(L, OP_MKDIR, "mkdir"); }
static int fs_rmdir (lua_State *L) { return fsop_run(L, OP_RMDIR, "rmdir"); }
static int fs_unlink (lua_State *L) { return fsop_run(L, OP_UNLINK, "unlink"); }
static int fs_rename (lua_State *L) { return fsop_run(L, OP_RENAME, "rename"); }
static int fs_realpath (lua_State *L) { return fsop_run(L, OP_REALPATH, "realpath"); }
static int fs_chmod (lua_State *L) { return fsop_run(L, OP_CHMOD, "chmod"); }
static int fs_symlink (lua_State *L) { return fsop_run(L, OP_SYMLINK, "symlink"); }
static int fs_readlink (lua_State *L) { return fsop_run(L, OP_READLINK, "readlink"); }
static int fs_mkdtemp (lua_State *L) { return fsop_run(L, OP_MKDTEMP, "mkdtemp"); }
static int fs_copyfile (lua_State *L) { return fsop_run(L, OP_COPYFILE, "copyfile"); }

/* The stream methods of this file, installed by stream.c. */
const luaL_Reg neap__fsops_stream_meth[] = {
  {"stat", fs_fstat},
  {NULL, NULL}
};

int neap__fsops_open (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"stat", fs_stat},
    {"lstat", fs_lstat},
    {"readdir", fs_readdir},
    {"mkdir", fs_mkdir},
    {"rmdir", fs_rmdir},
    {"unlink", fs_unlink},
    {"rename", fs_rename},
    {"realpath", fs_realpath},
    {"chmod", fs_chmod},
    {"symlink", fs_symlink},
    {"readlink", fs_readlink},
    {"mkdtemp", fs_mkdtemp},
    {"copyfile", fs_copyfile},
    {NULL, NULL}
  };
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
