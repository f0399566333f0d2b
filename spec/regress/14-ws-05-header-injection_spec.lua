-- 14, WebSocket red team: http.websocket put the URL's path, opts.origin
-- and opts.protocols into its upgrade request as they were: a CR LF in any
-- of them ended the request line or added headers of the caller's choice
-- (request splitting), where http.request refuses such a URL.
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("14-ws-05: http.websocket and control characters", function()
  helpers.leakcheck()

  it("refuses them in the URL, the origin and the protocols", function()
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      local base = "ws://127.0.0.1:" .. port
      local seen = {}
      local t = neap.task(function()
        while true do
          local c = srv:accept()
          if not c then return end
          seen[#seen + 1] = c:read_until("\r\n\r\n", { timeout = 5 }) or "?"
          c:close()
        end
      end)
      local cases = {
        { base .. "/x HTTP/1.1\r\nX-Injected: 1\r\nY: /", nil,
          "the path holds a blank or a control character" },
        { base .. "/a b", nil, "the path holds a blank or a control character" },
        { "ws://bad\r\nhost:" .. port .. "/", nil, "bad host" },
        { base .. "/", { origin = "o\r\nX-Injected: 2" }, "origin must be a string with no control characters" },
        { base .. "/", { protocols = { "a\r\nX-Injected: 3" } }, "protocols must be tokens" },
        { base .. "/", { protocols = { "a, b" } }, "protocols must be tokens" },
      }
      for i, case in ipairs(cases) do
        local ok, err = pcall(http.websocket, case[1], case[2] or { timeout = 1 })
        assert.is_false(ok, "case " .. i)
        assert.matches("bad argument #%d to 'websocket' %(.*" .. case[3]:gsub("%p", "%%%0"), err)
      end
      neap.sleep(0.1)
      assert.same({}, seen)   -- nothing was sent
      srv:close()
      t:join()
    end)
  end)

  it("still takes plain URLs and options", function()
    local ws = require "neap.websocket"
    assert.same({ "ws", "::1", 8080, "/p?q=1", "[::1]:8080" }, { ws.parse_url("ws://[::1]:8080/p?q=1#f") })
    assert.same({ "wss", "example.com", 443, "/", "example.com" }, { ws.parse_url("wss://example.com") })
  end)
end)
