/* SPDX-License-Identifier: MIT */
/*
** I/O outcomes as Lua values: nil, message, code. The only place where a
** libuv error code becomes Lua values; neap's own outcomes ("timeout",
** "eof", "cancelled") use the same word as message and code, but for a
** handle closed under its user: "closed", "ECLOSED".
*/
#include "neapi.h"

/* Pushes nil, "connection refused", "ECONNREFUSED"; returns 3. */
int neap__push_error (lua_State *L, int uverr) {
  luaL_checkstack(L, 3, NULL);
  if (uverr == UV_EOF) return neap__push_fail(L, "eof");
  if (uverr == UV_ETIMEDOUT) {
    lua_pushnil(L);
    lua_pushstring(L, "timed out");
    lua_pushstring(L, "ETIMEDOUT");
    return 3;
  }
  lua_pushnil(L);
  lua_pushstring(L, uv_strerror(uverr));
  lua_pushstring(L, uv_err_name(uverr));
  return 3;
}

/*
** Calls f(ud) protected on 'L' and drops whatever it raised: for a loop
** callback that keeps Lua values (an allocation there must not abort the
** process). Returns the status.
*/
int neap__pcall (lua_State *L, lua_CFunction f, void *ud) {
  int st;
  if (!lua_checkstack(L, 2)) return LUA_ERRMEM;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, ud);
  st = lua_pcall(L, 1, 0, 0);
  if (st != LUA_OK) lua_pop(L, 1);   /* pop the error */
  return st;
}

/* Pushes nil, word, word; returns 3. */
int neap__push_fail (lua_State *L, const char *word) {
  luaL_checkstack(L, 3, NULL);
  lua_pushnil(L);
  lua_pushstring(L, word);
  lua_pushstring(L, word);
  return 3;
}

/*
** Pushes nil, "closed", "ECLOSED"; returns 3: the I/O on a stream (or a
** wait on a server or socket) that was closed, by another task or before.
*/
int neap__push_closed (lua_State *L) {
  luaL_checkstack(L, 3, NULL);
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  lua_pushliteral(L, "ECLOSED");
  return 3;
}

static int err_strerror (lua_State *L) {
  int code = (int)luaL_checkinteger(L, 1);
  lua_pushstring(L, uv_strerror(code));
  lua_pushstring(L, uv_err_name(code));
  return 2;
}

int neap__err_open (lua_State *L) {
  lua_pushcfunction(L, err_strerror);
  lua_setfield(L, -2, "strerror");
  return 0;
}
