-- neap.proto: a line echo protocol with no I/O in it, driven first by hand
-- (byte by byte and in one piece) and then over a real TCP connection.
local neap = require "neap"
local proto = require "neap.proto"

local echo = proto.define(function(io)
  while true do
    local line = io:read_line()
    if not line then return end
    if line == "quit" then io:write("bye\n") io:close() return end
    io:write(line, "\n")
  end
end)

-- By hand: the same output whatever the input's splits.
local input = "one\r\ntwo\nquit\n"
local whole = echo():send(input):read()
local bytewise = echo()
local out = {}
for ch in input:gmatch(".") do
  bytewise:send(ch)
  out[#out + 1] = bytewise:read()
end
assert(whole == table.concat(out) and whole == "one\ntwo\nbye\n", whole)
print("by hand: " .. whole:gsub("\n", " | "))

-- Over TCP: server:serve(protocol).
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(echo)
local c = assert(neap.connect("tcp", "127.0.0.1", port))
c:write("over tcp\nquit\n")
print("over tcp: " .. c:read_line { timeout = 5 } .. ", " .. c:read_line { timeout = 5 })
c:close()
srv:close()
