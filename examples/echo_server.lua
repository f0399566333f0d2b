-- A line echo server: neap examples/echo_server.lua [port]
-- Prints "listening on PORT" and echoes every line back until the client leaves.
local neap = require "neap"

local port = tonumber(arg and arg[1]) or 7000
local server = assert(neap.listen("tcp", "127.0.0.1", port))
local _, bound = server:address()
print("listening on " .. bound)
io.stdout:flush()

server:serve(function(conn)
  for line in conn:lines() do
    conn:write(line, "\n")
  end
end)
