-- Issue 18.13: neap.timer(0, f, {every = 0.0004}) fired once while active()
-- stayed true (the period rounded down to 0 ms, which libuv takes as "no
-- repeat"); NaN seconds or every got messages unlike docs/neap.md's.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("neap.timer (18.13)", function()
  helpers.leakcheck()

  it("runs a sub-millisecond period every millisecond", function()
    helpers.run(function()
      local n = 0
      local t = neap.timer(0, function() n = n + 1 end, { every = 0.0004 })
      local deadline = neap.now() + 5
      while n < 5 and neap.now() < deadline do neap.sleep(0.01) end
      assert.is_true(t:active())
      t:stop()
      assert(n >= 5, "fired " .. n .. " time(s)")
      assert.is_false(t:active())
    end)
  end)

  it("reports NaN seconds and every as the docs say", function()
    local nan = 0 / 0
    local f = function() end
    local ok, err = pcall(neap.timer, nan, f)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'timer' %(seconds must be a number >= 0%)", err)
    ok, err = pcall(neap.timer, 0, f, { every = nan })
    assert.is_false(ok)
    assert.matches("bad argument #3 to 'timer' %(every must be a number > 0%)", err)
    ok, err = pcall(neap.timer, 0, f, { every = 0 })
    assert.is_false(ok)
    assert.matches("bad argument #3 to 'timer' %(every must be a number > 0%)", err)
  end)
end)
