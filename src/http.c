/* SPDX-License-Identifier: MIT */
/*
** HTTP/1.x message parsing for neap.http: llhttp (Node's parser, built from
** Debian's node-llhttp sources) run over the bytes of a stream's buffer, or
** of a neap.buffer, in place. A parser object keeps llhttp's state and the
** spans of the head being read; nothing is copied until the head's strings
** and the body's chunks are made for Lua. No I/O here: the Lua layer waits.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include <llhttp.h>

#include "neapi.h"

#define HTTP_MT "neap.http_parser"

enum { SP_FIELD, SP_VALUE, SP_BODY };

typedef struct hspan {
  int kind;
  size_t off, len;   /* in the buffer, from its head */
} hspan;

enum { MODE_HEAD, MODE_BODY, MODE_DEAD,
       MODE_BUSY };   /* head or body is pushing its results (which may run finalizers) */

typedef struct http_parser {
  llhttp_t p;              /* first: the callbacks cast it back */
  int mode;
  const char *base;        /* the buffer's data during an execute */
  size_t fed;              /* head bytes already given to llhttp */
  hspan *sp;               /* header fields and values, or body pieces */
  size_t nsp, capsp;
  size_t url_off, url_len, st_off, st_len;
  int in_field;            /* a header name is being read */
  int oom;
  int no_body;             /* p:head's no_body: the response to a HEAD */
  size_t got;              /* body bytes of this body() call */
  /* taken at the end of the head */
  int has_body, keep_alive, upgrade, major, minor, method, status;
  uint64_t length;
  int chunked;
  const char *tag;         /* HTTP_MT's address (neap__udata_test; llhttp_t stays first) */
} http_parser;

/* ====================================================== llhttp callbacks */

static int add_span (http_parser *h, int kind, const char *at, size_t n) {
  size_t off = (size_t)(at - h->base);
  if (h->nsp > 0) {
    hspan *last = &h->sp[h->nsp - 1];
    if (last->kind == kind && (kind != SP_FIELD || h->in_field) &&
        (last->len == 0 || last->off + last->len == off)) {
      if (last->len == 0) last->off = off;
      last->len += n;   /* a span split across two reads */
      return 0;
    }
  }
  if (kind == SP_VALUE && h->nsp > 0 && h->sp[h->nsp - 1].kind == SP_VALUE) {
    /* a value in two pieces that do not touch: an obsolete line folding
    ** (RFC 9112 5.2 lets a server refuse it with 400) */
    llhttp_set_error_reason(&h->p, "Obsolete line folding in a header");
    return HPE_USER;
  }
  if (h->nsp == h->capsp) {
    size_t cap = h->capsp ? h->capsp * 2 : 32;
    hspan *sp = realloc(h->sp, cap * sizeof *sp);
    if (sp == NULL) {
      h->oom = 1;
      return HPE_USER;
    }
    h->sp = sp;
    h->capsp = cap;
  }
  h->sp[h->nsp].kind = kind;
  h->sp[h->nsp].off = off;
  h->sp[h->nsp].len = n;
  h->nsp++;
  return 0;
}

static int on_url (llhttp_t *p, const char *at, size_t n) {
  http_parser *h = (http_parser *)p;
  size_t off = (size_t)(at - h->base);
  if (h->url_len == 0) h->url_off = off;
  h->url_len = off + n - h->url_off;
  return 0;
}

static int on_status (llhttp_t *p, const char *at, size_t n) {
  http_parser *h = (http_parser *)p;
  size_t off = (size_t)(at - h->base);
  if (h->st_len == 0) h->st_off = off;
  h->st_len = off + n - h->st_off;
  return 0;
}

static int on_field (llhttp_t *p, const char *at, size_t n) {
  http_parser *h = (http_parser *)p;
  int r;
  if (h->mode != MODE_HEAD) return 0;   /* chunked trailers: ignored */
  if (p->type == HTTP_REQUEST && memchr(at, ' ', n) != NULL) {
    /* llhttp (not built strict) lets a blank into a name: "Host : x" is
    ** then a header "host " (RFC 9112 5.1: a server must answer 400) */
    llhttp_set_error_reason(p, "Invalid header field char");
    return HPE_USER;
  }
  r = add_span(h, SP_FIELD, at, n);
  h->in_field = 1;
  return r;
}

static int on_field_complete (llhttp_t *p) {
  http_parser *h = (http_parser *)p;
  if (h->mode != MODE_HEAD) return 0;
  h->in_field = 0;
  return add_span(h, SP_VALUE, h->base, 0);   /* its value, maybe empty */
}

static int on_value (llhttp_t *p, const char *at, size_t n) {
  http_parser *h = (http_parser *)p;
  if (h->mode != MODE_HEAD) return 0;
  return add_span(h, SP_VALUE, at, n);
}

