-- Issue 14 (red team): http.listen took NaN for its timeouts (NaN < 0 is
-- false): every connection's task then died in wait_readable with a
-- traceback. server:close{drain = "x" | -1 | NaN} raised from inside
-- core.park after the server was marked closing, so the connections in
-- flight were never closed by it (a second close() returned at once).
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.11: the server's option checks", function()
  helpers.leakcheck()

  it("http.listen raises for a NaN timeout, at the caller's line", function()
    for _, k in ipairs { "header_timeout", "keepalive_timeout", "read_timeout", "drain" } do
      local ok, err = pcall(function() local s = http.listen("127.0.0.1", 0, function() end, { [k] = 0 / 0 }) return s end)
      assert.is_false(ok)
      assert.truthy(err:find("14%-11%-server%-option%-checks_spec.lua:%d+: bad argument #4 to 'listen' %(" .. k ..
                             " must be a number >= 0%)"), err)
    end
  end)

  it("server:close raises for a bad drain before it closes anything", function()
    helpers.run(function()
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        neap.sleep(30)
        res:send(200, "late")
      end))
      local _, port = srv:address()
      local t = neap.task(function() return http.get("http://127.0.0.1:" .. port .. "/", { timeout = 10 }) end)
      neap.sleep(0.1)
      for _, d in ipairs { "x", -1, 0 / 0 } do
        local ok, err = pcall(srv.close, srv, { drain = d })
        assert.is_false(ok)
        assert.truthy(err:find("bad argument #1 to 'close' (drain must be a number >= 0)", 1, true), err)
      end
      srv:close { drain = 0.1 }   -- still closes, and drains
      local ok, res, err = t:join { timeout = 5 }
      assert.is_true(ok)
      assert.is_nil(res)
      assert.equal("bad response: connection closed before a response", err)
    end)
  end)
end)
