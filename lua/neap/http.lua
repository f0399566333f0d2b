-- neap.http: an HTTP/1.1 server on llhttp (src/http.c parses a connection's
-- buffer in place). Each connection is a task; the handler runs in it, one
-- request at a time, so it may wait. Policy lives here: keep-alive,
-- pipelining, 100-continue, limits and timeouts, draining on close.
-- The client is neap.httpclient (http.request, http.get); WebSocket is
-- neap.websocket (req:websocket, http.websocket).
local neap = require "neap"
local core = require "neap.core"

local http = {}

-- the client (lua/neap/httpclient.lua)
local client = require "neap.httpclient"
http.request, http.get, http.close_idle = client.request, client.get, client.close_idle

local function argerr(fname, i, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), level or 3)
end

local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols",
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
  [304] = "Not Modified", [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [409] = "Conflict", [410] = "Gone", [411] = "Length Required",
  [413] = "Content Too Large", [414] = "URI Too Long", [415] = "Unsupported Media Type",
  [417] = "Expectation Failed", [426] = "Upgrade Required", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported",
}

-- the Date header, made once a second
local date_sec, date_str
local function date()
  local now = os.time()
  if now ~= date_sec then
    date_sec, date_str = now, os.date("!%a, %d %b %Y %H:%M:%S GMT", now)
  end
  return date_str
end

local function report(what, err)   -- (a __tostring that raises must not kill the connection)
  io.stderr:write("neap.http: ", what, ": ", require("neap.util").errtext(err), "\n")
end

-- ============================================================ responses

local Res = {}
Res.__index = Res

