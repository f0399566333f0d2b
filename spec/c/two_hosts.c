/* SPDX-License-Identifier: MIT */
/*
** Issue 12, part 2: two hosts on one thread. Host B spawns `true` and waits
** for it (its SIGCHLD watcher is on); host A spawns a child that sleeps 3 s
** and is never run; B then sleeps 10 ms: neap_run(B) must return at once
** (the children list and its reference count were process-wide, so A's
** child kept B's watcher referenced and B never returned). Then A is freed
** and B still spawns and serves TCP. Prints "ok" and exits 0, or says what
** failed and exits 1. An alarm ends a hang after 10 s.
*/
#include <stdio.h>
#include <unistd.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "neap.h"

static int fail (const char *what, neap_host *h) {
  printf("FAIL: %s%s%s\n", what, h && neap_error(h) ? ": " : "",
         h && neap_error(h) ? neap_error(h) : "");
  return 1;
}

int main (void) {
  neap_host *a, *b;
  uint64_t t0, ms;
  alarm(10);
  a = neap_new(NULL);
  b = neap_new(NULL);
  if (a == NULL || b == NULL) return fail("neap_new", NULL);
  /* A: a child that sleeps 3 s; A's loop is not run */
  if (luaL_dostring(neap_lua(a), "local neap = require 'neap'\n"
                    "SLEEPER = assert(neap.spawn { 'sleep', '3' })") != LUA_OK)
    return fail(lua_tostring(neap_lua(a), -1), NULL);
  if (neap_dostring(b, "local neap = require 'neap'\n"
                    "local p = assert(neap.spawn { 'true' })\n"
                    "assert(p:wait { timeout = 5 } == 0)\n"
                    "neap.sleep(0.01)", "=b1") != 0)
    return fail("dostring b1", b);
  t0 = uv_hrtime();
  if (neap_run(b) != 0) return fail("run b1", b);
  ms = (uv_hrtime() - t0) / 1000000;
  printf("B returned after %llu ms\n", (unsigned long long)ms);
  if (ms > 1500) return fail("B waited for A's child", NULL);
  neap_free(a);
  if (neap_dostring(b, "local neap = require 'neap'\n"
                    "local p = assert(neap.spawn { 'sh', '-c', 'echo spawned' })\n"
                    "assert(p.stdout:read_line { timeout = 5 } == 'spawned')\n"
                    "assert(p:wait { timeout = 5 } == 0)\n"
                    "local srv = assert(neap.listen('tcp', '127.0.0.1', 0))\n"
                    "local _, port = srv:address()\n"
                    "srv:serve(function(c) for l in c:lines() do c:write(l, '\\n') end end)\n"
                    "local c = assert(neap.connect('tcp', '127.0.0.1', port, { timeout = 5 }))\n"
                    "c:write('echo\\n')\n"
                    "assert(c:read_line { timeout = 5 } == 'echo')\n"
                    "c:close() srv:close()", "=b2") != 0)
    return fail("dostring b2", b);
  if (neap_run(b) != 0) return fail("run b2", b);
  neap_free(b);
  printf("ok\n");
  return 0;
}
