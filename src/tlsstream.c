/* SPDX-License-Identifier: MIT */
/*
** TLS inside a stream: the engine of tls.c between libuv and the stream's
** buffer. Ciphertext read by libuv lands in the engine's input (the alloc
** callback hands out its free space), is decrypted straight into the
** stream buffer's tail, and framing, limits, callbacks and every front run
** on the plaintext as before. A turn's gathered writes are encrypted in
** one go and leave as one uv_write of the records. The handshake is a wait
** like any other (timeout, cancel).
*/
#include <stdlib.h>
#include <string.h>

#include "neapi.h"
#include "tls.h"

#define TLSCTX_MT "neap.tls_context"

/* ====================================================== contexts */

static neap_tls_ctx *ctx_check (lua_State *L, int idx) {
  neap_tls_ctx **box = (neap_tls_ctx **)neap__box_check(L, idx, TLSCTX_MT);
  if (*box == NULL) luaL_error(L, "attempt to use a freed TLS context");
  return *box;
}

static int ctx_gc (lua_State *L) {
  neap_tls_ctx **box = (neap_tls_ctx **)neap__box_test(L, 1, TLSCTX_MT);
  if (box == NULL) return 0;   /* (not ours: given our metatable) */
  if (*box) neap__tls_ctx_unref(*box);
  *box = NULL;
  return 0;
}

/* The string field 'k' of the table at 'idx', or NULL; raises on another type. */
static const char *opt_string (lua_State *L, int idx, const char *k,
                               const char *fname) {
  const char *s;
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (t != LUA_TSTRING)
    luaL_error(L, "%s: %s must be a string, got %s", fname, k,
               luaL_typename(L, -1));
  s = lua_tostring(L, -1);
  if (strlen(s) != lua_rawlen(L, -1))
    luaL_error(L, "%s: %s contains a NUL byte", fname, k);
  lua_pop(L, 1);   /* (the options table keeps the string) */
  return s;
}

/*
** neap.core.tls_context(opts, fname) -> context: opts as neap.connect("tls")
** and neap.listen("tls") take them (server = true for a server). Raises
** on bad options, with OpenSSL's reason and the file's path.
*/
static int tls_context (lua_State *L) {
  const char *fname = luaL_optstring(L, 2, "tls");
  neap_tls_opts o;
  neap_tls_ctx **box;
  const char *alpn[16], *s;
  neap_tls_sni sni[32];
  char err[512];
  int i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  neap__tls_opts_init(&o);
  lua_getfield(L, 1, "server");
  o.server = lua_toboolean(L, -1);
  lua_pop(L, 1);
  o.cert = opt_string(L, 1, "cert", fname);
  o.key = opt_string(L, 1, "key", fname);
  o.ca = opt_string(L, 1, "ca", fname);
  if (lua_getfield(L, 1, "verify") != LUA_TNIL) o.verify = lua_toboolean(L, -1);
  lua_pop(L, 1);
  s = opt_string(L, 1, "verify_peer", fname);
  if (s == NULL || strcmp(s, "none") == 0) o.verify_peer = NEAP_TLS_PEER_NONE;
  else if (strcmp(s, "optional") == 0) o.verify_peer = NEAP_TLS_PEER_OPTIONAL;
  else if (strcmp(s, "require") == 0) o.verify_peer = NEAP_TLS_PEER_REQUIRE;
  else luaL_error(L, "%s: verify_peer must be \"optional\" or \"require\"", fname);
  s = opt_string(L, 1, "min_version", fname);
  if (s == NULL || strcmp(s, "1.2") == 0) o.min_version = 12;
  else if (strcmp(s, "1.3") == 0) o.min_version = 13;
  else luaL_error(L, "%s: min_version must be \"1.2\" or \"1.3\"", fname);
  if (lua_getfield(L, 1, "alpn") != LUA_TNIL) {   /* opts.alpn at 3 */
    if (!lua_istable(L, -1))
      luaL_error(L, "%s: alpn must be a list of strings", fname);
    n = (int)lua_rawlen(L, -1);
    if (n < 1 || n > 16) luaL_error(L, "%s: alpn takes 1 to 16 protocols", fname);
    for (i = 0; i < n; i++) {
      if (lua_rawgeti(L, 3, i + 1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 ||
          lua_rawlen(L, -1) > 255)
        luaL_error(L, "%s: alpn[%d] must be a string of 1 to 255 bytes", fname,
                   i + 1);
      alpn[i] = lua_tostring(L, -1);
      lua_pop(L, 1);   /* (the list keeps it) */
    }
    o.alpn = alpn;
    o.nalpn = n;
  }
  else lua_pop(L, 1);
  lua_settop(L, 3);
  if (lua_getfield(L, 1, "sni") != LUA_TNIL) {   /* opts.sni at 4 */
    if (!lua_istable(L, 4))
      luaL_error(L, "%s: sni must be a table of name = {cert=, key=}", fname);
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, 4)) {   /* name, entry */
      if (n == 32) luaL_error(L, "%s: at most 32 sni names", fname);
      if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
        luaL_error(L, "%s: sni must be a table of name = {cert=, key=}", fname);
      sni[n].name = lua_tostring(L, -2);
      sni[n].cert = opt_string(L, lua_gettop(L), "cert", fname);
      sni[n].key = opt_string(L, lua_gettop(L), "key", fname);
      if (sni[n].cert == NULL)
        luaL_error(L, "%s: sni[\"%s\"] needs a cert", fname, sni[n].name);
      n++;
      lua_pop(L, 1);   /* pop entry, keep name */
    }
    o.sni = sni;
    o.nsni = n;
  }
  if (o.server && o.cert == NULL)
    luaL_error(L, "%s: a TLS server needs cert (and key) PEM files", fname);
  if (o.cert == NULL && o.key != NULL)
    luaL_error(L, "%s: key given without cert", fname);
  box = lua_newuserdatauv(L, NEAP_BOX_SIZE, 0);   /* the context, a tag */
  box[0] = NULL;
  ((const void **)box)[1] = TLSCTX_MT;   /* as a handle's box (neap__box_test) */
  luaL_setmetatable(L, TLSCTX_MT);
  *box = neap__tls_ctx_new(&o, err, sizeof err);
  if (*box == NULL) luaL_error(L, "%s: %s", fname, err);
  return 1;
}

