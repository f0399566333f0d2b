-- neap.httpclient: neap.http's HTTP/1.1 client (http.request, http.get).
-- The response is parsed by the same llhttp parser object as the server's
-- requests (src/http.c), over the connection's buffer in place. Policy lives
-- here: the pool of idle keep-alive connections per origin, the retry of a
-- stale pooled connection, redirects, the deadline of a whole request.
local neap = require "neap"
local core = require "neap.core"

local client = {}

local USER_AGENT = "neap/" .. neap.version
local POOL_MAX = 16          -- idle connections kept per origin
local POOL_IDLE = 30         -- seconds an idle connection is kept
local DEFAULT_PORT = { http = 80, https = 443 }
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }
local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local WANTS_LENGTH = { POST = true, PUT = true, PATCH = true }

-- raises at the user's line: level 4 is the caller of http.request when
-- argerr is called by check (argerr, check, http.request, the user)
local function argerr(fname, i, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), level or 4)
end

-- ============================================================ URLs

-- parse_url(s) -> { scheme=, host=, port=, target=, authority=, origin= } | nil, why
local function parse_url(s)
  if type(s) ~= "string" then return nil, "string expected, got " .. type(s) end
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "not an absolute http:// or https:// URL" end
  scheme = scheme:lower()
  if not DEFAULT_PORT[scheme] then return nil, "unsupported scheme \"" .. scheme .. "\"" end
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "")
  if target == "" then target = "/"
  elseif target:sub(1, 1) == "?" then target = "/" .. target end
  if target:find("[%s%c]") then return nil, "the path holds a blank or a control character" end
  if authority:find("@", 1, true) then return nil, "user names in URLs are not supported" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%](.*)$")
    if not host then return nil, "bad IPv6 address" end
  else
    host, port = authority:match("^([^:]*)(.*)$")
    if host:find("[^%w.%-_~]") then return nil, "bad host \"" .. host .. "\"" end
  end
  if host == "" then return nil, "no host" end
  if port == "" then port = DEFAULT_PORT[scheme]
  else
    port = tonumber(port:match("^:(%d+)$"))
    if not port or port < 1 or port > 65535 then return nil, "bad port" end
  end
  local hostport = host:find(":", 1, true) and "[" .. host .. "]" or host
  if port ~= DEFAULT_PORT[scheme] then hostport = hostport .. ":" .. port end
  return { scheme = scheme, host = host, port = port, target = target, authority = hostport,
           origin = scheme .. "://" .. hostport }
end

-- A Location header resolved against the URL it answered (RFC 3986 5.2,
-- without dot-segment removal): -> parsed URL | nil
local function resolve(u, loc)
  loc = loc:gsub("^%s+", ""):gsub("%s+$", "")
  if loc:match("^%a[%w+.-]*://") then return parse_url(loc) end
  if loc:sub(1, 2) == "//" then return parse_url(u.scheme .. ":" .. loc) end
  if loc:sub(1, 1) == "/" then return parse_url(u.origin .. loc) end
  local path = u.target:gsub("[?#].*$", "")
  if loc == "" then return parse_url(u.origin .. u.target) end
  if loc:sub(1, 1) == "?" then return parse_url(u.origin .. path .. loc) end
  return parse_url(u.origin .. path:gsub("[^/]*$", "") .. loc)
end

local function url_string(u)
  return u.origin .. u.target
end

-- ============================================================ the pool

local pools = {}   -- key -> list of idle connections { c=, p=, since= }

