-- require "neap" from a stock lua5.4 (the C module build/lib/neap/core.so
-- and the Lua files of lua/).
local helpers = require "helpers"
local sh = helpers.sh

local function lua54(code)
  local path = helpers.tmpfile(code)
  local out, rc = sh(helpers.LUA54 .. " " .. path)
  os.remove(path)
  return out, rc
end

describe("require 'neap' from lua5.4", function()
  it("neap.run runs a task and the loop and returns its results", function()
    local out, rc = lua54([[
      local neap = require "neap"
      print(neap.run(function(a) neap.sleep(0.01) return a, "b" end, "a"))
    ]])
    assert.equal(0, rc, out)
    assert.equal("a\tb\n", out)
  end)

  it("neap.run re-raises the task's error with its traceback", function()
    local out, rc = lua54([[
      local neap = require "neap"
      local ok, err = pcall(neap.run, function() neap.sleep(0) error("deep") end)
      print(ok, err:find("deep", 1, true) ~= nil, err:find("stack traceback", 1, true) ~= nil)
    ]])
    assert.equal(0, rc, out)
    assert.equal("false\ttrue\ttrue\n", out)
  end)

  it("raises when the task waits on nothing that can wake it", function()
    local out, rc = lua54([[
      local neap = require "neap"
      local ok, err = pcall(neap.run, function() return neap.queue():get() end)
      print(ok, err)
    ]])
    assert.equal(0, rc, out)
    assert.truthy(out:find("false\t.*can never happen"), out)
  end)

  it("neap.loop('nowait') polls once even when nothing waits, and names itself in errors", function()
    local out, rc = lua54([[
      local neap = require "neap"
      local c, a
      neap.run(function()
        local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
        local _, port = srv:address()
        c = assert(neap.connect("tcp", "127.0.0.1", port))
        a = assert(srv:accept())
      end)
      c:write("hello\n")
      local got
      for _ = 1, 200 do
        got = a:read_line { timeout = 0 }
        if got then break end
        neap.loop("nowait")
      end
      print(got)
      print(pcall(neap.loop, "bogus"))
      print(neap.run(function() return pcall(neap.loop) end))
    ]])
    assert.equal(0, rc, out)
    assert.equal("hello\nfalse\tbad argument #1 to 'loop' (invalid option 'bogus')\n"
                 .. "false\tneap.loop: already inside a task\n", out)
  end)

  it("inbox and communicate outside a task raise before anything is lost", function()
    local out, rc = lua54([[
      local neap = require "neap"
      print(pcall(neap.inbox))
      local p = neap.spawn { "sh", "-c", "echo hi" }
      print(pcall(p.communicate, p))
      print(neap.run(function() return p.stdout:read_all { timeout = 5 } end))
      neap.run(function() p:wait { timeout = 5 } end)
    ]])
    assert.equal(0, rc, out)
    assert.equal("false\tinbox: the inbox is empty and a wait must run inside a task\n"
                 .. "false\tcommunicate: a wait must run inside a task (neap.task or neap.run)\n"
                 .. "hi\n\n", out)
  end)

  it("exits cleanly with handles and tasks still open", function()
    local out, rc = lua54([[
      local neap = require "neap"
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      srv:serve(function() end)
      neap.timer(60, function() end)
      local p = neap.spawn { "sleep", "0.2" }
      neap.task(function() neap.sleep(100) end)
      neap.run(function() neap.sleep(0.01) end)
      print("bye")
    ]])
    assert.equal(0, rc, out)
    assert.equal("bye\n", out)
  end)

  it("loads every file of lua/neap, and the binary loads the same from its embedded copy", function()
    local code = [[
      local names = {}
      for path in io.popen("ls lua/neap/*.lua"):lines() do
        names[#names + 1] = "neap" .. path:match("^lua/neap(.*)%.lua$"):gsub("^/init$", ""):gsub("/", ".")
      end
      table.sort(names)
      for _, name in ipairs(names) do
        local ok, m = pcall(require, name)
        io.write(name, " ", ok and type(m) or tostring(m), "\n")
      end
    ]]
    local out, rc = lua54(code)
    assert.equal(0, rc, out)
    for _, want in ipairs { "neap table", "neap.net table", "neap.queue table", "neap.task table",
                            "neap.manager table", "neap.util table" } do
      assert.truthy(out:find(want .. "\n", 1, true), out)
    end
    assert.falsy(out:find(" [^t][^\n]*\n"), out)   -- each loaded as a table
    local path = helpers.tmpfile(code)
    local out2, rc2 = sh(helpers.NEAP .. " " .. path .. " </dev/null")
    os.remove(path)
    assert.equal(0, rc2, out2)
    assert.equal(out, out2)
  end)

  it("runs the specs' own helpers under lua5.4 (busted-style use)", function()
    local out, rc = lua54([[
      package.path = "./spec/?.lua;" .. package.path
      local helpers = require "helpers"
      local neap = require "neap"
      local a, b = helpers.run(function()
        local x, y = helpers.pair()
        y:write("over lua5.4\n")
        local l = x:read_line { timeout = 1 }
        x:close() y:close()
        return l
      end)
      print(a)
    ]])
    assert.equal(0, rc, out)
    assert.equal("over lua5.4\n", out)
  end)
end)
