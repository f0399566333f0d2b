-- Unix domain sockets: neap.listen("unix", path) / neap.connect("unix", path)
-- with the stream and server interface of TCP (issue #5).
local neap = require "neap"
local helpers = require "helpers"
local tmpdir = helpers.tmpdir
local run, NEAP = helpers.run, helpers.NEAP


local function exists(path)
  return os.execute("test -e " .. path) == true
end

-- Runs a neap child that listens on 'path' and says "ready"; returns the process.
local SERVER = helpers.tmpfile([[
  local neap = require "neap"
  local srv = assert(neap.listen("unix", arg[1]))
  srv:serve(function(c) c:write("from child\n") end)
  print("ready")
]])

local function child_server(path)
  local p = assert(neap.spawn { NEAP, SERVER, path, stdin = "null" })
  assert.equal("ready", p.stdout:read_line { timeout = 10 })
  return p
end

describe("neap unix sockets", function()
  helpers.leakcheck()
  teardown(function() os.remove(SERVER) end)

  describe("listen and connect", function()
    it("carry lines both ways, with the stream interface", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/s.sock"
        local srv = assert(neap.listen("unix", path))
        assert.equal(path, srv:address())
        local t = neap.task(function()
          local c = assert(srv:accept { timeout = 5 })
          for l in c:lines() do c:write(l:upper(), "\n") end
          c:write("bye")
          c:close()
        end)
        local c = assert(neap.connect("unix", path, { timeout = 5 }))
        c:write("hello\n", "world\n")
        assert.equal("HELLO", c:read_line { timeout = 5 })
        assert.equal("WORL", c:read_exactly(4, { timeout = 5 }))
        assert.equal("D", c:read_line { timeout = 5 })
        c:shutdown()
        assert.equal("bye", c:read_all { timeout = 5 })
        assert.is_true((t:join { timeout = 5 }))
        c:close()
        srv:close()
        os.remove(path) os.remove(d)
      end)
    end)

    it("serve() runs a task per connection for 200 concurrent clients", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/s.sock"
        local srv = assert(neap.listen("unix", path, { backlog = 256 }))
        srv:serve(function(c)
          local l = c:read_line { timeout = 5 }
          c:write("echo:", l, "\n")
        end)
        local tasks = {}
        for i = 1, 200 do
          tasks[i] = neap.task(function()
            local c = assert(neap.connect("unix", path, { timeout = 10 }))
            c:write("client ", i, "\n")
            local got = c:read_line { timeout = 10 }
            c:close()
            return got
          end)
        end
        for i = 1, 200 do
          assert.same({ true, "echo:client " .. i }, { tasks[i]:join { timeout = 20 } })
        end
        srv:close()
        os.remove(d)
      end, 60)
    end)

    it("moves 20 MB each way", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/s.sock"
        local srv = assert(neap.listen("unix", path))
        srv:serve(function(c)
          while true do
            local data = c:read(65536)
            if not data then break end
            c:write(data)
          end
        end)
        local c = assert(neap.connect("unix", path))
        local data = ("0123456789abcdef"):rep(20 * 1024 * 1024 // 16)
        neap.task(function() c:write(data) c:shutdown() end)
        local got = c:read_all { timeout = 30 }
        assert.equal(#data, #got)
        assert.is_true(got == data)
        c:close()
        srv:close()
        os.remove(d)
      end, 60)
    end)

    it("accept times out with nil, 'timeout', 'timeout'", function()
      run(function()
        local d = tmpdir()
        local srv = assert(neap.listen("unix", d .. "/s.sock"))
        assert.same({ nil, "timeout", "timeout" }, { srv:accept { timeout = 0.05 } })
        srv:close()
        os.remove(d .. "/s.sock") os.remove(d)
      end)
    end)

    it("server:close() removes the socket file", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/s.sock"
        local srv = assert(neap.listen("unix", path))
        assert.is_true(exists(path))
        srv:close()
        neap.sleep(0.02)
        assert.is_false(exists(path))
        os.remove(d)
      end)
    end)
  end)

  describe("connect errors", function()
    it("a missing path returns nil, message, 'ENOENT'", function()
      run(function()
        assert.same({ nil, "no such file or directory", "ENOENT" },
          { neap.connect("unix", "/nonexistent/neap/s.sock", { timeout = 5 }) })
      end)
    end)

    it("a socket file with no server returns nil, message, 'ECONNREFUSED'", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/dead.sock"
        local p = child_server(path)
        p:kill("KILL")
        p:wait { timeout = 5 }
        p:close()
        assert.is_true(exists(path))
        assert.same({ nil, "connection refused", "ECONNREFUSED" }, { neap.connect("unix", path, { timeout = 5 }) })
        os.remove(path) os.remove(d)
      end)
    end)
  end)

  describe("the socket file", function()
    it("a stale file from a dead server is replaced: listen succeeds", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/stale.sock"
        local p = child_server(path)
        p:kill("KILL")
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
        p:close()
        assert.is_true(exists(path))   -- left behind by the dead server
        local srv = assert(neap.listen("unix", path))
        local t = neap.task(function()
          local c = assert(srv:accept { timeout = 5 })
          c:write("new server\n")
          c:close()
        end)
        local c = assert(neap.connect("unix", path, { timeout = 5 }))
        assert.equal("new server", c:read_line { timeout = 5 })
        t:join()
        c:close()
        srv:close()
        os.remove(d)
      end)
    end)

    it("a live server's path gives EADDRINUSE and the live server goes on", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/live.sock"
        -- in this process
        local srv = assert(neap.listen("unix", path))
        assert.same({ nil, "address already in use", "EADDRINUSE" }, { neap.listen("unix", path) })
        srv:close()
        neap.sleep(0.02)
        -- in another process
        local p = child_server(path)
        assert.same({ nil, "address already in use", "EADDRINUSE" }, { neap.listen("unix", path) })
        local c = assert(neap.connect("unix", path, { timeout = 5 }))
        assert.equal("from child", c:read_line { timeout = 5 })
        c:close()
        p:kill()
        p:wait { timeout = 5 }
        p:close()
        os.remove(path) os.remove(d)
      end, 30)
    end)

    it("a regular file at the path is neither replaced nor deleted", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/data.txt"
        local f = io.open(path, "w") f:write("precious\n") f:close()
        local srv, _, code = neap.listen("unix", path)
        if srv then srv:close() end
        f = io.open(path)
        local content = f and f:read("a")
        if f then f:close() end
        assert.equal("precious\n", content, "the file was deleted")
        assert.is_nil(srv)
        assert.equal("EADDRINUSE", code)
        os.remove(path) os.remove(d)
      end)
    end)

    it("a path too long for a socket address returns nil, message, 'ENAMETOOLONG'", function()
      run(function()
        local d = tmpdir()
        local path = d .. "/" .. ("n"):rep(120) .. ".sock"
        local srv, _, code = neap.listen("unix", path)
        if srv then srv:close() end
        os.execute("rm -rf " .. d)
        assert.is_nil(srv, "listen bound a truncated path")
        assert.equal("ENAMETOOLONG", code)
      end)
    end)
  end)
end)
