/* SPDX-License-Identifier: MIT */
/* Unit tests for the byte buffer (reserve, commit, append, consume) and its
   framing (READ, EXACTLY, LINE, UNTIL, ALL) in src/buf.c, without libuv or Lua. */
#include "buf.h"
#include "test.h"

/* ---- the harness (spec/c/test.h), and what this file adds ---- */

/* The frame at the head of 'b' must be the string literal 'lit'. */
#define ASSERT_FRAME(b, f, lit) \
  ASSERT_STR(neap__buf_data(b), (f).len, (lit), sizeof(lit) - 1)

#define APPEND(b, lit) \
  ASSERT_EQ(neap__buf_append((b), (lit), sizeof(lit) - 1), 0)

/* A small deterministic generator (xorshift64), the same everywhere. */
static unsigned long long rng_state;
static void rng_seed (unsigned long long s) { rng_state = s ? s : 88172645463325252ULL; }
static unsigned rnd (void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state >> 32);
}
static size_t rnd_below (size_t n) { return n ? (size_t)rnd() % n : 0; }

/* A new framing request: everything zeroed ('scan' in particular). */
static void req (neap_frame *f, int kind) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->which = -2;   /* so we can tell that a result set it */
}

static void req_until (neap_frame *f, const neap_delim *d, int nd) {
  req(f, NEAP_FRAME_UNTIL);
  f->delims = d;
  f->ndelims = nd;
}

#define D(lit) { (lit), sizeof(lit) - 1 }

/*
** What a test allocates is released by the runner after it, so a test that
** returns early on a failure leaks nothing (for the asan build).
*/
static neap_buf t_bufs[4];
static int t_nbufs;
static void *t_mem[4];
static int t_nmem;

static neap_buf *new_buf (void) {
  neap_buf *b;
  if (t_nbufs == (int)(sizeof t_bufs / sizeof t_bufs[0])) abort();
  b = &t_bufs[t_nbufs++];
  neap__buf_init(b);
  return b;
}

static void *t_malloc (size_t n) {
  void *p;
  if (t_nmem == (int)(sizeof t_mem / sizeof t_mem[0])) abort();
  p = malloc(n);
  if (p != NULL) t_mem[t_nmem++] = p;
  return p;
}

static void t_release (void) {
  while (t_nbufs > 0) neap__buf_free(&t_bufs[--t_nbufs]);
  while (t_nmem > 0) free(t_mem[--t_nmem]);
}

/* ---- the buffer ---- */

static void test_init_free (void) {
  neap_buf *b = new_buf();
  neap__buf_init(b);
  ASSERT_TRUE(b->base == NULL);
  ASSERT_EQ(b->head, 0);
  ASSERT_EQ(b->tail, 0);
  ASSERT_EQ(b->cap, 0);
  ASSERT_EQ(neap__buf_len(b), 0);
  neap__buf_free(b);   /* freeing an empty buffer is fine */
  APPEND(b, "abc");
  ASSERT_EQ(neap__buf_len(b), 3);
  neap__buf_free(b);
  ASSERT_TRUE(b->base == NULL);
  ASSERT_EQ(b->cap, 0);
  ASSERT_EQ(neap__buf_len(b), 0);
}

static void test_reserve_commit (void) {
  neap_buf *b = new_buf();
  size_t avail = 0, avail2 = 0;
  char *p, *q;
  p = neap__buf_reserve(b, 10, &avail);
  ASSERT_TRUE(p != NULL);
  ASSERT_TRUE(avail >= 10);
  ASSERT_TRUE(p == b->base + b->tail);
  ASSERT_EQ(avail, b->cap - b->tail);
  memcpy(p, "hello", 5);
  neap__buf_commit(b, 5);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "hello", 5);
  /* enough room left: the next reservation follows, nothing moves */
  q = neap__buf_reserve(b, 3, &avail2);
  ASSERT_TRUE(q == p + 5);
  ASSERT_EQ(avail2, avail - 5);
  memcpy(q, " yo", 3);
  neap__buf_commit(b, 3);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "hello yo", 8);
  /* committing part of a reservation */
  q = neap__buf_reserve(b, 100, &avail2);
  ASSERT_TRUE(q != NULL && avail2 >= 100);
  memcpy(q, "!?", 2);
  neap__buf_commit(b, 1);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "hello yo!", 9);
  neap__buf_free(b);
}

static void test_append_consume (void) {
  neap_buf *b = new_buf();
  APPEND(b, "hello");
  APPEND(b, " world");
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "hello world", 11);
  neap__buf_consume(b, 6);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "world", 5);
  ASSERT_EQ(neap__buf_append(b, "zzz", 0), 0);   /* nothing to add */
  ASSERT_EQ(neap__buf_len(b), 5);
  APPEND(b, "\0x\0");
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "world\0x\0", 8);
  neap__buf_consume(b, 8);
  ASSERT_EQ(neap__buf_len(b), 0);
  neap__buf_consume(b, 0);
  ASSERT_EQ(neap__buf_len(b), 0);
  neap__buf_free(b);
}

