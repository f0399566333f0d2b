/* SPDX-License-Identifier: MIT */
/*
** Child processes: posix_spawn with argv lists (never a shell string),
** stdio as socket pairs (neap streams), inherited descriptors or /dev/null,
** waits that park until exit, kill by name or number. posix_spawn (glibc:
** clone with CLONE_VM|CLONE_VFORK) costs the same whatever the host's
** memory, where libuv 1.44's fork copies the page tables. Every child is
** reaped: a SIGCHLD watcher waits for each live child, the process object
** stays anchored until then, and the host passes INT or TERM on to its
** live children when it is stopped by them.
*/
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
  int pid;
  int exited;
  int64_t code;
  int signal;
  int detached;
  int unref;               /* p:unref(): does not keep the loop alive */
  int counted;             /* counted in nref */
  neap_task *waiters;      /* tasks parked in wait(), linked by t->link */
  struct neap_process *next_live, *prev_live;
} neap_process;


extern char **environ;

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

/*
** The signal at 'idx': a name ("TERM", "SIGTERM", "term") or a number.
** Returns it, or -1 with *why set to the reason ("unknown signal 'FOO'"),
** pushed on the stack.
*/
static int signal_lookup (lua_State *L, int idx, const char **why) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int isint;
    lua_Integer n = lua_tointegerx(L, idx, &isint);   /* 15.0 is 15 */
    if (!isint) {   /* 1.5 would be signal 0 */
      *why = lua_pushfstring(L, "no signal %s", lua_tostring(L, idx));
      return -1;
    }
    if (n < 0 || n > 64) {
      *why = lua_pushfstring(L, "no signal %d", (int)n);
      return -1;
    }
    return (int)n;
  }
  else {
    const char *s;
    char up[16];
    int i;
    if (lua_type(L, idx) != LUA_TSTRING) {
      *why = lua_pushliteral(L, "signal name or number expected");
      return -1;
    }
    s = lua_tostring(L, idx);
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (i = 0; s[i] && i < 15; i++) up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = '\0';
    for (i = 0; signames[i].name; i++)
      if (strcmp(signames[i].name, up) == 0) return signames[i].num;
    *why = lua_pushfstring(L, "unknown signal '%s'", lua_tostring(L, idx));
    return -1;
  }
}

/* A signal from a name or a number at 'idx'; raises for anything else. */
int neap__check_signal (lua_State *L, int idx, const char *fname) {
  const char *why;
  int sig = signal_lookup(L, idx, &why);
  if (sig < 0)
    luaL_error(L, "bad argument #%d to '%s' (%s)", idx, fname, why);
  return sig;
}

/* Takes 'p' off its host's list of live children. */
static void live_remove (neap_process *p) {
  neap_host *h = p->h.host;
  if (p->prev_live == NULL && h->live != p) return;   /* not on the list */
  if (p->prev_live) p->prev_live->next_live = p->next_live;
  else h->live = p->next_live;
  if (p->next_live) p->next_live->prev_live = p->prev_live;
  p->next_live = p->prev_live = NULL;
  if (p->counted) { p->counted = 0; h->nref--; }
}

/* The SIGCHLD watcher keeps the loop alive while a child is unreaped. */
static void sigchld_ref (neap_host *h) {
  if (!h->sigchld_on) return;
  if (h->nref > 0) uv_ref((uv_handle_t *)&h->sigchld);
  else uv_unref((uv_handle_t *)&h->sigchld);
}

/*
** A live child keeps the loop alive unless unref'd, and an unref'd one too
** while a task waits for it. Keeps nref, and so the watcher's reference,
** in step with 'p'.
*/
static void ref_update (neap_process *p) {
  neap_host *h = p->h.host;
  int listed = p->prev_live != NULL || h->live == p;
  int want = listed && (!p->unref || p->waiters != NULL);
  if (want != p->counted) {
    p->counted = want;
    h->nref += want ? 1 : -1;
  }
  sigchld_ref(p->h.host);
}

