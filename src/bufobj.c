/* SPDX-License-Identifier: MIT */
/*
** neap.buffer: the engine's byte buffer and framing as a Lua object with
** no I/O, for sans-IO protocol parsers (neap.proto): bytes are fed in by
** hand and frames taken out. A request that cannot be met yet returns
** nil, "more" and consumes nothing; scanning resumes where it stopped.
*/
#include <stdlib.h>
#include <string.h>

#include "neapi.h"

#define BUFOBJ_MT "neap.buffer"

typedef struct bufobj {
  const char *tag;         /* BUFOBJ_MT's address (neap__udata_test) */
  neap_buf b;
  int eof;
  size_t max_frame;
  /* the request being scanned, to resume its scan */
  int kind;
  size_t scan;
  /* read_until's delimiters: their strings are anchored in the user value
  ** (a table), so a scan resumes only for the same contents */
  int nd;
  neap_delim d[NEAP_MAX_DELIMS];
} bufobj;

static bufobj *check (lua_State *L) {
  return neap__udata_check(L, 1, bufobj, BUFOBJ_MT);
}

/* neap.core.buffer([max_frame]) -> buffer */
static int bufobj_new (lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, NEAP_DEFAULT_MAX_FRAME);
  bufobj *o = lua_newuserdatauv(L, sizeof *o, 1);
  memset(o, 0, sizeof *o);
  o->tag = BUFOBJ_MT;
  neap__buf_init(&o->b);
  o->max_frame = max > 0 ? (size_t)max : 0;
  luaL_setmetatable(L, BUFOBJ_MT);
  return 1;
}

static int bufobj_gc (lua_State *L) {
  bufobj *o = neap__udata_test(L, 1, bufobj, BUFOBJ_MT);
  if (o == NULL) return 0;   /* (not ours: given our metatable) */
  neap__buf_free(&o->b);
  return 0;
}

/* buf:feed(data) -> buf */
static int bufobj_feed (lua_State *L) {
  bufobj *o = check(L);
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  if (o->eof) return luaL_error(L, "feed: the buffer was told its input ended");
  if (neap__buf_append(&o->b, p, len) < 0) return luaL_error(L, "out of memory");
  lua_settop(L, 1);
  return 1;
}

/* buf:set_eof() -> buf: no more input will come */
static int bufobj_set_eof (lua_State *L) {
  bufobj *o = check(L);
  o->eof = 1;
  lua_settop(L, 1);
  return 1;
}

static int bufobj_is_eof (lua_State *L) {
  lua_pushboolean(L, check(L)->eof);
  return 1;
}

static int bufobj_len (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)neap__buf_len(&check(L)->b));
  return 1;
}

/* Runs request 'f' (the scan resumes for the same kind of request). */
static int run (lua_State *L, bufobj *o, neap_frame *f) {
  int r;
  if (o->kind != f->kind) {
    o->kind = f->kind;
    o->scan = 0;
  }
  f->scan = o->scan;
  r = neap__buf_frame(&o->b, f, o->eof);
  o->scan = f->scan;
  switch (r) {
    case NEAP_FRAME_OK: {
      /* The push of the frame runs the collector, whose finalizers may read
      ** from 'o', feed it or free it: the delimiter is pushed first (the
      ** caller's own string, argument 2: no allocation), and what the
      ** buffer consumed meanwhile is checked after. */
      uint64_t c0 = o->b.consumed;
      int nres = 1;
      if (f->kind == NEAP_FRAME_UNTIL) {
        if (f->which < 0) lua_pushnil(L);
        else if (lua_type(L, 2) == LUA_TSTRING) lua_pushvalue(L, 2);
        else lua_rawgeti(L, 2, f->which + 1);
        nres = 2;
      }
      lua_pushlstring(L, neap__buf_data(&o->b), f->len);
      if (nres == 2) lua_insert(L, -2);   /* frame, delimiter */
      o->kind = -1;
      if (o->b.base == NULL && f->len > 0)   /* freed meanwhile: what had come is given */
        return nres;
      if (o->b.consumed != c0)
        return luaL_error(L, "read: the buffer was read meanwhile (by a finalizer?); "
                          "its bytes went to that read");
      neap__buf_consume(&o->b, f->consume);
      return nres;
    }
    case NEAP_FRAME_MORE:
      lua_pushnil(L);
      lua_pushliteral(L, "more");
      lua_pushliteral(L, "more");
      return 3;
    case NEAP_FRAME_TOOLARGE:
      return neap__push_fail(L, "frame too large");
    default:
      return neap__push_fail(L, "eof");
  }
}

static int bufobj_read (lua_State *L) {
  bufobj *o = check(L);
  neap_frame f;
  lua_Integer n = luaL_optinteger(L, 2, 65536);
  luaL_argcheck(L, n > 0, 2, "size must be positive");
  memset(&f, 0, sizeof f);
  f.kind = NEAP_FRAME_READ;
  f.n = (size_t)n;
  return run(L, o, &f);
}

