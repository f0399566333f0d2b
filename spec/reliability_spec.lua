-- Reliability: descriptors and memory stay bounded whatever peers and
-- children do; broken peers get errors or timeouts and the rest goes on.
local neap = require "neap"
local helpers = require "helpers"
local run, sh = helpers.run, helpers.sh

local fd_count, rss_kb = helpers.fd_count, helpers.rss_kb

describe("reliability", function()
  helpers.leakcheck()

  describe("descriptors", function()
    it("10,000 connections opened and closed leave the descriptor count where it was #load", function()
      run(function()
        local srv, port = helpers.server(nil, { backlog = 512 })
        local active = 0
        srv:serve(function(c) active = active + 1 c:read_line { timeout = 5 } active = active - 1 end)
        collectgarbage() collectgarbage()
        local before = fd_count()
        local workers = {}
        for w = 1, 50 do
          workers[w] = neap.task(function()
            for _ = 1, 200 do
              local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
              c:write("x\n")
              c:close()
            end
          end)
        end
        for w = 1, 50 do assert(workers[w]:join { timeout = 60 }) end
        local deadline = neap.now() + 10
        repeat neap.sleep(0.02) until active == 0 or neap.now() > deadline   -- handlers see their EOFs
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        local after = fd_count()
        assert.is_true(after <= before, ("descriptors: %d before, %d after"):format(before, after))
        srv:close()
      end, 90)
    end)
  end)

  describe("memory", function()
    it("a 100 MB line with no newline gets 'frame too large' and memory stays bounded #load", function()
      run(function()
        local a, b = helpers.pair()
        collectgarbage() collectgarbage()
        local before = rss_kb()
        local chunk = string.rep("n", 64 * 1024)
        local sender = neap.task(function()
          for _ = 1, 1600 do if not b:write(chunk) then return end end
        end)
        assert.same({ nil, "frame too large", "frame too large" }, { a:read_line { timeout = 10 } })
        local grown = rss_kb() - before
        assert.is_true(grown < 32 * 1024, "grew by " .. grown .. " KiB")
        sender:cancel()
        a:close() b:close()
      end, 60)
    end)

    it("a flood to a slow reader stays within the read and write limits", function()
      run(function()
        local a, b = helpers.pair()
        collectgarbage() collectgarbage()
        local before = rss_kb()
        local chunk = string.rep("f", 64 * 1024)
        local sent = 0
        local sender = neap.task(function()
          for _ = 1, 3200 do            -- 200 MB offered
            if not b:write(chunk) then return end
            sent = sent + #chunk
          end
        end)
        local got = 0
        local t0 = neap.now()
        while neap.now() - t0 < 1 do   -- read slowly for a second
          local d = a:read(4096, { timeout = 1 })
          got = got + #d
          neap.sleep(0.01)
        end
        local grown = rss_kb() - before
        assert.is_true(grown < 32 * 1024, "grew by " .. grown .. " KiB")
        assert.is_true(sent < 50 * 1024 * 1024, "the writer was not held back: " .. sent)
        assert.is_true(b:write_queue_size() <= b:limits().high_water + #chunk)
        sender:cancel()
        a:close() b:close()
      end, 60)
    end)

    it("a peer that never reads: the writer parks, and write_timeout ends the wait", function()
      run(function()
        local a, b = helpers.pair()
        b:set_limits { write_timeout = 0.3 }
        local chunk = string.rep("w", 256 * 1024)
        local ok, err, code
        for _ = 1, 400 do
          ok, err, code = b:write(chunk)
          if not ok then break end
        end
        assert.same({ nil, "timeout", "timeout" }, { ok, err, code })
        assert.is_true(b:write_queue_size() < 4 * 1024 * 1024)
        a:close() b:close()
      end, 30)
    end)
  end)

  describe("hostile and broken peers", function()
    local function echo_server()
      local srv, port = helpers.server()
      srv:serve(function(c)
        while true do
          local l = c:read_line { timeout = 0.5 }
          if not l then return end
          if not c:write(l, "\n") then return end
        end
      end)
      return srv, port
    end

    local function still_serves(port)
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 2 }))
      c:write("alive?\n")
      local l = c:read_line { timeout = 2 }
      c:close()
      return l == "alive?"
    end

    it("a peer that resets mid-write: the writer gets an error, the server goes on", function()
      run(function()
        local srv, port = helpers.server()
        local result
        srv:serve(function(c)
          c:read_line { timeout = 2 }
          local chunk = string.rep("r", 64 * 1024)
          for _ = 1, 2000 do
            local ok, _, code = c:write(chunk)
            if not ok then result = code return end
          end
          result = "never failed"
        end)
        -- python sends a line, then closes with SO_LINGER 0: a reset
        local py = ([[import socket,struct,time
s=socket.create_connection(("127.0.0.1",%d)); s.sendall(b"go\n"); time.sleep(0.1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii",1,0)); s.close()]]):format(port)
        local p = neap.spawn { "python3", "-c", py, stdout = "null", stderr = "null" }
        p:wait { timeout = 5 }
        local deadline = neap.now() + 5
        while not result and neap.now() < deadline do neap.sleep(0.01) end
        assert.truthy(result == "ECONNRESET" or result == "EPIPE", tostring(result))
        srv:close()
        neap.sleep(0.05)   -- the handler closes its connection
      end)
    end)

    it("slowloris and silent peers time out while others are served", function()
      run(function()
        local srv, port = echo_server()
        local silent = assert(neap.connect("tcp", "127.0.0.1", port))
        local slow = assert(neap.connect("tcp", "127.0.0.1", port))
        local dripping = neap.task(function()
          for _ = 1, 20 do if not slow:write("x") then return end neap.sleep(0.1) end
        end)
        assert.is_true(still_serves(port))
        -- the server drops both within its 0.5 s read timeout
        assert.same({ nil, "eof", "eof" }, { silent:read_line { timeout = 3 } })
        assert.same({ nil, "eof", "eof" }, { slow:read_line { timeout = 3 } })
        assert.is_true(still_serves(port))
        dripping:cancel()
        silent:close() slow:close() srv:close()
        neap.sleep(0.05)
      end)
    end)

    it("a half-closed peer still gets its answer", function()
      run(function()
        local srv, port = echo_server()
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("last words\n")
        c:shutdown()
        assert.equal("last words", c:read_line { timeout = 2 })
        c:close() srv:close()
      end)
    end)

    it("a callback that raises is logged and the stream's callbacks go on", function()
      run(function()
        local a, b = helpers.pair()
        local got = {}
        a:on("line", function(l)
          if l == "bad" then error("callback exploded") end
          got[#got + 1] = l
        end)
        b:write("bad\ngood\n")
        local deadline = neap.now() + 2
        while #got == 0 and neap.now() < deadline do neap.sleep(0.01) end
        assert.same({ "good" }, got)
        a:close() b:close()
      end)
    end)
  end)

  describe("children", function()
    it("a child killed with each common signal reports that signal", function()
      run(function()
        for _, sig in ipairs { "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "ALRM", "TERM" } do
          local p = assert(neap.spawn { "sleep", "10", stdin = "null", stdout = "null", stderr = "null" })
          assert.is_true(p:kill(sig))
          assert.same({ nil, sig }, { p:wait { timeout = 5 } })
        end
      end)
    end)

    it("a child that closes its stdout early but keeps running: EOF, then wait", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "echo early; exec >&-; sleep 0.3; exit 4" })
        assert.equal("early\n", p.stdout:read_all { timeout = 2 })
        assert.same({ 4, nil }, { p:wait { timeout = 5 } })
        p:close()
      end)
    end)

    it("a child that fills stderr while nobody reads it: wait does not hang, nothing is lost", function()
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "head -c 2000000 /dev/zero >&2; echo out" })
        assert.same({ 0, nil }, { p:wait { timeout = 10 } })
        assert.equal(2000000, #p.stderr:read_all { timeout = 2 })
        assert.equal("out\n", p.stdout:read_all { timeout = 2 })
        p:close()
      end)
    end)
  end)

  describe("the descriptor limit", function()
    -- the same flood against each front's server (serve, on("connection"),
    -- the dispatcher and the manager): none may spin at the descriptor limit
    local flood_servers = {
      ["serve()"] = [[
        local srv = assert(neap.listen("tcp", "127.0.0.1", 0, { backlog = 16 }))
        port = select(2, srv:address())
        srv:serve(function(c) for l in c:lines { timeout = 20 } do c:write(l, "\n") end end)
      ]],
      ['on("connection")'] = [[
        local srv = assert(neap.listen("tcp", "127.0.0.1", 0, { backlog = 16 }))
        port = select(2, srv:address())
        srv:on("connection", function(c)
          c:on("line", function(l) c:write(l, "\n") end)
          c:on("close", function() c:close() end)
        end)
      ]],
      ["the dispatcher"] = [[
        local dispatcher = require "neap.dispatcher"
        local d = dispatcher.new { handle_accepted = function(_, sock)
          local h = dispatcher.chat({}, sock)
          h:set_terminator("\n")
          function h:found_terminator() self:push(self:_get_data() .. "\n") end
        end }
        d:create_socket() d:bind("127.0.0.1", 0) assert(d:listen(16))
        port = select(2, d:address())
      ]],
      ["the manager"] = [[
        local m = require("neap.manager").new()
        local sc = assert(m:make_server_sock("tcp", "127.0.0.1", 0, 16))
        port = select(2, sc.server:address())
        local w = {}
        neap.task(function()
          while true do
            local ch, ev = m:next_event()
            if ev.type == "accept" and ev.stream then
              local r, wc = m:add_sock(ev.stream) r:set_expected { "\n" } w[r] = wc
            elseif ev.type == "read" and w[ch] then
              if ev.status == "ok" then w[ch]:write_stream(ev.data) else ch:close() w[ch] = nil end
            end
          end
        end)
      ]],
    }
    for name, code in pairs(flood_servers) do
    it("with ulimit -n 64 a flooded server keeps its connections, stays idle, and recovers: " .. name, function()
      local server = helpers.tmpfile("local neap = require 'neap'\nlocal port\n" .. code .. [[
        io.stdout:write(port, "\n") io.stdout:flush()
        neap.sleep(20) os.exit(0)
      ]])
      run(function()
        local p = assert(neap.spawn { "sh", "-c", "ulimit -n 64; exec " .. helpers.NEAP .. " " .. server })
        local port = tonumber(p.stdout:read_line { timeout = 5 })
        local held = {}
        local first = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 2 }))
        for _ = 1, 150 do   -- far more than 64 descriptors
          local c = neap.connect("tcp", "127.0.0.1", port, { timeout = 0.5 })
          if c then held[#held + 1] = c end
        end
        -- the first connection is still served
        first:write("still here\n")
        assert.equal("still here", first:read_line { timeout = 3 })
        -- at the limit the server does not spin: CPU over one second stays low
        local function cpu()
          local f = io.open("/proc/" .. p.pid .. "/stat")
          local st = f:read("a") f:close()
          local fields = {}
          for x in st:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = x end
          return (tonumber(fields[12]) + tonumber(fields[13])) / 100   -- utime + stime
        end
        local c0 = cpu()
        neap.sleep(1)
        local used = cpu() - c0
        assert.is_true(used < 0.3, "server used " .. used .. " s of CPU in 1 s at the limit")
        -- when they leave, new connections are served again
        for _, c in ipairs(held) do c:close() end
        neap.sleep(0.3)
        local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 2 }))
        c:write("recovered\n")
        assert.equal("recovered", c:read_line { timeout = 3 })
        c:close() first:close()
        p:kill("TERM")
        p:wait { timeout = 5 }
        p:close()
      end, 60)
      os.remove(server)
    end)
    end
  end)
end)
