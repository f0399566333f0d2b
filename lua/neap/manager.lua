--- neap.manager: events pulled one at a time, as ioman did. Channels wrap
-- the engine's streams, servers and processes; a small task per channel
-- reads with the engine's framing and queues (channel, event) pairs, which
-- m:next_event() hands out in order. No loop and no buffer of its own:
-- bytes wait in the streams until a channel's task frames them.
local neap = require "neap"

local manager = {}

local M = {}
M.__index = M

local Channel = {}
Channel.__index = Channel

local util = require "neap.util"
local argerr = util.argerr
local accept_loop = require("neap.net").accept_loop

--- manager.new([{queue=}]) -> manager; queue bounds the events waiting to
-- be pulled (readers pause meanwhile, so nothing is dropped).
function manager.new(opts)
  local m = setmetatable({ channels = {}, fresh = {}, events = neap.queue(opts and opts.queue or 256),
                           nextid = 0 }, M)
  m.child_channel = m:_channel("child")
  return m
end

function M:_channel(kind, stream)
  self.nextid = self.nextid + 1
  local ch = setmetatable({ kind = kind, stream = stream, manager = self, id = self.nextid }, Channel)
  local list = self.channels
  list[#list + 1] = ch
  ch.slot = #list
  self.fresh[#self.fresh + 1] = ch   -- its task starts at the next next_event
  return ch
end

-- Takes 'ch' off m.channels in O(1): the last channel moves into its slot.
function M:_forget(ch)
  local list, i = self.channels, ch.slot
  if not i or list[i] ~= ch then return end
  local last = list[#list]
  list[i] = last
  last.slot = i
  list[#list] = nil
  ch.slot = nil
end

function M:_emit(ch, ev)
  self.events:put({ ch, ev })
end

-- ============================================================ channels

--- ch:set_expected(delims) -> ch: report a frame when any delimiter arrives
-- (the frame keeps its delimiter; ev.delimiter says which); {} asks for one
-- event at EOF with everything. With no call, data is reported as it arrives.
function Channel:set_expected(delims)
  if type(delims) ~= "table" then argerr("set_expected", 1, "list of delimiters expected") end
  -- read_until takes at most 16 (the engine's NEAP_MAX_DELIMS)
  if #delims > 16 then argerr("set_expected", 1, "0 to 16 delimiters expected") end
  local copy = {}   -- the caller may change its table later
  for i, d in ipairs(delims) do
    if type(d) ~= "string" or d == "" then argerr("set_expected", 1, "delimiter " .. i .. " must be a non-empty string") end
    copy[i] = d
  end
  self.expected = copy
  return self
end

-- How 's' ended, once its last bytes were read: nil for a clean end (or
-- a close), else the error (a reset) as err, code.
local function end_error(s)
  if s:is_closed() then return nil end
  local _, err, code = s:read(1, { timeout = 0 })
  if code ~= "eof" and code ~= "ECLOSED" and code ~= "timeout" then return err, code end
end

-- The last bytes of 's' (the rest with no delimiter, or all of it): with
-- the "eof" event for a clean end; after a failure, as data and then the
-- error, as a channel with no framing reports it.
local function emit_last(m, ch, data)
  local err, code = end_error(ch.stream)
  if err then
    if data ~= "" then m:_emit(ch, { type = "read", status = "ok", data = data }) end
    m:_emit(ch, { type = "read", status = "error", data = "", err = err, code = code })
  else
    m:_emit(ch, { type = "read", status = "eof", data = data })
  end
  ch.closed = true
end

local function read_frames(m, ch)
  local s = ch.stream
  while true do
    local exp = ch.expected
    local a, b, c
    if exp == nil then a, b, c = s:read(65536)
    elseif #exp == 0 then a, b, c = s:read_all()
    else
      a, b, c = s:read_until(exp, { keep = true })
      if a and b == nil then return emit_last(m, ch, a) end   -- the unterminated rest at the end
    end
    if a then
      if exp and #exp == 0 then return emit_last(m, ch, a) end
      m:_emit(ch, { type = "read", status = "ok", data = a, delimiter = exp and b or nil })
    elseif c == "frame too large" then
      m:_emit(ch, { type = "read", status = "ok", data = s:read(65536) })
    elseif c == "eof" or c == "ECLOSED" then
      m:_emit(ch, { type = "read", status = "eof", data = "" })
      ch.closed = true
      return
    else
      m:_emit(ch, { type = "read", status = "error", data = "", err = b, code = c })
      ch.closed = true
      return
    end
  end
end

-- The reader task: a reader that raises (a misuse, a bug) ends its channel
-- with an error event rather than dying unseen; a close (a cancel) ends it
-- quietly.
local function read_pump(m, ch)
  local ok, err = pcall(read_frames, m, ch)
  if ok or ch.closed then
    if not ok then error(err, 0) end
    return
  end
  ch.closed = true
  m:_emit(ch, { type = "read", status = "error", data = "", err = tostring(err), code = "failed" })
end

-- Each write_stream puts its bytes on the stream at once (so a close or a
-- shutdown right after it loses nothing); this task reports a "write"
-- event for each once it has been handed to the system.
local function write_pump(m, ch)
  local s = ch.stream
  while true do
    local w = ch.outq:get()
    local ok, err, code = w.ok, w.err, w.code
    if ok then ok, err, code = s:flush() end
    m:_emit(ch, { type = "write", status = ok and "ok" or "error", bytes = w.bytes, err = err, code = code })
    if not ok then ch.closed = true return end
  end
end

--- wch:write_stream(data) -> true: queues output; a "write" event follows
-- once it is written.
function Channel:write_stream(data)
  if type(data) ~= "string" then argerr("write_stream", 1, "string expected, got " .. type(data)) end
  if self.kind ~= "write" then error("write_stream: not a write channel", 2) end
  if self.closed then return nil, "closed", "ECLOSED" end
  if not self.outq then
    self.outq = neap.queue()
    -- ioman's queue has no bound: the writer never parks in write_stream
    self.stream:set_limits { high_water = math.maxinteger }
    self.task = neap.task("manager writer", write_pump, self.manager, self)
  end
  local ok, err, code = self.stream:write(data)
  self.outq:put { bytes = #data, ok = ok ~= nil, err = err, code = code }
  return true
end

--- ch:close(): stops the channel and closes its stream or server; the
-- manager forgets it (and the other channel over the same stream).
function Channel:close()
  self.closed = true
  if self.task then self.task:cancel() end
  if self.stream and self.stream.close then self.stream:close() end
  if self.server then self.server:close() end
  self.manager:_forget(self)
  local peer = self.peer
  if peer and not peer.gone then
    self.gone = true
    peer:close()
  end
end

-- Starts the tasks of the channels made since the last call.
local function start(m)
  local fresh = m.fresh
  if #fresh == 0 then return end
  m.fresh = {}
  for _, ch in ipairs(fresh) do
    if not ch.task and not ch.closed then
      if ch.kind == "read" then ch.task = neap.task("manager reader", read_pump, m, ch)
      elseif ch.starter then ch.task = neap.task("manager " .. ch.kind, ch.starter, m, ch) end
    end
  end
end

-- ============================================================ making channels

--- m:add_read_fd(fd) -> read channel over an inherited descriptor
function M:add_read_fd(fd)
  if math.type(fd) ~= "integer" or fd < 0 then argerr("add_read_fd", 1, "descriptor must be an integer >= 0") end
  local s, err, code = neap.fd(fd)
  if not s then return nil, err, code end
  return self:_channel("read", s)
end

--- m:add_sock(stream) -> read channel, write channel
function M:add_sock(stream)
  if type(stream) ~= "userdata" then argerr("add_sock", 1, "stream expected") end
  local r, w = self:_channel("read", stream), self:_channel("write", stream)
  r.peer, w.peer = w, r   -- one stream: closing one closes both
  return r, w
end

--- m:make_child_proc(argv) -> proc with proc.pid, proc.r_channels[1]
-- (stdout), proc.r_channels[2] (stderr), proc.w_channel (stdin); its death
-- is reported on m.child_channel.
function M:make_child_proc(argv)
  local p, err, code = neap.spawn(argv)
  if not p then return nil, err, code end
  local proc = { pid = p.pid, process = p }
  -- a channel for each stdio that is a pipe (argv may say stdout = "null"
  -- ...): none, nil in the list, for the others
  proc.r_channels = {}
  if p.stdout then proc.r_channels[1] = self:_channel("read", p.stdout) end
  if p.stderr then proc.r_channels[2] = self:_channel("read", p.stderr) end
  proc.w_channel = p.stdin and self:_channel("write", p.stdin) or nil
  local waiter = self:_channel("exit")
  waiter.starter = function(m)
    -- the engine's wait, not p:wait(): that one drains the pipes with no
    -- bound, past the read channels, whose tasks read them only as fast
    -- as the events are pulled (the manager's backpressure)
    local c, sig = p._h:wait()
    if p.stdin then p.stdin:close() end   -- gone: nobody reads its stdin now
    for i = 1, 2 do   -- the output first, then the death
      local rch = proc.r_channels[i]
      if rch and rch.task then rch.task:join { timeout = 1 } end
    end
    local signum = sig and neap.signum(sig)
    m:_emit(m.child_channel, { type = "exit", processes = {
      { pid = p.pid, code = c, signal = sig, term_status = signum or ((c or 0) << 8) } } })
    waiter.closed = true
    m:_forget(waiter)   -- reported: the watch is over
  end
  return proc
end

--- m:make_server_sock("tcp" | "udp" | "unix", host, port, backlog | {backlog=, reuseport=}) -> channel
-- reporting "accept" events (ev.stream), or "read" events for UDP
-- (ev.data, ev.host, ev.port).
function M:make_server_sock(kind, host, port, backlog)
  local ch
  local opts = type(backlog) == "table" and backlog or { backlog = backlog }
  if kind == "udp" then
    local u, err, code = neap.udp { host = host, port = port, reuseport = opts.reuseport }
    if not u then return nil, err, code end
    ch = self:_channel("server")
    ch.server = u
    ch.starter = function(m, c)
      while true do
        local d, h, p = u:recv()
        if not d then return end
        m:_emit(c, { type = "read", status = "ok", data = d, host = h, port = p })
      end
    end
    return ch
  end
  local srv, err, code
  if kind == "unix" then srv, err, code = neap.listen("unix", host, { backlog = opts.backlog })
  else srv, err, code = neap.listen(kind, host, port, opts) end
  if not srv then return nil, err, code end
  ch = self:_channel("server")
  ch.server = srv
  ch.starter = function(m, c)
    accept_loop(srv, function(s) m:_emit(c, { type = "accept", stream = s }) end,
                function(e, cd) m:_emit(c, { type = "accept", status = "error", err = e, code = cd }) end)
  end
  return ch
end

--- m:make_client_sock("tcp" | "unix", host, port) -> read channel, write channel | nil, err, code
function M:make_client_sock(kind, host, port, opts)
  local function connect()
    if kind == "unix" then return neap.connect("unix", host, opts) end
    return neap.connect(kind, host, port, opts)
  end
  local s, err, code
  if neap.current() then s, err, code = connect() else s, err, code = neap.run(connect) end
  if not s then return nil, err, code end
  return self:add_sock(s)
end

-- ============================================================ events

--- m:next_event{timeout=} -> channel, event: the next event, in order.
-- From plain Lua it runs the loop until one is ready; in a task it waits.
-- On timeout: nil, {type = "timeout"}.
function M:next_event(opts)
  opts = util.checkopts("next_event", 1, opts)
  start(self)
  local function get()
    local item = self.events:get { timeout = opts.timeout }
    if not item then return nil, { type = "timeout" } end
    return item[1], item[2]
  end
  local t = neap.current()
  if t then
    local watched = self._watched
    if not watched then
      watched = setmetatable({}, { __mode = "k" })
      self._watched = watched
    end
    if not watched[t] then   -- once per task that runs this manager's loop
      watched[t] = true
      neap.task("manager watch", function()
        local ok = t:join()
        if not ok then self:close() end   -- it failed: close what the manager owns
      end)
    end
    return get()
  end
  return neap.run(get)
end
M.process_an_event = M.next_event

--- m:close(): closes every channel
function M:close()
  local list = self.channels
  self.channels, self.fresh = {}, {}
  for _, ch in ipairs(list) do ch.slot = nil ch:close() end
end

return manager
