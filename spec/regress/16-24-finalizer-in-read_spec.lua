-- Red team, the read side of 16-22: a read pushes its frame (a collector
-- step) and then consumes it from the buffer. A finalizer run by that step
-- that read from the same stream took the same line, and the outer read then
-- consumed the next one with the finalizer's frame: line 1 twice, line 2
-- lost. Now the outer read raises instead (the bytes went to the finalizer's
-- read, nothing is consumed twice); a finalizer that closes the stream there
-- leaves the outer read its line.
local helpers = require "helpers"

local SCRIPT = [[
local neap = require 'neap'
local MODE = arg[1]
neap.run(function()
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
  local t = neap.task(function() return srv:accept { timeout = 5 } end)
  local a = assert(neap.connect("tcp", "127.0.0.1", select(2, srv:address()), { timeout = 5 }))
  local _, b = t:join { timeout = 5 }
  srv:close()
  for i = 1, 10 do a:write("line " .. i .. "\n") end
  neap.sleep(0.1)   -- all of it in b's buffer
  local fired, armed, inner = 0, false, nil
  local mt = { __gc = function()
    fired = fired + 1
    if not armed then return end
    armed = false
    if MODE == "close" then b:close() else inner = b:read_line { timeout = 0 } end
  end }
  collectgarbage("stop") collectgarbage("incremental", 100, 100)
  for _ = 1, 1000 do setmetatable({}, mt) end
  repeat collectgarbage("step", 0) until fired > 0   -- finalizers are being called
  armed = true
  local rl = b.read_line
  collectgarbage("restart")
  local ok, l1 = pcall(rl, b)   -- the first allocation after the restart: its push
  print("finalizer ran", not armed)
  print("outer", ok, ok and l1 or l1:match("read: [^;]*"))
  print("inner", inner)
  print("next", b:read_line { timeout = 1 })
  a:close()
end)
]]

local function run(mode)
  local path = helpers.tmpfile(SCRIPT)
  -- (the collector's own pace places the finalizer: not make gcstress's
  -- full collection at every task switch)
  local out, rc = helpers.sh("env -u NEAP_GC_STRESS " .. helpers.NEAP .. " " .. path .. " " .. mode .. " 2>&1")
  os.remove(path)
  return out, rc
end

describe("16-24 a finalizer inside a read", function()
  it("that reads the same stream: no line is given twice or lost", function()
    local out, rc = run("read")
    assert.equal(0, rc, out)
    assert.equal("finalizer ran\ttrue\n" ..
      "outer\tfalse\tread: the stream was read meanwhile (by a finalizer?)\n" ..
      "inner\tline 1\nnext\tline 2\n", out)
  end)

  it("that closes the stream: the read still gets its line", function()
    local out, rc = run("close")
    assert.equal(0, rc, out)
    assert.matches("^finalizer ran\ttrue\nouter\ttrue\tline 1\ninner\tnil\nnext\tnil\t[^\n]*closed", out)
  end)
end)
