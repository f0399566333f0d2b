/* SPDX-License-Identifier: MIT */
/*
** WebSocket framing (RFC 6455) for neap.websocket: a frame reader that
** parses frames straight from a stream's buffer (or a neap.buffer's),
** unmasks a payload in place where it lies and makes the Lua string from
** there (the one copy a Lua string needs), reassembles fragmented messages,
** checks every rule a receiver must check (masking, opcodes, control
** frames, sizes, UTF-8 of text and of close reasons) and says which close
** code a violation calls for. Also the sending side's frame headers and
** masking, the handshake's SHA-1 accept key (OpenSSL) and a UTF-8 check.
** No I/O here: the Lua layer waits for bytes and writes frames.
*/
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "neapi.h"

#define WS_MT "neap.ws_reader"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9,
       OP_PONG = 10 };

typedef struct ws_reader {
  const char *tag;   /* WS_MT's address (neap__udata_test) */
  int masked;        /* frames must be masked (a server reads a client's) */
  int msg_op;        /* the opcode of the fragmented message under way, or 0 */
  size_t max;        /* the largest message */
  char *acc;         /* the fragments of that message, unmasked */
  size_t alen, acap;
  int done;          /* 'acc' holds a whole message not yet given (its
                     ** string could not be made: out of memory) */
} ws_reader;

/* ====================================================== bytes */

/*
** d[i] = s[i] ^ key[i % 4] (d may be s): sixteen bytes at a time with SSE2
** (every x86-64 has it), else eight at a time.
*/
static void xor_mask (unsigned char *d, const unsigned char *s, size_t n,
                      const unsigned char key[4]) {
  uint32_t k4;
  uint64_t k8, w;
  size_t i = 0;
  memcpy(&k4, key, 4);
  k8 = ((uint64_t)k4 << 32) | k4;
#ifdef __SSE2__
  {
    __m128i k16 = _mm_set1_epi32((int)k4);
    for (; i + 64 <= n; i += 64) {
      __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
      __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
      __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
      __m128i e = _mm_loadu_si128((const __m128i *)(s + i + 48));
      _mm_storeu_si128((__m128i *)(d + i), _mm_xor_si128(a, k16));
      _mm_storeu_si128((__m128i *)(d + i + 16), _mm_xor_si128(b, k16));
      _mm_storeu_si128((__m128i *)(d + i + 32), _mm_xor_si128(c, k16));
      _mm_storeu_si128((__m128i *)(d + i + 48), _mm_xor_si128(e, k16));
    }
  }
#endif
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, s + i, 8);
    w ^= k8;
    memcpy(d + i, &w, 8);
  }
  for (; i < n; i++) d[i] = s[i] ^ key[i & 3];
}

/* The length of the run of ASCII at the head of s[0..n), in steps of 64
** (SSE2) or 8 bytes: where the byte-wise check must start. */
static size_t ascii_run (const unsigned char *s, size_t n) {
  size_t i = 0;
  uint64_t w;
#ifdef __SSE2__
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
    __m128i e = _mm_loadu_si128((const __m128i *)(s + i + 48));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, e))) != 0) break;
  }
#endif
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, s + i, 8);
    if ((w & UINT64_C(0x8080808080808080)) != 0) break;
  }
  return i;
}

/*
** Whether s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
** surrogates, nothing above U+10FFFF). Runs of ASCII go 64 bytes at a time.
*/
static int utf8_valid (const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c, c1;
    c = s[i];
    if (c < 0x80) {
      i++;
      if (i + 8 <= n) i += ascii_run(s + i, n - i);
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
      i += 2;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
      if (i + 2 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return 0;
      i += 3;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
      if (i + 3 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
          (s[i + 3] & 0xC0) != 0x80) return 0;
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;
      i += 4;
    }
    else return 0;
  }
  return 1;
}

/* ====================================================== the reader */

