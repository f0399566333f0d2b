-- Inherited descriptors (neap.fd) and async files (neap.open) (issue #5).
local neap = require "neap"
local helpers = require "helpers"
local tmpdir, read_file, write_file = helpers.tmpdir, helpers.read_file, helpers.write_file
local run, sh, NEAP = helpers.run, helpers.sh, helpers.NEAP




-- A neap script that wraps the descriptor named by arg[1], tells its kind,
-- reads one message and answers "pong:<message>".
local ECHO_FD = [[
local neap = require "neap"
local s = assert(neap.fd(tonumber(arg[1])))
print("kind=" .. s:kind())
local d, err = s:read(100, { timeout = 5 })
d = d and d:gsub("[\r\n]", "")
print("read=" .. tostring(d or err))
assert(s:write("pong:" .. tostring(d) .. "\n"))
neap.sleep(0.05)
s:close()
]]

-- A python3 parent: makes a descriptor of the given kind, passes it to the
-- neap script (pass_fds), sends "ping\n" from the other end, prints the
-- script's output and what came back.
local PARENT = [[
import os, socket, subprocess, sys, pty, select, time
neap, script, mode = sys.argv[1:4]
if mode == "pty":
    a, b = pty.openpty()
    fd = b
else:
    if mode == "unix_stream":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    elif mode == "unix_dgram":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    elif mode == "tcp":
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
        b = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); srv.close()
    fd = b.fileno()
p = subprocess.Popen([neap, script, str(fd)], pass_fds=[fd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
os.close(b) if mode == "pty" else b.close()
afd = a if mode == "pty" else a.fileno()
time.sleep(0.1)
os.write(afd, b"ping\n")
got = b""
deadline = time.time() + 5
while b"pong" not in got or not got.endswith(b"\n"):
    r, _, _ = select.select([afd], [], [], max(0, deadline - time.time()))
    if not r: break
    try: chunk = os.read(afd, 1000)
    except OSError: break
    if not chunk: break
    got += chunk
out, _ = p.communicate(timeout=10)
sys.stdout.write(out.decode())
print("peer got=" + got.decode().replace("\r", "").rstrip("\n"))
print("rc=%d" % p.returncode)
]]

local function through_python(mode)
  local script, parent = helpers.tmpfile(ECHO_FD), helpers.tmpfile(PARENT)
  local out, rc = sh("timeout 30 python3 " .. parent .. " " .. NEAP .. " " .. script .. " " .. mode)
  os.remove(script) os.remove(parent)
  return out, rc
end

describe("neap.fd", function()
  helpers.leakcheck()

  it("wraps an inherited pipe as a stream (reading)", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      local s = assert(neap.fd(3))
      io.write(s:kind(), ":", s:read_all { timeout = 5 })
      s:close()
    ]])
    local out, rc = sh("printf 'one\\ntwo\\n' | " .. NEAP .. " " .. path .. " 3<&0")
    assert.equal(0, rc, out)
    assert.equal("pipe:one\ntwo\n", out)
    os.remove(path)
  end)

  it("refuses the event loop's own descriptors with EBUSY (closing one would break the loop)", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      neap.signal("USR1", function() end):stop()   -- libuv's signal pipe exists now
      local p = io.popen("ls -l /proc/" .. neap.pid() .. "/fd")
      local listing = p:read("a") p:close()
      local refused = 0
      for fd, what in listing:gmatch(" (%d+) %-> (%S+)") do
        if tonumber(fd) > 2 and (what:find("eventpoll") or what:find("eventfd") or what:find("pipe:")) then
          local s, err, code = neap.fd(tonumber(fd))
          if s then s:close() else assert(code == "EBUSY" or code == "EBADF", code) refused = refused + 1 end
        end
      end
      neap.sleep(0.01)   -- the loop still works
      print("refused", refused >= 3)
    ]])
    local out, rc = sh(NEAP .. " " .. path .. " </dev/null")
    assert.equal(0, rc, out)
    assert.equal("refused\ttrue\n", out)
    os.remove(path)
  end)

  it("wraps an inherited pipe as a stream (writing)", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      local s = assert(neap.fd(3))
      for i = 1, 1000 do s:write("line ", i, "\n") end
      s:flush()
      s:close()
    ]])
    local out, rc = sh(NEAP .. " " .. path .. " 3>&1 </dev/null | wc -l")
    assert.equal(0, rc, out)
    assert.equal("1000", out:match("%d+"))
    os.remove(path)
  end)

  it("reads an inherited regular file (through the thread pool)", function()
    local data = helpers.tmpfile(("0123456789\n"):rep(50000))
    local path = helpers.tmpfile([[
      local neap = require "neap"
      local s = assert(neap.fd(3))
      local n, bytes = 0, 0
      for l in s:lines() do n = n + 1; bytes = bytes + #l + 1 end
      print(s:kind(), n, bytes)
      s:close()
    ]])
    local out, rc = sh(NEAP .. " " .. path .. " 3<" .. data .. " </dev/null")
    assert.equal(0, rc, out)
    assert.equal("file\t50000\t550000\n", out)
    os.remove(path) os.remove(data)
  end)

  it("wraps an AF_UNIX stream socket passed in by a parent", function()
    local out, rc = through_python("unix_stream")
    assert.equal(0, rc, out)
    assert.equal("kind=pipe\nread=ping\npeer got=pong:ping\nrc=0\n", out)
  end)

  it("wraps a TCP socket passed in by a parent", function()
    local out, rc = through_python("tcp")
    assert.equal(0, rc, out)
    assert.equal("kind=tcp\nread=ping\npeer got=pong:ping\nrc=0\n", out)
  end)

  it("wraps a TTY passed in by a parent (reads and writes)", function()
    local out, rc = through_python("pty")
    assert.equal(0, rc, out)
    -- the terminal echoes the input before the answer
    assert.equal("kind=tty\nread=ping\npeer got=ping\npong:ping\nrc=0\n", out)
  end)

  it("watches a descriptor of another kind (AF_UNIX SOCK_DGRAM) and reads and writes it", function()
    local out, rc = through_python("unix_dgram")
    assert.equal(0, rc, out)
    assert.equal("kind=poll\nread=ping\npeer got=pong:ping\nrc=0\n", out)
  end)

  it("returns nil, message, 'EBADF' for a descriptor that is not open; closing the stream closes n", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      print(neap.fd(200))
      local s = assert(neap.fd(3))
      s:close()
      neap.sleep(0.02)
      print(neap.fd(3))
    ]])
    local data = helpers.tmpfile("x")
    local out, rc = sh(NEAP .. " " .. path .. " 3<" .. data .. " </dev/null")
    assert.equal(0, rc, out)
    assert.equal("nil\tbad file descriptor\tEBADF\nnil\tbad file descriptor\tEBADF\n", out)
    os.remove(path) os.remove(data)
  end)

  it("a script blocked reading its stdin pipe still answers a 10 ms timer", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      local ticks = 0
      local tm = neap.timer(0.01, function() ticks = ticks + 1 end, { every = 0.01 })
      local t0 = neap.now()
      local line = neap.stdin:read_line { timeout = 10 }
      local elapsed = neap.now() - t0
      tm:stop()
      print(line, ticks, elapsed)
    ]])
    local out, rc = sh("(sleep 0.6; echo late) | " .. NEAP .. " " .. path)
    os.remove(path)
    assert.equal(0, rc, out)
    local line, ticks, elapsed = out:match("^(%S+)\t(%d+)\t(%S+)\n$")
    assert.equal("late", line, out)
    ticks, elapsed = tonumber(ticks), tonumber(elapsed)
    assert.is_true(elapsed >= 0.4, out)
    -- at most one tick per 10 ms; at least a third of them on a busy machine
    assert.is_true(ticks >= elapsed / 0.01 / 3, out)
  end)

  it("raises on a bad descriptor argument", function()
    assert.has_error(function() neap.fd(-1) end)
    assert.has_error(function() neap.fd("3") end)
    assert.has_error(function() neap.fd(1.5) end)
  end)