static int bufobj_read_exactly (lua_State *L) {
  bufobj *o = check(L);
  neap_frame f;
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "size must be >= 0");
  memset(&f, 0, sizeof f);
  f.kind = NEAP_FRAME_EXACTLY;
  f.n = (size_t)n;
  return run(L, o, &f);
}

static int bufobj_read_line (lua_State *L) {
  bufobj *o = check(L);
  neap_frame f;
  memset(&f, 0, sizeof f);
  f.kind = NEAP_FRAME_LINE;
  f.max = o->max_frame;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "keep");
    f.keep = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return run(L, o, &f);
}

/*
** Whether the delimiters kept in o->d still point into the strings of the
** user value's table (debug.setuservalue, or debug.getuservalue and a
** store, can take them away, and the collector free them).
*/
static int kept_delims_live (lua_State *L, const bufobj *o) {
  int i, ok = 1;
  if (o->nd == 0) return 1;
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  for (i = 0; i < o->nd && ok; i++) {
    ok = lua_rawgeti(L, -1, i + 1) == LUA_TSTRING &&
         lua_tostring(L, -1) == o->d[i].p && lua_rawlen(L, -1) == o->d[i].len;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

/* Whether 'd' (n delimiters) has the same contents as the ones kept. */
static int same_delims (const bufobj *o, const neap_delim *d, int n) {
  int i;
  if (n != o->nd) return 0;
  for (i = 0; i < n; i++) {
    if (d[i].len != o->d[i].len) return 0;
    if (d[i].p != o->d[i].p && memcmp(d[i].p, o->d[i].p, d[i].len) != 0)
      return 0;
  }
  return 1;
}

/*
** Keeps the delimiters at argument 2 ('d', n of them) for the scans to
** come: their strings go into the user value's table, so the pointers in
** o->d stay valid whatever the caller does with its own table.
*/
static void keep_delims (lua_State *L, bufobj *o, const neap_delim *d, int n) {
  int i;
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, NEAP_MAX_DELIMS, 0);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  for (i = 0; i < NEAP_MAX_DELIMS; i++) {
    if (i >= n) lua_pushnil(L);
    else if (lua_type(L, 2) == LUA_TSTRING) lua_pushvalue(L, 2);
    else lua_rawgeti(L, 2, i + 1);
    lua_rawseti(L, -2, i + 1);  /* pops the string (or nil) */
    if (i < n) o->d[i] = d[i];
  }
  lua_pop(L, 1);  /* pop the table */
  o->nd = n;
}

static int bufobj_read_until (lua_State *L) {
  bufobj *o = check(L);
  neap_frame f;
  neap_delim d[NEAP_MAX_DELIMS], *dp;
  int n;
  memset(&f, 0, sizeof f);
  f.kind = NEAP_FRAME_UNTIL;
  f.max = o->max_frame;
  lua_settop(L, 3);   /* the delimiters' strings go above the options */
  n = neap__check_delims(L, 2, "read_until", d, NEAP_MAX_DELIMS, &dp);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "keep");
    f.keep = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (!kept_delims_live(L, o)) {   /* taken away: none kept */
    o->nd = 0;
    if (o->kind == NEAP_FRAME_UNTIL) o->kind = -1;
  }
  if (!same_delims(o, dp, n)) {   /* other delimiters: scan from the start */
    keep_delims(L, o, dp, n);
    if (o->kind == NEAP_FRAME_UNTIL) o->kind = -1;
  }
  f.delims = o->d;
  f.ndelims = n;
  return run(L, o, &f);
}

static int bufobj_read_all (lua_State *L) {
  bufobj *o = check(L);
  neap_frame f;
  memset(&f, 0, sizeof f);
  f.kind = NEAP_FRAME_ALL;
  return run(L, o, &f);
}

/*
** The byte buffer of the neap.buffer at 'idx', or NULL when that is not
** one (neap.http's parser reads it in place). Its caller may consume: a
** framed read resumed later scans again from the start.
*/
neap_buf *neap__bufobj_test (lua_State *L, int idx) {
  bufobj *o = neap__udata_test(L, idx, bufobj, BUFOBJ_MT);
  if (o == NULL) return NULL;
  o->kind = -1;
  return &o->b;
}

int neap__bufobj_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"feed", bufobj_feed},
    {"set_eof", bufobj_set_eof},
    {"is_eof", bufobj_is_eof},
    {"len", bufobj_len},
    {"read", bufobj_read},
    {"read_exactly", bufobj_read_exactly},
    {"read_line", bufobj_read_line},
    {"read_until", bufobj_read_until},
    {"read_all", bufobj_read_all},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__gc", bufobj_gc},
    {"__close", bufobj_gc},
    {"__len", bufobj_len},
    {NULL, NULL}
  };
  neap__newmeta(L, BUFOBJ_MT, meth, metameth);
  lua_pushcfunction(L, bufobj_new);
  lua_setfield(L, -2, "buffer");
  return 0;
}
