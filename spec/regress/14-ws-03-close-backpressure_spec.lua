-- 14, WebSocket red team: a peer that stops reading. ws:close() wrote its
-- close frame behind a full write queue and parked on backpressure with no
-- limit: close_timeout was not kept, and a handler returning with its
-- websocket open (closed by neap.http) held the connection forever. The
-- frames of the closing handshake now wait at most close_timeout.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-03: closing a websocket whose peer does not read", function()
  helpers.leakcheck()

  it("keeps close_timeout when the write queue is full", function()
    helpers.run(function()
      local result
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket { close_timeout = 0.5 })
        local s = neap.task(function() return ws:send(string.rep("x", 16 * 1024 * 1024), "binary") end)
        neap.sleep(0.2)   -- s waits on the high-water mark: the peer reads nothing
        local t0 = core.now()
        local r = table.pack(ws:close(1001))
        result = { r[1], r[2], core.now() - t0 }
        s:join()
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
      assert(c:read_until("\r\n\r\n", { timeout = 5 }))
      local t0 = core.now()
      while not result and core.now() - t0 < 4 do neap.sleep(0.05) end
      assert.is_table(result, "ws:close() still waiting after 4 s")
      assert.equal("timeout", result[2])
      -- the server closed the connection: the client reads to its end
      c:set_limits { read_high_water = 1024 * 1024 }
      local n = 0
      while true do
        local d = c:read(1024 * 1024, { timeout = 5 })
        if not d then break end
        n = n + #d
      end
      c:close()
      srv:close()
    end)
  end)
end)
