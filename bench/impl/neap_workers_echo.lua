-- neap line echo server for neap --workers N: the docs idiom with reuseport,
-- so that every worker listens on the port: neap --workers N neap_workers_echo.lua PORT
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", tonumber(arg[1]), { reuseport = true }))
srv:serve(function(c) for line in c:lines() do c:write(line .. "\n") end end)
