-- A worker script that ignores TERM must not keep `neap --workers` alive
-- forever: the first TERM is passed on, a second one kills the workers.
local neap = require "neap"
local helpers = require "helpers"

local SRC = [[
local neap = require "neap"
neap.signal("TERM", function() neap.stdout:write("ignored\n") end)
neap.stdout:write("ready " .. neap.pid() .. "\n")
neap.sleep(1000)
]]

describe("neap --workers and a script that ignores TERM", function()
  it("ends at a second TERM, killing the workers", function()
    helpers.run(function()
      local path = helpers.tmpfile(SRC)
      local p = assert(neap.spawn { helpers.NEAP, "--workers", "1", path })
      local wpid
      finally(function()
        os.remove(path)
        if wpid then os.execute("kill -KILL " .. wpid .. " 2>/dev/null") end
      end)
      local line = assert(p.stdout:read_line { timeout = 15 })
      wpid = tonumber(line:match("^ready (%d+)$"))
      assert(wpid, line)
      p:kill("TERM")
      assert.equal("ignored", p.stdout:read_line { timeout = 5 })
      local _, what = p:wait { timeout = 0.5 }
      assert.equal("timeout", what)          -- still waiting for the worker, as documented
      p:kill("TERM")
      local code, sig = p:wait { timeout = 5, kill = "process" }
      assert.equal(1, code, tostring(sig))   -- a worker killed by KILL is not a clean end
      local st = helpers.proc_state(wpid)
      assert.is_true(st == nil or st == "Z", "worker still there: " .. tostring(st))
      wpid = nil
      local err = p.stderr:read_all { timeout = 5 }
      assert.truthy(err:find("was killed by signal KILL", 1, true), err)
      p:close()
    end, 30)
  end)
end)
