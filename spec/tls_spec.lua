-- TLS streams between neap peers: STARTTLS, every stream feature over TLS
-- (framing, limits, backpressure, callbacks, serve with neap.proto, the
-- manager and the dispatcher), load (100 MB each way, 200 connections), and
-- closing or cancelling during the handshake.
local neap = require "neap"
local proto = require "neap.proto"
local manager = require "neap.manager"
local dispatcher = require "neap.dispatcher"
local helpers = require "helpers"
local T = require "tls_helpers"
local run = helpers.run

describe("TLS streams", function()
  helpers.leakcheck()
  local d
  lazy_setup(function() d = T.certs() end)
  lazy_teardown(function() T.rmcerts(d) end)

  describe("STARTTLS", function()
    -- The server: a plaintext line exchange, then "STARTTLS" and the
    -- upgrade (no plaintext answer: the client's ClientHello may be in the
    -- same packet), then lines over TLS.
    local function starttls_server(q)
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      srv:serve(function(c)
        assert.equal("HELLO", c:read_line { timeout = 10 })
        c:write("WELCOME\n")
        assert.equal("STARTTLS", c:read_line { timeout = 10 })
        q:put(c:buffered())   -- the ClientHello's bytes read with the line
        assert(c:starttls { server = true, cert = d .. "/server.pem", key = d .. "/server.key", timeout = 10 })
        assert.equal("tls", c:kind())
        for l in c:lines { timeout = 10 } do c:write("tls: ", l, "\n") end
        c:close()
        q:put("done")
      end)
      local _, port = srv:address()
      return srv, port
    end

    local function client_side(c)
      c:write("HELLO\n")
      assert.equal("WELCOME", c:read_line { timeout = 10 })
      assert.is_nil(c:tls())
      -- the last plaintext line and the ClientHello leave in the same turn
      c:write("STARTTLS\n")
      assert(c:starttls { ca = d .. "/ca.pem", servername = "localhost", timeout = 10 })
      c:write("one\ntwo\n")
      assert.equal("tls: one", c:read_line { timeout = 10 })
      assert.equal("tls: two", c:read_line { timeout = 10 })
      assert.matches("^TLSv1", c:tls().version)
      c:close()
    end

    it("upgrades both sides after a plaintext exchange; lines go on over TLS", function()
      run(function()
        local q = neap.queue()
        local srv, port = starttls_server(q)
        client_side(assert(neap.connect("tcp", "127.0.0.1", port)))
        q:get { timeout = 10 }
        assert.equal("done", q:get { timeout = 10 })
        srv:close()
      end)
    end)

    it("the server loses none of the ClientHello bytes that came in the same packet as the STARTTLS line", function()
      run(function()
        local q = neap.queue()
        local srv, port = starttls_server(q)
        -- a relay that holds the client's bytes after "STARTTLS\n" until
        -- a whole TLS record follows, and sends them all in one write
        local rport, relay = T.relay(port, function(c, up)
          local back = neap.task(T.pump, up, c)
          assert.equal("HELLO", c:read_line { timeout = 10 })
          up:write("HELLO\n")
          local line = assert(c:read_line { timeout = 10 })
          local hdr = assert(c:read_exactly(5, { timeout = 10 }))
          local body = assert(c:read_exactly(string.unpack(">I2", hdr, 4), { timeout = 10 }))
          up:write(line, "\n", hdr, body)
          T.pump(c, up)
          back:join { timeout = 10 }
        end)
        client_side(assert(neap.connect("tcp", "127.0.0.1", rport)))
        local early = q:get { timeout = 10 }
        assert.is_true(early > 5, "the ClientHello came with the line: " .. early .. " bytes")
        assert.equal("done", q:get { timeout = 10 })
        srv:close() relay:close()
        neap.sleep(0.2)   -- the relay's pumps see the ends
      end)
    end)

    it("misuse raises: a TLS stream again, a bad timeout", function()
      run(function()
        local a, b = T.pair(d)
        assert.has_error(function() a:starttls {} end, "starttls: the stream is already TLS")
        assert.has_error(function() b:starttls { timeout = -1 } end,
          "bad argument #1 to 'starttls' (timeout must be a number >= 0)")
        a:close() b:close()
      end)
    end)
  end)

  describe("stream features over TLS", function()
    it("read_line, lines, read_until with several delimiters, read_exactly, read_all", function()
      run(function()
        local a, b = T.pair(d)
        b:write("l1\r\nl2\nrec1;rec2|rest", "XYZ0123456789tail")
        b:shutdown()
        assert.equal("l1", a:read_line { timeout = 5 })
        local lines = {}
        for l in a:lines { timeout = 5 } do lines[#lines + 1] = l break end
        assert.same({ "l2" }, lines)
        local x, dl = a:read_until({ ";", "|" }, { timeout = 5 })
        assert.equal("rec1", x) assert.equal(";", dl)
        x, dl = a:read_until({ "|", ";" }, { timeout = 5 })
        assert.equal("rec2", x) assert.equal("|", dl)
        assert.equal("restXYZ", a:read_exactly(7, { timeout = 5 }))
        assert.equal("0123456789", a:read_exactly(10, { timeout = 5 }))
        assert.equal("tail", a:read_all { timeout = 5 })
        assert.same({ nil, "eof", "eof" }, { a:read_line { timeout = 5 } })
        a:close() b:close()
      end)
    end)

    it("max_frame refuses a longer line; a 1 MiB line passes with the default", function()
      run(function()
        local a, b = T.pair(d)
        a:set_limits { max_frame = 100 }
        b:write(string.rep("x", 500), "\n")
        assert.same({ nil, "frame too large", "frame too large" }, { a:read_line { timeout = 5 } })
        a:close() b:close()
        a, b = T.pair(d)
        local big = string.rep("y", 1024 * 1024 - 1)
        b:write(big, "\n")
        assert.equal(big, a:read_line { timeout = 10 })
        a:close() b:close()
      end)
    end)

    it("backpressure: the writer parks for a slow reader and memory stays bounded", function()
      run(function()
        local a, b = T.pair(d)
        b:set_limits { high_water = 64 * 1024, low_water = 16 * 1024 }
        local chunk = string.rep("w", 64 * 1024)
        local maxq, parked = 0, 0
        local rss0 = T.rss_kb()
        local writer = neap.task(function()
          for _ = 1, 512 do   -- 32 MiB
            local t0 = neap.now()
            assert(b:write(chunk))
            if neap.now() > t0 then parked = parked + 1 end
            maxq = math.max(maxq, b:write_queue_size())
          end
          b:close()
        end)
        local total, maxrss = 0, 0
        while true do
          local c = a:read(16 * 1024, { timeout = 20 })
          if not c then break end
          total = total + #c
          if total % (1024 * 1024) < 16 * 1024 then
            maxrss = math.max(maxrss, T.rss_kb())
            neap.sleep(0.001)   -- a slow reader
          end
        end
        assert.equal(512 * 64 * 1024, total)
        assert.is_true(writer:join { timeout = 20 })
        assert.is_true(parked > 10, "the writer parked " .. parked .. " times")
        assert.is_true(maxq <= 2 * 64 * 1024 + 64 * 1024, "queue reached " .. maxq)
        -- (ASan's quarantine and valgrind keep freed memory: RSS says nothing there)
        if not helpers.BUILD:match("asan") and not os.getenv("NEAP_VALGRIND") then
          assert.is_true(maxrss - rss0 < 16 * 1024, "RSS grew by " .. (maxrss - rss0) .. " KiB for 32 MiB sent")
        end
        a:close()
      end, 60)
    end)

    it("s:on callbacks: lines, then close", function()
      run(function()
        local a, b = T.pair(d)
        local got, closed = {}, neap.queue()
        a:on("line", function(l) got[#got + 1] = l end)
        a:on("close", function(...) closed:put(select("#", ...)) end)
        b:write("x\ny\nz\n")
        b:shutdown()
        assert.equal(0, closed:get { timeout = 5 })
        assert.same({ "x", "y", "z" }, got)
        a:close() b:close()
      end)
    end)

    it("server:serve(protocol) with neap.proto and on('connection') hand out TLS streams", function()
      run(function()
        local P = proto.define(function(io)
          local l = io:read_line()
          io:write("[", l, "]")
          io:close()
        end)
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d)))
        srv:serve(P)
        local _, port = srv:address()
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 }))
        c:write("proto\n")
        assert.equal("[proto]", c:read_all { timeout = 10 })
        c:close() srv:close()
        srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d)))
        srv:on("connection", function(s) s:write(s:kind(), "\n") s:close() end)
        _, port = srv:address()
        c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 }))
        assert.equal("tls", c:read_line { timeout = 10 })
        c:close() srv:close()
      end)
    end)

    it("the manager: make_client_sock('tls') and add_sock frame lines over TLS", function()
      run(function()
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d)))
        srv:serve(function(c)
          for l in c:lines { timeout = 10 } do c:write(l:upper(), ";") end
          c:close()
        end)
        local _, port = srv:address()
        local m = manager.new()
        local r, w = assert(m:make_client_sock("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 }))
        r:set_expected { ";" }
        w:write_stream("ab\ncd\n")
        local got = {}
        while #got < 2 do
          local ch, ev = m:next_event { timeout = 10 }
          assert.not_equal("timeout", ev.type)
          if ch == r then
            assert.equal("read", ev.type)
            got[#got + 1] = ev.data
          end
        end
        assert.same({ "AB;", "CD;" }, got)
        m:close() srv:close()
        neap.sleep(0.1)   -- the server's side sees the end
      end)
    end)

    it("the dispatcher: an accepted TLS stream in set_socket, recv and send", function()
      run(function()
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d)))
        neap.task(function()
          local s = assert(srv:accept { timeout = 10 })
          local h = dispatcher.new({}, s)
          function h:writable() return false end
          function h:handle_read()
            local x = self:recv(100)
            if x ~= "" then self:send(x:upper()) end
          end
          function h:handle_close() self:close() end
        end)
        local _, port = srv:address()
        local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 10 }))
        c:write("dispatched\n")
        assert.equal("DISPATCHED", c:read_line { timeout = 10 })
        c:close()
        srv:close()
        neap.sleep(0.05)
      end)
    end)
  end)

  describe("load", function()
    it("#load 100 MB each way at once, verified chunk by chunk", function()
      run(function()
        local a, b = T.pair(d)
        local N, SZ = 1600, 65536   -- 1600 x 64 KiB = 100 MiB (~105 MB)
        local base = {}
        for i = 1, SZ / 16 - 1 do base[i] = string.format("%016x", i * 2654435761 % 2^32) end
        base = table.concat(base)
        local function chunk(i) return string.pack(">I8I8", i, i * 7) .. base end
        local function send(s)
          for i = 1, N do assert(s:write(chunk(i))) end
          assert(s:flush { timeout = 60 })
          s:shutdown()
        end
        local function check(s)
          for i = 1, N do
            local x = s:read_exactly(SZ, { timeout = 60 })
            if x ~= chunk(i) then return "chunk " .. i .. " differs" end
          end
          local rest = s:read_all { timeout = 60 }
          if rest ~= "" then return #rest .. " bytes too many" end
          return "ok"
        end
        local t1 = neap.task(send, a)
        local t2 = neap.task(send, b)
        local r1 = neap.task(check, a)
        local r2 = neap.task(check, b)
        assert.same({ true, "ok" }, { r1:join { timeout = 120 } })
        assert.same({ true, "ok" }, { r2:join { timeout = 120 } })
        assert.is_true(t1:join { timeout = 10 })
        assert.is_true(t2:join { timeout = 10 })
        a:close() b:close()
      end, 180)
    end)

    it("#load 200 concurrent TLS connections echoing", function()
      run(function()
        local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d, { backlog = 512 })))
        srv:serve(function(c)
          for l in c:lines { timeout = 30 } do c:write(l, "\n") end
          c:close()
        end)
        local _, port = srv:address()
        local tasks = {}
        for i = 1, 200 do
          tasks[i] = neap.task(function()
            local c = assert(neap.connect("tls", "localhost", port, { ca = d .. "/ca.pem", timeout = 60 }))
            for j = 1, 5 do
              c:write("conn ", i, " line ", j, "\n")
              assert.equal("conn " .. i .. " line " .. j, c:read_line { timeout = 30 })
            end
            c:close()
          end)
        end
        for i = 1, 200 do assert.is_true(tasks[i]:join { timeout = 90 }) end
        srv:close()
        neap.sleep(0.1)
      end, 120)
    end)
  end)

  describe("closing and cancelling during the handshake", function()
    -- a TCP server that accepts and never answers
    local function mute_server()
      local conns = {}
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      srv:serve(function(c) conns[#conns + 1] = c c:read_all { timeout = 10 } c:close() end)
      local _, port = srv:address()
      return srv, port, conns
    end

    it("a task parked in the handshake can be cancelled; nothing is left open", function()
      run(function()
        local srv, port = mute_server()
        neap.sleep(0.01)
        local fds = helpers.fd_count()
        local t = neap.task(function()
          return neap.connect("tls", "127.0.0.1", port, { ca = d .. "/ca.pem", timeout = 10 })
        end)
        neap.sleep(0.1)
        t:cancel()
        assert.same({ nil, "cancelled", "cancelled" }, { t:join { timeout = 5 } })
        srv:close()
        neap.sleep(0.1)
        helpers.not_above(fds, helpers.fd_count(), "descriptors")
      end)
    end)

    it("a stream closed by another task during the handshake wakes the handshake with closed", function()
      run(function()
        local srv, port = mute_server()
        local s = assert(neap.connect("tcp", "127.0.0.1", port))
        neap.task(function() neap.sleep(0.1) s:close() end)
        local r, msg, code = s:starttls { ca = d .. "/ca.pem", timeout = 10 }
        assert.is_nil(r)
        assert.equal("ECLOSED", code, msg)
        srv:close()
        neap.sleep(0.05)
      end)
    end)

    it("a handshake that times out leaves the stream to close (starttls) or closes it (connect)", function()
      run(function()
        local srv, port = mute_server()
        local s = assert(neap.connect("tcp", "127.0.0.1", port))
        assert.same({ nil, "timeout", "timeout" }, { s:starttls { ca = d .. "/ca.pem", timeout = 0.1 } })
        assert.is_false(s:is_closed())
        s:close()
        assert.same({ nil, "timeout", "timeout" },
          { neap.connect("tls", "127.0.0.1", port, { ca = d .. "/ca.pem", timeout = 0.2 }) })
        srv:close()
        neap.sleep(0.05)
      end)
    end)

    it("a TLS stream dropped mid-handshake is collected and its socket closed", function()
      run(function()
        local srv, port = mute_server()
        neap.sleep(0.01)
        local fds = helpers.fd_count()
        do   -- the handshake times out: the stream stays mid-handshake, then is dropped
          local s = assert(neap.connect("tcp", "127.0.0.1", port))
          assert.same({ nil, "timeout", "timeout" }, { s:starttls { ca = d .. "/ca.pem", timeout = 0.05 } })
        end
        for _ = 1, 3 do collectgarbage() neap.sleep(0.05) end
        srv:close()
        neap.sleep(0.1)
        helpers.not_above(fds, helpers.fd_count(), "descriptors")
      end)
    end)
  end)
end)