static int on_headers_complete (llhttp_t *p) {
  http_parser *h = (http_parser *)p;
  if (h->mode != MODE_HEAD) return 0;
  if (p->type == HTTP_RESPONSE && (h->no_body || p->status_code / 100 == 1 ||
      p->status_code == 204 || p->status_code == 304)) {
    /* no body whatever the headers say (RFC 9112 6.3): llhttp is told so
    ** by returning 1, as Node's client does for HEAD and 304 */
    h->chunked = 0;
    h->length = 0;
    h->has_body = 0;
    p->flags |= F_SKIPBODY;   /* (what returning 1 sets; keep-alive needs it) */
    h->keep_alive = llhttp_should_keep_alive(p);
    h->upgrade = p->upgrade;
    h->major = p->http_major;
    h->minor = p->http_minor;
    h->status = p->status_code;
    return 1;
  }
  h->chunked = (p->flags & F_CHUNKED) != 0;
  h->length = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
  h->has_body = h->chunked || h->length > 0 ||
                (p->type == HTTP_RESPONSE && llhttp_message_needs_eof(p));
  h->keep_alive = llhttp_should_keep_alive(p);
  h->upgrade = p->upgrade;
  h->major = p->http_major;
  h->minor = p->http_minor;
  h->method = p->method;
  h->status = p->status_code;
  /* pause here when a body follows (body() reads it); else at the end */
  return h->has_body ? HPE_PAUSED : 0;
}

static int on_body (llhttp_t *p, const char *at, size_t n) {
  http_parser *h = (http_parser *)p;
  h->got += n;
  return add_span(h, SP_BODY, at, n);
}

static int on_message_complete (llhttp_t *p) {
  (void)p;
  return HPE_PAUSED;   /* a pipelined request waits for the next head() */
}

static const llhttp_settings_t settings = {
  .on_url = on_url,
  .on_status = on_status,
  .on_header_field = on_field,
  .on_header_value = on_value,
  .on_header_field_complete = on_field_complete,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* ====================================================== the source */

/*
** The bytes 'p:head' and 'p:body' parse: a stream's buffer (read in
** place; the stream must have no parked reader) or a neap.buffer's. NULL
** with 'closed' set: a closed stream.
*/
static neap_buf *source (lua_State *L, int idx, neap_stream **sp,
                         const char *fname) {
  neap_buf *b;
  neap_stream *s;
  *sp = NULL;
  if (!neap__is_stream(L, idx)) {   /* (the stream first: the server's case) */
    b = neap__bufobj_test(L, idx);
    if (b != NULL) return b;
    luaL_error(L, "bad argument #%d to '%s' (stream or buffer expected, got %s)",
               idx - 1, fname, luaL_typename(L, idx));
  }
  s = neap__stream_check_io(L, idx);
  if (s == NULL) return NULL;
  if (s->reader != NULL || s->cb_owned)
    luaL_error(L, "%s: another task is already reading this stream", fname);
  *sp = s;
  return &s->rb;
}

/* Consumes 'n' bytes of 'b'; an emptied stream buffer is given back. */
static void consume (neap_stream *s, neap_buf *b, size_t n) {
  neap__buf_consume(b, n);
  if (s != NULL) {
    if (neap__buf_len(b) == 0 && !neap__stream_fs_busy(s))
      neap__stream_release_buf(s);   /* an idle keep-alive connection holds no buffer */
    neap__stream_flow(s);
  }
}

static http_parser *check (lua_State *L) {
  return neap__udata_check(L, 1, http_parser, HTTP_MT);
}

/* Pushes nil, llhttp's reason, "EPROTO"; the parser is dead after it. */
static int push_perror (lua_State *L, http_parser *h, llhttp_errno_t r) {
  h->mode = MODE_DEAD;
  lua_pushnil(L);
  if (h->oom) {
    lua_pushliteral(L, "not enough memory");
    lua_pushliteral(L, "ENOMEM");
    return 3;
  }
  lua_pushstring(L, llhttp_get_error_reason(&h->p) ? llhttp_get_error_reason(&h->p)
                                                   : llhttp_errno_name(r));
  lua_pushliteral(L, "EPROTO");
  return 3;
}

/* ====================================================== the head */

/* Pushes the name lower-cased (a short one through the C stack). */
static void push_lower (lua_State *L, const char *p, size_t n) {
  size_t i;
  if (n <= 64) {
    char d[64];
    for (i = 0; i < n; i++) d[i] = (char)tolower((unsigned char)p[i]);
    lua_pushlstring(L, d, n);
  }
  else {
    luaL_Buffer B;
    char *d = luaL_buffinitsize(L, &B, n);
    for (i = 0; i < n; i++) d[i] = (char)tolower((unsigned char)p[i]);
    luaL_pushresultsize(&B, n);
  }
}

/*
** Pushes the headers table: lower-case names; a repeated header's values
** joined with ", ", set-cookie's kept as a list. Trailing blanks of a value
** are dropped. The values of a repeated header are gathered in a list of
** their own first and joined once at the end (joining as they come copies
** the growing string for each: quadratic in a head of many repeats).
*/
static void push_headers (lua_State *L, http_parser *h, const char *data) {
  size_t i;
  int reps = 0;   /* the stack index of the table name -> list of values, once made */
  lua_createtable(L, 0, (int)(h->nsp / 2));
  for (i = 0; i + 1 < h->nsp; i += 2) {
    const hspan *f = &h->sp[i], *v = &h->sp[i + 1];
    const char *vp = data + v->off;
    size_t vn = v->len;
    int cookie;
    while (vn > 0 && (vp[vn - 1] == ' ' || vp[vn - 1] == '\t')) vn--;
    push_lower(L, data + f->off, f->len);                 /* name */
    cookie = f->len == 10 && strcmp(lua_tostring(L, -1), "set-cookie") == 0;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, reps ? -4 : -3) == LUA_TNIL) {      /* first one */
      lua_pop(L, 1);
      if (cookie) {
        lua_createtable(L, 1, 0);
        lua_pushlstring(L, vp, vn);
        lua_rawseti(L, -2, 1);
      }
      else lua_pushlstring(L, vp, vn);
      lua_rawset(L, reps ? -4 : -3);
    }
    else if (cookie) {                                    /* name, list */
      lua_pushlstring(L, vp, vn);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 2);
    }
    else {                                                /* name, first value */
      if (!reps) {
        lua_newtable(L);
        lua_insert(L, -3);
        reps = lua_gettop(L) - 2;
      }
      lua_pushvalue(L, -2);
      if (lua_rawget(L, reps) == LUA_TNIL) {              /* the second one */
        lua_pop(L, 1);
        lua_createtable(L, 4, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);                            /* name, list */
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, reps);
      }
      else lua_remove(L, -2);                             /* name, list */
      lua_pushlstring(L, vp, vn);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 2);
    }
  }
  if (reps) {   /* headers, reps: join each list with ", " */
    lua_pushnil(L);
    while (lua_next(L, reps) != 0) {                      /* name, list */
      luaL_Buffer B;
      lua_Integer k, n = (lua_Integer)lua_rawlen(L, -1);
      lua_pushvalue(L, -2);                               /* name, list, name */
      luaL_buffinit(L, &B);
      for (k = 1; k <= n; k++) {
        if (k > 1) luaL_addlstring(&B, ", ", 2);
        lua_rawgeti(L, reps + 2, k);   /* (list is at reps + 2 before the buffer) */
        luaL_addvalue(&B);
      }
      luaL_pushresult(&B);                                /* name, list, name, joined */
      lua_rawset(L, reps - 1);
      lua_pop(L, 1);                                      /* name */
    }
    lua_pop(L, 1);
  }
}

