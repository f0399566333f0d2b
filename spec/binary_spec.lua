local helpers = require "helpers"
local neap_cmd, sh = helpers.neap, helpers.sh
local NEAP = helpers.NEAP

local function script(src)
  return helpers.tmpfile(src)
end

describe("the neap binary", function()
  it("runs a script with arg set as lua5.4 does and ... holding the arguments", function()
    local path = script('print(arg[0], arg[1], arg[2], select("#", ...), ...)')
    local out, rc = neap_cmd(path .. " a 'b c'")
    assert.equal(0, rc)
    assert.equal(path .. "\ta\tb c\t2\ta\tb c\n", out)
    os.remove(path)
  end)

  it("runs -e code", function()
    local out, rc = neap_cmd("-e 'print(1 + 1)'")
    assert.equal(0, rc)
    assert.equal("2\n", out)
  end)

  it("runs several -e chunks in order, then a script, in one main task, with arg as lua5.4 sets it", function()
    local path = script('print("script", x, arg[-2], arg[-1], arg[0] == ..., select("#", ...), ...)')
    local out, rc = neap_cmd("-e 'x = 1' -e 'local neap = require \"neap\" neap.sleep(0.02) x = x + 1 print(\"e\", x)' "
                             .. path .. " a 'b c'")
    assert.equal(0, rc, out)
    assert.equal("e\t2\nscript\t2\t-e\tlocal neap = require \"neap\" neap.sleep(0.02) x = x + 1 print(\"e\", x)\tfalse\t2\ta\tb c\n", out)
    out, rc = neap_cmd("-e 'print(arg[0] ~= nil, arg[1], #arg)'")
    assert.equal(0, rc, out)
    assert.equal("true\t-e\t2\n", out)
    -- a chunk may change globals the driver uses
    out, rc = neap_cmd("-e 'table = nil' " .. path .. " z")
    assert.equal(0, rc, out)
    assert.truthy(out:find("script", 1, true), out)
    -- a syntax error in any chunk: one line, nothing runs
    out, rc = neap_cmd("-e 'print(1)' -e 'x = = 2'")
    assert.equal(1, rc)
    assert.truthy(out:match("^neap: %(command line%):1: [^\n]*\n$"), out)
    os.remove(path)
  end)

  it("runs a script from standard input with -", function()
    local out, rc = sh("echo 'print(\"from stdin\")' | " .. NEAP .. " -")
    assert.equal(0, rc)
    assert.equal("from stdin\n", out)
  end)

  it("prints its version with -v and help with -h", function()
    local out, rc = neap_cmd("-v")
    assert.equal(0, rc)
    assert.truthy(out:match("^neap %d+%.%d+%.%d+ %(Lua 5%.4"))
    out, rc = neap_cmd("-h")
    assert.equal(0, rc)
    assert.truthy(out:find("usage:", 1, true))
    out, rc = neap_cmd("-x")
    assert.equal(1, rc)
    assert.truthy(out:find("unknown option '-x'", 1, true))
  end)

  it("runs the main chunk as a task: top-level code can wait", function()
    local out, rc = neap_cmd([[-e 'local neap = require "neap"; neap.sleep(0.05); print("after sleep")']])
    assert.equal(0, rc)
    assert.equal("after sleep\n", out)
  end)

  it("keeps running while a timer is pending, then exits by itself", function()
    local path = script([[
      local neap = require "neap"
      neap.timer(0.1, function() print("timer") end)
      print("main done")
    ]])
    local out, rc = neap_cmd(path)
    assert.equal(0, rc)
    assert.equal("main done\ntimer\n", out)
    os.remove(path)
  end)

  it("is not kept alive by an open handle nothing waits on", function()
    local path = script([[
      local neap = require "neap"
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      print("listening")
    ]])
    local out, rc = sh("timeout 5 " .. NEAP .. " " .. path .. " </dev/null")
    assert.equal(0, rc)
    assert.equal("listening\n", out)
    os.remove(path)
  end)

  it("is kept alive by a serving listener", function()
    local path = script([[
      local neap = require "neap"
      neap.listen("tcp", "127.0.0.1", 0):serve(function(c) end)
      print("serving")
    ]])
    local out, rc = sh("timeout 0.5 " .. NEAP .. " " .. path .. " </dev/null")
    assert.equal(124, rc)   -- still running when timeout killed it
    assert.equal("serving\n", out)
    os.remove(path)
  end)

  it("os.exit(n) exits with n", function()
    local _, rc = neap_cmd("-e 'os.exit(3)'")
    assert.equal(3, rc)
  end)

  it("prints an uncaught error with its traceback to stderr and exits 1", function()
    local path = script('local function f() error("kaboom") end\nf()\n')
    local out, rc = neap_cmd(path)
    assert.equal(1, rc)
    assert.truthy(out:find("kaboom", 1, true))
    assert.truthy(out:find("stack traceback:", 1, true))
    os.remove(path)
  end)

  it("names a failing task and lets the others go on", function()
    local path = script([[
      local neap = require "neap"
      neap.task("worker", function() error("bad worker") end)
      neap.sleep(0.02)
      print("main still runs")
    ]])
    local out, rc = neap_cmd(path)
    assert.equal(0, rc)
    assert.truthy(out:find("task 'worker' failed", 1, true))
    assert.truthy(out:find("main still runs", 1, true))
    os.remove(path)
  end)

  it("gives a missing script and a syntax error a one-line message", function()
    local out, rc = neap_cmd("/nonexistent/script.lua")
    assert.equal(1, rc)
    assert.truthy(out:find("cannot open /nonexistent/script.lua", 1, true))
    assert.equal(1, select(2, out:gsub("\n", "")))
    local path = script("local x = = 1")
    out, rc = neap_cmd(path)
    assert.equal(1, rc)
    assert.truthy(out:find("unexpected symbol", 1, true))
    assert.equal(1, select(2, out:gsub("\n", "")))
    os.remove(path)
  end)

  it("ignores SIGPIPE: a write to a closed pipe returns an error", function()
    local path = script([[
      local neap = require "neap"
      local chunk = string.rep("y", 65536)
      for i = 1, 1000 do
        local ok, err, code = neap.stdout:write(chunk)
        if not ok then io.stderr:write("write failed: ", code, "\n") os.exit(0) end
      end
      io.stderr:write("never failed\n")
    ]])
    local out, rc = sh(NEAP .. " " .. path .. " 2>/tmp/neap_sigpipe.err | head -c 10 >/dev/null; cat /tmp/neap_sigpipe.err")
    assert.equal(0, rc)
    assert.truthy(out:find("write failed: EPIPE", 1, true), out)
    os.remove(path)
  end)

  describe("neap.stdin", function()
    local reader
    setup(function()
      reader = script([[
        local neap = require "neap"
        local n = 0
        for line in neap.stdin:lines() do n = n + 1 io.write("[", line, "]") end
        print(" lines=" .. n)
      ]])
    end)
    teardown(function() os.remove(reader) end)

    it("reads a pipe", function()
      local out, rc = sh("printf 'a\\nb\\n' | " .. NEAP .. " " .. reader)
      assert.equal(0, rc)
      assert.equal("[a][b] lines=2\n", out)
    end)

    it("reads a file", function()
      local f = helpers.tmpfile("one\ntwo\nthree")
      local out, rc = sh(NEAP .. " " .. reader .. " < " .. f)
      assert.equal(0, rc)
      assert.equal("[one][two][three] lines=3\n", out)
      os.remove(f)
    end)

    it("reads /dev/null and a closed stdin as EOF", function()
      local out, rc = sh(NEAP .. " " .. reader .. " </dev/null")
      assert.equal(0, rc)
      assert.equal(" lines=0\n", out)
      out, rc = sh(NEAP .. " " .. reader .. " <&-")
      assert.equal(0, rc)
      assert.equal(" lines=0\n", out)
    end)
  end)

  describe("neap.stdout and neap.stderr", function()
    it("write in order with print, to a pipe and to a file", function()
      local path = script([[
        local neap = require "neap"
        print("one")
        neap.stdout:write("two\n")
        print("three")
        neap.stderr:write("err\n")
      ]])
      local out, rc = sh(NEAP .. " " .. path .. " 2>/dev/null | cat")
      assert.equal(0, rc)
      assert.equal("one\ntwo\nthree\n", out)
      local f = os.tmpname()
      sh(NEAP .. " " .. path .. " >" .. f .. " 2>&1")
      local fh = io.open(f) local content = fh:read("a") fh:close()
      assert.equal("one\ntwo\nthree\nerr\n", content)
      os.remove(f) os.remove(path)
    end)
  end)
end)
