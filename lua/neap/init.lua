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

-- ============================================================ streams

local Stream = core.stream_meta.__index
local Server = core.server_meta.__index

--- neap.fd(n) -> stream: wraps an inherited descriptor (pipe, socket, TTY,
-- regular file, or anything pollable); closing the stream closes n.
function neap.fd(n)
  if math.type(n) ~= "integer" or n < 0 then argerr("fd", 1, "descriptor must be an integer >= 0") end
  return core.wrap_fd(n)
end

-- Callbacks on streams: s:on(event, fn). A pump task owns the stream's
-- reads while callbacks are set; task reads raise until s:off().
local callbacks = setmetatable({}, { __mode = "k" })
local events = { data = true, line = true, close = true, error = true }

-- Calls one callback; an error is reported and delivery goes on.
local function deliver(fn, ...)
  local ok, e = xpcall(fn, debug.traceback, ...)
  if not ok then io.stderr:write("neap: stream callback failed: ", tostring(e), "\n") end
end

local function pump(s, cbs)
  while callbacks[s] == cbs do   -- until s:off() (or a new s:on() after it)
    local data, err, code
    if s:is_closed() then   -- a callback closed it
      data, err, code = nil, "closed", "ECLOSED"
    elseif cbs.line then data, err, code = s:read_line()
    elseif cbs.data then data, err, code = s:read()
    else return end
    if callbacks[s] ~= cbs then return end
    if data then
      cbs.running = true   -- s:off() now lets this callback finish
      deliver(cbs.line or cbs.data, data)
      cbs.running = false
    else
      -- the end: the callbacks are removed first, so that one that raises
      -- leaves none behind; then "error" and "close", each on its own
      callbacks[s] = nil
      if not s:is_closed() then s:_callback_task(nil) end
      if code == "eof" or code == "ECLOSED" then
        if cbs.close then deliver(cbs.close) end
      else   -- as Node: "error", then "close" (which also gets the error)
        if cbs.error then deliver(cbs.error, err, code) end
        if cbs.close then deliver(cbs.close, err, code) end
      end
      return
    end
  end
end

--- s:on("data" | "line" | "close" | "error", fn) -> s: callback style on the
-- same stream. "line" wins over "data" when both are set. While any is set,
-- reads from tasks raise a clear error; s:off() returns the stream to tasks
-- with every byte not yet delivered still buffered.
function Stream.on(s, event, fn)
  if not events[event] then argerr("on", 1, "\"data\", \"line\", \"close\" or \"error\" expected, got " .. tostring(event)) end
  if type(fn) ~= "function" then argerr("on", 2, "function expected, got " .. type(fn)) end
  local cbs = callbacks[s]
  if not cbs then
    cbs = {}
    local task = core.task(pump, s, cbs)
    local ok, e = pcall(s._callback_task, s, task)   -- raises if a task is reading s
    if not ok then
      task:cancel()
      error(e, 2)
    end
    cbs.task = task
    callbacks[s] = cbs
  end
  cbs[event] = fn
  return s
end

--- s:off([event]) -> s: removes one callback, or all; with no data or line
-- callback left, the stream goes back to task reads.
function Stream.off(s, event)
  local cbs = callbacks[s]
  if not cbs then return s end
  if event then cbs[event] = nil else cbs.data, cbs.line, cbs.close, cbs.error = nil, nil, nil, nil end
  if not (cbs.data or cbs.line) then
    callbacks[s] = nil
    -- a pump waiting for data stops; a callback that runs (it may be
    -- waiting) finishes, and nothing more is delivered to it
    if not cbs.running then cbs.task:cancel() end
    if not s:is_closed() then s:_callback_task(nil) end
  end
  return s
end