static void setint (lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void setbool (lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* Pushes the head's table; 'data' is the buffer the spans point into. */
/*
** The request form (a request parser given a metatable 'mt'): the table is
** the server's request itself, with that metatable; for a path and a query
** it has 'path' and 'query' (the target split at its first "?"), and the
** framing is in '_body', '_length' and '_upgrade' (not to hide methods of
** the request such as req:body), with no 'size'.
*/
/*
** The fields both head forms share, into the table on top: version,
** headers, keep_alive, and the framing under the names given (the request
** form hides them as _upgrade, _body, _length).
*/
static void push_framing (lua_State *L, http_parser *h, const char *data,
                          const char *k_upgrade, const char *k_body,
                          const char *k_length) {
  char ver[3];
  ver[0] = (char)('0' + h->major % 10);
  ver[1] = '.';
  ver[2] = (char)('0' + h->minor % 10);
  lua_pushlstring(L, ver, 3);
  lua_setfield(L, -2, "version");
  push_headers(L, h, data);
  lua_setfield(L, -2, "headers");
  setbool(L, "keep_alive", h->keep_alive && !h->upgrade);
  setbool(L, k_upgrade, h->upgrade);
  lua_pushstring(L, !h->has_body ? "none" : h->chunked ? "chunked"
                    : h->length > 0 ? "length" : "eof");
  lua_setfield(L, -2, k_body);
  if (h->has_body && !h->chunked && h->length > 0) {
    if (h->length > (uint64_t)LUA_MAXINTEGER)   /* (up to 2^64-1): a float, not a negative */
      lua_pushnumber(L, (lua_Number)h->length);
    else lua_pushinteger(L, (lua_Integer)h->length);
    lua_setfield(L, -2, k_length);
  }
}

static void push_request (lua_State *L, http_parser *h, const char *data,
                          int mt) {
  const char *t = data + h->url_off, *q;
  size_t tn = h->url_len;
  lua_createtable(L, 0, 12);
  lua_pushvalue(L, mt);
  lua_setmetatable(L, -2);
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)h->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, t, tn);
  q = memchr(t, '?', tn);
  if (q == NULL) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "path");
  }
  else {
    lua_pushlstring(L, t, (size_t)(q - t));
    lua_setfield(L, -3, "path");
    lua_pushlstring(L, q + 1, tn - (size_t)(q - t) - 1);
    lua_setfield(L, -3, "query");
  }
  lua_setfield(L, -2, "target");
  push_framing(L, h, data, "_upgrade", "_body", "_length");
}

