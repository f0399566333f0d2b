-- Issue 18.1: a wait inside a <close> handler of a failing task ran during
-- lua_resetthread, where it cannot yield: the park state stayed behind, the
-- dead task was resumed later (use-after-free under ASan, a segfault under
-- stock lua5.4) and a second failure was reported with a wrong error.
local helpers = require "helpers"

local script = helpers.tmpfile([[
local neap = require "neap"
local p = assert(neap.spawn { "sh", "-c", "sleep 0.3; echo hello" })
local t = neap.task(function()
  local guard <close> = setmetatable({}, { __close = function() p.stdout:read_line() end })
  error("task fails; its <close> handler reads")
end)
neap.sleep(0.05); collectgarbage(); collectgarbage(); neap.sleep(0.6)
local ok, err = t:join()
print("status", t:status(), ok, err)
print("hello still readable:", p.stdout:read_line { timeout = 2 })
p:close()
print("end")
]])

local function check(out, rc)
  assert.equal(0, rc, out)
  assert.truthy(out:find("status\tfailed\tnil\t[^\n]*task fails; its <close> handler reads"), out)
  assert.truthy(out:find("read_line: cannot wait while a failing task closes its variables", 1, true), out)
  local _, reports = out:gsub("task failed", "")
  assert.equal(1, reports, out)
  assert.truthy(out:find("hello still readable:\thello", 1, true), out)
  assert.truthy(out:find("\nend\n", 1, true), out)
end

describe("regress 18.1: a wait in a <close> handler of a failing task", function()
  it("raises a clear error there; the task stays failed with its own error (binary)", function()
    check(helpers.neap(script))
  end)
  it("does the same under a stock lua5.4", function()
    local src = helpers.read_file(script)
    local wrapped = helpers.tmpfile("require('neap').run(function()\n" .. src .. "\nend)\n")
    check(helpers.sh(helpers.LUA54 .. " " .. wrapped))
    os.remove(wrapped)
  end)
  it("a wait where a task cannot yield (a table.sort comparator) raises, not parks", function()
    local neap = require "neap"
    helpers.run(function()
      local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b) neap.sleep(0) return a < b end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("sleep: cannot wait here", 1, true), err)
      neap.sleep(0.01)   -- and the task can still wait afterwards
    end)
  end)
end)
