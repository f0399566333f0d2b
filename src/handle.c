/* SPDX-License-Identifier: MIT */
/*
** The base of every handle: the Lua box that points at a malloc'd struct
** embedding the libuv handle, the host's list of handles, anchoring while
** the engine needs the box, and close: idempotent, shared with __gc and
** __close. Memory is freed only in the libuv close callback.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "neapi.h"

/*
** Pushes a new box for a handle of metatable 'mt', pointing at nothing
** (a closed handle) until neap__handle_init fills it, so an allocation
** error leaves it consistent.
*/
neap_handle **neap__handle_newbox (lua_State *L, const char *mt) {
  void **box = lua_newuserdatauv(L, NEAP_BOX_SIZE, 1);
  box[0] = NULL;
  box[1] = (void *)mt;   /* the tag neap__box_test compares */
  luaL_setmetatable(L, mt);
  return (neap_handle **)box;
}

void neap__handle_init (neap_host *host, neap_handle *h,
                        const neap_handle_vt *vt, neap_handle **box) {
  h->vt = vt;
  h->host = host;
  h->box = box;
  h->anchor = LUA_NOREF;
  h->cbref = LUA_NOREF;
  h->flags = 0;
  h->prev = NULL;
  h->next = host->handles;
  if (host->handles) host->handles->prev = h;
  host->handles = h;
  host->nhandles++;
  if (box) *box = h;
}

/* The handle at 'idx' or NULL when it is not of type 'mt' or closed. */
void *neap__handle_test (lua_State *L, int idx, const char *mt) {
  neap_handle **box = neap__box_test(L, idx, mt);
  return box ? *box : NULL;
}

/*
** The open handle at 'idx'; raises on a wrong type or a closed handle.
** The type is the box's tag (neap__box_test), not its metatable:
** luaL_checkudata's lookup costs a strcmp on every call.
*/
void *neap__handle_check (lua_State *L, int idx, const char *mt,
                          const char *what) {
  neap_handle **box = neap__box_test(L, idx, mt);
  if (box == NULL) luaL_typeerror(L, idx, mt);   /* the usual error */
  if (*box == NULL)
    luaL_error(L, "attempt to use a closed %s", what);
  return *box;
}

/* Keeps the box at 'idx' reachable while the engine needs it. */
void neap__handle_anchor (lua_State *L, neap_handle *h, int idx) {
  if (h->anchor != LUA_NOREF || h->box == NULL) return;
  lua_pushvalue(L, idx);
  h->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
}

void neap__handle_unanchor (neap_handle *h) {
  if (h->anchor == LUA_NOREF) return;
  if (!h->host->dying)
    luaL_unref(h->host->L, LUA_REGISTRYINDEX, h->anchor);
  h->anchor = LUA_NOREF;
}

/*
** The lifecycle of a handle, owned by this file alone:
**   init -> (close begins: CLOSING) -> (uv_close starts, or the kind says it
**   has none: UVCLOSE) -> the close callback: release (unlinked, the kind's
**   vt->release, freed).
** nhandles counts handles not yet CLOSING (nor UNCOUNTED); pending_closes
** counts those between UVCLOSE and release. A handle may give its libuv
** handle back early (a child's output pipe at EOF: DETACHING, then UVGONE)
** and be released later without one.
*/

/* Takes 'h' off its host's list of handles. */
static void handle_unlink (neap_handle *h) {
  neap_host *host = h->host;
  if (h->prev) h->prev->next = h->next;
  else host->handles = h->next;
  if (h->next) h->next->prev = h->prev;
  h->next = h->prev = NULL;
}

/* Begins the close of 'h': the box goes dead at once (a later use raises),
** its callbacks and anchor are dropped. */
static void handle_begin_close (neap_handle *h) {
  neap_host *host = h->host;
  assert(!(h->flags & NEAP_H_CLOSING));
  h->flags |= NEAP_H_CLOSING;
  if (!(h->flags & NEAP_H_UNCOUNTED)) {
    assert(host->nhandles > 0);
    host->nhandles--;
  }
  if (h->box) {
    *h->box = NULL;
    h->box = NULL;
  }
  if (h->cbref != LUA_NOREF) {
    if (!host->dying) luaL_unref(host->L, LUA_REGISTRYINDEX, h->cbref);
    h->cbref = LUA_NOREF;
  }
  if (host->dying) h->anchor = LUA_NOREF;   /* (the registry is going) */
  else neap__handle_unanchor(h);
}

/*
** Closes 'h': waiters are woken by the type's close, and the memory goes in
** the close callback. Idempotent; close(), __gc, __close all come here.
*/
void neap__handle_close (neap_handle *h) {
  if (h->flags & NEAP_H_CLOSING) return;
  handle_begin_close(h);
  h->vt->close(h);
}

/*
** Undoes neap__handle_init after the libuv init failed (no libuv handle to
** close): the box is dead and 'h' is freed now.
*/
void neap__handle_undo_init (neap_handle *h) {
  handle_begin_close(h);
  handle_unlink(h);
  free(h);
}

