-- Issue 14, item 4b: neap.http gave an emptied connection buffer back to
-- malloc, not to the host's cache of read blocks, so every keep-alive
-- request cost a free and a malloc of 64 KiB. It goes to the cache now, as
-- an emptied stream's buffer does after a read. Over TLS the plaintext
-- buffer was not a cache block at all (malloc of 16 KiB, a realloc to 32 KiB
-- that copied it, a free: per request); it is a block from the cache now.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.4b: an idle keep-alive connection", function()
  helpers.leakcheck()

  it("gives its read block back to the block cache", function()
    helpers.run(function()
      local counts = {}
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        -- the head was consumed and the buffer is empty: its block is in the cache
        counts[#counts + 1] = core._block_count()
        res:send(200, "ok")
      end))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      for i = 1, 3 do
        -- the client's own stream takes no block until the response comes,
        -- and gives it back when it has read it
        local before = core._block_count()
        assert(c:write("GET /" .. i .. " HTTP/1.1\r\nHost: h\r\n\r\n"))
        local head = assert(c:read_until("\r\n\r\n", { timeout = 5 }))
        assert.truthy(head:find("^HTTP/1.1 200 OK"))
        assert.equal("ok", c:read_exactly(2, { timeout = 5 }))
        assert.equal(math.max(before, 1), counts[i], "request " .. i)
      end
      c:close()
      srv:close()
    end)
  end)

  it("over TLS too: its plaintext buffer is a block of the cache (a fresh process)", function()
    local dir = helpers.tmpdir()
    local _, rc = helpers.sh("sh spec/c/mkcerts.sh " .. dir)
    assert.equal(0, rc)
    local script = helpers.tmpfile([[
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local dir = ...
local counts = {}
local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
  counts[#counts + 1] = core._block_count()
  res:send(200, "ok")
end, { tls = { cert = dir .. "/server.pem", key = dir .. "/server.key" } }))
local _, port = srv:address()
local c = assert(neap.connect("tls", "127.0.0.1", port, { ca = dir .. "/ca.pem", timeout = 10 }))
for i = 1, 3 do
  assert(c:write("GET /" .. i .. " HTTP/1.1\r\nHost: h\r\n\r\n"))
  assert(c:read_until("\r\n\r\n", { timeout = 10 }))
  assert(c:read_exactly(2, { timeout = 10 }) == "ok")
end
c:close()
srv:close()
print("counts " .. table.concat(counts, " "))
]])
    local out, code = helpers.neap(script .. " " .. dir)
    os.remove(script)
    os.execute("rm -rf " .. dir)
    assert.equal(0, code, out)
    -- the server's block is in the cache while its handler runs (the
    -- client's own is there too after the first response)
    assert.equal("counts 1 2 2\n", out)
  end)
end)
