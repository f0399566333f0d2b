--- neap: an event host for Lua 5.4 on libuv.
-- The public surface over the C core (neap.core): tasks and their waits,
-- queues, streams over TCP, Unix sockets and stdio, servers, timers. The C
-- core owns bytes, handles and parking; this file owns policy: option
-- tables, serve(), lines(), first(), queues and run().
local core = require "neap.core"

local neap = {}
neap.version = core.version()
neap.core = nil   -- never for users: require "neap.core" only inside neap

local tpack, tunpack, select, type, error = table.pack, table.unpack, select, type, error
local tostring, ipairs = tostring, ipairs

local util = require "neap.util"
local argerr, checkopts, mode_flags = util.argerr, util.checkopts, util.mode_flags
local nonul, check_port = util.nonul, util.check_port

-- ============================================================ tasks

--- neap.task([name,] fn, ...) -> task: runs fn(...) as a task.
neap.task = core.task
--- neap.sleep(seconds) -> true (a cancelled task raises "cancelled" here)
neap.sleep = core.sleep
--- neap.now() -> seconds on a monotonic clock
neap.now = core.now
--- neap.current() -> the running task, or nil outside tasks
neap.current = core.current

--- neap.run(fn, ...) -> fn's results: runs fn as a task and the loop until
-- it is done; re-raises its error with its traceback. Inside a task it
-- runs fn as a task and joins it.
function neap.run(fn, ...)
  if type(fn) ~= "function" then argerr("run", 1, "function expected, got " .. type(fn)) end
  local t = core.task(fn, ...)
  t:_quiet()   -- its error is raised here instead
  if core.current() then
    local r = tpack(t:join())
    if r[1] then return tunpack(r, 2, r.n) end
    error(r[2], 0)
  end
  local done = core.run_until(t)
  if not done then
    t:cancel()
    error("neap.run: the task waits for something that can never happen " ..
          "(nothing left to wake it)", 2)
  end
  local err, tb = core.task_error(t)
  if t:status() == "failed" then
    if type(err) == "string" then error(tb or err, 0) end
    error(err, 0)
  end
  local r = tpack(t:join())
  if not r[1] then error(r[2], 0) end
  return tunpack(r, 2, r.n)
end

--- neap.buffer([max_frame]) -> buffer: the engine's framing with no I/O (see neap.proto)
neap.buffer = core.buffer

--- neap.loop([mode]) -> more: runs the loop from plain Lua ("default", "once", "nowait").
neap.loop = core.loop

--- neap.first(f1, f2, ... [, {timeout=}]) -> index, results of the first to
-- finish; the others are cancelled. A function that raises first re-raises.
function neap.first(...)
  local n = select("#", ...)
  local fns = { ... }
  local opts = {}
  if n > 0 and type(fns[n]) == "table" then opts = checkopts("first", n, fns[n]); fns[n] = nil; n = n - 1 end
  if n == 0 then argerr("first", 1, "at least one function expected") end
  for i = 1, n do
    if type(fns[i]) ~= "function" then argerr("first", i, "function expected, got " .. type(fns[i])) end
  end
  local me = core.current()
  if not me then error("neap.first: a wait must run inside a task (neap.task or neap.run)", 2) end
  local tasks, winner = {}, nil
  for i = 1, n do
    tasks[i] = core.task(function()
      local r = tpack(pcall(fns[i]))
      if not winner then
        winner = i
        core.wake(me, i, r)
      end
    end)
  end
  local ok, i, r, code = pcall(core.park, opts.timeout, "first")
  for j = 1, n do if j ~= i then tasks[j]:cancel() end end
  if not ok then error(i, 0) end   -- this task was cancelled
  if type(i) ~= "number" then
    winner = winner or 0
    return nil, r, code
  end
  if not r[1] then error(r[2], 0) end
  return i, tunpack(r, 2, r.n)
end

-- ============================================================ queues

--- neap.queue([size]) -> queue: q:put, q:get, q:count (neap.queue)
neap.queue = require("neap.queue").new

-- ============================================================ streams and sockets

local net = require "neap.net"   -- also s:on, s:off, server:on, server:serve, u:send, u:connect
--- neap.fd(n) -> stream over an inherited descriptor; neap.stdin, stdout, stderr
neap.fd = net.fd
--- neap.resolve(host, {timeout=}) -> list of addresses | nil, err, code
neap.resolve = net.resolve
--- neap.listen("tcp", host, port [, opts]) | ("unix", path [, opts]) -> server | nil, err, code
neap.listen = net.listen
--- neap.connect("tcp", host, port [, opts]) | ("unix", path [, opts]) -> stream | nil, err, code
neap.connect = net.connect
--- neap.udp{host=, port=, reuseaddr=, family=} -> socket | nil, err, code
neap.udp = net.udp
setmetatable(neap, { __index = net.stdio })