/* Sends 'sig' to every live child of 'h' that is not detached (INT/TERM exit). */
void neap__process_kill_all (neap_host *h, int sig) {
  neap_process *p;
  for (p = h->live; p; p = p->next_live)
    if (!p->detached && !p->exited) kill(p->pid, sig);
}


/* Releases 'p' (it owns no libuv handle: reaping is the host's SIGCHLD watcher). */
static void process_free (neap_process *p) {
  if (neap__handle_closing(&p->h)) neap__handle_release_later(&p->h);
}

static void process_vt_release (neap_handle *h) {
  live_remove((neap_process *)h);
}

/* close() on a running child: it goes on, and is reaped when it exits. */
static void process_vt_close (neap_handle *h) {
  neap_process *p = (neap_process *)h;
  if (p->exited || h->host->dying) process_free(p);
}

static const neap_handle_vt process_vt = {
  PROCESS_MT, "process", process_vt_close, process_vt_close, process_vt_release
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

static int push_status_p (lua_State *L, void *ud) {
  return push_status(L, ud);
}

/* Protected: the box of the reaped child 'p' keeps {code, signal, pid}. */
static int keep_status_p (lua_State *L) {
  neap_process *p = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->h.anchor);   /* the box */
  lua_createtable(L, 0, 3);
  push_status(L, p);
  lua_setfield(L, -3, "signal");
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, p->pid);
  lua_setfield(L, -2, "pid");
  lua_setiuservalue(L, -2, 1);
  return 0;
}

static void process_exited (neap_process *p, int64_t code, int sig) {
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
    neap__sched_wake_with(t, push_status_p, p);
    t = next;
  }
  /* reaped: keep the status in the box, and close the handle now */
  if (p->h.anchor != LUA_NOREF)
    neap__pcall(p->h.host->L, keep_status_p, p);   /* (no memory: not kept) */
  if (p->h.flags & NEAP_H_CLOSING) process_free(p);   /* closed while running */
  else neap__handle_close(&p->h);
}

/* SIGCHLD: reap every live child that has exited. */
static void sigchld_cb (uv_signal_t *sg, int signum) {
  neap_host *h = sg->data;
  neap_process *p, *next;
  (void)signum;
  for (p = h->live; p; p = next) {   /* (each host reaps its own children) */
    int st;
    pid_t r;
    next = p->next_live;
    do r = waitpid(p->pid, &st, WNOHANG); while (r < 0 && errno == EINTR);
    if (r == p->pid) {
      if (WIFSIGNALED(st)) process_exited(p, 0, WTERMSIG(st));
      else process_exited(p, WIFEXITED(st) ? WEXITSTATUS(st) : 0, 0);
    }
  }
  sigchld_ref(h);
}

/* Teardown: stop watching (children still running are left to init). */
void neap__process_free (neap_host *h) {
  if (!h->sigchld_on) return;
  h->sigchld_on = 0;
  neap__host_uvclose(h, (uv_handle_t *)&h->sigchld, NULL);
}

static void process_unpark (neap_task *t) {
  neap_process *p = t->parked_on;
  neap_task **pp;
  for (pp = &p->waiters; *pp; pp = &(*pp)->link)
    if (*pp == t) { *pp = t->link; break; }
  t->link = NULL;
  ref_update(p);
}

/* p:wait{timeout=} -> code, signal (signal as a name: "TERM") | nil, "timeout", "timeout" */
static int process_wait (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
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
  ref_update(p);
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

/*
** p:kill([sig] [, {group = true}]) -> true | nil, err, code (default
** "TERM"). With group, the signal goes to the process group the child
** leads (kill(-pid): a child spawned detached leads its own), also after
** the child itself has exited, for what it left running; a child that
** leads no group gives ESRCH, as kill(-pid) does.
*/
static int process_kill (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : neap__check_signal(L, 2, "kill");
  int group = 0, pid, r;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3))
      return luaL_error(L, "bad argument #3 to 'kill' (options table "
                        "expected, got %s)", luaL_typename(L, 3));
    lua_getfield(L, 3, "group");
    group = lua_toboolean(L, -1);
    lua_pop(L, 1);   /* pop group */
  }
  if (p == NULL) {
    if (!reaped(L, "pid")) return luaL_error(L, "attempt to use a closed process");
    if (!group) return neap__push_error(L, UV_ESRCH);
    pid = (int)lua_tointeger(L, -1);
  }
  else if (p->exited && !group) return neap__push_error(L, UV_ESRCH);
  else pid = p->pid;
  r = kill(group ? -pid : pid, sig);
  if (r < 0) return neap__push_error(L, uv_translate_sys_error(errno));
  lua_pushboolean(L, 1);
  return 1;
}

