/* SPDX-License-Identifier: MIT */
/*
** libFuzzer target for src/buf.c: arbitrary bytes arrive in arbitrary
** splits; LINE and UNTIL framing must give the frames a simple reference
** framing (written separately here, on the whole input) gives.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Reference: the frames of 'p' split on '\n' (a "\r" before it dropped). */
static size_t ref_line (const char *p, size_t len, size_t *flen, int at_end) {
  const char *nl = memchr(p, '\n', len);
  if (nl == NULL) {
    if (!at_end || len == 0) return 0;
    *flen = len;
    return len;
  }
  *flen = (size_t)(nl - p);
  if (*flen > 0 && p[*flen - 1] == '\r') (*flen)--;
  return (size_t)(nl - p) + 1;
}

/* Reference: the earliest match of any delimiter, the longest on a tie. */
static long ref_until (const char *p, size_t len, const neap_delim *d, int nd,
                       int *which) {
  size_t i;
  int k;
  for (i = 0; i < len; i++) {
    long best = -1;
    for (k = 0; k < nd; k++)
      if (d[k].len <= len - i && memcmp(p + i, d[k].p, d[k].len) == 0 &&
          (best < 0 || d[k].len > d[best].len))
        best = k;
    if (best >= 0) {
      *which = (int)best;
      return (long)i;
    }
  }
  return -1;
}

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  neap_buf b;
  neap_frame f;
  neap_delim d[3];
  char dstore[3][4];
  size_t pos = 0, got = 0, i;
  int nd, mode;
  const char *in;
  size_t inlen;
  if (size < 8) return 0;
  mode = data[0] & 1;
  /* up to three delimiters of 1 to 3 bytes from a small alphabet */
  nd = 1 + data[1] % 3;
  for (i = 0; i < (size_t)nd; i++) {
    size_t l = 1 + data[2 + i] % 3, j;
    for (j = 0; j < l; j++) dstore[i][j] = "ab\r\n"[(data[2 + i] >> (2 + 2 * j)) & 3];
    d[i].p = dstore[i];
    d[i].len = l;
  }
  in = (const char *)data + 5;
  inlen = size - 5;
  neap__buf_init(&b);
  memset(&f, 0, sizeof f);
  f.kind = mode ? NEAP_FRAME_UNTIL : NEAP_FRAME_LINE;
  f.delims = d;
  f.ndelims = nd;
  while (pos <= inlen) {
    /* feed a piece whose size comes from the data itself */
    size_t piece = pos < inlen ? 1 + (unsigned char)in[pos] % 7 : 0;
    int at_end = (pos + piece >= inlen), r;
    if (pos + piece > inlen) piece = inlen - pos;
    if (piece) CHECK(neap__buf_append(&b, in + pos, piece) == 0);
    pos += piece;
    for (;;) {
      r = neap__buf_frame(&b, &f, at_end);
      if (r != NEAP_FRAME_OK) break;
      {
        const char *rest = in + got;
        size_t restlen = pos - got, flen = 0, consume;
        if (mode) {
          int which = -1;
          long m = ref_until(rest, inlen - got, d, nd, &which);
          if (m < 0 || (size_t)m + d[which].len > inlen - got) {
            /* no delimiter in the whole rest: the end's leftover */
            CHECK(at_end && f.which == -1 && f.len == restlen);
            consume = restlen;
          }
          else {
            CHECK(f.which >= 0 && (size_t)m == f.len && d[which].len == d[f.which].len);
            CHECK(memcmp(d[which].p, d[f.which].p, d[which].len) == 0);
            consume = (size_t)m + d[which].len;
          }
        }
        else {
          consume = ref_line(rest, restlen, &flen, at_end);
          CHECK(consume == f.consume && flen == f.len);
        }
        CHECK(memcmp(neap__buf_data(&b), rest, f.len) == 0);
        CHECK(consume == f.consume);
        neap__buf_consume(&b, f.consume);
        got += f.consume;
        f.scan = 0;
      }
    }
    if (r == NEAP_FRAME_END) break;
    if (pos == inlen && piece == 0) break;
  }
  CHECK(got == inlen || !mode || neap__buf_len(&b) == inlen - got);
  neap__buf_free(&b);
  return 0;
}