-- The key of an origin's pool: the scheme, host, port and the TLS options
-- (connections made with other certificates or checks are not shared).
local function pool_key(u, tls)
  local key = u.scheme .. "://" .. u.host .. ":" .. u.port
  if u.scheme == "https" and tls then
    local parts = {}
    for k, v in pairs(tls) do
      if type(v) == "table" then
        local t = {}
        for name, x in pairs(v) do t[#t + 1] = tostring(name) .. "=" .. tostring(x) end
        table.sort(t)
        v = "{" .. table.concat(t, ",") .. "}"
      end
      parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
    end
    table.sort(parts)
    key = key .. " " .. table.concat(parts, " ")
  end
  return key
end

-- An idle connection of the pool that still looks alive, or nil.
local function take(key)
  local list = pools[key]
  while list and #list > 0 do
    local conn = table.remove(list)   -- the most recently used first
    if #list == 0 then pools[key] = nil end
    if core.now() - conn.since < POOL_IDLE and not conn.c:is_closed() then
      -- at the end of the stream, or bytes nobody asked for: not reusable
      local n, _, code = conn.c:wait_readable { timeout = 0 }
      if n == nil and code == "timeout" then return conn end
    end
    conn.c:close()
  end
end

local function put(conn)
  local list = pools[conn.key]
  if not list then
    list = {}
    pools[conn.key] = list
  end
  if #list >= POOL_MAX then
    conn.c:close()
    return
  end
  conn.since = core.now()
  list[#list + 1] = conn
end

--- http.close_idle() -> n: closes the idle connections of the pool
function client.close_idle()
  local n = 0
  for key, list in pairs(pools) do
    for _, conn in ipairs(list) do
      conn.c:close()
      n = n + 1
    end
    pools[key] = nil
  end
  return n
end

-- ============================================================ options

local function check_headers(fname, i, headers)
  local function err(msg) argerr(fname, i, msg, 6) end
  if headers == nil then return {} end
  if type(headers) ~= "table" then err("headers must be a table, got " .. type(headers)) end
  local out = {}
  for name, v in pairs(headers) do
    if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      err("bad header name " .. string.format("%q", tostring(name)))
    end
    local vals = type(v) == "table" and v or { v }
    for _, x in ipairs(vals) do
      if type(x) ~= "string" and type(x) ~= "number" then
        err("header " .. name .. " must be a string, number or list, got " .. type(x))
      end
      if tostring(x):find("[\r\n%z]") then err("header " .. name .. " holds CR, LF or NUL") end
    end
    if name:lower() == "content-length" and not (type(v) == "number" and math.tointeger(v) and v >= 0 or
        type(v) == "string" and v:find("^%d+$") and math.tointeger(tonumber(v))) then
      err("header " .. name .. " must be an integer >= 0")   -- (it is sent as the framing)
    end
    out[name] = v
  end
  return out
end

-- Checks the options of http.request (or http.get's, url given apart):
-- raises at the user's line.
local function check(fname, opts, url, urlarg)
  local o = {}
  local u, why = parse_url(url)
  if not u then
    if urlarg then argerr(fname, 1, "bad URL " .. string.format("%q", tostring(url)) .. ": " .. why) end
    argerr(fname, 1, "url: " .. (url == nil and "missing" or string.format("%q: %s", tostring(url), why)))
  end
  o.url = u
  local method = opts.method
  if method == nil then method = "GET" end
  if type(method) ~= "string" or not method:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    argerr(fname, urlarg and 2 or 1, "method must be a token such as \"GET\", got " .. tostring(method))
  end
  o.method = method
  o.headers = check_headers(fname, urlarg and 2 or 1, opts.headers)
  local body = opts.body
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    argerr(fname, urlarg and 2 or 1, "body must be a string or a function, got " .. type(body))
  end
  o.body = body
  local function num(k, integer, min)
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or (integer and math.type(v) ~= "integer") or not (v >= min)) then
      argerr(fname, urlarg and 2 or 1, k .. " must be a" .. (integer and "n integer" or " number") .. " >= " .. min, 5)
    end
    return v
  end
  o.timeout = num("timeout", false, 0)
  o.follow = num("follow", true, 0) or 0
  o.max_header = num("max_header", true, 1) or 65536
  o.max_body = num("max_body", true, 0)
  for _, k in ipairs { "stream", "pool" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      argerr(fname, urlarg and 2 or 1, k .. " must be a boolean, got " .. type(opts[k]))
    end
  end
  o.stream = opts.stream == true
  o.pool = opts.pool ~= false
  if opts.tls ~= nil then
    if type(opts.tls) ~= "table" then argerr(fname, urlarg and 2 or 1, "tls must be a table, got " .. type(opts.tls)) end
    o.tls = opts.tls
    require("neap.tls").context(opts.tls, false, fname, 4)   -- a bad certificate raises here
  end
  return o
end

-- ============================================================ one exchange

local function bad(msg)
  return nil, "bad response: " .. msg, "EPROTO"
end

local function left(deadline)
  return deadline and math.max(0, deadline - core.now())
end

local function connect(o, u, deadline)
  if u.scheme == "https" then
    local t = {}
    for k, v in pairs(o.tls or {}) do t[k] = v end
    t.timeout = left(deadline)
    return neap.connect("tls", u.host, u.port, t)
  end
  return neap.connect("tcp", u.host, u.port, { timeout = left(deadline) })
end

-- A new connection to u: -> conn | nil, err, code
local function open(o, u, deadline)
  local c, err, code = connect(o, u, deadline)
  if not c and (code == "EMFILE" or code == "ENFILE") and client.close_idle() > 0 then
    -- out of descriptors: the pool's idle connections (some maybe closed
    -- by their servers already) give theirs back first
    c, err, code = connect(o, u, deadline)
  end
  if not c then return nil, err, code end
  return { c = c, p = core.http_parser("response"), key = pool_key(u, o.tls) }
end

-- The request's head (headers the caller set win, but the framing is ours).
local function request_head(o, u, method, headers, body)
  local out = { method, " ", u.target, " HTTP/1.1\r\n" }
  local given = {}
  local length, close
  for name, v in pairs(headers) do
    local k = name:lower()
    given[k] = true
    if k == "connection" and tostring(v):lower():find("close", 1, true) then close = true end
    if k == "content-length" then
      if type(body) == "function" then length = string.format("%d", tonumber(v)) end   -- a body of known length
    elseif k ~= "transfer-encoding" then
      if type(v) == "table" then
        for _, x in ipairs(v) do out[#out + 1] = name .. ": " .. x .. "\r\n" end
      else
        out[#out + 1] = name .. ": " .. v .. "\r\n"
      end
    end
  end
  if not given.host then out[#out + 1] = "Host: " .. u.authority .. "\r\n" end
  if not given["user-agent"] then out[#out + 1] = "User-Agent: " .. USER_AGENT .. "\r\n" end
  if not o.pool and not given.connection then out[#out + 1] = "Connection: close\r\n" end
  local chunked = false
  if type(body) == "string" then out[#out + 1] = "Content-Length: " .. #body .. "\r\n"
  elseif type(body) == "function" then
    if length then out[#out + 1] = "Content-Length: " .. length .. "\r\n"
    else
      out[#out + 1] = "Transfer-Encoding: chunked\r\n"
      chunked = true
    end
  elseif WANTS_LENGTH[method] then out[#out + 1] = "Content-Length: 0\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out), chunked, close, length
end

-- Writes a body function's chunks: -> true | nil, err, code (a write's
-- failure, or the function's own nil, msg, code)
local function write_body(c, body, chunked, length)
  local left = length and tonumber(length)   -- the bytes the caller's Content-Length says
  while true do
    local chunk, err, code = body()
    if chunk == nil then
      if err ~= nil and err ~= "eof" then return nil, err, code, true end
      if left and left > 0 then   -- the server would wait for the rest
        error("http.request: the body function ended " .. left .. " byte(s) short of its Content-Length " .. length, 0)
      end
      break
    end
    if type(chunk) ~= "string" then
      error("http.request: the body function returned a " .. type(chunk) .. " (string or nil expected)", 0)
    end
    if left then   -- more would be read by the server as the next request
      left = left - #chunk
      if left < 0 then
        error("http.request: the body function gave more than its Content-Length " .. length, 0)
      end
    end
    if #chunk > 0 then
      local ok, werr, wcode
      if chunked then ok, werr, wcode = c:write(string.format("%x\r\n", #chunk), chunk, "\r\n")
      else ok, werr, wcode = c:write(chunk) end
      if not ok then return nil, werr, wcode end
    end
  end
  if chunked then
    local ok, err, code = c:write("0\r\n\r\n")
    if not ok then return nil, err, code end
  end
  return true
end

-- Reads a response head: -> head | nil, err, code, bytes (bytes: what had
-- come of the response when it failed)
local function read_head(conn, o, nobody, deadline)
  local c, p = conn.c, conn.p
  while true do
    local head, err, code = p:head(c, o.max_header, nobody)
    if head then return head end
    if code ~= "more" then
      if code == "E2BIG" then return nil, "bad response: header too large", "E2BIG", 1 end
      if code == "EPROTO" then return nil, "bad response: " .. err, "EPROTO", 1 end
      return nil, err, code, 0
    end
    local have = c:buffered()
    local t = left(deadline)
    if t and t <= 0 then return nil, "timeout", "timeout", have end
    local n, werr, wcode = c:wait_readable { above = have, timeout = t }
    if not n then return nil, werr, wcode, have end
    if n == 0 then
      if have == 0 then return nil, "bad response: connection closed before a response", "EPROTO", 0 end
      return nil, "bad response: connection closed mid-response", "EPROTO", have
    end
  end
end

-- ============================================================ responses

local Res = {}
Res.__index = Res

-- The connection is done with: back to the pool when it can be reused.
local function release(res)
  local conn = res._conn
  if not conn then return end
  res._conn = nil
  if res._reuse and conn.c:buffered() == 0 then put(conn)
  else conn.c:close() end
end

local function fail(res, ...)
  res._done = true
  res._reuse = false
  release(res)
  return ...
end

-- The next piece of the body (at most n bytes), or nil, "eof", "eof".
local function body_piece(res, n)
  if res._done then return nil, "eof", "eof" end
  local conn = res._conn
  local c, p = conn.c, conn.p
  while true do
    local data, done, code = p:body(c, n)
    if not data then
      if code == "EPROTO" then return fail(res, bad(done)) end
      return fail(res, nil, done, code)
    end
    if done then
      res._done = true
      release(res)
    end
    if #data > 0 then return data end
    if done then return nil, "eof", "eof" end
    local t = left(res._deadline)
    if t and t <= 0 then return fail(res, nil, "timeout", "timeout") end
    local r, err, ecode = c:wait_readable { timeout = t }
    if not r then return fail(res, nil, err, ecode) end
    if r == 0 then
      if res._eof_body then   -- the body ran to the close: complete
        local ok, ferr = p:finish()
        if not ok then return fail(res, bad(ferr)) end
        return fail(res, nil, "eof", "eof")
      end
      return fail(res, bad("connection closed mid-response"))
    end
  end
end

--- res:read([n]) -> data | nil, "eof", "eof" | nil, err, code: the next
-- piece of a streamed body, at most n bytes (default 65536).
function Res:read(n)
  if n ~= nil and (math.type(n) ~= "integer" or n <= 0) then
    error("bad argument #1 to 'read' (size must be a positive integer)", 2)
  end
  return body_piece(self, n or 65536)
end

--- res:close() -> true: ends a streamed response; its connection is
-- closed if the body was not read to its end.
function Res:close()
  if not self._done then
    self._done = true
    self._reuse = false
  end
  release(self)
  return true
end
Res.__close = Res.close

-- Reads the whole body: -> body | nil, err, code
local function read_all(res, max)
  local parts, size = {}, 0
  while true do
    local d, err, code = body_piece(res, 65536)
    if not d then
      if code == "eof" then break end
      return nil, err, code
    end
    size = size + #d
    if max and size > max then
      res:close()
      return nil, "too large", "E2BIG"
    end
    parts[#parts + 1] = d
  end
  return table.concat(parts)
end

-- One request on one connection: -> res | nil, err, code, stale (stale:
-- nothing of a response came, so a reused connection may have been closed
-- by the server before it saw the request).
local function exchange(conn, o, u, method, headers, body, deadline)
  local c = conn.c
  local head, chunked, close, length = request_head(o, u, method, headers, body)
  if deadline or conn.wt then
    conn.wt = true
    c:set_limits { write_timeout = left(deadline) or 1e9 }
  end
  local ok, werr, wcode, own
  if type(body) == "string" then ok, werr, wcode = c:write(head, body)
  else ok, werr, wcode = c:write(head) end
  if ok and type(body) == "function" then ok, werr, wcode, own = write_body(c, body, chunked, length) end
  if not ok and (own or wcode == "timeout") then return nil, werr, wcode end
  -- after a failed write, a response may still have come (a 413 before the close)
  local h, err, code, bytes
  local interim = false   -- a 1xx came: the server has the request
  repeat
    h, err, code, bytes = read_head(conn, o, method == "HEAD", deadline)
    if not h then
      local stale = bytes == 0 and not interim and code ~= "timeout"
      if not ok and code ~= "timeout" then return nil, werr, wcode, stale end
      return nil, err, code, stale
    end
    interim = true
  until h.status >= 200 or h.status == 101   -- 1xx interim responses are skipped
  local res = setmetatable({
    status = h.status, reason = h.reason, version = h.version, headers = h.headers,
    url = url_string(u),
    _conn = conn, _deadline = deadline, _eof_body = h.body == "eof",
    _reuse = o.pool and h.keep_alive and not close and ok and true or false,
  }, Res)
  if h.body == "none" then
    res._done = true
    if h.status == 101 then res._reuse = false end   -- another protocol follows
    release(res)
  end
  return res
end

-- Whether run follows the redirect res (or fails on it): its body is then
-- not read whole, only discarded.
local function redirects_to(o, res, body)
  if o.follow == 0 or not REDIRECT[res.status] or type(res.headers.location) ~= "string" then return false end
  return not ((res.status == 307 or res.status == 308) and type(body) == "function")
end

-- The request on a pooled or new connection, retried once on a new one
-- when a pooled connection turns out to be closed.
local function send(o, u, method, headers, body, deadline)
  local key = pool_key(u, o.tls)
  for try = 1, 2 do
    local conn = o.pool and try == 1 and take(key)
    local reused = conn and true or false
    if not conn then
      local err, code
      conn, err, code = open(o, u, deadline)
      if not conn then return nil, err, code end
    end
    local pok, res, err, code, stale = pcall(exchange, conn, o, u, method, headers, body, deadline)
    if not pok then   -- raised (cancelled, a body function's error): the connection goes
      conn.c:close()
      error(res, 0)
    end
    if res then
      if redirects_to(o, res, body) then return res end   -- (run discards its body)
      local length = tonumber(res.headers["content-length"])
      if not o.stream and o.max_body and not res._done and length and length > o.max_body then
        res:close()   -- known at once: not read
        return nil, "too large", "E2BIG"
      end
      if not o.stream and not res._done then
        local rok, whole, berr, bcode = pcall(read_all, res, o.max_body)
        if not rok then
          res:close()
          error(whole, 0)
        end
        if not whole then return nil, berr, bcode end
        res.body = whole
      elseif not o.stream then
        res.body = ""
      end
      return res
    end
    conn.c:close()
    if not (reused and stale and IDEMPOTENT[method] and type(body) ~= "function") then
      return nil, err, code
    end
  end
end

-- Throws away a redirect's body (reads a small one so the connection can
-- be reused; closes it otherwise).
local function discard(res)
  local ok, err = pcall(function()
    local got = 0
    while not res._done and got <= 65536 do
      local d = body_piece(res, 65536)
      if not d then break end
      got = got + #d
    end
  end)
  res:close()
  if not ok then error(err, 0) end   -- (cancelled)
end

local function run(o)
  local u, method, body, headers = o.url, o.method, o.body, o.headers
  local deadline = o.timeout and core.now() + o.timeout
  local redirects = 0
  while true do
    local res, err, code = send(o, u, method, headers, body, deadline)
    if not res then return nil, err, code end
    local loc = res.headers.location
    -- (a 307 or 308 with a body function is returned: it cannot be sent again)
    if not redirects_to(o, res, body) then return res end
    if redirects >= o.follow then
      res:close()
      return nil, "too many redirects", "too many redirects"
    end
    local nu = resolve(u, loc)
    if not nu then
      res:close()
      return bad("bad Location " .. string.format("%q", loc))
    end
    discard(res)
    redirects = redirects + 1
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    if res.status <= 303 and method ~= "HEAD" then   -- 301, 302, 303: GET without the body
      method, body = "GET", nil
      for k in pairs(headers) do
        local l = k:lower()
        if l == "content-length" or l == "content-type" or l == "transfer-encoding" then h[k] = nil end
      end
    end
    if nu.origin ~= u.origin then   -- credentials (and a Host given for it) stay with their origin
      for k in pairs(headers) do
        local l = k:lower()
        if l == "authorization" or l == "cookie" or l == "proxy-authorization" or l == "host" then h[k] = nil end
      end
    end
    headers, u = h, nu
  end
end

--- http.request(opts) -> res | nil, err, code
function client.request(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'http.request' (options table expected, got " .. type(opts) .. ")", 2)
  end
  return run(check("http.request", opts, opts.url))
end

--- http.get(url [, opts]) -> res | nil, err, code
function client.get(url, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'http.get' (options table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  return run(check("http.get", opts, url, true))
end

return client
