/* SPDX-License-Identifier: MIT */
/*
** libFuzzer target for the WebSocket frame reader (src/ws.c): any input,
** after its first byte (even: a server's side, masked frames; odd: a
** client's) read as the frames that side receives,
** fed in one piece and again in pieces whose sizes come from the input,
** must give the same messages and the same violation, and never crash.
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
  "local core = require 'neap.core'\n"
  "local function run(data, split, masked)\n"
  "  local r, b = core.ws_reader(masked, 1000), core.buffer()\n"
  "  local out = {}\n"
  "  local function drain()\n"
  "    while true do\n"
  "      local k, a, c = r:read(b)\n"
  "      if not k then\n"
  "        if a == 'more' then return true end\n"
  "        out[#out + 1] = 'violation ' .. a .. ' ' .. tostring(c)\n"
  "        return false\n"
  "      end\n"
  "      out[#out + 1] = k .. ' ' .. tostring(a) .. ' ' .. tostring(c)\n"
  "    end\n"
  "  end\n"
  "  if split then\n"
  "    local i = 1\n"
  "    while i <= #data do\n"
  "      local n = 1 + data:byte(i) % 13\n"
  "      b:feed(data:sub(i, i + n - 1))\n"
  "      i = i + n\n"
  "      if not drain() then break end\n"
  "    end\n"
  "  else\n"
  "    b:feed(data)\n"
  "    drain()\n"
  "  end\n"
  "  return table.concat(out, '\\n')\n"
  "end\n"
  "return function(data)\n"
  "  local masked = #data == 0 or data:byte(1) % 2 == 0\n"
  "  data = data:sub(2)\n"
  "  local one, pieces = run(data, false, masked), run(data, true, masked)\n"
  "  if one ~= pieces then\n"
  "    error(('split changed the result:\\n%s\\n--\\n%s'):format(one, pieces))\n"
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
    fprintf(stderr, "fuzz_ws: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_ws: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
