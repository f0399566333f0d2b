-- Signals: neap.signal, neap.wait_signal, and the binary's default INT/TERM
-- exit that takes the children it spawned along (issue #5).
local neap = require "neap"
local helpers = require "helpers"
local proc_state = helpers.proc_state
local run, sh, NEAP = helpers.run, helpers.sh, helpers.NEAP

-- Waits until 'fn' returns true, up to 'seconds'.
local function eventually(fn, seconds)
  local deadline = neap.now() + (seconds or 5)
  while not fn() do
    if neap.now() > deadline then return false end
    neap.sleep(0.01)
  end
  return true
end


-- Runs a neap script in the background, sends it 'sig' once it wrote its
-- child's pid to a file, and returns its exit status, its output and that pid.
local function signal_script(src, sig)
  local script = helpers.tmpfile(src)
  local pidfile = os.tmpname()
  os.remove(pidfile)
  local out = os.tmpname()
  local _, rc = sh(string.format(
    "%s %s %s >%s 2>&1 </dev/null & pid=$!; " ..
    "i=0; while [ ! -s %s ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; " ..
    "kill -%s $pid; wait $pid", NEAP, script, pidfile, out, pidfile, sig))
  local f = io.open(pidfile)
  local child = f and tonumber(f:read("a"))
  if f then f:close() end
  f = io.open(out)
  local output = f:read("a")
  f:close()
  os.remove(script) os.remove(pidfile) os.remove(out)
  return rc, output, child
end

-- Asserts that process 'child' ends (or is a zombie left to init) within 2 s.
local function assert_gone(child)
  local st
  for _ = 1, 100 do
    st = proc_state(child)
    if st == nil or st == "Z" then return end
    os.execute("sleep 0.02")
  end
  error("child " .. child .. " still in state " .. tostring(st))
end

local SPAWNS_AND_SLEEPS = [[
  local neap = require "neap"
  local p = assert(neap.spawn { "sleep", "30", stdout = "null", stderr = "null" })
  local f = io.open(arg[1], "w") f:write(p.pid, "\n") f:close()
  neap.sleep(30)
  print("not reached")
]]

describe("neap signals", function()
  helpers.leakcheck()

  describe("neap.signal()", function()
    it("runs fn(name) at each delivery", function()
      run(function()
        local got = {}
        local w = neap.signal("USR1", function(name) got[#got + 1] = name end)
        assert.is_true(os.execute("kill -USR1 " .. neap.pid()))
        assert.is_true(eventually(function() return #got == 1 end))
        assert.is_true(os.execute("kill -USR1 " .. neap.pid()))
        assert.is_true(eventually(function() return #got == 2 end))
        assert.same({ "USR1", "USR1" }, got)
        w:stop()
      end)
    end)

    it("takes names with SIG or in lower case, and numbers", function()
      run(function()
        local got = {}
        local w1 = neap.signal("SIGUSR2", function(n) got[#got + 1] = "a:" .. n end)
        local w2 = neap.signal("usr2", function(n) got[#got + 1] = "b:" .. n end)
        local w3 = neap.signal(1, function(n) got[#got + 1] = "c:" .. n end)
        os.execute("kill -USR2 " .. neap.pid())
        os.execute("kill -HUP " .. neap.pid())
        assert.is_true(eventually(function() return #got == 3 end))
        table.sort(got)
        assert.same({ "a:USR2", "b:USR2", "c:HUP" }, got)
        w1:stop() w2:stop() w3:stop()
      end)
    end)

    it("fn runs in a task: it can wait", function()
      run(function()
        local q = neap.queue()
        local w = neap.signal("USR1", function(name)
          neap.sleep(0.01)
          q:put(name .. " after a sleep")
        end)
        os.execute("kill -USR1 " .. neap.pid())
        assert.equal("USR1 after a sleep", q:get { timeout = 5 })
        w:stop()
      end)
    end)

    it("stop() ends the deliveries to that watcher only", function()
      run(function()
        local a, b = 0, 0
        local wa = neap.signal("USR1", function() a = a + 1 end)
        local wb = neap.signal("USR1", function() b = b + 1 end)
        os.execute("kill -USR1 " .. neap.pid())
        assert.is_true(eventually(function() return a == 1 and b == 1 end))
        wa:stop()
        os.execute("kill -USR1 " .. neap.pid())
        assert.is_true(eventually(function() return b == 2 end))
        neap.sleep(0.05)
        assert.equal(1, a)
        wb:stop()
      end)
    end)

    it("a handler for INT keeps the process alive", function()
      local rc, out = signal_script([[
        local neap = require "neap"
        local got = 0
        local w = neap.signal("INT", function(name) got = got + 1 print("handled " .. name) end)
        local f = io.open(arg[1], "w") f:write("1\n") f:close()
        while got == 0 do neap.sleep(0.01) end
        -- a second INT, sent by the script itself
        local p = assert(neap.spawn { "kill", "-INT", tostring(neap.pid()) })
        p:wait()
        while got == 1 do neap.sleep(0.01) end
        w:stop()
        print("still alive")
      ]], "INT")
      assert.equal(0, rc, out)
      assert.equal("handled INT\nhandled INT\nstill alive\n", out)
    end)

    it("raises on an unknown signal or a missing function", function()
      assert.has_error(function() neap.signal("NOSUCH", function() end) end)
      assert.has_error(function() neap.signal("USR1") end)
      assert.has_error(function() neap.signal({}, function() end) end)
    end)
  end)

  describe("neap.wait_signal()", function()
    it("returns the signal's name when it comes", function()
      run(function()
        local t = neap.task(function() return neap.wait_signal("HUP", { timeout = 5 }) end)
        neap.sleep(0.02)
        assert.is_true(os.execute("kill -HUP " .. neap.pid()))
        assert.same({ true, "HUP" }, { t:join { timeout = 5 } })
      end)
    end)

    it("times out with nil, 'timeout', 'timeout'", function()
      run(function()
        local t0 = neap.now()
        assert.same({ nil, "timeout", "timeout" }, { neap.wait_signal("HUP", { timeout = 0.05 }) })
        assert.is_true(neap.now() - t0 < 2)
      end)
    end)

    it("a cancelled wait leaves nothing behind", function()
      run(function()
        local t = neap.task(function() return neap.wait_signal("HUP") end)
        neap.sleep(0.01)
        t:cancel()
        local ok, err = t:join { timeout = 5 }
        assert.is_nil(ok)
        assert.truthy(tostring(err):find("cancelled", 1, true))
      end)
    end)
  end)

  describe("the binary with no handler", function()
    it("INT ends it with status 130 and its child is gone too", function()
      local rc, out, child = signal_script(SPAWNS_AND_SLEEPS, "INT")
      assert.equal(130, rc, out)
      assert.is_number(child, "the script did not start its child: " .. out)
      assert.is_false(out:find("not reached", 1, true) ~= nil)
      assert_gone(child)
    end)

    it("TERM ends it with status 143 and its child is gone too", function()
      local rc, out, child = signal_script(SPAWNS_AND_SLEEPS, "TERM")
      assert.equal(143, rc, out)
      assert.is_number(child, "the script did not start its child: " .. out)
      assert_gone(child)
    end)

    it("TERM and INT end a script stuck in a busy Lua loop (it never waits), children first", function()
      for sig, status in pairs { TERM = 143, INT = 130 } do
        local rc, out, child = signal_script([[
          local neap = require "neap"
          local p = assert(neap.spawn { "sleep", "30", stdout = "null", stderr = "null" })
          local f = io.open(arg[1], "w") f:write(p.pid, "\n") f:close()
          local x = 0
          while true do x = x + 1 end
        ]], sig)
        assert.equal(status, rc, out)
        assert.is_number(child, out)
        assert_gone(child)
      end
    end)

    it("a detached child is left running", function()
      local rc, out, child = signal_script([[
        local neap = require "neap"
        local p = assert(neap.spawn { "sleep", "30", detached = true,
                                      stdin = "null", stdout = "null", stderr = "null" })
        local f = io.open(arg[1], "w") f:write(p.pid, "\n") f:close()
        neap.sleep(30)
      ]], "TERM")
      assert.equal(143, rc, out)
      assert.is_number(child, out)
      os.execute("sleep 0.1")
      local st = proc_state(child)
      os.execute("kill -9 " .. child .. " 2>/dev/null")
      assert.truthy(st and st ~= "Z", "the detached child died")
    end)

    it("a TERM handler keeps it running; after stop() TERM ends it", function()
      local rc, out = signal_script([[
        local neap = require "neap"
        local got = false
        local w = neap.signal("TERM", function() got = true end)
        local f = io.open(arg[1], "w") f:write("1\n") f:close()
        while not got do neap.sleep(0.01) end
        print("handled TERM")
        io.stdout:flush()
        w:stop()
        local p = neap.spawn { "kill", "-TERM", tostring(neap.pid()) }
        p:wait()
        neap.sleep(5)
        print("not reached")
      ]], "TERM")
      assert.equal(143, rc, out)
      assert.equal("handled TERM\n", out)
    end)
  end)
end)
