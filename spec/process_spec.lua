-- Child processes: neap.spawn, wait, kill, communicate, stdio choices,
-- reaping and descriptors (issue #5).
local neap = require "neap"
local core = require "neap.core"
local helpers = require "helpers"
local fd_count, children, not_above, proc_state, tmpdir, read_file = helpers.fd_count, helpers.children, helpers.not_above, helpers.proc_state, helpers.tmpdir, helpers.read_file
local run, sh = helpers.run, helpers.sh





-- Waits (inside a task) until 'pid' is gone; returns its last state if it stays.
local function gone(pid, seconds)
  local deadline = neap.now() + (seconds or 5)
  repeat
    local st = proc_state(pid)
    if st == nil then return true end
    neap.sleep(0.02)
  until neap.now() > deadline
  return false, proc_state(pid)
end

-- An argv spec with every stdio on /dev/null (a child with no pipes to close).
local function quiet(spec)
  spec.stdin, spec.stdout, spec.stderr = "null", "null", "null"
  return spec
end



-- Reads a child's stdout and stderr together (so neither pipe can fill up).
local function read_both(p)
  local t = neap.task(function() return p.stderr:read_all { timeout = 30 } end)
  local out = p.stdout:read_all { timeout = 30 }
  local _, err = t:join()
  return out, err
end

describe("neap.spawn", function()
  helpers.leakcheck()

  describe("argv", function()
    it("passes each argument unchanged, with no shell in between", function()
      run(function()
        local args = { "a b", "$HOME", "x;y", "'q'", "*", "" }
        local p = assert(neap.spawn { "printf", "[%s]\n", table.unpack(args) })
        local out = p.stdout:read_all { timeout = 5 }
        assert.equal("[a b]\n[$HOME]\n[x;y]\n['q']\n[*]\n[]\n", out)
        assert.same({ 0, nil }, { p:wait { timeout = 5 } })
        p:close()
      end)
    end)

    it("p.pid is the child's process id", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "echo $$" })
        assert.equal("integer", math.type(p.pid))
        assert.equal(tostring(p.pid) .. "\n", p.stdout:read_all { timeout = 5 })
        p:wait()
        p:close()
      end)
    end)

    it("raises on a bad spec, naming spawn", function()
      assert.has_error(function() neap.spawn("ls -l") end)
      assert.has_error(function() neap.spawn {} end)
      assert.has_error(function() neap.spawn { "ls", 42 } end)
      assert.has_error(function() neap.spawn { "ls", cwd = 1 } end)
      local ok, err = pcall(neap.spawn, { "ls", 42 })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("'spawn'", 1, true), err)
    end)

    it("raises on a bad env or stdio value and leaves no pipe open", function()
      local handles = core._handle_count()
      assert.has_error(function() neap.spawn { "ls", env = "A=1" } end)
      assert.has_error(function() neap.spawn { "ls", env = { [1] = "A=1" } } end)
      assert.has_error(function() neap.spawn { "ls", stdout = "bogus" } end)
      assert.has_error(function() neap.spawn { "ls", stderr = {} } end)
      local ok, err = pcall(neap.spawn, { "ls", stdout = "bogus" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("'spawn'", 1, true), err)
      assert.equal(handles, core._handle_count())
    end)
  end)

  describe("env and cwd", function()
    it("env = {...} replaces the whole environment", function()
      run(function()
        local p = assert(neap.spawn { "/usr/bin/env", env = { NEAP_A = "1", NEAP_B = "two words" } })
        local lines = {}
        for l in p.stdout:lines() do lines[#lines + 1] = l end
        table.sort(lines)
        assert.same({ "NEAP_A=1", "NEAP_B=two words" }, lines)
        assert.equal(0, p:wait())
        p:close()
      end)
    end)

    it("env = {inherit=true, VAR=...} extends and overrides the parent's", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", 'printf "%s|%s|%s" "$NEAP_X" "$PATH" "$HOME"',
                                      env = { inherit = true, NEAP_X = "x", HOME = "/nowhere" } })
        assert.equal("x|" .. os.getenv("PATH") .. "|/nowhere", p.stdout:read_all { timeout = 5 })
        assert.equal(0, p:wait())
        p:close()
      end)
    end)

    it("a program name is looked up in the PATH of the env given, as in Node.js #novalgrind", function()
      run(function()
        local d = tmpdir()
        local f = assert(io.open(d .. "/neap-only-here", "w"))
        f:write("#!/bin/sh\necho found \"$@\"\n")
        f:close()
        os.execute("chmod +x " .. d .. "/neap-only-here")
        assert.same({ nil, "spawn neap-only-here: no such file or directory", "ENOENT" }, { neap.spawn { "neap-only-here" } })
        local p = assert(neap.spawn { "neap-only-here", "a", env = { PATH = "/nonexistent:" .. d } })
        assert.equal("found a\n", p.stdout:read_all { timeout = 5 })
        assert.equal(0, p:wait())
        p:close()
        p = assert(neap.spawn { "neap-only-here", "b", env = { inherit = true, PATH = d } })
        assert.equal("found b\n", p.stdout:read_all { timeout = 5 })
        assert.equal(0, p:wait())
        p:close()
        -- a PATH without the program: ENOENT, even though neap's own PATH has it
        assert.same({ nil, "spawn sh: no such file or directory", "ENOENT" }, { neap.spawn { "sh", env = { PATH = d } } })
        -- found but not executable: EACCES
        os.execute("chmod -x " .. d .. "/neap-only-here")
        local _, _, code = neap.spawn { "neap-only-here", env = { PATH = d } }
        assert.equal("EACCES", code)
        -- a relative PATH entry is looked up from cwd, where the child runs
        os.execute("chmod +x " .. d .. "/neap-only-here")
        p = assert(neap.spawn { "neap-only-here", "c", cwd = d, env = { PATH = "." } })
        assert.equal("found c\n", p.stdout:read_all { timeout = 5 })
        p:wait() p:close()
        -- an env without PATH: neap's own PATH
        p = assert(neap.spawn { "sh", "-c", "echo ok", env = { X = "1" } })
        assert.equal("ok\n", p.stdout:read_all { timeout = 5 })
        p:wait() p:close()
        os.remove(d .. "/neap-only-here")
        os.remove(d)
      end)
    end)

    it("cwd = dir runs the child there", function()
      run(function()
        local d = tmpdir()
        local real = sh("cd " .. d .. " && pwd -P"):gsub("\n$", "")
        local p = assert(neap.spawn { "sh", "-c", "pwd -P", cwd = d })
        assert.equal(real .. "\n", p.stdout:read_all { timeout = 5 })
        assert.equal(0, p:wait())
        p:close()
        os.remove(d)
      end)
    end)

    it("detached = true starts the child in a session of its own", function()
      run(function()
        -- field 6 of /proc/<pid>/stat is the session id
        local function session(pid)
          local f = assert(io.open("/proc/" .. pid .. "/stat"))
          local s = f:read("a")
          f:close()
          local _, _, sid = s:match("^%d+ %b() %a (%-?%d+) (%-?%d+) (%-?%d+)")
          return tonumber(sid)
        end
        local mine = session(neap.pid())
        local p = assert(neap.spawn(quiet { "sleep", "5", detached = true }))
        local q = assert(neap.spawn(quiet { "sleep", "5" }))
        assert.equal(p.pid, session(p.pid))
        assert.equal(mine, session(q.pid))
        p:kill("KILL") q:kill("KILL")
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
        assert.same({ nil, "KILL" }, { q:wait { timeout = 5 } })
      end)
    end)

    it("p:unref() lets the binary end while the child runs; p:ref() undoes it; wait still waits", function()
      local d = tmpdir()
      local function script(body) return helpers.tmpfile("local neap = require 'neap'\n" .. body) end
      -- unref'd: the binary ends at once; the child goes on and writes its file later
      local s1 = script(([[
        local p = neap.spawn { "sh", "-c", "sleep 2; echo late > %s/unref", stdin = "null", stdout = "null", stderr = "null" }
        assert(p:unref() == p)
      ]]):format(d))
      local out, rc = helpers.neap(s1)
      assert.equal(0, rc, out)
      assert.is_nil(io.open(d .. "/unref"))
      -- unref then ref: the binary waits for the child
      local s2 = script(([[
        local p = neap.spawn { "sh", "-c", "sleep 0.3; echo done > %s/ref", stdin = "null", stdout = "null", stderr = "null" }
        p:unref():ref()
      ]]):format(d))
      out, rc = helpers.neap(s2)
      assert.equal(0, rc, out)
      assert.equal("done\n", read_file(d .. "/ref"))
      -- p:wait() on an unref'd child keeps the loop alive until it exits
      local s3 = script([[
        local p = neap.spawn { "sh", "-c", "sleep 0.2; exit 3", stdin = "null", stdout = "null", stderr = "null" }
        p:unref()
        print(p:wait { timeout = 5 })
      ]])
      out, rc = helpers.neap(s3)
      assert.equal(0, rc, out)
      assert.equal("3\tnil\n", out)
      os.remove(s1) os.remove(s2) os.remove(s3)
      os.execute("rm -rf " .. d)
    end)

    it("a cwd that does not exist returns nil, message, 'ENOENT' #novalgrind", function()
      run(function()
        local p, err, code = neap.spawn { "true", cwd = "/nonexistent/neap/dir" }
        assert.is_nil(p)
        assert.equal("string", type(err))
        assert.equal("ENOENT", code)
      end)
    end)
  end)

  describe("stdio", function()
    it("defaults to pipes: p.stdin, p.stdout and p.stderr are streams", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "read x; echo \"out:$x\"; echo \"err:$x\" >&2" })
        assert.equal("pipe", p.stdin:kind())
        p.stdin:write("hi\n")
        p.stdin:close()
        local out, err = read_both(p)
        assert.equal("out:hi\n", out)
        assert.equal("err:hi\n", err)
        assert.equal(0, p:wait())
        p:close()
      end)
    end)

    it("\"null\" gives the child /dev/null and the process no stream", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "cat; echo lost; echo lost >&2",
                                      stdin = "null", stdout = "null", stderr = "null" })
        assert.is_nil(p.stdin)
        assert.is_nil(p.stdout)
        assert.is_nil(p.stderr)
        assert.same({ 0, nil }, { p:wait { timeout = 5 } })
        -- stdin null reads EOF at once
        p = assert(neap.spawn { "wc", "-c", stdin = "null" })
        assert.equal("0", p.stdout:read_all { timeout = 5 }:match("%d+"))
        p:wait()
        p:close()
      end)
    end)

    it("\"inherit\" shares the host's descriptor", function()
      local path = helpers.tmpfile([[
        local neap = require "neap"
        local p = assert(neap.spawn { "sh", "-c", "echo to-stdout; echo to-stderr >&2",
                                      stdout = "inherit", stderr = "inherit" })
        assert(p.stdout == nil and p.stderr == nil)
        assert(p:wait() == 0)
      ]])
      local cmd = "(" .. helpers.NEAP .. " " .. path .. " </dev/null "
      local out, rc = sh(cmd .. "2>/dev/null)")
      assert.equal(0, rc)
      assert.equal("to-stdout\n", out)
      out, rc = sh(cmd .. ">/dev/null)")
      assert.equal(0, rc)
      assert.equal("to-stderr\n", out)
      os.remove(path)
    end)

    it("an fd number is passed to the child", function()
      run(function()
        local d = tmpdir()
        local f = assert(neap.open(d .. "/out", "w"))
        local p = assert(neap.spawn { "echo", "via fd", stdout = f:fileno() })
        assert.equal(0, p:wait { timeout = 5 })
        p:close()
        f:close()
        assert.equal("via fd\n", read_file(d .. "/out"))
        local g = assert(neap.open(d .. "/out"))
        p = assert(neap.spawn { "tr", "a-z", "A-Z", stdin = g:fileno() })
        assert.equal("VIA FD\n", p.stdout:read_all { timeout = 5 })
        p:wait()
        p:close()
        g:close()
        os.remove(d .. "/out") os.remove(d)
      end)
    end)

    it("a neap stream (a TCP connection) can be the child's stdin and stdout", function()
      run(function()
        local a, b = helpers.pair()
        -- the child reads the socket and answers on it
        local p = assert(neap.spawn { "sh", "-c", "read x; echo \"got $x\"", stdin = a, stdout = a })
        assert.is_nil(p.stdin)
        assert.is_nil(p.stdout)
        b:write("ping\n")
        assert.equal("got ping", b:read_line { timeout = 5 })
        assert.equal(0, p:wait { timeout = 5 })
        p:close()
        a:close() b:close()
      end)
    end)

    it("one child's stdout stream can be another child's stdin", function()
      run(function()
        local p1 = assert(neap.spawn { "printf", "one\ntwo\n", stdin = "null" })
        local p2 = assert(neap.spawn { "tr", "a-z", "A-Z", stdin = p1.stdout })
        assert.equal("ONE\nTWO\n", p2.stdout:read_all { timeout = 5 })
        assert.equal(0, p1:wait { timeout = 5 })
        assert.equal(0, p2:wait { timeout = 5 })
        p1:close() p2:close()
      end)
    end)

    it("a neap.open file stream can be the child's stdin", function()
      run(function()
        local path = helpers.tmpfile("file\ncontent\n")
        local f = assert(neap.open(path))
        local p = assert(neap.spawn { "wc", "-l", stdin = f })
        assert.equal("2", p.stdout:read_all { timeout = 5 }:match("%d+"))
        p:wait()
        p:close()
        f:close()
        os.remove(path)
      end)
    end)

    it("{file=path} writes (truncating), {file=, mode=\"a\"} appends, and as stdin reads", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/f"
        local fh = io.open(path, "w") fh:write("old content that is long\n") fh:close()
        local p = assert(neap.spawn { "echo", "one", stdout = { file = path } })
        assert.equal(0, p:wait { timeout = 5 })
        p:close()
        assert.equal("one\n", read_file(path))
        p = assert(neap.spawn { "sh", "-c", "echo two; echo err >&2",
                                stdout = { file = path, mode = "a" }, stderr = { file = d .. "/e" } })
        assert.equal(0, p:wait { timeout = 5 })
        p:close()
        assert.equal("one\ntwo\n", read_file(path))
        assert.equal("err\n", read_file(d .. "/e"))
        p = assert(neap.spawn { "tr", "a-z", "A-Z", stdin = { file = path } })
        assert.equal("ONE\nTWO\n", p.stdout:read_all { timeout = 5 })
        p:wait()
        p:close()
        os.remove(path) os.remove(d .. "/e") os.remove(d)
      end)
    end)

    it("{file=} that cannot be opened returns nil, message, code and spawns nothing", function()
      run(function()
        local handles = core._handle_count()
        local p, err, code = neap.spawn { "cat", stdin = { file = "/nonexistent/neap/in" } }
        assert.is_nil(p)
        assert.truthy(err:find("/nonexistent/neap/in", 1, true), err)
        assert.equal("ENOENT", code)
        p, err, code = neap.spawn { "cat", stdout = { file = "/nonexistent/neap/out" } }
        assert.is_nil(p)
        assert.equal("ENOENT", code)
        assert.equal(handles, core._handle_count())
      end)
    end)
  end)

  describe(":wait()", function()
    it("returns the exit code and nil", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sh", "-c", "exit 3" }))
        assert.same({ 3, nil }, { p:wait { timeout = 5 } })
        p = assert(neap.spawn(quiet { "true" }))
        assert.same({ 0, nil }, { p:wait { timeout = 5 } })
      end)
    end)

    it("times out with nil, 'timeout', 'timeout' and the child goes on", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sleep", "10" }))
        assert.same({ nil, "timeout", "timeout" }, { p:wait { timeout = 0.05 } })
        assert.truthy(proc_state(p.pid))
        assert.equal("running", p:status())
        p:kill("KILL")
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
      end)
    end)

    it("after the child is gone returns at once, any number of times", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sh", "-c", "exit 7" }))
        assert.same({ 7, nil }, { p:wait { timeout = 5 } })
        neap.sleep(0.05)
        for _ = 1, 5 do
          -- a zero timeout would fail with "timeout" if wait had to park
          assert.same({ 7, nil }, { p:wait { timeout = 0 } })
        end
        assert.equal("exited", p:status())
      end)
    end)

    it("wakes every task that waits on the same child", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sh", "-c", "sleep 0.1; exit 4" }))
        local ts = {}
        for i = 1, 3 do ts[i] = neap.task(function() return p:wait { timeout = 5 } end) end
        for i = 1, 3 do assert.same({ true, 4, nil }, { ts[i]:join() }) end
      end)
    end)
  end)

  describe(":kill()", function()
    it("sends TERM by default and wait reports the signal by name", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sleep", "10" }))
        assert.is_true(p:kill())
        assert.same({ nil, "TERM" }, { p:wait { timeout = 5 } })
        assert.equal("signalled", p:status())
      end)
    end)

    it("takes names (with or without SIG, any case) and numbers", function()
      run(function()
        for _, case in ipairs { { "KILL", "KILL" }, { "SIGUSR1", "USR1" }, { "int", "INT" },
                                { 9, "KILL" }, { 15, "TERM" }, { 1, "HUP" } } do
          local p = assert(neap.spawn(quiet { "sleep", "10" }))
          assert.is_true(p:kill(case[1]))
          assert.same({ nil, case[2] }, { p:wait { timeout = 5 } }, tostring(case[1]))
        end
      end)
    end)

    it("takes 15.0 as 15 and raises on 1.5 or a non-signal value (1.5 used to send signal 0)", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sleep", "10" }))
        local function err(f) local ok, e = pcall(f) assert.is_false(ok) return e end
        assert.truthy(err(function() p:kill(1.5) end):find("bad argument #2 to 'kill' (no signal 1.5)", 1, true))
        assert.truthy(err(function() p:kill({}) end):find("bad argument #2 to 'kill' (signal name or number expected)", 1, true))
        assert.equal(9, neap.signum(9.0))
        assert.truthy(err(function() neap.signum(1.5) end):find("bad argument #1 to 'signum' (no signal 1.5)", 1, true))
        assert.is_true(p:kill(15.0))
        assert.same({ nil, "TERM" }, { p:wait { timeout = 5 } })
      end)
    end)

    it("returns nil, message, 'ESRCH' once the child is gone", function()
      run(function()
        local p = assert(neap.spawn(quiet { "true" }))
        p:wait { timeout = 5 }
        local ok, err, code = p:kill("TERM")
        assert.is_nil(ok)
        assert.equal("string", type(err))
        assert.equal("ESRCH", code)
      end)
    end)

    it("raises on an unknown signal", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sleep", "10" }))
        assert.has_error(function() p:kill("NOSUCHSIG") end)
        p:kill("KILL")
        p:wait()
      end)
    end)
  end)

  describe("a child killed by a signal", function()
    it("reports the signal it died of, sent by itself", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sh", "-c", "kill -USR2 $$; sleep 5" }))
        assert.same({ nil, "USR2" }, { p:wait { timeout = 5 } })
        p = assert(neap.spawn(quiet { "sh", "-c", "kill -SEGV $$; sleep 5" }))
        assert.same({ nil, "SEGV" }, { p:wait { timeout = 5 } })
      end)
    end)

    it("reports a signal sent from outside neap", function()
      run(function()
        local p = assert(neap.spawn(quiet { "sleep", "10" }))
        assert.is_true(os.execute("kill -KILL " .. p.pid))
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
      end)
    end)
  end)

  describe("a program that cannot start #novalgrind", function()
    it("returns nil, message, 'ENOENT' when it does not exist", function()
      run(function()
        for _, prog in ipairs { "neap-no-such-program", "/nonexistent/neap/prog" } do
          local p, err, code = neap.spawn { prog }
          assert.is_nil(p)
          assert.equal("spawn " .. prog .. ": no such file or directory", err)
          assert.equal("ENOENT", code)
        end
      end)
    end)

    it("returns nil, message, 'EACCES' when it is not executable", function()
      run(function()
        local path = helpers.tmpfile("#!/bin/sh\necho should not run\n")
        os.execute("chmod 644 " .. path)
        local p, err, code = neap.spawn { path }
        assert.is_nil(p)
        assert.equal("spawn " .. path .. ": permission denied", err)
        assert.equal("EACCES", code)
        os.remove(path)
      end)
    end)

    it("returns nil, 'exec format error', 'ENOEXEC' for an executable that is not a program", function()
      run(function()
        local path = helpers.tmpfile("echo no shebang line\n")
        os.execute("chmod 755 " .. path)
        assert.same({ nil, "spawn " .. path .. ": exec format error", "ENOEXEC" }, { neap.spawn { path } })
        os.remove(path)
      end)
    end)

    it("leaks no descriptor and leaves no child behind", function()
      run(function()
        neap.spawn { "true" }:wait()   -- libuv opens what it keeps on the first spawn
        collectgarbage() collectgarbage()
        neap.sleep(0.02)
        local fds, kids = fd_count(), children()
        for _ = 1, 200 do assert.is_nil(neap.spawn { "/nonexistent/neap/prog" }) end
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        not_above(fds, fd_count(), "descriptor(s)")
        not_above(kids, children(), "child(ren)")
      end)
    end)
  end)

  describe(":communicate()", function()
    it("writes the input and returns out, err, code, signal", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "tr a-z A-Z; echo done >&2; exit 2" })
        assert.same({ "HELLO\n", "done\n", 2, nil }, { p:communicate("hello\n", { timeout = 5 }) })
        p:close()
      end)
    end)

    it("with no input closes the child's stdin", function()
      run(function()
        local p = assert(neap.spawn { "cat" })
        assert.same({ "", "", 0, nil }, { p:communicate(nil, { timeout = 5 }) })
        p:close()
      end)
    end)

    local function fifty_mb()
      local chunk = {}
      for i = 1, 4096 do chunk[i] = string.format("%07d\n", i) end
      local data = table.concat(chunk):rep(50 * 1024 * 1024 // (4096 * 8))
      assert.equal(50 * 1024 * 1024, #data)
      return data
    end

    it("moves 50 MB each way through cat without a deadlock #load", function()
      run(function()
        local data = fifty_mb()
        local p = assert(neap.spawn { "cat" })
        local out, err, code, sig = p:communicate(data, { timeout = 100 })
        assert.same({ 0, nil, "" }, { code, sig, err })
        assert.equal(#data, #out)
        assert.is_true(out == data, "stdout differs")
        p:close()
      end, 120)
    end)

    it("moves 50 MB in and 50 MB out on stderr without a deadlock #load", function()
      run(function()
        local data = fifty_mb()
        local p = assert(neap.spawn { "sh", "-c", "cat >&2" })
        local out, err, code, sig = p:communicate(data, { timeout = 100 })
        assert.same({ 0, nil, "" }, { code, sig, out })
        assert.equal(#data, #err)
        assert.is_true(err == data, "stderr differs")
        p:close()
      end, 120)
    end)

    it("takes a neap stream as input", function()
      run(function()
        local a, b = helpers.pair()
        neap.task(function()
          for i = 1, 100 do b:write("line ", i, "\n") end
          b:close()
        end)
        local p = assert(neap.spawn { "wc", "-l" })
        local out, _, code = p:communicate(a, { timeout = 5 })
        assert.equal("100", out:match("%d+"))
        assert.equal(0, code)
        p:close()
        a:close()
      end)
    end)

    it("takes a file descriptor as input", function()
      run(function()
        local path = helpers.tmpfile(("abc\n"):rep(1000))
        local f = assert(neap.open(path))
        local p = assert(neap.spawn { "wc", "-c" })
        local out, _, code = p:communicate(f:fileno(), { timeout = 5 })
        assert.equal("4000", out:match("%d+"))
        assert.equal(0, code)
        p:close()
        f:close()
        os.remove(path)
      end)
    end)

    it("on timeout kills the child and returns what was read: out, err, nil, 'timeout'", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "echo partial; echo perr >&2; exec sleep 30" })
        local t0 = neap.now()
        local out, err, code, sig = p:communicate(nil, { timeout = 0.5 })
        assert.is_true(neap.now() - t0 < 5)
        assert.equal("partial\n", out)
        assert.equal("perr\n", err)
        assert.is_nil(code)
        assert.equal("timeout", sig)
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
        assert.is_true(gone(p.pid))
        p:close()
      end)
    end)

    it("a child that exits without reading its input: out, err, code, no error", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "echo early; exit 6" })
        local big = ("x"):rep(10 * 1024 * 1024)
        assert.same({ "early\n", "", 6, nil }, { p:communicate(big, { timeout = 10 }) })
        p:close()
      end)
    end)

    it("raises on an input of the wrong type", function()
      run(function()
        local p = assert(neap.spawn { "cat" })
        assert.has_error(function() p:communicate({}) end)
        p:communicate()
        p:close()
      end)
    end)
  end)

  describe("output produced right before exit", function()
    it("1 MB on stdout and 1 MB on stderr, then exit: all of both, then EOF", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c",
          "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2; exit 0" })
        local out, err = read_both(p)
        assert.equal(1048576, #out)
        assert.equal(1048576, #err)
        assert.equal(("o"):rep(1048576), out)
        assert.equal(("e"):rep(1048576), err)
        assert.same({ nil, "eof", "eof" }, { p.stdout:read(10, { timeout = 1 }) })
        assert.same({ nil, "eof", "eof" }, { p.stderr:read(10, { timeout = 1 }) })
        assert.equal(0, p:wait { timeout = 5 })
        p:close()
      end)
    end)

    it("is still readable when the script waits for the child first", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c",
          "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2" })
        assert.equal(0, p:wait { timeout = 10 })
        local out, err = read_both(p)
        assert.equal(1048576, #out)
        assert.equal(1048576, #err)
        p:close()
      end)
    end)

    it("200 short-lived children: none loses its last line #load", function()
      run(function()
        for i = 1, 200 do
          local p = assert(neap.spawn { "echo", "child " .. i })
          assert.equal(0, p:wait { timeout = 5 })
          assert.equal("child " .. i .. "\n", p.stdout:read_all { timeout = 5 })
          assert.equal("", p.stderr:read_all { timeout = 5 })
          p:close()
        end
      end, 60)
    end)
  end)

  describe("reaping", function()
    it("a child the script never waits for leaves no zombie", function()
      run(function()
        local p = assert(neap.spawn { "true" })
        local ok, st = gone(p.pid)
        assert.is_true(ok, "child " .. p.pid .. " stays in state " .. tostring(st))
        p:close()
      end)
    end)

    it("a child whose process object was dropped leaves no zombie", function()
      run(function()
        local pid
        do
          local p = assert(neap.spawn { "sleep", "0.2", stdin = "null", stdout = "null", stderr = "null" })
          pid = p.pid
        end
        collectgarbage() collectgarbage()
        assert.truthy(proc_state(pid))   -- it still runs
        local ok, st = gone(pid)
        assert.is_true(ok, "child " .. pid .. " stays in state " .. tostring(st))
      end)
    end)

    it("a child whose process object was closed while it ran leaves no zombie", function()
      run(function()
        local p = assert(neap.spawn { "sleep", "0.2" })
        local pid = p.pid
        p:close()
        local ok, st = gone(pid)
        assert.is_true(ok, "child " .. pid .. " stays in state " .. tostring(st))
      end)
    end)
  end)

  describe("descriptors", function()
    it("a child's pipes close once read to EOF", function()
      run(function()
        neap.spawn { "true" }:wait()
        collectgarbage() collectgarbage()
        neap.sleep(0.02)
        local before = fd_count()
        local p = assert(neap.spawn { "sh", "-c", "echo out; echo err >&2", stdin = "null" })
        local opened = fd_count()
        assert.is_true(opened >= before + 1, "the pipes do not show")
        local out, err = read_both(p)
        assert.equal("out\n", out)
        assert.equal("err\n", err)
        assert.equal(0, p:wait { timeout = 5 })
        neap.sleep(0.02)
        not_above(opened - 2, fd_count(), "descriptor(s)")   -- p and its streams are still open here
        assert.is_false(p.stdout:is_closed())
        p:close()
      end)
    end)

    it("2,000 spawns of /bin/true, 50 at a time, leave descriptors and children where they started #load", function()
      run(function()
        neap.spawn { "/bin/true" }:wait()
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        local fds, kids = fd_count(), children()
        local workers = {}
        for w = 1, 50 do
          workers[w] = neap.task(function()
            for _ = 1, 40 do
              local p = assert(neap.spawn { "/bin/true" })
              assert.same({ 0, nil }, { p:wait { timeout = 30 } })
            end
          end)
        end
        for w = 1, 50 do assert.is_true((workers[w]:join { timeout = 100 })) end
        collectgarbage() collectgarbage()
        neap.sleep(0.1)
        not_above(fds, fd_count(), "descriptor(s)")
        not_above(kids, children(), "child(ren)")
      end, 120)
    end)
  end)

  describe("a task blocked reading a child's pipe", function()
    it("does not stop a 10 ms timer", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "sleep 0.6; echo late" })
        local ticks = 0
        local tm = neap.timer(0.01, function() ticks = ticks + 1 end, { every = 0.01 })
        local t0 = neap.now()
        assert.equal("late", p.stdout:read_line { timeout = 10 })
        local elapsed = neap.now() - t0
        tm:stop()
        -- at most one tick per 10 ms; at least a third of them on a busy machine
        assert.is_true(ticks >= elapsed / 0.01 / 3, ticks .. " ticks in " .. elapsed .. " s")
        p:wait()
        p:close()
      end)
    end)
  end)
end)
