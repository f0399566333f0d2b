/* SPDX-License-Identifier: MIT */
/*
** The byte buffer and its framing. The free space at the tail is handed to
** the producer (libuv's alloc callback) so bytes land in place; framing
** scans only bytes not scanned before, with memchr for the first byte.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN 4096

void neap__buf_init (neap_buf *b) {
  b->base = NULL;
  b->head = b->tail = b->cap = 0;
  b->consumed = 0;
}

void neap__buf_free (neap_buf *b) {   /* keeps the 'consumed' count */
  free(b->base);
  b->base = NULL;
  b->head = b->tail = b->cap = 0;
}

/*
** Returns room for at least 'want' bytes at the tail ('*avail' says how
** much there is), moving unconsumed bytes to the front only when that frees
** enough, else growing. NULL when out of memory.
*/
char *neap__buf_reserve (neap_buf *b, size_t want, size_t *avail) {
  size_t len;
  if (b->head == b->tail) b->head = b->tail = 0;   /* empty: start over */
  len = b->tail - b->head;
  if (b->cap - b->tail < want) {
    if (b->cap - len >= want) {        /* room enough once compacted */
      memmove(b->base, b->base + b->head, len);
    }
    else {
      size_t ncap = b->cap ? b->cap : BUF_MIN;
      char *nb;
      while (ncap - len < want) {
        if (ncap > ((size_t)-1) / 2) return NULL;
        ncap *= 2;
      }
      if (b->head > 0) {
        nb = malloc(ncap);
        if (nb == NULL) return NULL;
        memcpy(nb, b->base + b->head, len);
        free(b->base);
      }
      else {
        nb = realloc(b->base, ncap);
        if (nb == NULL) return NULL;
      }
      b->base = nb;
      b->cap = ncap;
    }
    b->head = 0;
    b->tail = len;
  }
  *avail = b->cap - b->tail;
  return b->base + b->tail;
}

void neap__buf_commit (neap_buf *b, size_t n) {
  b->tail += n;
}

int neap__buf_append (neap_buf *b, const char *p, size_t n) {
  size_t avail;
  char *dst;
  if (n == 0) return 0;
  dst = neap__buf_reserve(b, n, &avail);
  if (dst == NULL) return -1;
  memcpy(dst, p, n);
  b->tail += n;
  return 0;
}

void neap__buf_consume (neap_buf *b, size_t n) {
  b->consumed += n;
  b->head += n;   /* (reserve starts over when it finds the buffer empty) */
}

/*
** Finds the earliest delimiter at or after 'from'; on a tie at one position
** the longest delimiter wins. Returns the match position or -1, with 'which'.
*/
static long find_any (const char *p, size_t len, size_t from,
                      const neap_delim *d, int nd, int *which) {
  long best = -1;
  size_t bestlen = 0;
  int i;
  for (i = 0; i < nd; i++) {
    const char *m;
    size_t lim = best >= 0 ? (size_t)best + d[i].len : len;
    if (d[i].len == 0 || from >= len) continue;
    if (lim > len) lim = len;
    if (lim <= from) continue;
    if (d[i].len == 1)
      m = memchr(p + from, d[i].p[0], lim - from);
    else
      m = memmem(p + from, lim - from, d[i].p, d[i].len);
    if (m != NULL) {
      long pos = m - p;
      if (best < 0 || pos < best || (pos == best && d[i].len > bestlen)) {
        best = pos;
        bestlen = d[i].len;
        *which = i;
      }
    }
  }
  return best;
}

int neap__buf_frame (const neap_buf *b, neap_frame *f, int at_end) {
  const char *p = neap__buf_data(b);
  size_t len = neap__buf_len(b);
  switch (f->kind) {
    case NEAP_FRAME_READ:
      if (len == 0) return at_end ? NEAP_FRAME_END : NEAP_FRAME_MORE;
      f->len = f->consume = len < f->n ? len : f->n;
      return NEAP_FRAME_OK;
    case NEAP_FRAME_EXACTLY:
      if (len >= f->n) {
        f->len = f->consume = f->n;
        return NEAP_FRAME_OK;
      }
      return at_end ? NEAP_FRAME_END : NEAP_FRAME_MORE;
    case NEAP_FRAME_PEEK:   /* more than n bytes (n is 0 but for wait_readable{above=}) */
      if (len <= f->n) return at_end ? NEAP_FRAME_END : NEAP_FRAME_MORE;
      f->len = len;
      f->consume = 0;
      return NEAP_FRAME_OK;
    case NEAP_FRAME_ALL:
      if (!at_end) return NEAP_FRAME_MORE;
      f->len = f->consume = len;
      return NEAP_FRAME_OK;
    case NEAP_FRAME_LINE: {
      const char *nl = NULL;
      if (f->scan < len) nl = memchr(p + f->scan, '\n', len - f->scan);
      if (nl != NULL) {
        size_t pos = nl - p;
        if (f->max && pos > f->max) return NEAP_FRAME_TOOLARGE;
        f->consume = pos + 1;
        if (f->keep) f->len = pos + 1;
        else f->len = (pos > 0 && p[pos - 1] == '\r') ? pos - 1 : pos;
        return NEAP_FRAME_OK;
      }
      f->scan = len;
      if (f->max && len > f->max) return NEAP_FRAME_TOOLARGE;
      if (at_end) {
        if (len == 0) return NEAP_FRAME_END;
        f->len = f->consume = len;   /* an unterminated last line */
        return NEAP_FRAME_OK;
      }
      return NEAP_FRAME_MORE;
    }
    case NEAP_FRAME_UNTIL: {
      size_t maxd = 0, from;
      int i, which = -1;
      long pos;
      for (i = 0; i < f->ndelims; i++)
        if (f->delims[i].len > maxd) maxd = f->delims[i].len;
      /* a delimiter may straddle the scanned part and the new bytes */
      from = f->scan >= maxd ? f->scan - (maxd - 1) : 0;
      if (maxd == 0) from = f->scan;
      pos = find_any(p, len, from, f->delims, f->ndelims, &which);
      if (pos >= 0) {
        size_t dl = f->delims[which].len;
        /* a delimiter starting at or before the match may still be
        ** arriving at the tail: it would win, so wait for it */
        if (!at_end) {
          for (i = 0; i < f->ndelims; i++) {
            const neap_delim *d = &f->delims[i];
            size_t q = len >= d->len ? len - d->len + 1 : 0;
            for (; q <= (size_t)pos; q++) {
              if (q == (size_t)pos && d->len <= dl) break;
              if (memcmp(d->p, p + q, len - q) == 0) {
                f->scan = q;
                return NEAP_FRAME_MORE;
              }
            }
          }
        }
        if (f->max && (size_t)pos > f->max) return NEAP_FRAME_TOOLARGE;
        f->which = which;
        f->len = f->keep ? pos + dl : (size_t)pos;
        f->consume = pos + dl;
        return NEAP_FRAME_OK;
      }
      f->scan = len;
      if (f->max && len > f->max) return NEAP_FRAME_TOOLARGE;
      if (at_end) {
        if (len == 0) return NEAP_FRAME_END;
        f->which = -1;
        f->len = f->consume = len;
        return NEAP_FRAME_OK;
      }
      return NEAP_FRAME_MORE;
    }
  }
  return NEAP_FRAME_END;
}
