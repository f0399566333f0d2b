/* SPDX-License-Identifier: MIT */
/*
** Servers and connections: TCP and Unix-socket listeners whose accept parks
** a task until a peer arrives (libuv holds the next connection until it is
** taken, so the kernel's backlog is the queue), outgoing connects, name
** resolution on the thread pool, and socket addresses.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "neapi.h"

#define SERVER_MT "neap.server"

typedef struct neap_server {
  neap_handle h;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  int kind;                /* NEAP_S_TCP or NEAP_S_PIPE */
  int pending;             /* connections libuv holds for us */
  int err;                 /* last accept error */
  neap_task *acceptor;
  /* a Unix server: the socket file it bound, removed at close only while
  ** it is still that file (st_dev, st_ino); "" when there is none */
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  dev_t dev;
  ino_t ino;
} neap_server;

/* ====================================================== servers */

static neap_server *server_check (lua_State *L, int idx) {
  return neap__handle_check(L, idx, SERVER_MT, "server");
}

/*
** Removes a Unix server's socket file if it is still the one this server
** bound: another server may have taken the path since (after removing
** ours), and its file is not ours to remove. Before the descriptor is
** closed, as libuv does, so no new file can appear in between.
*/
static void server_unlink (neap_server *sv) {
  struct stat st;
  if (sv->path[0] == '\0') return;
  if (lstat(sv->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == sv->dev && st.st_ino == sv->ino)
    unlink(sv->path);
  sv->path[0] = '\0';
}

static void server_uvclose (neap_server *sv) {
  if (!(sv->h.flags & NEAP_H_UVCLOSE)) server_unlink(sv);
  neap__handle_uvclose(&sv->h, &sv->u.handle);
}

static void server_vt_close (neap_handle *h) {
  neap_server *sv = (neap_server *)h;
  if (sv->acceptor && !h->host->dying) {
    neap_task *t = sv->acceptor;
    sv->acceptor = NULL;
    neap__sched_wake_closed(t);
  }
  server_uvclose(sv);
}

static void server_vt_force (neap_handle *h) {
  server_uvclose((neap_server *)h);
}

static const neap_handle_vt server_vt = {
  SERVER_MT, "server", server_vt_close, server_vt_force, NULL
};

static void server_ref (neap_server *sv) {
  if (sv->acceptor || sv->h.cbref != LUA_NOREF) uv_ref(&sv->u.handle);
  else uv_unref(&sv->u.handle);
}

/* Accepts one held connection; pushes the stream, or nil, err, code. */
static int server_do_accept (lua_State *L, neap_server *sv) {
  neap_host *host = sv->h.host;
  neap_stream *s = neap__stream_new(L, sv->kind);
  int r;
  if (sv->kind == NEAP_S_TCP) r = uv_tcp_init(host->loop, &neap__su(s)->tcp);
  else r = uv_pipe_init(host->loop, &neap__su(s)->pipe, 0);
  if (r == 0) {
    neap__stream_init_uv(s);
    /* (the stream's box ran the collector: a finalizer may have accepted
    ** the waiting connection meanwhile, or closed the server) */
    if (sv->pending <= 0 || (sv->h.flags & NEAP_H_CLOSING)) r = UV_EAGAIN;
    else {
      r = uv_accept(&sv->u.stream, &neap__su(s)->stream);
      if (r != UV_EAGAIN) sv->pending--;   /* (libuv took the connection, or closed it) */
    }
    if (r == 0 && sv->kind == NEAP_S_TCP) uv_tcp_nodelay(&neap__su(s)->tcp, 1);
  }
  else s->kind = NEAP_S_NONE;      /* nothing for libuv to close */
  if (r < 0) {
    neap__handle_close(&s->h);
    lua_pop(L, 1);
    return neap__push_error(L, r);
  }
  return 1;
}

static int server_do_accept_p (lua_State *L, void *ud) {
  return server_do_accept(L, ud);
}

/*
** Takes a connection straight from the kernel's queue (libuv hands out one
** per loop turn, too slow for a burst). Pushes the stream and returns 1;
** 0 when none waits; else pushes nil, err, code and returns 3.
*/
static int server_try_accept (lua_State *L, neap_server *sv) {
  neap_host *host = sv->h.host;
  uv_os_fd_t lfd;
  neap_stream *s;
  int fd, r;
  if (uv_fileno(&sv->u.handle, &lfd) != 0) return 0;
  fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
        errno == EINTR)
      return 0;
    return neap__push_error(L, uv_translate_sys_error(errno));
  }
  s = neap__stream_new(L, sv->kind);
  if (sv->kind == NEAP_S_TCP) {
    r = uv_tcp_init(host->loop, &neap__su(s)->tcp);
    if (r == 0) {
      r = uv_tcp_open(&neap__su(s)->tcp, fd);
      if (r == 0) uv_tcp_nodelay(&neap__su(s)->tcp, 1);
    }
  }
  else {
    r = uv_pipe_init(host->loop, &neap__su(s)->pipe, 0);
    if (r == 0) r = uv_pipe_open(&neap__su(s)->pipe, fd);
  }
  if (r < 0) {
    close(fd);
    s->kind = NEAP_S_NONE;
    neap__handle_close(&s->h);
    lua_pop(L, 1);
    return neap__push_error(L, r);
  }
  neap__stream_init_uv(s);
  return 1;
}

