-- Issue 14 (red team): a handler that raised an error object whose
-- __tostring raises: the server's report (tostring) raised in the
-- connection's task, so no 500 was sent (the client saw the connection
-- close) and a second traceback went to stderr.
local helpers = require "helpers"

local script = helpers.tmpfile([[
local http = require "neap.http"
local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
  error(setmetatable({}, { __tostring = function() error("tostring boom") end }))
end))
local _, port = srv:address()
local r, err = http.get("http://127.0.0.1:" .. port .. "/", { timeout = 5 })
print("status", r and r.status, err)
srv:close()
http.close_idle()
print("end")
]])

describe("regress 14.15: a handler's error whose __tostring raises", function()
  it("still gets a 500 and one report line", function()
    local out, rc = helpers.neap(script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("status\t500\tnil\n", 1, true), out)
    assert.truthy(out:find("neap.http: handler failed: (error object is a table value)", 1, true), out)
    assert.falsy(out:find("serve handler failed", 1, true), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
  end)
end)
