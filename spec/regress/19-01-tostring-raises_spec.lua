-- Issue 19.1: an error value whose __tostring raises aborted the process
-- (an unprotected luaL_callmeta while reporting a failed task); under a
-- stock lua5.4 it jumped out of uv_run and left the loop marked running.
local helpers = require "helpers"

describe("regress 19.1: an error value whose __tostring raises", function()
  it("is reported as lua5.4 does, and the binary exits with 1", function()
    local out, rc = helpers.neap("-e 'error(setmetatable({}, {__tostring=function() error(\"x\") end}))'")
    assert.equal(1, rc, out)
    assert.truthy(out:find("(error object is a table value)", 1, true), out)
    assert.falsy(out:find("PANIC", 1, true), out)
  end)
  it("in a task: join returns the value itself, and the others go on", function()
    local neap = require "neap"
    helpers.run(function()
      local bad = setmetatable({}, { __tostring = function() error("x") end })
      local t = neap.task(function() error(bad) end)
      local ok, err, code = t:join { timeout = 5 }
      assert.is_nil(ok)
      assert.is_true(rawequal(bad, err))
      assert.equal("error", code)
    end)
  end)
  it("leaves the loop usable under a stock lua5.4", function()
    local script = helpers.tmpfile([[
      local neap = require "neap"
      local bad = setmetatable({}, { __tostring = function() error("x") end })
      local ok, e = pcall(neap.run, function() error(bad) end)
      print("first:", ok, rawequal(e, bad))
      print("again:", neap.run(function() neap.sleep(0.01) return "fine" end))
    ]])
    local out, rc = helpers.sh(helpers.LUA54 .. " " .. script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("first:\tfalse\ttrue", 1, true), out)
    assert.truthy(out:find("again:\tfine", 1, true), out)
    os.remove(script)
  end)
end)
