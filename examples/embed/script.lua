-- The script hosted by examples/embed/embed.c: serves TCP on the C
-- program's loop, answers a client of its own, and takes posts from a
-- C thread until "quit".
local neap = require "neap"

local server = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = server:address()
server:serve(function(conn)
  for line in conn:lines() do conn:write("echo: ", line, "\n") end
end)

neap.on_post("note", function(data) print("lua: post " .. data) end)
neap.on_post("quit", function()
  print("lua: quit after " .. embed.ticks() .. " C ticks")
  neap.on_post("note", nil)
  neap.on_post("quit", nil)
  server:close()
end)

local c = assert(neap.connect("tcp", "127.0.0.1", port))
c:write("hello\n")
print("lua: " .. c:read_line { timeout = 2 })
c:close()
