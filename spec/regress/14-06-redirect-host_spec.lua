-- Issue 14 (red team): a Host header given by the caller went on to
-- another origin when a redirect was followed (Authorization and Cookie
-- were dropped, but the first origin's Host was sent to the second one,
-- which then answered for the wrong virtual host).
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.6: a caller's Host and a cross-origin redirect", function()
  helpers.leakcheck()

  it("is replaced by the new origin's; kept on the same origin", function()
    helpers.run(function()
      local b = assert(http.listen("127.0.0.1", 0, function(req, res)
        res:send(200, tostring(req.headers.host))
      end))
      local _, bport = b:address()
      local a = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/same" then res:send(302, "", { Location = "/end" })
        elseif req.path == "/end" then res:send(200, tostring(req.headers.host))
        else res:send(302, "", { Location = "http://127.0.0.1:" .. bport .. "/" }) end
      end))
      local _, aport = a:address()
      local base = "http://127.0.0.1:" .. aport
      local res = assert(http.get(base .. "/", { follow = 1, timeout = 5, headers = { Host = "a.example" } }))
      assert.equal("127.0.0.1:" .. bport, res.body)
      res = assert(http.get(base .. "/same", { follow = 1, timeout = 5, headers = { host = "a.example" } }))
      assert.equal("a.example", res.body)
      http.close_idle()
      a:close()
      b:close()
    end)
  end)
end)
