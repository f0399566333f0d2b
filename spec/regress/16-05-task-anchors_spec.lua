-- Issue 16.5: the loop keeps unfinished tasks in slots (C-closure pages of
-- 255) and finds the running task from its thread's extra space, no longer
-- from a table keyed by thread. Tasks over several pages, slots reused
-- after tasks finish, and coroutines made inside tasks (which copy the main
-- thread's extra space) must all still be told apart.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("tasks in anchor slots (16.5)", function()
  it("finds each task from its thread over several pages, and after slots are reused", function()
    helpers.run(function()
      for round = 1, 3 do
        local tasks, seen, n = {}, {}, 600   -- more than two pages of 255
        for i = 1, n do
          tasks[i] = neap.task(function()
            neap.sleep(0)
            seen[i] = neap.current()
            return i
          end)
        end
        for i = 1, n do
          assert.same({ true, i }, { tasks[i]:join() })
          assert.equal(tasks[i], seen[i])
        end
        collectgarbage()   -- finished tasks are not kept by the loop
      end
    end, 20)
  end)

  it("never takes a coroutine made inside a task for a task", function()
    helpers.run(function()
      local me = neap.current()
      assert.is_not_nil(me)
      local inner = coroutine.wrap(function()
        coroutine.yield(neap.current())
        local ok, err = pcall(neap.sleep, 0)
        coroutine.yield(ok, err)
      end)
      assert.is_nil(inner())
      local ok, err = inner()
      assert.is_false(ok)
      assert.truthy(tostring(err):find("a wait must run inside a task", 1, true))
      -- a task that finished: its thread no longer names a task
      local t = neap.task(function() return coroutine.running() end)
      local _, th = t:join()
      assert.equal("thread", type(th))
      assert.equal(me, neap.current())
    end)
  end)

  it("still finds the task after many tasks came and went meanwhile", function()
    helpers.run(function()
      local long = neap.task(function()
        neap.sleep(0.05)
        return neap.current()
      end)
      for _ = 1, 300 do neap.task(function() end) end
      neap.sleep(0)
      local ok, cur = long:join()
      assert.is_true(ok)
      assert.equal(long, cur)
    end)
  end)
end)
