-- examples/embed: a C program with its own libuv loop and timer hosts a
-- Lua script serving TCP on that loop and takes posts from a C thread.
local helpers = require "helpers"
local sh = helpers.sh

describe("embedding (examples/embed)", function()
  it("runs on the embedder's loop, serves TCP, and gets posts from another thread", function()
    local out, rc = sh("timeout 20 " .. helpers.EMBED .. " examples/embed/script.lua")
    assert.equal(0, rc, out)
    -- the client's echo and the thread's posts may interleave; posts keep their order
    local echo = out:find("lua: echo: hello\n", 1, true)
    assert.truthy(echo, out)
    local rest = out:sub(1, echo - 1) .. out:sub(echo + #"lua: echo: hello\n")
    assert.equal(table.concat({
      "lua: post message 1",
      "lua: post message 2",
      "lua: post message 3",
      "lua: quit after 3 C ticks",
      "C: loop closed: yes", "" }, "\n"), rest)
  end)

  it("returns a script error to C as a status and a message with its traceback", function()
    local path = helpers.tmpfile("local function f() error('from lua') end\nf()\n")
    local out, rc = sh(helpers.EMBED .. " " .. path)
    os.remove(path)
    assert.equal(1, rc)
    assert.truthy(out:find("embed: script failed: .*from lua"), out)
    assert.truthy(out:find("stack traceback:", 1, true), out)
  end)

  it("reports a script that does not load", function()
    local out, rc = sh(helpers.EMBED .. " /nonexistent.lua")
    assert.equal(1, rc)
    assert.truthy(out:find("cannot open /nonexistent.lua", 1, true), out)
  end)
end)
