/* SPDX-License-Identifier: MIT */
/*
** Child processes: uv_spawn with argv lists (never a shell string), stdio
** as pipes (neap streams), inherited descriptors or /dev/null, waits that
** park until exit, kill by name or number. Every child is reaped: the
** process handle stays alive and anchored until its exit callback, and the
** host kills its live children when it is stopped by INT or TERM.
*/
#include <ctype.h>
#include <signal.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "neapi.h"

#define PROCESS_MT "neap.process"

typedef struct neap_process {
  neap_handle h;
  uv_process_t proc;
  int pid;
  int exited;
  int64_t code;
  int signal;
  int detached;
  neap_task *waiters;      /* tasks parked in wait(), linked by t->link */
  struct neap_process *next_live, *prev_live;
} neap_process;

static neap_process *live;   /* children not yet exited (for INT/TERM) */

static const struct { const char *name; int num; } signames[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL},
  {"TRAP", SIGTRAP}, {"ABRT", SIGABRT}, {"BUS", SIGBUS}, {"FPE", SIGFPE},
  {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
  {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
  {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
  {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
  {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
  {"IO", SIGIO}, {"SYS", SIGSYS}, {NULL, 0}
};

/* The name of signal 'sig' without "SIG" ("TERM"), or NULL. */
const char *neap__signal_name (int sig) {
  int i;
  for (i = 0; signames[i].name; i++)
    if (signames[i].num == sig) return signames[i].name;
  return NULL;
}

/* A signal from a name ("TERM", "SIGTERM", "term") or a number at 'idx'. */
int neap__check_signal (lua_State *L, int idx, const char *fname) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, idx);
    if (n < 0 || n > 64)
      luaL_error(L, "bad argument #%d to '%s' (no signal %d)", idx, fname,
                 (int)n);
    return (int)n;
  }
  else {
    const char *s = luaL_checkstring(L, idx);
    char up[16];
    int i;
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (i = 0; s[i] && i < 15; i++) up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = '\0';
    for (i = 0; signames[i].name; i++)
      if (strcmp(signames[i].name, up) == 0) return signames[i].num;
    luaL_error(L, "bad argument #%d to '%s' (unknown signal '%s')", idx,
               fname, luaL_checkstring(L, idx));
    return 0;
  }
}

static void live_remove (neap_process *p) {
  if (p->prev_live) p->prev_live->next_live = p->next_live;
  else if (live == p) live = p->next_live;
  if (p->next_live) p->next_live->prev_live = p->prev_live;
  p->next_live = p->prev_live = NULL;
}

/* Sends 'sig' to every live child that is not detached (INT/TERM exit). */
void neap__process_kill_all (int sig) {
  neap_process *p;
  for (p = live; p; p = p->next_live)
    if (!p->detached && !p->exited) kill(p->pid, sig);
}


static void process_uvclose (neap_process *p) {
  if (!(p->h.flags & NEAP_H_UVCLOSE)) live_remove(p);
  neap__handle_uvclose(&p->h, (uv_handle_t *)&p->proc);
}

/* (libuv reaps only children whose handle is open: it stays until exit) */
static void process_vt_close (neap_handle *h) {
  neap_process *p = (neap_process *)h;
  if (p->exited || h->host->dying) process_uvclose(p);
}

static void process_vt_force (neap_handle *h) {
  process_uvclose((neap_process *)h);
}

static const neap_handle_vt process_vt = {
  PROCESS_MT, "process", process_vt_close, process_vt_force
};

static int push_status (lua_State *L, neap_process *p) {
  if (p->signal) {
    const char *n = neap__signal_name(p->signal);
    lua_pushnil(L);
    if (n) lua_pushstring(L, n);
    else lua_pushinteger(L, p->signal);
  }
  else {
    lua_pushinteger(L, p->code);
    lua_pushnil(L);
  }
  return 2;
}

static void process_exit_cb (uv_process_t *proc, int64_t code, int sig) {
  neap_process *p = proc->data;
  neap_task *t;
  p->exited = 1;
  p->code = code;
  p->signal = sig;
  live_remove(p);
  if (p->h.host->dying) return;
  t = p->waiters;
  p->waiters = NULL;
  while (t) {
    neap_task *next = t->link;
    t->link = NULL;
    neap__sched_wake(t, push_status(t->co, p));
    t = next;
  }
  /* reaped: keep the status in the box, and close the handle now */
  if (p->h.anchor != LUA_NOREF) {
    lua_State *L = p->h.host->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->h.anchor);   /* the box */
    lua_createtable(L, 0, 3);
    push_status(L, p);
    lua_setfield(L, -3, "signal");
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, p->pid);
    lua_setfield(L, -2, "pid");
    lua_setiuservalue(L, -2, 1);
    lua_pop(L, 1);   /* pop box */
  }
  if (p->h.flags & NEAP_H_CLOSING) process_uvclose(p);   /* closed while running */
  else neap__handle_close(&p->h);
}

