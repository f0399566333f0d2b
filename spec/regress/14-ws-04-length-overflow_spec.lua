-- 14, WebSocket red team: with max_message = math.maxinteger (no limit), a
-- frame claiming 2^63-1 bytes passed the size checks and the reader said
-- it needed hlen + 2^63-1 bytes: a negative Lua integer, and ws:receive
-- raised "bad argument #2 to 'wait_readable'" instead of closing with 1009.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-04: a 63-bit frame length with max_message = math.maxinteger", function()
  helpers.leakcheck()

  it("is a message too large for the frame reader", function()
    for _, masked in ipairs { true, false } do
      local r, b = core.ws_reader(masked, math.maxinteger), core.buffer()
      b:feed(string.pack(">BBI8", 0x82, (masked and 0x80 or 0) | 127, math.maxinteger) ..
             (masked and "\1\2\3\4" or ""))
      assert.same({ nil, "message too large", 1009 }, { r:read(b) })
    end
  end)

  it("closes the websocket with 1009", function()
    helpers.run(function()
      local got
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket { max_message = math.maxinteger, close_timeout = 0.5 })
        got = table.pack(pcall(ws.receive, ws))
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
      assert(c:read_until("\r\n\r\n", { timeout = 5 }))
      c:write(string.pack(">BBI8", 0x82, 0xFF, math.maxinteger) .. "\1\2\3\4")
      local h = assert(c:read_exactly(4, { timeout = 5 }))
      assert.equal(1009, string.unpack(">I2", h, 3))
      c:close()
      local t0 = core.now()
      while not got and core.now() - t0 < 5 do neap.sleep(0.02) end
      assert.same({ true, nil, "closed", 1009, "message too large", n = 5 }, got)
      srv:close()
    end)
  end)
end)
