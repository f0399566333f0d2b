-- Issue 14 (red team): the caller's Content-Length (used as the framing of
-- a body function) was not checked: a list went out as
-- "Content-Length: table: 0x...", a float as "3.0", and a body function
-- that gave more bytes than it said sent them on, where the server read
-- them as another request (a request smuggled by the caller's data, whose
-- response a pooled connection could then hand to the next request).
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"

local function chunks(t)
  local i = 0
  return function() i = i + 1 return t[i] end
end

describe("regress 14.9: the caller's Content-Length with a body function", function()
  helpers.leakcheck()

  it("must be one integer >= 0", function()
    for _, v in ipairs { { "3" }, "abc", "-1", "1.5", -1, 1.5, "3, 3", "99999999999999999999" } do
      local ok, err = pcall(http.request, { url = "http://127.0.0.1:9/", method = "POST",
        headers = { ["Content-Length"] = v }, body = chunks { "abc" } })
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #1 to 'http.request' (header Content-Length must be an integer >= 0)", 1, true), err)
    end
  end)

  it("is sent as an integer, and the body must have exactly that many bytes", function()
    helpers.run(function()
      local got = {}
      local srv, port = helpers.server(function(c)
        local line = c:read_line { timeout = 5 }
        local h = {}
        while true do
          local l = c:read_line { timeout = 5 }
          if not l or l == "" then break end
          h[#h + 1] = l
        end
        local rest = {}
        while true do   -- whatever comes within 0.3 s
          local d = c:read(65536, { timeout = 0.3 })
          if not d then break end
          rest[#rest + 1] = d
        end
        got[#got + 1] = { line = line, headers = table.concat(h, "|"), rest = table.concat(rest) }
        c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
      end)
      local url = "http://127.0.0.1:" .. port .. "/"
      local res = assert(http.request { url = url, method = "POST", timeout = 5,
        headers = { ["Content-Length"] = 3.0 }, body = chunks { "a", "bc" } })
      assert.equal("ok", res.body)
      assert.truthy((got[1].headers .. "|"):find("|Content-Length: 3|", 1, true), got[1].headers)
      assert.equal("abc", got[1].rest)
      local ok, err = pcall(http.request, { url = url, method = "POST", timeout = 5,
        headers = { ["Content-Length"] = "3" },
        body = chunks { "abc", "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" } })
      assert.is_false(ok)
      assert.equal("http.request: the body function gave more than its Content-Length 3", err)
      ok, err = pcall(http.request, { url = url, method = "POST", timeout = 5,
        headers = { ["Content-Length"] = "5" }, body = chunks { "abc" } })
      assert.is_false(ok)
      assert.equal("http.request: the body function ended 2 byte(s) short of its Content-Length 5", err)
      neap.sleep(0.5)
      for _, g in ipairs(got) do
        assert.falsy((g.rest or ""):find("smuggled", 1, true), g.rest)
      end
      srv:close()
      http.close_idle()
    end)
  end)
end)
