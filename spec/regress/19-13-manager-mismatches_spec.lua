-- Issue 19.13 (the manager's parts): next_event{timeout=-1} named 'get',
-- add_read_fd(-1) named 'fd', and make_child_proc with stdout = "null" put
-- false in r_channels[1].
local manager = require "neap.manager"
local helpers = require "helpers"

describe("neap.manager (19.13)", function()
  helpers.leakcheck()
  it("next_event names itself for a bad timeout", function()
    local m = manager.new()
    local ok, err = pcall(m.next_event, m, { timeout = -1 })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'next_event' (timeout must be a number >= 0)", err, 1, true)
    ok, err = pcall(m.next_event, m, 5)
    assert.matches("bad argument #1 to 'next_event' (options table expected, got number; use { timeout = 5 })", err, 1, true)
    m:close()
  end)

  it("add_read_fd names itself and its argument for a negative descriptor", function()
    local m = manager.new()
    local ok, err = pcall(m.add_read_fd, m, -1)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'add_read_fd' (descriptor must be an integer >= 0)", err, 1, true)
    ok, err = pcall(m.add_read_fd, m, "x")
    assert.matches("bad argument #1 to 'add_read_fd' (descriptor must be an integer >= 0)", err, 1, true)
    m:close()
  end)

  it("make_child_proc makes no channel for a stdio that is not a pipe", function()
    helpers.run(function()
      local m = manager.new()
      local proc = assert(m:make_child_proc { "true", stdin = "null", stdout = "null" })
      assert.is_nil(proc.r_channels[1])
      assert.is_table(proc.r_channels[2])
      assert.is_nil(proc.w_channel)
      local ch
      repeat ch = m:next_event { timeout = 5 } until ch == m.child_channel
      m:close()
      proc.process:close()
    end)
  end)
end)
