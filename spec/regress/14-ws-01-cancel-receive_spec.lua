-- 14, WebSocket red team: a task cancelled while parked in ws:receive left
-- the websocket marked as receiving: every later receive raised "another
-- task is already receiving" and ws:close() waited close_timeout for a
-- reader that was gone, then said "timeout"; a closer cancelled in its wait
-- left the connection open.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

local function echo_server()
  local srv = assert(http.listen("127.0.0.1", 0, function(req)
    local ws = req:websocket()
    if not ws then return end
    while true do
      local d, kind = ws:receive()
      if not d then return end
      ws:send(d, kind)
    end
  end))
  local _, port = srv:address()
  return srv, "ws://127.0.0.1:" .. port .. "/"
end

describe("14-ws-01: cancelling a task in ws:receive or ws:close", function()
  helpers.leakcheck()

  it("frees the websocket for another receive and for close", function()
    helpers.run(function()
      local srv, url = echo_server()
      local ws = assert(http.websocket(url, { close_timeout = 5 }))
      local t = neap.task(function() return ws:receive() end)
      neap.sleep(0.05)
      t:cancel()
      assert.same({ nil, "cancelled", "cancelled" }, { t:join() })
      assert(ws:send("after"))
      assert.same({ "after", "text" }, { ws:receive { timeout = 5 } })
      local t0 = core.now()
      assert.is_true(ws:close(1000))
      assert.is_true(core.now() - t0 < 4)   -- answered, not close_timeout
      assert.same({ nil, "closed", 1000, "" }, { ws:receive() })
      srv:close()
    end)
  end)

  it("closes the connection when the closer itself is cancelled", function()
    helpers.run(function()
      local release = false
      local srv = assert(http.listen("127.0.0.1", 0, function(req)
        assert(req:websocket())
        while not release do neap.sleep(0.02) end   -- never answers the close
      end))
      local _, port = srv:address()
      local ws = assert(http.websocket("ws://127.0.0.1:" .. port .. "/", { close_timeout = 10 }))
      local r = neap.task(function() return ws:receive() end)
      neap.sleep(0.05)
      local c = neap.task(function() return ws:close() end)
      neap.sleep(0.1)   -- c waits for r to read the answer
      c:cancel()
      assert.same({ nil, "cancelled", "cancelled" }, { c:join() })
      -- the connection is closed: the receive ends now, not after 10 s
      assert.same({ true, nil, "closed", 1006, "" }, { r:join { timeout = 3 } })
      release = true
      srv:close()
    end)
  end)
end)
