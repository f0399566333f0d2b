/* SPDX-License-Identifier: MIT */
/*
** neap --workers N (the binary only, with main.c): the supervisor's start
** and a worker's neap.worker. The supervisor itself is lua/neap/workers.lua.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <lauxlib.h>

#include "neap.h"
#include "workers.h"

/*
** --workers N: this process becomes the supervisor of N workers, each the
** neap binary run again with the same arguments (but --workers) and
** NEAP_WORKER=<id>/<count>/<supervisor pid> in its environment. The
** supervisor is lua/neap/workers.lua, given its arguments in the registry.
*/
static const char supervisor[] =
  "local r = debug.getregistry()\n"
  "local c = r['neap.workers']\n"
  "r['neap.workers'] = nil\n"
  "local status = require('neap.workers').supervise(c)\n"
  "if status ~= 0 then os.exit(status) end\n";

/* The number of --workers: 1 to 1024, or 'auto' (the CPUs this process
** may use); 0 when 'v' is neither. */
int workers_count (const char *v) {
  char *end;
  long n;
  if (v == NULL) return 0;
  if (strcmp(v, "auto") == 0) return (int)uv_available_parallelism();
  errno = 0;
  n = strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < 1 || n > 1024) return 0;
  return (int)n;
}

/* Hands the supervisor the program to run (this binary, as /proc/self/exe
** names it, else argv[0]), the count, and argv but the --workers option
** (at 'wi', 'wn' arguments long). */
static void set_workers (neap_host *h, int count, int argc, char **argv, int wi, int wn) {
  lua_State *L = neap_lua(h);
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  int i, n = 0;
  lua_createtable(L, 0, 3);
  if (len > 0) lua_pushlstring(L, exe, (size_t)len);
  else lua_pushstring(L, argv[0]);
  lua_setfield(L, -2, "exe");
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "count");
  lua_createtable(L, argc, 0);
  for (i = 1; i < argc; i++) {
    if (i >= wi && i < wi + wn) continue;
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, ++n);
  }
  lua_setfield(L, -2, "argv");
  lua_setfield(L, LUA_REGISTRYINDEX, "neap.workers");
}

/* The supervisor compiles (never runs) the -e chunks and the script first,
** so that a missing script or a syntax error is one message, not N workers
** failing in a loop. Returns 0, or 1 after the message. */
static int check_workers_code (neap_host *h, char **codes, int ncodes, int argc,
                               char **argv, int script) {
  lua_State *L = neap_lua(h);
  int i, r = LUA_OK, top = lua_gettop(L);
  for (i = 0; i < ncodes && r == LUA_OK; i++)
    r = luaL_loadbuffer(L, codes[i], strlen(codes[i]), "=(command line)");
  if (r == LUA_OK && script < argc) r = luaL_loadfile(L, argv[script]);
  if (r != LUA_OK) fprintf(stderr, "neap: %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
  return r != LUA_OK;
}

/*
** In a worker, NEAP_WORKER names its id and count and the supervisor. It
** is removed from the environment (the worker's own children are not
** workers), and the worker is sent TERM when the supervisor dies (Linux).
*/
static int worker_id, worker_count;

void worker_from_env (void) {
  const char *w = getenv("NEAP_WORKER");
  int id, n;
  long sup;
  if (w == NULL) return;
  if (sscanf(w, "%d/%d/%ld", &id, &n, &sup) == 3 && id >= 1 && id <= n) {
    worker_id = id;
    worker_count = n;
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if ((long)getppid() != sup) {   /* the supervisor died before the prctl */
      fprintf(stderr, "neap: worker %d: the supervisor is gone\n", id);
      exit(1);
    }
#endif
  }
  unsetenv("NEAP_WORKER");
}

/* neap.worker = { id =, count = } in a worker. */
void worker_set (neap_host *h) {
  lua_State *L;
  if (worker_id == 0) return;
  L = neap_lua(h);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "neap");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, worker_id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, worker_count);
    lua_setfield(L, -2, "count");
    lua_setfield(L, -2, "worker");
  }
  lua_pop(L, 1);
}

/* The supervisor's start: checks, then the main task of workers.lua. */
int workers_start (neap_host *h, int count, char **codes, int ncodes, int argc,
                   char **argv, int script, int wi, int wn) {
  if (ncodes == 0 && (script >= argc || strcmp(argv[script], "-") == 0)) {
    fprintf(stderr, "neap: '--workers' needs a script (or -e code)\n");
    return 1;
  }
  if (check_workers_code(h, codes, ncodes, argc, argv, script) != 0) return 1;
  set_workers(h, count, argc, argv, wi, wn);
  if (neap_dostring(h, supervisor, "=(neap --workers)") != 0) {
    fprintf(stderr, "neap: %s\n", neap_error(h));
    return 1;
  }
  return 0;
}
