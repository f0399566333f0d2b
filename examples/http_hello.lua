-- neap.http: a hello-world HTTP/1.1 server.
--   neap examples/http_hello.lua 8080   serves until Ctrl-C (try curl localhost:8080/you)
--   neap examples/http_hello.lua        serves on a free port, asks itself once, and exits
local neap = require "neap"
local http = require "neap.http"

local port = tonumber(arg and arg[1]) or 0
local srv = assert(http.listen("127.0.0.1", port, function(req, res)
  -- the handler runs in the connection's task: it may wait (here, a short sleep)
  neap.sleep(0.01)
  local name = req.path:match("^/(%w+)$") or "world"
  res:send(200, "hello, " .. name .. "\n", { ["Content-Type"] = "text/plain" })
end))
local _, bound = srv:address()
print("listening on " .. bound)

if port == 0 then
  -- one request with neap.http's client (pool = false: no connection is kept)
  local res = assert(http.get("http://127.0.0.1:" .. bound .. "/neap", { timeout = 5, pool = false }))
  print(res.status, res.reason)        --> 200	OK
  io.write(res.body)                   --> hello, neap
  srv:close()
end
