-- Issue 18.7: two tasks wait for one child; when one wait ends (timeout),
-- the other must go on draining the pipes, or the child blocks on a full
-- pipe and the second wait deadlocks.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("process (18.7)", function()
  helpers.leakcheck()
  describe("p:wait with two waiters", function()
    it("the other waiter still drains after one wait times out", function()
      helpers.run(function()
        local p = assert(neap.spawn { "sh", "-c", "sleep 0.3; head -c 2000000 /dev/zero; echo done >&2" })
        local b = neap.task(function() return p:wait() end)
        local a = neap.task(function() return p:wait { timeout = 0.1 } end)
        assert.same({ true, nil, "timeout", "timeout" }, { a:join() })
        local ok, code = b:join { timeout = 10 }
        assert.is_true(ok)
        assert.equal(0, code)
        assert.equal(2000000, #p.stdout:read_all { timeout = 5 })
        assert.equal("done\n", p.stderr:read_all { timeout = 5 })
        p:close()
      end)
    end)
  end)
end)
