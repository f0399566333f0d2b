-- Issue 15.4 (lines): s:lines() raises on a read error, as io.lines does
-- (a timeout, a frame too large, a reset), ends quietly at the end or at a
-- close, and a handler that holds its stream in a <close> variable still
-- closes it when the loop raises.
local neap = require "neap"
local helpers = require "spec.helpers"

local pair = helpers.pair   -- server-side stream, client-side stream

describe("s:lines() (15.4)", function()
  helpers.leakcheck()

  it("raises 'lines: timeout' and 'lines: frame too large'", function()
    helpers.run(function()
      local a, b = pair()
      b:write("one\n")
      local got = {}
      local ok, err = pcall(function()
        for l in a:lines { timeout = 0.05 } do got[#got + 1] = l end
      end)
      assert.is_false(ok)
      assert.same({ "one" }, got)
      assert.truthy(err:find("lines: timeout", 1, true), err)
      a:set_limits { max_frame = 4 }
      b:write("too long\n")
      ok, err = pcall(function() for _ in a:lines { timeout = 5 } do end end)
      assert.is_false(ok)
      assert.truthy(err:find("lines: frame too large", 1, true), err)
      a:close() b:close()
    end)
  end)

  it("raises a reset with its code", function()
    helpers.run(function()
      local a, b = pair()
      a:write("unread by b\n")
      neap.sleep(0.05)
      b:close()                         -- closed with data unread: the kernel resets
      local ok, err = pcall(function() for _ in a:lines { timeout = 5 } do end end)
      assert.is_false(ok)
      assert.truthy(err:find("lines: connection reset by peer (ECONNRESET)", 1, true), err)
      a:close()
    end)
  end)

  it("ends at the end of the stream and when the stream is closed", function()
    helpers.run(function()
      local a, b = pair()
      b:write("x\ny\n")
      b:close()
      local n = 0
      for _ in a:lines { timeout = 5 } do n = n + 1 end
      assert.equal(2, n)
      a:close()
      for _ in a:lines() do n = n + 1 end
      assert.equal(2, n)
    end)
  end)

  it("a <close> handler closes its stream when the loop raises", function()
    helpers.run(function()
      local a, b = pair()
      local function handler(conn)
        local c <close> = conn
        for line in c:lines { timeout = 0.05 } do c:write(line, "\n") end
      end
      b:write("ping\n")
      local ok, err = pcall(handler, a)
      assert.is_false(ok)
      assert.truthy(err:find("lines: timeout", 1, true), err)
      assert.is_true(a:is_closed())
      assert.equal("ping", b:read_line { timeout = 5 })
      b:close()
    end)
  end)
end)
