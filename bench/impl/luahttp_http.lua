-- lua-http (daurnimator's, on cqueues) server, its documented idiom:
--   lua5.3 luahttp_http.lua PORT FILE [CERT KEY]   (Debian's lua-http has no Lua 5.4 build)
--   /      hello world (text/plain)
--   /json  a 4 KiB JSON-ish body (made once)
--   /file  FILE (1 MiB) read from disk in 256 KiB pieces on every request
local http_server = require "http.server"
local http_headers = require "http.headers"

local port, file, cert, key = tonumber(arg[1]), arg[2], arg[3], arg[4]
local items = {}
for i = 1, 40 do
  items[i] = string.format('{"id":%d,"name":"item %03d","tags":["neap","http","bench"],"price":%d.99,"stock":%d}',
                           i, i, i * 3, i * 7)
end
local JSON = '{"items":[' .. table.concat(items, ",") .. ']}'
JSON = JSON .. string.rep(" ", 4096 - #JSON)
local f0 = assert(io.open(file, "rb"))
local size = f0:seek("end")
f0:close()

local function reply(_, stream)
  local req = assert(stream:get_headers())
  local path = (req:get(":path") or "/"):match("^[^?]*")
  local h = http_headers.new()
  h:append(":status", "200")
  if path == "/" then
    h:append("content-type", "text/plain")
    h:append("content-length", "13")
    assert(stream:write_headers(h, false))
    assert(stream:write_chunk("Hello, World!", true))
  elseif path == "/json" then
    h:append("content-type", "application/json")
    h:append("content-length", "4096")
    assert(stream:write_headers(h, false))
    assert(stream:write_chunk(JSON, true))
  elseif path == "/file" then
    h:append("content-type", "application/octet-stream")
    h:append("content-length", tostring(size))
    assert(stream:write_headers(h, false))
    local f = assert(io.open(file, "rb"))
    while true do
      local d = f:read(262144)
      if not d then break end
      assert(stream:write_chunk(d, false))
    end
    f:close()
    assert(stream:write_chunk("", true))
  else
    h:upsert(":status", "404")
    assert(stream:write_headers(h, true))
  end
end

local ctx
if cert then
  local context = require "openssl.ssl.context"
  local function slurp(p) local fh = assert(io.open(p)) local s = fh:read("a") fh:close() return s end
  ctx = context.new("TLS", true)
  ctx:setCertificate(require("openssl.x509").new(slurp(cert)))
  ctx:setPrivateKey(require("openssl.pkey").new(slurp(key)))
end
local srv = assert(http_server.listen {
  host = "127.0.0.1", port = port, onstream = reply,
  tls = cert and true or false, ctx = ctx, version = 1.1,
  onerror = function() end,
})
assert(srv:listen())
assert(srv:loop())
