-- neap WebSocket echo server, the docs idiom: neap neap_ws_echo.lua PORT
local http = require "neap.http"
assert(http.listen("127.0.0.1", tonumber(arg[1]), function(req)
  local ws = req:websocket()
  if not ws then return end
  while true do
    local data, kind = ws:receive()
    if not data then break end
    ws:send(data, kind)
  end
end, { backlog = 511 }))
