/* SPDX-License-Identifier: MIT */
/*
** UDP sockets: neap.udp{host=, port=} binds, send(data, host, port) sends
** (or send(data) once connected), recv{timeout=} parks until a datagram
** arrives. Datagrams that arrive with no task waiting are queued, up to a
** bound; past it new ones are dropped and counted, as the kernel would.
*/
#include <stdlib.h>
#include <string.h>

#include "neapi.h"

#define UDP_MT "neap.udp"
#define UDP_MAXQ 1024
#define UDP_BUF (64 * 1024)

typedef struct dgram {
  struct dgram *next;
  struct sockaddr_storage from;
  size_t len;
  char data[1];
} dgram;

typedef struct neap_udp {
  neap_handle h;
  uv_udp_t udp;
  neap_task *reader;
  dgram *qhead, *qtail;
  int qlen;
  unsigned qpops;          /* datagrams taken off the queue so far */
  lua_Integer dropped;
  int receiving;
  int started;             /* a first recv was asked for */
  int err;                 /* an error for the next recv */
  char buf[UDP_BUF];       /* where the kernel writes the next datagram */
} neap_udp;

typedef struct udp_send {
  uv_udp_send_t req;
  neap_host *host;
  int ref;
} udp_send;

static neap_udp *udp_check (lua_State *L, int idx) {
  return neap__handle_check(L, idx, UDP_MT, "udp socket");
}

/* The end of a UDP socket: the datagrams nobody read. */
static void udp_vt_release (neap_handle *h) {
  neap_udp *u = (neap_udp *)h;
  while (u->qhead) {
    dgram *d = u->qhead;
    u->qhead = d->next;
    free(d);
  }
}

static void udp_vt_close (neap_handle *h) {
  neap_udp *u = (neap_udp *)h;
  if (u->reader && !h->host->dying) {
    neap_task *t = u->reader;
    u->reader = NULL;
    neap__sched_wake_closed(t);
  }
  neap__handle_uvclose(h, (uv_handle_t *)&u->udp);
}

static const neap_handle_vt udp_vt = {
  UDP_MT, "udp socket", udp_vt_close, udp_vt_close, udp_vt_release
};


static void udp_alloc (uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  neap_udp *u = hd->data;
  (void)suggested;
  *buf = uv_buf_init(u->buf, sizeof u->buf);
}

static void udp_flow (neap_udp *u);

typedef struct dgram_push {
  const char *data;
  size_t len;
  const struct sockaddr *addr;
} dgram_push;

static int push_dgram_p (lua_State *L, void *ud) {
  dgram_push *dp = ud;
  lua_pushlstring(L, dp->data, dp->len);
  return 1 + neap__push_addr(L, dp->addr, 0);
}

