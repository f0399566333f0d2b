/* SPDX-License-Identifier: MIT */
/*
** The neap binary: argument handling only. Everything else is the host
** (host.c), shared with the Lua module and the C library.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>

#include "neap.h"

static void usage (FILE *f, const char *prog) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Runs a Lua 5.4 script on the neap event engine.\n"
    "  -e code   run 'code' as the main task\n"
    "  -i        interactive prompt (the default on a terminal)\n"
    "  -v        print the version\n"
    "  -h        print this help\n"
    "  -         run the script read from standard input\n"
    "  --        stop handling options\n", prog);
}

/* Descriptors 0-2 are opened on /dev/null when closed, so that no socket
** or loop descriptor lands on them and neap.stdin reads EOF (as Node does). */
static void fix_stdio (void) {
  int fd;
  for (fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

int main (int argc, char **argv) {
  const char *code = NULL;
  int i, status, interactive = 0;
  neap_host *h;
  fix_stdio();
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout, argv[0]);
      return 0;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("neap %s (%s, libuv %s)\n", NEAP_VERSION, LUA_RELEASE,
             uv_version_string());
      return 0;
    }
    if (strcmp(a, "-i") == 0) { interactive = 1; continue; }
    if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "neap: '-e' needs an argument\n");
        usage(stderr, argv[0]);
        return 1;
      }
      code = argv[i];
      continue;
    }
    fprintf(stderr, "neap: unknown option '%s'\n", a);
    usage(stderr, argv[0]);
    return 1;
  }
  h = neap_new(NULL);
  if (h == NULL) {
    fprintf(stderr, "neap: cannot start (out of memory?)\n");
    return 1;
  }
  neap_exit_on_signals(h);
  if (code != NULL && i < argc) {   /* -e code script: the code, then the script */
    status = neap_dostring(h, code, "=(command line)");
    if (status == 0) status = neap_dofile(h, argv[i], argc - i, argv + i);
  }
  else if (code != NULL)
    status = neap_dostring(h, code, "=(command line)");
  else if (i < argc)
    status = neap_dofile(h, argv[i], argc - i, argv + i);
  else if (interactive || isatty(0))
    status = neap_dostring(h, "require('neap.repl').run()", "=(repl)");
  else
    status = neap_dofile(h, "-", 1, (char *[]){"-", NULL});
  if (status != 0) {
    fprintf(stderr, "neap: %s\n", neap_error(h));
    neap_free(h);
    return 1;
  }
  status = neap_run(h);
  neap_free(h);
  return status;
}
