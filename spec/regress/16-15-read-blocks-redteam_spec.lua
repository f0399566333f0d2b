-- Issue 16, red team of the two read block sizes (c918778, spec 16-14). The
-- cases are numbered; each failed before its fix.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"

describe("16-15 read blocks, red team", function()
  -- 1. A read of < 1 KiB into a large block sent the stream back to small
  -- blocks at once, so a stream whose messages end in a short read (4,500
  -- B: 4,096 + 404; 66,000 B: ... + 464) took a small block for every
  -- message, filled it, and copied its 4 KiB into a large one: a copy and a
  -- read call more per message, every time (100 moves for 100 messages).
  -- Now three small reads in a row do it, so such a stream moves once.
  for _, size in ipairs { 4500, 66000 } do
    it("1. a stream of " .. size .. " B messages moves to large blocks once, not per message", function()
      helpers.run(function()
        local a, b = helpers.pair()
        local msg = ("m"):rep(size)
        local server = neap.task(function()
          while true do
            local m = a:read_exactly(size, { timeout = 5 })
            if not m then break end
            assert(m == msg)
            assert(a:write("ok\n"))
          end
        end)
        local _, moves0 = core._rbuf_grows()
        for _ = 1, 50 do
          assert(b:write(msg))
          assert.equal("ok", b:read_line { timeout = 5 })
        end
        local _, moves1 = core._rbuf_grows()
        assert.is_true(moves1 - moves0 <= 2, "moves: " .. (moves1 - moves0))
        b:close()
        assert(server:join { timeout = 5 })
        a:close()
      end)
    end)
  end

  it("1b. small messages after a bulk read still go back to small blocks", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local big = ("q"):rep(256 * 1024)
      local w = neap.task(function() assert(b:write(big)) assert(b:flush { timeout = 5 }) end)
      assert.equal(big, a:read_exactly(#big, { timeout = 5 }))
      assert(w:join { timeout = 5 })
      for i = 1, 10 do
        assert(b:write("ping " .. i .. "\n"))
        assert.equal("ping " .. i, a:read_line { timeout = 5 })
      end
      -- the next message lands in a small block: the small cache gives one
      local _, small0 = core._block_count()
      assert.is_true(small0 >= 1, "small blocks cached: " .. small0)
      assert(b:write("partial"))
      while a:buffered() == 0 do assert(a:wait_readable { timeout = 5 }) end
      local _, small1 = core._block_count()
      assert.equal(small0 - 1, small1)
      assert(b:write("\n"))
      assert.equal("partial", a:read_line { timeout = 5 })
      a:close() b:close()
    end)
  end)
end)
