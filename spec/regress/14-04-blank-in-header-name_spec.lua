-- Issue 14 (red team): llhttp (not built in strict mode) lets a blank into
-- a request's header name: "Host : evil" reached the handler as a header
-- "host " (req.headers.host nil), where a proxy in front may have read it
-- as Host. RFC 9112 5.1: a server must answer 400.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.4: a blank in a request's header name", function()
  helpers.leakcheck()

  it("is a parse error, whatever the split", function()
    local msg = "GET / HTTP/1.1\r\nHost: h\r\nX Y : 1\r\n\r\n"
    for cut = 1, #msg - 1 do
      local p, b = core.http_parser("request"), core.buffer()
      b:feed(msg:sub(1, cut))
      local h, err, code = p:head(b)
      if not h and code == "more" then
        b:feed(msg:sub(cut + 1))
        h, err, code = p:head(b)
      end
      assert.is_nil(h)
      assert.equal("EPROTO", code)
      assert.equal("Invalid header field char", err)
    end
  end)

  it("gets a 400 from the server, and the handler does not run", function()
    helpers.run(function()
      local calls = 0
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        calls = calls + 1
        res:send(200, tostring(req.headers.host))
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET / HTTP/1.1\r\nHost : evil\r\n\r\n")
      assert.equal("HTTP/1.1 400 Bad Request", c:read_line { timeout = 5 })
      assert.equal(0, calls)
      c:close()
      srv:close()
    end)
  end)
end)
