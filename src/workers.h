/* SPDX-License-Identifier: MIT */
/* neap --workers N: what main.c calls (src/workers.c, the binary only). */
#ifndef NEAP_WORKERS_H
#define NEAP_WORKERS_H

#include "neap.h"

/* The N of --workers: 1 to 1024, or 'auto' (the CPUs this process may use); 0 when bad. */
int workers_count (const char *v);

/* Becomes the supervisor: needs a script (not "-") or -e code, compiles
** them (never runs them), then starts lua/neap/workers.lua as the main
** task. 0, or 1 after a message on stderr. */
int workers_start (neap_host *h, int count, char **codes, int ncodes, int argc,
                   char **argv, int script, int wi, int wn);

/* In a worker: reads and removes NEAP_WORKER (before anything else runs). */
void worker_from_env (void);

/* In a worker: sets neap.worker = { id =, count = }; nothing otherwise. */
void worker_set (neap_host *h);

#endif
