-- Issue 14 (red team): a handler that set Content-Length and then wrote
-- more (res:write, or res:send with a longer body; say a file that grew
-- while it was streamed) had the extra bytes sent on a keep-alive
-- connection, where a client or proxy reads them as the next response
-- (response splitting). Now that raises and nothing past it is sent.
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.10: a body past the handler's Content-Length", function()
  helpers.leakcheck()

  it("raises in res:write and res:send; no byte past it reaches the client", function()
    helpers.run(function()
      local errs = {}
      local evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/write" then
          res:start(200, { ["Content-Length"] = 3 })
          res:write("ab")
          local ok, err = pcall(res.write, res, "c" .. evil)
          errs.write = err
          res:write("c")
          res:finish()
        elseif req.path == "/send" then
          local ok, err = pcall(res.send, res, 200, "abc" .. evil, { ["content-length"] = "3" })
          errs.send = err
          res:send(200, "abc", { ["content-length"] = "3" })
        else
          res:send(200, "next")
        end
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      for _, path in ipairs { "/write", "/send" } do
        c:write("GET " .. path .. " HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        local got = {}
        while true do   -- two responses: "abc" then "next"
          local d = c:read(65536, { timeout = 5 })
          if not d then break end
          got[#got + 1] = d
          local all = table.concat(got)
          if all:find("next", 1, true) or all:find("evil", 1, true) then break end
        end
        local all = table.concat(got)
        assert.falsy(all:find("evil", 1, true), all)
        local body1 = all:match("^HTTP/1.1 200 OK\r\n.-\r\n\r\n(abc)HTTP/1.1 200 OK\r\n")
        assert.equal("abc", body1, all)
        assert.truthy(all:find("\r\n\r\nnext$"), all)
      end
      assert.truthy(tostring(errs.write):find("write: " .. (#evil + 0) .. " byte(s) past the Content-Length 3", 1, true), errs.write)
      assert.truthy(tostring(errs.send):find("send: the body (" .. (3 + #evil) .. " bytes) is longer than the Content-Length 3", 1, true), errs.send)
      c:close()
      srv:close()
    end)
  end)

  it("res:send with an empty body shorter than it closes the connection (no desync)", function()
    helpers.run(function()
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/a" then res:send(200, "", { ["Content-Length"] = "5" })
        else res:send(200, "second-response") end
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
      local all = c:read_all { timeout = 5 }
      assert.truthy(all, "no close")
      assert.truthy(all:find("\r\nConnection: close\r\n\r\n$"), all)
      assert.falsy(all:find("second-response", 1, true), all)
      c:close()
      srv:close()
    end)
  end)
end)
