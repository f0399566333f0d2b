-- Issue 18.12: a NUL byte in a path or host name cut it short silently:
-- neap.open("/etc/hostname\0.txt") opened /etc/hostname, and so did Unix
-- listen/connect, TCP hosts, UDP hosts, spawn's {file=} and resolve. Every
-- path and host argument goes through one check and raises.
local neap = require "neap"
local helpers = require "spec.helpers"

-- the message, raised at the caller's line (this file)
local function raises(f, msg)
  local ok, e = pcall(f)
  assert.is_false(ok)
  assert.equal(msg, e:match("^[^:]*18%-12%-nul%-in%-names_spec%.lua:%d+: (.*)$"), e)
end

describe("NUL bytes in paths and host names (18.12)", function()
  helpers.leakcheck()

  it("neap.open raises", function()
    local path = helpers.tmpfile("x")
    raises(function() neap.open(path .. "\0.txt") end, "bad argument #1 to 'open' (path contains a NUL byte)")
    raises(function() neap.open(path .. "\0.txt", "w") end, "bad argument #1 to 'open' (path contains a NUL byte)")
    os.remove(path)
  end)

  it("Unix listen and connect raise", function()
    local path = os.tmpname()
    os.remove(path)
    raises(function() neap.listen("unix", path .. "\0junk") end, "bad argument #2 to 'listen' (path contains a NUL byte)")
    assert.is_nil(io.open(path))   -- nothing was bound
    local srv = assert(neap.listen("unix", path))
    raises(function() neap.connect("unix", path .. "\0junk") end,
      "bad argument #2 to 'connect' (path contains a NUL byte)")
    srv:close()
  end)

  it("TCP hosts and neap.resolve raise", function()
    raises(function() neap.listen("tcp", "127.0.0.1\0junk", 0) end,
      "bad argument #2 to 'listen' (host contains a NUL byte)")
    raises(function() neap.connect("tcp", "127.0.0.1\0junk", 1) end,
      "bad argument #2 to 'connect' (host contains a NUL byte)")
    raises(function() neap.resolve("localhost\0.example") end, "bad argument #1 to 'resolve' (host contains a NUL byte)")
  end)

  it("UDP hosts raise", function()
    raises(function() neap.udp { host = "127.0.0.1\0junk", port = 0 } end,
      "bad argument #1 to 'udp' (host contains a NUL byte)")
    local u = assert(neap.udp())
    raises(function() u:send("x", "127.0.0.1\0junk", 9) end, "bad argument #2 to 'send' (host contains a NUL byte)")
    raises(function() u:connect("127.0.0.1\0junk", 9) end, "bad argument #1 to 'connect' (host contains a NUL byte)")
    u:close()
  end)

  it("spawn's {file=} raises before anything runs", function()
    local path = os.tmpname()
    os.remove(path)
    raises(function() neap.spawn { "true", stdout = { file = path .. "\0junk" } } end,
      "bad argument #1 to 'spawn' (stdout.file contains a NUL byte)")
    raises(function() neap.spawn { "true", stdin = { file = "/etc/hostname\0junk" } } end,
      "bad argument #1 to 'spawn' (stdin.file contains a NUL byte)")
    assert.is_nil(io.open(path))
  end)
end)
