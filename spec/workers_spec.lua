-- neap --workers N: a supervisor process starts N workers running the
-- script, restarts the ones that die (with a back-off), and passes TERM and
-- INT on to them; the workers share a port with { reuseport = true }.
local neap = require "neap"
local helpers = require "helpers"

local NEAP = helpers.NEAP

-- A free TCP (and UDP) port on 127.0.0.1, as the system picks one.
local function free_port()
  local s = assert(neap.listen("tcp", "127.0.0.1", 0))
  local _, port = s:address()
  s:close()
  return port
end

-- The worker script of most tests: answers each connection with its
-- worker id, its count and what NEAP_WORKER holds, then says "ready".
local SERVER = [[
local neap = require "neap"
local port = tonumber(arg[1])
local srv = assert(neap.listen("tcp", "127.0.0.1", port, { reuseport = true }))
local w = neap.worker
srv:serve(function(c)
  c:write(w.id .. " " .. w.count .. " " .. tostring(os.getenv("NEAP_WORKER")) .. "\n")
end)
-- EXTRA
neap.stdout:write("ready " .. w.id .. " " .. neap.pid() .. "\n")
]]

-- SERVER with 'extra' run before it says "ready"
local function server_with(extra)
  return (SERVER:gsub("%-%- EXTRA\n", function() return extra end))
end

-- start(src, n, ...) -> process of the supervisor (stdout and stderr piped),
-- script path: runs `neap --workers n script ...`.
local function start(src, n, ...)
  local path = helpers.tmpfile(src)
  local p = assert(neap.spawn { NEAP, "--workers", tostring(n), path, ... })
  return p, path
end

-- ready(p, n) -> { [id] = pid }: reads the "ready" lines of n workers.
local function ready(p, n, seen)
  seen = seen or {}
  local count = 0
  for _ in pairs(seen) do count = count + 1 end
  while count < n do
    local line = assert(p.stdout:read_line { timeout = 15 })
    local id, pid = line:match("^ready (%d+) (%d+)$")
    assert(id, "unexpected output: " .. line)
    if not seen[tonumber(id)] then count = count + 1 end
    seen[tonumber(id)] = tonumber(pid)
  end
  return seen
end

