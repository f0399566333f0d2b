-- Red team of issue 16's write path: s:write makes its anchor table (a
-- collector step) after it had made room in the stream's list of buffers.
-- A finalizer run by that step that wrote to the same stream overran the
-- list (ASan: heap-buffer-overflow in stream_gather), and one that closed
-- or flushed it freed the list under the write (a store through NULL,
-- "double free or corruption"). The table now comes first, the stream is
-- checked after it, and the rest is C only.
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
  local got = {}
  neap.task(function() while a:read() do end end)   -- a's reader parks on an empty buffer
  local reader = neap.task(function()
    while true do
      local d = b:read { timeout = 5 }
      if not d then break end
      got[#got + 1] = d
    end
  end)
  neap.sleep(0)
  local big, fired, armed = string.rep("B", 300), 0, false
  local mt = { __gc = function()
    fired = fired + 1
    if not armed then return end
    armed = false
    if MODE == "write" then for i = 1, 16 do a:write(big .. i .. "\n") end else a[MODE](a) end
  end }
  collectgarbage("stop") collectgarbage("incremental", 100, 100)
  for _ = 1, 1000 do setmetatable({}, mt) end
  repeat collectgarbage("step", 0) until fired > 0   -- finalizers are being called
  armed = true
  collectgarbage("restart")
  local ok, err = a:write("x", big, "\n")
  print("write", ok == a, err)
  print("finalizer ran", not armed)
  if MODE ~= "close" then a:close() end
  reader:join { timeout = 10 }
  local all = table.concat(got)
  local n = select(2, all:gsub("\n", ""))
  print("lines", n)
  b:close()
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

describe("16-22 a finalizer inside s:write", function()
  it("that writes to the same stream: both writes arrive whole", function()
    local out, rc = run("write")
    assert.equal(0, rc, out)
    assert.equal("write\ttrue\tnil\nfinalizer ran\ttrue\nlines\t17\n", out)
  end)

  it("that closes the stream: the write says it is closed", function()
    local out, rc = run("close")
    assert.equal(0, rc, out)
    assert.matches("^write\tfalse\t[^\n]*closed[^\n]*\nfinalizer ran\ttrue\n", out)
  end)

  it("that flushes the stream: the write still goes out", function()
    local out, rc = run("flush")
    assert.equal(0, rc, out)
    assert.equal("write\ttrue\tnil\nfinalizer ran\ttrue\nlines\t1\n", out)
  end)
end)