static void push_head (lua_State *L, http_parser *h, const char *data,
                       size_t size) {
  lua_createtable(L, 0, 12);
  if (h->p.type == HTTP_REQUEST) {
    lua_pushstring(L, llhttp_method_name((llhttp_method_t)h->method));
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, data + h->url_off, h->url_len);
    lua_setfield(L, -2, "target");
  }
  else {
    setint(L, "status", h->status);
    lua_pushlstring(L, data + h->st_off, h->st_len);
    lua_setfield(L, -2, "reason");
  }
  push_framing(L, h, data, "upgrade", "body", "length");
  setint(L, "size", (lua_Integer)size);
}

/*
** p:head(src, max_header [, no_body | mt]) -> head | nil, "more", "more" |
** nil, msg, code: runs llhttp over the bytes of 'src' not yet parsed.
** 'no_body' (responses): the request was HEAD, so the response has no
** body whatever its headers say (1xx, 204 and 304 never have one). When the head is
** complete it returns its table and consumes exactly its bytes (and, for a
** message with no body, the end of the message). Until then it consumes
** nothing and says "more". Errors: nil, "header too large", "E2BIG" (the
** head is over max_header bytes), nil, llhttp's reason, "EPROTO". Given a
** metatable 'mt', a request parser returns the request form (push_request).
*/
static int http_head (lua_State *L) {
  http_parser *h = check(L);
  lua_Integer max = luaL_optinteger(L, 3, 16 * 1024);
  int mt = !lua_isnoneornil(L, 4) && h->p.type == HTTP_REQUEST;
  neap_stream *s;
  neap_buf *b;
  const char *data;
  size_t len, end;
  llhttp_errno_t r;
  if (mt) luaL_checktype(L, 4, LUA_TTABLE);
  b = source(L, 2, &s, "head");
  h->no_body = h->p.type == HTTP_RESPONSE && lua_toboolean(L, 4);
  if (b == NULL) return neap__push_closed(L);
  if (h->mode == MODE_BUSY)
    return luaL_error(L, "head: the parser is in use (by a finalizer?)");
  if (h->mode == MODE_BODY)
    return luaL_error(L, "head: the body of the last message was not read");
  if (h->mode == MODE_DEAD)
    return luaL_error(L, "head: the parser failed; use a new one");
  data = neap__buf_data(b);
  len = neap__buf_len(b);
  if (len < h->fed)
    return luaL_error(L, "head: the buffer was consumed during a head");
  if (len == h->fed) goto more;
  h->base = data;
  r = llhttp_execute(&h->p, data + h->fed, len - h->fed);
  if (r == HPE_OK) {
    h->fed = len;
    goto more;
  }
  if (r != HPE_PAUSED && r != HPE_PAUSED_UPGRADE) return push_perror(L, h, r);
  end = (size_t)(llhttp_get_error_pos(&h->p) - data);
  if (r == HPE_PAUSED) llhttp_resume(&h->p);
  else llhttp_resume_after_upgrade(&h->p);
  if (max > 0 && end > (size_t)max) goto toolarge;
  {
    /* The pushes run the collector, whose finalizers may feed, read or
    ** close 'b' or use this parser: they work on a snapshot (the parser's
    ** fields, and its spans and the head's bytes copied into one userdata
    ** made before anything is read), and the parser moves on, and 'b' is
    ** consumed, only after them and only if no one read 'b' meanwhile. */
    uint64_t c0 = b->consumed;
    size_t spn = h->nsp * sizeof(hspan);
    char *mem;
    h->mode = MODE_BUSY;   /* (a finalizer's head or body raises; a memory
                           ** error below leaves the parser unusable) */
    mem = lua_newuserdatauv(L, spn + end, 0);
    http_parser snap;
    int top = lua_gettop(L);
    if (b->consumed != c0 || b->base == NULL) {   /* (the parser is busy: only 'b') */
      h->mode = MODE_DEAD;
      return luaL_error(L, "head: the parser or its source was used meanwhile (by a finalizer?)");
    }
    data = neap__buf_data(b);   /* (a feed may have moved the bytes) */
    if (spn > 0) memcpy(mem, h->sp, spn);   /* (h->sp is NULL when there are none) */
    memcpy(mem + spn, data, end);
    snap = *h;
    snap.sp = (hspan *)(void *)mem;
    if (mt) push_request(L, &snap, mem + spn, 4);
    else push_head(L, &snap, mem + spn, end);
    lua_remove(L, top);   /* the snapshot */
    if (b->consumed != c0) {
      h->mode = MODE_DEAD;
      return luaL_error(L, "head: the source was read meanwhile (by a finalizer?); "
                        "its bytes went to that read");
    }
    h->nsp = 0;
    h->url_len = h->st_len = 0;
    h->fed = 0;
    h->mode = h->has_body ? MODE_BODY : MODE_HEAD;
    if (b->base != NULL) consume(s, b, end);   /* (else closed meanwhile) */
    return 1;
  }
more:
  if (max > 0 && h->fed > (size_t)max) goto toolarge;
  return neap__push_fail(L, "more");
toolarge:
  h->mode = MODE_DEAD;
  lua_pushnil(L);
  lua_pushliteral(L, "header too large");
  lua_pushliteral(L, "E2BIG");
  return 3;
}

