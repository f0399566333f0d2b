-- Issue 17, part 1: { reuseport = true } sets SO_REUSEPORT, so several
-- sockets (in one process or in several) bind one port and the kernel spreads
-- connections (TCP) or datagrams (UDP) over them. UDP had no such option
-- (reuseaddr sets only SO_REUSEADDR on Linux: the last socket bound gets
-- every datagram), and a bad value was taken as true or false silently.
local neap = require "neap"
local helpers = require "helpers"
local T = require "tls_helpers"

-- Two listeners made by listen(port, opts) on one port: each accepted
-- connection is answered with the listener's name; returns how many
-- connections of n each one took.
local function spread(listen, connect, n)
  local a = assert(listen(0))
  local _, port = a:address()
  local b = assert(listen(port))
  local counts = { a = 0, b = 0 }
  local ta = a:serve(function(c) c:write("a\n") end)
  local tb = b:serve(function(c) c:write("b\n") end)
  for _ = 1, n do
    local c = assert(connect(port))
    local who = assert(c:read_line { timeout = 5 })
    counts[who] = counts[who] + 1
    c:close()
  end
  ta:cancel(); tb:cancel()
  a:close(); b:close()
  return counts
end

describe("issue 17.1: reuseport", function()
  helpers.leakcheck()

  it("lets two TCP servers listen on one port and spreads connections over both", function()
    helpers.run(function()
      local a = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = a:address()
      local b, err, code = neap.listen("tcp", "127.0.0.1", port)
      assert.is_nil(b)
      assert.equal("EADDRINUSE", code, err)
      a:close()
      local counts = spread(function(p) return neap.listen("tcp", "127.0.0.1", p, { reuseport = true }) end,
                            function(p) return neap.connect("tcp", "127.0.0.1", p, { timeout = 5 }) end, 200)
      assert.equal(200, counts.a + counts.b)
      assert.is_true(counts.a > 0 and counts.b > 0, counts.a .. " / " .. counts.b)
    end)
  end)

  it("is passed on by listen(\"tls\") and neap.http's listen", function()
    local d = T.certs()
    finally(function() T.rmcerts(d) end)
    helpers.run(function()
      local counts = spread(function(p)
        return neap.listen("tls", "127.0.0.1", p, T.server_opts(d, { reuseport = true }))
      end, function(p)
        return neap.connect("tls", "localhost", p, { timeout = 5, ca = d .. "/ca.pem" })
      end, 40)
      assert.equal(40, counts.a + counts.b)
      assert.is_true(counts.a > 0 and counts.b > 0, counts.a .. " / " .. counts.b)
      local http = require "neap.http"
      local function hello(_, res) res:send(200, "hi") end
      local h1 = assert(http.listen("127.0.0.1", 0, hello, { reuseport = true }))
      local _, port = h1:address()
      local h2 = assert(http.listen("127.0.0.1", port, hello, { reuseport = true }))
      h1:close(); h2:close()
    end)
  end)

  it("is taken by the manager's and the dispatcher's listen in an options table", function()
    helpers.run(function()
      local m = require("neap.manager").new()
      local ch = assert(m:make_server_sock("tcp", "127.0.0.1", 0, { reuseport = true }))
      local _, port = ch.server:address()
      local ch2 = assert(m:make_server_sock("tcp", "127.0.0.1", port, { reuseport = true, backlog = 8 }))
      local u = assert(m:make_server_sock("udp", "127.0.0.1", 0, { reuseport = true }))
      local _, uport = u.server:address()
      local u2 = assert(m:make_server_sock("udp", "127.0.0.1", uport, { reuseport = true }))
      m:close()
      local D = require "neap.dispatcher"
      local d1 = D.new():create_socket("tcp"):bind("127.0.0.1", port)
      local d2 = D.new():create_socket("tcp"):bind("127.0.0.1", port)
      assert.is_true(d1:listen { reuseport = true })
      assert.is_true(d2:listen { reuseport = true, backlog = 8 })
      d1:close(); d2:close()
      local _ = ch2, u2
    end)
  end)

  it("lets two UDP sockets bind one port and spreads datagrams from many senders over both", function()
    helpers.run(function()
      local a = assert(neap.udp { host = "127.0.0.1", port = 0 })
      local _, port = a:address()
      local b, err, code = neap.udp { host = "127.0.0.1", port = port }
      assert.is_nil(b)
      assert.equal("EADDRINUSE", code, err)
      a:close()
      a = assert(neap.udp { host = "127.0.0.1", port = 0, reuseport = true })
      _, port = a:address()
      b = assert(neap.udp { host = "127.0.0.1", port = port, reuseport = true })
      local counts = { a = 0, b = 0 }
      local function answer(u, name)
        return neap.task(function()
          while true do
            local d, h, p = u:recv()
            if not d then return end
            counts[name] = counts[name] + 1
            u:send(name, h, p)
          end
        end)
      end
      local ta, tb = answer(a, "a"), answer(b, "b")
      for i = 1, 100 do
        local c = assert(neap.udp())
        assert(c:send("ping " .. i, "127.0.0.1", port))
        local who = assert(c:recv { timeout = 5 })
        assert.truthy(who == "a" or who == "b")
        c:close()
      end
      assert.equal(100, counts.a + counts.b)
      assert.is_true(counts.a > 0 and counts.b > 0, counts.a .. " / " .. counts.b)
      ta:cancel(); tb:cancel()
      a:close(); b:close()
    end)
  end)

  it("raises on a reuseport that is not a boolean", function()
    assert.has_error(function() neap.listen("tcp", "127.0.0.1", 0, { reuseport = 1 }) end,
                     "bad argument #4 to 'listen' (reuseport must be a boolean)")
    assert.has_error(function() neap.udp { port = 0, reuseport = "yes" } end,
                     "bad argument #1 to 'udp' (reuseport must be a boolean)")
  end)
end)
