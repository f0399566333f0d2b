-- Issue 16 (found by CI's soak): every readable stream took a 64 KiB read
-- block, so 2,000 busy small-message connections held 2,000 x 64 KiB of
-- heap while their data waited for their tasks, and the host's RSS crept
-- towards that as the blocks' pages were touched at different offsets (the
-- soak's RSS check failed at random, +15% to +195%). A stream starts with a
-- 4 KiB block now and moves to 64 KiB ones when its reads fill a small
-- block or a frame outgrows one; its bytes are kept, in order.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"

local function script(body)
  local path = helpers.tmpfile("local neap = require 'neap'\nlocal core = require 'neap.core'\n" .. body)
  local out, rc = helpers.sh(helpers.NEAP .. " " .. path .. " 2>&1")
  os.remove(path)
  return out, rc
end

describe("16-14 read blocks", function()
  it("300 streams holding a partial line take 4 KiB each, not 64 KiB (a fresh process)", function()
    local out, rc = script([[
local function vmdata()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmData:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
local N = 300
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
local parked, conns, servers = 0, {}, {}
neap.task(function()
  for i = 1, N do
    local c = assert(srv:accept({ timeout = 5 }))
    servers[i] = c
    neap.task(function()
      parked = parked + 1
      local line = c:read_line { timeout = 10 }   -- waits on "partial" with no newline
      parked = parked - 1
      assert(line == "partial" .. i % 10, tostring(line))
    end)
  end
end)
for i = 1, N do conns[i] = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 })) end
while parked < N do neap.sleep(0.01) end
collectgarbage() collectgarbage()
local before = vmdata()
for i = 1, N do conns[i]:write("partial" .. i % 10) end
local deadline = neap.now() + 5
while neap.now() < deadline do
  local held = 0
  for i = 1, N do held = held + (servers[i]:buffered() > 0 and 1 or 0) end
  if held == N then break end
  neap.sleep(0.01)
end
local grew = vmdata() - before
print("grew", grew, grew < 8 * 1024)
for i = 1, N do conns[i]:write("\n") end
while parked > 0 and neap.now() < deadline + 5 do neap.sleep(0.01) end
print("parked", parked)
for i = 1, N do conns[i]:close() servers[i]:close() end
srv:close()
]])
    assert.equal(0, rc, out)
    assert.truthy(out:find("grew\t%-?%d+\ttrue\n"), out)
    assert.truthy(out:find("parked\t0\n"), out)
  end)

  it("frames across the move from small to large blocks and back keep every byte in order", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local long = ("0123456789abcdef"):rep(200)         -- 3,200 B: outgrows a small block
      local huge = ("x"):rep(200 * 1024 - 1) .. "y"      -- 200 KiB: bulk
      local writer = neap.task(function()
        for i = 1, 50 do assert(a:write("small " .. i .. "\n")) end
        assert(a:write(long, "\n"))
        for i = 1, 3 do assert(a:write("after " .. i .. "\n")) end
        assert(a:write(huge, "\n"))
        for i = 1, 50 do assert(a:write("tail " .. i .. "\n")) end
        assert(a:write(("z"):rep(5000)))                -- read_exactly across blocks
        assert(a:flush { timeout = 5 })
      end)
      for i = 1, 50 do assert.equal("small " .. i, b:read_line { timeout = 5 }) end
      assert.equal(long, b:read_line { timeout = 5 })
      for i = 1, 3 do assert.equal("after " .. i, b:read_line { timeout = 5 }) end
      assert.equal(huge, b:read_line { timeout = 5 })
      for i = 1, 50 do assert.equal("tail " .. i, b:read_line { timeout = 5 }) end
      assert.equal(("z"):rep(5000), b:read_exactly(5000, { timeout = 5 }))
      assert(writer:join { timeout = 5 })
      a:close() b:close()
    end)
  end)

  it("emptied blocks of both sizes go back to the host's caches", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local _, small0 = core._block_count()
      local total0 = core._block_count()
      assert(a:write("ping\n"))
      assert.equal("ping", b:read_line { timeout = 5 })
      local total1, small1 = core._block_count()
      assert.is_true(small1 >= math.max(small0, 1), "small blocks cached: " .. small1)
      -- a bulk read moves the stream to large blocks; emptied, one is cached
      local big = ("q"):rep(512 * 1024)
      local w = neap.task(function() assert(a:write(big)) assert(a:flush { timeout = 5 }) end)
      assert.equal(big, b:read_exactly(#big, { timeout = 5 }))
      assert(w:join { timeout = 5 })
      local total2, small2 = core._block_count()
      assert.is_true(total2 - small2 >= 1, "large blocks cached: " .. (total2 - small2))
      assert.is_true(total1 >= total0)
      a:close() b:close()
    end)
  end)
  it("the idle collection frees the cached large blocks and gives the small ones' pages back (a fresh process)", function()
    local out, rc = script([[
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:on("connection", function(c) c:on("line", function(line) c:write(line .. "\n") end) end)
local cs = {}
for i = 1, 300 do cs[i] = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 })) end
for i = 1, 300 do cs[i]:write("hello " .. i .. "\n") end
for i = 1, 300 do assert(cs[i]:read_line { timeout = 5 } == "hello " .. i) end
print("busy", core._block_count() > 0)
neap.sleep(0.8)   -- no task runs: the idle collection comes after 250-500 ms
local total, small, resident = core._block_count()
-- the large blocks freed, the small ones' pages given back (they stay cached)
print("idle", total - small, resident, select(4, core._gc_mode()) >= 1)
for i = 1, 300 do cs[i]:write("again " .. i .. "\n") end
for i = 1, 300 do assert(cs[i]:read_line { timeout = 5 } == "again " .. i) end
print("again", true)
os.exit(0)
]])
    assert.equal(0, rc, out)
    assert.equal("busy\ttrue\nidle\t0\t0\ttrue\nagain\ttrue\n", out)
  end)
end)
