-- neap.http: a reverse proxy. Each request is sent on to the upstream
-- server with http.request, over the client's pool of keep-alive
-- connections, and the upstream's response streams back as it comes (the
-- request body too: neither is held whole in memory).
--   neap examples/http_proxy.lua 8080 http://127.0.0.1:3000   proxies until Ctrl-C
--   neap examples/http_proxy.lua    starts an upstream of its own, asks it
--                                   a few things through the proxy, and exits
local neap = require "neap"
local http = require "neap.http"

-- hop-by-hop headers (RFC 9110 7.6.1): for one connection, not forwarded
local HOP = {
  connection = true, ["keep-alive"] = true, ["proxy-connection"] = true, te = true,
  trailer = true, ["transfer-encoding"] = true, upgrade = true,
  ["proxy-authorization"] = true, ["proxy-authenticate"] = true,
}

local function forward(upstream)
  return function(req, res)
    local headers = { ["X-Forwarded-Host"] = req.headers.host, Via = "1.1 neap" }
    for name, value in pairs(req.headers) do
      if not HOP[name] and name ~= "host" then headers[name] = value end
    end
    local body   -- the request body, streamed up as it is read
    if req.headers["content-length"] or req.headers["transfer-encoding"] then
      body = function() return req:read() end
    end
    local up, err = http.request { url = upstream .. req.target, method = req.method,
                                   headers = headers, body = body, stream = true, timeout = 60 }
    if not up then return res:send(502, "bad gateway: " .. err .. "\n") end
    local out = {}
    for name, value in pairs(up.headers) do
      if not HOP[name] then out[name] = value end
    end
    res:start(up.status, out)   -- keeps the upstream's Content-Length, or goes chunked
    while true do
      local data = up:read()
      if not data or not res:write(data) then break end
    end
    up:close()   -- read to its end: the connection goes back to the pool
    res:finish()
  end
end

local port, upstream = tonumber(arg and arg[1]), arg and arg[2]
if port and upstream then
  local srv = assert(http.listen("127.0.0.1", port, forward(upstream)))
  print("proxying port " .. select(2, srv:address()) .. " to " .. upstream)
  return
end

-- Self-test: an upstream, the proxy in front of it, and a few requests.
local up = assert(http.listen("127.0.0.1", 0, function(req, res)
  if req.path == "/stream" then
    res:start(200, { ["Content-Type"] = "text/plain" })   -- chunked
    for i = 1, 3 do res:write("part ", i, "\n") end
    return res:finish()
  end
  local body = assert(req:body())
  res:send(200, req.method .. " " .. req.target .. " via " .. tostring(req.headers.via) ..
                (body ~= "" and " body=" .. body or "") .. "\n",
           { ["Content-Type"] = "text/plain", ["Set-Cookie"] = { "a=1", "b=2" } })
end))
local proxy = assert(http.listen("127.0.0.1", 0, forward("http://127.0.0.1:" .. select(2, up:address()))))
local base = "http://127.0.0.1:" .. select(2, proxy:address())

local res = assert(http.get(base .. "/hello?x=1"))
io.write(res.status, " ", res.body)                         --> 200 GET /hello?x=1 via 1.1 neap
print("cookies: " .. table.concat(res.headers["set-cookie"], " "))   --> cookies: a=1 b=2
res = assert(http.get(base .. "/stream"))
io.write(res.body)                                           --> part 1, part 2, part 3
res = assert(http.request { url = base .. "/form", method = "POST", body = "x=1&y=2" })
io.write(res.status, " ", res.body)                         --> 200 POST /form via 1.1 neap body=x=1&y=2
local i = 0
res = assert(http.request { url = base .. "/up", method = "PUT", body = function()
  i = i + 1
  return i <= 3 and ("chunk" .. i) or nil   -- a chunked body, forwarded as it comes
end })
io.write(res.status, " ", res.body)                         --> 200 PUT /up via 1.1 neap body=chunk1chunk2chunk3

proxy:close()
up:close()
-- the proxy's upstream connection and ours to the proxy, each kept for reuse
print("idle connections closed: " .. http.close_idle())     --> 2
