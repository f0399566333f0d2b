-- Issue 19.7: u:send and u:connect did not check the port: 70000 went to
-- port 4464 (70000 mod 65536) and -1 to 65535, and a port that was not an
-- integer was reported under the wrong function name and argument number.
-- Every port (UDP and TCP) is checked by one helper, with one set of messages.
local neap = require "neap"
local helpers = require "spec.helpers"

local function err_of(f)
  local ok, e = pcall(f)
  assert.is_false(ok)
  return e
end

-- the message, raised at the caller's line (this file)
local function raises(f, msg)
  local e = err_of(f)
  assert.equal(msg, e:match("^[^:]*19%-07%-udp%-port%-range_spec%.lua:%d+: (.*)$"), e)
end

describe("port checks (19.7)", function()
  helpers.leakcheck()

  it("u:send raises on a port out of range and sends nothing", function()
    helpers.run(function()
      local rx = assert(neap.udp { host = "127.0.0.1", port = 4464 })
      local u = assert(neap.udp())
      raises(function() u:send("x", "127.0.0.1", 70000) end, "bad argument #3 to 'send' (port out of range)")
      raises(function() u:send("x", "127.0.0.1", -1) end, "bad argument #3 to 'send' (port out of range)")
      raises(function() u:send("x", "127.0.0.1", 65536) end, "bad argument #3 to 'send' (port out of range)")
      raises(function() u:send("x", "127.0.0.1", 1.5) end,
        "bad argument #3 to 'send' (number has no integer representation)")
      raises(function() u:send("x", "127.0.0.1", "9") end, "bad argument #3 to 'send' (number expected, got string)")
      assert.same({ nil, "timeout", "timeout" }, { rx:recv { timeout = 0.2 } })
      -- an integral float is a port
      local _, port = rx:address()
      assert.is_true(u:send("ok", "127.0.0.1", port + 0.0))
      assert.equal("ok", (rx:recv { timeout = 2 }))
      u:close(); rx:close()
    end)
  end)

  it("u:connect raises on a port out of range", function()
    local u = assert(neap.udp())
    raises(function() u:connect("127.0.0.1", 70000) end, "bad argument #2 to 'connect' (port out of range)")
    raises(function() u:connect("127.0.0.1", -1) end, "bad argument #2 to 'connect' (port out of range)")
    raises(function() u:connect("127.0.0.1", 0.5) end,
      "bad argument #2 to 'connect' (number has no integer representation)")
    u:close()
  end)

  it("TCP listen and connect use the same checks and messages", function()
    raises(function() neap.listen("tcp", "127.0.0.1", 70000) end, "bad argument #3 to 'listen' (port out of range)")
    raises(function() neap.listen("tcp", "127.0.0.1", -1) end, "bad argument #3 to 'listen' (port out of range)")
    raises(function() neap.listen("tcp", "127.0.0.1", 1.5) end,
      "bad argument #3 to 'listen' (number has no integer representation)")
    raises(function() neap.listen("tcp", "127.0.0.1") end, "bad argument #3 to 'listen' (number expected, got no value)")
    raises(function() neap.connect("tcp", "127.0.0.1", 65536) end, "bad argument #3 to 'connect' (port out of range)")
    raises(function() neap.connect("tcp", "127.0.0.1", "80") end,
      "bad argument #3 to 'connect' (number expected, got string)")
  end)
end)
