--- neap.net: streams, servers and sockets. Callbacks on streams (s:on,
-- s:off) and servers (server:on), the socket policy over the C core
-- (resolve, listen, connect, server:serve with its accept loop), the
-- standard streams, and UDP (neap.udp, and u:send and u:connect taking host
-- names). Users reach all of it through neap.*; requiring this file installs
-- the methods on the core's stream, server and UDP metatables.
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts, nonul, check_port = util.argerr, util.checkopts, util.nonul, util.check_port
local error, pcall, xpcall, type, tostring, ipairs = error, pcall, xpcall, type, tostring, ipairs

local net = {}
local Stream = core.stream_meta.__index
local Server = core.server_meta.__index

-- TLS servers: what they hand out connections with (neap.tls)
local tls_servers = setmetatable({}, { __mode = "k" })

-- The C accept hands out connections as they come; a TLS server's go
-- through their handshake first.
local raw_accept = Server.accept

--- server:accept{timeout=} -> stream | nil, err, code (a TLS server: after
-- the handshake; one that fails closes that connection, and accept goes on)
function Server.accept(srv, opts)
  local info = tls_servers[srv]
  if not info then return raw_accept(srv, opts) end
  local t = checkopts("accept", 1, opts).timeout
  local deadline = t and core.now() + t
  while true do
    local c, err, code = raw_accept(srv, { timeout = deadline and math.max(0, deadline - core.now()) })
    if not c then return nil, err, code end
    c = require("neap.tls").accepted(c, info)
    if c then return c end
  end
end

--- s:starttls(opts) -> s | nil, err, code: TLS on a connected stream (neap.tls)
function Stream.starttls(s, opts)
  return require("neap.tls").starttls(s, opts)
end

--- accept_loop(srv, on_conn [, on_error]): the one accept loop, run by
-- server:serve, server:on("connection") and neap.manager in a task of
-- their own. on_conn(conn) gets each connection, until srv is closed or the
-- task is cancelled. Any other failure goes to on_error(err, code), then the
-- loop backs off 50 ms: out of descriptors (EMFILE, ENFILE), connections
-- need time to finish, and a failure that repeats at once must not spin.
local function accept_loop(srv, on_conn, on_error)
  local info = tls_servers[srv]
  if info then   -- a TLS server: each handshake in a task of its own, so a
    local tls, inner = require "neap.tls", on_conn   -- slow one holds up nobody
    on_conn = function(c)
      core.task(function() if tls.accepted(c, info) then inner(c) end end)
    end
  end
  while not srv:is_closed() do   -- closed before the loop ran: nothing to do
    local c, err, code = raw_accept(srv)
    if c then on_conn(c)
    elseif code == "ECLOSED" or code == "cancelled" then return
    else
      if on_error then on_error(err, code) end
      core.sleep(0.05)
    end
  end
end

-- ============================================================ streams

--- neap.fd(n) -> stream: wraps an inherited descriptor (pipe, socket, TTY,
-- regular file, or anything pollable); closing the stream closes n.
function net.fd(n)
  if math.type(n) ~= "integer" or n < 0 then argerr("fd", 1, "descriptor must be an integer >= 0") end
  return core.wrap_fd(n)
end

-- Short work in pooled tasks: pooled(fn, a, b) runs fn(a, b) in a task
-- taken from a pool of up to 32 idle ones (parked, each holding only its
-- coroutine), or a new one, and returns that task; fn reports its own
-- errors. A burst of connections or of busy streams so reuses coroutines
-- instead of making one each (garbage, and memory the heap keeps).
local POOL_MAX = 32
local pool, npool = {}, 0

local function worker(fn, a, b)
  while true do
    fn(a, b)
    if npool >= POOL_MAX then return end
    npool = npool + 1
    pool[npool] = core.current()
    fn, a, b = nil, nil, nil   -- (a worker in the pool keeps nothing alive)
    fn, a, b = core.park(nil, "pool")
  end
end

local function pooled(fn, a, b)
  while npool > 0 do
    local t = pool[npool]
    pool[npool] = nil
    npool = npool - 1
    if core.wake(t, fn, a, b) then return t end
  end
  return core.task(worker, fn, a, b)