/* ====================================================== sending records */

/*
** Sends the engine's output (records, alerts, close_notify): what the
** kernel takes at once, then the rest, the buffer itself handed to libuv
** (no copy; a fresh one takes its place). 'plain' plaintext bytes leave
** the write queue's count when the records are sent.
*/
static int tls_send (neap_stream *s, size_t plain) {
  neap_buf *out = neap__tls_out(neap__stls(s));
  size_t len = neap__buf_len(out);
  uv_buf_t b;
  int r;
  if (len > 0 && s->nwrites == 0) {
    b = uv_buf_init((char *)neap__buf_data(out), (unsigned)len);
    r = uv_try_write(&neap__su(s)->stream, &b, 1);
    if (r > 0) {
      neap__buf_consume(out, (size_t)r);
      len -= (size_t)r;
    }
    else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) {
      s->queued -= plain;
      return s->werr = r;
    }
  }
  if (len == 0) {
    s->queued -= plain;
    return 0;
  }
  r = neap__stream_write_owned(s, out, plain);
  if (r < 0) s->werr = r;
  return r;
}

/* The largest record's plaintext: small writes of a turn are joined up to this. */
#define TLS_RECORD 16384

/*
** Encrypts the gathered writes of 's' and sends them (from flush_pending).
** Each SSL_write makes at least one record, so the small strings of a turn
** ("echo: ", line, "\n") are joined into one record first, as Node's
** TLSWrap joins a writev's buffers; a string of a full record or more is
** encrypted from where it is.
*/
void neap__tls_flush_pending (neap_stream *s) {
  size_t plain = s->pending, used = 0;
  char join[TLS_RECORD];
  int i;
  if (!neap__tls_done(neap__stls(s))) return;   /* after the handshake */
  for (i = 0; i < s->npb && !s->werr; i++) {
    const char *p = s->pbufs[i].base;
    size_t n = s->pbufs[i].len;
    if (used + n <= TLS_RECORD && n < TLS_RECORD) {
      memcpy(join + used, p, n);
      used += n;
      continue;
    }
    if (used > 0 && neap__tls_write(neap__stls(s), join, used) != NEAP_TLS_OK) {
      s->werr = NEAP_ETLS;
      break;
    }
    used = 0;
    if (n < TLS_RECORD) {
      memcpy(join, p, n);
      used = n;
    }
    else if (neap__tls_write(neap__stls(s), p, n) != NEAP_TLS_OK)
      s->werr = NEAP_ETLS;
  }
  if (used > 0 && !s->werr && neap__tls_write(neap__stls(s), join, used) != NEAP_TLS_OK)
    s->werr = NEAP_ETLS;
  /* the records hold the bytes now: the strings may go */
  neap__stream_release_pending(s);
  if (s->werr) {
    s->queued -= plain;
    neap__stream_wake_writer(s);
    return;
  }
  tls_send(s, plain);
  neap__stream_wake_writer(s);   /* the queue went down (or failed) */
}