/*
** The bytes a reader parses: a stream's buffer (read in place; the stream
** must have no parked reader) or a neap.buffer's. NULL: a closed stream.
*/
static neap_buf *source (lua_State *L, int idx, neap_stream **sp) {
  neap_buf *b = neap__bufobj_test(L, idx);
  neap_stream *s;
  *sp = NULL;
  if (b != NULL) return b;
  if (!neap__is_stream(L, idx))
    luaL_error(L, "bad argument #%d to 'read' (stream or buffer expected, got %s)",
               idx - 1, luaL_typename(L, idx));
  s = neap__stream_check_io(L, idx);
  if (s == NULL) return NULL;
  if (s->reader != NULL || s->cb_owned)
    luaL_error(L, "read: another task is already reading this stream");
  *sp = s;
  return &s->rb;
}

/* Consumes 'n' bytes of 'b'; an emptied stream buffer is given back. */
static void consume (neap_stream *s, neap_buf *b, size_t n) {
  neap__buf_consume(b, n);
  if (s != NULL) {
    if (neap__buf_len(b) == 0 && !neap__stream_fs_busy(s)) neap__stream_release_buf(s);
    neap__stream_flow(s);
  }
}

/*
** After the pushes of a frame, which run the collector, whose finalizers
** may read, feed or close the source: consumes the frame ('c0': the
** source's count of consumed bytes before the pushes), unless a finalizer
** read it (an error: its bytes went to that read) or the source is gone.
*/
static void consume_after (lua_State *L, neap_stream *s, neap_buf *b, size_t n,
                           uint64_t c0) {
  if (b->consumed != c0)
    luaL_error(L, "read: the source was read meanwhile (by a finalizer?); "
               "its bytes went to that read");
  if (b->base == NULL) return;   /* freed or closed meanwhile */
  consume(s, b, n);
}

/* nil, msg, close code: the peer broke the protocol. */
static int violation (lua_State *L, ws_reader *r, const char *msg, int code) {
  r->msg_op = 0;
  r->alen = 0;
  r->done = 0;
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushinteger(L, code);
  return 3;
}

static void acc_reset (ws_reader *r) {
  r->alen = 0;
  r->msg_op = 0;
  r->done = 0;
  if (r->acap > 65536) {   /* a large message's memory is not kept */
    free(r->acc);
    r->acc = NULL;
    r->acap = 0;
  }
}

static int acc_add (ws_reader *r, const unsigned char *p, size_t n,
                    const unsigned char *key) {
  if (n == 0) return 1;   /* (an empty fragment: 'acc' may still be NULL) */
  if (r->alen + n > r->acap) {
    size_t cap = r->acap ? r->acap : 4096;
    char *a;
    while (cap < r->alen + n) cap *= 2;
    if ((a = realloc(r->acc, cap)) == NULL) return 0;
    r->acc = a;
    r->acap = cap;
  }
  if (key) xor_mask((unsigned char *)r->acc + r->alen, p, n, key);
  else memcpy(r->acc + r->alen, p, n);
  r->alen += n;
  return 1;
}

/*
** Unmasks a payload in place, where it lies in the buffer, and zeroes the
** key there: the frame stays until it is consumed, and reading it again
** (after a Lua string for it could not be made: out of memory, raised)
** must not unmask it twice.
*/
static void unmask_in_place (unsigned char *pay, size_t n, unsigned char *key) {
  static const unsigned char zero[4] = {0, 0, 0, 0};
  if (memcmp(key, zero, 4) == 0) return;
  xor_mask(pay, pay, n, key);
  memset(key, 0, 4);
}

