-- Issue 14 (red team): with follow = n (and no stream), the body of a
-- redirect was read whole before it was followed: a 302 with a 200 MB body
-- grew memory by 200 MB (docs/http.md promised "a long one closes its
-- connection"), and one whose body never ended kept the request waiting
-- until the timeout. Now only up to 64 KiB of it is read.
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.5: the body of a redirect that is followed", function()
  helpers.leakcheck()

  it("is not read whole: a body that never ends does not stop the redirect", function()
    helpers.run(function()
      local dest = assert(http.listen("127.0.0.1", 0, function(req, res) res:send(200, "here") end))
      local _, dport = dest:address()
      local live = {}
      local srv, port = helpers.server(function(c)
        live[c] = true
        repeat local l = c:read_line { timeout = 5 } until not l or l == ""
        c:write("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:" .. dport .. "/there\r\n" ..
                "Transfer-Encoding: chunked\r\n\r\n")
        local piece = "4000\r\n" .. string.rep("x", 0x4000) .. "\r\n"
        while c:write(piece) do neap.sleep(0.01) end   -- never the last chunk
        live[c] = nil
      end)
      local base = "http://127.0.0.1:" .. port
      for _ = 1, 2 do
        local res, err = http.get(base .. "/", { follow = 1, timeout = 3 })
        assert(res, err)
        assert.equal(200, res.status)
        assert.equal("here", res.body)
        assert.equal("http://127.0.0.1:" .. dport .. "/there", res.url)
      end
      srv:close()
      for c in pairs(live) do c:close() end
      http.close_idle()
      dest:close()
    end)
  end)

  it("with a big Content-Length, does not grow memory by that much", function()
    helpers.run(function()
      local dest = assert(http.listen("127.0.0.1", 0, function(req, res) res:send(200, "here") end))
      local _, dport = dest:address()
      local chunk = string.rep("y", 1 << 20)
      local srv, port = helpers.server(function(c)
        repeat local l = c:read_line { timeout = 5 } until not l or l == ""
        c:write("HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:" .. dport .. "/\r\n" ..
                "Content-Length: " .. (64 << 20) .. "\r\n\r\n")
        for _ = 1, 64 do if not c:write(chunk) then break end end
        c:close()
      end)
      collectgarbage()
      local before = helpers.rss_kb()
      local res = assert(http.get("http://127.0.0.1:" .. port .. "/", { follow = 1, timeout = 10 }))
      assert.equal("here", res.body)
      local grew = helpers.rss_kb() - before
      assert.is_true(grew < 32 * 1024, "RSS grew by " .. grew .. " kB")
      srv:close()
      http.close_idle()
      dest:close()
    end)
  end)
end)