static void server_connection_cb (uv_stream_t *st, int status) {
  neap_server *sv = st->data;
  neap_task *t;
  if (sv->h.host->dying) return;
  if (status < 0) {
    sv->err = status;
    return;
  }
  sv->pending++;
  t = sv->acceptor;
  if (t != NULL) {
    sv->acceptor = NULL;
    server_ref(sv);
    neap__sched_wake_with(t, server_do_accept_p, sv);
  }
}

static void server_unpark (neap_task *t) {
  neap_server *sv = t->parked_on;
  if (sv->acceptor == t) {
    sv->acceptor = NULL;
    server_ref(sv);
  }
}

/* server:accept{timeout=} -> stream | nil, err, code */
static int server_accept (lua_State *L) {
  neap_server *sv = server_check(L, 1);
  double timeout = neap__opt_timeout(L, 2, "accept");
  neap_task *t;
  if (sv->pending > 0) return server_do_accept(L, sv);
  if (!sv->acceptor) {
    int n = server_try_accept(L, sv);
    if (n > 0) return n;
  }
  if (sv->acceptor)
    return luaL_error(L, "accept: another task is already accepting on this "
                      "server");
  if (timeout == 0) return neap__push_fail(L, "timeout");   /* a try, no wait */
  t = neap__sched_check(L, "accept");
  lua_settop(L, 1);
  sv->acceptor = t;
  server_ref(sv);
  return neap__sched_park(L, t, timeout, server_unpark, sv);
}

/* server:address() -> host, port, family (a Unix socket: its path) */
static int server_address (lua_State *L) {
  neap_server *sv = server_check(L, 1);
  if (sv->kind == NEAP_S_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss, r = uv_tcp_getsockname(&sv->u.tcp,
                                                (struct sockaddr *)&ss, &len);
    if (r < 0) return neap__push_error(L, r);
    return neap__push_addr(L, (struct sockaddr *)&ss, 1);
  }
  else {
    char path[1024];
    size_t len = sizeof path;
    int r = uv_pipe_getsockname(&sv->u.pipe, path, &len);
    if (r < 0) return neap__push_error(L, r);
    lua_pushlstring(L, path, len);
    return 1;
  }
}

/* server:is_closed() -> boolean */
static int server_is_closed (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, SERVER_MT);
  lua_pushboolean(L, *box == NULL);
  return 1;
}

static int server_close (lua_State *L) {
  return neap__handle_close_l(L, SERVER_MT);
}

static int server_tostring (lua_State *L) {
  neap_handle **box = neap__box_check(L, 1, SERVER_MT);
  if (*box == NULL) lua_pushliteral(L, "neap.server (closed)");
  else lua_pushfstring(L, "neap.server (%p)", (void *)*box);
  return 1;
}

