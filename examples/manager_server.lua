-- neap.manager, ioman's third example: a TCP server that reports each
-- client's lines until all clients leave. Two clients are started here so
-- the example runs by itself.
local neap = require "neap"
local manager = require "neap.manager"

local m = manager.new()
local server = assert(m:make_server_sock("tcp", "127.0.0.1", 0, 16))
local _, port = server.server:address()

for i = 1, 2 do
  neap.task(function()
    local c = assert(neap.connect("tcp", "127.0.0.1", port))
    for j = 1, 2 do c:write(("client %d says %d\n"):format(i, j)) neap.sleep(0.01) end
    c:close()
  end)
end

local clients, seen = {}, 0
repeat
  local ch, ev = m:next_event { timeout = 10 }
  if ev.type == "timeout" then error("no event") end
  if ev.type == "accept" then
    local rch = m:add_sock(ev.stream)
    rch:set_expected { "\n" }
    clients[rch] = true
    seen = seen + 1
  elseif clients[ch] then
    if ev.data ~= "" then io.write("line: ", ev.data) end
    if ev.status ~= "ok" then clients[ch] = nil ch:close() end
  end
until seen == 2 and next(clients) == nil
print("all clients left")
m:close()
