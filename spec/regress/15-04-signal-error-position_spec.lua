-- Issue 15.4 (error positions): a bad signal given to neap.signal,
-- neap.signum, p:kill or pl:kill is reported at the caller's line, not at a
-- line inside lua/neap/.
local neap = require "neap"
local helpers = require "spec.helpers"

-- The error of f(), which must raise; 'line' is the line of the call in f.
local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  return err
end

local here = "regress/15%-04%-signal%-error%-position_spec%.lua:"

describe("signal argument errors (15.4)", function()
  helpers.leakcheck()

  it("neap.signal(\"FOO\", f) names the caller's line", function()
    local err = raised(function() neap.signal("FOO", function() end) end)
    assert.truthy(err:find(here .. "%d+: bad argument #1 to 'signal' %(unknown signal 'FOO'%)"), err)
    err = raised(function() neap.signal({}, function() end) end)
    assert.truthy(err:find(here .. "%d+: bad argument #1 to 'signal' %(signal name or number expected%)"), err)
  end)

  it("neap.signum(\"FOO\") names the caller's line", function()
    local err = raised(function() neap.signum("FOO") end)
    assert.truthy(err:find(here .. "%d+: bad argument #1 to 'signum' %(unknown signal 'FOO'%)"), err)
  end)

  it("p:kill(\"FOO\") and pl:kill(\"FOO\") name the caller's line", function()
    helpers.run(function()
      local p = assert(neap.spawn { "sleep", "100", stdin = "null", stdout = "null", stderr = "null" })
      local err = raised(function() p:kill("FOO") end)
      assert.truthy(err:find(here .. "%d+: bad argument #2 to 'kill' %(unknown signal 'FOO'%)"), err)
      err = raised(function() p:kill(1.5) end)
      assert.truthy(err:find(here .. "%d+: bad argument #2 to 'kill' %(no signal 1.5%)"), err)
      local pl = assert(neap.pipeline({ "sleep", "100" }, { stdin = "null", stdout = "null", stderr = "null" }))
      err = raised(function() pl:kill("FOO") end)
      assert.truthy(err:find(here .. "%d+: bad argument #2 to 'kill' %(unknown signal 'FOO'%)"), err)
      assert.equal("running", p:status())
      p:kill("KILL")
      pl:kill("KILL")
      p:wait { timeout = 5 }
      pl:wait { timeout = 5 }
      p:close()
      pl.stages[1]:close()
    end)
  end)
end)