static int process_pid (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  if (p == NULL) return reaped(L, "pid");
  lua_pushinteger(L, p->pid);
  return 1;
}

/* p:status() -> "running" | "exited" | "signalled" */
static int process_status (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  if (p == NULL) {
    if (!reaped(L, "signal")) return luaL_error(L, "attempt to use a closed process");
    lua_pushstring(L, lua_isnil(L, -1) ? "exited" : "signalled");
    return 1;
  }
  lua_pushstring(L, !p->exited ? "running" : p->signal ? "signalled" : "exited");
  return 1;
}

/*
** p:unref() / p:ref(): whether a running child keeps the loop alive (as
** Node.js's subprocess.unref()). Its pipes, while read, keep it alive on
** their own. Returns the process.
*/
static int set_ref (lua_State *L, int unref) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
  neap_process *p = (neap_process *)*box;
  if (p != NULL && !p->exited) {
    p->unref = unref;
    ref_update(p);
  }
  lua_settop(L, 1);
  return 1;
}
static int process_unref (lua_State *L) { return set_ref(L, 1); }
static int process_ref (lua_State *L) { return set_ref(L, 0); }

/* p:close(): a running child goes on (and is reaped when it exits) */
static int process_close (lua_State *L) {
  return neap__handle_close_l(L, PROCESS_MT);
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
    /* (a string only: lua_tostring would make a number's string, which
    ** the pop below would leave to the collector) */
    if (lua_rawgeti(L, -2, i + 1) != LUA_TSTRING)
      luaL_error(L, "spawn: %s[%d] must be a string", name, i + 1);
    v[i] = (char *)lua_tostring(L, -1);
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
/*
** The child's descriptor 'i' is a copy of 'fd'. A copy shares fd's open
** file description, and with it O_NONBLOCK, which most programs fail on
** (EAGAIN). 'own' says whether neap gives the descriptor up (a stream
** handed to the child: the Lua layer closes neap's side after the spawn):
** then its O_NONBLOCK is cleared, as libuv's child does for its stdio.
** Else the descriptor stays the script's and keeps its flags: a pipe, a
** FIFO or a terminal is opened anew through /proc/self/fd (a description
** of its own, blocking) and that copy goes to the child; its number is
** left in *reopened, to close after the spawn. A socket cannot be opened
** anew: its description is shared, made blocking.
*/
static int stdio_dup (posix_spawn_file_actions_t *fa, int fd, int i, int own,
                      int *reopened) {
  int fl = fcntl(fd, F_GETFL);
  struct stat st;
  if (fl < 0 || !(fl & O_NONBLOCK)) return posix_spawn_file_actions_adddup2(fa, fd, i);
  if (!own && fstat(fd, &st) == 0) {
    if (S_ISREG(st.st_mode))   /* O_NONBLOCK means nothing for a file */
      return posix_spawn_file_actions_adddup2(fa, fd, i);
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      char path[64];
      int nfd;
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      /* O_NONBLOCK: a FIFO's open does not wait for the other side */
      nfd = open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (nfd >= 0) {
        fcntl(nfd, F_SETFL, fl & ~O_NONBLOCK);   /* blocking: the child's */
        *reopened = nfd;
        return posix_spawn_file_actions_adddup2(fa, nfd, i);
      }
    }
  }
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return posix_spawn_file_actions_adddup2(fa, fd, i);
}

