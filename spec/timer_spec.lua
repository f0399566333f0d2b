local neap = require "neap"
local helpers = require "helpers"
local run = helpers.run

describe("neap.timer", function()
  helpers.leakcheck()

  it("calls fn once after the delay, in a task of its own, with the timer", function()
    run(function()
      local got, in_task
      local tm = neap.timer(0.02, function(t) got = t; in_task = neap.current() ~= nil; neap.sleep(0) end)
      neap.sleep(0.06)
      assert.equal(tm, got)
      assert.is_true(in_task)
      assert.is_false(tm:active())
    end)
  end)

  it("repeats with every= until stopped", function()
    run(function()
      local n = 0
      local tm = neap.timer(0.01, function() n = n + 1 end, { every = 0.01 })
      neap.sleep(0.105)
      tm:stop()
      neap.sleep(0)   -- a callback that fired just before stop() still runs
      local at_stop = n
      assert.is_true(n >= 5 and n <= 11, "fired " .. n .. " times")
      neap.sleep(0.03)
      assert.equal(at_stop, n)
    end)
  end)

  it("stop() before it fires cancels it", function()
    run(function()
      local fired = false
      local tm = neap.timer(0.02, function() fired = true end)
      tm:stop()
      neap.sleep(0.04)
      assert.is_false(fired)
    end)
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() neap.timer(-1, function() end) end)
    assert.has_error(function() neap.timer(1, "nope") end)
    assert.has_error(function() neap.timer(1, function() end, { every = 0 }) end)
  end)

  it("a script blocked reading still answers a timer every 10 ms", function()
    run(function()
      local a, b = helpers.pair()
      local ticks = 0
      local tm = neap.timer(0.01, function() ticks = ticks + 1 end, { every = 0.01 })
      local t = neap.task(function() return a:read_line { timeout = 2 } end)
      neap.sleep(0.1)
      b:write("done\n")
      assert.same({ true, "done" }, { t:join() })
      tm:stop()
      assert.is_true(ticks >= 5, "ticks " .. ticks)
      a:close() b:close()
    end)
  end)
end)