/* ====================================================== the body */

/*
** p:body(src [, n]) -> data, done | nil, msg, code: decodes the body
** bytes buffered in 'src' (content-length or chunked), at most 'n' (default
** 64 KiB), and consumes what it parsed. 'data' may be "" (more must come
** first); 'done' is true once the message is complete, and then the bytes
** after it are left for the next head().
*/
static int http_body (lua_State *L) {
  http_parser *h = check(L);
  lua_Integer n = luaL_optinteger(L, 3, 64 * 1024);
  neap_stream *s;
  neap_buf *b = source(L, 2, &s, "body");
  const char *data;
  size_t len, used, got, i;
  uint64_t c0body;
  int done = 0;
  llhttp_errno_t r;
  luaL_argcheck(L, n > 0, 3, "size must be positive");
  if (b == NULL) return neap__push_closed(L);
  if (h->mode == MODE_BUSY)
    return luaL_error(L, "body: the parser is in use (by a finalizer?)");
  if (h->mode == MODE_DEAD)
    return luaL_error(L, "body: the parser failed; use a new one");
  if (h->mode != MODE_BODY) {   /* no body, or all read */
    lua_pushliteral(L, "");
    lua_pushboolean(L, 1);
    return 2;
  }
  data = neap__buf_data(b);
  len = neap__buf_len(b);
  c0body = b->consumed;
  h->nsp = 0;
  h->got = 0;
  h->base = data;
  used = got = 0;
  /* the body is never longer than its encoding: feeding at most the bytes
  ** still wanted never gives more than 'n' */
  while (!done && used < len && got < (size_t)n) {
    size_t feed = len - used;
    if (feed > (size_t)n - got) feed = (size_t)n - got;
    r = llhttp_execute(&h->p, data + used, feed);
    if (r == HPE_OK) used += feed;
    else if (r == HPE_PAUSED || r == HPE_PAUSED_UPGRADE) {
      used = (size_t)(llhttp_get_error_pos(&h->p) - data);
      if (r == HPE_PAUSED) llhttp_resume(&h->p);
      else llhttp_resume_after_upgrade(&h->p);
      done = 1;
    }
    else return push_perror(L, h, r);
    got = h->got;
  }
  /* (the push runs the collector, whose finalizers may feed, read or
  ** close 'b' or use this parser: the pieces are copied before it, the
  ** parser is busy meanwhile, and 'b' is consumed only if no one read it) */
  h->mode = MODE_BUSY;
  if (h->nsp == 0) lua_pushliteral(L, "");
  else if (h->nsp == 1) lua_pushlstring(L, data + h->sp[0].off, h->sp[0].len);
  else {
    size_t total = 0;
    char *mem;
    for (i = 0; i < h->nsp; i++) total += h->sp[i].len;
    mem = lua_newuserdatauv(L, total, 0);   /* (made before anything is read) */
    if (b->consumed != c0body || b->base == NULL) {   /* (the parser is busy: only 'b') */
      h->mode = MODE_DEAD;
      return luaL_error(L, "body: the parser or its source was used meanwhile (by a finalizer?)");
    }
    data = neap__buf_data(b);   /* (a feed may have moved the bytes) */
    for (i = 0, total = 0; i < h->nsp; i++) {
      memcpy(mem + total, data + h->sp[i].off, h->sp[i].len);
      total += h->sp[i].len;
    }
    h->nsp = 0;
    lua_pushlstring(L, mem, total);
    lua_remove(L, -2);   /* the copy */
  }
  h->nsp = 0;
  if (b->consumed != c0body) {
    h->mode = MODE_DEAD;
    return luaL_error(L, "body: the source was read meanwhile (by a finalizer?); "
                      "its bytes went to that read");
  }
  h->mode = done ? MODE_HEAD : MODE_BODY;
  lua_pushboolean(L, done);
  if (b->base != NULL) consume(s, b, used);   /* (else closed meanwhile) */
  return 2;
}

