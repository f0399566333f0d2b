/* SPDX-License-Identifier: MIT */
/*
** neap: an event host for Lua 5.4 on libuv. This is the whole public C API:
** make a host (on its own loop or on yours), reach its lua_State, run a
** script as the main task, run the loop, post events from any thread, free.
*/
#ifndef NEAP_H
#define NEAP_H

#include <stddef.h>
#include <uv.h>
#include <lua.h>

#define NEAP_VERSION "0.1.0"

typedef struct neap_host neap_host;

/* A new host on 'loop', or on a loop of its own when 'loop' is NULL. */
neap_host *neap_new (uv_loop_t *loop);

/* The host's Lua state: add your own functions to it as usual. */
lua_State *neap_lua (neap_host *h);

/* The host's loop. */
uv_loop_t *neap_loop (neap_host *h);

/*
** Loads the script at 'path' ("-" or NULL: standard input) and starts it as
** the main task with 'arg' set from argv as lua5.4 does (argv[0] is the
** script). Returns 0, or non-zero with the message in neap_error(h).
*/
int neap_dofile (neap_host *h, const char *path, int argc, char **argv);

/* The same for a chunk of code given as a string. */
int neap_dostring (neap_host *h, const char *code, const char *name);

/*
** Runs the loop until no task can run and no handle is active. Returns 0,
** or 1 when the main task failed (its message and traceback are in
** neap_error(h) and were printed to stderr).
*/
int neap_run (neap_host *h);

/* The last error's message with its traceback, or NULL. */
const char *neap_error (neap_host *h);

/*
** Posts a named event with a copy of 'len' bytes of 'data' to the host's
** scripts. Safe from any thread. Returns 0, or a negative UV error code.
*/
int neap_post (neap_host *h, const char *name, const void *data, size_t len);

/*
** The binary's signal policy: INT and TERM with no neap.signal handler end
** the process as their default action would, after passing the signal to
** the children the host spawned (so none is left orphaned).
*/
void neap_exit_on_signals (neap_host *h);

/* Closes every handle the host owns, its Lua state, and its own loop. */
void neap_free (neap_host *h);

/* The C module: require "neap.core". */
int luaopen_neap_core (lua_State *L);

#endif
