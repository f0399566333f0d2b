-- neap.manager, ioman's fourth example: a client that sends a line and
-- prints the reply. It starts its own small server first, so it runs alone.
local neap = require "neap"
local manager = require "neap.manager"

local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(function(c) local l = c:read_line() if l then c:write("reply to ", l, "\n") end end)

local m = manager.new()
local rch, wch = assert(m:make_client_sock("tcp", "127.0.0.1", port))
rch:set_expected { "\n" }
wch:write_stream("hello server\n")

while true do
  local ch, ev = m:next_event { timeout = 5 }
  if ev.type == "timeout" then error("no reply") end
  if ch == rch then
    io.write("got: ", ev.data)
    break
  end
end
m:close()
srv:close()
