-- Issue 16, bar 3: stream methods told a stream by its metatable
-- (lua_getmetatable, lua_rawequal, a pop: about 140 instructions, twice per
-- echoed line). A handle's box now carries a tag, its type's metatable name's
-- address, and the check compares it. A userdata given a handle metatable
-- with debug.setmetatable used to pass the old check and be taken for a
-- box: a crash (SIGSEGV) at the first method call, or an abort when it was
-- collected. It is refused now, with the usual error, and left alone by __gc.
local helpers = require "helpers"

local function script(body)
  local path = helpers.tmpfile("local neap = require 'neap'\n" .. body)
  local out, rc = helpers.sh(helpers.NEAP .. " " .. path .. " 2>&1")
  os.remove(path)
  return out, rc
end

describe("16-17 box tags", function()
  it("a userdata given the streams' metatable is refused, and collected without harm", function()
    local out, rc = script([[
local mt = getmetatable(neap.stdout)
local f = io.tmpfile()
debug.setmetatable(f, mt)
local ok, err = pcall(neap.stdout.write, f, "x")
print(ok, (err:gsub("^.-: ", "")))
print(pcall(neap.stdout.close, f))
print(select("#", pcall(function() for _ in neap.stdout.lines(f) do end end)))
f = nil
collectgarbage() collectgarbage()
print("alive")
]])
    assert.equal(0, rc, out)
    assert.matches("^false\tbad argument #1 to '[^']*' %(neap.stream expected, got neap.stream%)\n", out)
    assert.matches("\nfalse\t[^\n]*neap.stream expected[^\n]*\n", out)
    assert.matches("\nalive\n$", out)
  end)

  it("a timer's box is not a stream, a stream's box is not a timer", function()
    local neap = require "neap"
    local t = neap.timer and neap.timer(1000, function() end) or nil
    if t then
      local ok, err = pcall(neap.stdout.write, t, "x")
      assert.is_false(ok)
      assert.matches("neap.stream expected", err)
      t:close()
    end
    local ok = pcall(neap.stdout.write, {}, "x")
    assert.is_false(ok)
    ok = pcall(neap.stdout.write, io.stdout, "x")
    assert.is_false(ok)
  end)

  it("a stream whose metatable was replaced is still a stream to its methods", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local write, read_line = a.write, b.read_line
      debug.setmetatable(a, { __index = {} })
      assert.is_truthy(write(a, "still\n"))
      assert.equal("still", read_line(b, { timeout = 5 }))
      debug.setmetatable(a, getmetatable(b))
      a:close() b:close()
    end)
  end)
end)