static void process_unpark (neap_task *t) {
  neap_process *p = t->parked_on;
  neap_task **pp;
  for (pp = &p->waiters; *pp; pp = &(*pp)->link)
    if (*pp == t) { *pp = t->link; break; }
  t->link = NULL;
}

/* p:wait{timeout=} -> code, signal (signal as a name: "TERM") | nil, "timeout", "timeout" */
static int process_wait (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  double timeout = neap__opt_timeout(L, 2, "wait");
  neap_task *t;
  if (p == NULL) {   /* closed: its status was kept in the box's user value */
    lua_getiuservalue(L, 1, 1);
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "code");
      lua_getfield(L, -2, "signal");
      return 2;
    }
    return luaL_error(L, "attempt to use a closed process");
  }
  if (p->exited) return push_status(L, p);
  t = neap__sched_check(L, "wait");
  lua_settop(L, 1);
  t->link = p->waiters;
  p->waiters = t;
  return neap__sched_park(L, t, timeout, process_unpark, p);
}

/* Pushes field 'k' of a reaped process's kept status; 0 if there is none. */
static int reaped (lua_State *L, const char *k) {
  lua_getiuservalue(L, 1, 1);
  if (!lua_istable(L, -1)) return 0;
  lua_getfield(L, -1, k);
  lua_remove(L, -2);
  return 1;
}

