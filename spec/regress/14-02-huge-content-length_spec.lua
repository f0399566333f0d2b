-- Issue 14 (red team): a Content-Length above 2^63-1 (llhttp takes up to
-- 2^64-1) came out of p:head as a negative length (a uint64 cast to
-- lua_Integer): the server's "too large, known at once" checks compared a
-- negative number, so req:body() waited for a body it would refuse anyway
-- and the 413 came only after read_timeout, if at all.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.2: a Content-Length over 2^63-1", function()
  helpers.leakcheck()

  it("is a positive length in the parsed head (requests and responses)", function()
    for _, cl in ipairs { "18446744073709551615", "9223372036854775808" } do
      local p, b = core.http_parser("request"), core.buffer()
      b:feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " .. cl .. "\r\n\r\nabc")
      local h = assert(p:head(b))
      assert.equal("length", h.body)
      assert.is_true(h.length > 2 ^ 62, tostring(h.length))
      p, b = core.http_parser("response"), core.buffer()
      b:feed("HTTP/1.1 200 OK\r\nContent-Length: " .. cl .. "\r\n\r\n")
      h = assert(p:head(b))
      assert.is_true(h.length > 2 ^ 62, tostring(h.length))
    end
  end)

  it("makes req:body() say too large at once, and the server answer 413", function()
    helpers.run(function()
      local got
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        got = table.pack(req:body())
      end, { read_timeout = 30 }))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\nabc")
      local line = c:read_line { timeout = 5 }
      assert.equal("HTTP/1.1 413 Content Too Large", line)
      assert.same({ n = 3, nil, "too large", "E2BIG" }, got)
      c:close()
      srv:close()
    end)
  end)
end)
