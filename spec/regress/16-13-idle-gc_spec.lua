-- Issue 16, part 6: once no task has run for 250-500 ms after some did, the
-- host collects in full and gives the heap's free pages back (the garbage
-- of a burst does not stay while a server waits); not while tasks run, not
-- when a script owns the collector, not with a large heap.
local helpers = require "helpers"

local function script(body)
  local path = helpers.tmpfile("local neap = require 'neap'\nlocal core = require 'neap.core'\n" .. body)
  local out, rc = helpers.sh(helpers.NEAP .. " " .. path)
  os.remove(path)
  return out, rc
end

describe("16-13 idle collection", function()
  it("the garbage of a burst is collected once the host is idle", function()
    local out, rc = script([[
local t = {}
for i = 1, 100000 do t[i] = ("x"):rep(40) .. i end
t = nil
local before = collectgarbage("count")
neap.sleep(0.8)
local after = collectgarbage("count")
print(before > 8000, after < 2000, select(4, core._gc_mode()))
]])
    assert.equal(0, rc, out)
    assert.equal("true\ttrue\t1\n", out)
  end)

  it("no idle collection while a task runs every 10 ms", function()
    local out, rc = script([[
local t = {}
for i = 1, 100000 do t[i] = ("x"):rep(40) .. i end
t = nil
local deadline = neap.now() + 1.2
while neap.now() < deadline do neap.sleep(0.01) end
print(select(4, core._gc_mode()))
]])
    assert.equal(0, rc, out)
    assert.equal("0\n", out)
  end)

  it("no idle collection when the script owns the collector", function()
    local out, rc = script([[
collectgarbage("generational")
local t = {}
for i = 1, 100000 do t[i] = ("x"):rep(40) .. i end
t = nil
neap.sleep(0.8)
print(select(4, core._gc_mode()))
]])
    assert.equal(0, rc, out)
    assert.equal("0\n", out)
  end)

  it("a finalizer that runs in the idle collection may use neap", function()
    local out, rc = script([[
local ran
do
  local o = setmetatable({}, { __gc = function()
    neap.task(function() ran = "finalized" end)
  end })
  o = nil
end
neap.sleep(0.8)
neap.sleep(0.05)
print(ran, select(4, core._gc_mode()) >= 1)
]])
    assert.equal(0, rc, out)
    assert.equal("finalized\ttrue\n", out)
  end)
end)
