-- Issue 15.3: a stream closed under a writer. In a broadcast server one
-- task's stream is often closed by another task; a write on it used to
-- raise "attempt to use a closed stream" and kill the broadcasting task.
-- Now the reads, write, flush and shutdown of a closed stream return
-- nil, "closed", "ECLOSED"; only configuring it raises.
local neap = require "neap"
local helpers = require "spec.helpers"

local CLOSED = { nil, "closed", "ECLOSED" }

local pair = helpers.pair   -- server-side stream, client-side stream

describe("a closed stream (15.3)", function()
  helpers.leakcheck()

  it("returns nil, 'closed', 'ECLOSED' from the reads, write, flush and shutdown", function()
    helpers.run(function()
      local a, b = pair()
      a:close()
      assert.same(CLOSED, { a:write("x") })
      assert.same(CLOSED, { a:write("x", "y") })
      assert.same(CLOSED, { a:flush() })
      assert.same(CLOSED, { a:shutdown() })
      assert.same(CLOSED, { a:read() })
      assert.same(CLOSED, { a:read(5) })
      assert.same(CLOSED, { a:read_exactly(5) })
      assert.same(CLOSED, { a:read_line() })
      assert.same(CLOSED, { a:read_until("\n") })
      assert.same(CLOSED, { a:read_all() })
      assert.same(CLOSED, { a:wait_readable() })
      local n = 0
      for _ in a:lines() do n = n + 1 end
      assert.equal(0, n)
      b:close()
    end)
  end)

  it("still raises for a bad argument, and when it is configured", function()
    helpers.run(function()
      local a, b = pair()
      a:close()
      assert.has_error(function() a:write({}) end)
      assert.has_error(function() a:read(-1) end)
      assert.has_error(function() a:set_limits { max_frame = 10 } end, "attempt to use a closed stream")
      assert.has_error(function() a:nodelay(true) end, "attempt to use a closed stream")
      assert.has_error(function() a:on("line", function() end) end, "attempt to use a closed stream")
      assert.has_error(function() a:buffered() end, "attempt to use a closed stream")
      b:close()
    end)
  end)

  it("wakes a writer parked on backpressure with nil, 'closed', 'ECLOSED'", function()
    helpers.run(function()
      local a, b = pair()
      b:set_limits { high_water = 1024, low_water = 512 }
      local w = neap.task(function()
        local big = string.rep("x", 1 << 20)
        for _ = 1, 64 do
          local ok, err, code = b:write(big)
          if not ok then return err, code end
        end
      end)
      neap.sleep(0.05)
      assert.equal("parked", w:status())
      b:close()
      assert.same({ true, "closed", "ECLOSED" }, { w:join { timeout = 5 } })
      a:close()
    end)
  end)

  it("a broadcaster survives a member closed by that member's reader", function()
    helpers.run(function()
      local a1, b1 = pair()
      local a2, b2 = pair()
      local members = { a1, a2 }
      -- a1's reader sees its peer go and closes a1, as a chat server does
      local reader = neap.task(function()
        local line = a1:read_line { timeout = 5 }
        a1:close()
        return line
      end)
      b1:close()
      assert.same({ true, nil }, { reader:join { timeout = 5 } })
      local broadcaster = neap.task(function()
        local sent = 0
        for _, s in ipairs(members) do
          local ok, _, code = s:write("news\n")
          if ok then sent = sent + 1 else assert(code == "ECLOSED", code) end
        end
        return sent
      end)
      assert.same({ true, 1 }, { broadcaster:join { timeout = 5 } })
      assert.equal("news", b2:read_line { timeout = 5 })
      a2:close() b2:close()
    end)
  end)
end)
