-- Issue 14 (red team): a request object kept past its handler (a task the
-- handler started, reading the body later) read the body of the NEXT
-- request on the connection (a keep-alive connection, maybe a proxy's,
-- carrying another user's request): req:body() returned its bytes, and
-- cached them for the next handler too. Now such a request reads the end
-- of its own body: "" / eof when it was complete, else nil, "closed".
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.13: a request read after its handler returned", function()
  helpers.leakcheck()

  it("never gets the next request's body", function()
    helpers.run(function()
      local stale, second = {}, {}
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        if req.path == "/first" or req.path == "/upload" then
          neap.task(function()
            neap.sleep(0.2)
            stale[req.path] = table.pack(req:body())
            stale[req.path .. ":read"] = table.pack(req:read())
          end)
          res:send(200, "first")
        else
          neap.sleep(0.4)
          second[#second + 1] = req:body()
          res:send(200, "second")
        end
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      c:write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
      neap.sleep(0.1)
      c:write("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nsecret2")
      c:write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
      neap.sleep(0.1)
      c:write("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nsecret3")
      local got = {}
      while true do
        local d = c:read(65536, { timeout = 5 })
        if not d then break end
        got[#got + 1] = d
        local _, n = table.concat(got):gsub("HTTP/1.1 200", "")
        if n == 4 and table.concat(got):sub(-6) == "second" then break end
      end
      neap.sleep(0.3)
      assert.same({ n = 1, "" }, stale["/first"])
      assert.same({ n = 3, nil, "eof", "eof" }, stale["/first:read"])
      assert.same({ n = 3, nil, "closed", "ECLOSED" }, stale["/upload"])   -- drained by the server
      assert.same({ n = 3, nil, "closed", "ECLOSED" }, stale["/upload:read"])
      assert.same({ "secret2", "secret3" }, second)
      c:close()
      srv:close()
    end)
  end)
end)
