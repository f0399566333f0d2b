-- A short tour of neap: a TCP server and a client talking in lines, a
-- timer, and a task cancelled by a timeout. Exits by itself.
local neap = require "neap"

-- A server that answers each line in upper case, one task per connection.
local server = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = server:address()
server:serve(function(conn)
  for line in conn:lines() do
    conn:write(line:upper(), "\n")
  end
end)
print("server on port " .. port)

-- A timer that ticks every 50 ms while the rest runs.
local ticks = 0
local ticker = neap.timer(0.05, function() ticks = ticks + 1 end, { every = 0.05 })

-- A client: each read_line waits for its answer without blocking the loop.
local conn = assert(neap.connect("tcp", "127.0.0.1", port))
for _, word in ipairs { "hello", "from", "neap" } do
  conn:write(word, "\n")
  print("client got: " .. conn:read_line { timeout = 1 })
end
conn:close()

-- A task that would sleep for a minute, cancelled when its join times out.
local slow = neap.task(function() neap.sleep(60) end)
local ok, err = slow:join { timeout = 0.2 }
print("join: " .. tostring(ok) .. ", " .. err)
slow:cancel()
print("slow task: " .. slow:status())

ticker:stop()
print("ticks while we worked: " .. (ticks > 0 and "some" or "none"))
server:close()