end)

describe("neap.open", function()
  helpers.leakcheck()

  describe("reading", function()
    it("read(n), read_exactly, read_line, read_all", function()
      run(function()
        local path = helpers.tmpfile("first line\nsecond\nthird\nno newline")
        local f = assert(neap.open(path))
        assert.equal("file", f:kind())
        assert.equal("first", f:read(5))
        assert.equal(" lin", f:read_exactly(4))
        assert.equal("e", f:read_line())
        assert.equal("second\n", f:read_line { keep = true })
        assert.same({ "th", "i" }, { f:read_until("i") })
        assert.equal("rd\nno newline", f:read_all())
        assert.same({ nil, "eof", "eof" }, { f:read(1) })
        assert.same({ nil, "eof", "eof" }, { f:read_line() })
        assert.equal("", f:read_all())
        f:close()
        os.remove(path)
      end)
    end)

    it("read_exactly at an early EOF returns nil, 'eof', 'eof' and the bytes stay", function()
      run(function()
        local path = helpers.tmpfile("short")
        local f = assert(neap.open(path))
        assert.same({ nil, "eof", "eof" }, { f:read_exactly(10) })
        assert.equal("short", f:read_exactly(5))
        f:close()
        os.remove(path)
      end)
    end)

    it("lines() gives every line, the unterminated last one too", function()
      run(function()
        local path = helpers.tmpfile("a\n\nb\nc")
        local f = assert(neap.open(path))
        local got = {}
        for l in f:lines() do got[#got + 1] = l end
        assert.same({ "a", "", "b", "c" }, got)
        f:close()
        os.remove(path)
      end)
    end)

    it("reads a 100 MB file by lines with the same line count as wc -l #load", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/big.txt"
        -- numbers of 1 to 8 digits: lines of every length, ~106 MB
        assert(os.execute("seq 1 13000000 > " .. path))
        local size = #read_file(path)
        assert.is_true(size >= 100 * 1024 * 1024, "only " .. size .. " bytes")
        local wc = sh("wc -l < " .. path)
        local f = assert(neap.open(path))
        local n, bytes, last = 0, 0, nil
        for l in f:lines() do n = n + 1; bytes = bytes + #l + 1; last = l end
        f:close()
        os.remove(path) os.remove(d)
        assert.equal(tonumber(wc:match("%d+")), n)
        assert.equal(size, bytes)
        assert.equal("13000000", last)
      end, 120)
    end)

    it("lets other tasks run while it reads", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/mid.txt"
        assert(os.execute("seq 1 2000000 > " .. path))
        local ticks = 0
        local other = neap.task(function() while true do neap.sleep(0) ticks = ticks + 1 end end)
        local f = assert(neap.open(path))
        local n = 0
        for _ in f:lines() do n = n + 1 end
        f:close()
        other:cancel()
        os.remove(path) os.remove(d)
        assert.equal(2000000, n)
        assert.is_true(ticks > 5, ticks .. " ticks")
      end, 60)
    end)
  end)

  describe("writing", function()
    it("\"w\" creates and truncates; flush puts the bytes in the file", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/w.txt"
        write_file(path, "old content, longer than the new one\n")
        local f = assert(neap.open(path, "w"))
        assert.equal("", read_file(path))
        assert.truthy(f:write("hello ", "world", "\n"))
        assert.truthy(f:flush())
        assert.equal("hello world\n", read_file(path))
        f:close()
        os.remove(path) os.remove(d)
      end)
    end)

    it("write and flush return the file, also when they waited for the queue", function()
      run(function()
        local path = os.tmpname()
        local f = assert(neap.open(path, "w"))
        assert.equal(f, f:write("small"))
        local big = ("0123456789"):rep(100000)   -- 1 MB: above the high-water mark
        local r1 = f:write(big)
        local r2 = f:write(big)
        local r3 = f:flush()
        f:close()
        assert.equal(f, r1)
        assert.equal(f, r2)
        assert.equal(f, r3)
        assert.equal(5 + 2 * #big, #read_file(path))
        os.remove(path)
      end)
    end)

    it("close() after writes still writes them all", function()
      run(function()
        local path = os.tmpname()
        local f = assert(neap.open(path, "w"))
        local chunk = ("x"):rep(65536)
        for _ = 1, 40 do f:write(chunk) end
        f:close()
        local deadline = neap.now() + 5
        while #read_file(path) < 40 * 65536 and neap.now() < deadline do neap.sleep(0.01) end
        assert.equal(40 * 65536, #read_file(path))
        os.remove(path)
      end)
    end)

    it("\"a\" appends to what is there", function()
      run(function()
        local path = helpers.tmpfile("start\n")
        local f = assert(neap.open(path, "a"))
        f:write("more\n")
        f:write("end\n")
        f:flush()
        f:close()
        assert.equal("start\nmore\nend\n", read_file(path))
        os.remove(path)
      end)
    end)

    it("\"r+\" reads and overwrites in place", function()
      run(function()
        local path = helpers.tmpfile("hello\nworld\n")
        local f = assert(neap.open(path, "r+"))
        assert.equal("hello", f:read_line())
        f:write("W")
        f:flush()
        assert.equal("hello\nWorld\n", read_file(path))
        assert.equal(0, f:seek("set", 0))
        assert.equal("hello\nWorld\n", f:read_all())
        f:close()
        os.remove(path)
      end)
    end)

    it("a write to a file opened for reading fails by the next flush", function()
      run(function()
        local path = helpers.tmpfile("read only\n")
        local f = assert(neap.open(path, "r"))
        f:write("x")
        local ok, _, code = f:flush()
        assert.is_nil(ok)
        assert.equal("EBADF", code)
        f:close()
        assert.equal("read only\n", read_file(path))
        os.remove(path)
      end)
    end)
  end)

  describe(":seek()", function()
    it("moves with set, cur and end and returns the position", function()
      run(function()
        local path = helpers.tmpfile("0123456789abcdef")
        local f = assert(neap.open(path))
        assert.equal(10, f:seek("set", 10))
        assert.equal("abc", f:read_exactly(3))
        assert.equal(13, f:seek("cur"))
        assert.equal(11, f:seek("cur", -2))
        assert.equal("bcd", f:read_exactly(3))
        assert.equal(16, f:seek("end"))
        assert.same({ nil, "eof", "eof" }, { f:read(1) })
        assert.equal(12, f:seek("end", -4))
        assert.equal("cdef", f:read_all())
        assert.equal(0, f:seek("set"))
        assert.equal("0123", f:read_exactly(4))
        local ok, _, code = f:seek("set", -1)
        assert.is_nil(ok)
        assert.equal("EINVAL", code)
        f:close()
        os.remove(path)
      end)
    end)

    it("a write after a seek lands there", function()
      run(function()
        local path = helpers.tmpfile("aaaaaaaaaa")
        local f = assert(neap.open(path, "r+"))
        f:seek("set", 4)
        f:write("BB")
        f:flush()
        assert.equal("aaaaBBaaaa", read_file(path))
        f:close()
        os.remove(path)
      end)
    end)
  end)

  describe("errors", function()
    it("returns nil, message, code for a missing file or a directory", function()
      run(function()
        assert.same({ nil, "no such file or directory", "ENOENT" }, { neap.open("/nonexistent/neap/f") })
        local d = tmpdir()
        local f, _, code = neap.open(d, "w")
        assert.is_nil(f)
        assert.equal("EISDIR", code)
        os.remove(d)
      end)
    end)

    it("read_all on a file that cannot be read returns the error at once, not an empty end", function()
      run(function()
        local d = tmpdir()
        local f = assert(neap.open(d))
        assert.same({ nil, "illegal operation on a directory", "EISDIR" }, { f:read_all { timeout = 2 } })
        f:close()
        os.remove(d)
      end)
    end)

    it("a write that fails is reported, and seek then reads from where asked", function()
      run(function()
        local path = helpers.tmpfile("0123456789")
        local f = assert(neap.open(path, "r"))
        f:write("abc")
        assert.same({ nil, "bad file descriptor", "EBADF" }, { f:flush { timeout = 2 } })
        assert.equal(3, f:seek())
        assert.equal(0, f:seek("set", 0))
        assert.equal("0123456789", f:read_all { timeout = 2 })
        f:close()
        os.remove(path)
      end)
    end)

    it("a FIFO opens as a pipe stream, and a timed-out open of one leaves nothing blocked", function()
      local d = tmpdir()
      local fifo = d .. "/fifo"
      assert.equal(0, select(2, sh("mkfifo " .. fifo)))
      -- a reader and a writer, both with neap.open
      run(function()
        local reader = neap.task(function()
          local f = assert(neap.open(fifo, "r", { timeout = 5 }))
          local kind = f:kind()
          local data = f:read_all { timeout = 5 }
          f:close()
          return kind, data
        end)
        local w = assert(neap.open(fifo, "w", { timeout = 5 }))
        assert.equal("pipe", w:kind())
        w:write("through the fifo\n")
        w:close()
        assert.same({ true, "pipe", "through the fifo\n" }, { reader:join { timeout = 5 } })
      end)
      -- nobody at the other end: the open times out, and the binary still ends at once
      -- more abandoned opens than the pool has threads (4), then a plain
      -- file still opens at once, and a pending open does not hold os.exit
      local script = helpers.tmpfile(([[
        local neap = require "neap"
        print(neap.open(%q, "r", { timeout = 0.1 }))
        print(neap.open(%q, "w", { timeout = 0.1 }) ~= nil or "w timeout")
        local tasks = {}
        for i = 1, 8 do tasks[i] = neap.task(function() return neap.open(%q, "r", { timeout = 0.05 }) end) end
        for i = 1, 8 do tasks[i]:join() end
        local f = assert(neap.open("/etc/hostname", "r", { timeout = 2 }))
        f:close()
        neap.task(function() neap.open(%q, "w") end)
        neap.sleep(0.05)
        os.exit(0)
      ]]):format(fifo, fifo, fifo, fifo))
      local t0 = os.time()
      local out, rc = sh("timeout -s KILL 10 " .. NEAP .. " " .. script)
      assert.equal(0, rc, out)
      assert.truthy(out:find("nil\ttimeout\ttimeout", 1, true), out)
      assert.is_true(os.time() - t0 < 5)
      os.remove(script) os.remove(fifo) os.remove(d)
    end)

    it("raises on a bad mode or path, and on use after close", function()
      assert.has_error(function() neap.open("/tmp/x", "z") end)
      assert.has_error(function() neap.open(42) end)
      run(function()
        local path = helpers.tmpfile("x")
        local f = assert(neap.open(path))
        f:close()
        assert.same({ nil, "closed", "ECLOSED" }, { f:read(1) })
        assert.has_error(function() f:seek("set") end, "attempt to use a closed stream")
        os.remove(path)
      end)
    end)
  end)
end)
