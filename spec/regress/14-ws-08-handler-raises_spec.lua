-- 14, WebSocket red team: a handler that raised with its websocket open had
-- it closed with 1000 (normal closure), as if all had gone well; the peer
-- now gets 1011 (internal error, RFC 6455 7.4.1).
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-08: a handler that raises with its websocket open", function()
  helpers.leakcheck()

  it("closes it with 1011, and with 1000 when it returns", function()
    helpers.run(function()
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket())
        local d = ws:receive { timeout = 5 }
        if d == "raise" then error("handler exploded (on purpose)") end
      end))
      local _, port = srv:address()
      local url = "ws://127.0.0.1:" .. port .. "/"
      for _, case in ipairs { { "raise", 1011 }, { "return", 1000 } } do
        local ws = assert(http.websocket(url))
        assert(ws:send(case[1]))
        local d, err, code = ws:receive { timeout = 5 }
        assert.same({ nil, "closed", case[2] }, { d, err, code })
      end
      srv:close()
    end)
  end)
end)
