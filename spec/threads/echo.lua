-- Receives n messages and checks their order; meanwhile sends its own n
-- numbered messages; then replies with what it saw.
local neap = require "neap"
local n = ...
local sender = neap.task(function()
  for i = 1, n do neap.parent:send({ i = i, s = "m" .. i }) end
end)
local expected, bad = 1, nil
for _ = 1, n do
  local m = neap.parent:receive { timeout = 30 }
  if type(m) ~= "table" or m.i ~= expected or m.s ~= "p" .. expected then bad = bad or expected end
  expected = expected + 1
end
assert(sender:join { timeout = 30 })
neap.parent:send({ got = expected - 1, bad = bad or false })
return "ok"
