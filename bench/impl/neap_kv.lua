-- neap key-value server, the docs idiom: neap neap_kv.lua PORT
-- "SET key value" -> "OK", "GET key" -> the value (or "NIL"); one write per reply.
local neap = require "neap"
local store = {}
local srv = assert(neap.listen("tcp", "127.0.0.1", tonumber(arg[1])))
srv:serve(function(c)
  for line in c:lines() do
    local cmd, key, value = line:match("^(%u+) (%S+) ?(.*)$")
    if cmd == "GET" then
      local v = store[key]
      c:write(v and v .. "\n" or "NIL\n")
    elseif cmd == "SET" then
      store[key] = value
      c:write("OK\n")
    else
      c:write("ERR\n")
    end
  end
end)