static void udp_recv_cb (uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags) {
  neap_udp *u = h->data;
  (void)buf;
  (void)flags;
  if (u->h.host->dying) return;
  if (n < 0) {   /* e.g. ECONNREFUSED on a connected socket: for the next recv */
    if (u->reader) {
      neap_task *t = u->reader;
      u->reader = NULL;
      neap__sched_wake_error(t, (int)n);
    }
    else u->err = (int)n;
  }
  else if (addr == NULL) return;   /* nothing more to read */
  else if (u->reader) {
    neap_task *t = u->reader;
    u->reader = NULL;
    dgram_push dp;
    dp.data = u->buf;
    dp.len = (size_t)n;
    dp.addr = addr;
    neap__sched_wake_with(t, push_dgram_p, &dp);
  }
  else if (u->qlen >= UDP_MAXQ) u->dropped++;
  else {
    dgram *d = malloc(sizeof *d + (size_t)n);
    if (d == NULL) u->dropped++;
    else {
      d->next = NULL;
      d->len = (size_t)n;
      memcpy(d->data, u->buf, (size_t)n);
      memcpy(&d->from, addr, addr->sa_family == AF_INET6 ?
             sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
      if (u->qtail) u->qtail->next = d;
      else u->qhead = d;
      u->qtail = d;
      u->qlen++;
    }
  }
  udp_flow(u);
}

/*
** Once a first recv was asked for, receive all the time: datagrams past the
** queue's bound are read and dropped, and counted (u:dropped()). Referenced
** while a task waits.
*/
static void udp_flow (neap_udp *u) {
  int want = u->started;
  if (u->h.flags & NEAP_H_UVCLOSE) return;
  if (want && !u->receiving) {
    if (uv_udp_recv_start(&u->udp, udp_alloc, udp_recv_cb) == 0)
      u->receiving = 1;
  }
  else if (!want && u->receiving) {
    uv_udp_recv_stop(&u->udp);
    u->receiving = 0;
  }
  if (u->reader) uv_ref((uv_handle_t *)&u->udp);
  else uv_unref((uv_handle_t *)&u->udp);
}

static void udp_unpark (neap_task *t) {
  neap_udp *u = t->parked_on;
  if (u->reader == t) u->reader = NULL;
  udp_flow(u);
}

/* u:recv{timeout=} -> data, host, port | nil, err, code */
static int udp_recv (lua_State *L) {
  neap_udp *u;
  double timeout;
  neap_task *t;
  udp_check(L, 1);
  timeout = neap__opt_timeout(L, 2, "recv");   /* (user code: before 'u') */
  u = udp_check(L, 1);
  u->started = 1;
  if (u->err && !u->qhead) {
    int e = u->err;
    u->err = 0;
    return neap__push_error(L, e);
  }
  if (u->qhead) {
    /* (pushes first: no memory loses nothing. Each push may run finalizers:
    ** one that received from 'u' took 'd' and freed it) */
    dgram *d = u->qhead;
    unsigned pops = u->qpops;
    lua_pushlstring(L, d->data, d->len);
    if (u->qpops == pops) neap__push_addr(L, (struct sockaddr *)&d->from, 0);
    if (u->qpops != pops)
      return luaL_error(L, "recv: the socket was read meanwhile (by a finalizer?); "
                        "its datagram went to that read");
    u->qpops++;
    u->qhead = d->next;
    if (u->qhead == NULL) u->qtail = NULL;
    u->qlen--;
    free(d);
    udp_flow(u);
    return 3;
  }
  if (u->reader)
    return luaL_error(L, "recv: another task is already receiving on this socket");
  if (timeout == 0) {   /* a try, no wait */
    udp_flow(u);
    return neap__push_fail(L, "timeout");
  }
  t = neap__sched_check(L, "recv");
  lua_settop(L, 1);
  u->reader = t;
  udp_flow(u);
  return neap__sched_park(L, t, timeout, udp_unpark, u);
}

static void udp_send_cb (uv_udp_send_t *req, int status) {
  udp_send *s = (udp_send *)req;
  (void)status;
  if (!s->host->dying) luaL_unref(s->host->L, LUA_REGISTRYINDEX, s->ref);
  free(s);
}


/* u:send(data [, host, port]) -> true | nil, err, code (host: an IP address) */
static int udp_send_m (lua_State *L) {
  neap_udp *u = udp_check(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  struct sockaddr_storage ss;
  const struct sockaddr *to = NULL;
  uv_buf_t b;
  udp_send *s;
  int r;
  if (len > 65535)   /* no datagram is longer (and uv_buf_init would cut it) */
    return neap__push_error(L, UV_EMSGSIZE);
  b = uv_buf_init((char *)data, (unsigned)len);
  if (!lua_isnoneornil(L, 3)) {
    const char *host = luaL_checkstring(L, 3);
    int port = (int)luaL_checkinteger(L, 4);
    r = neap__parse_addr(host, port, &ss);
    if (r < 0) return neap__push_error(L, r);
    to = (struct sockaddr *)&ss;
  }
  r = uv_udp_try_send(&u->udp, &b, 1, to);
  if (r >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (r != UV_EAGAIN) return neap__push_error(L, r);
  s = malloc(sizeof *s);
  if (s == NULL) return luaL_error(L, "out of memory");
  s->host = u->h.host;
  lua_pushvalue(L, 2);
  s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r = uv_udp_send(&s->req, &u->udp, &b, 1, to, udp_send_cb);
  if (r < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
    free(s);
    return neap__push_error(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* u:connect(host, port) -> u | nil, err, code: later sends need no address */
static int udp_connect_m (lua_State *L) {
  neap_udp *u = udp_check(L, 1);
  const char *host = luaL_checkstring(L, 2);
  int port = (int)luaL_checkinteger(L, 3);
  struct sockaddr_storage ss;
  int r = neap__parse_addr(host, port, &ss);
  if (r == 0) r = uv_udp_connect(&u->udp, (struct sockaddr *)&ss);
  if (r < 0) return neap__push_error(L, r);
  lua_settop(L, 1);
  return 1;
}

/* u:address() -> host, port */
static int udp_address (lua_State *L) {
  neap_udp *u = udp_check(L, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int r = uv_udp_getsockname(&u->udp, (struct sockaddr *)&ss, &len);
  if (r < 0) return neap__push_error(L, r);
  return neap__push_addr(L, (struct sockaddr *)&ss, 0);
}

/* u:dropped() -> datagrams dropped because nobody read them in time */
static int udp_dropped (lua_State *L) {
  neap_udp *u = udp_check(L, 1);
  lua_pushinteger(L, u->dropped);
  return 1;
}

static int udp_close (lua_State *L) {
  return neap__handle_close_l(L, UDP_MT);
}

/* neap.core.udp(host, port, family, reuseaddr, reuseport) -> socket | nil, err, code */
static int udp_new (lua_State *L) {
  neap_host *host = neap__host(L);
  const char *ip = luaL_optstring(L, 1, NULL);
  int port = (int)luaL_optinteger(L, 2, 0);
  int inet6 = lua_toboolean(L, 3);
  int reuse = lua_toboolean(L, 4);
  int reuseport = lua_toboolean(L, 5);
  neap_handle **box = neap__handle_newbox(L, UDP_MT);
  neap_udp *u = calloc(1, sizeof *u);
  int r;
  if (u == NULL) return luaL_error(L, "out of memory");
  neap__handle_init(host, &u->h, &udp_vt, box);
  r = uv_udp_init_ex(host->loop, &u->udp,
                     (ip && strchr(ip, ':')) || inet6 ? AF_INET6 : AF_INET);
  if (r < 0) {
    neap__handle_undo_init(&u->h);
    return neap__push_error(L, r);
  }
  u->udp.data = u;
  uv_unref((uv_handle_t *)&u->udp);
  if (ip != NULL) {
    struct sockaddr_storage ss;
    r = neap__parse_addr(ip, port, &ss);
    if (r == 0 && reuseport) r = neap__reuseport((uv_handle_t *)&u->udp);
    if (r == 0)
      r = uv_udp_bind(&u->udp, (struct sockaddr *)&ss, reuse ? UV_UDP_REUSEADDR : 0);
    if (r < 0) {
      neap__handle_close(&u->h);
      return neap__push_error(L, r);
    }
  }
  return 1;
}

int neap__udp_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"recv", udp_recv},
    {"send", udp_send_m},
    {"connect", udp_connect_m},
    {"address", udp_address},
    {"dropped", udp_dropped},
    {"close", udp_close},
    {NULL, NULL}
  };
  neap__newhandlemeta(L, UDP_MT, meth, NULL);
  luaL_getmetatable(L, UDP_MT);
  lua_setfield(L, -2, "udp_meta");
  lua_pushcfunction(L, udp_new);
  lua_setfield(L, -2, "udp");
  return 0;
}
