/* SPDX-License-Identifier: MIT */
/*
** The harness of the C unit tests (spec/c/test_*.c): libuv-style ASSERT
** macros that record the first failure of the running test and return, and
** a runner whose last line is "N passed, M failed" (spec/run.sh sums it).
*/
#ifndef NEAP_TEST_H
#define NEAP_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed;          /* the running test has failed */
static char t_msg[2048];      /* why: the first failure of the running test */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline void fail_at (const char *file, int line, const char *fmt, ...) {
  va_list ap;
  int n;
  if (t_failed) return;
  t_failed = 1;
  n = snprintf(t_msg, sizeof t_msg, "%s:%d: ", file, line);
  if (n < 0 || (size_t)n >= sizeof t_msg) return;
  va_start(ap, fmt);
  vsnprintf(t_msg + n, sizeof t_msg - (size_t)n, fmt, ap);
  va_end(ap);
}

/* Writes 'p[0..n)' to 'out' (of size 'sz') with C escapes, truncated. */
static inline const char *escape (char *out, size_t sz, const char *p, size_t n) {
  size_t o = 0, i;
  for (i = 0; i < n && o + 8 < sz; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '\n') o += (size_t)snprintf(out + o, sz - o, "\\n");
    else if (c == '\r') o += (size_t)snprintf(out + o, sz - o, "\\r");
    else if (c == 0) o += (size_t)snprintf(out + o, sz - o, "\\0");
    else if (c == '"' || c == '\\') o += (size_t)snprintf(out + o, sz - o, "\\%c", c);
    else if (c < 32 || c > 126) o += (size_t)snprintf(out + o, sz - o, "\\x%02x", c);
    else out[o++] = (char)c;
  }
  if (i < n && o + 4 <= sz) { memcpy(out + o, "...", 3); o += 3; }
  out[o] = '\0';
  return out;
}

#define FAIL(...) \
  do { fail_at(__FILE__, __LINE__, __VA_ARGS__); return; } while (0)

#define ASSERT_TRUE(c) \
  do { if (!(c)) FAIL("assertion failed: %s", #c); } while (0)

#define ASSERT_EQ(a, b) \
  do { \
    long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) FAIL("%s == %s: got %lld, expected %lld", #a, #b, a_, b_); \
  } while (0)

/* p[0..n) must equal s[0..sn) */
#define ASSERT_STR(p, n, s, sn) \
  do { \
    const char *p_ = (p), *s_ = (s); \
    size_t n_ = (n), sn_ = (sn); \
    if (n_ != sn_ || (n_ > 0 && memcmp(p_, s_, n_) != 0)) { \
      char e1_[300], e2_[300]; \
      FAIL("%s: got \"%s\" (%zu bytes), expected \"%s\" (%zu bytes)", #p, \
           escape(e1_, sizeof e1_, p_, n_), n_, \
           escape(e2_, sizeof e2_, s_, sn_), sn_); \
    } \
  } while (0)

/* Returns from the caller when a helper it called has failed. */
#define CHECK() do { if (t_failed) return; } while (0)

/* The C strings 'a' and 'b' must be equal ('a' may be NULL: a failure). */
#define ASSERT_STREQ(a, b) \
  do { \
    const char *a_ = (a), *b_ = (b); \
    if (a_ == NULL || strcmp(a_, b_) != 0) \
      FAIL("%s: got \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_); \
  } while (0)

/* The C string 'a' must begin with 'b'. */
#define ASSERT_PREFIX(a, b) \
  do { \
    const char *a_ = (a), *b_ = (b); \
    if (a_ == NULL || strncmp(a_, b_, strlen(b_)) != 0) \
      FAIL("%s: got \"%s\", expected it to begin with \"%s\"", #a, \
           a_ ? a_ : "(null)", b_); \
  } while (0)

typedef struct test {
  const char *name;
  void (*fn) (void);
} test;

#define T(name) { #name, name }

/*
** Runs 'tests[0..n)', calling 'release' after each (to free what a test
** that returned early left); prints each failure and the sum. Returns the
** exit status.
*/
static inline int run_tests (const test *tests, size_t n,
                             void (*release) (void)) {
  size_t i;
  int passed = 0, failed = 0;
  for (i = 0; i < n; i++) {
    t_failed = 0;
    t_msg[0] = '\0';
    tests[i].fn();
    release();
    if (t_failed) {
      failed++;
      printf("FAIL %s: %s\n", tests[i].name, t_msg);
    }
    else
      passed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed == 0 ? 0 : 1;
}

#endif
