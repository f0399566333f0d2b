-- Issue 14 (red team): res:header took a list of lists (the response then
-- failed inside table.concat after it was marked started: the client got
-- no response at all) and header names that are not tokens ("X(A)", which
-- made the whole response unparsable for a client); and a Content-Length
-- that is not digits ("abc", "-5", "1e3") went out as the framing of a
-- keep-alive response.
local http = require "neap.http"
local helpers = require "helpers"

describe("regress 14.3: res:header checks its name and list values", function()
  helpers.leakcheck()

  it("raises for a list of lists and a name that is not a token; the response still goes", function()
    helpers.run(function()
      local errs = {}
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        local ok, err = pcall(res.header, res, "X-A", { { "a" } })
        errs[1] = not ok and err
        ok, err = pcall(res.header, res, "X(A)", "a")
        errs[2] = not ok and err
        ok, err = pcall(res.header, res, "X A", "a")
        errs[3] = not ok and err
        ok, err = pcall(res.send, res, 200, "body", { ["X\"Y"] = "1" })
        errs[4] = not ok and err
        res:header("Set-Cookie", { "a=1", 2 })
        res:send(200, "body")
      end))
      local _, port = srv:address()
      local r = assert(http.get("http://127.0.0.1:" .. port .. "/", { timeout = 5 }))
      assert.equal(200, r.status)
      assert.equal("body", r.body)
      assert.same({ "a=1", "2" }, r.headers["set-cookie"])
      assert.truthy(tostring(errs[1]):find("bad argument #2 to 'header' (a header list holds strings or numbers, got table)", 1, true), errs[1])
      assert.truthy(tostring(errs[2]):find("bad argument #1 to 'header' (bad header name \"X(A)\")", 1, true), errs[2])
      assert.truthy(tostring(errs[3]):find("bad header name", 1, true), errs[3])
      assert.truthy(tostring(errs[4]):find("bad header name", 1, true), errs[4])
      http.close_idle()
      srv:close()
    end)
  end)

  it("raises for a Content-Length that is not an integer >= 0", function()
    helpers.run(function()
      local errs = {}
      local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
        for i, v in ipairs { "abc", "-5", "1e3", 5.5, { "5" }, "" } do
          local ok, err = pcall(res.header, res, "Content-Length", v)
          errs[i] = not ok and err or "accepted"
        end
        local ok, err = pcall(res.send, res, 200, "abc", { ["content-length"] = "x" })
        errs[#errs + 1] = not ok and err or "accepted"
        res:header("Content-Length", 3)
        res:send(200, "abc")
      end))
      local _, port = srv:address()
      local r = assert(http.get("http://127.0.0.1:" .. port .. "/", { timeout = 5 }))
      assert.equal("abc", r.body)
      assert.equal(7, #errs)
      for i, e in ipairs(errs) do
        assert.truthy(tostring(e):find("(Content-Length must be an integer >= 0)", 1, true), i .. ": " .. tostring(e))
      end
      http.close_idle()
      srv:close()
    end)
  end)
end)
