-- Issue 14 (red team): server:close() closed an idle keep-alive connection
-- whose task had already been woken by the bytes of a request: read_head
-- then called c:buffered() on the closed stream before looking at p:head's
-- ECLOSED, and the connection's task died with a traceback on stderr
-- ("attempt to use a closed stream"), never leaving server.conns.
local helpers = require "helpers"

local script = helpers.tmpfile([[
local neap = require "neap"
local http = require "neap.http"
local srv
srv = assert(http.listen("127.0.0.1", 0, function(req, res)
  res:send(200, "x")
  srv:close { drain = 0.2 }   -- closes the others, idle but already woken
end))
local _, port = srv:address()
local cs = {}
for i = 1, 8 do cs[i] = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 })) end
neap.sleep(0.2)
for i = 1, 8 do cs[i]:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n") end
local answered = 0
for i = 1, 8 do
  local l = cs[i]:read_line { timeout = 5 }
  if l and l:find("200", 1, true) then answered = answered + 1 end
  cs[i]:close()
end
print("answered", answered)
print("end")
]])

describe("regress 14.1: server:close() and an idle connection woken by a request", function()
  it("closes the connection without a traceback", function()
    local out, rc = helpers.neap(script)
    assert.equal(0, rc, out)
    assert.falsy(out:find("serve handler failed", 1, true), out)
    assert.falsy(out:find("closed stream", 1, true), out)
    assert.truthy(out:find("answered\t[1-8]\n"), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
  end)
end)
