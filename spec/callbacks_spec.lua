local neap = require "neap"
local helpers = require "helpers"
local run = helpers.run

describe("callbacks on streams", function()
  helpers.leakcheck()

  describe("s:on()", function()
    it("'line' and 'close' deliver lines, then the end", function()
      run(function()
        local a, b = helpers.pair()
        local got, closed = {}, false
        a:on("line", function(l) got[#got + 1] = l end)
        a:on("close", function() closed = true end)
        b:write("one\ntwo\n")
        b:close()
        local deadline = neap.now() + 2
        while not closed and neap.now() < deadline do neap.sleep(0.005) end
        assert.same({ "one", "two" }, got)
        assert.is_true(closed)
        a:close()
      end)
    end)

    it("'data' delivers bytes as they arrive", function()
      run(function()
        local a, b = helpers.pair()
        local got = {}
        a:on("data", function(d) got[#got + 1] = d end)
        b:write("abc")
        neap.sleep(0.02)
        b:write("def")
        neap.sleep(0.02)
        assert.equal("abcdef", table.concat(got))
        a:close() b:close()
      end)
    end)

    it("'error' gets the message and code of a failed read", function()
      run(function()
        local a, b = helpers.pair()
        local err
        a:set_limits { max_frame = 4 }
        a:on("line", function() end)
        a:on("error", function(e, code) err = code end)
        b:write("much too long\n")
        neap.sleep(0.05)
        assert.equal("frame too large", err)
        a:close() b:close()
      end)
    end)

    it("'close' follows 'error' (as in Node.js) and gets the error too", function()
      run(function()
        local a, b = helpers.pair()
        local seen = {}
        a:set_limits { max_frame = 4 }
        a:on("line", function() end)
        a:on("error", function(_, code) seen[#seen + 1] = "error:" .. code end)
        a:on("close", function(_, code) seen[#seen + 1] = "close:" .. tostring(code) end)
        b:write("much too long\n")
        local deadline = neap.now() + 2
        while #seen < 2 and neap.now() < deadline do neap.sleep(0.005) end
        assert.same({ "error:frame too large", "close:frame too large" }, seen)
        a:close() b:close()
      end)
    end)

    it("a callback that closes its own stream ends quietly with 'close'", function()
      run(function()
        local a, b = helpers.pair()
        local got, closed = {}, 0
        local t = a:on("line", function(l) got[#got + 1] = l a:close() end)
        a:on("close", function() closed = closed + 1 end)
        b:write("x\ny\n")
        local deadline = neap.now() + 2
        while closed == 0 and neap.now() < deadline do neap.sleep(0.005) end
        assert.same({ "x" }, got)
        assert.equal(1, closed)
        b:close()
      end)
    end)

    it("s:on() while a task is reading raises, and that task keeps its read", function()
      run(function()
        local a, b = helpers.pair()
        local reader = neap.task(function() return a:read_line { timeout = 2 } end)
        neap.sleep(0.01)
        assert.has_error(function() a:on("line", function() end) end,
          "on: another task is already reading this stream")
        b:write("mine\n")
        assert.same({ true, "mine" }, { reader:join { timeout = 2 } })
        a:close() b:close()
      end)
    end)

    it("makes a task read a clear error while callbacks are set", function()
      run(function()
        local a, b = helpers.pair()
        a:on("line", function() end)
        neap.sleep(0.01)
        assert.has_error(function() a:read_line() end,
          "read_line: this stream delivers its data to callbacks (s:on); call s:off() first")
        a:close() b:close()
      end)
    end)

    it("s:off() gives the stream back to tasks with nothing lost", function()
      run(function()
        local a, b = helpers.pair()
        local got = {}
        a:on("line", function(l) got[#got + 1] = l end)
        b:write("first\n")
        neap.sleep(0.02)
        a:off()
        b:write("second\nthird\n")
        assert.equal("second", a:read_line { timeout = 1 })
        assert.equal("third", a:read_line { timeout = 1 })
        assert.same({ "first" }, got)
        a:close() b:close()
      end)
    end)

    it("raises on a bad event name or callback", function()
      run(function()
        local a, b = helpers.pair()
        assert.has_error(function() a:on("bogus", function() end) end)
        assert.has_error(function() a:on("line", 42) end)
        a:close() b:close()
      end)
    end)
  end)

  describe("server:on('connection')", function()
    it("calls fn with each connection in a task of its own", function()
      run(function()
        local srv, port = helpers.server()
        srv:on("connection", function(c) c:write("welcome\n") c:close() end)
        for _ = 1, 3 do
          local c = assert(neap.connect("tcp", "127.0.0.1", port))
          assert.equal("welcome", c:read_line { timeout = 2 })
          c:close()
        end
        srv:close()
      end)
    end)
  end)
end)
