-- neap line echo server, the docs idiom: neap neap_echo.lua PORT
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", tonumber(arg[1])))
srv:serve(function(c) for line in c:lines() do c:write(line .. "\n") end end)
