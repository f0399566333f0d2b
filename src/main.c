/* SPDX-License-Identifier: MIT */
/*
** The neap binary: argument handling only. Everything else is the host
** (host.c), shared with the Lua module and the C library.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <lauxlib.h>

#include "neap.h"

/*
** With -e, the chunks and the script run one after the other in one main
** task, as lua5.4 runs them: each -e chunk in order, then the script with
** its arguments. They are compiled first (a syntax error is a one-line
** message and nothing runs) and handed to this driver in the registry.
*/
static const char driver[] =
  "local r, unpack = debug.getregistry(), table.unpack\n"
  "local c = r['neap.cmdline']\n"
  "r['neap.cmdline'] = nil\n"
  "for i = 1, c.n do c[i]() end\n"
  "if c.script then return c.script(unpack(c.args, 1, c.args.n)) end\n";

/* The global 'arg' as lua5.4 makes it: the script at 0, its arguments at
** 1..n, the interpreter and options at negative indices (with no script,
** argv[0] is at 0 and the options after it). */
static void set_arg (lua_State *L, int argc, char **argv, int script) {
  int i;
  if (script >= argc) script = 0;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_cmdline (neap_host *h, char **codes, int ncodes, int argc,
                        char **argv, int script) {
  lua_State *L = neap_lua(h);
  int i, top = lua_gettop(L);
  lua_createtable(L, ncodes, 3);
  for (i = 0; i < ncodes; i++) {
    if (luaL_loadbuffer(L, codes[i], strlen(codes[i]), "=(command line)") != LUA_OK) {
      fprintf(stderr, "neap: %s\n", lua_tostring(L, -1));
      lua_settop(L, top);
      return 1;
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, ncodes);
  lua_setfield(L, -2, "n");
  if (script < argc) {
    const char *path = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
    if (luaL_loadfile(L, path) != LUA_OK) {
      fprintf(stderr, "neap: %s\n", lua_tostring(L, -1));
      lua_settop(L, top);
      return 1;
    }
    lua_setfield(L, -2, "script");
    lua_createtable(L, argc - script - 1, 1);
    for (i = script + 1; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - script);
    }
    lua_pushinteger(L, argc - script - 1);
    lua_setfield(L, -2, "n");
    lua_setfield(L, -2, "args");
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "neap.cmdline");
  set_arg(L, argc, argv, script);
  if (neap_dostring(h, driver, "=(neap)") != 0) {
    fprintf(stderr, "neap: %s\n", neap_error(h));
    return 1;
  }
  return 0;
}

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
static int workers_count (const char *v) {
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

/*
** In a worker, NEAP_WORKER names its id and count and the supervisor. It
** is removed from the environment (the worker's own children are not
** workers), and the worker is sent TERM when the supervisor dies (Linux).
*/
static int worker_id, worker_count;

static void worker_from_env (void) {
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
static void set_worker (neap_host *h) {
  lua_State *L = neap_lua(h);
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

static void usage (FILE *f, const char *prog) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Runs a Lua 5.4 script on the neap event engine.\n"
    "  -e code   run 'code' as the main task\n"
    "  -i        interactive prompt (the default on a terminal)\n"
    "  --workers N  run the script in N worker processes (N or 'auto')\n"
    "  -v        print the version\n"
    "  -h        print this help\n"
    "  -         run the script read from standard input\n"
    "  --        stop handling options\n", prog);
}

/* Descriptors 0-2 are opened on /dev/null when closed, so that no socket
** or loop descriptor lands on them and neap.stdin reads EOF (as Node does). */
static void fix_stdio (void) {
  int fd;
  for (fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

int main (int argc, char **argv) {
  static char **codes;   /* the -e chunks (static: reachable on early exits) */
  int ncodes = 0;
  int i, status, interactive = 0;
  int workers = 0, wi = 0, wn = 0;
  neap_host *h;
  fix_stdio();
  worker_from_env();
  codes = calloc((size_t)argc, sizeof *codes);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout, argv[0]);
      return 0;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("neap %s (%s, libuv %s)\n", NEAP_VERSION, LUA_RELEASE,
             uv_version_string());
      return 0;
    }
    if (strcmp(a, "-i") == 0) { interactive = 1; continue; }
    if (strcmp(a, "--workers") == 0 || strncmp(a, "--workers=", 10) == 0) {
      wi = i;
      wn = a[9] == '=' ? 1 : 2;
      workers = workers_count(a[9] == '=' ? a + 10 : (++i < argc ? argv[i] : NULL));
      if (workers == 0) {
        fprintf(stderr, "neap: '--workers' needs a number from 1 to 1024 or 'auto'\n");
        usage(stderr, argv[0]);
        return 1;
      }
      continue;
    }
    if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "neap: '-e' needs an argument\n");
        usage(stderr, argv[0]);
        return 1;
      }
      if (codes) codes[ncodes++] = argv[i];
      continue;
    }
    fprintf(stderr, "neap: unknown option '%s'\n", a);
    usage(stderr, argv[0]);
    return 1;
  }
  h = neap_new(NULL);
  if (h == NULL) {
    fprintf(stderr, "neap: cannot start (out of memory?)\n");
    return 1;
  }
  neap_exit_on_signals(h);
  if (worker_id > 0) set_worker(h);
  if (workers > 0) {   /* the supervisor: no script runs here */
    free(codes);
    if (ncodes == 0 && (i >= argc || strcmp(argv[i], "-") == 0)) {
      fprintf(stderr, "neap: '--workers' needs a script (or -e code)\n");
      neap_free(h);
      return 1;
    }
    set_workers(h, workers, argc, argv, wi, wn);
    status = neap_dostring(h, supervisor, "=(neap --workers)");
  }
  else if (ncodes > 0) {   /* -e chunks, then the script if one is named */
    status = run_cmdline(h, codes, ncodes, argc, argv, i);
    free(codes);
    if (status != 0) {
      neap_free(h);
      return 1;
    }
  }
  else {
    free(codes);
    if (i < argc) {
      status = neap_dofile(h, argv[i], argc - i, argv + i);
      if (status == 0) set_arg(neap_lua(h), argc, argv, i);
    }
    else if (interactive || isatty(0))
      status = neap_dostring(h, "require('neap.repl').run()", "=(repl)");
    else
      status = neap_dofile(h, "-", 1, (char *[]){"-", NULL});
  }
  if (status != 0) {
    fprintf(stderr, "neap: %s\n", neap_error(h));
    neap_free(h);
    return 1;
  }
  status = neap_run(h);
  neap_free(h);
  return status;
}