end

-- Callbacks on streams: s:on(event, fn). The callbacks table lives in the
-- stream's box (s:_callbacks()); while it is set, task reads raise. No task
-- waits for an idle stream: the stream is armed (s:_arm) and the engine
-- calls start_pump(s, cbs) when a frame, the end or a close comes; a pump
-- delivers what is buffered with reads that do not wait, arms the stream
-- again, and waits in a small pool for the next stream that needs one
-- (a burst of busy streams reuses coroutines instead of making garbage).
local events = { data = true, line = true, close = true, error = true }
local function deliver(fn, ...)
  local ok, e = xpcall(fn, debug.traceback, ...)
  if not ok then io.stderr:write("neap: stream callback failed: ", util.errtext(e), "\n") end
end

-- Delivers what s has for the callbacks cbs; returns when it would wait.
local function pump_stream(s, cbs)
  while true do
    local fn = cbs.line or cbs.data
    if not fn then return end
    -- a read that does not wait; false: s:off() (or a new s:on() after it)
    local data, err, code = s:_pump_read(cbs, cbs.line ~= nil)
    if data == false then return end
    if data then
      deliver(fn, data)   -- (the callback of the read: a finalizer may s:off() during it)
    elseif code == "timeout" then   -- all delivered: the next frame starts a pump
      s:_arm(cbs.line ~= nil, true)
      return
    else
      -- the end: the callbacks are removed first, so that one that raises
      -- leaves none behind; then "error" and "close", each on its own
      s:_callbacks(false)
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

local function pump(s, cbs)
  local ok, e = pcall(pump_stream, s, cbs)
  if not ok then   -- (no memory): the stream's callbacks end here
    io.stderr:write("neap: stream callbacks failed: ", util.errtext(e), "\n")
    pcall(s._callbacks, s, false)
  end
end

-- The engine's call when an armed stream has something: returns the task
-- of its pump (only it may read s). Runs no user code and does not touch s.
core._stream_pump(function(s, cbs) return pooled(pump, s, cbs) end)

--- s:on("data" | "line" | "close" | "error", fn) -> s: callback style on the
-- same stream. "line" wins over "data" when both are set. While any is set,
-- reads from tasks raise a clear error; s:off() returns the stream to tasks
-- with every byte not yet delivered still buffered.
function Stream.on(s, event, fn)
  if not events[event] then argerr("on", 1, "\"data\", \"line\", \"close\" or \"error\" expected, got " .. tostring(event)) end
  if type(fn) ~= "function" then argerr("on", 2, "function expected, got " .. type(fn)) end
  local cbs = s:_callbacks()
  if not cbs then
    if s:is_closed() then error("attempt to use a closed stream", 2) end
    cbs = {}
    local ok, e = pcall(s._callbacks, s, cbs)   -- raises if a task is reading s
    if not ok then error(e, 2) end
  end
  cbs[event] = fn
  -- (re)arm for the frame the callbacks now want (a pump that runs does it)
  if (event == "data" or event == "line") and not s:is_closed() then
    s:_arm(cbs.line ~= nil)
  end
  return s
end

--- s:off([event]) -> s: removes one callback, or all; with no data or line
-- callback left, the stream goes back to task reads.
function Stream.off(s, event)
  if event ~= nil and not events[event] then argerr("off", 1, "\"data\", \"line\", \"close\" or \"error\" expected, got " .. tostring(event)) end
  local cbs = s:_callbacks()
  if not cbs then return s end
  if event then cbs[event] = nil else cbs.data, cbs.line, cbs.close, cbs.error = nil, nil, nil, nil end
  if not (cbs.data or cbs.line) then
    -- a pump waiting for data stops; a callback that runs (it may be
    -- waiting) finishes, and nothing more is delivered to it
    s:_callbacks(false)
  elseif event == "line" and not s:is_closed() then
    s:_arm(false)   -- line -> data (a pump that runs does it)
  end
  return s
end

-- fn(c) of server:on("connection"), in a pooled task; an error is reported
-- as a failing task's is.
local function run_connection(fn, c)
  local ok, e = xpcall(fn, debug.traceback, c)
  if not ok then
    io.stderr:write("neap: task failed: ", util.errtext(e), "\n")
    io.stderr:flush()
  end
