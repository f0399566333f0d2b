-- Issue 16: the host picks the collector's mode. Generational while it is
-- small (the bulk paths' short-lived strings), incremental at a slow pace
-- with many tasks (Lua 5.4's minor collections traverse every old thread),
-- back to generational with hysteresis; a script that sets the mode or the
-- pace itself takes the collector over.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "spec.helpers"

describe("16.5 the collector's mode", function()
  -- In a fresh process: the busted process's own heap (every spec before
  -- this one) is past the bounds, so the host there is incremental.
  it("is generational while small, incremental with many tasks, back after", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local neap = require "neap"
local core = require "neap.core"
local ts, seen = {}, {}
neap.run(function()
  seen[1] = core._gc_mode()
  for i = 1, 5000 do ts[i] = neap.task(function() neap.sleep(3600) end) end
  seen[2] = core._gc_mode()
  for i = 1, 5000 do ts[i]:cancel() end
  ts = nil
  neap.sleep(0.05)
  collectgarbage("collect")
  neap.sleep(1.1)   -- (the hysteresis: a second after the switch)
  local mode, owner, switches = core._gc_mode()
  seen[3], seen[4], seen[5] = mode, owner, tostring(switches)
end)
io.write(table.concat(seen, " "))
]])
    f:close()
    local p = io.popen(helpers.BUILD .. "/neap " .. script .. " 2>&1")
    local out = p:read("a"); p:close()
    os.remove(script)
    assert.equal("generational incremental generational host 2", out)
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
