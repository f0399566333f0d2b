-- neap line echo server in the callback style: neap neap_echo_on.lua PORT
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", tonumber(arg[1])))
srv:on("connection", function(c) c:on("line", function(line) c:write(line .. "\n") end) end)
