-- Issue 18.9: a child's stdout handed to another child as its stdin, then
-- p:wait(): the wait drained the stream into neap's buffer and the other
-- child lost the data. And the hand-over cleared O_NONBLOCK on a
-- descriptor neap still reads, so a read there could block the loop.
local neap = require "neap"
local helpers = require "spec.helpers"

-- The O_NONBLOCK bit (04000) of descriptor 'fd' of process 'pid'.
local function nonblocking(text)
  local flags = assert(text:match("flags:%s*(%d+)"), text)
  return tonumber(flags, 8) & tonumber("4000", 8) ~= 0
end
local function fdinfo(fd)
  local f = assert(io.open("/proc/self/fdinfo/" .. fd))
  local t = f:read("a") f:close()
  return t
end

describe("process (18.9)", function()
  helpers.leakcheck()
  describe("a stream handed to a child", function()
    it("is the child's: p:wait does not take its data", function()
      helpers.run(function()
        for _ = 1, 3 do
          local p2 = assert(neap.spawn { "sh", "-c", "sleep 0.1; for i in $(seq 2000); do echo $i; done", stdin = "null" })
          local wc = assert(neap.spawn { "wc", "-l", stdin = p2.stdout })
          assert.equal(0, p2:wait { timeout = 5 })
          assert.equal("2000", wc.stdout:read_all { timeout = 5 }:match("%d+"))
          assert.is_true(p2.stdout:is_closed())   -- neap's side was given up
          assert.equal(0, wc:wait { timeout = 5 })
          p2:close() wc:close()
        end
      end)
    end)

    it("reaches the child blocking", function()
      helpers.run(function()
        local p1 = assert(neap.spawn { "sleep", "5", stdin = "null" })
        local p = assert(neap.spawn { "cat", "/proc/self/fdinfo/0", stdin = p1.stdout })
        assert.is_false(nonblocking(p.stdout:read_all { timeout = 5 }))
        p1:kill() p1:wait() p1:close()
        p:wait() p:close()
      end)
    end)
  end)

  describe("a descriptor neap reads, handed to a child as a number", function()
    it("keeps its flags in neap; the child's copy is blocking", function()
      helpers.run(function()
        local r, w = require("neap.core").os_pipe()
        local s = assert(neap.fd(r))
        assert.is_true(s:read(1, { timeout = 0.01 }) == nil)   -- neap reads it: non-blocking now
        assert.is_true(nonblocking(fdinfo(r)))
        local p = assert(neap.spawn { "cat", "/proc/self/fdinfo/0", stdin = r })
        assert.is_false(nonblocking(p.stdout:read_all { timeout = 5 }))
        assert.is_true(nonblocking(fdinfo(r)))
        p:wait() p:close()
        s:close()
        require("neap.core").close_fd(w)
      end)
    end)
  end)
end)
