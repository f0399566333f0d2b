--- neap.dispatcher: asyncore and asynchat on neap's engine. A dispatcher
-- is a table with handle_* methods; a task per dispatcher consults its
-- readable() / writable() predicates each turn and calls the handlers when
-- the engine's stream is ready. recv and the asynchat terminators read the
-- stream's own buffer with the engine's framing; push() is the stream's
-- write queue. No loop and no buffer of its own.
local neap = require "neap"

local dispatcher = {}

--- dispatcher.map: the open dispatchers (asyncore's socket_map)
dispatcher.map = {}

local calls = 0           -- handler calls, for loop{count=}

local D = {}              -- the dispatcher's methods
local C = {}              -- asynchat's methods over D

local function log(self, msg)
  io.stderr:write("neap.dispatcher: ", tostring(msg), "\n")
end

-- Hands 'err' to handle_error (default: log, close); if handle_error
-- raises, that is logged and the dispatcher is closed.
local function fail(self, err)
  local ok, err2 = pcall(self.handle_error, self, err)
  if not ok then log(self, err2) self:close() end
end

-- An error with its traceback; the cancellation of a dispatcher closed from
-- elsewhere (d:close() stops its task) stays the bare "cancelled".
local function traceback(e)
  if e == "cancelled" then return e end
  return debug.traceback(e, 2)
end

-- Calls method 'name' (a handler, or a predicate: 'count' false); returns
-- its first result, or nil when it raised: the error went to handle_error.
-- A wait in it that ends because d:close() stopped the task ends the task
-- quietly: that is no error of the handler's.
local function protected(self, count, name, ...)
  if count then calls = calls + 1 end
  local ok, r = xpcall(self[name], traceback, self, ...)
  if ok then return r end
  if r == "cancelled" and self._closed then error(r, 0) end
  if not count then calls = calls + 1 end   -- handle_error is a handler call
  fail(self, r)
end

-- Calls handler 'name'; an error goes to handle_error.
local function call(self, name, ...)
  protected(self, true, name, ...)
end

-- handle_close once per end of a socket (recv, the framing and the
-- driver may each see the same end)
local function close_once(self)
  if self._eof_handled ~= nil and self._eof_handled == self.sock then return end
  self._eof_handled = self.sock
  call(self, "handle_close")
end

-- ============================================================ the driver

local function drive(self)
  while not self._closed do
    local r = protected(self, false, "readable")
    local w = not self._closed and protected(self, false, "writable")
    if self._closed then break end
    if self.accepting then
      if r then
        local c, _, code = self.sock:accept { timeout = w and 0.01 or 0.5 }
        if c then
          self._pending[#self._pending + 1] = c
          call(self, "handle_accept")
        elseif code ~= "timeout" then
          neap.sleep(0.05)   -- out of descriptors (EMFILE) or the like: no busy loop
        end
      else neap.sleep(0.05) end
    elseif self.connected then
      local s = self.sock
      if w and s:write_queue_size() < (self.ac_out_buffer_size or 65536) then
        call(self, "handle_write")
      end
      if self._closed then break end
      if r and self._eof_handled == s then
        neap.sleep(0.05)   -- the end was reported and handle_close kept the socket open
      elseif r then
        -- wait for more than what handle_read left unread last time (a
        -- partial frame), so a handler that takes nothing cannot spin
        local n, _, code = s:wait_readable { timeout = w and 0.01 or 0.5, above = self._left or 0 }
        if n == 0 then   -- the end of the stream
          self._left = nil
          call(self, "handle_read")
          if not self._closed and self.sock == s then close_once(self) end
        elseif n then
          local before, had = s:_consumed(), s:buffered()
          call(self, "handle_read")
          if not self._closed and self.sock == s then
            -- nothing read and nothing new (the handler may have waited):
            -- wait for more than what is there; else call it again
            local left = s:buffered()
            self._left = (s:_consumed() == before and left == had) and left or 0
          end
        elseif code ~= "timeout" then close_once(self) end
      elseif not w then neap.sleep(0.05) end
      if w then neap.sleep(0) end   -- always writable: let the others run
    else
      neap.sleep(0.05)
    end
  end
end

-- The dispatcher's task: an error of the driver's own (a handler that
-- closed d.sock by hand, say) goes to handle_error, and the dispatcher is
-- closed, so it never stays in the map with no task to serve it.
local function run(self)
  local ok, err = xpcall(drive, traceback, self)
  if ok or self._closed then return end
  if err == "cancelled" then self:close() return end   -- t:cancel() on the task itself
  calls = calls + 1
  fail(self, err)
  self:close()
end

local function start(self)
  if not self._task then self._task = neap.task("dispatcher", run, self) end
end

local function register(self)
  dispatcher.map[self] = true
end

-- ============================================================ asyncore

--- dispatcher.new([t [, sock]]) -> t as a dispatcher: its own handle_* plus
-- the dispatcher's methods; with an accepted stream, it is connected.
function dispatcher.new(t, sock)
  t = t or {}
  local mt = getmetatable(t)
  if mt and mt.__index and mt.__index ~= D then   -- a class of the user's: chain it
    local base = mt.__index
    setmetatable(t, { __index = function(_, k)
      local v
      if type(base) == "function" then v = base(t, k) else v = base[k] end
      if v == nil then v = D[k] end
      return v
    end })
  else
    setmetatable(t, { __index = D })
  end
  t._pending = {}
  if sock then t:set_socket(sock) end
  return t
end

--- d:create_socket([family]) -> d: family "tcp" (default) or "unix"
function D:create_socket(family)
  self.family = family or "tcp"
  register(self)
  return self
end

--- d:set_socket(stream) -> d: wrap an accepted (connected) stream
function D:set_socket(sock)
  self.sock = sock
  self._left = nil   -- progress state of the old socket
  self.connected = true
  register(self)
  start(self)
  return self
end

--- d:connect(host, port): connects in the background; handle_connect follows
function D:connect(host, port)
  self._left = nil
  register(self)
  self.connecting = true
  self.addr = { host, port }
  neap.task("dispatcher connect", function()
    local s, err, code
    if self.family == "unix" then s, err, code = neap.connect("unix", host)
    else s, err, code = neap.connect("tcp", host, port) end
    self.connecting = false
    if self._closed then if s then s:close() end return end
    if not s then
      call(self, "handle_error", err .. " (" .. tostring(code) .. ")")
      return
    end
    self.sock = s
    self.connected = true
    call(self, "handle_connect")
    start(self)
  end)
end

--- d:bind(host, port) -> d
function D:bind(host, port)
  self.addr = { host, port }
  return self
end

--- d:listen([backlog | {backlog=, reuseport=}]) -> true | nil, err, code
function D:listen(backlog)
  local a = self.addr or { "127.0.0.1", 0 }
  local opts = type(backlog) == "table" and backlog or { backlog = backlog }
  local srv, err, code
  if self.family == "unix" then srv, err, code = neap.listen("unix", a[1], { backlog = opts.backlog })
  else srv, err, code = neap.listen("tcp", a[1], a[2], opts) end
  if not srv then return nil, err, code end
  register(self)
  self.sock = srv
  self.accepting = true
  start(self)
  return true
end

--- d:address() -> host, port of the socket
function D:address()
  if self.accepting then return self.sock:address() end
  if self.sock then return self.sock:local_address() end
end

--- d:accept() -> stream, host, port | nil (no connection waiting)
-- The dispatcher's socket, or a clear error naming 'fname'.
local function sock_of(self, fname)
  local s = self.sock
  if s == nil then
    error(fname .. ": the dispatcher has no socket (create_socket, connect or set_socket first)", 3)
  end
  return s
end

function D:accept()
  local c = table.remove(self._pending, 1)
  if not c then   -- its task may be waiting in accept: then there is none to take
    local ok, r = pcall(sock_of(self, "accept").accept, self.sock, { timeout = 0 })
    c = ok and r or nil
  end
  if not c then return nil end
  local host, port = c:peer_address()
  if host == nil then port = nil end   -- a Unix socket has no host and port
  return c, host, port
end

--- d:send(data) -> bytes queued (0 when the peer is gone: handle_close follows)
function D:send(data)
  local s = sock_of(self, "send")
  if s:is_closed() then close_once(self) return 0 end   -- the peer has gone and handle_close closed it
  local ok = s:write(data)
  if not ok then close_once(self) return 0 end
  return #data
end

--- d:recv(n) -> data; "" at the end of input (handle_close is called then)
-- or when nothing is buffered
function D:recv(n)
  local d, err, code = sock_of(self, "recv"):read(n or 65536, { timeout = 0 })
  if d then return d end
  if code ~= "timeout" then close_once(self) end
  return ""
end

--- d:close(): closes the socket and leaves the map
function D:close()
  if self._closed then return end
  self._closed = true
  dispatcher.map[self] = nil
  self.connected, self.accepting = false, false
  for _, c in ipairs(self._pending) do c:close() end
  if self.sock then self.sock:close() end
  if self._task and self._task ~= neap.current() then self._task:cancel() end
end

function D:readable() return true end
function D:writable() return true end
function D:handle_read() log(self, "unhandled read event") end
function D:handle_write() log(self, "unhandled write event") end
function D:handle_connect() log(self, "unhandled connect event") end
function D:handle_accept()
  local c, host, port = self:accept()
  if c then self:handle_accepted(c, host, port) end
end
function D:handle_accepted(sock) log(self, "unhandled accepted event") sock:close() end
function D:handle_close() self:close() end
function D:handle_error(err)
  log(self, "uncaptured error: " .. tostring(err))
  self:close()
end
D.log = log
D.log_info = function(self, msg, kind) log(self, (kind or "info") .. ": " .. tostring(msg)) end

--- dispatcher.loop{timeout=, count=}: runs until no dispatcher is left, or
-- for at most timeout seconds, or until count handler calls have been made.
function dispatcher.loop(opts)
  opts = opts or {}
  local function body()
    local deadline = opts.timeout and neap.now() + opts.timeout
    local stop = opts.count and calls + opts.count
    while next(dispatcher.map) ~= nil do
      if deadline and neap.now() >= deadline then break end
      if stop and calls >= stop then break end
      neap.sleep(0.005)
    end
  end
  if neap.current() then return body() end
  return neap.run(body)
end

-- ============================================================ asynchat

setmetatable(C, { __index = D })

--- dispatcher.chat([t [, sock]]) -> t as an async_chat
function dispatcher.chat(t, sock)
  t = dispatcher.new(t)
  local mt = getmetatable(t)
  local idx = mt.__index
  setmetatable(t, { __index = function(_, k)
    local v
    if type(idx) == "function" then v = idx(t, k) else v = idx[k] end
    if v == D[k] and C[k] ~= nil then v = C[k] end
    return v
  end })
  t.ac_in_buffer_size = t.ac_in_buffer_size or 65536
  t.ac_out_buffer_size = t.ac_out_buffer_size or 65536
  t.incoming = {}
  if sock then t:set_socket(sock) end
  return t
end

--- c:set_terminator(term): a string, a byte count, or nil (all data as it comes)
function C:set_terminator(term)
  if term ~= nil and type(term) ~= "string" and math.type(term) ~= "integer" then
    error("bad argument #1 to 'set_terminator' (string, integer or nil expected)", 2)
  end
  if math.type(term) == "integer" and term < 0 then
    error("bad argument #1 to 'set_terminator' (byte count must be >= 0)", 2)
  end
  self.terminator = term
end
function C:get_terminator() return self.terminator end

--- c:collect_incoming_data(data): default keeps data for c:_get_data()
function C:collect_incoming_data(data) self.incoming[#self.incoming + 1] = data end
function C:_get_data()
  local d = table.concat(self.incoming)
  self.incoming = {}
  return d
end
function C:found_terminator() error("found_terminator must be defined by the async_chat") end

function C:writable() return false end   -- output is the stream's write queue

--- c:handle_read(): frames what the stream holds by the terminator
function C:handle_read()
  local s = self.sock
  while not self._closed do
    local term = self.terminator
    if term == nil or term == "" or term == 0 then   -- 0 (a count met): all data as it comes
      local d = s:read(self.ac_in_buffer_size, { timeout = 0 })
      if not d then break end
      self:collect_incoming_data(d)
    elseif math.type(term) == "integer" and term > 0 then
      local avail = s:buffered()
      if avail == 0 then break
      elseif avail >= term then
        local d = s:read_exactly(term, { timeout = 0 })
        self.terminator = 0
        self:collect_incoming_data(d)
        self:found_terminator()
      else
        local d = s:read(avail, { timeout = 0 })
        self.terminator = term - #d
        self:collect_incoming_data(d)
      end
    else
      local d, delim, code = s:read_until(term, { timeout = 0 })
      if d then
        self:collect_incoming_data(d)
        if delim then self:found_terminator() end
      elseif code == "frame too large" then
        self:collect_incoming_data(s:read(self.ac_in_buffer_size, { timeout = 0 }))
      else break end
    end
  end
  if not self._closed and s:wait_readable { timeout = 0 } == 0 then
    close_once(self)   -- the peer is done and everything was read
  end
end

--- c:push(data) -> c: queued on the stream (sent in order, without a copy)
function C:push(data)
  local s = sock_of(self, "push")
  -- a stream that has failed, or that handle_close closed: handle_close
  if s:is_closed() or not s:write(data) then close_once(self) end
  return self
end

--- c:close_when_done(): close once everything pushed is sent
function C:close_when_done()
  self:handle_close()   -- the stream's close sends what was queued first
end

return dispatcher