-- ============================================================ processes

local process = require "neap.process"
--- neap.spawn{...}, neap.pipeline(...), neap.signum(name): see neap.process
neap.spawn, neap.pipeline, neap.signum = process.spawn, process.pipeline, process.signum

-- ============================================================ files

--- neap.open(path [, mode [, {timeout=}]]) -> file stream | nil, err, code
-- mode as io.open: "r", "w", "a", "r+", "w+", "a+" (a "b" is ignored).
-- Reads and writes run on libuv's thread pool; s:seek() moves.
function neap.open(path, mode, opts)
  if type(path) ~= "string" then argerr("open", 1, "path must be a string") end
  nonul("open", 1, path, "path")
  if mode ~= nil and type(mode) ~= "string" then argerr("open", 2, "mode must be a string") end
  local flags = mode_flags("open", 2, mode)
  opts = checkopts("open", 3, opts)
  local m = (mode or "r"):gsub("b", "")
  return core.open(path, flags, m:sub(1, 1) == "a", opts.timeout)
end

--- neap.stat, lstat, readdir, mkdir, rmdir, unlink, rename, realpath, chmod,
-- symlink, readlink, mkdtemp, copyfile: the file system by path, each on
-- libuv's thread pool while the task waits (docs/fs.md).
for _, name in ipairs { "stat", "lstat", "readdir", "mkdir", "rmdir", "unlink", "rename",
                        "realpath", "chmod", "symlink", "readlink", "mkdtemp", "copyfile" } do
  neap[name] = core[name]
end

--- neap.watch(path [, opts]) -> watcher | nil, err, code: w:next{timeout=}, w:close()
neap.watch = core.watch

-- ============================================================ signals

local function signal_task(fn, name) core.task(fn, name) end

--- neap.signal(sig, fn) -> watcher: fn(name) runs in a task at each delivery;
-- watcher:stop(). While a watcher exists, INT and TERM no longer end the binary.
function neap.signal(sig, fn)
  util.checksig("signal", 1, sig)
  if type(fn) ~= "function" then argerr("signal", 2, "function expected, got " .. type(fn)) end
  return core.signal(sig, fn, signal_task)
end

--- neap.pid() -> the id of this process
neap.pid = core.pid

--- neap.wait_signal(sig, {timeout=}) -> name | nil, "timeout", "timeout"
neap.wait_signal = core.wait_signal

-- ============================================================ posts from C

local post_handlers, n_handlers, inbox_waiting = {}, 0, 0
local inbox_q = neap.queue()

local function post_ref()
  core.post_ref(n_handlers > 0 or inbox_waiting > 0)
end

core.set_post_handler(function(name, data)
  local h = post_handlers[name]
  if h then core.task(h, data, name) else inbox_q:put({ name, data }) end
end)

--- neap.on_post(name, fn): fn(data, name) runs in a task for each event an
-- embedding C program posts with neap_post(h, name, ...); fn = nil removes it.
-- While a handler is set, posts keep the loop alive.
function neap.on_post(name, fn)
  if type(name) ~= "string" then argerr("on_post", 1, "name must be a string") end
  if fn ~= nil and type(fn) ~= "function" then argerr("on_post", 2, "function or nil expected") end
  if post_handlers[name] and not fn then n_handlers = n_handlers - 1 end
  if not post_handlers[name] and fn then n_handlers = n_handlers + 1 end
  post_handlers[name] = fn
  post_ref()
end

--- neap.inbox({timeout=}) -> name, data of the next post with no on_post
-- handler | nil, "timeout", "timeout"
function neap.inbox(opts)
  opts = checkopts("inbox", 1, opts)
  if not core.current() and inbox_q:count() == 0 then
    error("inbox: the inbox is empty and a wait must run inside a task", 2)
  end
  inbox_waiting = inbox_waiting + 1
  post_ref()
  local ok, m, err, code = pcall(inbox_q.get, inbox_q, opts)
  inbox_waiting = inbox_waiting - 1
  post_ref()
  if not ok then error(m, 0) end
  if not m then return nil, err, code end
  return m[1], m[2]
end

-- ============================================================ timers

local function timer_task(fn, t) core.task(fn, t) end

--- neap.timer(seconds, fn, {every=}) -> timer: fn(timer) runs in a task of its own.
function neap.timer(seconds, fn, opts)
  if type(seconds) ~= "number" or not (seconds >= 0) then argerr("timer", 1, "seconds must be a number >= 0") end
  if type(fn) ~= "function" then argerr("timer", 2, "function expected, got " .. type(fn)) end
  opts = checkopts("timer", 3, opts)
  if opts.every ~= nil and (type(opts.every) ~= "number" or not (opts.every > 0)) then
    argerr("timer", 3, "every must be a number > 0")
  end
  return core.timer(seconds, opts.every or 0, fn, timer_task)
end

return neap