/*
** p:finish() -> true | nil, msg, code: the input ended; for a body that
** runs to the end of the connection (a response with no length) this
** completes the message, for anything else it is an error.
*/
static int http_finish (lua_State *L) {
  http_parser *h = check(L);
  llhttp_errno_t r;
  if (h->mode == MODE_BUSY)
    return luaL_error(L, "finish: the parser is in use (by a finalizer?)");
  r = llhttp_finish(&h->p);
  if (r != HPE_OK && r != HPE_PAUSED) return push_perror(L, h, r);
  if (h->mode == MODE_BODY) h->mode = MODE_HEAD;
  lua_pushboolean(L, 1);
  return 1;
}

static int http_gc (lua_State *L) {
  http_parser *h = neap__udata_test(L, 1, http_parser, HTTP_MT);
  if (h == NULL) return 0;   /* (not ours: given our metatable) */
  free(h->sp);
  h->sp = NULL;
  h->nsp = h->capsp = 0;
  return 0;
}

/* ====================================================== responses */

/*
** core.http_response(status, reason, headers, list, length, date, flags)
**   -> head, chunked, close, content_length | nil, argpos, what
** Builds a response head in one string: the status line, the handler's
** headers ('headers', a table of name = value, or 'list', an array of
** name, value, name, value ... from res:header), then what the server adds:
** Content-Length (when 'length' is given and the handler set none),
** Date, Transfer-Encoding: chunked and Connection. Checks every name and
** value; a bad one gives nil, the argument position (1: a name, 2: a
** value) and the name or the message, for the Lua layer's error.
** flags: RF_BODYLESS (HEAD, or a status with no body), RF_NOBODY (1xx, 204,
** 304: no Content-Length either), RF_CLOSE (the connection closes after
** this response), RF_HTTP11 (chunked framing is possible), RF_HTTP10
** (Connection: keep-alive when the connection stays).
*/
#define RF_BODYLESS 1
#define RF_NOBODY 2
#define RF_CLOSE 4
#define RF_HTTP11 8
#define RF_HTTP10 16

enum { HK_OTHER, HK_CL, HK_TE, HK_DATE, HK_CONN };

typedef struct rscan {
  int flags;
  int has_cl, has_date, has_conn, close;
  int cl_set;          /* cl holds the Content-Length's value */
  lua_Integer cl;
  int errpos;          /* 1 or 2 after a bad name or value */
  const char *errmsg;  /* for a value; NULL: the name (at the top) */
} rscan;

static int lower_eq (const char *p, size_t n, const char *lit, size_t ln) {
  size_t i;
  if (n != ln) return 0;
  for (i = 0; i < n; i++)
    if ((char)tolower((unsigned char)p[i]) != lit[i]) return 0;
  return 1;
}

static int header_kind (const char *p, size_t n) {
  switch (n) {
    case 4: return lower_eq(p, n, "date", 4) ? HK_DATE : HK_OTHER;
    case 10: return lower_eq(p, n, "connection", 10) ? HK_CONN : HK_OTHER;
    case 14: return lower_eq(p, n, "content-length", 14) ? HK_CL : HK_OTHER;
    case 17: return lower_eq(p, n, "transfer-encoding", 17) ? HK_TE : HK_OTHER;
    default: return HK_OTHER;
  }
}

static int name_ok (const char *p, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];   /* a token (RFC 9110 5.6.2) */
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL))) return 0;
  }
  return 1;
}

static int value_ok (const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = p[i];
    if (c == '\r' || c == '\n' || c == '\0') return 0;
  }
  return 1;
}

static size_t fmt_int (char *d, lua_Integer v) {   /* as Lua's tostring */
  char tmp[24];
  size_t n = 0, i;
  lua_Unsigned u = v < 0 ? (lua_Unsigned)0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u > 0);
  if (v < 0) tmp[n++] = '-';
  for (i = 0; i < n; i++) d[i] = tmp[n - 1 - i];
  return n;
}

/* The text of the value at 'idx' (a string or a number, written into 'tmp'
** for a number), or NULL for another type. */
static const char *value_text (lua_State *L, int idx, char tmp[48], size_t *n) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tolstring(L, idx, n);
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) *n = fmt_int(tmp, lua_tointeger(L, idx));
      else {
        int k = snprintf(tmp, 40, LUA_NUMBER_FMT, (double)lua_tonumber(L, idx));
        if (k < 0) k = 0;
        if (k > 40) k = 40;
        *n = (size_t)k;
        if (strspn(tmp, "-0123456789") == *n) { tmp[k] = '.'; tmp[k + 1] = '0'; *n += 2; }
      }
      return tmp;
    default: return NULL;
  }
}