-- Sends a whole small response on a connection outside any handler
-- (errors found by the server itself); the connection closes after it.
local function send_error(c, status)
  local body = status .. " " .. (REASONS[status] or "") .. "\n"
  c:write("HTTP/1.1 ", tostring(status), " ", REASONS[status] or "", "\r\nDate: ", date(),
          "\r\nContent-Type: text/plain\r\nContent-Length: ", tostring(#body),
          "\r\nConnection: close\r\n\r\n", body)
end

local function check_header_value(fname, name, value, in_list)
  -- a name is a token (RFC 9110 5.1): anything else breaks the response
  if type(name) ~= "string" or not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then
    argerr(fname, 1, "bad header name " .. string.format("%q", tostring(name)))
  end
  local tv = type(value)
  if tv == "number" then return tostring(value) end
  if tv == "table" and not in_list then   -- (a list of lists would reach table.concat)
    for i = 1, #value do value[i] = check_header_value(fname, name, value[i], true) end
    return value
  end
  if tv ~= "string" then
    argerr(fname, 2, (in_list and "a header list holds strings or numbers" or
                      "header value must be a string, number or list") .. ", got " .. tv)
  end
  if value:find("[\r\n%z]") then argerr(fname, 2, "header value contains CR, LF or NUL") end
  return value
end

-- res:header's headers (the slow path: most handlers give theirs to send
-- or start): res.hdrs maps a lower-case name to { name =, value = },
-- res.order keeps them in order.
local function set_header(res, fname, name, value)
  value = check_header_value(fname, name, value)
  local key = name:lower()
  if key == "content-length" and not (type(value) == "string" and value:find("^%d+$")) then
    argerr(fname, 2, "Content-Length must be an integer >= 0")   -- (it is the framing)
  end
  local hdrs = res.hdrs
  if not hdrs then hdrs = {}; res.hdrs, res.order = hdrs, {} end
  local h = hdrs[key]
  if h then h.value = value
  else
    h = { name = name, value = value }
    hdrs[key] = h
    res.order[#res.order + 1] = h
  end
end

--- res:header(name, value) -> res: sets a header before the response starts
-- (a list value sends one line per element, for set-cookie).
function Res:header(name, value)
  if self.started then error("header: the response has started", 2) end
  if value == nil then   -- remove
    local key = type(name) == "string" and name:lower()
    local h = key and self.hdrs and self.hdrs[key]
    if h then
      self.hdrs[key] = nil
      for i, x in ipairs(self.order) do if x == h then table.remove(self.order, i) break end end
    end
    return self
  end
  set_header(self, "header", name, value)
  return self
end

-- the flags of core.http_response (src/http.c)
local RF_BODYLESS, RF_NOBODY, RF_CLOSE, RF_HTTP11, RF_HTTP10 = 1, 2, 4, 8, 16
local http_response = core.http_response

-- Builds the status line and headers in one string (src/http.c checks the
-- handler's headers and adds Content-Length, Date, chunked framing and
-- Connection); decides the framing.
local function start(res, fname, status, headers, length)
  if res.started then error(fname .. ": the response has started", 3) end
  if math.type(status) ~= "integer" or status < 100 or status > 999 then
    argerr(fname, 1, "status must be an integer from 100 to 999")
  end
  if headers ~= nil and type(headers) ~= "table" then
    argerr(fname, 2, "headers table expected, got " .. type(headers))
  end
  local list
  if res.order then   -- res:header was called: the handler's headers join those
    if headers then for k, v in pairs(headers) do set_header(res, fname, k, v) end end
    local hdrs, n = res.hdrs, 0
    list = {}
    for _, h in ipairs(res.order) do
      if hdrs[h.name:lower()] == h then list[n + 1], list[n + 2], n = h.name, h.value, n + 2 end
    end
    headers = nil
  end
  local conn, req = res.conn, res.req
  local flags, bodyless = 0, false
  if status < 200 or status == 204 or status == 304 then flags, bodyless = RF_NOBODY + RF_BODYLESS, true
  elseif req.method == "HEAD" then flags, bodyless = RF_BODYLESS, true end
  local version = req.version
  if version == "1.1" then flags = flags + RF_HTTP11 elseif version == "1.0" then flags = flags + RF_HTTP10 end
  if conn.close or conn.server.closing or not req.keep_alive or
     (not conn.body_done and ((conn.expect and not conn.continued) or
      (req._length and req._length - conn.body_read > conn.server.opts.max_body))) then
    flags = flags + RF_CLOSE   -- (a body that will not be read: say so now)
  end
  local head, chunked, close, cl = http_response(status, REASONS[status] or "Unknown", headers, list,
                                                 length, date(), flags)
  if not head then
    if chunked == 1 then argerr(fname, 1, "bad header name " .. string.format("%q", tostring(close))) end
    if chunked == 3 then error(fname .. ": " .. close, 3) end   -- (the body is longer than its Content-Length)
    argerr(fname, 2, close)
  end
  res.started, res.status, res.bodyless, res.chunked, res.length, res.sent = true, status, bodyless, chunked, cl, 0
  if close then conn.close = true end
  return head
end

local function write_result(res, ok, err, code)
  if not ok then
    res.conn.close, res.conn.broken = true, true
    return nil, err, code
  end
  return res
end

--- res:start(status [, headers]) -> res | nil, err, code: sends the status
-- line and headers; the body follows with res:write and res:finish.
function Res:start(status, headers)
  local head = start(self, "start", status, headers)
  return write_result(self, self.conn.c:write(head))
end

--- res:write(data, ...) -> res | nil, err, code: a piece of the body.
function Res:write(...)
  if not self.started then error("write: call res:start first", 2) end
  if self.finished then error("write: the response is finished", 2) end
  local n = select("#", ...)
  local total = 0
  for i = 1, n do
    local d = select(i, ...)
    if type(d) ~= "string" then
      if type(d) == "number" then d = tostring(d)
      else argerr("write", i, "string expected, got " .. type(d)) end
    end
    total = total + #d
  end
  if self.bodyless or total == 0 then return self end
  if self.length and self.sent + total > self.length then
    -- the bytes past it would be read as the next response on the connection
    error(string.format("write: %d byte(s) past the Content-Length %d", self.sent + total - self.length, self.length), 2)
  end
  self.sent = self.sent + total
  local c = self.conn.c
  if self.chunked then
    local ok, err, code = c:write(string.format("%x\r\n", total), ...)
    if ok then ok, err, code = c:write("\r\n") end
    return write_result(self, ok, err, code)
  end
  return write_result(self, c:write(...))
end

--- res:finish([data]) -> res | nil, err, code: ends the body.
function Res:finish(data)
  if not self.started then self:start(200) end
  if self.finished then return self end
  local ok, err, code = true, nil, nil
  if data ~= nil and data ~= "" then ok, err, code = self:write(data) end
  self.finished = true
  if not ok then return nil, err, code end
  if self.chunked and not self.bodyless then
    return write_result(self, self.conn.c:write("0\r\n\r\n"))
  end
  if self.length and self.sent ~= self.length and not self.bodyless then
    self.conn.close = true   -- the framing is broken: the client sees the close
  end
  return self
end

--- res:send(status, body [, headers]) -> res | nil, err, code: the whole response.
function Res:send(status, body, headers)
  if body ~= nil and type(body) ~= "string" then
    if type(body) == "number" then body = tostring(body)
    else argerr("send", 2, "string expected, got " .. type(body)) end
  end
  body = body or ""
  local head = start(self, "send", status, headers, #body)
  self.finished = true
  if self.bodyless or body == "" then return write_result(self, self.conn.c:write(head)) end
  self.sent = #body
  if self.chunked then   -- a content-length header was removed by the handler
    return write_result(self, self.conn.c:write(head, string.format("%x\r\n", #body), body, "\r\n0\r\n\r\n"))
  end
  if self.length and self.length ~= #body then self.conn.close = true end
  return write_result(self, self.conn.c:write(head, body))
end

-- ============================================================ requests

local Req = {}
Req.__index = Req

-- The next decoded piece of the body (at most n bytes), or nil, "eof" at
-- its end; waits for bytes, sending 100 Continue first when asked.
local function body_piece(req, n)
  local conn = req._conn
  if req._over then   -- its handler returned: what comes now is the next request's
    if req._over == "eof" then return nil, "eof", "eof" end
    return nil, "closed", "ECLOSED"
  end
  if conn.body_done then return nil, "eof", "eof" end
  local c = conn.c
  if conn.expect and not conn.continued then
    conn.continued = true
    if not conn.res.started then c:write("HTTP/1.1 100 Continue\r\n\r\n") end
  end
  local timeout = conn.server.opts.read_timeout
  while true do
    local data, done, code = conn.p:body(c, n)
    if not data then
      conn.close = true
      return nil, done, code
    end
    if done then conn.body_done = true end
    if #data > 0 then
      conn.body_read = conn.body_read + #data
      return data
    end
    if done then return nil, "eof", "eof" end
    conn.waiting = true
    local r, err, ecode = c:wait_readable { timeout = timeout }
    conn.waiting = false
    if not r or r == 0 then
      conn.close = true
      if r == 0 then return nil, "closed", "ECLOSED" end   -- the client went mid-body
      return nil, err, ecode
    end
  end
end

--- req:read([n]) -> data | nil, "eof", "eof" | nil, err, code: the next
-- piece of the body, at most n bytes (default 64 KiB).
function Req:read(n)
  if n ~= nil and (math.type(n) ~= "integer" or n <= 0) then
    argerr("read", 1, "size must be a positive integer")
  end
  return body_piece(self, n or 65536)
end

--- req:body([opts]) -> the whole body | nil, "too large", "E2BIG" | nil, err, code
function Req:body(opts)
  if opts ~= nil and type(opts) ~= "table" then argerr("body", 1, "options table expected, got " .. type(opts)) end
  local conn = self._conn
  local max = opts and opts.max or conn.server.opts.max_body
  if math.type(max) ~= "integer" or max < 0 then argerr("body", 1, "max must be an integer >= 0") end
  if self._whole then return self._whole end
  local function too_large()
    conn.close = true
    conn.fail_status = 413
    return nil, "too large", "E2BIG"
  end
  if self._length and self._length - conn.body_read > max then return too_large() end
  local parts, size = {}, 0
  while true do
    local d, err, code = body_piece(self, 65536)
    if not d then
      if code == "eof" then break end
      return nil, err, code
    end
    size = size + #d
    if size > max then return too_large() end
    parts[#parts + 1] = d
  end
  self._whole = table.concat(parts)
  return self._whole
end

--- req:websocket([opts]) -> ws | nil, msg: answers a WebSocket upgrade
-- (neap.websocket); the connection is the websocket's from then on.
function Req:websocket(opts)
  return require("neap.websocket").accept(self, opts)
end

-- ============================================================ connections

-- Reads the next request head: nil, err, code, bytes when none comes (an
-- idle connection that closes or times out has bytes == 0).
local function read_head(conn, idle_timeout)
  local c, p, opts = conn.c, conn.p, conn.server.opts
  local head, err, code = nil, "more", "more"
  if c:buffered() > 0 then   -- (pipelined: maybe already there)
    head, err, code = p:head(c, opts.max_header, Req)
    if head then return head end
  end
  local now = core.now()
  local idle_deadline = now + idle_timeout
  local head_deadline
  local wait = conn.wait_opts
  conn.idle = true
  while true do
    if code ~= "more" then   -- (ECLOSED: server:close() closed it meanwhile)
      conn.idle = false
      return nil, err, code, code == "ECLOSED" and 0 or c:buffered()
    end
    local have = c:buffered()
    if have > 0 and not head_deadline then
      conn.idle = false
      head_deadline = now + opts.header_timeout
      if conn.server.closing then return nil, "closed", "ECLOSED", have end
    end
    local left = (head_deadline or idle_deadline) - now
    if left <= 0 then conn.idle = false return nil, "timeout", "timeout", have end
    wait.above, wait.timeout = have, left
    local n, werr, wcode = c:wait_readable(wait)
    if not n then conn.idle = false return nil, werr, wcode, have end
    if n == 0 then conn.idle = false return nil, "eof", "eof", have end
    head, err, code = p:head(c, opts.max_header, Req)
    if head then conn.idle = false return head end
    now = core.now()
  end
end

-- After the handler: read what is left of the body, or give up on the
-- connection (a body over max_body, a 100-continue never answered).
local function drain_body(conn)
  if conn.body_done or conn.close then return end
  if conn.expect and not conn.continued then conn.close = true return end
  -- a task the handler left is waiting in req:read(): give the connection up
  -- (it gets "closed") rather than read under it
  if conn.waiting then conn.close = true return end
  local max = conn.server.opts.max_body
  while true do
    local d = body_piece(conn.req, 65536)
    if not d then return end
    if conn.body_read > max then conn.close = true return end
  end
end

local function serve_conn(server, c)
  local conn = { server = server, c = c, p = core.http_parser("request"), task = core.current(),
                 wait_opts = {} }
  local opts = server.opts
  server.conns[conn] = true
  server.nconns = server.nconns + 1
  local first = true
  while true do
    if server.closing then break end
    local head, err, code, have = read_head(conn, first and opts.header_timeout or opts.keepalive_timeout)
    first = false
    if not head then
      if code == "E2BIG" then send_error(c, 431)
      elseif code == "EPROTO" then send_error(c, 400)
      elseif code == "timeout" and have > 0 then send_error(c, 408)
      end
      break
    end
    conn.body_done = head._body == "none"
    conn.body_read, conn.continued, conn.fail_status = 0, false, nil
    conn.close = not head.keep_alive
    local req = head   -- (the parser's request form: a Req)
    req._conn = conn
    local expect = req.headers.expect
    conn.expect = expect ~= nil and expect:lower() == "100-continue" and req.version == "1.1"
                  and not conn.body_done
    local res = setmetatable({ conn = conn, req = req }, Res)
    conn.req, conn.res = req, res
    local ok, herr = xpcall(server.handler, debug.traceback, req, res)
    if conn.ws then conn.ws:_handler_done(ok) end
    if not ok then
      report("handler failed", herr)
      conn.close = true
      if not res.started then send_error(c, conn.fail_status or 500)
      elseif not res.finished then conn.broken = true end
    elseif not res.started then
      if conn.fail_status then send_error(c, conn.fail_status)
      else
        report("handler failed", "the handler returned without a response to " .. req.method .. " " .. req.target)
        conn.close = true
        send_error(c, 500)
      end
    elseif not res.finished then
      res:finish()
    end
    if conn.broken or conn.close then break end
    local had_all = conn.body_done
    drain_body(conn)
    -- (a task the handler left reading req must not get the next request's
    -- body; a body drained here is gone for it)
    req._over = had_all and "eof" or "closed"
    if conn.close then break end
  end
  server.conns[conn] = nil
  server.nconns = server.nconns - 1
  if server.closing and server.waiter and server.nconns <= server.wait_for then
    local w = server.waiter
    server.waiter = nil
    core.wake(w)
  end
  -- (serve closes c when this returns)
end

-- ============================================================ servers

local Server = {}
Server.__index = Server

local function num_opt(opts, k, default, integer)
  local v = opts[k]
  if v == nil then return default end
  if type(v) ~= "number" or not (v >= 0) or (integer and math.type(v) ~= "integer") then   -- (NaN too)
    argerr("listen", 4, k .. " must be a" .. (integer and "n integer" or " number") .. " >= 0", 4)
  end
  return v
end

--- http.listen(host, port, handler [, opts]) -> server | nil, err, code
function http.listen(host, port, handler, opts)
  if type(host) ~= "string" then argerr("listen", 1, "host must be a string") end
  if type(handler) ~= "function" then argerr("listen", 3, "handler function expected, got " .. type(handler)) end
  if opts ~= nil and type(opts) ~= "table" then argerr("listen", 4, "options table expected, got " .. type(opts)) end
  opts = opts or {}
  local o = {
    max_header = num_opt(opts, "max_header", 16 * 1024, true),
    max_body = num_opt(opts, "max_body", 1024 * 1024, true),
    header_timeout = num_opt(opts, "header_timeout", 10),
    keepalive_timeout = num_opt(opts, "keepalive_timeout", 5),
    read_timeout = num_opt(opts, "read_timeout", 30),
    drain = num_opt(opts, "drain", 5),
  }
  local srv, err, code
  if opts.tls ~= nil then
    if type(opts.tls) ~= "table" then argerr("listen", 4, "tls must be a table") end
    local t = {}
    for k, v in pairs(opts.tls) do t[k] = v end
    t.backlog, t.reuseport = opts.backlog, opts.reuseport
    srv, err, code = neap.listen("tls", host, port, t)
  else
    srv, err, code = neap.listen("tcp", host, port, { backlog = opts.backlog, reuseport = opts.reuseport })
  end
  if not srv then return nil, err, code end
  local server = setmetatable({ srv = srv, handler = handler, opts = o, conns = {}, nconns = 0 }, Server)
  server.task = srv:serve(function(c) serve_conn(server, c) end)
  return server
end

--- server:address() -> host, port
function Server:address()
  return self.srv:address()
end

--- server:close([opts]) -> true: stops accepting; idle connections close at
-- once, requests in flight get opts.drain seconds (default: the server's)
-- to finish, then their connections close. Inside a task it waits for that;
-- called by a handler, it waits for the others and leaves the handler's own
-- connection to close after its response.
function Server:close(opts)
  if opts ~= nil and type(opts) ~= "table" then argerr("close", 1, "options table expected, got " .. type(opts)) end
  local d = opts and opts.drain
  if d ~= nil and (type(d) ~= "number" or not (d >= 0)) then argerr("close", 1, "drain must be a number >= 0") end
  if self.closing then return true end
  self.closing = true
  self.srv:close()
  local cur, me = core.current(), nil
  for conn in pairs(self.conns) do
    if cur and conn.task == cur then me = conn
    elseif conn.idle then conn.c:close() end
  end
  local drain = opts and opts.drain or self.opts.drain
  local function wait_and_close()
    local keep = me and 1 or 0
    if self.nconns > keep then
      self.waiter, self.wait_for = core.current(), keep
      core.park(drain)
      self.waiter = nil
    end
    for conn in pairs(self.conns) do
      if conn ~= me then conn.c:close() end
    end
  end
  if neap.current() then wait_and_close()
  else core.task(wait_and_close) end
  return true
end

--- http.websocket(url [, opts]) -> ws | nil, msg, code: a WebSocket client
-- (neap.websocket)
function http.websocket(url, opts)
  return require("neap.websocket").connect(url, opts)
end

return http