/* A close frame's payload: "close", code | nil, reason. */
static int push_close (lua_State *L, ws_reader *r, const unsigned char *p,
                       size_t n) {
  unsigned code;
  if (n == 0) {
    lua_pushliteral(L, "close");
    lua_pushnil(L);
    lua_pushliteral(L, "");
    return 3;
  }
  if (n == 1) return violation(L, r, "close frame of one byte", 1002);
  code = (unsigned)p[0] << 8 | p[1];
  if (code < 1000 || code >= 5000 || code == 1004 || code == 1005 ||
      code == 1006 || code == 1015 || (code > 1014 && code < 3000))
    return violation(L, r, "invalid close code", 1002);
  if (!utf8_valid(p + 2, n - 2))
    return violation(L, r, "close reason is not valid UTF-8", 1007);
  /* the reason first: the pushes after it may run finalizers that move 'p' */
  lua_pushlstring(L, (const char *)p + 2, n - 2);
  lua_pushliteral(L, "close");
  lua_insert(L, -2);
  lua_pushinteger(L, code);
  lua_insert(L, -2);   /* "close", code, reason */
  return 3;
}

/*
** r:read(src) -> kind, data | "close", code | nil, reason | nil, "more", need |
** nil, msg, close_code: the next message or control frame from the bytes
** buffered in 'src' (a stream or a neap.buffer). 'kind' is "text",
** "binary", "ping" or "pong"; a close frame gives its code (nil when it
** has none) and reason. The frames of a fragmented message are taken as
** they come (consumed, kept unmasked in the reader) until its last one;
** control frames between them come out at once. "more": the next frame is
** not all there; 'need' is how many bytes the buffer must hold for it (a
** lower bound while its header is incomplete). A violation of the
** protocol gives the close code to send: 1002 (framing, masking, opcodes,
** control frames), 1007 (text or a close reason that is not UTF-8), 1009
** (a message over the limit).
*/
static int ws_read (lua_State *L) {
  ws_reader *r = neap__udata_check(L, 1, ws_reader, WS_MT);
  neap_stream *s;
  neap_buf *b = source(L, 2, &s);
  if (b == NULL) return neap__push_closed(L);
  if (r->done) goto deliver;
  for (;;) {
    unsigned char *p = (unsigned char *)neap__buf_data(b);
    size_t avail = neap__buf_len(b), hlen = 2, frame;
    uint64_t c0 = b->consumed;
    uint64_t plen;
    int fin, op, masked;
    unsigned char *key = NULL;
    unsigned char *pay;
    if (avail < 2) goto more_need2;
    fin = p[0] & 0x80;
    op = p[0] & 0x0F;
    masked = p[1] & 0x80;
    plen = p[1] & 0x7F;
    if (plen == 126) hlen += 2;
    else if (plen == 127) hlen += 8;
    if (masked) hlen += 4;
    if (avail < hlen) {
      lua_pushnil(L);
      lua_pushliteral(L, "more");
      lua_pushinteger(L, (lua_Integer)hlen);
      return 3;
    }
    if (p[0] & 0x70) return violation(L, r, "reserved bits set", 1002);
    if (op > OP_BINARY && op < OP_CLOSE) return violation(L, r, "unknown opcode", 1002);
    if (op > OP_PONG) return violation(L, r, "unknown opcode", 1002);
    if (masked && !r->masked)
      return violation(L, r, "masked frame from a server", 1002);
    if (!masked && r->masked)
      return violation(L, r, "unmasked frame from a client", 1002);
    if (plen == 126) plen = (uint64_t)p[2] << 8 | p[3];
    else if (plen == 127) {
      int i;
      plen = 0;
      for (i = 0; i < 8; i++) plen = plen << 8 | p[2 + i];
      if (plen >> 63) return violation(L, r, "frame length out of range", 1002);
    }
    if (masked) key = p + hlen - 4;
    if (op >= OP_CLOSE) {
      if (!fin) return violation(L, r, "fragmented control frame", 1002);
      if (plen > 125) return violation(L, r, "control frame over 125 bytes", 1002);
    }
    else if (op == OP_CONT) {
      if (r->msg_op == 0)
        return violation(L, r, "continuation frame with no message", 1002);
      if (plen > r->max - r->alen) return violation(L, r, "message too large", 1009);
    }
    else {
      if (r->msg_op != 0)
        return violation(L, r, "new message inside a fragmented one", 1002);
      if (plen > r->max) return violation(L, r, "message too large", 1009);
    }
    /* (a frame must fit in memory, and 'need' in a Lua integer: with
    ** max_message = math.maxinteger a 63-bit length would overflow it) */
    if (plen > SIZE_MAX - hlen || plen > (uint64_t)LUA_MAXINTEGER - hlen)
      return violation(L, r, "message too large", 1009);
    frame = hlen + (size_t)plen;
    if (avail < frame) {
      lua_pushnil(L);
      lua_pushliteral(L, "more");
      lua_pushinteger(L, (lua_Integer)frame);
      return 3;
    }
    pay = p + hlen;
    if (op >= OP_CLOSE) {
      int n;
      if (key) unmask_in_place(pay, (size_t)plen, key);
      if (op == OP_CLOSE) n = push_close(L, r, pay, (size_t)plen);
      else {   /* (the payload first: the push after it may move 'pay') */
        lua_pushlstring(L, (const char *)pay, (size_t)plen);
        lua_pushstring(L, op == OP_PING ? "ping" : "pong");
        lua_insert(L, -2);
        n = 2;
      }
      consume_after(L, s, b, frame, c0);
      return n;
    }
    if (op != OP_CONT && fin) {   /* a whole message in one frame */
      if (key) unmask_in_place(pay, (size_t)plen, key);
      if (op == OP_TEXT && !utf8_valid(pay, (size_t)plen))
        return violation(L, r, "text is not valid UTF-8", 1007);
      lua_pushlstring(L, (const char *)pay, (size_t)plen);   /* (first, as above) */
      lua_pushstring(L, op == OP_TEXT ? "text" : "binary");
      lua_insert(L, -2);
      consume_after(L, s, b, frame, c0);
      return 2;
    }
    /* a fragment: into the reader */
    if (op != OP_CONT) r->msg_op = op;
    if (!acc_add(r, pay, (size_t)plen, key))
      return violation(L, r, "not enough memory", 1011);
    consume(s, b, frame);
    if (fin) {
      if (r->msg_op == OP_TEXT && !utf8_valid((unsigned char *)r->acc, r->alen))
        return violation(L, r, "text is not valid UTF-8", 1007);
      r->done = 1;
      goto deliver;
    }
  }
deliver:   /* the fragmented message in 'acc' is whole (and checked) */
  {
    /* (each push may run finalizers: one that reads from 'r' takes the
    ** message, and this read then raises rather than give it twice) */
    const char *acc = r->acc;
    int op = r->msg_op;
    lua_pushstring(L, op == OP_TEXT ? "text" : "binary");
    if (!r->done || r->acc != acc)
      return luaL_error(L, "read: the reader was read meanwhile (by a finalizer?); "
                        "its message went to that read");
    lua_pushlstring(L, acc ? acc : "", r->alen);
    if (r->done && r->acc == acc) acc_reset(r);
    return 2;
  }
more_need2:
  lua_pushnil(L);
  lua_pushliteral(L, "more");
  lua_pushinteger(L, 2);
  return 3;
}

