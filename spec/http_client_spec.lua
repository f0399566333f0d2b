-- neap.http's client: against neap's own server, raw TCP servers that
-- misbehave on purpose, Python's http.server and a Node http server (http
-- and https on both sides), the pool, redirects, errors, stream mode.
local neap = require "neap"
local http = require "neap.http"
local helpers = require "helpers"
local T = require "tls_helpers"

-- helpers.run, then the pool's idle connections closed (leakcheck counts them)
local function run(fn, timeout)
  return helpers.run(function()
    fn()
    http.close_idle()
  end, timeout)
end

local function server(handler, opts)
  local srv = assert(http.listen("127.0.0.1", 0, handler, opts))
  local _, port = srv:address()
  return srv, "http://127.0.0.1:" .. port, port
end

-- Reads a request head from a raw connection: -> request line, headers, body
local function read_request(c)
  local line = c:read_line { timeout = 5 }
  if not line then return nil end
  local h = {}
  while true do
    local l = assert(c:read_line { timeout = 5 })
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.-)%s*$")
    h[k:lower()] = v
  end
  local body = ""
  if h["content-length"] then body = c:read_exactly(tonumber(h["content-length"]), { timeout = 5 }) end
  return line, h, body
end

-- A raw TCP server: fn(c, n) per connection (n counts connections);
-- -> server, base URL, count(); server:close() closes its connections too
local function raw(fn)
  local n, live = 0, {}
  local srv, port = helpers.server(function(c)
    n = n + 1
    live[c] = true
    fn(c, n)
    live[c] = nil
  end)
  local stop = { close = function()
    srv:close()
    for c in pairs(live) do c:close() end
  end }
  return stop, "http://127.0.0.1:" .. port, function() return n end
end

-- A relay in front of port that counts connections: -> relay port, relay,
-- count(); relay:close() closes its connections too
local function counting_relay(port)
  local n, live = 0, {}
  local rport, srv = T.relay(port, function(c, up)
    n = n + 1
    live[c], live[up] = true, true
    local t = neap.task(T.pump, up, c)
    T.pump(c, up)
    t:join { timeout = 30 }
    live[c], live[up] = nil, nil
  end)
  local stop = { close = function()
    srv:close()
    for c in pairs(live) do c:close() end
  end }
  return rport, stop, function() return n end
end

local function echo(req, res)
  local body = assert(req:body())
  res:header("X-Twice", "1")
  res:send(200, table.concat({ req.method, req.target, req.headers["user-agent"] or "-",
    req.headers.host or "-", req.headers["transfer-encoding"] or "-",
    req.headers["content-length"] or "-", req.headers.connection or "-", body }, "|"),
    { ["Set-Cookie"] = { "a=1", "b=2" } })
end