static void test_reserve_reuses_after_full_consume (void) {
  neap_buf *b = new_buf();
  char junk[3000];
  char *base0, *p;
  size_t cap0, avail = 0;
  memset(junk, 'j', sizeof junk);
  ASSERT_EQ(neap__buf_append(b, junk, sizeof junk), 0);
  base0 = b->base;
  cap0 = b->cap;
  neap__buf_consume(b, sizeof junk);
  /* all of the storage is free again, at the front */
  p = neap__buf_reserve(b, cap0, &avail);
  ASSERT_TRUE(p == base0);
  ASSERT_TRUE(b->base == base0);
  ASSERT_EQ(b->cap, cap0);
  ASSERT_EQ(avail, cap0);
  ASSERT_EQ(b->head, 0);
  ASSERT_EQ(b->tail, 0);
  /* the same through append */
  ASSERT_EQ(neap__buf_append(b, junk, sizeof junk), 0);
  neap__buf_consume(b, sizeof junk);
  ASSERT_EQ(neap__buf_append(b, junk, sizeof junk), 0);
  ASSERT_TRUE(b->base == base0);
  ASSERT_EQ(b->cap, cap0);
  ASSERT_EQ(b->head, 0);
  neap__buf_free(b);
}

static void test_reserve_compacts (void) {
  neap_buf *b = new_buf();
  char *fill;
  size_t cap0, i, avail = 0;
  char *p;
  APPEND(b, "x");
  cap0 = b->cap;
  ASSERT_TRUE(cap0 >= 2048);
  fill = t_malloc(cap0);
  ASSERT_TRUE(fill != NULL);
  for (i = 0; i < cap0; i++) fill[i] = (char)('a' + i % 26);
  neap__buf_consume(b, 1);
  /* cap0 - 50 bytes, then keep only the last 100 of them */
  ASSERT_EQ(neap__buf_append(b, fill, cap0 - 50), 0);
  neap__buf_consume(b, cap0 - 150);
  ASSERT_EQ(neap__buf_len(b), 100);
  p = neap__buf_reserve(b, 1000, &avail);
  ASSERT_TRUE(p != NULL);
  ASSERT_TRUE(avail >= 1000);
  ASSERT_EQ(b->cap, cap0);     /* moving the 100 bytes freed enough */
  ASSERT_EQ(b->head, 0);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), fill + cap0 - 150, 100);
  memcpy(p, "tail", 4);
  neap__buf_commit(b, 4);
  ASSERT_STR(neap__buf_data(b) + 100, 4, "tail", 4);
  neap__buf_free(b);
}

static void test_reserve_grows (void) {
  neap_buf *b = new_buf();
  char *fill, *p;
  size_t cap0, i, avail = 0;
  APPEND(b, "x");
  neap__buf_consume(b, 1);
  cap0 = b->cap;
  fill = t_malloc(4 * cap0);
  ASSERT_TRUE(fill != NULL);
  for (i = 0; i < 4 * cap0; i++) fill[i] = (char)(i * 7 + i / 251);
  /* full, nothing consumed: grows */
  ASSERT_EQ(neap__buf_append(b, fill, cap0), 0);
  p = neap__buf_reserve(b, 1, &avail);
  ASSERT_TRUE(p != NULL);
  ASSERT_TRUE(avail >= 1);
  ASSERT_TRUE(b->cap > cap0);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), fill, cap0);
  /* something consumed but most still there: the bytes survive */
  neap__buf_consume(b, 10);
  p = neap__buf_reserve(b, 2 * cap0, &avail);
  ASSERT_TRUE(p != NULL);
  ASSERT_TRUE(avail >= 2 * cap0);
  ASSERT_TRUE(b->cap - b->tail == avail);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), fill + 10, cap0 - 10);
  memcpy(p, fill + cap0, 2 * cap0);
  neap__buf_commit(b, 2 * cap0);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), fill + 10, 3 * cap0 - 10);
  neap__buf_free(b);
}

/* Random appends, reserve+commits and consumes against a plain array. */
static void test_buf_random_ops (void) {
  enum { ROUNDS = 2000, MAXOP = 9000, SHADOW = ROUNDS * MAXOP };
  neap_buf *b = new_buf();
  char *shadow, chunk[MAXOP];
  size_t sh = 0, st = 0;   /* the shadow's head and tail */
  int round;
  shadow = t_malloc(SHADOW);
  ASSERT_TRUE(shadow != NULL);
  rng_seed(12345);
  for (round = 0; round < ROUNDS && !t_failed; round++) {
    unsigned op = rnd() % 3;
    size_t n = rnd_below(rnd() % 4 == 0 ? MAXOP : 300), i;
    for (i = 0; i < n; i++) chunk[i] = (char)rnd();
    if (op == 0) {
      if (neap__buf_append(b, chunk, n) != 0) FAIL("append failed");
      memcpy(shadow + st, chunk, n);
      st += n;
    }
    else if (op == 1) {
      size_t avail = 0, c;
      char *p = neap__buf_reserve(b, n ? n : 1, &avail);
      if (p == NULL) FAIL("reserve failed");
      if (avail < (n ? n : 1) || p != b->base + b->tail || avail != b->cap - b->tail)
        FAIL("round %d: reserve(%zu) gave avail %zu", round, n, avail);
      c = n ? rnd_below(n + 1) : 0;
      memcpy(p, chunk, c);
      neap__buf_commit(b, c);
      memcpy(shadow + st, chunk, c);
      st += c;
    }
    else {
      size_t c = rnd_below(st - sh + 1);
      neap__buf_consume(b, c);
      sh += c;
    }
    if (neap__buf_len(b) != st - sh ||
        memcmp(neap__buf_data(b), shadow + sh, st - sh) != 0)
      FAIL("round %d: buffer differs from the shadow", round);
    if (b->tail > b->cap || b->head > b->tail) FAIL("round %d: bad indices", round);
  }
  neap__buf_free(b);
}

/* ---- READ, EXACTLY, ALL ---- */

