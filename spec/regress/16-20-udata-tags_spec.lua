-- Issue 16, a note of the box-tag change (16-17): the handles' boxes were
-- told by a tag, but tasks, buffers, HTTP parsers, WebSocket readers, TLS
-- contexts, timers and watchers were still told by their metatable. A
-- userdata given one of those metatables (debug.setmetatable) passed the
-- check and was read as ours: a task's methods on a file ended in "double
-- free or corruption" (abort), a buffer's in a segmentation fault. Each now
-- carries the tag too; a stranger is refused with the usual error and left
-- alone by __gc. The host's own box (reachable through debug.getregistry)
-- too: a file given its metatable crashed at its collection.
local helpers = require "helpers"

local function script(body)
  local path = helpers.tmpfile("local neap = require 'neap'\nlocal core = require 'neap.core'\n" .. body)
  local out, rc = helpers.sh(helpers.NEAP .. " " .. path .. " 2>&1")
  os.remove(path)
  return out, rc
end

-- Gives a file userdata the metatable of 'obj', calls every method of it
-- (and __close) on the file, collects the file; prints whether every method
-- refused it with the type's error.
local probe = [[
local function probe(name, obj)
  local mt = getmetatable(obj)
  local f = io.tmpfile()
  debug.setmetatable(f, mt)
  local index = type(mt.__index) == "table" and mt.__index or {}
  local names = {}
  for k, v in pairs(index) do if type(v) == "function" then names[#names + 1] = k end end
  table.sort(names)
  local refused = 0
  for _, k in ipairs(names) do
    local ok, err = pcall(index[k], f, "x", 1)
    if not ok and tostring(err):find(name .. " expected", 1, true) then refused = refused + 1
    elseif ok or not tostring(err):find("expected", 1, true) then
      print("not refused", name, k, ok, err)
    end
  end
  if mt.__close then   -- refused, or nothing done (a handle's close)
    local ok, err = pcall(mt.__close, f)
    if not ok and not tostring(err):find(name .. " expected", 1, true) then
      print("__close", name, err)
    end
  end
  f = nil
  collectgarbage() collectgarbage()
  print(name, refused == #names, refused > 0 or not next(index))
end
]]

describe("16-20 userdata tags", function()
  it("a stranger given the metatable of a task, buffer, parser, reader, context, timer or watcher is refused", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local out, rc = script(probe .. string.format([[
local t = neap.task(function() end)
probe("neap.task", t)
probe("neap.buffer", neap.buffer())
probe("neap.http_parser", core.http_parser("request"))
probe("neap.ws_reader", core.ws_reader(true, 1000))
probe("neap.tls_context", core.tls_context({}, "test"))
local tm = neap.timer(100, function() end)
probe("neap.timer", tm)
tm:close()
local w = assert(neap.watch(%q))
probe("neap.watcher", w)
w:close()
print("alive")
]], dir))
    os.execute("rmdir " .. dir)
    assert.equal(0, rc, out)
    assert.equal(table.concat({
      "neap.task\ttrue\ttrue",
      "neap.buffer\ttrue\ttrue",
      "neap.http_parser\ttrue\ttrue",
      "neap.ws_reader\ttrue\ttrue",
      "neap.tls_context\ttrue\ttrue",
      "neap.timer\ttrue\ttrue",
      "neap.watcher\ttrue\ttrue",
      "alive", "" }, "\n"), out)
  end)

  it("a stranger given the metatable of the host's box (through debug.getregistry) is left alone", function()
    local out, rc = script([[
local n = 0
for k, v in pairs(debug.getregistry()) do
  if type(k) == "userdata" and type(v) == "userdata" and getmetatable(v) then
    debug.setmetatable(io.tmpfile(), getmetatable(v))
    n = n + 1
  end
end
collectgarbage() collectgarbage()
neap.sleep(0.01)   -- the host still works
print("alive", n > 0)
]])
    assert.equal(0, rc, out)
    assert.equal("alive\ttrue\n", out)
  end)

  it("a stranger put where neap keeps its own userdata (the registry, a task's user value) is not taken for one", function()
    -- the host's box replaced in the registry: the functions say the host is gone
    local out, rc = script([[
for k, v in pairs(debug.getregistry()) do
  local mt = type(k) == "userdata" and type(v) == "userdata" and getmetatable(v)
  if mt and rawget(mt, "__gc") and not mt.__name then debug.getregistry()[k] = io.stdout end
end
print(pcall(neap.task, function() end))
print(pcall(core._write_lists))
]])
    assert.equal(0, rc, out)
    assert.equal("false\tneap: the host is gone\nfalse\tneap: the host is gone\n", out)
    -- a task's anchor replaced (its page's upvalue): the teardown passes it by
    out, rc = script([[
local t = neap.task(function() neap.sleep(10) end)
neap.sleep(0)
local n = 0
for _, v in pairs(debug.getregistry()) do
  if type(v) == "table" then
    for _, page in pairs(v) do
      if type(page) == "function" then
        for j = 1, 255 do
          local _, val = debug.getupvalue(page, j)
          if val == t then debug.setupvalue(page, j, io.stdout) n = n + 1 end
        end
      end
    end
  end
end
print("swapped", n)
os.exit(0, true)
]])
    assert.equal(0, rc, out)
    assert.equal("swapped\t1\n", out)
    -- a serve task's connection (its second user value) replaced: not closed as one
    out, rc = script([[
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
srv:serve(function(c) debug.setuservalue(neap.current(), io.stdout, 2) end)
local a = assert(neap.connect("tcp", "127.0.0.1", select(2, srv:address()), { timeout = 5 }))
a:read_line { timeout = 1 }
print(io.stdout:write("stdout still open\n") == io.stdout)
os.exit(0)
]])
    assert.equal(0, rc, out)
    assert.equal("stdout still open\ntrue\n", out)
  end)

  it("the objects themselves still work when their metatable was replaced", function()
    local out, rc = script([[
local b = neap.buffer()
local mt = getmetatable(b)
local read_line, feed = b.read_line, b.feed
debug.setmetatable(b, { __index = {} })
feed(b, "one\ntwo\n")
print(read_line(b))
debug.setmetatable(b, mt)   -- (its __gc frees the bytes)
local t = neap.task(function() return "done" end)
local join = t.join
debug.setmetatable(t, nil)
print(join(t, { timeout = 5 }))
]])
    assert.equal(0, rc, out)
    assert.equal("one\ntrue\tdone\n", out)
  end)
end)