static neap_server *server_new (lua_State *L, int kind) {
  neap_host *host = neap__host(L);
  neap_handle **box = neap__handle_newbox(L, SERVER_MT);
  neap_server *sv = calloc(1, sizeof *sv);
  if (sv == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  sv->kind = kind;
  neap__handle_init(host, &sv->h, &server_vt, box);
  return sv;
}

/* neap.core.listen_tcp(ip, port, backlog, reuseport) -> server | nil, err, code */
static int tcp_listen (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  int backlog = (int)luaL_optinteger(L, 3, 511);
  int reuse = lua_toboolean(L, 4);
  struct sockaddr_storage ss;
  neap_server *sv;
  int r = neap__parse_addr(ip, port, &ss);
  if (r < 0) return neap__push_error(L, r);
  sv = server_new(L, NEAP_S_TCP);
  r = uv_tcp_init_ex(host->loop, &sv->u.tcp, ss.ss_family);
  if (r < 0) {
    neap__handle_undo_init(&sv->h);
    return neap__push_error(L, r);
  }
  sv->u.handle.data = sv;
  uv_unref(&sv->u.handle);
  if (reuse) r = neap__reuseport(&sv->u.handle);
  if (r == 0) r = uv_tcp_bind(&sv->u.tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen(&sv->u.stream, backlog, server_connection_cb);
  if (r < 0) {
    neap__handle_close(&sv->h);
    return neap__push_error(L, r);
  }
  return 1;
}

/* A socket file nobody listens on any more (connect is refused). */
static int socket_is_stale (const char *path) {
  struct sockaddr_un sa;
  struct stat st;
  int fd, r, stale;
  if (strlen(path) >= sizeof sa.sun_path) return 0;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;   /* not a socket: never removed */
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  stale = (r < 0 && errno == ECONNREFUSED);
  close(fd);
  return stale;
}

/*
** Binds a new Unix stream socket to 'path' and records the file it made
** in 'sv' (neap binds it, not uv_pipe_bind: libuv would remove the path at
** close whoever owns it then). Returns the descriptor or a UV error.
*/
static int unix_bind (neap_server *sv, const char *path) {
  struct sockaddr_un sa;
  struct stat st;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path);   /* the caller checked the length */
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return uv_translate_sys_error(e);
  }
  if (lstat(path, &st) == 0) {
    strcpy(sv->path, path);
    sv->dev = st.st_dev;
    sv->ino = st.st_ino;
  }
  return fd;
}

/* neap.core.listen_unix(path, backlog) -> server | nil, err, code */
static int unix_listen (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *path = luaL_checkstring(L, 1);
  int backlog = (int)luaL_optinteger(L, 2, 511);
  neap_server *sv;
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return neap__push_error(L, UV_ENAMETOOLONG);   /* libuv would truncate it */
  sv = server_new(L, NEAP_S_PIPE);
  int r = uv_pipe_init(host->loop, &sv->u.pipe, 0);
  if (r < 0) {
    neap__handle_undo_init(&sv->h);
    return neap__push_error(L, r);
  }
  sv->u.handle.data = sv;
  uv_unref(&sv->u.handle);
  r = unix_bind(sv, path);
  if (r == UV_EADDRINUSE && socket_is_stale(path)) {
    unlink(path);   /* left by a server that died: take its place */
    r = unix_bind(sv, path);
  }
  if (r >= 0) {
    int fd = r;
    r = uv_pipe_open(&sv->u.pipe, fd);
    if (r < 0) close(fd);
  }
  if (r == 0) r = uv_listen(&sv->u.stream, backlog, server_connection_cb);
  if (r < 0) {
    neap__handle_close(&sv->h);
    return neap__push_error(L, r);
  }
  return 1;
}

/* ====================================================== connect */

typedef struct connect_req {
  uv_connect_t req;
  neap_task *t;            /* NULL once the waiter gave up */
  neap_stream *s;
} connect_req;

static void connect_cb (uv_connect_t *req, int status) {
  connect_req *c = (connect_req *)req;
  neap_task *t = c->t;
  neap_stream *s = c->s;
  free(c);
  if (t == NULL || s->h.host->dying) return;   /* timed out or cancelled */
  t->parked_on = NULL;
  if (status < 0) {
    neap__handle_close(&s->h);
    neap__sched_wake_error(t, status);
  }
  else {
    if (s->kind == NEAP_S_TCP) uv_tcp_nodelay(&neap__su(s)->tcp, 1);
    lua_pushvalue(t->co, -1);   /* the stream box, left on the stack */
    neap__sched_wake(t, 1);
  }
}