static void test_read (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  req(&f, NEAP_FRAME_READ);
  f.n = 3;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  APPEND(b, "hello");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_EQ(f.len, 3);
  ASSERT_EQ(f.consume, 3);
  ASSERT_FRAME(b, f, "hel");
  ASSERT_EQ(neap__buf_len(b), 5);   /* framing consumes nothing */
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_READ);
  f.n = 100;   /* fewer there: what there is */
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "lo");
  ASSERT_EQ(f.consume, 2);
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_READ);
  f.n = 1;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "\0z");
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);   /* data before the end */
  ASSERT_FRAME(b, f, "\0");
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_READ);
  f.n = 8;
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "z");
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_READ);
  f.n = 8;
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  neap__buf_free(b);
}

static void test_exactly (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  req(&f, NEAP_FRAME_EXACTLY);
  f.n = 5;
  APPEND(b, "abc");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "d");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "e\0g");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_EQ(f.len, 5);
  ASSERT_EQ(f.consume, 5);
  ASSERT_FRAME(b, f, "abcde");
  neap__buf_consume(b, f.consume);
  /* at the end with fewer bytes: END, and nothing is taken */
  req(&f, NEAP_FRAME_EXACTLY);
  f.n = 3;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "\0g", 2);
  /* the bytes are still there for another request */
  req(&f, NEAP_FRAME_EXACTLY);
  f.n = 2;
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "\0g");
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_EXACTLY);
  f.n = 1;
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  neap__buf_free(b);
}

static void test_all (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  req(&f, NEAP_FRAME_ALL);
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "one\ntwo\r\n");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "\0three");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "one\ntwo\r\n\0three");
  ASSERT_EQ(f.consume, 15);
  neap__buf_consume(b, f.consume);
  /* nothing left at the end: an empty frame (like Lua's read("a")) */
  req(&f, NEAP_FRAME_ALL);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);
  ASSERT_EQ(f.len, 0);
  ASSERT_EQ(f.consume, 0);
  neap__buf_free(b);
}

/* ---- LINE ---- */

static void test_line_empty_lines (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  int i;
  APPEND(b, "\n\n\r\n");
  for (i = 0; i < 3; i++) {
    req(&f, NEAP_FRAME_LINE);
    ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
    ASSERT_EQ(f.len, 0);
    ASSERT_EQ(f.consume, i < 2 ? 1 : 2);
    neap__buf_consume(b, f.consume);
  }
  req(&f, NEAP_FRAME_LINE);
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  /* "\n\n" then the end: two empty lines and no third */
  APPEND(b, "\n\n");
  for (i = 0; i < 2; i++) {
    req(&f, NEAP_FRAME_LINE);
    ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_OK);
    ASSERT_EQ(f.len, 0);
    ASSERT_EQ(f.consume, 1);
    neap__buf_consume(b, f.consume);
  }
  req(&f, NEAP_FRAME_LINE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_END);
  neap__buf_free(b);
}

static void test_line_max (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  /* a frame of exactly max bytes is fine */
  APPEND(b, "abcde\nabcdef\n");
  req(&f, NEAP_FRAME_LINE);
  f.max = 5;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "abcde");
  neap__buf_consume(b, f.consume);
  /* one more byte is not */
  req(&f, NEAP_FRAME_LINE);
  f.max = 5;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "abcdef\n", 7);
  neap__buf_consume(b, 7);
  /* no newline yet: max bytes wait, max + 1 are too many */
  req(&f, NEAP_FRAME_LINE);
  f.max = 5;
  APPEND(b, "abcde");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "f");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_EQ(neap__buf_frame(b, &f, 1), NEAP_FRAME_TOOLARGE);
  neap__buf_free(b);
}

static void test_line_toolarge_keeps_bytes (void) {
  neap_buf *b = new_buf();
  neap_frame f;
  APPEND(b, "0123456789abc");
  req(&f, NEAP_FRAME_LINE);
  f.max = 8;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_EQ(neap__buf_len(b), 13);
  /* the caller may still read what is there */
  req(&f, NEAP_FRAME_READ);
  f.n = 100;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "0123456789abc");
  neap__buf_consume(b, f.consume);
  /* and with a newline beyond max */
  APPEND(b, "0123456789\nrest\n");
  req(&f, NEAP_FRAME_LINE);
  f.max = 8;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_EQ(neap__buf_len(b), 16);
  req(&f, NEAP_FRAME_READ);
  f.n = 11;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "0123456789\n");
  neap__buf_consume(b, f.consume);
  req(&f, NEAP_FRAME_LINE);
  f.max = 8;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "rest");
  neap__buf_free(b);
}

/* The size of the next piece of a stream: 1 byte to 4 KiB. */
static size_t piece_size (void) {
  switch (rnd() % 4) {
    case 0: return 1;
    case 1: return 1 + rnd_below(16);
    case 2: return 1 + rnd_below(512);
    default: return 1 + rnd_below(4096);
  }
}

static void test_line_long_small_appends (void) {
  enum { TOTAL = 1 << 20 };
  neap_buf *b = new_buf();
  neap_frame f;
  char piece[4096];
  size_t got = 0, scanned = 0, calls = 0, i;
  const char *p;
  memset(piece, 'x', sizeof piece);
  rng_seed(777);
  req(&f, NEAP_FRAME_LINE);
  f.max = NEAP_DEFAULT_MAX_FRAME;
  while (got < TOTAL) {
    size_t k = piece_size(), before = f.scan;
    if (k > TOTAL - got) k = TOTAL - got;
    ASSERT_EQ(neap__buf_append(b, piece, k), 0);
    got += k;
    ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
    /* each call looks at the new bytes only */
    ASSERT_EQ(f.scan, neap__buf_len(b));
    ASSERT_TRUE(f.scan >= before);
    scanned += f.scan - before;
    calls++;
  }
  ASSERT_TRUE(calls > 500);
  ASSERT_EQ(scanned, TOTAL);
  APPEND(b, "\nnext");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_EQ(f.len, TOTAL);
  ASSERT_EQ(f.consume, TOTAL + 1);
  p = neap__buf_data(b);
  for (i = 0; i < TOTAL; i++)
    if (p[i] != 'x') FAIL("byte %zu of the line is wrong", i);
  neap__buf_consume(b, f.consume);
  ASSERT_STR(neap__buf_data(b), neap__buf_len(b), "next", 4);
  neap__buf_free(b);
}

