-- luv key-value server (lua5.4 + luv, callbacks): lua5.4 luv_kv.lua PORT
-- "SET key value" -> "OK", "GET key" -> the value (or "NIL"); one write per reply.
local uv = require "luv"
local store = {}
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", tonumber(arg[1])))
assert(server:listen(511, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  local buf = ""
  client:read_start(function(rerr, chunk)
    if rerr or not chunk then client:close() return end
    buf = buf .. chunk
    local pos = 1
    while true do
      local nl = buf:find("\n", pos, true)
      if not nl then break end
      local cmd, key, value = buf:sub(pos, nl - 1):match("^(%u+) (%S+) ?(.*)$")
      if cmd == "GET" then
        local v = store[key]
        client:write(v and v .. "\n" or "NIL\n")
      elseif cmd == "SET" then
        store[key] = value
        client:write("OK\n")
      else
        client:write("ERR\n")
      end
      pos = nl + 1
    end
    buf = buf:sub(pos)
  end)
end))
uv.run()