/*
** The program to start: a name with no '/' is looked up in the PATH of the
** child's environment when 'env' has one (as Node.js and libuv do), else
** posix_spawnp uses neap's own. Returns 0 with *out set (NULL: let
** posix_spawnp search), or ENOENT / EACCES. 'buf' holds a found path.
*/
static int find_program (const char *file, char **env, const char *cwd,
                         char *buf, size_t size, const char **out) {
  const char *path = NULL, *p, *end;
  size_t flen = strlen(file);
  int err = ENOENT;
  char **e;
  *out = NULL;
  if (env == NULL || strchr(file, '/') != NULL || flen == 0) return 0;
  for (e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
  if (path == NULL) return 0;
  for (p = path; ; p = end + 1) {
    size_t dlen;
    end = strchr(p, ':');
    if (end == NULL) end = p + strlen(p);
    dlen = (size_t)(end - p);
    if (dlen == 0) { p = "."; dlen = 1; }   /* an empty entry is the current directory */
    if (dlen + 1 + flen + 1 <= size) {
      memcpy(buf, p, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, file, flen + 1);
      /* a relative entry is the child's: look it up from 'cwd' (the
      ** child resolves the relative path after its chdir) */
      char full[4096];
      const char *probe = buf;
      if (buf[0] != '/' && cwd != NULL) {
        if ((size_t)snprintf(full, sizeof full, "%s/%s", cwd, buf) >= sizeof full)
          goto next;
        probe = full;
      }
      if (access(probe, X_OK) == 0) {
        struct stat st;
        if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) { *out = buf; return 0; }
      }
      else if (errno == EACCES) err = EACCES;
    }
  next:
    if (*end == '\0') break;
  }
  return err;
}

static int process_spawn (lua_State *L) {
  neap_host *host = neap__host(L);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  neap_stream *pipes[3] = {NULL, NULL, NULL};
  int ours[3] = {-1, -1, -1}, theirs[3] = {-1, -1, -1}, reopened[3] = {-1, -1, -1};
  const char *file, *cwd = NULL, *found = NULL;
  char **args, **env;
  char pathbuf[4096];
  int i, n, r = 0, detached, top;
  pid_t pid;
  neap_process *p;
  neap_handle **box;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "file");
  file = luaL_checkstring(L, -1);
  args = get_strings(L, 1, "args");
  env = get_strings(L, 1, "env");
  if (lua_getfield(L, 1, "cwd") == LUA_TSTRING) cwd = lua_tostring(L, -1);
  lua_getfield(L, 1, "detached");
  detached = lua_toboolean(L, -1);
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  lua_getfield(L, 1, "stdio");
  n = (int)lua_rawlen(L, -1);
  if (n > 3) n = 3;
  for (i = 0; i < n && r == 0; i++) {
    const char *kind;
    lua_rawgeti(L, -1, i + 1);
    lua_getfield(L, -1, "kind");
    kind = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (kind == NULL || strcmp(kind, "ignore") == 0)
      r = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    else if (strcmp(kind, "fd") == 0) {
      lua_Integer n;
      lua_getfield(L, -1, "fd");
      n = lua_tointeger(L, -1);
      r = n == (int)n ? stdio_dup(&fa, (int)n, i, 0, &reopened[i])
                      : UV_EBADF;   /* (2^32 + 2 is not 2) */
      lua_pop(L, 1);
    }
    else if (strcmp(kind, "pipe") == 0 || strcmp(kind, "stream") == 0) {
      neap_stream *s;
      lua_getfield(L, -1, "stream");
      s = neap__stream_check(L, -1);
      lua_pop(L, 1);
      if (strcmp(kind, "pipe") == 0) {   /* a socket pair, as libuv makes */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) r = errno;
        else {
          ours[i] = sv[0];
          theirs[i] = sv[1];
          pipes[i] = s;
          r = posix_spawn_file_actions_adddup2(&fa, sv[1], i);
        }
      }
      else {
        uv_os_fd_t fd = s->fd;
        if (s->kind != NEAP_S_FILE && s->kind != NEAP_S_POLL &&
            uv_fileno(&neap__su(s)->handle, &fd) != 0)
          r = EBADF;
        else r = stdio_dup(&fa, fd, i, 1, &reopened[i]);
      }
    }
    else return luaL_error(L, "spawn: bad stdio kind '%s'", kind);
    lua_pop(L, 1);   /* pop stdio[i] */
  }
  if (r == 0) r = find_program(file, env, cwd, pathbuf, sizeof pathbuf, &found);
  if (r == 0 && cwd) r = posix_spawn_file_actions_addchdir_np(&fa, cwd);
  if (r == 0) {
    /* the child starts with default signal handlers and no blocked signal
    ** (neap ignores SIGPIPE; its children must not inherit that) */
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                  (detached ? POSIX_SPAWN_SETSID : 0));
    if (!host->sigchld_on) {   /* watch SIGCHLD before the first child */
      uv_signal_init(host->loop, &host->sigchld);
      host->sigchld.data = host;
      uv_signal_start(&host->sigchld, sigchld_cb, SIGCHLD);
      uv_unref((uv_handle_t *)&host->sigchld);
      host->sigchld_on = 1;
    }
    r = found ? posix_spawn(&pid, found, &fa, &at, args, env)
              : posix_spawnp(&pid, file, &fa, &at, args, env ? env : environ);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  for (i = 0; i < 3; i++) {
    if (theirs[i] >= 0) close(theirs[i]);
    if (reopened[i] >= 0) close(reopened[i]);
  }
  if (r != 0) {
    for (i = 0; i < 3; i++) if (ours[i] >= 0) close(ours[i]);
    if (r == ENOEXEC) {   /* libuv 1.44 has no name for it */
      lua_pushnil(L);
      lua_pushliteral(L, "exec format error");
      lua_pushliteral(L, "ENOEXEC");
      return 3;
    }
    return neap__push_error(L, uv_translate_sys_error(r));
  }
  for (i = 0; i < 3; i++) {
    if (pipes[i] == NULL) continue;
    if (uv_pipe_open(&neap__su(pipes[i])->pipe, ours[i]) != 0) close(ours[i]);
  }
  top = lua_gettop(L);
  (void)top;
  box = neap__handle_newbox(L, PROCESS_MT);
  p = calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "out of memory");
  neap__handle_init(host, &p->h, &process_vt, box);
  p->pid = pid;
  p->detached = detached;
  p->next_live = host->live;
  if (host->live) host->live->prev_live = p;
  host->live = p;
  ref_update(p);
  neap__handle_anchor(L, &p->h, -1);   /* until it is reaped */
  lua_pushinteger(L, p->pid);
  return 2;
}

