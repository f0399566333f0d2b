-- Issue 19.2: the death watcher of a manager's child sat in p:wait(), which
-- drains the child's pipes with no bound: `yes` under a slow consumer
-- filled memory (1 GB in 2 s). The channels' backpressure must hold for
-- children's pipes as for sockets: reading pauses while the consumer lags.
local neap = require "neap"
local manager = require "neap.manager"
local helpers = require "helpers"

describe("neap.manager (19.2)", function()
  helpers.leakcheck()
  describe("a child that floods its stdout", function()
    it("is read only as fast as the consumer pulls events", function()
      helpers.run(function()
        local m = manager.new()
        local proc = assert(m:make_child_proc { "yes" })
        local t0 = neap.now()
        local events = 0
        while neap.now() - t0 < 1 do
          local _, ev = m:next_event { timeout = 1 }
          if ev.type == "read" then events = events + 1 end
          neap.sleep(0.01)
        end
        assert.is_true(events > 0)
        local held = proc.process.stdout:buffered()
        assert.is_true(held < 4 * 1024 * 1024, "the stream holds " .. held .. " bytes")
        proc.process:kill("KILL")
        m:close()
        proc.process:wait()
        proc.process:close()
      end)
    end)
  end)
end)
