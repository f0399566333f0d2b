-- Issue 18.10: neap.queue kept cancelled getters (and putters) forever, and
-- took them off the front of a Lua array one by one (O(n^2)): 40,000
-- cancelled gets grew memory to 85 MB and the next put blocked for seconds.
local neap = require "neap"
local helpers = require "spec.helpers"

local ROUNDS = 20000

local function kb() collectgarbage(); collectgarbage(); return collectgarbage("count") end

describe("neap.queue (18.10)", function()
  helpers.leakcheck()

  it("forgets getters cancelled by neap.first #load", function()
    helpers.run(function()
      local q = neap.queue()
      local before = kb()
      for _ = 1, ROUNDS do
        neap.first(function() return q:get() end, function() neap.sleep(0) end)
      end
      local grown = kb() - before
      assert(grown < 2048, string.format("memory grew by %.0f KB", grown))
      local got
      local t = neap.task(function() got = q:get() end)
      neap.sleep(0)
      local t0 = neap.now()
      assert.is_true(q:put("x"))
      assert(neap.now() - t0 < 0.5, "put took " .. (neap.now() - t0) .. " s")
      assert.is_true(t:join { timeout = 5 })
      assert.equal("x", got)
    end, 60)
  end)

  it("forgets putters cancelled by neap.first and timed-out waiters #load", function()
    helpers.run(function()
      local q = neap.queue(1)
      assert.is_true(q:put(0))
      local before = kb()
      for i = 1, ROUNDS do
        neap.first(function() return q:put(i) end, function() neap.sleep(0) end)
      end
      for i = 1, 200 do assert.same({ nil, "timeout", "timeout" }, { q:put(i, { timeout = 0 }) }) end
      local grown = kb() - before
      assert(grown < 2048, string.format("memory grew by %.0f KB", grown))
      assert.equal(0, q:get())
      assert.same({ nil, "timeout", "timeout" }, { q:get { timeout = 0.01 } })
    end, 60)
  end)

  it("hands over in order with many parked putters, some cancelled, in linear time #load", function()
    helpers.run(function()
      local q, n, tasks = neap.queue(1), 50000, {}
      for i = 1, n do tasks[i] = neap.task(function() q:put(i) end) end
      neap.sleep(0)
      for i = 3, n, 3 do tasks[i]:cancel() end   -- they leave from the middle
      neap.sleep(0)
      local t0 = neap.now()
      for i = 1, n do
        if i % 3 ~= 0 then assert.equal(i, q:get()) end
      end
      assert.same({ nil, "timeout", "timeout" }, { q:get { timeout = 0 } })
      assert(neap.now() - t0 < 5, "took " .. (neap.now() - t0) .. " s")
    end, 60)
  end)
end)
