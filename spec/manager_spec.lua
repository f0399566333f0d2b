local neap = require "neap"
local manager = require "neap.manager"
local helpers = require "helpers"
local run = helpers.run

-- Pulls events until pred(ch, ev) is true; returns the events seen.
local function pull(m, pred, limit)
  local seen = {}
  for _ = 1, limit or 100 do
    local ch, ev = m:next_event { timeout = 5 }
    assert(ev.type ~= "timeout", "no event within 5 s")
    seen[#seen + 1] = { ch, ev }
    if pred(ch, ev) then return seen end
  end
  error("too many events")
end

describe("neap.manager", function()
  helpers.leakcheck()

  describe("read channels", function()
    it("report data as it arrives when nothing is expected", function()
      run(function()
        local m = manager.new()
        local a, b = helpers.pair()
        local rch = m:add_sock(a)
        b:write("raw bytes")
        local ch, ev = m:next_event { timeout = 5 }
        assert.equal(rch, ch)
        assert.equal("read", ev.type)
        assert.equal("ok", ev.status)
        assert.equal("raw bytes", ev.data)
        m:close() b:close()
      end)
    end)

    it("set_expected frames on any of several delimiters, keeping the delimiter", function()
      run(function()
        local m = manager.new()
        local a, b = helpers.pair()
        local rch = m:add_sock(a)
        rch:set_expected { "\n", ";" }
        b:write("one;two\nthr")
        b:write("ee")
        b:close()
        local seen = pull(m, function(_, ev) return ev.status ~= "ok" end)
        local data, status = {}, {}
        for _, e in ipairs(seen) do data[#data + 1] = e[2].data status[#status + 1] = e[2].status end
        assert.same({ "one;", "two\n", "three" }, data)
        assert.same({ "ok", "ok", "eof" }, status)
        m:close()
      end)
    end)

    it("set_expected{} gives one event at EOF with everything", function()
      run(function()
        local m = manager.new()
        local a, b = helpers.pair()
        local rch = m:add_sock(a)
        rch:set_expected {}
        b:write("all ") neap.sleep(0.01) b:write("of it")
        b:close()
        local ch, ev = m:next_event { timeout = 5 }
        assert.equal(rch, ch)
        assert.same({ "eof", "all of it" }, { ev.status, ev.data })
        m:close()
      end)
    end)

    it("times out with nil and an event of type 'timeout'", function()
      run(function()
        local m = manager.new()
        local ch, ev = m:next_event { timeout = 0.02 }
        assert.is_nil(ch)
        assert.equal("timeout", ev.type)
      end)
    end)

    it("add_read_fd of a descriptor that is not open returns nil, message, code", function()
      local ch, err, code = manager.new():add_read_fd(987)
      assert.is_nil(ch)
      assert.equal("EBADF", code)
    end)

    it("process_an_event is the old name of next_event", function()
      assert.equal(manager.new().next_event, manager.new().process_an_event)
    end)
  end)

  describe("write channels", function()
    it("write_stream queues output and a write event follows", function()
      run(function()
        local m = manager.new()
        local a, b = helpers.pair()
        local _, wch = m:add_sock(a)
        wch:write_stream("first ")
        wch:write_stream("second\n")
        local seen = pull(m, function(ch, ev) return ev.type == "write" and ev.bytes == 7 end)
        assert.equal("first second", b:read_line { timeout = 2 })
        for _, e in ipairs(seen) do assert.equal("ok", e[2].status) end
        m:close() b:close()
      end)
    end)
  end)

  describe("m:make_child_proc()", function()
    it("reports stdout, stderr and then the death on child_channel", function()
      run(function()
        local m = manager.new()
        local p = assert(m:make_child_proc { "sh", "-c", "echo out; echo err >&2; exit 7" })
        p.r_channels[1]:set_expected { "\n" }
        local out, err, exit = {}, {}, nil
        pull(m, function(ch, ev)
          if ch == p.r_channels[1] then out[#out + 1] = ev.data
          elseif ch == p.r_channels[2] then err[#err + 1] = ev.data
          elseif ch == m.child_channel then exit = ev end
          return exit ~= nil
        end)
        assert.equal("out\n", table.concat(out))
        assert.equal("err\n", table.concat(err))
        assert.equal("exit", exit.type)
        assert.equal(p.pid, exit.processes[1].pid)
        assert.equal(7, exit.processes[1].code)
        assert.equal(7 << 8, exit.processes[1].term_status)
        m:close()
      end)
    end)

    it("reports a killed child's signal", function()
      run(function()
        local m = manager.new()
        local p = assert(m:make_child_proc { "sleep", "10" })
        p.process:kill("KILL")
        local seen = pull(m, function(ch) return ch == m.child_channel end)
        local e = seen[#seen][2].processes[1]
        assert.same({ nil, "KILL", 9 }, { e.code, e.signal, e.term_status })
        m:close()
      end)
    end)

    it("w_channel feeds the child's stdin", function()
      run(function()
        local m = manager.new()
        local p = assert(m:make_child_proc { "cat" })
        p.w_channel:write_stream("via stdin\n")
        p.r_channels[1]:set_expected { "\n" }
        local seen = pull(m, function(ch) return ch == p.r_channels[1] end)
        assert.equal("via stdin\n", seen[#seen][2].data)
        p.process.stdin:close()
        pull(m, function(ch) return ch == m.child_channel end)
        m:close()
      end)
    end)
  end)

  describe("server and client sockets", function()
    it("make_server_sock reports accepts; make_client_sock connects", function()
      run(function()
        local m = manager.new()
        local sch = assert(m:make_server_sock("tcp", "127.0.0.1", 0, 8))
        local _, port = sch.server:address()
        local rch, wch = assert(m:make_client_sock("tcp", "127.0.0.1", port))
        wch:write_stream("ping\n")
        local seen = pull(m, function(_, ev) return ev.type == "accept" end)
        local conn = seen[#seen][2].stream
        assert.equal("ping", conn:read_line { timeout = 2 })
        conn:write("pong\n")
        rch:set_expected { "\n" }
        seen = pull(m, function(ch) return ch == rch end)
        assert.equal("pong\n", seen[#seen][2].data)
        conn:close()
        m:close()
      end)
    end)

    it("write_stream then an immediate close or shutdown loses nothing", function()
      run(function()
        local srv, port = helpers.server()
        local m = manager.new()
        local _, wch = assert(m:make_client_sock("tcp", "127.0.0.1", port))
        wch:write_stream("goodbye\n")
        wch:close()
        local conn = assert(srv:accept { timeout = 2 })
        assert.equal("goodbye\n", conn:read_all { timeout = 2 })
        conn:close()
        local rch2, wch2 = assert(m:make_client_sock("tcp", "127.0.0.1", port))
        wch2:write_stream("half\n")
        wch2.stream:shutdown()
        conn = assert(srv:accept { timeout = 2 })
        assert.equal("half\n", conn:read_all { timeout = 2 })
        local _, ev = m:next_event { timeout = 2 }
        assert.same({ "write", "ok" }, { ev.type, ev.status })
        conn:close() rch2:close() m:close() srv:close()
      end)
    end)

    it("a task running the manager's loop that fails closes what the manager owned", function()
      run(function()
        local m = manager.new()
        local sch = assert(m:make_server_sock("tcp", "127.0.0.1", 0, 8))
        local _, port = sch.server:address()
        local loop = neap.task(function()
          while true do
            local _, ev = m:next_event { timeout = 5 }
            if ev.type == "accept" then
              local r = m:add_sock(ev.stream)
              r:set_expected { "\n" }
            elseif ev.type == "read" then error("manager loop boom") end
          end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("boom\n")
        local ok, _, kind = loop:join { timeout = 5 }
        assert.is_nil(ok)
        assert.equal("error", kind)
        assert.same({ nil, "eof", "eof" }, { c:read_line { timeout = 2 } })
        c:close()
        local c2, _, code = neap.connect("tcp", "127.0.0.1", port, { timeout = 2 })
        assert.is_nil(c2)
        assert.equal("ECONNREFUSED", code)
      end)
    end)

    it("a udp server channel reports datagrams", function()
      run(function()
        local m = manager.new()
        local sch = assert(m:make_server_sock("udp", "127.0.0.1", 0))
        local host, port = sch.server:address()
        local u = assert(neap.udp())
        u:send("datagram", host, port)
        local seen = pull(m, function(ch) return ch == sch end)
        assert.equal("datagram", seen[#seen][2].data)
        u:close()
        m:close()
      end)
    end)
  end)

  describe("from plain Lua", function()
    it("next_event runs the loop itself (lua5.4 with no task)", function()
      local path = helpers.tmpfile([[
        local manager = require "neap.manager"
        local m = manager.new()
        local p = assert(m:make_child_proc { "echo", "plain" })
        p.r_channels[1]:set_expected { "\n" }
        local ch, ev = m:next_event { timeout = 5 }
        while ch ~= p.r_channels[1] do ch, ev = m:next_event { timeout = 5 } end
        io.write(ev.data)
      ]])
      local out, rc = helpers.sh(helpers.LUA54 .. " " .. path)
      os.remove(path)
      assert.equal(0, rc, out)
      assert.equal("plain\n", out)
    end)
  end)
end)
