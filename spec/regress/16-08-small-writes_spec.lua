-- Issue 16, bars 3 and 4: small writes inside tasks are copied into the
-- host's turn arena (no anchoring, one buffer per stream's run of them);
-- what the kernel does not take at once is copied out before the turn
-- ends, so nothing is lost, reordered or sent twice.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"
local run = helpers.run

describe("16-08 small writes", function()
  helpers.leakcheck()

  it("small writes of a turn go through the arena, large ones do not", function()
    run(function()
      local a, b = helpers.pair()
      local in0 = core._write_arena()
      for i = 1, 10 do a:write("line ", i, "\n") end
      a:write(string.rep("x", 1000), "\n")
      local in1 = core._write_arena()
      for i = 1, 10 do assert.equal("line " .. i, b:read_line { timeout = 5 }) end
      assert.equal(1000, #b:read_line { timeout = 5 })
      -- 10 x ("line ", i, "\n") and the "\n" after the 1000 bytes
      assert.equal(10 * 7 + 1 + 1, in1 - in0)
      a:close() b:close()
    end)
  end)

  it("a slow reader gets every small write in order: the unsent rest is copied out of the arena", function()
    run(function()
      local p = assert(neap.spawn { "cat" })   -- socket pairs: small buffers
      local _, out0 = core._write_arena()
      local n, big, pad = 0, string.rep("B", 3000), string.rep(".", 90)
      local writer = neap.task(function()
        for _ = 1, 12 do   -- 2.2 MB: far more than the buffers on the way take
          for i = 1, 1800 do
            n = n + 1
            if i % 500 == 0 then p.stdin:write(big, "\n")   -- a large one among them
            else p.stdin:write(string.format("%08d", n), pad, "\n") end
          end
          neap.sleep(0)
        end
        p.stdin:close()
      end)
      neap.sleep(0.3)   -- the buffers fill up first
      local count = 0
      for line in p.stdout:lines() do
        count = count + 1
        if ((count - 1) % 1800 + 1) % 500 == 0 then assert.equal(big, line)
        else assert.equal(string.format("%08d", count) .. pad, line) end
      end
      assert.equal(12 * 1800, count)
      assert(writer:join { timeout = 30 })
      assert(p:wait { timeout = 10 })
      p.stdout:close()
      if p.stderr then p.stderr:close() end
      local _, out1 = core._write_arena()
      assert.is_true(out1 > out0, "nothing was copied out")
    end, 60)
  end)

  it("a close right after small writes sends them all", function()
    run(function()
      local a, b = helpers.pair()
      for i = 1, 1000 do a:write(i, "\n") end
      a:close()
      local got = 0
      for line in b:lines() do
        got = got + 1
        assert.equal(tostring(got), line)
      end
      assert.equal(1000, got)
      b:close()
    end)
  end)
end)