/* Appends 's' at '*o' (measures only when 'o' is NULL); returns its size. */
static size_t put (char **o, const char *s, size_t n) {
  if (*o != NULL) {
    memcpy(*o, s, n);
    *o += n;
  }
  return n;
}

/* One header, its name at 'ni' and value at 'vi': checked (when 'o' is
** NULL), classified and written. Returns its bytes, or (size_t)-1. */
static size_t one_header (lua_State *L, int ni, int vi, rscan *st, char **o) {
  size_t nn, vn, total = 0;
  const char *name, *v;
  char tmp[48];
  int kind;
  if (lua_type(L, ni) != LUA_TSTRING) goto badname;
  name = lua_tolstring(L, ni, &nn);
  if (!name_ok(name, nn)) goto badname;
  kind = header_kind(name, nn);
  if (lua_type(L, vi) == LUA_TTABLE) {   /* a list: one line each */
    lua_Integer i, len = (lua_Integer)lua_rawlen(L, vi);
    if (kind == HK_CL) st->has_cl = 1;
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, vi, i);
      v = value_text(L, -1, tmp, &vn);
      if (v == NULL) {
        st->errpos = 2;
        st->errmsg = lua_pushfstring(L, "header value must be a string, number or list, got %s",
                                     luaL_typename(L, -1));
        return (size_t)-1;
      }
      if (!value_ok(v, vn)) goto badvalue;
      if (kind != HK_TE && !(kind == HK_CL && (st->flags & RF_NOBODY))) {
        total += put(o, name, nn) + put(o, ": ", 2) + put(o, v, vn) + put(o, "\r\n", 2);
      }
      lua_pop(L, 1);
    }
    if (kind == HK_DATE) st->has_date = 1;
    if (kind == HK_CONN) st->has_conn = 1;
    return total;
  }
  v = value_text(L, vi, tmp, &vn);
  if (v == NULL) {
    st->errpos = 2;
    st->errmsg = lua_pushfstring(L, "header value must be a string, number or list, got %s",
                                 luaL_typename(L, vi));
    return (size_t)-1;
  }
  if (!value_ok(v, vn)) goto badvalue;
  switch (kind) {
    case HK_TE: return 0;   /* the framing is the server's */
    case HK_DATE: st->has_date = 1; break;
    case HK_CONN: {
      size_t i;
      st->has_conn = 1;
      for (i = 0; i + 5 <= vn; i++)
        if (lower_eq(v + i, 5, "close", 5)) { st->close = 1; break; }
      break;
    }
    case HK_CL: {   /* it is the framing: digits only (an integer >= 0) */
      size_t i;
      lua_Integer x = 0;
      st->has_cl = 1;
      for (i = 0; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (LUA_MAXINTEGER - 9) / 10) {
          st->errpos = 2;
          st->errmsg = "Content-Length must be an integer >= 0";
          return (size_t)-1;
        }
        x = x * 10 + (v[i] - '0');
      }
      if (vn == 0) {
        st->errpos = 2;
        st->errmsg = "Content-Length must be an integer >= 0";
        return (size_t)-1;
      }
      st->cl = x;
      st->cl_set = 1;
      if (st->flags & RF_NOBODY) return 0;
      break;
    }
    default: break;
  }
  return put(o, name, nn) + put(o, ": ", 2) + put(o, v, vn) + put(o, "\r\n", 2);
badname:
  st->errpos = 1;
  st->errmsg = NULL;
  lua_pushvalue(L, ni);
  return (size_t)-1;
badvalue:
  st->errpos = 2;
  st->errmsg = "header value contains CR, LF or NUL";
  return (size_t)-1;
}

/* All the handler's headers (measured when 'o' is NULL), or (size_t)-1. */
static size_t all_headers (lua_State *L, rscan *st, char **o) {
  size_t total = 0, n;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      n = one_header(L, -2, -1, st, o);
      if (n == (size_t)-1) return n;
      total += n;
      lua_pop(L, 1);
    }
  }
  if (lua_type(L, 4) == LUA_TTABLE) {
    lua_Integer i, len = (lua_Integer)lua_rawlen(L, 4);
    for (i = 1; i + 1 <= len; i += 2) {
      lua_rawgeti(L, 4, i);
      lua_rawgeti(L, 4, i + 1);
      n = one_header(L, -2, -1, st, o);
      if (n == (size_t)-1) return n;
      total += n;
      lua_pop(L, 2);
    }
  }
  return total;
}

