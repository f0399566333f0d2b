/* SPDX-License-Identifier: MIT */
/*
** The byte buffer and its framing: lines, any of several delimiters, exact
** sizes, everything. Plain C with no libuv and no Lua in it, so it is unit
** tested alone (spec/c/test_buf.c) and shared by streams and neap.proto.
*/
#ifndef NEAP_BUF_H
#define NEAP_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct neap_buf {
  char *base;        /* malloc'd storage, or NULL */
  size_t head;       /* first unconsumed byte */
  size_t tail;       /* one past the last byte */
  size_t cap;        /* size of 'base' */
  uint64_t consumed; /* bytes consumed since the buffer was made (never reset) */
} neap_buf;

typedef struct neap_delim {
  const char *p;
  size_t len;
} neap_delim;

#define NEAP_MAX_DELIMS 16
#define NEAP_DEFAULT_MAX_FRAME (1024 * 1024)

enum {
  NEAP_FRAME_READ,     /* up to n bytes (at least one) */
  NEAP_FRAME_EXACTLY,  /* exactly n bytes */
  NEAP_FRAME_LINE,     /* up to \n; \r\n stripped unless 'keep' */
  NEAP_FRAME_UNTIL,    /* up to any of 'delims' */
  NEAP_FRAME_ALL,      /* everything up to the end */
  NEAP_FRAME_PEEK      /* OK (consuming nothing) once more than n bytes are there */
};

/* Outcomes of neap__buf_frame. */
enum {
  NEAP_FRAME_MORE = 0,     /* not enough data yet */
  NEAP_FRAME_OK = 1,       /* a frame: 'len' bytes at the head, 'consume' to drop */
  NEAP_FRAME_END = 2,      /* at the end, and nothing (more) to give */
  NEAP_FRAME_TOOLARGE = 3  /* no delimiter within 'max' bytes */
};

typedef struct neap_frame {
  int kind;
  int keep;                      /* LINE/UNTIL: keep the delimiter in the frame */
  int ndelims;                   /* UNTIL */
  int which;                     /* result, UNTIL: index of the delimiter, -1 at end */
  size_t n;                      /* READ/EXACTLY */
  size_t max;                    /* LINE/UNTIL: largest frame; 0: no limit */
  const neap_delim *delims;      /* UNTIL */
  size_t scan;                   /* bytes already scanned with no match */
  /* results */
  size_t len;                    /* bytes of the frame at the head */
  size_t consume;                /* bytes to consume (frame + delimiter) */
} neap_frame;

void neap__buf_init (neap_buf *b);
void neap__buf_free (neap_buf *b);
char *neap__buf_reserve (neap_buf *b, size_t want, size_t *avail);
void neap__buf_commit (neap_buf *b, size_t n);
int neap__buf_append (neap_buf *b, const char *p, size_t n);
void neap__buf_consume (neap_buf *b, size_t n);

static inline const char *neap__buf_data (const neap_buf *b) {
  return b->base ? b->base + b->head : "";
}
static inline size_t neap__buf_len (const neap_buf *b) {
  return b->tail - b->head;
}

/*
** Looks for the frame described by 'f' at the head of 'b'. 'at_end' says
** that no more bytes will come. Scanning resumes at f->scan, so bytes are
** never scanned twice while the same request waits. Consumes nothing.
*/
int neap__buf_frame (const neap_buf *b, neap_frame *f, int at_end);

#endif
