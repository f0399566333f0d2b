-- Shared by the specs: run a body as a task with a timeout, count calls,
-- check that a test leaves no handle open, and run the neap binary.
local neap = require "neap"
local core = require "neap.core"

local helpers = {}

--- the build folder under test (make asan sets NEAP_BUILD=build-asan)
helpers.BUILD = os.getenv("NEAP_BUILD") or "build"
helpers.NEAP = "./" .. helpers.BUILD .. "/neap"
helpers.EMBED = "./" .. helpers.BUILD .. "/embed"

--- helpers.LUA54: a stock lua5.4 command that finds this build's neap module
helpers.LUA54 = "LUA_CPATH='./" .. helpers.BUILD .. "/lib/?.so' LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' " ..
  (os.getenv("NEAP_PRELOAD") and ("LD_PRELOAD='" .. os.getenv("NEAP_PRELOAD") .. "' ASAN_OPTIONS=detect_leaks=0 ") or "") ..
  "lua5.4"

--- helpers.VALGRIND: under make valgrind (NEAP_VALGRIND), the memcheck
-- command a spec puts before a C program it starts, as the Makefile's VG
-- (--fair-sched=yes: see there); "" otherwise. helpers.VALGRIND_NOLEAK: the
-- same without the leak check.
local VG_BASE = "valgrind -q --fair-sched=yes --error-exitcode=99 --suppressions=spec/valgrind.supp "
helpers.VALGRIND = os.getenv("NEAP_VALGRIND") and
  (VG_BASE .. "--leak-check=full --errors-for-leak-kinds=definite,indirect ") or ""
helpers.VALGRIND_NOLEAK = os.getenv("NEAP_VALGRIND") and VG_BASE or ""

-- make gcstress (NEAP_GC_STRESS) runs a full collection at every task
-- switch, of a heap that has grown with every spec busted loaded before:
-- a body of a few hundred switches took 4 s there in one run and over 20 s
-- in another (spec 19-03, CI of 2026-12-05). The bound there is 4 times
-- longer; it is still a bound, so a hang still fails.
local SLOW = os.getenv("NEAP_GC_STRESS") and 4 or 1

--- helpers.run(fn [, timeout]) -> fn's results: fn runs as a task; the test
-- fails if it raises or takes longer than timeout seconds (default 20;
-- 4 times that under NEAP_GC_STRESS).
function helpers.run(fn, timeout)
  local limit = (timeout or 20) * SLOW
  return neap.run(function()
    local t = neap.task(fn)
    local r = table.pack(t:join { timeout = limit })
    if r[1] then return table.unpack(r, 2, r.n) end
    if r[3] == "timeout" then
      t:cancel()
      error("test body timed out after " .. limit .. " s", 0)
    end
    error(r[2], 0)
  end)
end

--- helpers.expect_calls(n, fn) -> wrapped fn, check(): check() fails unless
-- the wrapper was called exactly n times.
function helpers.expect_calls(n, fn)
  local calls = 0
  local function wrapped(...)
    calls = calls + 1
    if fn then return fn(...) end
  end
  return wrapped, function()
    assert(calls == n, string.format("expected %d call(s), got %d", n, calls))
  end
end

--- helpers.leakcheck(): inside a describe, fails each test that leaves a
-- handle open (neap.core._handle_count, as luv's tap does with uv.walk).
function helpers.leakcheck()
  local busted = require "busted"
  local before_each, after_each = busted.before_each, busted.after_each
  local before
  before_each(function() before = core._handle_count() end)
  after_each(function()
    local now = core._handle_count()
    assert(now <= before, string.format("%d handle(s) left open by the test", now - before))
  end)
end

--- helpers.sh(cmd) -> output, exit status: runs a shell command, waiting.
function helpers.sh(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"@rc=$?\"")
  local out = f:read("a")
  f:close()
  local body, rc = out:match("^(.*)@rc=(%d+)%s*$")
  return body, tonumber(rc)
end

--- helpers.neap(args [, stdin_redirect]) -> output (stdout+stderr), status
function helpers.neap(args, redirect)
  return helpers.sh(helpers.NEAP .. " " .. args .. " " .. (redirect or "</dev/null"))
end

--- helpers.tmpfile(content) -> path of a new temporary file holding content
function helpers.tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content or "")
  f:close()
  return path
end

--- helpers.fd_count() -> the host's open descriptors. The pipe of io.popen
-- itself is left out: while ls runs, the host may still hold both its ends.
function helpers.fd_count()
  local p = io.popen("me=$(readlink /proc/$$/fd/1); ls -l /proc/" .. neap.pid() ..
                     "/fd | grep -c -v -F -e \"$me\" -e total")
  local n = tonumber(p:read("a"):match("%d+"))
  p:close()
  return n
end

--- helpers.children() -> the host's live or zombie children, read without spawning one
function helpers.children()
  local f = io.open("/proc/" .. neap.pid() .. "/task/" .. neap.pid() .. "/children")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local n = 0
  for _ in s:gmatch("%d+") do n = n + 1 end
  return n
end

--- helpers.not_above(before, now, what): a leak shows as growth; handles of
-- other specs closing late may only lower the count.
function helpers.not_above(before, now, what)
  assert(now <= before, string.format("%d %s more than before (%d -> %d)", now - before, what, before, now))
end

--- helpers.proc_state(pid) -> the state letter of a process ("R", "S", "Z" ...), or nil once gone
function helpers.proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s:match("\nState:%s*(%a)")
end

--- helpers.tmpdir() -> a new temporary directory
function helpers.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. d))
  return d
end

--- helpers.read_file(path) -> its content
function helpers.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- helpers.write_file(path, s)
function helpers.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- helpers.server([handler] [, opts]) -> server, port [, task]: a TCP
-- server on 127.0.0.1 at a free port (opts as neap.listen's, e.g.
-- { backlog = 1024 }); with a handler, srv:serve(handler) runs it and its
-- task is the third value.
function helpers.server(handler, opts)
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0, opts))
  local _, port = srv:address()
  if handler then return srv, port, srv:serve(handler) end
  return srv, port
end

--- helpers.rss_kb() -> this process's resident memory in kB (VmRSS)
function helpers.rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

--- helpers.pair() -> server-side stream, client-side stream: a connected
-- TCP pair on 127.0.0.1 (call inside a task); the server is closed.
function helpers.pair()
  local srv, port = helpers.server()
  local accepted
  local t = neap.task(function() accepted = assert(srv:accept { timeout = 5 }) end)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  assert(t:join { timeout = 5 })
  srv:close()
  return accepted, c
end

return helpers
