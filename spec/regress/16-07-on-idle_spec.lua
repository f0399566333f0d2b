-- Issue 16, part 6: s:on callbacks hold no task while their stream is idle
-- (the stream is armed; a frame, the end or a close starts a pump from a
-- small pool), and everything callbacks did before still holds.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"
local run = helpers.run

local function wait_for(cond, secs)
  local deadline = neap.now() + (secs or 5)
  while not cond() and neap.now() < deadline do neap.sleep(0.005) end
  return cond()
end

describe("16-07 idle stream callbacks", function()
  helpers.leakcheck()

  it("200 idle connections with line callbacks hold at most the pool's 32 tasks, and each echoes again", function()
    run(function()
      local base = core._ntasks()
      local pairs_ = {}
      for i = 1, 200 do
        local a, b = helpers.pair()
        a:on("line", function(l) a:write(l, "\n") end)
        pairs_[i] = { a, b }
      end
      for i, p in ipairs(pairs_) do
        p[2]:write("hello ", i, "\n")
      end
      for i, p in ipairs(pairs_) do
        assert.equal("hello " .. i, p[2]:read_line { timeout = 5 })
      end
      neap.sleep(0.05)
      local held = core._ntasks() - base
      assert.is_true(held <= 32, "tasks held by idle callbacks: " .. held)
      for i, p in ipairs(pairs_) do
        p[2]:write("again ", i, "\n")
        assert.equal("again " .. i, p[2]:read_line { timeout = 5 })
      end
      for _, p in ipairs(pairs_) do p[1]:close() p[2]:close() end
    end, 60)
  end)

  it("a stream whose only reference is its callbacks lives on and delivers", function()
    run(function()
      local srv, port = helpers.server()
      neap.task(function()
        local a = assert(srv:accept { timeout = 5 })
        a:on("line", function(l) a:write("echo:", l, "\n") end)
        a:on("close", function() a:close() end)
      end)
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      neap.sleep(0.05)
      collectgarbage() collectgarbage()
      c:write("x\n")
      assert.equal("echo:x", c:read_line { timeout = 5 })
      c:write("y\n")
      assert.equal("echo:y", c:read_line { timeout = 5 })
      c:close() srv:close()
      neap.sleep(0.05)
    end)
  end)

  it("a close from another task while the stream is idle reaches 'close' once", function()
    run(function()
      local a, b = helpers.pair()
      local closes, lines = 0, 0
      a:on("line", function() lines = lines + 1 end)
      a:on("close", function() closes = closes + 1 end)
      neap.sleep(0.02)
      neap.task(function() a:close() end)
      assert.is_true(wait_for(function() return closes == 1 end))
      neap.sleep(0.05)
      assert.equal(1, closes)
      assert.equal(0, lines)
      b:close()
    end)
  end)

  it("a line longer than the read high-water mark reaches its callback whole", function()
    run(function()
      local a, b = helpers.pair()
      a:set_limits { read_high_water = 4096, max_frame = 1 << 20 }
      local got
      a:on("line", function(l) got = l end)
      local long = string.rep("z", 200000)
      b:write(long, "\n")
      assert.is_true(wait_for(function() return got ~= nil end))
      assert.equal(#long, #got)
      a:close() b:close()
    end)
  end)

  it("'data' then 'line' on an idle stream: the line framing applies from then on", function()
    run(function()
      local a, b = helpers.pair()
      local data, lines = {}, {}
      a:on("data", function(d) data[#data + 1] = d end)
      neap.sleep(0.02)
      a:on("line", function(l) lines[#lines + 1] = l end)
      b:write("x\ny")
      assert.is_true(wait_for(function() return #lines == 1 end))
      b:write("\n")
      assert.is_true(wait_for(function() return #lines == 2 end))
      assert.same({ "x", "y" }, lines)
      assert.same({}, data)
      a:close() b:close()
    end)
  end)

  it("s:off() on an idle stream gives its reads back to tasks, and nothing more is delivered", function()
    run(function()
      local a, b = helpers.pair()
      local calls = 0
      a:on("line", function() calls = calls + 1 end)
      neap.sleep(0.02)
      a:off()
      b:write("z\n")
      assert.equal("z", a:read_line { timeout = 5 })
      neap.sleep(0.02)
      assert.equal(0, calls)
      a:close() b:close()
    end)
  end)

  it("a task read of an idle stream with callbacks raises", function()
    run(function()
      local a, b = helpers.pair()
      a:on("line", function() end)
      neap.sleep(0.02)
      local ok, e = pcall(a.read_line, a, { timeout = 0.1 })
      assert.is_false(ok)
      assert.matches("s:on", e)
      a:close() b:close()
    end)
  end)

  it("server:on('connection') runs its callbacks in pooled tasks: 300 connections leave at most 32", function()
    run(function()
      local srv, port = helpers.server()
      local base = core._ntasks()
      local seen = 0
      local acceptor = srv:on("connection", function(c)
        seen = seen + 1
        neap.sleep(0.001)   -- it may wait
        c:write("hi\n")
        c:close()
      end)
      for _ = 1, 300 do
        local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
        assert.equal("hi", c:read_line { timeout = 5 })
        c:close()
      end
      assert.equal(300, seen)
      neap.sleep(0.02)
      local held = core._ntasks() - base
      assert.is_true(held <= 33, "tasks held: " .. held)   -- the pool and the acceptor
      srv:close()
      assert(acceptor:join { timeout = 5 })
    end, 30)
  end)

  it("an error in a connection callback is reported as a failing task's, and the server goes on", function()
    local path = helpers.tmpfile([[
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
local n = 0
srv:on("connection", function(c)
  n = n + 1
  if n == 1 then c:close() error("boom in callback") end
  c:write("second\n") c:close()
end)
for _ = 1, 2 do
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  local l = c:read_line { timeout = 5 }
  if l then io.write(l, "\n") end
  c:close()
end
srv:close()
]])
    local out = helpers.sh(helpers.NEAP .. " " .. path)
    assert.matches("neap: task failed: [^\n]*boom in callback", out)
    assert.matches("second\n", out)
  end)

  it("idle callbacks keep the loop alive until their data comes", function()
    local path = helpers.tmpfile([[
local neap = require "neap"
neap.stdin:on("line", function(l) io.write("got ", l, "\n") io.flush() end)
]])
    local out = helpers.sh("(sleep 0.3; echo hi) | " .. helpers.NEAP .. " " .. path)
    assert.equal("got hi\n", out)
  end)
end)