end

--- server:on("connection", fn) -> server: fn(conn) runs in a task per
-- connection (conn stays open until the callback code closes it).
function Server.on(srv, event, fn)
  if event ~= "connection" then argerr("on", 1, "\"connection\" expected, got " .. tostring(event)) end
  if type(fn) ~= "function" then argerr("on", 2, "function expected, got " .. type(fn)) end
  return core.task(accept_loop, srv, function(c) pooled(run_connection, fn, c) end)
end

--- stdio(_, k) -> neap.stdin, neap.stdout or neap.stderr (made at first use),
-- or nil for any other k: the facade's __index.
local stdio_streams = {}
local function stdio(_, k)
  local n = (k == "stdin" and 0) or (k == "stdout" and 1) or (k == "stderr" and 2)
  if not n then return nil end
  local s = stdio_streams[n]
  if not s then s = core.std(n); stdio_streams[n] = s end
  return s
end

-- ============================================================ sockets

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
end

--- neap.resolve(host, {timeout=}) -> list of addresses | nil, err, code
function net.resolve(host, opts)
  if type(host) ~= "string" then argerr("resolve", 1, "host must be a string") end
  nonul("resolve", 1, host, "host")
  opts = checkopts("resolve", 2, opts)
  if is_ip(host) then return { host } end
  return core.resolve(host, opts.timeout)
end

-- lookup(host [, timeout]) -> the addresses of host, at least one | nil, err, code
local function lookup(host, timeout)
  local addrs, err, code = net.resolve(host, { timeout = timeout })
  if not addrs then return nil, err, code end
  if #addrs == 0 then return nil, "no address for " .. host, "ENOENT" end
  return addrs
end

-- The endpoint arguments of listen and connect (fname): a host and a port
-- (-> the port as an integer), or a Unix socket's path. Raise at the caller
-- of the public function, one level further up than its own checks.
local function check_hostport(fname, host, port)
  if type(host) ~= "string" then argerr(fname, 2, "host must be a string", 4) end
  nonul(fname, 2, host, "host", 5)
  local n = check_port(fname, 3, port, 5)   -- not a tail call: the level counts this function
  return n
end

local function check_path(fname, path)
  if type(path) ~= "string" then argerr(fname, 2, "path must be a string", 4) end
  nonul(fname, 2, path, "path", 5)
end

local function check_backlog(i, backlog)
  if backlog ~= nil and (math.type(backlog) ~= "integer" or backlog < 1) then
    argerr("listen", i, "backlog must be an integer >= 1", 4)
  end
end

local function check_reuseport(fname, i, v)
  if v ~= nil and type(v) ~= "boolean" then
    argerr(fname, i, "reuseport must be a boolean", 4)
  end
end

--- neap.listen("tcp", host, port, {backlog=, reuseport=}) -> server | nil, err, code
--- neap.listen("unix", path, {backlog=}) -> server | nil, err, code
function net.listen(kind, host, port, opts)
  if kind == "tls" then
    local info = require("neap.tls").server_info(opts, "listen")
    port = check_hostport("listen", host, port)
    check_backlog(4, opts.backlog)
    check_reuseport("listen", 4, opts.reuseport)
    local addrs, err, code = lookup(host)
    if not addrs then return nil, err, code end
    local srv
    srv, err, code = core.listen_tcp(addrs[1], port, opts.backlog or 511, opts.reuseport)
    if srv then tls_servers[srv] = info end
    return srv, err, code
  elseif kind == "tcp" then
    port = check_hostport("listen", host, port)
    opts = checkopts("listen", 4, opts)
    check_backlog(4, opts.backlog)
    check_reuseport("listen", 4, opts.reuseport)
    local addrs, err, code = lookup(host)
    if not addrs then return nil, err, code end
    return core.listen_tcp(addrs[1], port, opts.backlog or 511, opts.reuseport)
  elseif kind == "unix" then
    check_path("listen", host)
    opts = checkopts("listen", 3, port)
    check_backlog(3, opts.backlog)
    return core.listen_unix(host, opts.backlog or 511)
  end
  argerr("listen", 1, "\"tcp\", \"tls\" or \"unix\" expected, got " .. tostring(kind))
