-- neap.http: the llhttp parser on neap.buffer (no I/O), then the server
-- against real clients (curl, Python's http.client, wrk) and hostile ones.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"

local function has(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

-- Runs argv, returns stdout, stderr, exit code (inside a task).
local function run(argv, input)
  argv.stdin, argv.stdout, argv.stderr = input and "pipe" or nil, "pipe", "pipe"
  local p = assert(neap.spawn(argv))
  local out, err, code = p:communicate(input)
  return out, err, code
end

-- A server for one test: handler, options; returns server, base URL, port.
local function server(handler, opts)
  local srv = assert(http.listen("127.0.0.1", 0, handler, opts))
  local _, port = srv:address()
  return srv, "http://127.0.0.1:" .. port, port
end

-- A raw client: sends data (and reads until the server closes or timeout).
local function raw(port, data, timeout)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  if data then c:write(data) end
  local out = c:read_all { timeout = timeout or 5 }
  c:close()
  return out
end

local function hello(req, res)
  res:send(200, "hello " .. req.path .. "\n", { ["Content-Type"] = "text/plain" })
end

describe("neap.http", function()
  helpers.leakcheck()

  describe("the parser (neap.buffer, no I/O)", function()
    local REQ = "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nSet-Cookie: a=1\r\nX-A: 1  \r\n" ..
                "x-a: 2\r\nSet-Cookie: b=2\r\nEmpty:\r\n\r\n"

    it("returns the head with lower-case names, joined repeats and set-cookie as a list", function()
      local p, b = core.http_parser(), core.buffer()
      b:feed(REQ .. "rest")
      local h = assert(p:head(b))
      assert.same({ "GET", "/a/b?x=1", "1.1", true, "none", #REQ },
                   { h.method, h.target, h.version, h.keep_alive, h.body, h.size })
      assert.same({ host = "h", ["set-cookie"] = { "a=1", "b=2" }, ["x-a"] = "1, 2", empty = "" }, h.headers)
      assert.equal("rest", b:read())   -- exactly the head was consumed
    end)

    it("gives the same head and body whatever the split (every byte boundary)", function()
      local msg = "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                  "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
      for cut = 1, #msg - 1 do
        local p, b = core.http_parser(), core.buffer()
        b:feed(msg:sub(1, cut))
        local h, err = p:head(b)
        if not h then
          assert.equal("more", err)
          b:feed(msg:sub(cut + 1))
          h = assert(p:head(b))
        else
          b:feed(msg:sub(cut + 1))
        end
        assert.equal("chunked", h.body)
        local body = {}
        repeat
          local d, done = assert(p:body(b, 5))
          body[#body + 1] = d
        until done
        assert.equal("abc0123456789abcdef", table.concat(body), "cut at " .. cut)
        assert.equal("/next", assert(p:head(b)).target)
      end
    end)

    it("decodes a content-length body and leaves the next request", function()
      local p, b = core.http_parser(), core.buffer()
      b:feed("PUT / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n")
      local h = assert(p:head(b))
      assert.same({ "length", 5 }, { h.body, h.length })
      assert.same({ "hello", true }, { p:body(b) })
      h = assert(p:head(b))
      assert.same({ "1.0", false }, { h.version, h.keep_alive })
    end)

    it("refuses request smuggling and malformed requests with EPROTO", function()
      for _, m in ipairs {
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n b\r\nZ: 1\r\n\r\n",   -- obsolete line folding
      } do
        local p, b = core.http_parser(), core.buffer()
        b:feed(m)
        local h, err, code = p:head(b)
        assert.is_nil(h)
        assert.equal("EPROTO", code, m)
        assert.is_string(err)
      end
    end)

    it("says E2BIG for a head over max_header, finished or not", function()
      local p, b = core.http_parser(), core.buffer()
      b:feed("GET / HTTP/1.1\r\nX: " .. ("y"):rep(200))
      assert.same({ nil, "header too large", "E2BIG" }, { p:head(b, 100) })
      p, b = core.http_parser(), core.buffer()
      b:feed("GET / HTTP/1.1\r\nX: " .. ("y"):rep(200) .. "\r\n\r\n")
      assert.same({ nil, "header too large", "E2BIG" }, { p:head(b, 100) })
    end)
  end)

  describe("the server with curl", function()
    if not has("curl") then pending("curl is not installed") return end

    it("answers several URLs on one keep-alive connection", function()
      helpers.run(function()
        local srv, u = server(hello)
        local out, _, rc = run { "curl", "-s", "-w", "[%{num_connects}]", u .. "/a", u .. "/b", u .. "/c?q=1" }
        srv:close()
        assert.equal(0, rc)
        assert.equal("hello /a\n[1]hello /b\n[0]hello /c\n[0]", out)   -- 0: no new connection
      end)
    end)

    it("speaks HTTP/1.0: a plain body ended by the close", function()
      helpers.run(function()
        local srv, u = server(function(req, res)
          res:start(200)
          res:write(req.version, " ")
          res:finish("streamed")
        end)
        local out, _, rc = run { "curl", "-s", "-i", "--http1.0", u .. "/" }
        srv:close()
        assert.equal(0, rc)
        assert.truthy(out:find("Connection: close\r\n", 1, true), out)
        assert.falsy(out:lower():find("transfer-encoding", 1, true), out)
        assert.truthy(out:find("\r\n\r\n1.0 streamed$"), out)
      end)
    end)

    it("answers Expect: 100-continue when the handler reads the body", function()
      helpers.run(function()
        local srv, u = server(function(req, res) res:send(200, "got " .. assert(req:body())) end)
        local _, err, rc = run { "curl", "-sv", "-H", "Expect: 100-continue", "--data-binary", "payload", u .. "/" }
        local out = run { "curl", "-s", "-H", "Expect: 100-continue", "--data-binary", "payload", u .. "/" }
        srv:close()
        assert.equal(0, rc, err)
        assert.truthy(err:find("< HTTP/1.1 100 Continue", 1, true), err)
        assert.equal("got payload", out)
      end)
    end)

    it("sends 50 MB up and down intact (checksums) #load", function()
      helpers.run(function()
        local dir = helpers.tmpdir()
        local data = dir .. "/up"
        assert(os.execute("head -c 52428800 /dev/urandom > " .. data))
        local srv, u = server(function(req, res)
          if req.method == "PUT" then
            local n, sha = 0, nil
            local p = assert(neap.spawn { "sha256sum", stdin = "pipe", stdout = "pipe" })
            while true do
              local d = req:read()
              if not d then break end
              n = n + #d
              p.stdin:write(d)
            end
            p.stdin:close()
            sha = p.stdout:read_all():match("%x+")
            p:wait()
            return res:send(200, n .. " " .. sha)
          end
          local f = assert(io.open(data, "rb"))
          res:start(200)   -- chunked, 1 MiB at a time
          while true do
            local d = f:read(1 << 20)
            if not d then break end
            res:write(d)
          end
          f:close()
          res:finish()
        end, { max_body = 64 << 20 })
        local want = run { "sh", "-c", "sha256sum < " .. data }
        want = want:match("%x+")
        local up = run { "curl", "-s", "-T", data, u .. "/up" }
        assert.equal("52428800 " .. want, up)
        local down = run { "sh", "-c", "curl -s " .. u .. "/down | sha256sum" }
        assert.equal(want, down:match("%x+"))
        srv:close()
        os.remove(data)
        os.remove(dir)
      end, 120)
    end)

    it("serves https with neap.listen('tls') (curl --cacert)", function()
      helpers.run(function()
        local dir = helpers.tmpdir()
        local _, _, rc = run { "sh", "spec/c/mkcerts.sh", dir }
        assert.equal(0, rc)
        local srv = assert(http.listen("127.0.0.1", 0, hello,
          { tls = { cert = dir .. "/server.pem", key = dir .. "/server.key" } }))
        local _, port = srv:address()
        local u = "https://localhost:" .. port
        local out, err
        out, err, rc = run { "curl", "-s", "-S", "--cacert", dir .. "/ca.pem",
                             "--resolve", "localhost:" .. port .. ":127.0.0.1", u .. "/x", u .. "/y" }
        srv:close()
        os.execute("rm -rf " .. dir)
        assert.equal(0, rc, err)
        assert.equal("hello /x\nhello /y\n", out)
      end, 60)
    end)
  end)

  describe("the server with Python's http.client", function()
    if not has("python3") then pending("python3 is not installed") return end

    it("keeps one connection for GET, POST, a chunked reply and HEAD", function()
      helpers.run(function()
        local srv, _, port = server(function(req, res)
          if req.method == "POST" then return res:send(201, req:body():upper()) end
          if req.path == "/chunked" then
            res:start(200)
            res:write("a") res:write("b") res:finish("c")
            return
          end
          res:send(200, "body of " .. req.path)
        end)
        local script = ([[
import http.client
c = http.client.HTTPConnection("127.0.0.1", %d, timeout=10)
out = []
for m, p, b in [("GET", "/1", None), ("POST", "/p", "data"), ("GET", "/chunked", None), ("HEAD", "/h", None), ("GET", "/2", None)]:
    c.request(m, p, body=b)
    r = c.getresponse()
    out.append("%%d %%s %%s" %% (r.status, r.getheader("content-length"), r.read().decode()))
print(c.sock is not None)
print("|".join(out))
]]):format(port)
        local out, err, rc = run({ "python3", "-c", script })
        srv:close()
        assert.equal(0, rc, err)
        assert.equal("True\n200 10 body of /1|201 4 DATA|200 None abc|200 10 |200 10 body of /2\n", out)
      end)
    end)
  end)

  describe("the server with wrk", function()
    if not has("wrk") then pending("wrk is not installed (make deps installs it)") return end

    it("takes a 3 s wrk run with no error and no non-2xx #load", function()
      helpers.run(function()
        local srv, u = server(hello)
        local out, err, rc = run { "wrk", "-t1", "-c20", "-d3s", u .. "/" }
        srv:close()
        assert.equal(0, rc, err)
        assert.truthy(out:find("Requests/sec", 1, true), out)
        assert.falsy(out:find("Non-2xx", 1, true), out)
        assert.falsy(out:find("Socket errors", 1, true), out)
      end, 60)
    end)
  end)

  describe("responses", function()
    it("answers pipelined requests in order, HEAD with headers only, 204 and 304 with no body", function()
      helpers.run(function()
        local srv, _, port = server(function(req, res)
          if req.path == "/204" then return res:send(204, "ignored") end
          if req.path == "/304" then return res:send(304) end
          res:send(200, "body" .. req.path)
        end)
        local out = raw(port, "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /204 HTTP/1.1\r\n\r\n" ..
                              "GET /304 HTTP/1.1\r\n\r\nGET /5 HTTP/1.1\r\nConnection: close\r\n\r\n")
        srv:close()
        local statuses, bodies = {}, {}
        for st in out:gmatch("HTTP/1.1 (%d+)") do statuses[#statuses + 1] = tonumber(st) end
        assert.same({ 200, 200, 204, 304, 200 }, statuses)
        for b in out:gmatch("body/%d") do bodies[#bodies + 1] = b end
        assert.same({ "body/1", "body/5" }, bodies)
        assert.truthy(out:find("Content%-Length: 6\r\nDate: [^\r]+\r\n\r\nHTTP/1.1 204"), out)   -- HEAD: the length, no body
        assert.truthy(out:find("Connection: close\r\n\r\nbody/5$"), out)
      end)
    end)

    it("lets the handler set headers, lists and the status", function()
      helpers.run(function()
        local srv, _, port = server(function(_, res)
          res:header("X-One", "1"):header("Set-Cookie", { "a=1", "b=2" })
          res:send(404, "nope", { ["X-Two"] = 2 })
        end)
        local out = raw(port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        srv:close()
        assert.truthy(out:find("^HTTP/1.1 404 Not Found\r\n"), out)
        assert.truthy(out:find("X-One: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n", 1, true), out)
        assert.truthy(out:find("X-Two: 2\r\n", 1, true), out)
        assert.truthy(out:find("Content-Length: 4\r\n", 1, true), out)
      end)
    end)

    it("gives the request's fields", function()
      helpers.run(function()
        local got
        local srv, _, port = server(function(req, res)
          got = { req.method, req.target, req.path, req.query, req.version, req.headers["x-y"] }
          res:send(200, "")
        end)
        raw(port, "DELETE /p/q?a=b&c HTTP/1.1\r\nX-Y: 1\r\nx-y: 2\r\nConnection: close\r\n\r\n")
        srv:close()
        assert.same({ "DELETE", "/p/q?a=b&c", "/p/q", "a=b&c", "1.1", "1, 2" }, got)
      end)
    end)
  end)

  describe("limits and hostile clients", function()
    it("431 for a header block over max_header, and close", function()
      helpers.run(function()
        local srv, _, port = server(hello, { max_header = 1024 })
        local out = raw(port, "GET / HTTP/1.1\r\nX: " .. ("a"):rep(2000) .. "\r\n\r\n")
        local out2 = raw(port, "GET / HTTP/1.1\r\nX: " .. ("a"):rep(2000))   -- never finished
        srv:close()
        assert.truthy(out:find("^HTTP/1.1 431 "), out)
        assert.truthy(out2:find("^HTTP/1.1 431 "), out2)
      end)
    end)

    it("413 for a body over the limit, by content-length and by chunks", function()
      helpers.run(function()
        local srv, _, port = server(function(req, res)
          local b = req:body()   -- nil, "too large": the server answers 413
          if b then res:send(200, #b .. "") end
        end, { max_body = 10 })
        local a = raw(port, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n" .. ("x"):rep(11))
        local b = raw(port, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n")
        local c = raw(port, "POST / HTTP/1.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n" .. ("x"):rep(10))
        srv:close()
        assert.truthy(a:find("^HTTP/1.1 413 "), a)
        assert.truthy(b:find("^HTTP/1.1 413 "), b)
        assert.truthy(c:find("^HTTP/1.1 200 .*\r\n\r\n10$"), c)
      end)
    end)

    it("req:body{max=} says too large, and the handler may answer", function()
      helpers.run(function()
        local srv, _, port = server(function(req, res)
          local b, err, code = req:body { max = 3 }
          res:send(200, tostring(b) .. " " .. err .. " " .. code)
        end)
        local out = raw(port, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        srv:close()
        assert.truthy(out:find("\r\n\r\nnil too large E2BIG$"), out)
        assert.truthy(out:find("Connection: close", 1, true), out)
      end)
    end)

    it("400 for malformed requests and for smuggling (CL with TE, two CLs), then close", function()
      helpers.run(function()
        local srv, _, port = server(hello)
        for _, m in ipairs {
          "G@T / HTTP/1.1\r\n\r\n",
          "GET / HTTP/9.9\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
          "GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n",
        } do
          local out = raw(port, m)
          assert.truthy(out:find("HTTP/1.1 400 Bad Request\r\n", 1, true), m .. " -> " .. out)
          assert.truthy(out:find("Connection: close", 1, true))
        end
        srv:close()
      end)
    end)

    it("408 for a client that trickles its head past header_timeout", function()
      helpers.run(function()
        local srv, _, port = server(hello, { header_timeout = 0.5 })
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        local t0 = neap.now()
        for _, piece in ipairs { "GET / HT", "TP/1.1\r\n", "X: 1\r\n", "Y: 2\r\n" } do
          c:write(piece)
          neap.sleep(0.2)
        end
        local out = c:read_all { timeout = 5 }
        c:close()
        srv:close()
        assert.truthy(out:find("^HTTP/1.1 408 "), out)
        assert.truthy(neap.now() - t0 < 4)
      end)
    end)

    it("closes an idle keep-alive connection after keepalive_timeout", function()
      helpers.run(function()
        local srv, _, port = server(hello, { keepalive_timeout = 0.3 })
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("GET /1 HTTP/1.1\r\n\r\n")
        local out = c:read_all { timeout = 5 }   -- ends when the server closes
        c:close()
        srv:close()
        assert.truthy(out:find("^HTTP/1.1 200 .*hello /1\n$"), out)
      end)
    end)

    it("a raising handler gets 500, its error goes to stderr once, the server goes on", function()
      helpers.run(function()
        local lines = {}
        local real = io.stderr
        io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end }
        local srv, _, port = server(function(req, res)
          if req.path == "/boom" then error("kaboom") end
          res:send(200, "fine")
        end)
        local a = raw(port, "GET /boom HTTP/1.1\r\n\r\n")
        local b = raw(port, "GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n")
        srv:close()
        io.stderr = real
        assert.truthy(a:find("^HTTP/1.1 500 "), a)
        assert.truthy(b:find("\r\n\r\nfine$"), b)
        local text = table.concat(lines)
        local _, n = text:gsub("kaboom", "")
        assert.equal(1, n, text)
        assert.truthy(text:find("stack traceback", 1, true), text)
      end)
    end)

    it("does not send 100 Continue when the handler leaves the body, and closes", function()
      helpers.run(function()
        local srv, _, port = server(hello)
        local out = raw(port, "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        srv:close()
        assert.truthy(out:find("^HTTP/1.1 200 OK\r\n"), out)
        assert.falsy(out:find("100 Continue", 1, true), out)
        assert.truthy(out:find("Connection: close\r\n", 1, true), out)
      end)
    end)

    it("drains an unread body, and closes when it is over max_body", function()
      helpers.run(function()
        local srv, _, port = server(hello, { max_body = 100 })
        local out = raw(port, "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nConnection: close\r\n\r\n")
        local _, n = out:gsub("HTTP/1.1 200", "")
        assert.equal(2, n, out)
        out = raw(port, "POST /a HTTP/1.1\r\nContent-Length: 500\r\n\r\n" .. ("x"):rep(500) .. "GET /b HTTP/1.1\r\n\r\n")
        _, n = out:gsub("HTTP/1.1 200", "")
        assert.equal(1, n, out)
        srv:close()
      end)
    end)
  end)

  describe("server:close()", function()
    it("lets a request in flight finish within drain, closes idle connections at once", function()
      helpers.run(function()
        local srv, _, port = server(function(_, res)
          neap.sleep(0.3)
          res:send(200, "slow")
        end)
        local idle = assert(neap.connect("tcp", "127.0.0.1", port))
        local busy = assert(neap.connect("tcp", "127.0.0.1", port))
        busy:write("GET / HTTP/1.1\r\n\r\n")
        neap.sleep(0.1)
        srv:close { drain = 5 }
        assert.equal("", idle:read_all { timeout = 5 })
        local out = busy:read_all { timeout = 5 }
        idle:close() busy:close()
        assert.truthy(out:find("Connection: close\r\n\r\nslow$"), out)
        assert.is_nil(neap.connect("tcp", "127.0.0.1", port, { timeout = 2 }))
      end)
    end)

    it("closes a connection whose handler outlasts drain", function()
      helpers.run(function()
        local srv, _, port = server(function(_, res)
          neap.sleep(1.5)
          res:send(200, "late")
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("GET / HTTP/1.1\r\n\r\n")
        neap.sleep(0.1)
        local t0 = neap.now()
        srv:close { drain = 0.2 }
        assert.equal("", c:read_all { timeout = 5 })
        assert.truthy(neap.now() - t0 < 1.4)
        c:close()
        neap.sleep(1.7)   -- the handler's task ends (its write finds the connection closed)
      end)
    end)
  end)
end)