/* The last step of every handle: unlinked, the kind's own memory, freed. */
void neap__handle_release (neap_handle *h) {
  neap_host *host = h->host;
  assert(h->flags & NEAP_H_UVCLOSE);
  assert(host->pending_closes > 0);
  handle_unlink(h);
  if (h->vt->release) h->vt->release(h);
  free(h);
  neap__host_closed(host);
}

/*
** Releases 'h', which has no libuv handle left to close, at the loop's next
** check phase rather than now: its close may come from user code that a C
** function runs while it holds 'h' (an __index of an options table, a __gc
** during an allocation), and 'h' must outlive that call.
*/
void neap__handle_release_later (neap_handle *h) {
  assert(h->flags & NEAP_H_UVCLOSE);
  h->next_release = h->host->releases;
  h->host->releases = h;
}

/* The releases neap__handle_release_later put off (from the check phase). */
void neap__handle_release_pending (neap_host *host) {
  while (host->releases) {
    neap_handle *h = host->releases;
    host->releases = h->next_release;
    neap__handle_release(h);
  }
}

/* The one close callback: every libuv handle's data points at its handle. */
static void handle_closed (uv_handle_t *hd) {
  neap__handle_release(hd->data);
}

/*
** The close of 'h' reaches its resources: from here it is counted in
** pending_closes until neap__handle_release. Returns 0 when that had
** happened already.
*/
int neap__handle_closing (neap_handle *h) {
  if (h->flags & NEAP_H_UVCLOSE) return 0;
  h->flags |= NEAP_H_UVCLOSE;
  h->host->pending_closes++;
  return 1;
}

/*
** Starts uv_close of 'uvh', the one libuv handle of 'h' (its data must
** point at 'h'); 'h' is released in the callback. Idempotent. A handle
** whose libuv handle is gone already is released now; one whose libuv
** handle is still closing (detached) is released by that callback.
*/
void neap__handle_uvclose (neap_handle *h, uv_handle_t *uvh) {
  if (!neap__handle_closing(h)) return;
  if (h->flags & NEAP_H_UVGONE) neap__handle_release_later(h);
  else if (!(h->flags & NEAP_H_DETACHING))
    neap__host_uvclose(h->host, uvh, handle_closed);
}

/* A detached libuv handle has closed: release 'h' if its close came meanwhile. */
static void handle_detached (uv_handle_t *hd) {
  neap_handle *h = hd->data;
  h->flags = (h->flags & ~NEAP_H_DETACHING) | NEAP_H_UVGONE;
  neap__host_closed(h->host);        /* (the detach's own count) */
  if (h->flags & NEAP_H_UVCLOSE) neap__handle_release(h);   /* closed meanwhile */
}

/*
** Gives back the libuv handle of 'h' (and its descriptor) before 'h' is
** closed: 'h' stays a valid, closed-for-I/O handle that no longer counts as
** open, and is released later by neap__handle_uvclose.
*/
void neap__handle_detach_uv (neap_handle *h, uv_handle_t *uvh) {
  assert(!(h->flags & (NEAP_H_DETACHING | NEAP_H_UVGONE | NEAP_H_UVCLOSE)));
  h->flags |= NEAP_H_DETACHING;
  neap__handle_uncount(h);
  h->host->pending_closes++;
  neap__host_uvclose(h->host, uvh, handle_detached);
}

/* 'h' no longer counts as an open handle (its descriptor went). */
void neap__handle_uncount (neap_handle *h) {
  if (h->flags & (NEAP_H_UNCOUNTED | NEAP_H_CLOSING)) return;
  h->flags |= NEAP_H_UNCOUNTED;
  h->host->nhandles--;
}

/* x:close() of every handle type: true; idempotent (a closed box is fine). */
int neap__handle_close_l (lua_State *L, const char *mt) {
  neap_handle **box = neap__box_check(L, 1, mt);
  if (*box) neap__handle_close(*box);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc and __close of every handle type (and close() when it returns nothing). */
int neap__handle_gc (lua_State *L) {
  void **box = lua_touserdata(L, 1);
  /* a box's tag names a handle type's metatable in the registry; another
  ** userdata given one of those metatables (debug.setmetatable) is left be */
  int ok = box != NULL && lua_rawlen(L, 1) == NEAP_BOX_SIZE &&
           lua_rawgetp(L, LUA_REGISTRYINDEX, box[1]) == LUA_TTABLE;
  lua_settop(L, 1);
  if (ok && box[0]) neap__handle_close(box[0]);
  return 0;
}

/* Teardown: every handle still here is closed at once, nothing lingers. */
void neap__handle_close_all (neap_host *host) {
  neap_handle *h, *next;
  for (h = host->handles; h; h = next) {
    next = h->next;
    if (!(h->flags & NEAP_H_CLOSING)) handle_begin_close(h);
    h->vt->force(h);
  }
}

