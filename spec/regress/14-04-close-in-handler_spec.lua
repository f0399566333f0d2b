-- Issue 14, item 4c: server:close() called by a handler waited for every
-- connection in flight, its own included, so it always sat out the whole
-- drain time and then closed its own connection before the handler could
-- answer. It waits for the other requests in flight now and leaves the
-- caller's connection to close after its response.
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

local function get(port, path)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  assert(c:write("GET " .. path .. " HTTP/1.1\r\nHost: h\r\n\r\n"))
  local out = c:read_all { timeout = 15 }
  c:close()
  return out
end

describe("regress 14.4c: server:close() in a handler", function()
  helpers.leakcheck()

  it("waits for the other requests, not for its own, and its response goes out", function()
    helpers.run(function()
      local srv, closed_after, slow_done
      srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/slow" then
          neap.sleep(0.5)
          slow_done = neap.now()
          res:send(200, "slow done")
        else
          local t0 = neap.now()
          srv:close { drain = 10 }
          closed_after = neap.now() - t0
          res:send(200, "bye")
        end
      end))
      local _, port = srv:address()
      local slow = neap.task(get, port, "/slow")
      neap.sleep(0.1)
      local t0 = neap.now()
      local out = get(port, "/stop")
      local took = neap.now() - t0
      assert.truthy(out:find("\r\n\r\nbye$"), out)
      assert.truthy(out:find("Connection: close", 1, true), out)
      local ok, sout = slow:join { timeout = 5 }
      assert.is_true(ok)
      assert.truthy(sout:find("\r\n\r\nslow done$"), sout)
      assert.is_number(slow_done)
      -- it waited for /slow (0.4 s more), far less than the 10 s of drain
      assert.is_true(closed_after >= 0.3 and closed_after < 5, "close took " .. closed_after .. " s")
      assert.is_true(took < 5, "the request took " .. took .. " s")
    end, 20)
  end)

  it("returns at once when the caller's is the only connection", function()
    helpers.run(function()
      local srv, closed_after
      srv = assert(http.listen("127.0.0.1", 0, function(_, res)
        local t0 = neap.now()
        srv:close { drain = 10 }
        closed_after = neap.now() - t0
        res:send(200, "bye")
      end))
      local _, port = srv:address()
      local out = get(port, "/stop")
      assert.truthy(out:find("\r\n\r\nbye$"), out)
      assert.is_true(closed_after < 2, "close took " .. closed_after .. " s")
    end, 20)
  end)
end)