static void connect_unpark (neap_task *t) {
  connect_req *c = t->parked_on;
  if (c) {
    c->t = NULL;
    neap__handle_close(&c->s->h);   /* cancels the connect */
  }
}

static int connect_start (lua_State *L, neap_task *t, neap_stream *s,
                          double timeout, int r) {
  connect_req *c;
  if (r < 0) goto fail;
  c = malloc(sizeof *c);
  if (c == NULL) { r = UV_ENOMEM; goto fail; }
  c->t = t;
  c->s = s;
  if (s->kind == NEAP_S_TCP)
    r = uv_tcp_connect(&c->req, &neap__su(s)->tcp,
                       (const struct sockaddr *)lua_touserdata(L, -2),
                       connect_cb);
  else {
    uv_pipe_connect(&c->req, &neap__su(s)->pipe, lua_tostring(L, -2), connect_cb);
    r = 0;
  }
  if (r < 0) { free(c); goto fail; }
  uv_ref(&neap__su(s)->handle);
  return neap__sched_park(L, t, timeout, connect_unpark, c);
fail:
  neap__handle_close(&s->h);
  return neap__push_error(L, r);
}

/* neap.core.connect_tcp(ip, port, timeout) -> stream | nil, err, code */
static int tcp_connect (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  double timeout = neap__opt_seconds(L, 3, "connect");
  neap_task *t = neap__sched_check(L, "connect");
  struct sockaddr_storage *ss;
  neap_stream *s;
  int r;
  lua_settop(L, 3);
  ss = lua_newuserdatauv(L, sizeof *ss, 0);           /* kept on the stack */
  r = neap__parse_addr(ip, port, ss);
  if (r < 0) return neap__push_error(L, r);
  s = neap__stream_new(L, NEAP_S_TCP);                 /* ss, stream */
  r = uv_tcp_init(host->loop, &neap__su(s)->tcp);
  if (r == 0) neap__stream_init_uv(s);
  else {
    s->kind = NEAP_S_NONE;
    neap__handle_close(&s->h);
    return neap__push_error(L, r);
  }
  return connect_start(L, t, s, timeout, 0);
}

