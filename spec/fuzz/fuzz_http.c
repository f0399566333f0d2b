/* SPDX-License-Identifier: MIT */
/*
** libFuzzer target for neap.http's server-side parser path: src/http.c's
** head, body and finish over a buffer, driven as lua/neap/http.lua drives
** them (spec/fuzz/http_driver.lua). Any input, fed whole, a byte at a time,
** in pieces and cut in two at every byte boundary, must give the same
** requests and end the same way (garbage in an error: the server's 400 or
** 431), and never crash the engine.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "neap.h"

static lua_State *L;

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "neap.core", luaopen_neap_core, 0);
  lua_pop(L, 1);
  if (luaL_loadfile(L, "spec/fuzz/http_driver.lua") != LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_http: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_driver");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_http: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
