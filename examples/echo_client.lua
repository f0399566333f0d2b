-- A line echo client: neap examples/echo_client.lua port [line ...]
-- Sends each line to the echo server and prints what comes back.
local neap = require "neap"

local port = tonumber(arg and arg[1]) or 7000
local lines = { table.unpack(arg or {}, 2) }
if #lines == 0 then lines = { "hello", "world" } end

local conn, err = neap.connect("tcp", "127.0.0.1", port, { timeout = 5 })
if not conn then
  io.stderr:write("cannot connect: ", err, "\n")
  os.exit(1)
end
for _, line in ipairs(lines) do
  conn:write(line, "\n")
  print(assert(conn:read_line { timeout = 5 }))
end
conn:close()