end

--- neap.connect("tcp", host, port, {timeout=}) -> stream | nil, err, code
--- neap.connect("unix", path, {timeout=}) -> stream | nil, err, code
function net.connect(kind, host, port, opts)
  if kind == "tcp" or kind == "tls" then
    port = check_hostport("connect", host, port)
    opts = checkopts("connect", 4, opts)
    local deadline = opts.timeout and core.now() + opts.timeout
    if kind == "tls" then
      require("neap.tls").context(opts, false, "connect", 3)   -- (bad options raise first)
      local s, err, code = net.connect("tcp", host, port, { timeout = opts.timeout })
      if not s then return nil, err, code end
      local left = deadline and math.max(0, deadline - core.now())
      return require("neap.tls").client(s, host, opts, left, "connect")
    end
    local addrs, err, code = lookup(host, opts.timeout)
    if not addrs then return nil, err, code end
    for _, a in ipairs(addrs) do
      local left = deadline and math.max(0, deadline - core.now())
      local s
      s, err, code = core.connect_tcp(a, port, left)
      if s then return s end
      if code == "timeout" or code == "cancelled" then break end
    end
    return nil, err, code
  elseif kind == "unix" then
    check_path("connect", host)
    opts = checkopts("connect", 3, port)
    return core.connect_unix(host, opts.timeout)
  end
  argerr("connect", 1, "\"tcp\", \"tls\" or \"unix\" expected, got " .. tostring(kind))
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
  -- fn itself is the connection's task (no wrapper frame: an idle
  -- connection is mostly its coroutine); the core closes conn when fn
  -- returns or raises, and reports the error as "serve handler failed"
  local serve_task = core.serve_task
  return core.task(accept_loop, srv, function(c) serve_task(fn, c) end)
end

-- ============================================================ udp

--- neap.udp{host=, port=, reuseaddr=, reuseport=, family="inet6"} -> socket | nil, err, code
function net.udp(opts)
  opts = checkopts("udp", 1, opts)
  check_reuseport("udp", 1, opts.reuseport)
  local host = opts.host
  if host ~= nil and type(host) ~= "string" then argerr("udp", 1, "host must be a string") end
  if host then nonul("udp", 1, host, "host") end
  if opts.port ~= nil and (math.type(opts.port) ~= "integer" or opts.port < 0 or opts.port > 65535) then
    argerr("udp", 1, "port must be an integer from 0 to 65535")
  end
  if host and not is_ip(host) then
    local addrs, err, code = net.resolve(host)
    if not addrs then return nil, err, code end
    host = addrs[1]
  end
  if host == nil and opts.port ~= nil then host = (opts.family == "inet6") and "::" or "0.0.0.0" end
  return core.udp(host, opts.port, opts.family == "inet6", opts.reuseaddr, opts.reuseport)
end

-- u:send and u:connect wrap the core's, which take only IP addresses: they
-- check their arguments here and take host names too.
local Udp = core.udp_meta.__index
local udp_send, udp_connect = Udp.send, Udp.connect

-- udp_host(host) -> an IP address for 'host' | nil, err, code: a name is
-- looked up as neap.resolve does, an IPv4 address preferred; a non-string
-- goes through for the core to reject.
local function udp_host(host)
  if type(host) ~= "string" or is_ip(host) then return host end
  local addrs, err, code = lookup(host)
  if not addrs then return nil, err, code end
  for _, a in ipairs(addrs) do
    if not a:find(":", 1, true) then return a end   -- IPv4 first: sockets are IPv4 unless made inet6
  end
  return addrs[1]
end

-- The type named by a "string expected, got <type>" error: "no value" for
-- an argument left out (nil and not 'given'), as luaL_typeerror says.
local function typename(v, given)
  if v == nil and not given then return "no value" end
  return type(v)
end

--- u:send(data [, host, port]) -> true | nil, err, code: one datagram to
-- host and port, or to the peer of a connected socket with both left out;
-- a number is sent as its string, as s:write does. It never waits.
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

net.stdio = stdio               -- the facade's __index
net.accept_loop = accept_loop   -- for neap.manager

return net