/* r:pending() -> bytes of a fragmented message held so far */
static int ws_pending (lua_State *L) {
  ws_reader *r = neap__udata_check(L, 1, ws_reader, WS_MT);
  lua_pushinteger(L, (lua_Integer)r->alen);
  return 1;
}

static int ws_gc (lua_State *L) {
  ws_reader *r = neap__udata_test(L, 1, ws_reader, WS_MT);
  if (r == NULL) return 0;   /* (not ours: given our metatable) */
  free(r->acc);
  r->acc = NULL;
  r->alen = r->acap = 0;
  return 0;
}

/*
** neap.core.ws_reader(masked, max_message) -> reader: 'masked' is true on
** a server (a client's frames must be masked, a server's must not be).
*/
static int ws_new (lua_State *L) {
  int masked = lua_toboolean(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  ws_reader *r;
  luaL_argcheck(L, max >= 0, 2, "max_message must be >= 0");
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->tag = WS_MT;
  r->masked = masked;
  r->max = (size_t)max;
  luaL_setmetatable(L, WS_MT);
  return 1;
}

/* ====================================================== sending */

/*
** neap.core.ws_encode(opcode, data, masked [, fin]) -> header, data |
** frame: a frame of 'data'. Unmasked (a server's): its header, then 'data'
** itself (no copy; write both). Masked (a client's): one string, the
** header with a fresh random key and the masked payload.
*/
static int ws_encode (lua_State *L) {
  lua_Integer op = luaL_checkinteger(L, 1);
  size_t n, h = 2;
  const char *data = luaL_checklstring(L, 2, &n);
  int masked = lua_toboolean(L, 3);
  int fin = lua_isnoneornil(L, 4) || lua_toboolean(L, 4);
  unsigned char hd[14];
  luaL_argcheck(L, op >= 0 && op <= 15, 1, "opcode out of range");
  hd[0] = (unsigned char)((fin ? 0x80 : 0) | op);
  if (n < 126) hd[1] = (unsigned char)n;
  else if (n <= 0xFFFF) {
    hd[1] = 126;
    hd[2] = (unsigned char)(n >> 8);
    hd[3] = (unsigned char)n;
    h = 4;
  }
  else {
    int i;
    hd[1] = 127;
    for (i = 0; i < 8; i++) hd[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    h = 10;
  }
  if (!masked) {
    lua_pushlstring(L, (const char *)hd, h);
    lua_pushvalue(L, 2);
    return 2;
  }
  else {
    luaL_Buffer B;
    unsigned char *d;
    hd[1] |= 0x80;
    if (RAND_bytes(hd + h, 4) != 1) return luaL_error(L, "ws_encode: no random bytes");
    d = (unsigned char *)luaL_buffinitsize(L, &B, h + 4 + n);
    memcpy(d, hd, h + 4);
    xor_mask(d + h + 4, (const unsigned char *)data, n, hd + h);
    luaL_pushresultsize(&B, h + 4 + n);
    return 1;
  }
}

/* neap.core.ws_utf8(s) -> whether s is valid UTF-8 */
static int ws_utf8 (lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, utf8_valid((const unsigned char *)s, n));
  return 1;
}

/*
** neap.core.ws_accept(key) -> the Sec-WebSocket-Accept value for the
** Sec-WebSocket-Key 'key': base64(SHA-1(key .. the RFC's GUID)).
*/
static int ws_accept (lua_State *L) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  size_t n;
  const char *key = luaL_checklstring(L, 1, &n);
  unsigned char md[EVP_MAX_MD_SIZE], out[64];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
           EVP_DigestUpdate(ctx, key, n) == 1 &&
           EVP_DigestUpdate(ctx, guid, sizeof guid - 1) == 1 &&
           EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return luaL_error(L, "ws_accept: SHA-1 failed");
  lua_pushlstring(L, (const char *)out, (size_t)EVP_EncodeBlock(out, md, (int)mdlen));
  return 1;
}

/* neap.core.ws_key() -> a fresh Sec-WebSocket-Key (16 random bytes, base64) */
static int ws_key (lua_State *L) {
  unsigned char raw[16], out[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return luaL_error(L, "ws_key: no random bytes");
  lua_pushlstring(L, (const char *)out, (size_t)EVP_EncodeBlock(out, raw, sizeof raw));
  return 1;
}

int neap__ws_open (lua_State *L) {
  static const luaL_Reg meth[] = {
    {"read", ws_read},
    {"pending", ws_pending},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},
    {"__gc", ws_gc},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"ws_reader", ws_new},
    {"ws_encode", ws_encode},
    {"ws_utf8", ws_utf8},
    {"ws_accept", ws_accept},
    {"ws_key", ws_key},
    {NULL, NULL}
  };
  neap__newmeta(L, WS_MT, meth, metameth);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
