-- A message that a parked receiver cannot take for want of memory
-- (ulimit -v) stays queued: the receiver gets nil, "not enough memory",
-- "ENOMEM", and a later receive gets the message; it was dropped.
local helpers = require "helpers"

local THREAD = [[
local neap = require "neap"
local s = string.rep("x", ...)
neap.parent:send(s)
assert(neap.parent:receive() == "go")
s = nil
collectgarbage() collectgarbage()
neap.parent:send("after")
]]

local MAIN = [[
local neap = require "neap"
local t = neap.thread(arg[1], 100 * 1024 * 1024)
local _, v, err = pcall(t.receive, t, { timeout = 20 })   -- parked: s, the block and its copy do not fit
print("first", type(v), err)
t:send("go")
for _ = 1, 200 do   -- (until the thread has let its copy go)
  local ok, x = pcall(t.receive, t, { timeout = 20 })
  if ok and x then v = x break end
  neap.sleep(0.05)
end
print("second", type(v) == "string" and #v or tostring(v))
assert(t:join { timeout = 20 })
]]

describe("t:receive out of memory", function()
  it("keeps the message queued for the next receive", function()
    if helpers.NEAP:find("asan", 1, true) then return end   -- (ulimit -v and ASan do not mix)
    local th, main = helpers.tmpfile(THREAD), helpers.tmpfile(MAIN)
    finally(function() os.remove(th) os.remove(main) end)
    local out = helpers.sh("ulimit -v 330000; " .. helpers.NEAP .. " " .. main .. " " .. th .. " </dev/null")
    assert.truthy(out:find("first\tnil\tnot enough memory\n", 1, true), out)
    assert.truthy(out:find("second\t104857600\n", 1, true), out)
  end)
end)
