-- Issue 16, red team of s:on's armed streams and pump pool (16-07):
--  * s:on (or s:off("line") with a "data" callback left) from inside a
--    callback armed the stream while its pump still ran: the next frame
--    started a second pump, and callbacks ran two or three at a time while
--    the first one waited (the docs, and main's pump, deliver one at a time);
--  * a pump parked in the pool kept its last stream and callbacks alive: a
--    stream whose callbacks had ended, with no reference left, was never
--    collected (its descriptor stayed open);
--  * a pump that could not be started (no memory) left the stream owned by
--    callbacks that nothing would call again: no delivery, no "close", and
--    task reads raised;
--  * a callback's error object whose __tostring raises ended every later
--    delivery on that stream (the report's tostring raised in the pump);
--  * user code run while a pump starts (a finalizer: s:off() then s:on())
--    armed the stream again: its anchor was overwritten (the box stayed in
--    the registry for good) and the first pump was recorded as the running
--    one, so the new pump never armed the stream again (no more delivery);
--  * a finalizer's s:off() during a pump's read: the line read was passed
--    to a nil callback ("attempt to call a nil value") and lost.
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"
local run = helpers.run

local function wait_for(cond, secs)
  local deadline = neap.now() + (secs or 5)
  while not cond() and neap.now() < deadline do neap.sleep(0.005) end
  return cond()
end

describe("16-09 s:on red team", function()
  helpers.leakcheck()

  it("s:on from inside a callback that then waits: the next line waits for it", function()
    run(function()
      local a, b = helpers.pair()
      local active, most, got = 0, 0, {}
      local function cb(l)
        active = active + 1
        if active > most then most = active end
        a:on("line", cb)   -- (re-registering, as a state machine does)
        neap.sleep(0.03)
        got[#got + 1] = l
        active = active - 1
      end
      a:on("line", cb)
      b:write("1\n")
      neap.sleep(0.01)
      b:write("2\n3\n")
      assert.is_true(wait_for(function() return #got == 3 end))
      assert.equal(1, most)
      assert.same({ "1", "2", "3" }, got)
      a:close() b:close()
    end)
  end)

  it("line -> data from inside a line callback that waits: one callback at a time, bytes in order", function()
    run(function()
      local a, b = helpers.pair()
      local active, most, out = 0, 0, {}
      local function enter() active = active + 1 if active > most then most = active end end
      a:on("data", function(d) enter() out[#out + 1] = d neap.sleep(0.01) active = active - 1 end)
      a:on("line", function(l)
        enter()
        out[#out + 1] = l .. "\n"
        a:off("line")   -- from now on, bytes
        neap.sleep(0.03)
        active = active - 1
      end)
      b:write("first\n")
      neap.sleep(0.01)
      b:write("more")
      neap.sleep(0.01)
      b:write(" bytes")
      assert.is_true(wait_for(function() return table.concat(out) == "first\nmore bytes" end))
      assert.equal(1, most)
      a:close() b:close()
    end)
  end)

  it("a stream whose callbacks ended, with no reference left, is collected: the pool keeps none", function()
    run(function()
      local before = core._handle_count()
      local closes = 0
      local peers = {}
      for i = 1, 10 do
        local a, b = helpers.pair()
        a:on("line", function() end)
        a:on("close", function() closes = closes + 1 end)   -- (a is left to the collector)
        peers[i] = b
      end
      neap.sleep(0.02)
      for _, b in ipairs(peers) do b:close() end
      assert.is_true(wait_for(function() return closes == 10 end))
      neap.sleep(0.02)
      collectgarbage() collectgarbage()
      assert.is_true(wait_for(function()
        collectgarbage()
        return core._handle_count() <= before
      end, 2), (core._handle_count() - before) .. " stream(s) kept open")
    end)
  end)

  it("a pump that cannot start (no memory) gives the stream back to tasks, bytes kept", function()
    run(function()
      local a, b = helpers.pair()
      local got = {}
      a:on("line", function(l) got[#got + 1] = l end)
      neap.sleep(0.02)
      local real = core._stream_pump(function() error("not enough memory") end)
      b:write("kept\n")
      neap.sleep(0.05)
      core._stream_pump(real)
      assert.same({}, got)
      assert.equal("kept", a:read_line { timeout = 5 })   -- raised "delivers its data to callbacks"
      a:on("line", function(l) got[#got + 1] = l end)     -- and callbacks work again
      b:write("again\n")
      assert.is_true(wait_for(function() return #got == 1 end))
      assert.same({ "again" }, got)
      a:close() b:close()
    end)
  end)

  it("a callback's error whose __tostring raises is reported, and delivery goes on", function()
    local path = helpers.tmpfile([[
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
local t = neap.task(function() return srv:accept { timeout = 5 } end)
local c = assert(neap.connect("tcp", "127.0.0.1", port))
local _, a = assert(t:join { timeout = 5 })
srv:close()
local got, closes = {}, 0
a:on("line", function(l)
  got[#got + 1] = l
  if l == "bad" then error(setmetatable({}, { __tostring = function() error("tostring boom") end })) end
end)
a:on("close", function() closes = closes + 1 a:close() end)
c:write("1\nbad\n2\n")
c:close()
local deadline = neap.now() + 5
while closes == 0 and neap.now() < deadline do neap.sleep(0.005) end
print(table.concat(got, ","), closes)
]])
    local out, rc = helpers.neap(path)
    os.remove(path)
    assert.equal(0, rc, out)
    assert.truthy(out:find("1,bad,2\t1\n", 1, true), out)
    assert.truthy(out:find("neap: stream callback failed: (error object is a table value)", 1, true), out)
    assert.falsy(out:find("tostring boom", 1, true), out)
  end)

  it("s:off() and s:on() while a pump starts (a finalizer): the new callbacks get every line after", function()
    run(function()
      local a, b = helpers.pair()
      local old, new = {}, {}
      a:on("line", function(l) old[#old + 1] = l end)
      neap.sleep(0.02)
      local real
      real = core._stream_pump(function(s, cbs)
        core._stream_pump(real)   -- (once)
        s:off()                   -- what a finalizer run by this call's allocations may do
        s:on("line", function(l) new[#new + 1] = l end)
        return real(s, cbs)
      end)
      b:write("1\n")
      assert.is_true(wait_for(function() return #new == 1 end))
      b:write("2\n")
      assert.is_true(wait_for(function() return #new == 2 end, 2))   -- (no pump armed it again)
      assert.same({ "1", "2" }, new)
      assert.same({}, old)
      a:close() b:close()
      neap.sleep(0.02)
      collectgarbage() collectgarbage()
      for k, v in pairs(debug.getregistry()) do   -- (its first anchor stayed)
        assert.is_false(type(k) == "number" and rawequal(v, a), "the closed stream is still anchored")
      end
    end)
  end)

  it("s:off() during a pump's read (a finalizer): the line read goes to the callback it was read for", function()
    run(function()
      local a, b = helpers.pair()
      local got = {}
      local Stream = core.stream_meta.__index
      local real = Stream._pump_read
      local once = true
      Stream._pump_read = function(s, ...)
        local d, e, c = real(s, ...)
        if once and d then   -- what a finalizer run by the read's allocation may do
          once = false
          s:off()
        end
        return d, e, c
      end
      local ok, err = pcall(function()
        a:on("line", function(l) got[#got + 1] = l end)
        b:write("one\ntwo\n")
        assert.is_true(wait_for(function() return #got == 1 end, 2))
      end)
      Stream._pump_read = real
      assert(ok, err)
      assert.same({ "one" }, got)
      assert.equal("two", a:read_line { timeout = 5 })
      a:close() b:close()
    end)
  end)

  -- (guards: these held already; the close runs start_pump on whatever
  -- thread closes the stream)
  it("a close from a nested coroutine, a <close> variable, a finalizer or a timer reaches 'close' once", function()
    run(function()
      local closers = {
        function(a) coroutine.wrap(function() coroutine.wrap(function() a:close() end)() end)() end,
        function(a) do local _ <close> = a end end,
        function(a) setmetatable({}, { __gc = function() a:close() end }) collectgarbage() collectgarbage() end,
        function(a) neap.timer(0, function() a:close() end) end,
      }
      for i, closer in ipairs(closers) do
        local a, b = helpers.pair()
        local closes, lines = 0, 0
        a:on("line", function() lines = lines + 1 end)
        a:on("close", function() closes = closes + 1 end)
        b:write("x\n")
        assert.is_true(wait_for(function() return lines == 1 end))
        closer(a)
        assert.is_true(wait_for(function() return closes == 1 end), "closer " .. i)
        neap.sleep(0.01)
        assert.equal(1, closes)
        b:close()
      end
    end)
  end)

  it("module mode: lua5.4 ends with streams armed, a pump pending and one in a callback", function()
    local path = helpers.tmpfile([[
local neap = require "neap"
keep = {}
neap.run(function()
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
  local _, port = srv:address()
  for i = 1, 6 do
    local t = neap.task(function() return srv:accept { timeout = 5 } end)
    local c = assert(neap.connect("tcp", "127.0.0.1", port))
    local _, a = assert(t:join { timeout = 5 })
    a:on("line", function(l) if l == "wait" then neap.sleep(10) end end)
    a:on("close", function() end)
    keep[i] = { a, c }
  end
  srv:close()
  keep[1][2]:write("wait\n")
  neap.sleep(0.05)
  keep[2][2]:write("x\n")   -- (delivered by a later run, or never)
end)
print("end")
]])
    local out, rc = helpers.sh(helpers.LUA54 .. " " .. path)
    os.remove(path)
    assert.equal(0, rc, out)
    assert.equal("end\n", out)
  end)
  it("s:off with an unknown event raises, naming the function and the argument", function()
    run(function()
      local a, b = helpers.pair()
      a:on("line", function() end)
      local ok, e = pcall(a.off, a, "lines")
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'off' %(\"data\", \"line\", \"close\" or \"error\" expected, got lines%)", e)
      a:off()
      a:close() b:close()
    end)
  end)
end)
