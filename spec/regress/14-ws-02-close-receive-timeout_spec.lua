-- 14, WebSocket red team: ws:close() while another task is in
-- ws:receive{timeout=} waited for that task to read the peer's answer; when
-- the receive timed out first, nobody read it, and close waited the whole
-- close_timeout and said "timeout" although the peer had answered.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-02: close racing a receive that times out", function()
  helpers.leakcheck()

  it("reads the peer's answer itself once the receive has left", function()
    helpers.run(function()
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket())
        neap.sleep(0.3)   -- answers the close late, after the receive's timeout
        while ws:receive() do end
      end))
      local _, port = srv:address()
      local ws = assert(http.websocket("ws://127.0.0.1:" .. port .. "/", { close_timeout = 8 }))
      local r = neap.task(function() return ws:receive { timeout = 0.1 } end)
      neap.sleep(0.01)
      local t0 = core.now()
      assert.same({ true }, { ws:close(4000, "bye") })
      assert.is_true(core.now() - t0 < 5)
      assert.same({ true, nil, "timeout", "timeout" }, { r:join() })
      assert.same({ nil, "closed", 4000, "" }, { ws:receive() })
      srv:close()
    end)
  end)
end)