/* neap.core.new_pipe(release_at_eof) -> a stream for a child's stdio pipe */
static int process_new_pipe (lua_State *L) {
  neap_host *host = neap__host(L);
  neap_stream *s = neap__stream_new(L, NEAP_S_PIPE);
  int r = uv_pipe_init(host->loop, &neap__su(s)->pipe, 0);
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

/*
** neap.core.signal_number(sig) -> number | nil, reason: the Lua layer's
** check, so that it raises at its own caller's line.
*/
static int process_signal_number (lua_State *L) {
  const char *why;
  int sig = signal_lookup(L, 1, &why);
  if (sig < 0) {
    lua_pushnil(L);
    lua_insert(L, -2);   /* nil below the reason */
    return 2;
  }
  lua_pushinteger(L, sig);
  return 1;
}

/* neap.core.signum(name) -> number */
static int process_signum (lua_State *L) {
  lua_pushinteger(L, neap__check_signal(L, 1, "signum"));
  return 1;
}

static int process_tostring (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, PROCESS_MT);
  if (*box == NULL) lua_pushliteral(L, "neap.process (closed)");
  else lua_pushfstring(L, "neap.process (pid %d)", ((neap_process *)*box)->pid);
  return 1;
}

int neap__process_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"wait", process_wait},
    {"kill", process_kill},
    {"status", process_status},
    {"unref", process_unref},
    {"ref", process_ref},
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
    {"signal_number", process_signal_number},
    {"pid", process_getpid},
    {NULL, NULL}
  };
  neap__newmeta(L, PROCESS_MT, meth, metameth);
  luaL_getmetatable(L, PROCESS_MT);
  lua_setfield(L, -2, "process_meta");
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
