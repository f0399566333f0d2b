-- Issue 19, item 10: fed by hand, a read inside a coroutine of the
-- protocol's own returned proto's internal table (its "need more input"
-- marker); as a for iterator it looped until memory ran out. Over a stream
-- the same read raises "a wait must run inside a task"; by hand it must too.
local proto = require "neap.proto"
local helpers = require "helpers"

describe("issue 19.10: neap.proto fed by hand", function()
  helpers.leakcheck()

  local P = proto.define(function(io)
    local ok, err = pcall(coroutine.wrap(function() return io:read_line() end))
    io:write(tostring(ok), "|", tostring(err), "|")
    io:write(io:read_line())   -- the protocol's own coroutine still reads
  end)

  it("raises in a read that would wait inside a nested coroutine", function()
    local c = P()
    assert.matches("^false|.*read_line: a wait must run inside a task.*|$", c:read())
    c:send("after\n")
    assert.equal("after", c:read())
    assert.is_true(c:closed())
  end)

  it("answers a read in a nested coroutine when the input is there", function()
    local Q = proto.define(function(io)
      io:read_exactly(1)   -- wait for input first
      io:write(coroutine.wrap(function() return io:read_line() end)())
    end)
    local c = Q()
    c:send("xhi\n")
    assert.equal("hi", c:read())
  end)

  it("raises the same kind of error over a stream", function()
    local msg = helpers.run(function()
      local a, b = helpers.pair()
      local ok, err = pcall(coroutine.wrap(function() return a:read_line() end))
      a:close() b:close()
      assert.is_false(ok)
      return err
    end)
    assert.matches("read_line: a wait must run inside a task", msg)
  end)
end)