static int http_response (lua_State *L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  size_t rn, dn, size;
  const char *reason = luaL_checklstring(L, 2, &rn);
  const char *date = luaL_checklstring(L, 6, &dn);
  int flags = (int)luaL_checkinteger(L, 7);
  int haslen = !lua_isnoneornil(L, 5);
  lua_Integer length = haslen ? luaL_checkinteger(L, 5) : 0;
  int chunked = 0, top = lua_gettop(L);
  char num[24], snum[24], *o = NULL, *start;
  size_t numn, cln = 0;
  rscan st;
  luaL_Buffer B;
  memset(&st, 0, sizeof st);
  st.flags = flags;
  size = all_headers(L, &st, &o);
  if (size == (size_t)-1) {
    lua_pushnil(L);
    lua_pushinteger(L, st.errpos);
    if (st.errmsg != NULL) lua_pushstring(L, st.errmsg);
    else lua_pushvalue(L, -3);   /* the bad name */
    return 3;
  }
  lua_settop(L, top);
  if (haslen && st.has_cl && st.cl_set && !(flags & RF_BODYLESS) && length != st.cl) {
    if (length > st.cl) {   /* the rest would be read as the next response */
      lua_pushnil(L);
      lua_pushinteger(L, 3);
      lua_pushfstring(L, "the body (%I bytes) is longer than the Content-Length %I",
                      (LUAI_UACINT)length, (LUAI_UACINT)st.cl);
      return 3;
    }
    flags |= RF_CLOSE;   /* shorter: the client waits for the rest, then sees the close */
  }
  if (haslen && !st.has_cl && !(flags & RF_NOBODY)) {
    cln = fmt_int(num, length);
    size += 16 + cln + 2;
    st.has_cl = st.cl_set = 1;
    st.cl = length;
  }
  if (!(flags & RF_BODYLESS) && !st.has_cl) {
    if (flags & RF_HTTP11) chunked = 1;
    else st.close = 1;   /* HTTP/1.0 with no length: the close ends the body */
  }
  if (flags & RF_CLOSE) st.close = 1;
  numn = fmt_int(snum, status);
  size += 9 + numn + 1 + rn + 2;
  if (!st.has_date) size += 6 + dn + 2;
  if (chunked) size += 28;
  if (st.close ? !st.has_conn : ((flags & RF_HTTP10) && !st.has_conn))
    size += st.close ? 19 : 24;
  size += 2;
  o = start = luaL_buffinitsize(L, &B, size);
  put(&o, "HTTP/1.1 ", 9);
  put(&o, snum, numn);
  put(&o, " ", 1);
  put(&o, reason, rn);
  put(&o, "\r\n", 2);
  memset(&st, 0, sizeof st);   /* (the same values again) */
  st.flags = flags;
  all_headers(L, &st, &o);
  if (haslen && !st.has_cl && !(flags & RF_NOBODY)) {
    put(&o, "Content-Length: ", 16);
    put(&o, num, cln);
    put(&o, "\r\n", 2);
    st.has_cl = st.cl_set = 1;
    st.cl = length;
  }
  if (!(flags & RF_BODYLESS) && !st.has_cl && !(flags & RF_HTTP11)) st.close = 1;
  if (flags & RF_CLOSE) st.close = 1;
  if (!st.has_date) {
    put(&o, "Date: ", 6);
    put(&o, date, dn);
    put(&o, "\r\n", 2);
  }
  if (chunked) put(&o, "Transfer-Encoding: chunked\r\n", 28);
  if (st.close) {
    if (!st.has_conn) put(&o, "Connection: close\r\n", 19);
  }
  else if ((flags & RF_HTTP10) && !st.has_conn) put(&o, "Connection: keep-alive\r\n", 24);
  put(&o, "\r\n", 2);
  luaL_pushresultsize(&B, (size_t)(o - start));
  lua_pushboolean(L, chunked);
  lua_pushboolean(L, st.close);
  if (st.cl_set) lua_pushinteger(L, st.cl);
  else lua_pushnil(L);
  return 4;
}

/* neap.core.http_parser(["request" | "response"]) -> parser */
static int http_new (lua_State *L) {
  static const char *const types[] = {"request", "response", NULL};
  int type = luaL_checkoption(L, 1, "request", types);
  http_parser *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  h->tag = HTTP_MT;
  luaL_setmetatable(L, HTTP_MT);
  llhttp_init(&h->p, type == 0 ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
  h->mode = MODE_HEAD;
  return 1;
}

int neap__http_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"head", http_head},
    {"body", http_body},
    {"finish", http_finish},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__gc", http_gc},
    {NULL, NULL}
  };
  neap__newmeta(L, HTTP_MT, meth, metameth);
  lua_pushcfunction(L, http_new);
  lua_setfield(L, -2, "http_parser");
  lua_pushcfunction(L, http_response);
  lua_setfield(L, -2, "http_response");
  return 0;
}
