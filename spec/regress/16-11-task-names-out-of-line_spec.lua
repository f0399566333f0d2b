-- Issue 16.6 (idle connections): every task held a 48-byte name inline
-- (most have none), in a 160-byte struct. The name is now its box's second
-- user value, and the struct is 96 bytes: a parked task costs at most
-- 200 bytes of Lua heap more than a bare coroutine parked at the same depth
-- (244 before, 180 now). Names behave as before: kept to 47 bytes, cut at
-- a NUL, "" is no name, kept after the task ends (with or without
-- results, failed), settable at any time, in failure reports and tostring.
local helpers = require "spec.helpers"

local names = helpers.tmpfile([[
local neap = require "neap"
local t = neap.task("worker", function() neap.sleep(0.01) return 1, 2 end)
print("1", t:name(), tostring(t):match("^neap.task %(worker 0x") ~= nil)
local t2 = neap.task(function() end)
print("2", t2:name(), tostring(t2):match("^neap.task %(0x") ~= nil)
t2:set_name(string.rep("a", 60)) print("3", #t2:name())
t2:set_name("a\0b") print("4", t2:name(), #t2:name())
t2:set_name("") print("5", t2:name())
print("6", t:join()) print("7", t:name())
t2:set_name("after") print("8", t2:join()) print("9", t2:name())
local t3 = neap.task("failing one", function() error("x") end)
print("10", t3:join()) print("11", t3:name())
t3:set_name("renamed") print("12", t3:name(), t3:join())
local t4 = neap.task(function() neap.current():set_name("me") error("y") end)
t4:join()
local t5 = neap.task(string.rep("b", 50), function() error("z") end)
t5:join()
-- a serve task with a name: its connection is still closed at its end
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
local named
srv:serve(function(c)
  named = neap.current()
  named:set_name("conn")
  c:write("hi\n")
end)
local c = assert(neap.connect("tcp", "127.0.0.1", port))
print("13", c:read_line { timeout = 5 }, c:read_line { timeout = 5 })
print("14", named:name(), named:join())
c:close() srv:close()
print("end")
]])

local heap = helpers.tmpfile([[
local neap = require "neap"
local N = 2000
local function heap() collectgarbage() collectgarbage() return collectgarbage("count") * 1024 end
local f = function() neap.sleep(3600) end
local g = function() coroutine.yield() end
local ts = {}
for i = 1, N do ts[i] = false end
for i = 1, 300 do neap.task(f):cancel() end
neap.sleep(0)
local h0 = heap()
for i = 1, N do ts[i] = neap.task(f) end
neap.sleep(0)
local h1 = heap()
for i = 1, N do ts[i]:cancel() ts[i] = false end
neap.sleep(0)
local h2 = heap()
for i = 1, N do ts[i] = coroutine.create(g) coroutine.resume(ts[i]) end
local h3 = heap()
print(("more than a coroutine: %d"):format(math.floor((h1 - h0 - (h3 - h2)) / N + 0.5)))
]])

describe("regress 16.8: task names out of the task's struct", function()
  it("names behave as before", function()
    local out, rc = helpers.neap(names)
    assert.equal(0, rc, out)
    for _, want in ipairs {
      "1\tworker\ttrue\n", "2\tnil\ttrue\n", "3\t47\n", "4\ta\t1\n", "5\tnil\n",
      "6\ttrue\t1\t2\n", "7\tworker\n", "8\ttrue\n", "9\tafter\n",
      "11\tfailing one\n", "12\trenamed\tnil\t", "13\thi\tnil\teof\teof\n", "14\tconn\ttrue\n",
      "neap: task 'failing one' failed: ", "neap: task 'me' failed: ",
      "neap: task '" .. string.rep("b", 47) .. "' failed: ", "\nend\n" } do
      assert.truthy(out:find(want, 1, true), want .. " in:\n" .. out)
    end
  end)

  it("a parked task costs at most 200 bytes of Lua heap more than a parked coroutine", function()
    local out, rc = helpers.neap(heap)
    assert.equal(0, rc, out)
    local n = tonumber(out:match("more than a coroutine: (%-?%d+)"))
    assert(n and n <= 200, out)
  end)
end)
