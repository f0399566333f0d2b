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
  -- no client in neap.http yet: one request by hand on a TCP stream
  local c = assert(neap.connect("tcp", "127.0.0.1", bound))
  c:write("GET /neap HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  local reply = c:read_all { timeout = 5 }
  c:close()
  print(reply:match("^[^\r]*"))        --> HTTP/1.1 200 OK
  print(reply:match("\r\n\r\n(.*)$"))  --> hello, neap
  srv:close()
end
