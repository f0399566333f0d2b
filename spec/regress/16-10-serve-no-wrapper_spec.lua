-- Issue 16.6 (idle connections): a server:serve handler ran under an
-- xpcall in a wrapper function of its task, two call frames more in every
-- idle connection's coroutine. The handler is now the task's own function;
-- the core closes the connection when it returns or raises and reports the
-- error as before ("neap: serve handler failed: ..."), once, and the server
-- goes on.
local helpers = require "spec.helpers"

local script = helpers.tmpfile([[
local neap = require "neap"
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(function(c)
  local l = c:read_line { timeout = 5 }
  if l == "depth" then
    -- the handler is the outermost function of its task
    c:write("caller:", tostring(debug.getinfo(2, "S")), "\n")
  elseif l == "boom" then
    error("handler exploded")
  elseif l == "object" then
    error(setmetatable({}, { __tostring = function() return "an error object" end }))
  elseif l == "named" then
    neap.current():set_name("conn task")
    error("named handler exploded")
  elseif l == "close" then
    -- a <close> variable of the handler still sees the connection open
    local _ <close> = setmetatable({}, { __close = function() c:write("bye\n") end })
    error("closing handler exploded")
  elseif l == "results" then
    return 1, 2, 3
  else
    c:write("ok:", l, "\n")
  end
end)
for _, w in ipairs { "depth", "boom", "object", "named", "close", "results", "fine" } do
  local c = assert(neap.connect("tcp", "127.0.0.1", port))
  c:write(w, "\n")
  local got = {}
  while true do
    local l, err = c:read_line { timeout = 5 }
    if not l then got[#got + 1] = err break end
    got[#got + 1] = l
  end
  print(w, table.concat(got, "|"))
  c:close()
end
srv:close()
print("end")
]])

describe("regress 16.7: a serve handler runs as its task's own function", function()
  it("has no wrapper frame; conn is closed when it returns or raises; errors reported once", function()
    local out, rc = helpers.neap(script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("depth\tcaller:nil|eof\n", 1, true), out)
    assert.truthy(out:find("boom\teof\n", 1, true), out)
    assert.truthy(out:find("object\teof\n", 1, true), out)
    assert.truthy(out:find("named\teof\n", 1, true), out)
    assert.truthy(out:find("close\tbye|eof\n", 1, true), out)
    assert.truthy(out:find("results\teof\n", 1, true), out)
    assert.truthy(out:find("fine\tok:fine|eof\n", 1, true), out)
    local _, n = out:gsub("neap: serve handler failed: ", "")
    assert.equal(4, n, out)
    assert.truthy(out:find("neap: serve handler failed: [^\n]*: handler exploded\nstack traceback:\n\t%[C%]: in function 'error'\n"), out)
    assert.truthy(out:find("neap: serve handler failed: an error object\n", 1, true), out)
    assert.truthy(out:find("neap: serve handler failed: [^\n]*: named handler exploded\n"), out)
    assert.truthy(out:find("neap: serve handler failed: [^\n]*: closing handler exploded\n"), out)
    assert.falsy(out:find("xpcall", 1, true), out)
    assert.falsy(out:find("task failed", 1, true), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
  end)
end)
