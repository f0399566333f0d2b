-- Issue 15.4 (one rule for timeouts): a timeout is given only as
-- { timeout = s }. A bare number is a count where a method takes one
-- (s:read(5)), and where it takes none it raises an error that says how
-- to write the timeout. neap.sleep(seconds) is a duration and keeps its
-- number.
local neap = require "neap"
local helpers = require "spec.helpers"

local function pair()
  local srv, port = helpers.server()
  local t = neap.task(function() return srv:accept { timeout = 5 } end)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  local _, a = assert(t:join())
  return a, c, srv
end

-- f() must raise "bad argument #i to 'fname' (options table expected, got number; use { timeout = 2 })".
local function refuses(i, fname, f)
  local ok, err = pcall(f)
  assert.is_false(ok, fname .. " took a bare number")
  local want = "bad argument #" .. i .. " to '" .. fname .. "' (options table expected, got number; use { timeout = 2 })"
  assert.truthy(tostring(err):find(want, 1, true), tostring(err))
end

describe("timeouts (15.4)", function()
  helpers.leakcheck()

  it("a bare number raises where a stream method takes no count", function()
    helpers.run(function()
      local a, b, srv = pair()
      b:write("abc\n")
      refuses(2, "read_line", function() return a:read_line(2) end)
      refuses(2, "read_all", function() return a:read_all(2) end)
      refuses(3, "read_until", function() return a:read_until("\n", 2) end)
      refuses(2, "wait_readable", function() return a:wait_readable(2) end)
      refuses(2, "lines", function() return a:lines(2) end)
      refuses(2, "flush", function() return b:flush(2) end)
      refuses(3, "read", function() return a:read(10, 2) end)
      refuses(3, "read_exactly", function() return a:read_exactly(2, 2) end)
      refuses(2, "accept", function() return srv:accept(2) end)
      -- a count stays a count, and the table form works
      assert.equal("ab", a:read(2))
      assert.equal("c", a:read_line { timeout = 2 })
      local ok, err = pcall(a.read, a, 0.2)
      assert.is_false(ok)
      assert.truthy(err:find("number has no integer representation", 1, true), err)
      a:close() b:close() srv:close()
    end)
  end)

  it("a bare number raises in the other waits", function()
    helpers.run(function()
      local t = neap.task(function() neap.sleep(0.01) return 1 end)   -- sleep takes seconds
      refuses(2, "join", function() return t:join(2) end)
      assert.same({ true, 1 }, { t:join { timeout = 2 } })
      local q = neap.queue()
      refuses(1, "get", function() return q:get(2) end)
      local p = assert(neap.spawn { "true" })
      refuses(2, "wait", function() return p:wait(2) end)
      refuses(2, "communicate", function() return p:communicate(nil, 2) end)
      assert.same({ 0, nil }, { p:wait { timeout = 5 } })
      p:close()
      local pl = assert(neap.pipeline({ "true" }))
      refuses(1, "wait", function() return pl:wait(2) end)
      pl:wait { timeout = 5 }
      pl.stages[1]:close()
      refuses(2, "wait_signal", function() return neap.wait_signal("USR2", 2) end)
      local u = assert(neap.udp { host = "127.0.0.1", port = 0 })
      refuses(2, "recv", function() return u:recv(2) end)
      u:close()
    end)
  end)
end)