/* s:shutdown() of a TLS stream: close_notify goes before the FIN. */
void neap__tls_shutdown_stream (neap_stream *s) {
  if (!neap__tls_done(neap__stls(s)) || s->werr) return;
  if (neap__tls_shutdown(neap__stls(s)) == NEAP_TLS_OK) tls_send(s, 0);
}

/* ====================================================== the handshake */

static int push_true (lua_State *L, void *ud) {
  (void)ud;
  lua_pushboolean(L, 1);
  return 1;
}

static int push_tls_error (lua_State *L, void *ud) {
  neap_stream *s = ud;
  lua_pushnil(L);
  lua_pushstring(L, neap__tls_error(neap__stls(s)));
  lua_pushliteral(L, "ETLS");
  return 3;
}

/* Wakes the task waiting for the handshake: true, or the error. */
static void hs_wake (neap_stream *s, int ok) {
  neap_task *t = s->x->hs_waiter;
  if (t == NULL) return;
  s->x->hs_waiter = NULL;
  neap__stream_ref(s, 0);
  if (ok) neap__sched_wake_with(t, push_true, NULL);
  else if (s->err && s->err != NEAP_ETLS) neap__sched_wake_error(t, s->err);
  else neap__sched_wake_with(t, push_tls_error, s);   /* (the engine says why) */
}

/* Decrypts what has come into the stream buffer's tail. */
static void tls_decrypt (neap_stream *s) {
  size_t n;
  int r;
  neap__stream_take_buf(s);   /* (an emptied buffer was given back: no malloc and regrowth per record) */
  while (!s->eof && !s->err) {
    r = neap__tls_read_buf(neap__stls(s), &s->rb, (size_t)1 << 20, &n);
    if (r == NEAP_TLS_OK) continue;
    if (r == NEAP_TLS_EOF) s->eof = 1;   /* close_notify, or an end without it */
    else if (r == NEAP_TLS_ERROR) s->err = NEAP_ETLS;
    break;
  }
  if (neap__buf_len(neap__tls_out(neap__stls(s))) > 0 && !s->werr) tls_send(s, 0);
}

/* One step of the handshake; the waiting task is told when it ends. */
static void hs_step (neap_stream *s) {
  int r = neap__tls_handshake(neap__stls(s));
  if (neap__buf_len(neap__tls_out(neap__stls(s))) > 0 && !s->werr) tls_send(s, 0);
  if (r == NEAP_TLS_OK) {
    s->x->tls_hs = 0;
    hs_wake(s, 1);
    if (s->npb > 0) neap__stream_mark_dirty(s);   /* writes made meanwhile */
    tls_decrypt(s);   /* application data that came with the last flight */
  }
  else if (r == NEAP_TLS_ERROR) {
    s->err = NEAP_ETLS;
    hs_wake(s, 0);
  }
  else if (s->eof || s->err) {   /* the peer went before the end */
    if (!s->err) s->err = NEAP_ETLS;
    hs_wake(s, 0);
  }
}

/*
** The read callback's part for a TLS stream: 'nread' ciphertext bytes were
** committed to the engine's input (or the end, or an error, came).
*/
void neap__tls_input (neap_stream *s, ssize_t nread) {
  if (nread == UV_EOF) neap__tls_input_end(neap__stls(s));
  else if (nread < 0) s->err = (int)nread;
  if (s->x->tls_hs) {
    if (nread == UV_EOF) s->eof = 1;
    hs_step(s);
  }
  else if (nread < 0 && nread != UV_EOF) return;   /* a socket error */
  else tls_decrypt(s);
}

static void hs_unpark (neap_task *t) {
  neap_stream *s = t->parked_on;
  if (s->x->hs_waiter == t) {
    s->x->hs_waiter = NULL;
    neap__stream_ref(s, 0);
  }
}