/* neap.core.connect_unix(path, timeout) -> stream | nil, err, code */
static int unix_connect (lua_State *L) {
  neap_host *host = neap__host(L);
  double timeout;
  neap_task *t;
  neap_stream *s;
  int r;
  if (strlen(luaL_checkstring(L, 1)) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return neap__push_error(L, UV_ENAMETOOLONG);
  timeout = neap__opt_seconds(L, 2, "connect");
  t = neap__sched_check(L, "connect");
  lua_settop(L, 1);                                    /* path */
  s = neap__stream_new(L, NEAP_S_PIPE);                /* path, stream */
  r = uv_pipe_init(host->loop, &neap__su(s)->pipe, 0);
  if (r == 0) neap__stream_init_uv(s);
  else {
    s->kind = NEAP_S_NONE;
    neap__handle_close(&s->h);
    return neap__push_error(L, r);
  }
  return connect_start(L, t, s, timeout, 0);
}

/* ====================================================== resolve */

typedef struct resolve_req {
  uv_getaddrinfo_t req;
  neap_task *t;            /* the waiting task, NULL once it gave up */
  neap_host *host;         /* counts it in pool_reqs until its callback */
} resolve_req;

static int push_addrinfo (lua_State *L, struct addrinfo *res) {
  struct addrinfo *ai;
  int i = 0;
  lua_newtable(L);
  for (ai = res; ai; ai = ai->ai_next) {
    char ip[INET6_ADDRSTRLEN];
    if (ai->ai_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)ai->ai_addr, ip, sizeof ip);
    else if (ai->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, ip, sizeof ip);
    else continue;
    lua_pushstring(L, ip);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

static int push_addrinfo_p (lua_State *L, void *ud) {
  return push_addrinfo(L, ud);
}

static void resolve_cb (uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  resolve_req *r = (resolve_req *)req;
  neap_task *t = r->t;
  neap_host *host = r->host;
  free(r);
  host->pool_reqs--;
  if (t != NULL && !host->dying) {   /* (dying: the task may be gone) */
    t->parked_on = NULL;
    if (status < 0) neap__sched_wake_error(t, status);
    else neap__sched_wake_with(t, push_addrinfo_p, res);
  }
  uv_freeaddrinfo(res);
}

static void resolve_unpark (neap_task *t) {
  resolve_req *r = t->parked_on;
  if (r) {
    r->t = NULL;
    uv_cancel((uv_req_t *)&r->req);
  }
}

/*
** neap.core.resolve(host [, timeout]) -> list of addresses | nil, err, code.
** Inside a task it runs on the thread pool; outside, synchronously.
*/
static int tcp_resolve (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *name = luaL_checkstring(L, 1);
  double timeout = neap__opt_seconds(L, 2, "resolve");
  neap_task *t = neap__sched_current(L);
  struct addrinfo hints;
  resolve_req *r;
  int st;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (t == NULL) {
    uv_getaddrinfo_t req;
    st = uv_getaddrinfo(host->loop, &req, NULL, name, NULL, &hints);
    if (st < 0) return neap__push_error(L, st);
    push_addrinfo(L, req.addrinfo);
    uv_freeaddrinfo(req.addrinfo);
    return 1;
  }
  r = malloc(sizeof *r);
  if (r == NULL) return luaL_error(L, "out of memory");
  r->t = t;
  r->host = host;
  st = uv_getaddrinfo(host->loop, &r->req, resolve_cb, name, NULL, &hints);
  if (st < 0) {
    free(r);
    return neap__push_error(L, st);
  }
  host->pool_reqs++;
  return neap__sched_park(L, t, timeout, resolve_unpark, r);
}

/* ====================================================== stream extras */

/* The address of a TCP stream's peer (peer != 0) or its own. */
static int stream_address (lua_State *L, int peer, const char *fname) {
  neap_stream *s = neap__stream_check(L, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  (void)fname;
  if (s->kind != NEAP_S_TCP) return neap__push_fail(L, "not a TCP stream");
  if (peer) r = uv_tcp_getpeername(&neap__su(s)->tcp, (struct sockaddr *)&ss, &len);
  else r = uv_tcp_getsockname(&neap__su(s)->tcp, (struct sockaddr *)&ss, &len);
  if (r < 0) return neap__push_error(L, r);
  return neap__push_addr(L, (struct sockaddr *)&ss, 1);
}

/* s:peer_address() -> host, port, family */
static int stream_peer (lua_State *L) {
  return stream_address(L, 1, "peer_address");
}

/* s:local_address() -> host, port, family */
static int stream_local (lua_State *L) {
  return stream_address(L, 0, "local_address");
}

/* s:nodelay(on) -> s */
static int stream_nodelay (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  int r;
  if (s->kind != NEAP_S_TCP) return luaL_error(L, "nodelay: not a TCP stream");
  r = uv_tcp_nodelay(&neap__su(s)->tcp, lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2));
  if (r < 0) return neap__push_error(L, r);
  lua_settop(L, 1);
  return 1;
}

/* s:keepalive(on [, delay]) -> s */
static int stream_keepalive (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  int r;
  if (s->kind != NEAP_S_TCP)
    return luaL_error(L, "keepalive: not a TCP stream");
  r = uv_tcp_keepalive(&neap__su(s)->tcp, lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2),
                       (unsigned)luaL_optinteger(L, 3, 60));
  if (r < 0) return neap__push_error(L, r);
  lua_settop(L, 1);
  return 1;
}

/* The stream methods of this file, installed by stream.c. */
const luaL_Reg neap__tcp_stream_meth[] = {
  {"peer_address", stream_peer},
  {"local_address", stream_local},
  {"nodelay", stream_nodelay},
  {"keepalive", stream_keepalive},
  {NULL, NULL}
};

int neap__tcp_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"accept", server_accept},
    {"address", server_address},
    {"close", server_close},
    {"is_closed", server_is_closed},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"listen_tcp", tcp_listen},
    {"listen_unix", unix_listen},
    {"connect_tcp", tcp_connect},
    {"connect_unix", unix_connect},
    {"resolve", tcp_resolve},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, SERVER_MT, meth, server_tostring);
  luaL_getmetatable(L, SERVER_MT);
  lua_setfield(L, -2, "server_meta");
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
