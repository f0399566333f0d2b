/* SPDX-License-Identifier: MIT */
/*
** Issue 17, part 2: hosts freed while their neap.threads still run. Host A
** starts a thread that waits forever, one that never waits (a busy loop)
** and one that starts a thread of its own; neap_free(A) must cancel and
** join them all (no hang, no leak under valgrind). Then host B, on another
** OS thread of this program, starts threads and is freed while they run,
** while this thread posts to B with neap_post. Prints "ok" and exits 0, or
** says what failed and exits 1. An alarm ends a hang after 20 s.
*/
#include <stdio.h>
#include <unistd.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "neap.h"

static const char *dir;

static int fail (const char *what, neap_host *h) {
  printf("FAIL: %s%s%s\n", what, h && neap_error(h) ? ": " : "",
         h && neap_error(h) ? neap_error(h) : "");
  return 1;
}

static neap_host *hb;
static int b_status = -1;
static uv_sem_t posted;   /* neap_free only after the last neap_post returned */

static void host_b (void *arg) {
  (void)arg;
  b_status = neap_run(hb);
  uv_sem_wait(&posted);
  neap_free(hb);
}

int main (int argc, char **argv) {
  neap_host *a;
  uv_thread_t tb;
  int i;
  setvbuf(stdout, NULL, _IONBF, 0);
  alarm(20);
  dir = argc > 1 ? argv[1] : "spec/threads";
  a = neap_new(NULL);
  if (a == NULL) return fail("neap_new", NULL);
  lua_pushstring(neap_lua(a), dir);
  lua_setglobal(neap_lua(a), "DIR");
  if (neap_dostring(a, "local neap = require 'neap'\n"
                    "T = { neap.thread(DIR .. '/waits.lua'), neap.thread(DIR .. '/busy.lua'),\n"
                    "      neap.thread(DIR .. '/nested.lua', DIR) }\n"
                    "for i = 1, #T do assert(T[i]:receive { timeout = 10 } == 'started') end\n",
                    "=a") != 0)
    return fail("dostring a", a);
  if (neap_run(a) != 0) return fail("run a", a);
  neap_free(a);   /* the three threads are still running */
  printf("A freed\n");
  hb = neap_new(NULL);
  if (hb == NULL) return fail("neap_new b", NULL);
  lua_pushstring(neap_lua(hb), dir);
  lua_setglobal(neap_lua(hb), "DIR");
  if (neap_dostring(hb, "local neap = require 'neap'\n"
                    "local n = 0\n"
                    "neap.on_post('n', function() n = n + 1 if n == 100 then neap.on_post('n', nil) end end)\n"
                    "T = { neap.thread(DIR .. '/waits.lua'), neap.thread(DIR .. '/busy.lua') }\n"
                    "for i = 1, #T do assert(T[i]:receive { timeout = 10 } == 'started') end\n",
                    "=b") != 0)
    return fail("dostring b", hb);
  uv_sem_init(&posted, 0);
  if (uv_thread_create(&tb, host_b, NULL) != 0) return fail("thread b", NULL);
  for (i = 0; i < 100; i++) neap_post(hb, "n", "x", 1);
  uv_sem_post(&posted);
  uv_thread_join(&tb);
  uv_sem_destroy(&posted);
  if (b_status != 0) return fail("run b", NULL);
  printf("B freed\n");
  printf("ok\n");
  return 0;
}
