-- Issue 16: the host picks the collector's mode. Generational while it is
-- small (the bulk paths' short-lived strings), incremental at a slow pace
-- with many tasks (Lua 5.4's minor collections traverse every old thread),
-- back to generational with hysteresis; a script that sets the mode or the
-- pace itself takes the collector over.
local neap = require "neap"
local core = require "neap.core"

describe("16.5 the collector's mode", function()
  it("is generational while small, incremental with many tasks, back after", function()
    local ts = {}
    neap.run(function()
      assert.equal("generational", (core._gc_mode()))
      for i = 1, 5000 do ts[i] = neap.task(function() neap.sleep(3600) end) end
      assert.equal("incremental", (core._gc_mode()))
      for i = 1, 5000 do ts[i]:cancel() end
      ts = nil
      neap.sleep(0.05)
      collectgarbage("collect")
      neap.sleep(1.1)   -- (the hysteresis: a second after the switch)
      local mode, owner = core._gc_mode()
      assert.equal("generational", mode)
      assert.equal("host", owner)
    end)
  end)

  it("keeps collectgarbage's errors naming it", function()
    local ok, err = pcall(collectgarbage, "bogus")
    assert.is_false(ok)
    assert.matches("collectgarbage", err)
  end)

  it("module mode: require 'neap' from stock lua5.4, a script takes over", function()
    local p = io.popen([[lua5.4 -e 'package.cpath="build/lib/?.so;"..package.cpath; ]] ..
      [[package.path="lua/?.lua;lua/?/init.lua;"..package.path' -e 'local neap = require "neap"; ]] ..
      [[local c = require "neap.core"; io.write(c._gc_mode(), " "); collectgarbage("setpause", 150); ]] ..
      [[io.write((select(2, c._gc_mode())))' 2>&1]])
    local out = p:read("a"); p:close()
    assert.equal("generational script", out)
  end)
end)
