-- neap.http server, the docs idiom: neap neap_http.lua PORT FILE [CERT KEY]
--   /      hello world (text/plain)
--   /json  a 4 KiB JSON-ish body (made once; the bench measures HTTP, not JSON)
--   /file  FILE (1 MiB) streamed from disk with neap.open on every request
local neap = require "neap"
local http = require "neap.http"

local port, file, cert, key = tonumber(arg[1]), arg[2], arg[3], arg[4]
local items = {}
for i = 1, 40 do
  items[i] = string.format('{"id":%d,"name":"item %03d","tags":["neap","http","bench"],"price":%d.99,"stock":%d}',
                           i, i, i * 3, i * 7)
end
local JSON = '{"items":[' .. table.concat(items, ",") .. ']}'
JSON = JSON .. string.rep(" ", 4096 - #JSON)
local size = neap.stat(file).size

local TEXT = { ["Content-Type"] = "text/plain" }
local JSONH = { ["Content-Type"] = "application/json" }
local FILEH = { ["Content-Type"] = "application/octet-stream", ["Content-Length"] = size }

local srv = assert(http.listen("127.0.0.1", port, function(req, res)
  local path = req.path
  if path == "/" then
    res:send(200, "Hello, World!", TEXT)
  elseif path == "/json" then
    res:send(200, JSON, JSONH)
  elseif path == "/file" then
    local f = assert(neap.open(file))
    res:start(200, FILEH)
    while true do
      local d = f:read(262144)
      if not d then break end
      res:write(d)
    end
    f:close()
    res:finish()
  else
    res:send(404, "not found\n")
  end
end, { tls = cert and { cert = cert, key = key } or nil, backlog = 511 }))
neap.signal("TERM", function() os.exit(0) end)
