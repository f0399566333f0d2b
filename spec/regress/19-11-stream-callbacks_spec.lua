-- Issue 19, item 11: s:on callbacks. A raising "close" callback was reported
-- as "neap: task failed" and left the callbacks set (a later read raised
-- "this stream delivers its data to callbacks"); a raising "error" callback
-- meant "close" never ran; s:off() while a callback waited aborted it and
-- logged "stream callback failed: cancelled". Now each callback is guarded
-- on its own, the callbacks are removed at the end before they run, and a
-- waiting callback finishes after s:off().
local helpers = require "helpers"

-- runs 'body' (a script using pair()) with the neap binary; its output
local function script(body)
  local path = helpers.tmpfile([[
local neap = require "neap"
local function pair()
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
  local _, port = srv:address()
  local t = neap.task(function() return srv:accept { timeout = 5 } end)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  local _, a = t:join { timeout = 5 }
  srv:close()
  return assert(a), c
end
local function wait_for(pred)
  local deadline = neap.now() + 5
  while not pred() and neap.now() < deadline do neap.sleep(0.005) end
end
]] .. body)
  local out, rc = helpers.sh("timeout 20 " .. helpers.NEAP .. " " .. path .. " </dev/null")
  os.remove(path)
  return out, rc
end

describe("issue 19.11: s:on callbacks", function()
  it("a raising 'close' callback is a callback failure, and the stream goes back to tasks", function()
    local out, rc = script([[
local a, b = pair()
local closed = false
a:on("line", function() end)
a:on("close", function() closed = true error("boom in close") end)
b:close()
wait_for(function() return closed end)
neap.sleep(0.02)
print("read:", a:read_line { timeout = 1 })
a:close()
]])
    assert.equal(0, rc, out)
    assert.matches("neap: stream callback failed: [^\n]*boom in close", out)
    assert.not_matches("task failed", out)
    assert.matches("read:\tnil\teof\teof", out)
  end)

  it("'close' runs after an 'error' callback that raises", function()
    local out, rc = script([[
local a, b = pair()
local seen = {}
a:set_limits { max_frame = 4 }
a:on("line", function() end)
a:on("error", function(_, code) seen[#seen + 1] = "error:" .. code error("boom in error") end)
a:on("close", function(_, code) seen[#seen + 1] = "close:" .. code end)
b:write("much too long\n")
wait_for(function() return #seen >= 2 end)
print("seen:", table.concat(seen, " "))
a:close() b:close()
]])
    assert.equal(0, rc, out)
    assert.matches("neap: stream callback failed: [^\n]*boom in error", out)
    assert.matches("seen:\terror:frame too large close:frame too large", out)
  end)

  it("s:off() while a callback waits lets it finish, quietly", function()
    local out, rc = script([[
local a, b = pair()
local got, finished = {}, false
a:on("line", function(l)
  got[#got + 1] = l
  neap.sleep(0.1)
  finished = true
end)
b:write("one\n")
wait_for(function() return #got == 1 end)
a:off()
b:write("two\n")
print("task read:", a:read_line { timeout = 2 })
wait_for(function() return finished end)
print("finished:", finished, #got)
a:close() b:close()
]])
    assert.equal(0, rc, out)
    assert.not_matches("callback failed", out)
    assert.matches("task read:\ttwo", out)
    assert.matches("finished:\ttrue\t1", out)
  end)
end)
