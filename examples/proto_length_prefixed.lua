-- neap.proto: length-prefixed messages (a 4-byte big-endian length, then
-- the payload). Each message is answered with its payload reversed.
local neap = require "neap"
local proto = require "neap.proto"

local reverser = proto.define(function(io)
  while true do
    local head = io:read_exactly(4)
    if not head then return end
    local n = string.unpack(">I4", head)
    local payload = io:read_exactly(n)
    if not payload then return end
    io:write(string.pack(">I4", n), payload:reverse())
  end
end)

local function frame(s) return string.pack(">I4", #s) .. s end

-- By hand, fed in awkward pieces.
local conn = reverser()
local wire = frame("hello") .. frame("") .. frame(string.rep("ab", 1000))
for i = 1, #wire, 3 do conn:send(wire:sub(i, i + 2)) end
local out = conn:read()
local n1 = string.unpack(">I4", out)
assert(out:sub(5, 4 + n1) == "olleh", "first message")
print("by hand: " .. #out .. " bytes out for " .. #wire .. " in")

-- Over TCP.
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(reverser)
local c = assert(neap.connect("tcp", "127.0.0.1", port))
c:write(frame("neap"))
local n = string.unpack(">I4", c:read_exactly(4, { timeout = 5 }))
local reply = c:read_exactly(n, { timeout = 5 })
assert(reply == "paen", reply)
print("over tcp: " .. reply)
c:close()
srv:close()