local function ends(s, suffix)
  return s:sub(-#suffix) == suffix
end

-- Chunks of t as a body function
local function chunks(t)
  local i = 0
  return function()
    i = i + 1
    return t[i]
  end
end

describe("neap.http client", function()
  helpers.leakcheck()

  describe("the response parser (neap.buffer, no I/O)", function()
    it("reads no body after HEAD (no_body) nor for 1xx, 204 and 304, whatever the headers", function()
      local core = require "neap.core"
      local p, b = core.http_parser("response"), core.buffer()
      b:feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" ..
             "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n" ..
             "HTTP/1.1 100 Continue\r\n\r\n" ..
             "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n" ..
             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
      local h = assert(p:head(b, nil, true))
      assert.same({ 200, "none", true }, { h.status, h.body, h.keep_alive })
      for _, st in ipairs { 304, 100, 204 } do
        h = assert(p:head(b))
        assert.same({ st, "none", true }, { h.status, h.body, h.keep_alive })
      end
      h = assert(p:head(b))
      assert.same({ 200, "length", 2 }, { h.status, h.body, h.length })
      assert.same({ "hi", true }, { p:body(b) })
      -- a HEAD response with no length keeps its connection; what follows is the next response
      p, b = core.http_parser("response"), core.buffer()
      b:feed("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
      h = assert(p:head(b, nil, true))
      assert.same({ "none", true }, { h.body, h.keep_alive })
      assert.equal(404, assert(p:head(b)).status)
    end)
  end)

  describe("against neap's own server", function()
    it("GETs: status, lower-case headers, set-cookie as a list, Host and User-Agent sent", function()
      run(function()
        local srv, u, port = server(echo)
        local res = assert(http.get(u .. "/a/b?x=1"))
        srv:close()
        assert.equal(200, res.status)
        assert.equal("OK", res.reason)
        assert.equal("1.1", res.version)
        assert.same({ "a=1", "b=2" }, res.headers["set-cookie"])
        assert.equal("1", res.headers["x-twice"])
        assert.equal("GET|/a/b?x=1|neap/" .. neap.version .. "|127.0.0.1:" .. port .. "|-|-|-|", res.body)
        assert.equal(u .. "/a/b?x=1", res.url)
        -- an IPv6 address in brackets, also in the Host header
        local ok6, srv6 = pcall(http.listen, "::1", 0, echo)
        if ok6 and srv6 then
          local _, p6 = srv6:address()
          res = assert(http.get("http://[::1]:" .. p6 .. "/six"))
          assert.equal("GET|/six|neap/" .. neap.version .. "|[::1]:" .. p6 .. "|-|-|-|", res.body)
          srv6:close()
        end
      end)
    end)

    it("sends a string body with Content-Length, a function's chunks chunked", function()
      run(function()
        local srv, u = server(echo)
        local res = assert(http.request { url = u .. "/s", method = "POST", body = "xyz" })
        assert.equal("POST|/s|neap/" .. neap.version .. "|" .. u:sub(8) .. "|-|3|-|xyz", res.body)
        res = assert(http.request { url = u .. "/f", method = "PUT", body = chunks { "ab", "", "cde", "f" } })
        assert.truthy(ends(res.body, "|chunked|-|-|abcdef"), res.body)
        -- a function with the caller's Content-Length: sent plain
        res = assert(http.request { url = u .. "/f", method = "PUT", headers = { ["Content-Length"] = 4 },
                                    body = chunks { "ab", "cd" } })
        assert.truthy(ends(res.body, "|-|4|-|abcd"), res.body)
        -- POST with no body says Content-Length: 0; headers of the caller win over Host and User-Agent
        res = assert(http.request { url = u .. "/e", method = "POST", headers = { Host = "example", ["User-Agent"] = "me" } })
        assert.equal("POST|/e|me|example|-|0|-|", res.body)
        srv:close()
      end)
    end)

    it("reads a chunked body, in pieces when streaming", function()
      run(function()
        local srv, u = server(function(_, res)
          res:start(200)
          for i = 1, 20 do res:write(("%03d,"):format(i)) neap.sleep(0.001) end
          res:finish()
        end)
        local res = assert(http.get(u .. "/"))
        assert.equal(80, #res.body)
        assert.truthy(res.body:find("^001,002,.*020,$"))
        res = assert(http.get(u .. "/", { stream = true }))
        assert.is_nil(res.body)
        local got = {}
        while true do
          local d, err, code = res:read(7)
          if not d then
            assert.same({ "eof", "eof" }, { err, code })
            break
          end
          assert.truthy(#d <= 7 and #d > 0)
          got[#got + 1] = d
        end
        assert.equal(80, #table.concat(got))
        assert.same({ nil, "eof", "eof" }, { res:read() })
        assert.is_true(res:close())
        srv:close()
      end)
    end)

    it("keeps one connection for sequential requests; pool = false makes one each and says close", function()
      run(function()
        local srv, _, port = server(echo)
        local rport, relay, count = counting_relay(port)
        local u = "http://127.0.0.1:" .. rport
        for i = 1, 5 do assert.equal(200, assert(http.get(u .. "/" .. i)).status) end
        assert.equal(1, count())
        local res
        for i = 1, 3 do res = assert(http.get(u .. "/" .. i, { pool = false })) end
        assert.equal(4, count())
        assert.truthy(ends(res.body, "|close|"), res.body)
        -- two at once: two connections, both kept and used again
        local function two()
          local t = neap.task(http.get, u .. "/t")
          local r = assert(http.get(u .. "/u"))
          local ok, r2 = t:join { timeout = 10 }
          assert.truthy(ok and r2 and r2.status == 200)
          assert.equal(200, r.status)
        end
        two()
        local after = count()
        assert.truthy(after == 5 or after == 6, "connections: " .. after)   -- the pooled one + at most one more
        two()
        assert.equal(after, count())
        assert.equal(after - 3, http.close_idle())   -- the 3 with pool = false were not kept
        relay:close()
        srv:close()
      end)
    end)

    it("skips the body of HEAD, 204 and 304 responses whatever their headers say", function()
      run(function()
        local srv, u, count = raw(function(c)
          while true do
            local line = read_request(c)
            if not line then return end
            local path = line:match("^%u+ (%S+)")
            if path == "/204" then c:write("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
            elseif path == "/304" then c:write("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")
            else c:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", line:find("^HEAD") and "" or "hello") end
          end
        end)
        local res = assert(http.request { url = u .. "/h", method = "HEAD" })
        assert.same({ 200, "", "5" }, { res.status, res.body, res.headers["content-length"] })
        res = assert(http.get(u .. "/204"))
        assert.same({ 204, "" }, { res.status, res.body })
        res = assert(http.get(u .. "/304"))
        assert.same({ 304, "" }, { res.status, res.body })
        res = assert(http.get(u .. "/x"))
        assert.same({ 200, "hello" }, { res.status, res.body })
        assert.equal(1, count())   -- the same connection all along: no body was expected
        http.close_idle()
        srv:close()
      end)
    end)

    it("skips 1xx interim responses", function()
      run(function()
        local srv, u = raw(function(c)
          read_request(c)
          c:write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
                  "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
          read_request(c)
        end)
        local res = assert(http.get(u .. "/"))
        assert.same({ 200, "body" }, { res.status, res.body })
        assert.is_nil(res.headers.link)
        http.close_idle()
        srv:close()
      end)
    end)

    it("reads a body that runs to the close, and does not keep that connection", function()
      run(function()
        local srv, u, count = raw(function(c)
          read_request(c)
          c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
          neap.sleep(0.05)
          c:write("the close")
        end)
        local res = assert(http.get(u .. "/"))
        assert.same({ 200, "until the close" }, { res.status, res.body })
        res = assert(http.get(u .. "/", { stream = true }))
        local got = {}
        for d in function() return res:read() end do got[#got + 1] = d end
        assert.equal("until the close", table.concat(got))
        assert.equal(2, count())
        assert.equal(0, http.close_idle())
        srv:close()
      end)
    end)

    it("retries a pooled connection the server closed, once, for idempotent requests", function()
      run(function()
        -- each connection answers its first request, then takes the next one and closes unanswered
        local srv, u, count = raw(function(c)
          local line = read_request(c)
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
          line = read_request(c)
          if line then c:close() end
        end)
        assert.equal("ok", assert(http.get(u .. "/1")).body)
        assert.equal("ok", assert(http.get(u .. "/2")).body)   -- pooled one dies: a new one
        assert.equal(2, count())
        assert.equal("ok", assert(http.request { url = u .. "/3", method = "PUT", body = "x" }).body)
        assert.equal(3, count())
        -- POST is not retried: the server may have acted on it
        local res, err, code = http.request { url = u .. "/4", method = "POST", body = "x" }
        assert.same({ nil, "bad response: connection closed before a response", "EPROTO" }, { res, err, code })
        assert.equal(3, count())
        -- a connection the server closed while idle is noticed before use
        local srv2, u2, count2 = raw(function(c)
          read_request(c)
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        end)
        assert.equal("ok", assert(http.get(u2 .. "/1")).body)
        neap.sleep(0.1)
        assert.equal("ok", assert(http.request { url = u2 .. "/2", method = "POST" }).body)
        assert.equal(2, count2())
        srv:close()
        srv2:close()
      end)
    end)

    it("follows redirects only when asked, at most follow times", function()
      run(function()
        local log = {}
        local srv, u = server(function(req, res)
          local body = assert(req:body())
          log[#log + 1] = req.method .. " " .. req.target .. " " .. body .. " " .. (req.headers.authorization or "-")
          local st, to = req.target:match("^/(%d+)(/.*)$")
          if st then return res:send(tonumber(st), "moved", { Location = to }) end
          if req.path == "/loop" then return res:send(302, "", { Location = "loop" }) end
          res:send(200, req.method .. " " .. req.target .. " " .. body)
        end)
        local res = assert(http.request { url = u .. "/301/a", method = "POST", body = "data" })
        assert.same({ 301, "/a", "moved" }, { res.status, res.headers.location, res.body })
        for _, st in ipairs { 301, 302, 303 } do
          res = assert(http.request { url = u .. "/" .. st .. "/x?q", method = "POST", body = "data", follow = 1 })
          assert.same({ 200, "GET /x?q ", u .. "/x?q" }, { res.status, res.body, res.url })
        end
        for _, st in ipairs { 307, 308 } do
          res = assert(http.request { url = u .. "/" .. st .. "/y", method = "PUT", body = "data", follow = 1,
                                      headers = { Authorization = "secret" } })
          assert.same({ 200, "PUT /y data" }, { res.status, res.body })
        end
        assert.equal("PUT /y data secret", log[#log])   -- same origin: credentials kept
        -- two hops, relative Location
        res = assert(http.get(u .. "/302/301/z", { follow = 2 }))
        assert.same({ 200, "GET /z " }, { res.status, res.body })
        assert.same({ nil, "too many redirects", "too many redirects" }, { http.get(u .. "/302/301/z", { follow = 1 }) })
        assert.same({ nil, "too many redirects", "too many redirects" }, { http.get(u .. "/loop", { follow = 5 }) })
        -- another origin: Authorization is not sent there
        local srv2, u2 = server(function(req, res) res:send(200, req.headers.authorization or "none") end)
        res = assert(http.get(u .. "/302" .. "/x", { follow = 1, headers = { Authorization = "secret" } }))
        assert.equal("GET /x ", res.body)
        local srv3 = server(function(_, r) r:send(302, "", { Location = u2 .. "/o" }) end)
        local _, p3 = srv3:address()
        res = assert(http.get("http://127.0.0.1:" .. p3 .. "/", { follow = 1, headers = { Authorization = "secret" } }))
        assert.same({ 200, "none" }, { res.status, res.body })
        srv:close() srv2:close() srv3:close()
      end)
    end)

    it("says connection refused, timeout and bad response", function()
      run(function()
        local s = assert(neap.listen("tcp", "127.0.0.1", 0))
        local _, port = s:address()
        s:close()
        assert.same({ nil, "connection refused", "ECONNREFUSED" }, { http.get("http://127.0.0.1:" .. port .. "/") })
        -- a server that never answers; one that trickles forever (the timeout is the whole request's)
        local srv, u = raw(function(c)
          local line = read_request(c)
          if line and line:find("trickle") then
            c:write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ = 1, 100 do
              if not c:write("x") then break end
              neap.sleep(0.05)
            end
          else
            c:read_all { timeout = 10 }
          end
        end)
        local t0 = neap.now()
        assert.same({ nil, "timeout", "timeout" }, { http.get(u .. "/", { timeout = 0.3 }) })
        assert.same({ nil, "timeout", "timeout" }, { http.get(u .. "/trickle", { timeout = 0.5 }) })
        local res = assert(http.get(u .. "/trickle", { timeout = 0.5, stream = true }))
        local d, err, code
        repeat d, err, code = res:read() until not d
        assert.same({ "timeout", "timeout" }, { err, code })
        res:close()
        assert.truthy(neap.now() - t0 < 4.5, "the timeouts took " .. (neap.now() - t0))
        srv:close()
        -- bad responses: llhttp's reason; a cut body
        local srv2, u2 = raw(function(c)
          local line = read_request(c)
          if line:find("/garbage") then c:write("HTTP/1.1 abc OK\r\n\r\n")
          elseif line:find("/cut") then c:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
          elseif line:find("/chunk") then c:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
          elseif line:find("/big") then c:write("HTTP/1.1 200 OK\r\nX: ", ("y"):rep(2000), "\r\n\r\n")
          end
        end)
        local r, e, cd = http.get(u2 .. "/garbage")
        assert.is_nil(r)
        assert.equal("EPROTO", cd)
        assert.matches("^bad response: Invalid response status", e)
        assert.same({ nil, "bad response: connection closed mid-response", "EPROTO" }, { http.get(u2 .. "/cut") })
        r, e, cd = http.get(u2 .. "/chunk")
        assert.same({ nil, "EPROTO" }, { r, cd })
        assert.matches("^bad response: Invalid character in chunk size", e)
        assert.same({ nil, "bad response: header too large", "E2BIG" }, { http.get(u2 .. "/big", { max_header = 1000 }) })
        assert.same({ nil, "bad response: connection closed before a response", "EPROTO" }, { http.get(u2 .. "/none") })
        srv2:close()
      end)
    end)

    it("limits a whole body with max_body; closing a stream early drops its connection", function()
      run(function()
        local srv, _, port = server(function(_, res) res:send(200, ("z"):rep(100000)) end)
        local rport, relay, count = counting_relay(port)
        local u = "http://127.0.0.1:" .. rport
        assert.same({ nil, "too large", "E2BIG" }, { http.get(u .. "/", { max_body = 1000 }) })
        local srv2, u2 = server(function(_, res) res:start(200) for _ = 1, 10 do res:write(("c"):rep(1000)) end res:finish() end)
        assert.same({ nil, "too large", "E2BIG" }, { http.get(u2 .. "/", { max_body = 9999 }) })
        assert.equal(10000, #assert(http.get(u2 .. "/", { max_body = 10000 })).body)
        srv2:close()
        assert.equal(100000, #assert(http.get(u .. "/", { max_body = 100000 })).body)
        assert.equal(2, count())
        local res = assert(http.get(u .. "/", { stream = true }))
        assert.equal(1000, #res:read(1000))
        res:close()
        assert.equal(100000, #assert(http.get(u .. "/")).body)
        assert.equal(3, count())
        do
          local r <close> = assert(http.get(u .. "/", { stream = true }))
          assert.equal(10, #r:read(10))
        end
        relay:close()
        srv:close()
      end)
    end)

    it("returns a body function's failure, and closes the connection when it raises", function()
      run(function()
        local srv, u = server(function(req, res) res:send(200, req:body() or "-") end)
        local i = 0
        local res, err, code = http.request { url = u .. "/", method = "POST", body = function()
          i = i + 1
          if i == 1 then return "part" end
          return nil, "source failed", "EIO"
        end }
        assert.same({ nil, "source failed", "EIO" }, { res, err, code })
        local ok, e = pcall(http.request, { url = u .. "/", method = "POST", body = function() error("boom") end })
        assert.is_false(ok)
        assert.matches("boom", e)
        ok, e = pcall(http.request, { url = u .. "/", method = "POST", body = function() return 42 end })
        assert.is_false(ok)
        assert.matches("body function returned a number", e)
        assert.equal(0, http.close_idle())
        srv:close()
      end)
    end)

    it("keeps at most 16 idle connections per origin; a cancelled request closes its connection", function()
      run(function()
        local srv, u = server(function(_, res) neap.sleep(0.1) res:send(200, "ok") end)
        local tasks = {}
        for i = 1, 20 do tasks[i] = neap.task(http.get, u .. "/" .. i, { timeout = 10 }) end
        for i = 1, 20 do
          local ok, res = tasks[i]:join { timeout = 15 }
          assert.truthy(ok and res and res.body == "ok")
        end
        assert.equal(16, http.close_idle())
        srv:close()
        -- cancelled while it waits for the head: the server sees the connection end
        local seen = neap.queue()
        local srv2, u2 = raw(function(c)
          read_request(c)
          seen:put("request")
          seen:put(c:read_all { timeout = 10 } and "closed" or "timeout")
        end)
        local t = neap.task(http.get, u2 .. "/")
        assert.equal("request", seen:get { timeout = 5 })
        t:cancel()
        assert.equal("closed", seen:get { timeout = 5 })
        assert.equal(0, http.close_idle())
        srv2:close()
      end)
    end)

    it("raises for a bad URL or option, naming the function and the argument", function()
      local cases = {
        { function() local r = http.request { url = "ftp://x/" } return r end, "bad argument #1 to 'http.request' (url: \"ftp://x/\": unsupported scheme \"ftp\")" },
        { function() local r = http.request { } return r end, "bad argument #1 to 'http.request' (url: missing)" },
        { function() local r = http.get("localhost/x") return r end, "bad argument #1 to 'http.get' (bad URL \"localhost/x\": not an absolute http:// or https:// URL)" },
        { function() local r = http.get("http://h:99999/") return r end, "bad argument #1 to 'http.get' (bad URL \"http://h:99999/\": bad port)" },
        { function() local r = http.get("http://u:p@h/") return r end, "user names in URLs are not supported" },
        { function() local r = http.get("http://h/a b") return r end, "blank or a control character" },
        { function() local r = http.get("http://h/", { timeout = "1" }) return r end, "bad argument #2 to 'http.get' (timeout must be a number >= 0)" },
        { function() local r = http.get("http://h/", { follow = 1.5 }) return r end, "follow must be an integer >= 0" },
        { function() local r = http.get("http://h/", { headers = { ["X"] = "a\r\nb" } }) return r end, "header X holds CR, LF or NUL" },
        { function() local r = http.request { url = "http://h/", body = 1 } return r end, "body must be a string or a function, got number" },
        { function() local r = http.request { url = "http://h/", method = "G T" } return r end, "method must be a token" },
        { function() local r = http.request("http://h/") return r end, "bad argument #1 to 'http.request' (options table expected, got string)" },
        { function() local r = http.get("https://h/", { tls = { ca = "/nonexistent/ca.pem" } }) return r end, "/nonexistent/ca.pem" },
      }
      for _, c in ipairs(cases) do
        local ok, err = pcall(c[1])
        assert.is_false(ok)
        assert.truthy(err:find(c[2], 1, true), err)
        assert.truthy(err:find("http_client_spec.lua:", 1, true), "not at the caller's line: " .. err)
      end
    end)

    it("fetches 50 MB intact (checksum) #load", function()
      run(function()
        local dir = helpers.tmpdir()
        local data = dir .. "/down"
        assert(os.execute("head -c 52428800 /dev/urandom > " .. data))
        local srv, u = server(function(_, res)
          local f = assert(io.open(data, "rb"))
          res:start(200)
          while true do
            local d = f:read(1 << 20)
            if not d then break end
            res:write(d)
          end
          f:close()
          res:finish()
        end)
        local function sha(input)
          local p = assert(neap.spawn { "sha256sum", stdin = "pipe", stdout = "pipe" })
          local out = p:communicate(input)
          return out:match("%x+")
        end
        local want = sha(helpers.read_file(data))
        local res = assert(http.get(u .. "/", { timeout = 60 }))
        assert.equal(52428800, #res.body)
        assert.equal(want, sha(res.body))
        srv:close()
        os.remove(data)
        os.remove(dir)
      end, 120)
    end)
  end)

  -- The same checks against an outside server at base (http or https).
  local function against(base, tls)
    local o = { tls = tls }
    local function opts(extra)
      local t = { tls = tls }
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end
    local res = assert(http.get(base .. "/hello", o))
    assert.same({ 200, "hello" }, { res.status, res.body:match("^hello") })
    assert.same({ "a=1", "b=2" }, res.headers["set-cookie"])
    res = assert(http.get(base .. "/chunked", o))
    assert.equal("chunked", res.headers["transfer-encoding"])
    assert.truthy(res.body:find("-chunks$"), res.body)
    res = assert(http.request(opts { url = base .. "/echo", method = "POST", body = "xyz" }))
    assert.equal("length:xyz", res.body)
    res = assert(http.request(opts { url = base .. "/echo", method = "POST", body = chunks { "a", "bc", "def" } }))
    assert.equal("chunked:abcdef", res.body)
    res = assert(http.request(opts { url = base .. "/hello", method = "HEAD" }))
    assert.same({ 200, "" }, { res.status, res.body })
    assert.equal(1, tonumber(assert(http.get(base .. "/count", o)).body))   -- all on one connection
    res = assert(http.get(base .. "/redirect", opts { follow = 1 }))
    assert.truthy(res.body:find("^hello"))
    res = assert(http.get(base .. "/close", o))
    assert.equal("until the close", res.body)
    local before = tonumber(assert(http.get(base .. "/count", o)).body)
    assert.equal(2, before)   -- a new connection after the close
    for _ = 1, 3 do assert(http.get(base .. "/hello", opts { pool = false })) end
    assert.equal(before + 3, tonumber(assert(http.get(base .. "/count", o)).body))
  end

  local PY = [[
import sys, http.server, ssl
conns = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        global conns
        conns += 1
        super().setup()
    def log_message(self, *a): pass
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    return out, b"chunked"
                out += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0"))), b"length"
    def do_GET(self): self.route()
    def do_POST(self): self.route()
    def do_HEAD(self): self.route()
    def route(self):
        p = self.path
        if p == "/count": self.send(str(conns).encode())
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"py", b"thon", b"-chunks"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the close")
            self.close_connection = True
        elif p == "/echo":
            b, how = self.body()
            self.send(how + b":" + b)
        elif p == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/hello")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else: self.send(b"hello from python", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    def send(self, body, extra=()):
        self.send_response(200)
        for k, v in extra: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("port", srv.server_address[1], flush=True)
srv.serve_forever()
]]

  local NODE = [[
const http = require('http'), https = require('https'), fs = require('fs');
let conns = 0;
const handler = (req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts).toString();
    if (req.url === '/count') return res.end(String(conns));
    if (req.url === '/chunked') { res.write('no'); res.write('de'); return res.end('-chunks'); }
    if (req.url === '/echo') return res.end((req.headers['transfer-encoding'] ? 'chunked' : 'length') + ':' + body);
    if (req.url === '/redirect') { res.writeHead(302, { Location: '/hello' }); return res.end(); }
    if (req.url === '/close') {   // a body that runs to the close: no length, no chunks
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { Connection: 'close' });
      return res.end('until the close');
    }
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.end('hello from node');
  });
};
const tls = process.argv.length > 3;
const srv = tls ? https.createServer({ cert: fs.readFileSync(process.argv[2]), key: fs.readFileSync(process.argv[3]) }, handler)
                : http.createServer(handler);
srv.on(tls ? 'secureConnection' : 'connection', () => conns++);
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
]]

  for _, p in ipairs {
    { name = "Python's http.server", cmd = "python3", script = PY },
    { name = "a Node http server", cmd = "node", script = NODE },
  } do
    describe("against " .. p.name, function()
      if not T.have(p.cmd) then pending(p.cmd .. " is not installed") return end

      it("over http: bodies of every framing, HEAD, keep-alive, pool off, redirects", function()
        run(function()
          local path = helpers.tmpfile(p.script)
          local proc, port = T.spawn_port({ p.cmd, path }, "port (%d+)")
          local ok, err = pcall(against, "http://127.0.0.1:" .. port)
          http.close_idle()
          T.stop(proc)
          os.remove(path)
          assert(ok, err)
        end, 30)
      end)

      it("over https: verified against the test CA, refused without it", function()
        run(function()
          local d = T.certs()
          local path = helpers.tmpfile(p.script)
          local proc, port = T.spawn_port({ p.cmd, path, d .. "/server.pem", d .. "/server.key" }, "port (%d+)")
          local ok, err = pcall(against, "https://localhost:" .. port, { ca = d .. "/ca.pem" })
          local res, msg, code = http.get("https://localhost:" .. port .. "/hello", { timeout = 10 })
          http.close_idle()
          T.stop(proc)
          os.remove(path)
          T.rmcerts(d)
          assert(ok, err)
          assert.is_nil(res)
          assert.equal("ETLS", code)
          assert.matches("certificate verify failed", msg)
        end, 30)
      end)
    end)
  end

  describe("examples/http_proxy.lua", function()
    it("forwards requests and bodies both ways through the pool, and exits", function()
      local out, rc = helpers.sh("timeout 30 " .. helpers.NEAP .. " examples/http_proxy.lua </dev/null")
      assert.equal(0, rc, out)
      assert.equal("200 GET /hello?x=1 via 1.1 neap\ncookies: a=1 b=2\npart 1\npart 2\npart 3\n" ..
                   "200 POST /form via 1.1 neap body=x=1&y=2\n200 PUT /up via 1.1 neap body=chunk1chunk2chunk3\n" ..
                   "idle connections closed: 2\n", out)
    end)
  end)

  describe("https against neap's own server", function()
    if not T.have("openssl") then pending("openssl is not installed") return end

    it("verifies by default, keeps TLS connections per set of options", function()
      run(function()
        local d = T.certs()
        local srv, _, port = server(echo, { tls = T.server_opts(d) })
        local rport, relay, count = counting_relay(port)
        local u = "https://localhost:" .. rport
        local res, err, code = http.get(u .. "/", { timeout = 10 })
        assert.same({ nil, "ETLS" }, { res, code })
        assert.matches("certificate verify failed", err)
        for i = 1, 3 do
          res = assert(http.get(u .. "/" .. i, { tls = { ca = d .. "/ca.pem" }, timeout = 10 }))
          assert.truthy(res.body:find("^GET|/" .. i .. "|"))
        end
        assert.equal(2, count())   -- the refused one, then one kept
        res = assert(http.get(u .. "/v", { tls = { verify = false }, timeout = 10 }))
        assert.equal(200, res.status)
        assert.equal(3, count())   -- other TLS options: another connection
        res = assert(http.get("https://127.0.0.1:" .. rport .. "/ip", { tls = { ca = d .. "/ca.pem" }, timeout = 10 }))
        assert.equal(200, res.status)
        assert.equal(4, count())   -- another host name: another pool
        assert.equal(3, http.close_idle())
        relay:close()
        srv:close()
        T.rmcerts(d)
      end, 30)
    end)
  end)
end)
