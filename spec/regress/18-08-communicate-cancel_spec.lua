-- Issue 18.8: a task cancelled inside p:communicate left its drain tasks
-- running: a later read raised "another task is already reading this
-- stream", and after p:wait the output was gone. The drains end with their
-- owner, and the unread output stays readable in the streams.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("process (18.8)", function()
  helpers.leakcheck()
  describe("p:communicate in a cancelled task", function()
    it("leaves the output readable, none of it lost", function()
      helpers.run(function()
        local p = assert(neap.spawn { "sh", "-c", "echo out1; echo err1 >&2; sleep 0.3; echo out2; echo err2 >&2" })
        local t = neap.task(function() return p:communicate() end)
        neap.sleep(0.15)
        t:cancel()
        assert.same({ nil, "cancelled", "cancelled" }, { t:join() })
        assert.equal(0, p:wait { timeout = 5 })
        assert.equal("out1\nout2\n", p.stdout:read_all { timeout = 5 })
        assert.equal("err1\nerr2\n", p.stderr:read_all { timeout = 5 })
        p:close()
      end)
    end)

    it("a pipeline's communicate too", function()
      helpers.run(function()
        local pl = assert(neap.pipeline({ "sh", "-c", "echo a; sleep 0.3; echo b" }, { "cat" }))
        local t = neap.task(function() return pl:communicate("") end)
        neap.sleep(0.15)
        t:cancel()
        t:join()
        assert.is_table(pl:wait { timeout = 5 })
        assert.equal("a\nb\n", pl:read_all { timeout = 5 })
        for _, p in ipairs(pl.stages) do p:close() end
      end)
    end)
  end)
end)
