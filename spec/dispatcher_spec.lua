local neap = require "neap"
local dispatcher = require "neap.dispatcher"
local helpers = require "helpers"
local run = helpers.run

-- A server whose handler is given; returns it and its port.
local function echo_listener(on_accept)
  local server = dispatcher.new { handle_accepted = function(self, sock) on_accept(sock) end }
  server:create_socket()
  server:bind("127.0.0.1", 0)
  assert(server:listen(8))
  local _, port = server:address()
  return server, port
end

describe("neap.dispatcher", function()
  helpers.leakcheck()

  describe("dispatcher.new()", function()
    it("makes a table a dispatcher, its own handlers first (a class works too)", function()
      local Class = {}
      Class.__index = Class
      function Class:handle_read() return "mine" end
      local d = dispatcher.new(setmetatable({}, Class))
      assert.equal("mine", d:handle_read())
      assert.is_function(d.send)
      assert.is_true(d:readable())
    end)
  end)

  describe("asyncore", function()
    it("accepts, reads with recv, writes with send, and handle_close at EOF", function()
      run(function()
        local log = {}
        local server, port = echo_listener(function(sock)
          local h = dispatcher.new({}, sock)
          function h:writable() return false end
          function h:handle_read()
            local d = self:recv(100)
            if d ~= "" then self:send(d:upper()) end
          end
          function h:handle_close() log[#log + 1] = "closed" self:close() end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("shout\n")
        assert.equal("SHOUT", c:read_line { timeout = 2 })
        c:close()
        local deadline = neap.now() + 2
        while #log == 0 and neap.now() < deadline do neap.sleep(0.01) end
        assert.same({ "closed" }, log)
        server:close()
      end)
    end)

    it("connect calls handle_connect, and writable() decides handle_write", function()
      run(function()
        local srv, port = helpers.server()
        local got
        srv:serve(function(c) got = c:read_line { timeout = 2 } end)
        local events = {}
        local d = dispatcher.new {
          buffer = "request\n",
          handle_connect = function(self) events[#events + 1] = "connect" end,
          writable = function(self) return #self.buffer > 0 end,
          handle_write = function(self)
            events[#events + 1] = "write"
            self.buffer = self.buffer:sub(self:send(self.buffer) + 1)
          end,
          handle_read = function(self) self:recv(10) end,
        }
        d:create_socket()
        d:connect("127.0.0.1", port)
        local deadline = neap.now() + 2
        while not got and neap.now() < deadline do neap.sleep(0.01) end
        assert.equal("request", got)
        assert.same({ "connect", "write" }, events)
        d:close() srv:close()
      end)
    end)

    it("a handler that raises goes to handle_error, which closes only that dispatcher", function()
      run(function()
        local errors = 0
        local server, port = echo_listener(function(sock)
          local h = dispatcher.new({}, sock)
          function h:writable() return false end
          function h:handle_read()
            local d = self:recv(100)
            if d:find("boom") then error("handler exploded") end
            self:send(d)
          end
          function h:handle_error(err) errors = errors + 1 self:close() end
        end)
        local c1 = assert(neap.connect("tcp", "127.0.0.1", port))
        c1:write("boom\n")
        assert.same({ nil, "eof", "eof" }, { c1:read_line { timeout = 2 } })
        local c2 = assert(neap.connect("tcp", "127.0.0.1", port))
        c2:write("fine\n")
        assert.equal("fine", c2:read_line { timeout = 2 })
        assert.equal(1, errors)
        c1:close() c2:close() server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("loop{} returns when no dispatcher is left; loop{timeout=} returns anyway", function()
      run(function()
        local server = echo_listener(function(sock) sock:close() end)
        local t0 = neap.now()
        dispatcher.loop { timeout = 0.1 }
        assert.is_true(neap.now() - t0 >= 0.09)
        server:close()
        t0 = neap.now()
        dispatcher.loop {}
        assert.is_true(neap.now() - t0 < 0.5)
        assert.is_nil(next(dispatcher.map))
      end)
    end)
  end)

  describe("asynchat", function()
    it("dispatcher.chat takes a table with a class metatable", function()
      local Class = {}
      Class.__index = Class
      function Class:found_terminator() return "class" end
      local c = dispatcher.chat(setmetatable({}, Class))
      assert.equal("class", c:found_terminator())
      assert.is_function(c.set_terminator)
      assert.is_function(c.push)
    end)

    it("once a byte count is met, data is collected as it comes (no loop on 0)", function()
      run(function()
        local calls, raw = 0, {}
        local server, port = echo_listener(function(sock)
          local h = dispatcher.chat({}, sock)
          h:set_terminator(3)
          function h:found_terminator() calls = calls + 1 end
          function h:collect_incoming_data(d) raw[#raw + 1] = d end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("abcdef")
        neap.sleep(0.1)
        assert.equal(1, calls)
        assert.equal("abcdef", table.concat(raw))
        c:close() server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("frames by a string terminator, by a byte count, and with none", function()
      run(function()
        local got = {}
        local server, port = echo_listener(function(sock)
          local h = dispatcher.chat({}, sock)
          h:set_terminator("\r\n")
          function h:found_terminator()
            local data = self:_get_data()
            got[#got + 1] = data
            if data == "BODY 5" then self:set_terminator(5)
            elseif #got == 2 then self:set_terminator(nil)
            else self:set_terminator("\r\n") end
          end
          function h:collect_incoming_data(d)
            if self:get_terminator() == nil then got[#got + 1] = "raw:" .. d
            else self.incoming[#self.incoming + 1] = d end
          end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("BODY 5\r\nhel")
        neap.sleep(0.02)
        c:write("lo")
        neap.sleep(0.02)
        c:write("rest")
        local deadline = neap.now() + 2
        while #got < 3 and neap.now() < deadline do neap.sleep(0.01) end
        assert.same({ "BODY 5", "hello", "raw:rest" }, got)
        c:close() server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("bytes that arrive while handle_read waits are handled (a handler that reads one byte and waits)", function()
      run(function()
        local server, port = echo_listener(function(sock)
          local h = dispatcher.new({}, sock)
          function h:writable() return false end
          function h:handle_read()
            local d = self:recv(1)
            if d ~= "" then
              neap.sleep(0.05)   -- waits: the next byte arrives meanwhile
              self:send(d:upper())
            end
          end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("ab")
        neap.sleep(0.02)
        c:write("c")
        assert.equal("ABC", c:read_exactly(3, { timeout = 2 }))
        c:close() server:close()
        for d in pairs(dispatcher.map) do d:close() end
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("set_socket after the end of the old socket starts afresh", function()
      run(function()
        local srv, port = helpers.server()
        local frames = {}
        local a1 = assert(neap.connect("tcp", "127.0.0.1", port))
        local s1 = assert(srv:accept { timeout = 2 })
        local a2 = assert(neap.connect("tcp", "127.0.0.1", port))
        local s2 = assert(srv:accept { timeout = 2 })
        local h = dispatcher.chat({}, s1)
        h:set_terminator(4)
        function h:found_terminator() frames[#frames + 1] = self:_get_data() self:set_terminator(4) end
        function h:handle_close()   -- drop the partial frame, go on with a new socket
          self.sock:close() self:_get_data() self:set_terminator(4) self:set_socket(s2)
        end
        a1:write("ab")   -- a partial frame, then the end
        a1:close()
        neap.sleep(0.05)
        a2:write("abcd")
        local deadline = neap.now() + 2
        while #frames < 1 and neap.now() < deadline do neap.sleep(0.01) end
        assert.same({ "abcd" }, frames)
        h:close() a2:close() srv:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("send with no socket raises a clear error; accept outside handle_accept returns nil", function()
      run(function()
        local d = dispatcher.new {}
        assert.has_error(function() d:send("x") end)
        local ok, err = pcall(d.send, d, "x")
        assert.is_false(ok)
        assert.truthy(err:find("send: the dispatcher has no socket", 1, true), err)
        local server = echo_listener(function() end)
        neap.sleep(0.01)   -- its task now waits in accept
        assert.is_nil(server:accept())
        server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("a frame that arrives a byte at a time neither spins nor stops other tasks", function()
      run(function()
        local got = {}
        local server, port = echo_listener(function(sock)
          local h = dispatcher.chat({}, sock)
          h:set_terminator("\r\n")
          function h:found_terminator() got[#got + 1] = self:_get_data() end
        end)
        local ticks = 0
        local ticker = neap.task(function() while true do neap.sleep(0.01) ticks = ticks + 1 end end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        local t0 = os.clock()
        for ch in ("ab\r\n"):gmatch(".") do c:write(ch) neap.sleep(0.05) end
        local deadline = neap.now() + 2
        while #got < 1 and neap.now() < deadline do neap.sleep(0.01) end
        assert.same({ "ab" }, got)
        assert.is_true(ticks >= 10, "other tasks ran only " .. ticks .. " times")
        assert.is_true(os.clock() - t0 < 0.15, "CPU used: " .. (os.clock() - t0))
        ticker:cancel()
        c:close() server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("a handler that leaves data unread or keeps a finished socket open does not spin", function()
      run(function()
        local closes = 0
        local server, port = echo_listener(function(sock)
          dispatcher.new({
            writable = function() return false end,
            handle_read = function() end,              -- takes nothing
            handle_close = function() closes = closes + 1 end,   -- and never closes
          }, sock)
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        local t0 = os.clock()
        c:write("unread data")
        neap.sleep(0.1)
        c:shutdown()
        neap.sleep(0.2)
        assert.is_true(os.clock() - t0 < 0.1, "CPU used: " .. (os.clock() - t0))
        assert.equal(1, closes)
        c:close() server:close()
        for d in pairs(dispatcher.map) do d:close() end
        dispatcher.loop { timeout = 0.5 }
      end)
    end)

    it("push sends in order and close_when_done closes after sending", function()
      run(function()
        local server, port = echo_listener(function(sock)
          local h = dispatcher.chat({}, sock)
          h:set_terminator("\n")
          function h:found_terminator()
            self:push("one\n") self:push("two\n") self:close_when_done()
          end
        end)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("go\n")
        assert.equal("one\ntwo\n", c:read_all { timeout = 2 })
        c:close() server:close()
        dispatcher.loop { timeout = 0.5 }
      end)
    end)
  end)
end)
