-- Issue 18.6: a write of 4 GiB or more sent len mod 2^32 bytes and reported
-- success (uv_buf_init(p, (unsigned)len)): 4 GiB + 5 bytes written to
-- `wc -c` counted 5. A string is written as buffers of at most 1 GiB each.
-- The test tagged #load needs 4 GiB of memory and some seconds: valgrind
-- and gcstress skip it (--exclude-tags=load in the Makefile); the others
-- check the splitting with a tiny piece size on every kind of stream.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "spec.helpers"

local function pieces(piece, fn)
  core._write_piece(piece)
  local ok, err = pcall(fn)
  core._write_piece(0)
  if not ok then error(err, 0) end
end

-- strings of every length from 0 to 40, several per write, and 16 at once
local function payload_writes(write)
  local want = {}
  for n = 0, 40 do
    local a, b = ("a"):rep(n), tostring(n)
    write(a, b, "\n")
    want[#want + 1] = a .. b .. "\n"
  end
  local sixteen = {}
  for i = 1, 16 do sixteen[i] = ("%02d:"):format(i):rep(i) end
  write(table.unpack(sixteen))
  want[#want + 1] = table.concat(sixteen)
  local big = ("0123456789abcdef"):rep(65536)   -- 1 MiB: many pieces, partial writes
  write(big)
  want[#want + 1] = big
  return table.concat(want)
end

describe("writes longer than one buffer (18.6)", function()
  helpers.leakcheck()

  it("splits strings into pieces on a pipe, in order", function()
    helpers.run(function()
      pieces(7, function()
        local p = assert(neap.spawn { "cat", stdin = "pipe", stdout = "pipe" })
        local got
        local reader = neap.task(function() got = p.stdout:read_all { timeout = 20 } end)
        local want = payload_writes(function(...) assert(p.stdin:write(...)) end)
        assert(p.stdin:flush { timeout = 20 })
        p.stdin:close()
        assert.is_true(reader:join { timeout = 20 })
        assert.equal(#want, #got)
        assert.is_true(want == got)
        p:wait(); p:close()
      end)
    end)
  end)

  it("splits strings into pieces on a file and on TCP", function()
    helpers.run(function()
      pieces(5, function()
        local path = os.tmpname()
        local f = assert(neap.open(path, "w"))
        local want = payload_writes(function(...) assert(f:write(...)) end)
        assert(f:flush { timeout = 20 })
        f:close()
        local h = assert(io.open(path, "rb"))
        local got = h:read("a")
        h:close()
        os.remove(path)
        assert.is_true(want == got)

        local srv, port = helpers.server()
        local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
        local d = assert(srv:accept { timeout = 5 })
        local reader = neap.task(function() return d:read_all { timeout = 20 } end)
        want = payload_writes(function(...) assert(c:write(...)) end)
        c:close()
        local ok, all = reader:join { timeout = 20 }
        assert.is_true(ok)
        assert.is_true(want == all)
        d:close(); srv:close()
      end)
    end)
  end)

  it("a UDP datagram over 65,535 bytes is EMSGSIZE, never cut", function()
    local u = assert(neap.udp())
    assert.same({ nil, "message too long", "EMSGSIZE" }, { u:send(("x"):rep(65536), "127.0.0.1", 9) })
    u:close()
  end)

  it("writes 4 GiB + 5 bytes to wc -c whole, and refuses it as a datagram (4 GiB) #load", function()
    helpers.run(function()
      local n = 4 * 1024 * 1024 * 1024 + 5
      local gib = ("x"):rep(1024 * 1024 * 1024)   -- (string.rep stops below 2 GiB)
      local big = gib .. gib .. gib .. gib .. "xxxxx"
      gib = nil
      assert.equal(n, #big)
      local u = assert(neap.udp())
      assert.same({ nil, "message too long", "EMSGSIZE" }, { u:send(big, "127.0.0.1", 9) })
      u:close()
      local p = assert(neap.spawn { "wc", "-c", stdin = "pipe", stdout = "pipe" })
      local reader = neap.task(function() return p.stdout:read_all { timeout = 120 } end)
      assert(p.stdin:write(big))
      big = nil
      assert(p.stdin:flush { timeout = 120 })
      p.stdin:close()
      local ok, out = reader:join { timeout = 120 }
      assert.is_true(ok)
      assert.equal(tostring(n), out:match("%d+"))
      p:wait(); p:close()
      collectgarbage()
    end, 180)
  end)
end)