/* p:kill([sig]) -> true | nil, err, code (default "TERM") */
static int process_kill (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : neap__check_signal(L, 2, "kill");
  int r;
  if (p == NULL) {
    if (reaped(L, "pid")) return neap__push_error(L, UV_ESRCH);
    return luaL_error(L, "attempt to use a closed process");
  }
  if (p->exited) return neap__push_error(L, UV_ESRCH);
  r = uv_process_kill(&p->proc, sig);
  if (r < 0) return neap__push_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int process_pid (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  if (p == NULL) return reaped(L, "pid");
  lua_pushinteger(L, p->pid);
  return 1;
}

/* p:status() -> "running" | "exited" | "signalled" */
static int process_status (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  if (p == NULL) {
    if (!reaped(L, "signal")) return luaL_error(L, "attempt to use a closed process");
    lua_pushstring(L, lua_isnil(L, -1) ? "exited" : "signalled");
    return 1;
  }
  lua_pushstring(L, !p->exited ? "running" : p->signal ? "signalled" : "exited");
  return 1;
}

/* p:close(): a running child goes on (and is reaped when it exits) */
static int process_close (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  if (*box) neap__handle_close(*box);
  lua_pushboolean(L, 1);
  return 1;
}

/* Reads the string list at field 'name' of table 'idx' into a NULL-ended array. */
static char **get_strings (lua_State *L, int idx, const char *name) {
  char **v;
  int n, i;
  if (lua_getfield(L, idx, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  n = (int)lua_rawlen(L, -1);
  v = lua_newuserdatauv(L, (n + 1) * sizeof(char *), 0);   /* freed by GC */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    v[i] = (char *)lua_tostring(L, -1);
    if (v[i] == NULL)
      luaL_error(L, "spawn: %s[%d] must be a string", name, i + 1);
    lua_pop(L, 1);   /* the list keeps the string alive */
  }
  v[n] = NULL;
  lua_insert(L, -2);   /* keep the array below the list on the stack */
  return v;
}

/*
** neap.core.spawn(spec) -> process, pid | nil, err, code. 'spec' is the
** normalised table the Lua layer builds: file, args, env, cwd, detached,
** stdio = { {kind=, fd=, stream=}, ... } for descriptors 0, 1, 2...
*/
static int process_spawn (lua_State *L) {
  neap_host *host = neap__host(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[8];
  neap_process *p;
  neap_handle **box;
  int i, n, r, top;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&o, 0, sizeof o);
  lua_getfield(L, 1, "file");
  o.file = luaL_checkstring(L, -1);
  o.args = get_strings(L, 1, "args");
  o.env = get_strings(L, 1, "env");
  if (lua_getfield(L, 1, "cwd") == LUA_TSTRING) o.cwd = lua_tostring(L, -1);
  lua_getfield(L, 1, "detached");
  if (lua_toboolean(L, -1)) o.flags |= UV_PROCESS_DETACHED;
  lua_getfield(L, 1, "stdio");
  n = (int)lua_rawlen(L, -1);
  if (n > 8) n = 8;
  for (i = 0; i < n; i++) {
    const char *kind;
    lua_rawgeti(L, -1, i + 1);
    lua_getfield(L, -1, "kind");
    kind = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (kind == NULL || strcmp(kind, "ignore") == 0)
      stdio[i].flags = UV_IGNORE;
    else if (strcmp(kind, "fd") == 0) {
      lua_getfield(L, -1, "fd");
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    else if (strcmp(kind, "pipe") == 0 || strcmp(kind, "stream") == 0) {
      neap_stream *s;
      lua_getfield(L, -1, "stream");
      s = neap__stream_check(L, -1);
      lua_pop(L, 1);
      if (strcmp(kind, "pipe") == 0) {
        stdio[i].flags = UV_CREATE_PIPE |
                         (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
        stdio[i].data.stream = &s->u->stream;
      }
      else if (s->kind == NEAP_S_FILE || s->kind == NEAP_S_POLL) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = s->fd;
      }
      else {
        stdio[i].flags = UV_INHERIT_STREAM;
        stdio[i].data.stream = &s->u->stream;
      }
    }
    else return luaL_error(L, "spawn: bad stdio kind '%s'", kind);
    lua_pop(L, 1);   /* pop stdio[i] */
  }
  o.stdio = stdio;
  o.stdio_count = n;
  o.exit_cb = process_exit_cb;
  top = lua_gettop(L);
  box = neap__handle_newbox(L, PROCESS_MT);
  p = calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "out of memory");
  r = uv_spawn(host->loop, &p->proc, &o);
  if (r < 0) {
    /* libuv wants the handle closed even when the spawn failed */
    neap__handle_init(host, &p->h, &process_vt, NULL);
    p->proc.data = p;
    p->exited = 1;
    neap__handle_close(&p->h);
    lua_settop(L, top);
    return neap__push_error(L, r);
  }
  neap__handle_init(host, &p->h, &process_vt, box);
  p->proc.data = p;
  p->pid = p->proc.pid;
  p->detached = (o.flags & UV_PROCESS_DETACHED) != 0;
  p->next_live = live;
  if (live) live->prev_live = p;
  live = p;
  neap__handle_anchor(L, &p->h, -1);   /* until it exits: always reaped */
  lua_pushinteger(L, p->pid);
  return 2;
}

/* neap.core.new_pipe(release_at_eof) -> a stream for a child's stdio pipe */
static int process_new_pipe (lua_State *L) {
  neap_host *host = neap__host(L);
  neap_stream *s = neap__stream_new(L, NEAP_S_PIPE);
  int r = uv_pipe_init(host->loop, &s->u->pipe, 0);
  if (r < 0) {
    s->kind = NEAP_S_NONE;
    neap__handle_close(&s->h);
    return neap__push_error(L, r);
  }
  neap__stream_init_uv(s);
  s->release_at_eof = lua_toboolean(L, 1);
  return 1;
}

/* neap.core.environ() -> list of "NAME=value" */
static int process_environ (lua_State *L) {
  uv_env_item_t *items;
  int n, i, r = uv_os_environ(&items, &n);
  if (r < 0) return neap__push_error(L, r);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    lua_pushstring(L, items[i].value);
    lua_setfield(L, -2, items[i].name);
  }
  uv_os_free_environ(items, n);
  return 1;
}

/* neap.core.open_fd(path, flags, mode) -> fd | nil, err, code (synchronous: stdio redirection) */
static int process_open_fd (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int flags = (int)luaL_checkinteger(L, 2);
  int mode = (int)luaL_optinteger(L, 3, 0666);
  uv_fs_t req;
  int r = uv_fs_open(NULL, &req, path, flags, mode, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0) return neap__push_error(L, r);
  lua_pushinteger(L, r);
  return 1;
}

/* neap.core.os_pipe() -> read fd, write fd (close-on-exec) */
static int process_os_pipe (lua_State *L) {
  uv_file fds[2];
  int r = uv_pipe(fds, 0, 0);
  if (r < 0) return neap__push_error(L, r);
  lua_pushinteger(L, fds[0]);
  lua_pushinteger(L, fds[1]);
  return 2;
}

/* neap.core.close_fd(fd) */
static int process_close_fd (lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* neap.pid() -> this process's id */
static int process_getpid (lua_State *L) {
  lua_pushinteger(L, uv_os_getpid());
  return 1;
}

/* neap.core.signum(name) -> number */
static int process_signum (lua_State *L) {
  lua_pushinteger(L, neap__check_signal(L, 1, "signum"));
  return 1;
}

static int process_tostring (lua_State *L) {
  neap_handle **box = luaL_checkudata(L, 1, PROCESS_MT);
  if (*box == NULL) lua_pushliteral(L, "neap.process (closed)");
  else lua_pushfstring(L, "neap.process (pid %d)", ((neap_process *)*box)->pid);
  return 1;
}

int neap__process_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"wait", process_wait},
    {"kill", process_kill},
    {"status", process_status},
    {"getpid", process_pid},
    {"close", process_close},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__gc", neap__handle_gc},
    {"__close", process_close},
    {"__tostring", process_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"spawn", process_spawn},
    {"os_pipe", process_os_pipe},
    {"new_pipe", process_new_pipe},
    {"environ", process_environ},
    {"open_fd", process_open_fd},
    {"close_fd", process_close_fd},
    {"signum", process_signum},
    {"pid", process_getpid},
    {NULL, NULL}
  };
  neap__newmeta(L, PROCESS_MT, meth, metameth);
  luaL_getmetatable(L, PROCESS_MT);
  lua_setfield(L, -2, "process_meta");
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
