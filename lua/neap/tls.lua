-- TLS streams: neap.connect("tls", ...), neap.listen("tls", ...) and
-- s:starttls(opts) over the engine in src/tls.c and src/tlsstream.c. A TLS
-- stream is a stream like any other: every read, framing, limit, callback
-- and front works on its plaintext. Contexts (certificates, CA, ALPN, ...)
-- are built once per set of options and shared by the connections.
local core = require "neap.core"
local util = require "neap.util"

local argerr = util.argerr

-- The options a context is made of (the rest are per connection).
local CTX_KEYS = { "cert", "key", "ca", "verify", "verify_peer", "alpn", "min_version", "sni" }

-- contexts by a key made of their options, so that connections share one
local contexts = setmetatable({}, { __mode = "v" })

local function ctx_key(opts, server)
  local parts = { server and "S" or "C" }
  for _, k in ipairs(CTX_KEYS) do
    local v = opts[k]
    if type(v) == "table" then
      local t = {}
      if k == "sni" then
        for name, e in pairs(v) do
          t[#t + 1] = tostring(name) .. "=" .. tostring(type(e) == "table" and e.cert) ..
            "," .. tostring(type(e) == "table" and e.key)
        end
        table.sort(t)
      else
        for i, x in ipairs(v) do t[i] = tostring(x) end
      end
      v = table.concat(t, "\1")
    end
    parts[#parts + 1] = k .. "\2" .. tostring(v)
  end
  return table.concat(parts, "\3")
end

--- context(opts, server, fname) -> the shared context for these options
-- (raises on bad ones: a missing file names its path and OpenSSL's reason).
local function context(opts, server, fname, level)
  local key = ctx_key(opts, server)
  local ctx = contexts[key]
  if not ctx then
    local o = {}
    for _, k in ipairs(CTX_KEYS) do o[k] = opts[k] end
    o.server = server
    local ok, c = pcall(core.tls_context, o, fname)
    if not ok then error(c, level or 4) end   -- (at the user's line)
    ctx = c
    contexts[key] = ctx
  end
  return ctx
end

--- handshake(s, ...) -> s | nil, err, code: s:_starttls on a stream this
-- module made; closed when it fails, and also when the waiting task is
-- cancelled (or the wait raises): nobody else holds the stream then.
local function handshake(s, ...)
  local pok, ok, err, code = pcall(s._starttls, s, ...)
  if not pok then
    s:close()
    error(ok, 0)
  end
  if not ok then
    s:close()
    return nil, err, code
  end
  return s
end

--- client(s, host, opts, timeout) -> s | nil, err, code: the client
-- handshake on a connected stream (closed when it fails).
local function client(s, host, opts, timeout, fname)
  local ctx = context(opts, false, fname)
  -- the name sent (SNI) and checked; an IP address is checked as one, not sent
  local name = opts.servername or host
  return handshake(s, ctx, name, opts.session, timeout)
end

--- server_info(opts) -> what a TLS server keeps to hand out connections
local function server_info(opts, fname)
  if type(opts) ~= "table" or opts.cert == nil then
    argerr(fname, 4, "a TLS server needs opts.cert (and opts.key) PEM files", 4)
  end
  local hs = opts.handshake_timeout
  if hs ~= nil and (type(hs) ~= "number" or not (hs >= 0)) then
    argerr(fname, 4, "handshake_timeout must be a number >= 0", 4)
  end
  return { ctx = context(opts, true, fname), timeout = hs or 10 }
end

--- accepted(c, info) -> c | nil, err, code: the server handshake of an
-- accepted connection (closed when it fails or times out).
local function accepted(c, info)
  return handshake(c, info.ctx, nil, nil, info.timeout)
end

--- s:starttls(opts) -> s | nil, err, code: upgrades a connected stream in
-- place (client side; opts.server = true with cert and key for a server).
local function starttls(s, opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerr("starttls", 1, "options table expected, got " .. type(opts), 3)
  end
  opts = opts or {}
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or not (t >= 0)) then
    argerr("starttls", 1, "timeout must be a number >= 0", 3)
  end
  local ok, err, code
  if opts.server then
    local ctx = context(opts, true, "starttls")
    ok, err, code = s:_starttls(ctx, nil, nil, t or opts.handshake_timeout or 10)
  else
    local ctx = context(opts, false, "starttls")
    ok, err, code = s:_starttls(ctx, opts.servername, opts.session, t)
  end
  if not ok then return nil, err, code end
  return s
end

return { context = context, client = client, server_info = server_info, accepted = accepted, starttls = starttls }
