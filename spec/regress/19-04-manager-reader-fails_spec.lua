-- Issue 19.4: set_expected took 17 delimiters, and the channel's reader
-- then failed with "read_until (1 to 16 delimiters expected)" on stderr
-- while the consumer never saw data or an end. set_expected checks the
-- count, and a reader that fails anyway is reported as an error event.
local neap = require "neap"
local manager = require "neap.manager"
local helpers = require "helpers"

describe("neap.manager (19.4)", function()
  helpers.leakcheck()
  describe("ch:set_expected", function()
    it("raises for more than 16 delimiters, naming set_expected", function()
      local m = manager.new()
      local ch = m:_channel("read")
      local d = {}
      for i = 1, 17 do d[i] = "d" .. i end
      local ok, err = pcall(ch.set_expected, ch, d)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'set_expected' (0 to 16 delimiters expected)", err, 1, true)
      d[17] = nil
      assert.equal(ch, ch:set_expected(d))
      m:close()
    end)
  end)

  describe("a reader task that fails", function()
    it("is reported to the consumer as an error event", function()
      helpers.run(function()
        local m = manager.new()
        local a, b = helpers.pair()
        local other = neap.task(function() return a:read() end)   -- a second reader
        neap.sleep(0)
        local rch = m:add_sock(a)
        local ch, ev = m:next_event { timeout = 2 }
        assert.equal(rch, ch)
        assert.equal("read", ev.type)
        assert.equal("error", ev.status)
        assert.equal("failed", ev.code)
        assert.matches("another task is already reading", ev.err, 1, true)
        assert.is_true(rch.closed)
        other:cancel()
        m:close() b:close()
      end)
    end)
  end)
end)
