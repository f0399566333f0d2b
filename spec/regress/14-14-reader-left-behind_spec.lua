-- Issue 14 (red team): a handler that left a task waiting in req:read()
-- (the body not there yet) and returned: the server's drain of the body
-- then raised "body: another task is already reading this stream" in the
-- connection's task (a traceback on stderr, the connection dropped with no
-- clean end). Now the server gives that connection up: the waiting task
-- gets nil, "closed", "ECLOSED" and the response already sent stands.
local helpers = require "helpers"

local script = helpers.tmpfile([[
local neap = require "neap"
local http = require "neap.http"
local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
  neap.task(function() print("left behind", req:read()) end)
  neap.sleep(0)
  res:send(200, "x")
end))
local _, port = srv:address()
local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
local all = c:read_all { timeout = 5 }
print("response", all and all:match("^HTTP/1.1 (%d+)"), all and all:sub(-1))
c:close()
srv:close()
print("end")
]])

describe("regress 14.14: a task left waiting in req:read() by its handler", function()
  it("gets closed; the server drops the connection without a traceback", function()
    local out, rc = helpers.neap(script)
    assert.equal(0, rc, out)
    assert.falsy(out:find("failed", 1, true), out)
    assert.truthy(out:find("left behind\tnil\tclosed\tECLOSED\n", 1, true), out)
    assert.truthy(out:find("response\t200\tx\n", 1, true), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
  end)
end)
