-- neap TLS line echo server, the docs idiom: neap neap_tls_echo.lua PORT CERT KEY
local neap = require "neap"
local srv = assert(neap.listen("tls", "127.0.0.1", tonumber(arg[1]), { cert = arg[2], key = arg[3] }))
srv:serve(function(c) for line in c:lines() do c:write(line .. "\n") end end)
