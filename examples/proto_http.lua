-- neap.proto: an HTTP/1.1 request parser (request line, headers,
-- Content-Length body, keep-alive) written with no I/O, tested by hand
-- and then serving over TCP.
-- This is a teaching example of the sans-IO style, not an HTTP server to
-- use: it has no chunked bodies, limits or timeouts. For HTTP, use
-- neap.http (docs/http.md; examples/http_hello.lua, examples/http_files.lua).
local neap = require "neap"
local proto = require "neap.proto"

local M = {}

--- Reads one request from io: method, target, version, headers, body | nil at EOF
function M.read_request(io)
  local line = io:read_line()
  if not line or line == "" then return nil end
  local method, target, version = line:match("^(%u+) (%S+) (HTTP/%d%.%d)$")
  if not method then return nil, "bad request line" end
  local headers = {}
  while true do
    local h = io:read_line()
    if not h then return nil, "eof in headers" end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if not k then return nil, "bad header" end
    headers[k:lower()] = v
  end
  local body = ""
  local len = tonumber(headers["content-length"] or "0")
  if len and len > 0 then
    body = io:read_exactly(len)
    if not body then return nil, "eof in body" end
  end
  return { method = method, target = target, version = version, headers = headers, body = body }
end

--- The server protocol: answers each request; keeps the connection for
-- HTTP/1.1 unless "Connection: close".
M.server = proto.define(function(io)
  while true do
    local req, err = M.read_request(io)
    if not req then
      if err then io:write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") end
      io:close()
      return
    end
    local body = ("%s %s (%d bytes)\n"):format(req.method, req.target, #req.body)
    local close = req.version == "HTTP/1.0" or (req.headers.connection or ""):lower() == "close"
    io:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", #body, "\r\n",
             close and "Connection: close\r\n" or "", "\r\n", body)
    if close then io:close() return end
  end
end)

-- required as a module (the fuzz target does): just the parser
if ... == "proto_http" then return M end

local requests = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" ..
                 "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" ..
                 "GET /c HTTP/1.1\r\nConnection: close\r\n\r\n"

-- By hand: byte by byte and in one piece give the same answers.
local one = M.server():send(requests)
local bytes = M.server()
for ch in requests:gmatch(".") do bytes:send(ch) end
local a, b = one:read(), bytes:read()
assert(a == b, "split input changed the output")
assert(select(2, a:gsub("HTTP/1.1 200 OK", "")) == 3)
assert(a:find("POST /b (5 bytes)", 1, true) and one:closed())
print("by hand: 3 responses, connection closed: " .. tostring(one:closed()))

-- Over TCP, keep-alive: three requests on one connection.
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(M.server)
local c = assert(neap.connect("tcp", "127.0.0.1", port))
c:write(requests)
local got = c:read_all { timeout = 5 }
assert(got == a, "TCP and by-hand answers differ")
print("over tcp: " .. #got .. " bytes, same as by hand")
c:close()
srv:close()

return M
