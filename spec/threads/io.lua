-- The whole API on the thread's own loop: a timer, a TCP server and a
-- client of it, and a child process.
local neap = require "neap"
local out = {}
local ticks = 0
local tm = neap.timer(0.01, function() ticks = ticks + 1 end, { every = 0.01 })
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(function(c) for l in c:lines() do c:write(l:upper(), "\n") end end)
local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
c:write("hello from a thread\n")
out.echo = c:read_line { timeout = 5 }
c:close()
local p = assert(neap.spawn { "sh", "-c", "echo spawned; exit 3", stdout = "pipe" })
out.child = p.stdout:read_line { timeout = 5 }
out.code = p:wait { timeout = 5 }
neap.sleep(0.05)
tm:stop()
srv:close()
out.ticks = ticks
out.port = port
return out
