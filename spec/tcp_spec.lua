local neap = require "neap"
local helpers = require "helpers"
local run = helpers.run

describe("neap tcp", function()
  helpers.leakcheck()

  describe("neap.listen()", function()
    it("picks a free port with port 0 and reports it with :address()", function()
      run(function()
        local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
        local host, port, family = srv:address()
        assert.equal("127.0.0.1", host)
        assert.is_true(port > 0)
        assert.equal("inet", family)
        srv:close()
      end)
    end)

    it("returns nil, message, 'EADDRINUSE' for a port in use", function()
      run(function()
        local srv, port = helpers.server()
        local s2, err, code = neap.listen("tcp", "127.0.0.1", port)
        assert.is_nil(s2)
        assert.equal("address already in use", err)
        assert.equal("EADDRINUSE", code)
        srv:close()
      end)
    end)

    it("raises on bad arguments, naming the function", function()
      assert.has_error(function() neap.listen("bogus", "127.0.0.1", 0) end)
      assert.has_error(function() neap.listen("tcp", 42, 0) end)
      assert.has_error(function() neap.listen("tcp", "127.0.0.1", 70000) end,
        "bad argument #3 to 'listen' (port out of range)")
      assert.has_error(function() neap.listen("tcp", "127.0.0.1", 0, 5) end)
    end)

    it("checks backlog", function()
      assert.has_error(function() neap.listen("tcp", "127.0.0.1", 0, { backlog = "x" }) end,
        "bad argument #4 to 'listen' (backlog must be an integer >= 1)")
      assert.has_error(function() neap.listen("tcp", "127.0.0.1", 0, { backlog = -1 }) end,
        "bad argument #4 to 'listen' (backlog must be an integer >= 1)")
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0, { backlog = 5 }))
      srv:close()
    end)

    it("listens on IPv6 ::1", function()
      run(function()
        local srv = assert(neap.listen("tcp", "::1", 0))
        local host, port, family = srv:address()
        assert.equal("::1", host)
        assert.equal("inet6", family)
        local t = neap.task(function() local c = srv:accept { timeout = 2 } c:write("six\n") c:close() end)
        local c = assert(neap.connect("tcp", "::1", port, { timeout = 2 }))
        assert.equal("six", c:read_line { timeout = 2 })
        t:join() c:close() srv:close()
      end)
    end)
  end)

  describe("server:accept()", function()
    it("times out with nil, 'timeout', 'timeout'", function()
      run(function()
        local srv = helpers.server()
        assert.same({ nil, "timeout", "timeout" }, { srv:accept { timeout = 0.02 } })
        srv:close()
      end)
    end)

    it("a close wakes the acceptor with nil, 'closed', 'closed'", function()
      run(function()
        local srv = helpers.server()
        local t = neap.task(function() return srv:accept { timeout = 2 } end)
        neap.sleep(0.01)
        srv:close()
        assert.same({ true, nil, "closed", "ECLOSED" }, { t:join() })
      end)
    end)
  end)

  describe("server:serve()", function()
    it("gives 1,000 concurrent connections their own lines back #load", function()
      run(function()
        local srv, port = helpers.server(nil, { backlog = 1024 })
        local handled = 0
        srv:serve(function(c)
          for line in c:lines() do c:write(line, "\n") end
          handled = handled + 1
        end)
        local N, ok = 1000, 0
        local tasks = {}
        for i = 1, N do
          tasks[i] = neap.task(function()
            local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 10 }))
            for j = 1, 3 do
              local msg = string.format("client %d line %d", i, j)
              c:write(msg, "\n")
              assert.equal(msg, c:read_line { timeout = 10 })
            end
            c:close()
            ok = ok + 1
          end)
        end
        for i = 1, N do assert(tasks[i]:join { timeout = 30 }) end
        assert.equal(N, ok)
        local deadline = neap.now() + 5
        while handled < N and neap.now() < deadline do neap.sleep(0.01) end
        assert.equal(N, handled)
        srv:close()
      end, 60)
    end)

    it("a server closed right after serve() or on('connection') ends its task quietly", function()
      run(function()
        local srv = helpers.server()
        local t1 = srv:serve(function() end)
        assert.is_false(srv:is_closed())
        srv:close()
        assert.is_true(srv:is_closed())
        local srv2 = helpers.server()
        local t2 = srv2:on("connection", function() end)
        srv2:close()
        assert.same({ true }, { t1:join { timeout = 2 } })
        assert.same({ true }, { t2:join { timeout = 2 } })
        assert.equal("done", t1:status())
        assert.equal("done", t2:status())
      end)
    end)

    it("peer_address and local_address on a stream that is not TCP return nil, msg, code", function()
      run(function()
        local p = assert(neap.spawn { "cat" })
        assert.same({ nil, "not a TCP stream", "not a TCP stream" }, { p.stdout:peer_address() })
        assert.same({ nil, "not a TCP stream", "not a TCP stream" }, { p.stdin:local_address() })
        p.stdin:close()
        p:wait { timeout = 5 }
        p:close()
      end)
    end)

    it("a handler that raises closes its connection and the server goes on", function()
      run(function()
        local srv, port = helpers.server(function(c)
          local l = c:read_line { timeout = 2 }
          if l == "boom" then error("handler exploded") end
          c:write("ok:", l, "\n")
        end)
        local c1 = assert(neap.connect("tcp", "127.0.0.1", port))
        c1:write("boom\n")
        assert.same({ nil, "eof", "eof" }, { c1:read_line { timeout = 2 } })
        local c2 = assert(neap.connect("tcp", "127.0.0.1", port))
        c2:write("fine\n")
        assert.equal("ok:fine", c2:read_line { timeout = 2 })
        c1:close() c2:close() srv:close()
      end)
    end)
  end)

  describe("neap.connect()", function()
    it("returns nil, 'connection refused', 'ECONNREFUSED' when nobody listens", function()
      run(function()
        local srv, port = helpers.server()
        srv:close()
        neap.sleep(0.01)
        assert.same({ nil, "connection refused", "ECONNREFUSED" },
          { neap.connect("tcp", "127.0.0.1", port, { timeout = 2 }) })
      end)
    end)

    it("resolves host names asynchronously (localhost)", function()
      run(function()
        local srv, port = helpers.server()
        local t = neap.task(function() local c = srv:accept { timeout = 2 } c:close() end)
        local c = assert(neap.connect("tcp", "localhost", port, { timeout = 2 }))
        c:close() t:join() srv:close()
      end)
    end)

    it("returns an error for a name that does not resolve", function()
      run(function()
        local c, err, code = neap.connect("tcp", "no-such-host.invalid", 80, { timeout = 5 })
        assert.is_nil(c)
        assert.is_string(err)
        assert.truthy(code:match("^EAI_"), code)
      end)
    end)

    it("times out when the server never answers", function()
      run(function()
        -- a full accept queue makes the kernel drop further SYNs
        local srv, port = helpers.server(nil, { backlog = 1 })
        local held, timed_out = {}, false
        for _ = 1, 10 do
          local c, _, code = neap.connect("tcp", "127.0.0.1", port, { timeout = 0.2 })
          if c then held[#held + 1] = c
          else timed_out = (code == "timeout") break end
        end
        assert.is_true(timed_out)
        for _, c in ipairs(held) do c:close() end
        srv:close()
      end)
    end)

    it("raises on bad arguments", function()
      run(function()
        assert.has_error(function() neap.connect("tcp", "127.0.0.1", "80") end)
        assert.has_error(function() neap.connect("udpx", "127.0.0.1", 80) end)
      end)
    end)
  end)

  describe("addresses and options", function()
    it("reports peer and local addresses and sets nodelay and keepalive", function()
      run(function()
        local a, b = helpers.pair()
        local ph, pp = b:peer_address()
        local lh, lp = a:local_address()
        assert.equal("127.0.0.1", ph)
        assert.equal(lp, pp)
        assert.equal("127.0.0.1", lh)
        assert.equal(b, b:nodelay(true))
        assert.equal(b, b:keepalive(true, 30))
        a:close() b:close()
      end)
    end)
  end)
end)