local function children(pid)
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local t = {}
  for c in s:gmatch("%d+") do t[#t + 1] = tonumber(c) end
  return t
end

-- The supervisor's CPU time (user + system) in clock ticks, from /proc/<pid>/stat.
local function cpu_ticks(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")   -- after the command name, which may hold spaces
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return tonumber(fields[12]) + tonumber(fields[13])   -- fields 14 and 15 of the line
end

local function ask(port)
  local c, err = neap.connect("tcp", "127.0.0.1", port, { timeout = 5 })
  if not c then return nil, err end
  local line, rerr = c:read_line { timeout = 5 }
  c:close()
  return line, rerr
end

-- Stops the supervisor (TERM) and returns its status, failing after 'limit' s.
local function stop(p, limit)
  p:kill("TERM")
  return p:wait { timeout = limit or 10, kill = "process" }
end

local function gone(pid)
  local st = helpers.proc_state(pid)
  return st == nil or st == "Z"
end

describe("neap --workers", function()
  it("starts N workers that share a reuseport port: 200 connections reach both", function()
    helpers.run(function()
      local port = free_port()
      local p, path = start(SERVER, 2, tostring(port))
      finally(function() os.remove(path) end)
      ready(p, 2)
      local counts = {}
      for _ = 1, 200 do
        local line = assert(ask(port))
        local id, count, env = line:match("^(%d) (%d) (%S+)$")
        assert.equal("2", count)
        assert.equal("nil", env)        -- NEAP_WORKER is not left to the script's children
        counts[id] = (counts[id] or 0) + 1
      end
      assert.is_true((counts["1"] or 0) > 0 and (counts["2"] or 0) > 0,
                     tostring(counts["1"]) .. " / " .. tostring(counts["2"]))
      assert.equal(2, #children(p.pid))
      assert.equal(0, (stop(p)))   -- the killed worker's replacement ended cleanly
      p:close()
    end, 60)
  end)

  it("replaces a worker killed with KILL within a second, and new connections keep succeeding", function()
    helpers.run(function()
      local port = free_port()
      local p, path = start(SERVER, 2, tostring(port))
      finally(function() os.remove(path) end)
      local pids = ready(p, 2)
      local victim = pids[1]
      for _ = 1, 20 do assert(ask(port)) end
      neap.sleep(1)   -- a worker that has run a second or more is replaced at once (no back-off)
      assert(os.execute("kill -KILL " .. victim))
      local killed = neap.now()
      while not gone(victim) do neap.sleep(0.001) end   -- its socket is closed: no connection lands there now
      -- new connections keep succeeding while the worker is replaced
      local failures, seen_new = {}, false
      local replaced_at
      local deadline = neap.now() + 15
      while neap.now() < deadline and not (replaced_at and seen_new) do
        local kids = children(p.pid)
        if not replaced_at and #kids == 2 then
          for _, k in ipairs(kids) do
            if k ~= pids[2] and k ~= victim then replaced_at = neap.now() end
          end
        end
        local line, err = ask(port)
        if not line then failures[#failures + 1] = tostring(err)
        elseif line:match("^1 ") and replaced_at then seen_new = true end
      end
      assert.same({}, failures)
      assert.truthy(replaced_at, "no new worker")
      assert.is_true(replaced_at - killed < 1, "replaced after " .. (replaced_at - killed) .. " s")
      assert.is_true(seen_new, "the new worker 1 never answered")
      assert.equal(0, (stop(p)))
      p:close()
    end, 60)
  end)

  it("logs a worker's end with its status to stderr", function()
    helpers.run(function()
      local port = free_port()
      local p, path = start(SERVER, 1, tostring(port))
      finally(function() os.remove(path) end)
      local pid = ready(p, 1)[1]
      assert(os.execute("kill -KILL " .. pid))
      ready(p, 1, {})            -- the new worker 1
      stop(p)
      local err = p.stderr:read_all { timeout = 5 }
      p:close()
      assert.truthy(err:find("neap: worker 1 (pid " .. pid .. ") was killed by signal KILL; restarting", 1, true), err)
    end, 60)
  end)

  it("passes TERM on to every worker; they stop as their script chooses and the supervisor exits 0", function()
    helpers.run(function()
      local port = free_port()
      -- worker 1 handles TERM itself (and takes its time); worker 2 takes the default exit
      local src = server_with [[
if neap.worker.id == 1 then
  neap.signal("TERM", function()
    srv:close()
    neap.sleep(0.2)
    neap.stdout:write("bye 1\n")
    os.exit(0)
  end)
end
]]
      local p, path = start(src, 2, tostring(port))
      finally(function() os.remove(path) end)
      local pids = ready(p, 2)
      local t0 = neap.now()
      p:kill("TERM")
      local code, sig = p:wait { timeout = 5, kill = "process" }
      assert.is_true(neap.now() - t0 < 5)
      assert.equal(0, code, tostring(sig))
      assert.equal("bye 1", p.stdout:read_line { timeout = 5 })
      for _, pid in pairs(pids) do assert.is_true(gone(pid), "worker " .. pid .. " still there") end
      p:close()
    end, 60)
  end)

  it("passes INT on too; a worker that ends badly makes the status 1", function()
    helpers.run(function()
      local port = free_port()
      local src = server_with [[
neap.signal("INT", function() os.exit(neap.worker.id == 2 and 3 or 0) end)
]]
      local p, path = start(src, 2, tostring(port))
      finally(function() os.remove(path) end)
      ready(p, 2)
      p:kill("INT")
      local code = p:wait { timeout = 5, kill = "process" }
      assert.equal(1, code)
      local err = p.stderr:read_all { timeout = 5 }
      assert.truthy(err:find("worker 2 %(pid %d+%) exited with status 3"), err)
      p:close()
    end, 60)
  end)

  it("ends the workers when the supervisor is killed (they are sent TERM)", function()
    helpers.run(function()
      local port = free_port()
      local p, path = start(SERVER, 2, tostring(port))
      finally(function() os.remove(path) end)
      local pids = ready(p, 2)
      p:kill("KILL")
      p:wait { timeout = 10 }
      p:close()
      local deadline = neap.now() + 10
      for _, pid in pairs(pids) do
        while not gone(pid) and neap.now() < deadline do neap.sleep(0.01) end
        assert.is_true(gone(pid), "worker " .. pid .. " outlived its supervisor")
      end
    end, 60)
  end)

  it("restarts a script that fails at start-up with a back-off, not in a busy loop", function()
    helpers.run(function()
      local p, path = start('error("fails at start")', 2)
      finally(function() os.remove(path) end)
      neap.sleep(3)
      local ticks = cpu_ticks(p.pid)
      p:kill("TERM")
      local code = p:wait { timeout = 10, kill = "process" }
      local err = p.stderr:read_all { timeout = 5 }
      p:close()
      -- 1: a worker's last end (a failure) was not clean; 0 when TERM found
      -- every worker alive in its start-up (then each ended by the TERM
      -- passed on, a clean end): seen in CI under ASan, where a start-up
      -- takes long enough for both to be alive at once
      assert.is_true(code == 1 or code == 0, "exit status " .. tostring(code))
      local starts = 0
      for _ in err:gmatch("fails at start") do starts = starts + 1 end
      -- back-off 0.1, 0.2, 0.4, 0.8, then 1 s: about 7 starts per worker in 3 s; a busy loop makes hundreds
      assert.is_true(starts >= 4 and starts <= 24, starts .. " starts in 3 s")
      assert.truthy(err:find("worker 1 %(pid %d+%) exited with status 1; restarting in 1%.0 s"), err)
      -- the supervisor itself stays nearly idle: under 0.5 s of CPU in 3 s (a busy loop takes ~3 s)
      assert.is_true(ticks < 50, ticks .. " ticks of CPU")
    end, 60)
  end)

  it("lets the workers share a UDP port with reuseport", function()
    helpers.run(function()
      local port = free_port()
      local src = [[
local neap = require "neap"
local u = assert(neap.udp { host = "127.0.0.1", port = tonumber(arg[1]), reuseport = true })
neap.stdout:write("ready " .. neap.worker.id .. " " .. neap.pid() .. "\n")
while true do
  local d, h, p = u:recv()
  if not d then break end
  u:send(tostring(neap.worker.id), h, p)
end
]]
      local p, path = start(src, 2, tostring(port))
      finally(function() os.remove(path) end)
      ready(p, 2)
      local counts = {}
      for i = 1, 100 do
        local c = assert(neap.udp())
        assert(c:send("ping " .. i, "127.0.0.1", port))
        local who = assert(c:recv { timeout = 5 })
        counts[who] = (counts[who] or 0) + 1
        c:close()
      end
      assert.is_true((counts["1"] or 0) > 0 and (counts["2"] or 0) > 0,
                     tostring(counts["1"]) .. " / " .. tostring(counts["2"]))
      assert.equal(0, (stop(p)))
      p:close()
    end, 60)
  end)

  it("gives neap.worker only in a worker, passes the other options on, and checks its argument", function()
    local out, rc = helpers.neap("-e 'print(require(\"neap\").worker)'")
    assert.equal(0, rc)
    assert.equal("nil\n", out)
    out, rc = helpers.neap("--workers=1 -e 'local w = require(\"neap\").worker print(w.id, w.count)'")
    assert.equal(0, rc, out)
    assert.truthy(out:match("^1\t1\nneap: worker 1 %(pid %d+%) exited with status 0\n$"), out)
    out, rc = helpers.neap("--workers=2 -e 'os.exit(0)'")
    assert.equal(0, rc, out)           -- an end of its own with status 0: logged, not restarted
    assert.truthy(out:match("^neap: worker %d %(pid %d+%) exited with status 0\nneap: worker %d %(pid %d+%) exited with status 0\n$"), out)
    for _, bad in ipairs { "--workers 0", "--workers=x", "--workers 1025", "--workers" } do
      out, rc = helpers.neap(bad .. " -e 'print(1)'")
      assert.equal(1, rc, bad)
      assert.truthy(out:find("neap: '--workers' needs a number from 1 to 1024 or 'auto'", 1, true), out)
    end
    -- the supervisor compiles the script first: one message, no worker started
    out, rc = helpers.neap("--workers 2 /nonexistent/script.lua")
    assert.equal(1, rc)
    assert.equal("neap: cannot open /nonexistent/script.lua: No such file or directory\n", out)
    local bad = helpers.tmpfile("x = = 1")
    out, rc = helpers.neap("--workers 2 " .. bad)
    os.remove(bad)
    assert.equal(1, rc)
    assert.truthy(out:match("^neap: [^\n]*: unexpected symbol near '='\n$"), out)
    out, rc = helpers.neap("--workers 2 -e 'x = = 1'")
    assert.equal(1, rc)
    assert.truthy(out:match("^neap: %(command line%):1: unexpected symbol near '='\n$"), out)
    out, rc = helpers.neap("--workers 2")
    assert.equal(1, rc)
    assert.truthy(out:find("neap: '--workers' needs a script (or -e code)", 1, true), out)
    out, rc = helpers.neap("--workers auto -e 'local w = require(\"neap\").worker if w.id == 1 then print(w.count) end'")
    assert.equal(0, rc, out)
    local nproc = helpers.sh("nproc")
    assert.truthy(("\n" .. out):find("\n" .. nproc, 1, true), out)   -- (the lines of the two processes may interleave)
  end)
end)
