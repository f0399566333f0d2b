/* SPDX-License-Identifier: MIT */
/*
** libFuzzer target for neap.proto with the HTTP/1.1 parser of
** examples/proto_http.lua: any input, fed in one piece and again in
** pieces whose sizes come from the input, must give the same output and
** never crash the engine.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "neap.h"

static lua_State *L;

static const char *driver =
  "package.path = './lua/?.lua;./lua/?/init.lua;./examples/?.lua;' .. package.path\n"
  "local http = require 'proto_http'\n"
  "local function run(data, split)\n"
  "  local c = http.server()\n"
  "  local ok, err = true, nil\n"
  "  if split then\n"
  "    local i = 1\n"
  "    while i <= #data and ok do\n"
  "      local n = 1 + data:byte(i) % 13\n"
  "      ok, err = pcall(c.send, c, data:sub(i, i + n - 1))\n"
  "      i = i + n\n"
  "    end\n"
  "  else ok, err = pcall(c.send, c, data) end\n"
  "  if ok then ok, err = pcall(c.send_eof, c) end\n"
  "  return ok, c:read(), c:closed(), err\n"
  "end\n"
  "return function(data)\n"
  "  local ok1, out1, closed1, e1 = run(data, false)\n"
  "  local ok2, out2, closed2, e2 = run(data, true)\n"
  "  if ok1 ~= ok2 or out1 ~= out2 or closed1 ~= closed2 then\n"
  "    error(('split changed the result: %s %s %q %q %s %s'):format(ok1, ok2, out1, out2, e1, e2))\n"
  "  end\n"
  "end\n";

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "neap.core", luaopen_neap_core, 0);
  lua_pop(L, 1);
  if (luaL_loadstring(L, driver) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_proto: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_proto: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
