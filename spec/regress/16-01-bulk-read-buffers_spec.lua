-- Issue 16, bar 1: a bulk reader reuses its read buffer. A reader behind
-- its data makes the stream's buffer grow past a 64 KiB block; when it
-- empties, that buffer is kept as the host's spare and the next growth
-- takes it, instead of growing again from a block (realloc and fresh pages
-- each time, which made read(1 << 20) slower than read(65536)). And a
-- partial line left at the end of a block moves to its front: the block
-- does not grow for it.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "spec.helpers"

describe("16.1 bulk reads", function()
  helpers.leakcheck()

  it("grow the read buffer a few times, not once per burst", function()
    helpers.run(function()
      local block = string.rep("0123456789abcdef", 4096)   -- 64 KiB
      local total = 32 * #block * 4                        -- 8 MiB
      local p = assert(neap.spawn { "cat" })
      neap.task(function()
        for _ = 1, total // #block do assert(p.stdin:write(block)) end
        p.stdin:close()
      end)
      local grows0 = core._rbuf_grows()
      local got, reads = 0, 0
      while true do
        local data = p.stdout:read(1 << 20)
        if not data then break end
        got = got + #data
        reads = reads + 1
        if reads % 4 == 0 then neap.sleep(0.002) end   -- fall behind now and then
      end
      assert.are.equal(total, got)
      p:wait()
      p:close()
      local grows = core._rbuf_grows() - grows0
      -- (the first burst grows 64 KiB -> 512 KiB in a few steps; after that the spare serves)
      assert.is_true(grows <= 8, "read buffer grew " .. grows .. " times in " .. reads .. " reads")
    end, 30)
  end)

  it("keep a partial line in its block", function()
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      local line = string.rep("x", 99) .. "\n"          -- 100 bytes
      local cycles = 20
      neap.task(function()
        local c = assert(srv:accept())
        -- each cycle: 30 lines and half of one, then the rest of that line
        -- and 9 more, so the reader keeps a partial line between the two
        for _ = 1, cycles do
          assert(c:write(string.rep(line, 30) .. line:sub(1, 50)))
          c:flush()
          neap.sleep(0.003)
          assert(c:write(line:sub(51) .. string.rep(line, 9)))
          c:flush()
          neap.sleep(0.003)
        end
        c:close()
      end)
      local c = assert(neap.connect("tcp", "127.0.0.1", port))
      local grows0 = core._rbuf_grows()
      local n = 0
      for l in c:lines() do
        assert.are.equal(99, #l)
        n = n + 1
      end
      assert.are.equal(cycles * 40, n)
      -- (before: the 64 KiB block grew to 128 KiB for each partial line)
      local grows = core._rbuf_grows() - grows0
      assert.is_true(grows <= 2, "read buffer grew " .. grows .. " times in " .. cycles .. " cycles")
      c:close()
      srv:close()
    end, 30)
  end)

  it("grow past a smaller spare without using it", function()
    -- (under ASan and valgrind: a buffer larger than the spare once took it)
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      local function pair()
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        return c, assert(srv:accept())
      end
      local cb, sb = pair()
      local ca, sa = pair()
      local function settle(s, n)   -- until s holds n bytes unread
        for _ = 1, 1000 do
          if s:buffered() >= n then return end
          neap.sleep(0.002)
        end
        error("only " .. s:buffered() .. " of " .. n .. " bytes came")
      end
      cb:set_limits { read_high_water = 4 << 20 }
      assert.is_nil(cb:read(1, { timeout = 0 }))   -- reading starts; nobody reads
      assert.is_nil(ca:read(1, { timeout = 0 }))
      local function spare()   -- ca leaves a 128 KiB buffer as the spare
        sa:write(string.rep("a", 100 * 1024))
        settle(ca, 100 * 1024)
        assert.are.equal(100 * 1024, #ca:read(1 << 20))
      end
      spare()
      sb:write(string.rep("b", 200 * 1024))        -- cb takes that spare, then grows
      settle(cb, 200 * 1024)
      spare()
      sb:write(string.rep("b", 800 * 1024))        -- cb grows past the new spare
      settle(cb, 1000 * 1024)
      local all = cb:read(2 << 20)
      assert.are.equal(string.rep("b", 1000 * 1024), all)
      for _, s in ipairs { ca, sa, cb, sb, srv } do s:close() end
    end)
  end)
end)
