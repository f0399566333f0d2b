-- neap.websocket: WebSocket (RFC 6455) over a neap stream, after an HTTP
-- upgrade. src/ws.c parses frames straight from the stream's buffer and
-- checks every rule a receiver must (masking, opcodes, control frames,
-- sizes, UTF-8); this file holds the policy: the handshakes (req:websocket
-- on neap.http's server, http.websocket as a client), pings answered,
-- fragmented messages reassembled, the closing handshake and its timeout.
-- permessage-deflate is not offered (docs/http.md).
local neap = require "neap"
local core = require "neap.core"

local websocket = {}

local function argerr(fname, i, msg)
  error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), 3)
end

local OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10
local MAX_MESSAGE = 16 * 1024 * 1024

-- The options of a websocket (both sides): max_message, close_timeout.
local function ws_opts(fname, i, opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then argerr(fname, i, "options table expected, got " .. type(opts)) end
  local max = opts.max_message
  if max == nil then max = MAX_MESSAGE
  elseif math.type(max) ~= "integer" or max < 0 then argerr(fname, i, "max_message must be an integer >= 0") end
  local ct = opts.close_timeout
  if ct == nil then ct = 5
  elseif type(ct) ~= "number" or ct < 0 then argerr(fname, i, "close_timeout must be a number >= 0") end
  return opts, max, ct
end

-- ============================================================ the socket

local WS = {}
WS.__index = WS

-- The end of a receive, however it ends (returned, raised, cancelled; a
-- to-be-closed guard, one per websocket): the websocket is free for
-- another receive; a close that waits for this task to read the peer's
-- answer is told to read it itself; a receive cut short (cancelled) once
-- the websocket was closed (while answering or lingering) closes the
-- connection it left open.
local Guard = {}
Guard.__index = Guard
function Guard.__close(g, err)
  local self = g.ws
  self.receiving = false
  if self.state == "closing" then
    local w = self.closer
    if w then
      self.closer = nil
      core.wake(w, "read")
    end
  elseif self.state == "closed" and err ~= nil then
    self.c:close()
    local w = self.closer
    if w then
      self.closer = nil
      core.wake(w, false)
    end
  end
end

-- The end of ws:close, when it raises (cancelled while it waits): the
-- connection is closed at once.
local ClosingGuard = {}
function ClosingGuard.__close(g, err)
  local self = g.ws
  if err == nil then return end
  self.receiving = false
  if self.closer == core.current() then self.closer = nil end
  if self.state ~= "closed" then
    self.state, self.close_code, self.close_reason = "closed", 1006, ""
  end
  self.c:close()
end

local function new(c, server, max, close_timeout, protocol)
  local ws = setmetatable({
    c = c, r = core.ws_reader(server, max), mask = not server, server = server,
    state = "open", close_timeout = close_timeout, protocol = protocol,
  }, WS)
  ws.guard = setmetatable({ ws = ws }, Guard)
  ws.closing_guard = setmetatable({ ws = ws }, ClosingGuard)
  return ws
end

function WS:__tostring()
  return string.format("neap.websocket (%s, %s)", self.server and "server" or "client", self.state)
end

-- The next frame: kind, a, b from the reader, or nil, err, code for a
-- timeout, the end of the connection, or a violation (code: the close code).
local function next_frame(self, deadline)
  local c, r = self.c, self.r
  while true do
    local kind, a, b = r:read(c)
    if kind then return kind, a, b end
    if a ~= "more" then return nil, a, b end
    local left
    if deadline then
      left = deadline - core.now()
      if left <= 0 then return nil, "timeout", "timeout" end
    end
    local n, err, code = c:wait_readable { above = b - 1, timeout = left }
    if not n then return nil, err, code end
    if n < b then return nil, "eof", "eof" end   -- the end came before the frame
  end
end

-- Ends the TCP connection once the close frames are exchanged. The server
-- closes first (RFC 6455 7.1.1); a client waits a little for that.
local function finish(self, deadline)
  local c = self.c
  if not self.server and not c:is_closed() then
    deadline = deadline or core.now() + self.close_timeout
    while true do
      local left = deadline - core.now()
      if left <= 0 or not c:read(65536, { timeout = left }) then break end
    end
  end
  c:close()
  local w = self.closer
  if w then
    self.closer = nil
    core.wake(w, true)
  end
end

-- Writes a frame of the closing handshake: from now on a write waits on
-- backpressure (a peer that does not read) at most close_timeout seconds.
local function write_closing(self, ...)
  local c = self.c
  if c:is_closed() then return nil, "closed", "ECLOSED" end
  c:set_limits { write_timeout = self.close_timeout }
  return c:write(...)
end

local function close_payload(code, reason)
  if not code then return "" end
  return string.pack(">I2", code) .. (reason or "")
end

-- The connection failed (a violation, an I/O end): the close frame is sent
-- when there is a code to send, and the connection closes.
local function fail(self, code, reason, send)
  if self.state ~= "closed" then
    if send and self.state == "open" then
      -- (a reason made of our own words: ASCII, under 123 bytes)
      write_closing(self, core.ws_encode(OP_CLOSE, close_payload(code, reason), self.mask))
    end
    self.state, self.close_code, self.close_reason = "closed", code, reason
    if send then
      -- a lingering close: the peer may still be sending (the rest of a
      -- message too large); closing now would reset the connection and
      -- could lose our close frame, so read and drop until it closes
      local c, deadline = self.c, core.now() + self.close_timeout
      while true do
        local left = deadline - core.now()
        if left <= 0 or not c:read(65536, { timeout = left }) then break end
      end
    end
    self.c:close()
    local w = self.closer
    if w then
      self.closer = nil
      core.wake(w, false)
    end
  end
  return nil, "closed", self.close_code, self.close_reason
end

-- The peer's close frame: answered (when we did not start the close), and
-- the connection ends.
local function peer_closed(self, code, reason)
  if self.state == "open" then
    write_closing(self, core.ws_encode(OP_CLOSE, close_payload(code), self.mask))
  end
  self.close_code, self.close_reason = code or 1005, reason
  self.state = "closed"
  finish(self)
  return nil, "closed", self.close_code, self.close_reason
end

local function receive(self, deadline)
  while true do
    local kind, a, b = next_frame(self, deadline)
    if kind == "text" or kind == "binary" then
      if self.state == "open" then return a, kind end
      -- (after our close frame, data is dropped)
    elseif kind == "ping" then
      -- a pong never makes receive wait on a peer that does not read (a
      -- ping flood would hold it past its timeout): with the write queue
      -- near its high-water mark the pong is dropped (RFC 6455 5.5.3 lets
      -- an endpoint answer only the latest of several pings)
      local c = self.c
      local q = self.state == "open" and c:write_queue_size()
      if q and (q == 0 or q + #a + 14 <= c:limits().high_water) then
        c:write(core.ws_encode(OP_PONG, a, self.mask))
      end
    elseif kind == "close" then
      return peer_closed(self, a, b)
    elseif kind == nil then
      if b == "timeout" then return nil, "timeout", "timeout" end
      if math.type(b) == "integer" then return fail(self, b, a, true) end
      return fail(self, self.close_code or 1006, self.close_reason or "", false)
    end
    -- (a pong: nothing to do)
  end
end

--- ws:receive([opts]) -> data, "text" | "binary" | nil, "closed", code, reason
-- | nil, "timeout", "timeout". Pings are answered here.
function WS:receive(opts)
  local timeout
  if opts ~= nil then
    if type(opts) ~= "table" then argerr("receive", 1, "options table expected, got " .. type(opts)) end
    timeout = opts.timeout
    if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
      argerr("receive", 1, "timeout must be a number >= 0")
    end
  end
  if self.state == "closed" then return nil, "closed", self.close_code, self.close_reason end
  if self.receiving then error("receive: another task is already receiving on this websocket", 2) end
  self.receiving = true
  local _ <close> = self.guard
  return receive(self, timeout and core.now() + timeout)
end

local function send_frame(self, op, data)
  if self.state ~= "open" then return nil, "closed", "ECLOSED" end
  local ok, err, code = self.c:write(core.ws_encode(op, data, self.mask))
  if not ok then return nil, err, code end
  return self
end

--- ws:send(data [, "text" | "binary"]) -> ws | nil, err, code
function WS:send(data, kind)
  if type(data) ~= "string" then
    if type(data) == "number" then data = tostring(data)
    else argerr("send", 1, "string expected, got " .. type(data)) end
  end
  local op
  if kind == nil or kind == "text" then
    op = OP_TEXT
    if not core.ws_utf8(data) then argerr("send", 1, "text is not valid UTF-8 (send it as \"binary\")") end
  elseif kind == "binary" then op = OP_BINARY
  else argerr("send", 2, "\"text\" or \"binary\" expected, got " .. tostring(kind)) end
  return send_frame(self, op, data)
end

--- ws:ping([data]) -> ws | nil, err, code: the pong is taken by receive.
function WS:ping(data)
  data = data or ""
  if type(data) ~= "string" then argerr("ping", 1, "string expected, got " .. type(data)) end
  if #data > 125 then argerr("ping", 1, "at most 125 bytes") end
  return send_frame(self, OP_PING, data)
end

local function valid_code(code)
  return math.type(code) == "integer" and code >= 1000 and code <= 4999 and
         code ~= 1004 and code ~= 1005 and code ~= 1006 and code ~= 1015 and
         (code <= 1014 or code >= 3000)
end

--- ws:close([code [, reason]]) -> true | nil, "timeout", "timeout": the
-- closing handshake; waits at most close_timeout seconds for the peer's
-- close frame, then closes the connection anyway.
function WS:close(code, reason)
  if code ~= nil and not valid_code(code) then
    argerr("close", 1, "close code must be 1000-1003, 1007-1014 or 3000-4999")
  end
  if reason ~= nil then
    if type(reason) ~= "string" then argerr("close", 2, "string expected, got " .. type(reason)) end
    if #reason > 123 then argerr("close", 2, "reason over 123 bytes") end
    if not core.ws_utf8(reason) then argerr("close", 2, "reason is not valid UTF-8") end
    if code == nil then code = 1000 end
  end
  if self.state ~= "open" then return true end
  self.state = "closing"
  -- (cut short, cancelled: the connection is closed without waiting)
  local _ <close> = self.closing_guard
  local ok, _msg, err = write_closing(self, core.ws_encode(OP_CLOSE, close_payload(code, reason), self.mask))
  if not ok then
    self.state, self.close_code, self.close_reason = "closed", 1006, ""
    self.c:close()
    if err == "timeout" then return nil, "timeout", "timeout" end
    return true
  end
  local deadline = core.now() + self.close_timeout
  local answered = false
  while self.receiving and self.state == "closing" do
    -- another task is in receive: it reads the peer's close frame and ends
    -- the connection; wait for that (or for it to leave receive without
    -- it, a timeout or a cancel: then read the answer here)
    self.closer = core.current()
    local r = core.park(math.max(deadline - core.now(), 0), "close")
    self.closer = nil
    if r ~= "read" then
      answered = r == true
      if self.state ~= "closed" then
        self.state, self.close_code, self.close_reason = "closed", 1006, ""
        self.c:close()
      end
    end
  end
  if self.state == "closing" then
    self.receiving = true
    while true do
      local kind, a, b = next_frame(self, deadline)
      if kind == "close" then
        answered = true
        self.close_code, self.close_reason = a or 1005, b
        break
      end
      if kind == nil then
        self.close_code, self.close_reason = math.type(b) == "integer" and b or 1006, ""
        break
      end
    end
    self.receiving = false
    self.state = "closed"
    finish(self, deadline)
  end
  if not answered then return nil, "timeout", "timeout" end
  return true
end

--- ws:is_closed() -> whether the connection is closed (or closing)
function WS:is_closed()
  return self.state ~= "open"
end

-- neap.http's server: the handler returned (ok) or raised; a websocket
-- still open is closed: normal closure, or 1011 (internal error).
function WS:_handler_done(ok)
  if self.state == "open" then pcall(self.close, self, ok == false and 1011 or 1000) end
end

-- ============================================================ the server side

local function has_token(value, token)
  if type(value) ~= "string" then return false end
  for t in value:gmatch("[^,%s]+") do
    if t:lower() == token then return true end
  end
  return false
end

-- The reason a request is not a WebSocket upgrade (RFC 6455 4.2.1), or nil.
local function bad_upgrade(req)
  local h = req.headers
  if req.method ~= "GET" then return "method must be GET" end
  if req.version ~= "1.1" then return "HTTP/1.1 required" end
  if not has_token(h.upgrade, "websocket") then return "no Upgrade: websocket header" end
  if not has_token(h.connection, "upgrade") then return "no Connection: Upgrade header" end
  local key = h["sec-websocket-key"]
  if type(key) ~= "string" or not key:match("^[%w+/]+=*$") or #key ~= 24 then
    return "bad Sec-WebSocket-Key"
  end
  if h["sec-websocket-version"] ~= "13" then return "unsupported Sec-WebSocket-Version" end
end

--- websocket.accept(req [, opts]) -> ws | nil, msg (req:websocket)
-- opts: max_message, close_timeout, protocols (a list: the first one the
-- client offers is chosen), headers (more response headers).
function websocket.accept(req, opts)
  local o, max, ct = ws_opts("websocket", 1, opts)
  if o.protocols ~= nil and type(o.protocols) ~= "table" then argerr("websocket", 1, "protocols must be a list") end
  if o.headers ~= nil and type(o.headers) ~= "table" then argerr("websocket", 1, "headers must be a table") end
  local conn, res = req._conn, req._conn.res
  if res.started then error("websocket: the response has started", 2) end
  local why = bad_upgrade(req)
  if why then
    local status = why == "unsupported Sec-WebSocket-Version" and 426 or 400
    res:send(status, why .. "\n", { ["Content-Type"] = "text/plain", ["Sec-WebSocket-Version"] = "13",
                                    Connection = "close" })
    return nil, why
  end
  local protocol
  if o.protocols then
    local offered = {}
    for p in (req.headers["sec-websocket-protocol"] or ""):gmatch("[^,%s]+") do offered[p] = true end
    for _, p in ipairs(o.protocols) do
      if offered[p] then protocol = p break end
    end
  end
  local out = { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                "Sec-WebSocket-Accept: ", core.ws_accept(req.headers["sec-websocket-key"]), "\r\n" }
  if protocol then out[#out + 1] = "Sec-WebSocket-Protocol: " .. protocol .. "\r\n" end
  if o.headers then
    for k, v in pairs(o.headers) do
      if type(k) ~= "string" or k:find("[%c%s:]") or type(v) ~= "string" or v:find("[\r\n%z]") then
        argerr("websocket", 1, "bad header " .. tostring(k))
      end
      out[#out + 1] = k .. ": " .. v .. "\r\n"
    end
  end
  out[#out + 1] = "\r\n"
  -- the connection is the websocket's now: neap.http sends nothing more on
  -- it and closes it when the handler returns
  res.started, res.finished, res.status = true, true, 101
  conn.close, conn.body_done = true, true
  local ok, err, code = conn.c:write(table.concat(out))
  if not ok then return nil, err, code end
  local ws = new(conn.c, true, max, ct, protocol)
  conn.ws = ws
  return ws
end

-- ============================================================ the client side

local function parse_url(url)
  local scheme, rest = url:match("^(wss?)://(.+)$")
  if not scheme then return nil end
  local hostport, path = rest:match("^([^/?#]+)(.*)$")
  if not hostport then return nil end
  if path == "" then path = "/" elseif path:sub(1, 1) == "?" then path = "/" .. path end
  path = path:gsub("#.*$", "")
  -- (the path and host go into the request as they are: a blank or a
  -- control character would end the request line or add headers)
  if path:find("[%s%c]") then return nil, "the path holds a blank or a control character" end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  if not host or host:find("[^%w.%-_~:]") then return nil, "bad host" end
  port = tonumber(port) or (scheme == "wss" and 443 or 80)
  if port < 1 or port > 65535 then return nil end
  return scheme, host, port, path, hostport
end

--- websocket.connect(url [, opts]) -> ws | nil, msg, code (http.websocket)
-- opts: timeout (connect and handshake, default 30), headers, protocols,
-- origin, tls (neap.connect("tls")'s options), max_message, close_timeout,
-- max_header.
function websocket.connect(url, opts)
  if type(url) ~= "string" then argerr("websocket", 1, "URL string expected, got " .. type(url)) end
  local o, max, ct = ws_opts("websocket", 2, opts)
  local scheme, host, port, path, hostport = parse_url(url)
  if not scheme then
    argerr("websocket", 1, "ws:// or wss:// URL expected, got " .. string.format("%q", url) ..
                           (host and ": " .. host or ""))
  end
  if o.origin ~= nil and (type(o.origin) ~= "string" or o.origin:find("[%c]")) then
    argerr("websocket", 2, "origin must be a string with no control characters")
  end
  for _, pr in ipairs(o.protocols or {}) do
    if type(pr) ~= "string" or not pr:find("^[%w!#$%%&'*+%-.^_`|~]+$") then
      argerr("websocket", 2, "protocols must be tokens, got " .. string.format("%q", tostring(pr)))
    end
  end
  local timeout = o.timeout or 30
  if type(timeout) ~= "number" or timeout < 0 then argerr("websocket", 2, "timeout must be a number >= 0") end
  if o.headers ~= nil and type(o.headers) ~= "table" then argerr("websocket", 2, "headers must be a table") end
  if o.protocols ~= nil and type(o.protocols) ~= "table" then argerr("websocket", 2, "protocols must be a list") end
  if o.tls ~= nil and type(o.tls) ~= "table" then argerr("websocket", 2, "tls must be a table") end
  local deadline = core.now() + timeout
  local c, err, code
  if scheme == "wss" then
    local t = {}
    for k, v in pairs(o.tls or {}) do t[k] = v end
    t.timeout = timeout
    c, err, code = neap.connect("tls", host, port, t)
  else
    c, err, code = neap.connect("tcp", host, port, { timeout = timeout })
  end
  if not c then return nil, err, code end
  local key = core.ws_key()
  local req = { "GET ", path, " HTTP/1.1\r\nHost: ", hostport,
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", key,
                "\r\nSec-WebSocket-Version: 13\r\n" }
  if o.origin then req[#req + 1] = "Origin: " .. o.origin .. "\r\n" end
  if o.protocols and #o.protocols > 0 then
    req[#req + 1] = "Sec-WebSocket-Protocol: " .. table.concat(o.protocols, ", ") .. "\r\n"
  end
  for k, v in pairs(o.headers or {}) do
    if type(k) ~= "string" or k:find("[%c%s:]") or type(v) ~= "string" or v:find("[\r\n%z]") then
      c:close()
      argerr("websocket", 2, "bad header " .. tostring(k))
    end
    req[#req + 1] = k .. ": " .. v .. "\r\n"
  end
  req[#req + 1] = "\r\n"
  local ok
  ok, err, code = c:write(table.concat(req))
  if not ok then c:close() return nil, err, code end
  -- the reply's head, parsed by llhttp; the bytes after it (frames the
  -- server sent at once) stay in the buffer for the websocket
  local p = core.http_parser("response")
  local head
  while true do
    head, err, code = p:head(c, o.max_header or 16 * 1024)
    if head then break end
    if code ~= "more" then
      c:close()
      return nil, "bad response: " .. tostring(err), code
    end
    local left = deadline - core.now()
    if left <= 0 then c:close() return nil, "timeout", "timeout" end
    local n
    n, err, code = c:wait_readable { above = c:buffered(), timeout = left }
    if not n then c:close() return nil, err, code end
    if n == 0 then c:close() return nil, "bad response: the connection closed", "EPROTO" end
  end
  local h = head.headers
  local why
  if head.status ~= 101 then why = "upgrade refused: " .. head.status .. " " .. head.reason
  elseif not has_token(h.upgrade, "websocket") then why = "bad handshake: no Upgrade: websocket"
  elseif not has_token(h.connection, "upgrade") then why = "bad handshake: no Connection: Upgrade"
  elseif h["sec-websocket-accept"] ~= core.ws_accept(key) then why = "bad handshake: wrong Sec-WebSocket-Accept"
  elseif h["sec-websocket-extensions"] then why = "bad handshake: an extension that was not offered"
  end
  local protocol = h["sec-websocket-protocol"]
  if not why and protocol then
    local offered = false
    for _, pr in ipairs(o.protocols or {}) do if pr == protocol then offered = true end end
    if not offered then why = "bad handshake: a subprotocol that was not offered" end
  end
  if why then
    c:close()
    return nil, why, "EPROTO"
  end
  local ws = new(c, false, max, ct, protocol)
  ws.status, ws.headers = head.status, h
  return ws
end

websocket.parse_url = parse_url

return websocket
