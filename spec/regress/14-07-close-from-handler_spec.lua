-- Issue 14 (red team): a handler that called server:close() (a shutdown
-- endpoint) waited for its own request to finish: the whole drain time
-- (5 s by default), after which its own connection was closed under it,
-- so its response could not be sent at all.
local http = require "neap.http"
local core = require "neap.core"
local helpers = require "helpers"

describe("regress 14.7: server:close() from inside a handler", function()
  helpers.leakcheck()

  it("does not wait for its own request, and its response goes out", function()
    helpers.run(function()
      local srv, waited, sent
      srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        local t0 = core.now()
        srv:close { drain = 10 }
        waited = core.now() - t0
        sent = res:send(200, "bye")
      end))
      local _, port = srv:address()
      local res, err = http.get("http://127.0.0.1:" .. port .. "/", { timeout = 8 })
      assert(res, err)
      assert.equal("bye", res.body)
      assert.equal("close", res.headers.connection)
      assert.truthy(sent)
      assert.is_true(waited < 2, "close waited " .. tostring(waited) .. " s")
    end, 15)
  end)

  it("still waits for the other requests in flight", function()
    helpers.run(function()
      local srv, order = nil, {}
      srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/slow" then
          require("neap").sleep(0.5)
          order[#order + 1] = "slow"
          res:send(200, "slow")
        else
          srv:close { drain = 10 }
          order[#order + 1] = "closed"
          res:send(200, "bye")
        end
      end))
      local _, port = srv:address()
      local base = "http://127.0.0.1:" .. port
      local neap = require "neap"
      local t = neap.task(function() return http.get(base .. "/slow", { timeout = 8 }) end)
      neap.sleep(0.1)
      assert.equal("bye", assert(http.get(base .. "/close", { timeout = 8 })).body)
      local ok, r = t:join { timeout = 8 }
      assert.is_true(ok)
      assert.equal("slow", r.body)
      assert.same({ "slow", "closed" }, order)
    end, 15)
  end)
end)