--- server:on("connection", fn) -> server: fn(conn) runs in a task per
-- connection (conn stays open until the callback code closes it).
function Server.on(srv, event, fn)
  if event ~= "connection" then argerr("on", 1, "\"connection\" expected, got " .. tostring(event)) end
  if type(fn) ~= "function" then argerr("on", 2, "function expected, got " .. type(fn)) end
  return core.task(function()
    while not srv:is_closed() do
      local c, _, code = srv:accept()
      if c then core.task(fn, c)
      elseif code == "ECLOSED" then return
      else core.sleep(0.05) end
    end
  end)
end

local stdio = {}
setmetatable(neap, { __index = function(_, k)
  local fd = (k == "stdin" and 0) or (k == "stdout" and 1) or (k == "stderr" and 2)
  if not fd then return nil end
  local s = stdio[fd]
  if not s then s = core.std(fd); stdio[fd] = s end
  return s
end })

-- ============================================================ sockets

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
end

--- neap.resolve(host, {timeout=}) -> list of addresses | nil, err, code
function neap.resolve(host, opts)
  if type(host) ~= "string" then argerr("resolve", 1, "host must be a string") end
  nonul("resolve", 1, host, "host")
  opts = checkopts("resolve", 2, opts)
  if is_ip(host) then return { host } end
  return core.resolve(host, opts.timeout)
end

local function check_backlog(i, backlog)
  if backlog ~= nil and (math.type(backlog) ~= "integer" or backlog < 1) then
    argerr("listen", i, "backlog must be an integer >= 1", 4)
  end
end

--- neap.listen("tcp", host, port, {backlog=, reuseport=}) -> server | nil, err, code
--- neap.listen("unix", path, {backlog=}) -> server | nil, err, code
function neap.listen(kind, host, port, opts)
  if kind == "tcp" then
    if type(host) ~= "string" then argerr("listen", 2, "host must be a string") end
    nonul("listen", 2, host, "host")
    port = check_port("listen", 3, port)
    opts = checkopts("listen", 4, opts)
    check_backlog(4, opts.backlog)
    local addrs, err, code = neap.resolve(host)
    if not addrs then return nil, err, code end
    if #addrs == 0 then return nil, "no address for " .. host, "ENOENT" end
    return core.listen_tcp(addrs[1], port, opts.backlog or 511, opts.reuseport)
  elseif kind == "unix" then
    if type(host) ~= "string" then argerr("listen", 2, "path must be a string") end
    nonul("listen", 2, host, "path")
    opts = checkopts("listen", 3, port)
    check_backlog(3, opts.backlog)
    return core.listen_unix(host, opts.backlog or 511)
  end
  argerr("listen", 1, "\"tcp\" or \"unix\" expected, got " .. tostring(kind))
end

--- neap.connect("tcp", host, port, {timeout=}) -> stream | nil, err, code
--- neap.connect("unix", path, {timeout=}) -> stream | nil, err, code
function neap.connect(kind, host, port, opts)
  if kind == "tcp" then
    if type(host) ~= "string" then argerr("connect", 2, "host must be a string") end
    nonul("connect", 2, host, "host")
    port = check_port("connect", 3, port)
    opts = checkopts("connect", 4, opts)
    local deadline = opts.timeout and core.now() + opts.timeout
    local addrs, err, code = neap.resolve(host, { timeout = opts.timeout })
    if not addrs then return nil, err, code end
    if #addrs == 0 then return nil, "no address for " .. host, "ENOENT" end
    for _, a in ipairs(addrs) do
      local left = deadline and math.max(0, deadline - core.now())
      local s
      s, err, code = core.connect_tcp(a, port, left)
      if s then return s end
      if code == "timeout" or code == "cancelled" then break end
    end
    return nil, err, code
  elseif kind == "unix" then
    if type(host) ~= "string" then argerr("connect", 2, "path must be a string") end
    nonul("connect", 2, host, "path")
    opts = checkopts("connect", 3, port)
    return core.connect_unix(host, opts.timeout)
  end
  argerr("connect", 1, "\"tcp\" or \"unix\" expected, got " .. tostring(kind))
end

local function report(what, err)
  io.stderr:write("neap: ", what, ": ", tostring(err), "\n")
end