/* ---- UNTIL ---- */

static void test_until_long_delim_split_everywhere (void) {
  static const neap_delim d[] = { D("<<END>>") };
  static const char data[] = "head<<END>>tail";
  neap_buf *b = new_buf();
  neap_frame f;
  size_t cut;
  for (cut = 0; cut <= sizeof data - 1; cut++) {
    req_until(&f, d, 1);
    ASSERT_EQ(neap__buf_append(b, data, cut), 0);
    if (cut < 11) ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
    ASSERT_EQ(neap__buf_append(b, data + cut, sizeof data - 1 - cut), 0);
    ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
    ASSERT_FRAME(b, f, "head");
    ASSERT_EQ(f.consume, 11);
    ASSERT_EQ(f.which, 0);
    neap__buf_free(b);
  }
}

/* All NEAP_MAX_DELIMS delimiters, the last one first in the data (the
   script "until: the earliest delimiter wins" has the other cases). */
static void test_until_earliest_of_max_delims (void) {
  neap_delim many[NEAP_MAX_DELIMS];
  static const char letters[] = "ABCDEFGHIJKLMNOP";
  neap_buf *b = new_buf();
  neap_frame f;
  int i;
  for (i = 0; i < NEAP_MAX_DELIMS; i++) {
    many[i].p = letters + i;
    many[i].len = 1;
  }
  APPEND(b, "zzzPzzA");
  req_until(&f, many, NEAP_MAX_DELIMS);
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "zzz");
  ASSERT_EQ(f.which, NEAP_MAX_DELIMS - 1);
  neap__buf_free(b);
}

static void test_until_max (void) {
  static const neap_delim d[] = { D("--") };
  neap_buf *b = new_buf();
  neap_frame f;
  APPEND(b, "abc--abcd--");
  req_until(&f, d, 1);
  f.max = 3;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "abc");
  neap__buf_consume(b, f.consume);
  req_until(&f, d, 1);
  f.max = 3;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_EQ(neap__buf_len(b), 6);
  req(&f, NEAP_FRAME_READ);
  f.n = 10;
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_FRAME(b, f, "abcd--");
  neap__buf_consume(b, f.consume);
  /* no delimiter yet */
  req_until(&f, d, 1);
  f.max = 3;
  APPEND(b, "abc");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  APPEND(b, "d");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_TOOLARGE);
  ASSERT_EQ(neap__buf_len(b), 4);
  neap__buf_free(b);
}

static void test_until_long_small_appends (void) {
  enum { TOTAL = 1 << 20 };
  static const neap_delim d[] = { D("\r\n"), D("\r") };
  neap_buf *b = new_buf();
  neap_frame f;
  char piece[4096];
  size_t got = 0, calls = 0;
  memset(piece, 'y', sizeof piece);
  rng_seed(4242);
  req_until(&f, d, 2);
  f.max = NEAP_DEFAULT_MAX_FRAME;
  while (got < TOTAL) {
    size_t k = piece_size(), before = f.scan;
    if (k > TOTAL - got) k = TOTAL - got;
    ASSERT_EQ(neap__buf_append(b, piece, k), 0);
    got += k;
    ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
    ASSERT_EQ(f.scan, neap__buf_len(b));
    ASSERT_TRUE(f.scan >= before);
    calls++;
  }
  ASSERT_TRUE(calls > 500);
  APPEND(b, "\r");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_MORE);
  ASSERT_TRUE(f.scan <= neap__buf_len(b));
  APPEND(b, "\nz");
  ASSERT_EQ(neap__buf_frame(b, &f, 0), NEAP_FRAME_OK);
  ASSERT_EQ(f.len, TOTAL);
  ASSERT_EQ(f.consume, TOTAL + 2);
  ASSERT_EQ(f.which, 0);
  neap__buf_free(b);
}

/* ---- framing scripts: the LINE and UNTIL cases as tables ---- */

/*
** One step of a script: append 'in', start a fresh request or go on with
** the one that said MORE, frame, and check the outcome. On OK, 'out' is the
** frame, 'consume' its consume count, and the frame is then consumed;
** otherwise 'out' is what the buffer holds. Every step also checks that
** framing consumed nothing. NONE and NA leave a value unchecked.
*/
typedef struct step {
  const char *in; size_t inlen;     /* appended first */
  int fresh;                        /* NEW or SAME; 0 ends the script */
  int at_end;                       /* the end of the stream was seen */
  int outcome;                      /* MORE, OK, END or BIG */
  const char *out; size_t outlen;
  long consume;                     /* f.consume */
  int which;                        /* f.which */
  long scan;                        /* f.scan after the call */
} step;

typedef struct script {
  const char *name;
  int kind, keep;                   /* the request: LINE or UNTIL */
  const neap_delim *d;
  int nd;
  step steps[10];
} script;

