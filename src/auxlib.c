/* SPDX-License-Identifier: MIT */
/*
** neap's auxiliary library, as lauxlib is Lua's: the helpers every family
** uses. I/O outcomes as Lua values (nil, message, code: the only place
** where a libuv error code becomes Lua values; neap's own outcomes use the
** same word as message and code, but for a handle closed under its user:
** "closed", "ECLOSED"), metatables, timeout options, addresses and
** delimiter lists.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

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

int neap__auxlib_open (lua_State *L) {
  lua_pushcfunction(L, err_strerror);
  lua_setfield(L, -2, "strerror");
  return 0;
}

/* ====================================================== metatables */

void neap__newmeta (lua_State *L, const char *name, const luaL_Reg *meth,
                    const luaL_Reg *metameth) {
  luaL_newmetatable(L, name);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, name);   /* for neap__handle_check */
  luaL_setfuncs(L, metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);  /* pop metatable */
}

/*
** The metatable of a handle type: 'meth' as methods, __gc and __close
** closing the handle, and __tostring when 'tostring' is given.
*/
void neap__newhandlemeta (lua_State *L, const char *name, const luaL_Reg *meth,
                          lua_CFunction tostring) {
  const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__gc", neap__handle_gc},
    {"__close", neap__handle_gc},
    {tostring ? "__tostring" : NULL, tostring},
    {NULL, NULL}
  };
  neap__newmeta(L, name, meth, metameth);
}

/* ====================================================== addresses */

/* Parses a numeric IPv4 or IPv6 address; 0 or a UV error. */
int neap__parse_addr (const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':'))
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
  return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

/*
** Sets SO_REUSEPORT on the socket of a TCP or UDP handle made by
** uv_*_init_ex with a family (so it has its descriptor) and not yet bound:
** the kernel then lets several sockets bind one address and port, and
** spreads the connections (TCP) or datagrams (UDP) over them. By hand:
** UV_TCP_REUSEPORT is libuv 1.49's, and UV_UDP_REUSEADDR sets only
** SO_REUSEADDR on Linux (the last socket bound gets every datagram).
*/
int neap__reuseport (uv_handle_t *h) {
  uv_os_fd_t fd;
  int on = 1, r = uv_fileno(h, &fd);
  if (r < 0) return r;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    return uv_translate_sys_error(errno);
  return 0;
}

/*
** Pushes the host and port of 'sa' (and "inet" or "inet6" with 'family');
** returns how many values, 0 for an address of another family.
*/
int neap__push_addr (lua_State *L, const struct sockaddr *sa, int family) {
  char ip[INET6_ADDRSTRLEN];
  int port;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  }
  else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  else return 0;
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  if (!family) return 2;
  lua_pushstring(L, sa->sa_family == AF_INET ? "inet" : "inet6");
  return 3;
}

/* ====================================================== delimiters */

/*
** The delimiters at 'idx' for 'fname': a string or a list of 1 to 16
** non-empty strings. Fills 'd' (room for 'room'; a longer list goes in a
** userdata left on the stack, *out says where) and returns the count. The
** strings of a list stay on the stack above it, so a caller that waits
** keeps them alive whatever the list's owner does to it meanwhile.
*/
int neap__check_delims (lua_State *L, int idx, const char *fname,
                        neap_delim *d, int room, neap_delim **out) {
  int i, n;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    d[0].p = lua_tolstring(L, idx, &d[0].len);
    n = 1;
  }
  else if (lua_istable(L, idx)) {
    n = (int)lua_rawlen(L, idx);
    if (n < 1 || n > NEAP_MAX_DELIMS)
      luaL_error(L, "bad argument #%d to '%s' (1 to %d delimiters expected)",
                 idx, fname, NEAP_MAX_DELIMS);
    if (n > room) d = lua_newuserdatauv(L, n * sizeof *d, 0);
    luaL_checkstack(L, n, "too many delimiters");
    for (i = 0; i < n; i++) {
      if (lua_rawgeti(L, idx, i + 1) != LUA_TSTRING)
        luaL_error(L, "bad argument #%d to '%s' (delimiter %d is not a "
                   "string)", idx, fname, i + 1);
      d[i].p = lua_tolstring(L, -1, &d[i].len);   /* (stays on the stack) */
    }
  }
  else {
    luaL_error(L, "bad argument #%d to '%s' (string or list of strings "
               "expected, got %s)", idx, fname, luaL_typename(L, idx));
    return 0;
  }
  for (i = 0; i < n; i++)
    if (d[i].len == 0)
      luaL_error(L, "bad argument #%d to '%s' (empty delimiter)", idx, fname);
  *out = d;
  return n;
}

/* ====================================================== timeouts */

/* The 'timeout' field of an options table at 'idx': seconds, or -1. */
double neap__opt_timeout (lua_State *L, int idx, const char *fname) {
  double t;
  if (lua_isnoneornil(L, idx)) return -1;
  if (lua_type(L, idx) == LUA_TNUMBER)   /* one rule: a bare number is never a timeout */
    luaL_error(L, "bad argument #%d to '%s' (options table expected, got "
               "number; use { timeout = %s })", idx, fname,
               lua_tostring(L, idx));
  if (!lua_istable(L, idx))
    luaL_error(L, "bad argument #%d to '%s' (options table expected, got %s)",
               idx, fname, luaL_typename(L, idx));
  if (lua_getfield(L, idx, "timeout") == LUA_TNIL) {
    lua_pop(L, 1);  /* pop nil */
    return -1;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "bad argument #%d to '%s' (timeout must be a number)",
               idx, fname);
  t = lua_tonumber(L, -1);
  lua_pop(L, 1);  /* pop timeout */
  return neap__check_seconds(L, t, idx, fname);
}

/*
** A timeout given in seconds (nil: none) to the core's own functions,
** which the Lua layer calls with the 'timeout' of its options table.
*/
double neap__opt_seconds (lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return -1;
  return neap__check_seconds(L, luaL_checknumber(L, idx), idx, fname);
}

/* 't' seconds as a timeout: raises below 0; math.huge: none (-1). */
double neap__check_seconds (lua_State *L, double t, int idx,
                            const char *fname) {
  if (!(t >= 0))
    luaL_error(L, "bad argument #%d to '%s' (timeout must be >= 0)", idx,
               fname);
  if (t >= NEAP_FOREVER) return -1;   /* math.huge: no timeout */
  return t;
}

/* Seconds to libuv's milliseconds, rounded; math.huge and beyond: the most. */
uint64_t neap__ms (double seconds) {
  double ms = seconds * 1000 + 0.5;
  if (!(ms < 1.8e19)) return UINT64_MAX;   /* libuv clamps its deadline */
  return ms > 0 ? (uint64_t)ms : 0;
}