--- server:serve(fn) -> task: accepts forever, running fn(conn) in a task per
-- connection; conn is closed when fn returns or raises (the error is logged).
function Server.serve(srv, fn, ...)
  local mt = getmetatable(fn)
  if type(fn) == "table" and mt and mt.__call and package.loaded["neap.proto"]
     and package.loaded["neap.proto"].is_protocol(fn) then
    local proto, p, args = package.loaded["neap.proto"], fn, table.pack(...)
    -- server:serve(protocol, ...): the extra values go to the protocol function
    fn = function(c) return proto.attach(c, p, table.unpack(args, 1, args.n)) end
  end
  if type(fn) ~= "function" then argerr("serve", 1, "function or protocol expected, got " .. type(fn)) end
  local function handle(c)
    local ok, err = xpcall(fn, debug.traceback, c)
    c:close()
    if not ok then report("serve handler failed", err) end
  end
  return core.task(function()
    while not srv:is_closed() do   -- closed before this task ran: nothing to do
      local c, err, code = srv:accept()
      if c then
        core.task(handle, c)
      elseif code == "ECLOSED" or code == "cancelled" then
        return
      elseif code == "EMFILE" or code == "ENFILE" then
        core.sleep(0.05)   -- out of descriptors: let connections finish
      end
    end
  end)
end


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

-- ============================================================ udp

--- neap.udp{host=, port=, reuseaddr=, family="inet6"} -> socket | nil, err, code
function neap.udp(opts)
  opts = checkopts("udp", 1, opts)
  local host = opts.host
  if host ~= nil and type(host) ~= "string" then argerr("udp", 1, "host must be a string") end
  if host then nonul("udp", 1, host, "host") end
  if opts.port ~= nil and (math.type(opts.port) ~= "integer" or opts.port < 0 or opts.port > 65535) then
    argerr("udp", 1, "port must be an integer from 0 to 65535")
  end
  if host and not is_ip(host) then
    local addrs, err, code = neap.resolve(host)
    if not addrs then return nil, err, code end
    host = addrs[1]
  end
  if host == nil and opts.port ~= nil then host = (opts.family == "inet6") and "::" or "0.0.0.0" end
  return core.udp(host, opts.port, opts.family == "inet6", opts.reuseaddr)
end

-- u:send and u:connect take host names too (resolved as neap.resolve does).
local Udp = core.udp_meta.__index
local udp_send, udp_connect = Udp.send, Udp.connect

local function udp_host(host)
  if type(host) ~= "string" or is_ip(host) then return host end
  local addrs, err, code = neap.resolve(host)
  if not addrs then return nil, err, code end
  if #addrs == 0 then return nil, "no address for " .. host, "ENOENT" end
  for _, a in ipairs(addrs) do
    if not a:find(":", 1, true) then return a end   -- IPv4 first: sockets are IPv4 unless made inet6
  end
  return addrs[1]
end

--- u:send(data [, host, port]) -> true | nil, err, code
local function typename(v, given)
  if v == nil and not given then return "no value" end
  return type(v)
end

function Udp.send(u, data, host, port)
  if type(data) == "number" then data = tostring(data) end   -- as s:write
  if type(data) ~= "string" then argerr("send", 1, "string expected, got " .. typename(data, true)) end
  if host ~= nil then
    if type(host) ~= "string" then argerr("send", 2, "string expected, got " .. type(host)) end
    nonul("send", 2, host, "host")
    port = check_port("send", 3, port)
    local h, err, code = udp_host(host)
    if not h then return nil, err, code end
    host = h
  end
  return udp_send(u, data, host, port)
end

--- u:connect(host, port) -> u | nil, err, code
function Udp.connect(u, host, port)
  if type(host) ~= "string" then argerr("connect", 1, "string expected, got " .. typename(host)) end
  nonul("connect", 1, host, "host")
  port = check_port("connect", 2, port)
  local h, err, code = udp_host(host)
  if not h then return nil, err, code end
  return udp_connect(u, h, port)
end

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