#define S(lit) (lit), sizeof(lit) - 1
#define NONE NULL, 0
#define NA (-9)
enum { NEW = 1, SAME = 2 };
enum {
  MORE = NEAP_FRAME_MORE, OK = NEAP_FRAME_OK, END = NEAP_FRAME_END,
  BIG = NEAP_FRAME_TOOLARGE
};
#define LINE NEAP_FRAME_LINE
#define UNTIL NEAP_FRAME_UNTIL

static const neap_delim d_crlf[] = { D("\r\n") };
static const neap_delim d_dash_crlf[] = { D("--"), D("\r\n") };
static const neap_delim d_cr_crlf[] = { D("\r"), D("\r\n") };
static const neap_delim d_crlf_cr[] = { D("\r\n"), D("\r") };
static const neap_delim d_dashes[] = { D("--"), D("---") };
static const neap_delim d_nul[] = { D("\0") };
static const neap_delim d_nul_inside[] = { D("x\0y"), D("\0\0") };
static const neap_delim d_head_end[] = { D("\r\n\r\n"), D("\n") };
static const neap_delim d_b_a_zz[] = { D("b"), D("a"), D("zz") };

static const script scripts[] = {
  { "line: CRLF and LF; the unterminated last line at the end", LINE, 0, NULL, 0, {
    { S("one\ntwo\r\nthree"), NEW, 0, OK, S("one"), 4, NA, NA },
    { NONE, NEW, 0, OK, S("two"), 5, NA, NA },
    { NONE, NEW, 0, MORE, NONE, NA, NA, 5 },
    { NONE, SAME, 1, OK, S("three"), 5, NA, NA },
    { NONE, NEW, 1, END, NONE, NA, NA, NA },
    { NONE, SAME, 0, MORE, NONE, NA, NA, NA } } },
  { "line keep: the delimiter stays in the frame", LINE, 1, NULL, 0, {
    { S("one\ntwo\r\n\r\nlast\r"), NEW, 0, OK, S("one\n"), 4, NA, NA },
    { NONE, NEW, 0, OK, S("two\r\n"), 5, NA, NA },
    { NONE, NEW, 0, OK, S("\r\n"), NA, NA, NA },
    { NONE, NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("last\r"), NA, NA, NA } } },
  { "line: CRLF split across appends", LINE, 0, NULL, 0, {
    { S("ab\r"), NEW, 0, MORE, NONE, NA, NA, 3 },
    { S("\ncd"), SAME, 0, OK, S("ab"), 4, NA, NA },
    { NONE, NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("cd"), NA, NA, NA },
    /* "\r" alone before the split, "\n" after: an empty line */
    { S("\r"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("\n"), SAME, 0, OK, S(""), 2, NA, NA } } },
  { "line: only one CR right before the LF goes", LINE, 0, NULL, 0, {
    { S("a\rb\r\r\nc\n"), NEW, 0, OK, S("a\rb\r"), 6, NA, NA },
    { NONE, NEW, 0, OK, S("c"), NA, NA, NA },
    /* an unterminated last line has no "\r\n": a trailing '\r' stays */
    { S("abc\r"), NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("abc\r"), 4, NA, NA } } },
  { "line: NUL bytes are data", LINE, 0, NULL, 0, {
    { S("a\0b\r\n\0\n\0"), NEW, 0, OK, S("a\0b"), 5, NA, NA },
    { NONE, NEW, 0, OK, S("\0"), NA, NA, NA },
    { NONE, NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("\0"), NA, NA, NA } } },
  { "line: the scan position is kept between calls", LINE, 0, NULL, 0, {
    { S("abc"), NEW, 0, MORE, NONE, NA, NA, 3 },
    /* asking again with nothing new changes nothing */
    { NONE, SAME, 0, MORE, NONE, NA, NA, 3 },
    { S("de"), SAME, 0, MORE, NONE, NA, NA, 5 },
    { S("f\nghi\n"), SAME, 0, OK, S("abcdef"), 7, NA, NA },
    /* a new request starts with 'scan' zeroed */
    { NONE, NEW, 0, OK, S("ghi"), NA, NA, NA } } },
  { "until: a delimiter split across appends; the rest at the end",
    UNTIL, 0, d_crlf, 1, {
    { S("ab\r"), NEW, 0, MORE, NONE, NA, NA, 3 },
    { S("\ncd"), SAME, 0, OK, S("ab"), 4, 0, NA },
    { NONE, NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("cd"), 2, -1, NA },   /* leftover at the end: which = -1 */
    { NONE, NEW, 1, END, NONE, NA, NA, NA } } },
  { "until: the earliest delimiter wins", UNTIL, 0, d_b_a_zz, 3, {
    { S("xab zz"), NEW, 0, OK, S("x"), 2, 1, NA },
    { NONE, NEW, 0, OK, S(""), NA, 0, NA },
    { NONE, NEW, 0, OK, S(" "), NA, 2, NA } } },
  { "until: on a tie the longest wins (listed last)", UNTIL, 0, d_cr_crlf, 2, {
    { S("ab\r\ncd"), NEW, 0, OK, S("ab"), 4, 1, NA } } },
  { "until: on a tie the longest wins (listed first)", UNTIL, 0, d_crlf_cr, 2, {
    { S("ab\r\ncd"), NEW, 0, OK, S("ab"), 4, 0, NA } } },
  { "until: CR at the tail waits, as CRLF may be coming",
    UNTIL, 0, d_cr_crlf, 2, {
    { S("ab\r"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("\n"), SAME, 0, OK, S("ab"), 4, 1, NA },
    /* "\r" followed by something else */
    { S("cd\r"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("x"), SAME, 0, OK, S("cd"), 3, 0, NA },
    /* "\r" at the very end */
    { S("\r"), NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("x"), 2, 0, NA } } },
  { "until: a delimiter that is the prefix of another (dashes)",
    UNTIL, 0, d_dashes, 2, {
    { S("a-"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("-"), SAME, 0, MORE, NONE, NA, NA, NA },
    { S("-b"), SAME, 0, OK, S("a"), 4, 1, NA },
    { S("--c"), NEW, 0, OK, S("b"), 3, 0, NA },
    { S("--"), NEW, 0, MORE, NONE, NA, NA, NA },
    { NONE, SAME, 1, OK, S("c"), NA, 0, NA },
    /* four dashes: "---" then a lone "-" */
    { S("----"), NEW, 1, OK, S(""), NA, 1, NA },
    { NONE, NEW, 1, OK, S("-"), NA, -1, NA } } },
  { "until: a NUL delimiter", UNTIL, 0, d_nul, 1, {
    { S("a\0b"), NEW, 0, OK, S("a"), 2, 0, NA } } },
  { "until: NUL inside the delimiters and the data, split across appends",
    UNTIL, 0, d_nul_inside, 2, {
    { S("p\0q x\0"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("y r\0\0s"), SAME, 0, OK, S("p\0q "), 7, 0, NA },
    { NONE, NEW, 0, OK, S(" r"), 4, 1, NA } } },
  { "until keep: the delimiter stays in the frame", UNTIL, 1, d_dash_crlf, 2, {
    { S("ab--cd\r\nef"), NEW, 0, OK, S("ab--"), 4, 0, NA },
    { NONE, NEW, 0, OK, S("cd\r\n"), NA, 1, NA },
    { NONE, NEW, 1, OK, S("ef"), NA, -1, NA } } },
  /*
  ** A delimiter found inside a longer one that began earlier and is still
  ** arriving: on the whole stream the longer one is the earliest and wins,
  ** so the answer must not depend on where the bytes were split.
  */
  { "until: an inner delimiter while a longer one is pending (all at once)",
    UNTIL, 0, d_head_end, 2, {
    { S("hdr\r\n\r\nbody"), NEW, 0, OK, S("hdr"), 7, 0, NA } } },
  { "until: an inner delimiter while a longer one is pending (split after CRLF)",
    UNTIL, 0, d_head_end, 2, {
    { S("hdr\r\n"), NEW, 0, MORE, NONE, NA, NA, NA },
    { S("\r\nbody"), SAME, 0, OK, S("hdr"), 7, 0, NA } } },
};

static void run_script (const script *sc) {
  neap_buf *b = new_buf();
  neap_frame tmpl, f;
  char e1[300], e2[300];
  int i;
  req(&tmpl, sc->kind);
  tmpl.keep = sc->keep;
  tmpl.delims = sc->d;
  tmpl.ndelims = sc->nd;
  f = tmpl;
  for (i = 0; i < (int)(sizeof sc->steps / sizeof sc->steps[0]); i++) {
    const step *s = &sc->steps[i];
    const char *got;
    size_t before, gotlen;
    int r;
    if (s->fresh == 0) break;   /* the end of the script */
    if (s->in != NULL && neap__buf_append(b, s->in, s->inlen) != 0)
      FAIL("step %d: append failed", i + 1);
    if (s->fresh == NEW) f = tmpl;
    before = neap__buf_len(b);
    r = neap__buf_frame(b, &f, s->at_end);
    if (r != s->outcome)
      FAIL("step %d: outcome %d, expected %d", i + 1, r, s->outcome);
    if (neap__buf_len(b) != before)
      FAIL("step %d: framing consumed %zu bytes", i + 1, before - neap__buf_len(b));
    if (s->scan != NA && (long)f.scan != s->scan)
      FAIL("step %d: scan %zu, expected %ld", i + 1, f.scan, s->scan);
    if (s->which != NA && f.which != s->which)
      FAIL("step %d: which %d, expected %d", i + 1, f.which, s->which);
    if (r == OK && s->consume != NA && (long)f.consume != s->consume)
      FAIL("step %d: consume %zu, expected %ld", i + 1, f.consume, s->consume);
    got = neap__buf_data(b);
    gotlen = r == OK ? f.len : neap__buf_len(b);
    if (s->out != NULL && (gotlen != s->outlen || memcmp(got, s->out, gotlen) != 0))
      FAIL("step %d: %s \"%s\", expected \"%s\"", i + 1,
           r == OK ? "frame" : "buffer", escape(e1, sizeof e1, got, gotlen),
           escape(e2, sizeof e2, s->out, s->outlen));
    if (r == OK) neap__buf_consume(b, f.consume);
  }
}

/* ---- randomized comparisons with reference framers ---- */

#define MAXF 512

typedef struct frames {
  int n;
  size_t off[MAXF], len[MAXF];
  int which[MAXF];
  size_t used;
  char bytes[8192];
} frames;

static int add_frame (frames *o, const char *p, size_t n, int which) {
  if (o->n >= MAXF || o->used + n > sizeof o->bytes) return -1;
  o->off[o->n] = o->used;
  o->len[o->n] = n;
  o->which[o->n] = which;
  memcpy(o->bytes + o->used, p, n);
  o->used += n;
  o->n++;
  return 0;
}

/* Reference LINE: split on '\n'; strip one '\r' before it unless 'keep'. */
static void ref_lines (const char *p, size_t len, int keep, frames *o) {
  size_t start = 0, i;
  o->n = 0;
  o->used = 0;
  for (i = 0; i < len; i++) {
    if (p[i] == '\n') {
      size_t end = keep ? i + 1 : i;
      if (!keep && end > start && p[end - 1] == '\r') end--;
      add_frame(o, p + start, end - start, 0);
      start = i + 1;
    }
  }
  if (start < len) add_frame(o, p + start, len - start, 0);
}

/* Reference UNTIL on the whole data: earliest match, longest on a tie. */
static void ref_until (const char *p, size_t len, const neap_delim *d, int nd,
                       int keep, frames *o) {
  size_t start = 0;
  o->n = 0;
  o->used = 0;
  for (;;) {
    size_t pos, dl = 0;
    int which = -1, i;
    for (pos = start; pos < len && which < 0; pos++) {
      for (i = 0; i < nd; i++)
        if (d[i].len > dl && d[i].len <= len - pos &&
            memcmp(p + pos, d[i].p, d[i].len) == 0) {
          which = i;
          dl = d[i].len;
        }
      if (which >= 0) break;
    }
    if (which < 0) {
      if (start < len) add_frame(o, p + start, len - start, -1);
      return;
    }
    add_frame(o, p + start, pos - start + (keep ? dl : 0), which);
    start = pos + dl;
  }
}

/*
** Feeds p[0..len) to a fresh buffer in pieces of the sizes in 'pieces',
** framing after each piece and then at the end as a stream reader does (a
** fresh request, 'scan' zeroed, after each frame). NULL or what went wrong.
*/
static const char *stream_frames (const char *p, size_t len,
                                  const size_t *pieces, int npieces,
                                  const neap_frame *tmpl, frames *o) {
  static char err[200];
  neap_buf b;
  neap_frame f = *tmpl;
  size_t off = 0;
  int i, r, guard = 0;
  const char *bad = NULL;
  o->n = 0;
  o->used = 0;
  neap__buf_init(&b);
  for (i = 0; i <= npieces && bad == NULL; i++) {
    size_t k = i < npieces ? pieces[i] : len - off;
    int at_end = i == npieces;
    if (neap__buf_append(&b, p + off, k) != 0) { bad = "append failed"; break; }
    off += k;
    for (;;) {
      if (++guard > 10000) { bad = "no progress"; break; }
      r = neap__buf_frame(&b, &f, at_end);
      if (r == NEAP_FRAME_MORE && !at_end) {
        if (f.scan > neap__buf_len(&b)) { bad = "scan beyond the data"; break; }
        break;
      }
      if (r == NEAP_FRAME_END && at_end) {
        if (neap__buf_len(&b) != 0) { bad = "END with data left"; break; }
        break;
      }
      if (r != NEAP_FRAME_OK) {
        snprintf(err, sizeof err, "unexpected outcome %d (at_end %d)", r, at_end);
        bad = err;
        break;
      }
      if (f.consume == 0 || f.consume > neap__buf_len(&b) || f.len > f.consume) {
        snprintf(err, sizeof err, "bad frame: len %zu, consume %zu, have %zu",
                 f.len, f.consume, neap__buf_len(&b));
        bad = err;
        break;
      }
      if (add_frame(o, neap__buf_data(&b), f.len,
                    f.kind == NEAP_FRAME_UNTIL ? f.which : 0) != 0) {
        bad = "too many frames";
        break;
      }
      neap__buf_consume(&b, f.consume);
      f = *tmpl;
    }
  }
  neap__buf_free(&b);
  return bad;
}

/* Cuts 'len' into random pieces, some of them empty; returns how many. */
static int random_pieces (size_t len, size_t *pieces, int maxp) {
  size_t left = len;
  int n = 0;
  int mode = (int)(rnd() % 4);
  while (left > 0 && n < maxp - 1) {
    size_t k;
    if (mode == 0) k = 1;
    else if (mode == 1) k = rnd_below(4);
    else k = rnd_below(left + 1);
    if (k > left) k = left;
    pieces[n++] = k;
    left -= k;
  }
  return n;   /* the rest comes with the end */
}

/* Describes the first difference of 'got' from 'want' into 'msg'. */
static void describe_diff (char *msg, size_t sz, const char *data, size_t len,
                           const size_t *pieces, int np,
                           const frames *got, const frames *want) {
  char e1[200], e2[200], e3[400], cuts[200];
  size_t co = 0, acc = 0;
  int i, j;
  for (i = 0; i < got->n && i < want->n; i++)
    if (got->len[i] != want->len[i] || got->which[i] != want->which[i] ||
        memcmp(got->bytes + got->off[i], want->bytes + want->off[i],
               got->len[i]) != 0)
      break;
  cuts[0] = '\0';
  for (j = 0; j < np && co + 12 < sizeof cuts; j++) {
    acc += pieces[j];
    co += (size_t)snprintf(cuts + co, sizeof cuts - co, "%s%zu", j ? "," : "", acc);
  }
  escape(e3, sizeof e3, data, len);
  if (i < got->n && i < want->n)
    snprintf(msg, sz, "data \"%s\" cut at {%s}: frame %d is \"%s\" (which %d), "
             "expected \"%s\" (which %d)", e3, cuts, i,
             escape(e1, sizeof e1, got->bytes + got->off[i], got->len[i]),
             got->which[i],
             escape(e2, sizeof e2, want->bytes + want->off[i], want->len[i]),
             want->which[i]);
  else
    snprintf(msg, sz, "data \"%s\" cut at {%s}: %d frames, expected %d",
             e3, cuts, got->n, want->n);
}

static frames got_frames, want_frames;

static void test_line_random (void) {
  static const char alphabet[] = { '\n', '\r', 'a', '\0' };
  char data[200], msg[1200];
  size_t pieces[220];
  int round;
  rng_seed(20240601);
  for (round = 0; round < 2000; round++) {
    size_t len = rnd_below(sizeof data + 1), i;
    int np, keep = round % 3 == 2;
    neap_frame tmpl;
    const char *err;
    for (i = 0; i < len; i++) data[i] = alphabet[rnd() % 4];
    np = random_pieces(len, pieces, 220);
    req(&tmpl, NEAP_FRAME_LINE);
    tmpl.keep = keep;
    ref_lines(data, len, keep, &want_frames);
    err = stream_frames(data, len, pieces, np, &tmpl, &got_frames);
    if (err != NULL) FAIL("round %d: %s", round, err);
    if (got_frames.n != want_frames.n || got_frames.used != want_frames.used ||
        memcmp(got_frames.len, want_frames.len, sizeof(size_t) * (size_t)got_frames.n) != 0 ||
        memcmp(got_frames.bytes, want_frames.bytes, got_frames.used) != 0) {
      describe_diff(msg, sizeof msg, data, len, pieces, np, &got_frames, &want_frames);
      FAIL("round %d (keep %d): %s", round, keep, msg);
    }
  }
}

static int same_frames (const frames *a, const frames *b) {
  int i;
  if (a->n != b->n) return 0;
  for (i = 0; i < a->n; i++)
    if (a->len[i] != b->len[i] || a->which[i] != b->which[i] ||
        memcmp(a->bytes + a->off[i], b->bytes + b->off[i], a->len[i]) != 0)
      return 0;
  return 1;
}

typedef struct dset {
  const neap_delim *d;
  int nd;
  const char *alphabet;   /* what the data is made of */
} dset;

static void until_random (const dset *sets, int nsets, unsigned long long seed) {
  char data[160], msg[1200];
  size_t pieces[180];
  int round;
  rng_seed(seed);
  for (round = 0; round < 2000; round++) {
    const dset *s = &sets[round % nsets];
    size_t alen = strlen(s->alphabet) + 1;   /* and NUL */
    size_t len = rnd_below(sizeof data + 1), i;
    int np, keep = (round / nsets) % 2;
    neap_frame tmpl;
    const char *err;
    for (i = 0; i < len; i++) data[i] = s->alphabet[rnd_below(alen)];
    np = random_pieces(len, pieces, 180);
    req_until(&tmpl, s->d, s->nd);
    tmpl.keep = keep;
    ref_until(data, len, s->d, s->nd, keep, &want_frames);
    err = stream_frames(data, len, pieces, np, &tmpl, &got_frames);
    if (err != NULL) FAIL("round %d (set %d): %s", round, round % nsets, err);
    if (!same_frames(&got_frames, &want_frames)) {
      describe_diff(msg, sizeof msg, data, len, pieces, np, &got_frames, &want_frames);
      FAIL("round %d (set %d, keep %d): %s", round, round % nsets, keep, msg);
    }
  }
}

/* Sets where a shorter delimiter occurs in a longer one only as its prefix. */
static void test_until_random (void) {
  static const neap_delim d0[] = { D("\r"), D("\r\n") };
  static const neap_delim d1[] = { D("--"), D("---"), D("\0") };
  static const neap_delim d2[] = { D("\r\n"), D("\r\n\r\n"), D("\n") };
  static const neap_delim d3[] = { D("a\0a"), D("\0\0") };
  static const dset sets[] = {
    { d0, 2, "\r\na" }, { d1, 3, "-a" }, { d2, 3, "\r\na" }, { d3, 2, "a" }
  };
  until_random(sets, 4, 987654321ULL);
}

/* Sets where a delimiter occurs inside a longer one, not as its prefix. */
static void test_until_random_inner (void) {
  static const neap_delim d0[] = { D("\r\n\r\n"), D("\n") };
  static const neap_delim d1[] = { D("a-a"), D("-") };
  static const dset sets[] = { { d0, 2, "\r\na" }, { d1, 2, "-a" } };
  until_random(sets, 2, 1122334455ULL);
}

/* ---- the runner (the tests, then the framing scripts) ---- */

static const test tests[] = {
  T(test_init_free),
  T(test_reserve_commit),
  T(test_append_consume),
  T(test_reserve_reuses_after_full_consume),
  T(test_reserve_compacts),
  T(test_reserve_grows),
  T(test_buf_random_ops),
  T(test_read),
  T(test_exactly),
  T(test_all),
  T(test_line_empty_lines),
  T(test_line_max),
  T(test_line_toolarge_keeps_bytes),
  T(test_line_long_small_appends),
  T(test_line_random),
  T(test_until_long_delim_split_everywhere),
  T(test_until_earliest_of_max_delims),
  T(test_until_max),
  T(test_until_long_small_appends),
  T(test_until_random),
  T(test_until_random_inner),
};

/* Counts the test that just ran (and frees what it allocated). */
static void tally (const char *what, const char *name, int *passed, int *failed) {
  t_release();
  if (t_failed) {
    (*failed)++;
    printf("FAIL %s%s: %s\n", what, name, t_msg);
  }
  else
    (*passed)++;
  t_failed = 0;
  t_msg[0] = '\0';
}

int main (void) {
  size_t i, ntests = sizeof tests / sizeof tests[0];
  int passed = 0, failed = 0;
  for (i = 0; i < ntests; i++) {
    tests[i].fn();
    tally("", tests[i].name, &passed, &failed);
  }
  for (i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
    run_script(&scripts[i]);
    tally("script: ", scripts[i].name, &passed, &failed);
  }
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed == 0 ? 0 : 1;
}
