--- neap.fs: files. neap.open opens one as a stream whose reads and writes
-- run on libuv's thread pool; its mode is io.open's, turned into open(2)
-- flags by neap.util from the core's UV_FS_O_* values. The file system by
-- path (stat, readdir, rename ...) and neap.watch are the core's (src/fsops.c,
-- src/watch.c).
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts, nonul, mode_flags = util.argerr, util.checkopts, util.nonul, util.mode_flags
local type = type

local fs = {}

--- neap.open(path [, mode [, {timeout=}]]) -> file stream | nil, err, code
-- mode as io.open: "r", "w", "a", "r+", "w+", "a+" (a "b" is ignored).
-- Reads and writes run on libuv's thread pool; s:seek() moves.
function fs.open(path, mode, opts)
  if type(path) ~= "string" then argerr("open", 1, "path must be a string") end
  nonul("open", 1, path, "path")
  if mode ~= nil and type(mode) ~= "string" then argerr("open", 2, "mode must be a string") end
  local flags = mode_flags("open", 2, mode)
  opts = checkopts("open", 3, opts)
  local m = (mode or "r"):gsub("b", "")
  return core.open(path, flags, m:sub(1, 1) == "a", opts.timeout)
end

return fs