/*
** s:_starttls(context, servername, session, timeout) -> true | nil, msg,
** code: makes 's' a TLS stream and waits for the handshake. Bytes already
** in the buffer go to the handshake first; writes queued before it are
** sent in plaintext first.
*/
static int stream_starttls (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  neap_tls_ctx *ctx = ctx_check(L, 2);
  const char *name = luaL_optstring(L, 3, NULL);
  size_t slen = 0;
  const char *session = luaL_optlstring(L, 4, NULL, &slen);
  double timeout = neap__opt_seconds(L, 5, "starttls");
  char err[256];
  neap_task *t;
  size_t have;
  if (s->kind != NEAP_S_TCP && s->kind != NEAP_S_PIPE)
    return luaL_error(L, "starttls: a TLS stream needs a socket or a pipe");
  if (neap__stls(s)) return luaL_error(L, "starttls: the stream is already TLS");
  if (s->cb_owned || s->reader)
    return luaL_error(L, "starttls: another task is reading this stream");
  t = neap__sched_check(L, "starttls");
  neap__stream_undirty(s);
  neap__stream_flush_pending(s);   /* plaintext written before goes first */
  if (s->werr) return neap__push_error(L, s->werr);
  if (neap__stream_x(s) == NULL) return luaL_error(L, "out of memory");
  s->x->tls = neap__tls_new(ctx, name, session, slen, err, sizeof err);
  if (s->x->tls == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, "ETLS");
    return 3;
  }
  s->x->tls_hs = 1;
  have = neap__buf_len(&s->rb);
  if (have > 0) {   /* read already, but the handshake's: hand them over */
    size_t avail;
    char *p = neap__buf_reserve(neap__tls_in(neap__stls(s)), have, &avail);
    if (p == NULL) return luaL_error(L, "starttls: out of memory");
    memcpy(p, neap__buf_data(&s->rb), have);
    neap__buf_commit(neap__tls_in(neap__stls(s)), have);
    neap__buf_consume(&s->rb, have);
  }
  hs_step(s);
  if (!s->x->tls_hs) {   /* done (or failed) already */
    if (s->err) return push_tls_error(L, s);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->err) return push_tls_error(L, s);
  s->x->hs_waiter = t;
  s->started_reading = 1;
  neap__stream_ref(s, 1);
  neap__stream_flow(s);
  return neap__sched_park(L, t, timeout, hs_unpark, s);
}

/* ====================================================== information */

static void set_str (lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* s:tls() -> { version, cipher, alpn, servername, resumed, session, peer } | nil */
static int stream_tls (lua_State *L) {
  neap_stream *s = neap__stream_check(L, 1);
  neap_tls_peer peer;
  const char *alpn;
  size_t len;
  unsigned char *sess;
  if (neap__stls(s) == NULL || s->x->tls_hs) return 0;
  lua_createtable(L, 0, 7);
  set_str(L, "version", neap__tls_version(neap__stls(s)));
  set_str(L, "cipher", neap__tls_cipher(neap__stls(s)));
  if ((alpn = neap__tls_alpn(neap__stls(s), &len)) != NULL) {
    lua_pushlstring(L, alpn, len);
    lua_setfield(L, -2, "alpn");
  }
  set_str(L, "servername", neap__tls_servername(neap__stls(s)));
  lua_pushboolean(L, neap__tls_resumed(neap__stls(s)));
  lua_setfield(L, -2, "resumed");
  if ((sess = neap__tls_session(neap__stls(s), &len)) != NULL) {
    lua_pushlstring(L, (const char *)sess, len);
    free(sess);
    lua_setfield(L, -2, "session");
  }
  if (neap__tls_peer(neap__stls(s), &peer) == 0) {
    int i;
    lua_createtable(L, 0, 6);
    set_str(L, "subject", peer.subject);
    set_str(L, "issuer", peer.issuer);
    lua_pushinteger(L, (lua_Integer)peer.not_before);
    lua_setfield(L, -2, "not_before");
    lua_pushinteger(L, (lua_Integer)peer.not_after);
    lua_setfield(L, -2, "not_after");
    set_str(L, "fingerprint", peer.fingerprint);
    lua_createtable(L, peer.naltnames, 0);
    for (i = 0; i < peer.naltnames; i++) {
      lua_pushstring(L, peer.altnames[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "altnames");
    neap__tls_peer_free(&peer);
    lua_setfield(L, -2, "peer");
  }
  return 1;
}

/* The message of a stream's error 'err' (a TLS failure has its own words). */
int neap__tls_push_error (lua_State *L, neap_stream *s) {
  return push_tls_error(L, s);
}

/* The stream methods of this file, installed by stream.c. */
const luaL_Reg neap__tls_stream_meth[] = {
  {"_starttls", stream_starttls},
  {"tls", stream_tls},
  {NULL, NULL}
};

int neap__tlsstream_open (lua_State *L) {
  static const luaL_Reg ctxmeta[] = {
    {"__gc", ctx_gc},
    {NULL, NULL}
  };
  luaL_newmetatable(L, TLSCTX_MT);
  luaL_setfuncs(L, ctxmeta, 0);
  lua_pop(L, 1);   /* pop metatable */
  lua_pushcfunction(L, tls_context);
  lua_setfield(L, -2, "tls_context");
  return 0;
}
