/* 16-17: neap_new with the Nth allocation failing, N = 0, 1, 2, ... (linked
** with --wrap for malloc, calloc, realloc and free, so that the host's own
** calls, Lua's allocator among them, go through the counters below):
** every block a failed call took is given back (the live count returns to
** where it was). A lua_newstate that fails frees what it made through the
** host's allocator, into the small blocks' lists: those are emptied too. */
#include <stdio.h>
#include <stdlib.h>
#include "neap.h"
void *__real_malloc (size_t n);
void *__real_calloc (size_t a, size_t b);
void *__real_realloc (void *p, size_t n);
void __real_free (void *p);
static long live, countdown = -1;
static int fail (void) { return countdown >= 0 && countdown-- == 0; }
void *__wrap_malloc (size_t n) {
  void *p = fail() ? NULL : __real_malloc(n);
  if (p) live++;
  return p;
}
void *__wrap_calloc (size_t a, size_t b) {
  void *p = fail() ? NULL : __real_calloc(a, b);
  if (p) live++;
  return p;
}
void *__wrap_realloc (void *o, size_t n) {
  void *p = fail() ? NULL : __real_realloc(o, n);
  if (p && o == NULL) live++;
  return p;
}
void __wrap_free (void *p) { if (p) live--; __real_free(p); }
int main (void) {
  long n, leaks = 0;
  for (n = 0; n < 100000; n++) {
    long before = live;
    neap_host *h;
    countdown = n;
    h = neap_new(NULL);
    countdown = -1;
    if (h != NULL) { neap_free(h); if (live != before) { printf("leak after success\n"); return 1; } break; }
    if (live != before) { printf("N=%ld: neap_new failed and left %ld blocks\n", n, live - before); leaks++; }
  }
  printf("%ld failing points, %ld leaked\n", n, leaks);
  return leaks != 0;
}
