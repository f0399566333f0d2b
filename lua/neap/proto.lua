--- neap.proto: protocols written with no I/O (the sans-IO style of
-- ohneio). A protocol is a function(io) that reads and writes through its
-- io argument as if it were a stream. Fed by hand (conn:send / conn:read),
-- its reads suspend it until enough bytes were fed, framed by the engine's
-- C buffer; attached to a real stream, the same function reads the stream
-- directly. Tests can drive a parser byte by byte with no I/O at all.
local core = require "neap.core"

local proto = {}

local NEED = {}   -- what a parser yields when it needs more input

local argerr = require("neap.util").argerr

-- ============================================================ fed by hand

local Io = {}
Io.__index = Io

-- Repeats a buffer request until it is met, suspending the parser meanwhile;
-- returns the buffer's results as they are (as many values as a stream's
-- read gives: one for a line, two for read_until). a1, a2: the request's
-- arguments (at most two).
local function again(io, method, a1, a2, ...)
  local r1, r2 = ...
  if r1 ~= nil or r2 ~= "more" then return ... end
  if coroutine.running() ~= io._co then   -- a coroutine of the protocol's own: no wait there
    error(method .. ": a wait must run inside a task (neap.task or neap.run)", 2)
  end
  coroutine.yield(NEED)
  return again(io, method, a1, a2, io._buf[method](io._buf, a1, a2))
end

local function want(io, method, a1, a2)
  return again(io, method, a1, a2, io._buf[method](io._buf, a1, a2))
end

--- io:read([n]) -> up to n bytes (default 64 KiB) | nil, "eof", "eof"
function Io:read(n) return want(self, "read", n) end
--- io:read_exactly(n) -> n bytes | nil, "eof", "eof"
function Io:read_exactly(n) return want(self, "read_exactly", n) end
--- io:read_line({keep=}) -> line | nil, "eof", "eof"
function Io:read_line(opts) return want(self, "read_line", opts) end
--- io:read_until(delims, {keep=}) -> data, delimiter | nil, "eof", "eof"
function Io:read_until(delims, opts) return want(self, "read_until", delims, opts) end
--- io:read_all() -> everything up to the end of input
function Io:read_all() return want(self, "read_all") end
-- the checks of s:write, so that a protocol fails alike both ways
local function check_write(n)
  if n < 1 then argerr("write", 1, "string expected, got no value", 4) end
  if n > 16 then error("write: at most 16 strings at once", 3) end
end

--- io:write(data, ...) -> io: output for conn:read() (also after io:close())
function Io:write(...)
  check_write(select("#", ...))
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    self._out[#self._out + 1] = tostring(v)
  end
  return self
end
--- io:close(): the protocol is done; conn:closed() becomes true
function Io:close() self._closed = true end

local Conn = {}
Conn.__index = Conn

local function step(conn)
  if conn._done then return end
  local ok, r = coroutine.resume(conn._co, conn._io)
  if not ok then
    conn._done = true
    conn._err = r
    error(r, 0)
  end
  if coroutine.status(conn._co) == "dead" then conn._done = true end
end

--- conn:send(bytes) -> conn: feeds input; the parser runs as far as it can
function Conn:send(bytes)
  if type(bytes) ~= "string" then argerr("send", 1, "string expected, got " .. type(bytes)) end
  if not self._done then
    self._buf:feed(bytes)
    step(self)
  end
  return self
end

--- conn:send_eof() -> conn: no more input (reads then return what is left, then "eof")
function Conn:send_eof()
  if not self._buf:is_eof() then
    self._buf:set_eof()
    step(self)
  end
  return self
end

--- conn:read() -> the output written so far (maybe ""), taken
function Conn:read()
  local out = table.concat(self._io._out)
  self._io._out = {}
  return out
end

--- conn:closed() -> true once the protocol closed or returned
function Conn:closed() return (self._io._closed or self._done) and true or false end

--- conn:pending() -> bytes fed and not yet consumed by the parser
function Conn:pending() return #self._buf end

local Protocol = {}
Protocol.__index = Protocol

--- protocol([...]) -> conn: a connection fed by hand; extra arguments go
-- to the protocol function after io.
Protocol.__call = function(p, ...)
  local args = table.pack(...)
  local io = setmetatable({ _buf = core.buffer(p.max_frame), _out = {}, _closed = false }, Io)
  local conn = setmetatable({ _io = io, _buf = io._buf, protocol = p }, Conn)
  conn._co = coroutine.create(function(i) return p.fn(i, table.unpack(args, 1, args.n)) end)
  io._co = conn._co   -- the only coroutine its reads may suspend
  step(conn)   -- runs until its first read
  return conn
end

--- proto.define(fn [, {max_frame=}]) -> protocol
function proto.define(fn, opts)
  if type(fn) ~= "function" then argerr("define", 1, "function expected, got " .. type(fn)) end
  if opts ~= nil and type(opts) ~= "table" then argerr("define", 2, "options table expected") end
  local max = opts and opts.max_frame
  if max ~= nil and (math.type(max) ~= "integer" or max < 0) then
    argerr("define", 2, "max_frame must be an integer >= 0")
  end
  return setmetatable({ fn = fn, max_frame = opts and opts.max_frame }, Protocol)
end

--- proto.is_protocol(v) -> true for a value made by proto.define
function proto.is_protocol(v) return getmetatable(v) == Protocol end

-- ============================================================ over a stream

local StreamIo = {}
StreamIo.__index = StreamIo
function StreamIo:read(n) return self._s:read(n) end
function StreamIo:read_exactly(n) return self._s:read_exactly(n) end
function StreamIo:read_line(opts) return self._s:read_line(opts) end
function StreamIo:read_until(d, opts) return self._s:read_until(d, opts) end
function StreamIo:read_all() return self._s:read_all() end
function StreamIo:write(...)
  local n = select("#", ...)
  if self._closed then   -- after io:close(): checked as always, then nowhere to go
    check_write(n)
    return self
  end
  for i = 1, n do   -- as fed by hand: any value goes through tostring
    local t = type((select(i, ...)))
    if t ~= "string" and t ~= "number" then
      local args = { ... }
      for j = 1, n do
        if type(args[j]) ~= "string" and type(args[j]) ~= "number" then args[j] = tostring(args[j]) end
      end
      self._s:write(table.unpack(args, 1, n))
      return self
    end
  end
  self._s:write(...)   -- strings go to the stream without a copy
  return self
end
function StreamIo:close() self._closed = true self._s:close() end

--- proto.attach(stream, protocol, ...) -> the protocol function's results:
-- runs the protocol over a real stream in the calling task; its reads wait
-- on the stream itself (no second buffer).
function proto.attach(stream, p, ...)
  if not proto.is_protocol(p) then argerr("attach", 2, "protocol expected (proto.define)") end
  if p.max_frame then stream:set_limits { max_frame = p.max_frame } end
  local io = setmetatable({ _s = stream, _closed = false }, StreamIo)
  return p.fn(io, ...)
end

return proto
