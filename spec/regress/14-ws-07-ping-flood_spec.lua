-- 14, WebSocket red team: a peer that floods pings and never reads. Each
-- ping's pong was written by ws:receive, which parked on the write queue's
-- high-water mark once the peer stopped reading: receive{timeout=} no
-- longer kept its timeout (it waited as long as the peer liked). A pong is
-- now dropped when the queue is near its high-water mark (RFC 6455 5.5.3:
-- answering only the latest ping is allowed), so memory stays bounded and
-- receive never waits on a pong.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-07: a ping flood from a peer that does not read", function()
  helpers.leakcheck()

  it("does not hold ws:receive past its timeout", function()
    helpers.run(function()
      local res
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket { close_timeout = 0.5 })
        res = { ws:receive { timeout = 0.5 } }
        res.queued = req._conn.c:write_queue_size()
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
      assert(c:read_until("\r\n\r\n", { timeout = 5 }))
      local burst = string.rep(string.pack("BB", 0x89, 0x80 | 125) .. "\1\2\3\4" .. string.rep("p", 125), 1000)
      c:set_limits { write_timeout = 0.2 }
      local t0 = core.now()
      while not res and core.now() - t0 < 4 do
        c:write(burst)
        neap.sleep(0)
      end
      c:close()
      assert.is_table(res, "ws:receive{timeout=0.5} still waiting after 4 s of pings")
      assert.same({ nil, "timeout", "timeout" }, { res[1], res[2], res[3] })
      assert.is_true(res.queued <= 262144)   -- (the default high_water)
      neap.sleep(0.2)
      srv:close()
    end)
  end)
end)
