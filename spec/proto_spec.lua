local neap = require "neap"
local proto = require "neap.proto"
local helpers = require "helpers"
local run = helpers.run

local function feed_bytewise(p, input)
  local c = p()
  local out = {}
  for ch in input:gmatch(".") do c:send(ch) out[#out + 1] = c:read() end
  return table.concat(out), c
end

describe("neap.proto", function()
  helpers.leakcheck()

  local lines = proto.define(function(io)
    while true do
      local l = io:read_line()
      if not l then io:write("<eof>") return end
      io:write("[", l, "]")
    end
  end)

  describe("proto.define()", function()
    it("raises on a non-function", function()
      assert.has_error(function() proto.define(42) end)
    end)
  end)

  describe("a connection fed by hand", function()
    it("gives the same output byte by byte and in one piece", function()
      local input = "a\r\nbb\n\nccc\n"
      local whole = lines():send(input):read()
      assert.equal("[a][bb][][ccc]", whole)
      assert.equal(whole, (feed_bytewise(lines, input)))
    end)

    it("suspends a read until enough input is fed", function()
      local c = lines()
      c:send("par")
      assert.equal("", c:read())
      assert.equal(3, c:pending())
      c:send("tial\n")
      assert.equal("[partial]", c:read())
    end)

    it("returns an unterminated last line and then eof after send_eof", function()
      local c = lines():send("tail")
      c:send_eof()
      assert.equal("[tail]<eof>", c:read())
      assert.is_true(c:closed())
    end)

    it("io:read_exactly and io:read_until with several delimiters", function()
      local p = proto.define(function(io)
        local head = io:read_exactly(3)
        local word, delim = io:read_until({ ";", "\r\n" })
        io:write(head, "|", word, "|", delim)
        io:close()
      end)
      local out, c = feed_bytewise(p, "abcxyz\r\n")
      assert.equal("abc|xyz|\r\n", out)
      assert.is_true(c:closed())
    end)

    it("scans a long line fed in small pieces only once (a 4 MB line is fast)", function()
      local big = proto.define(function(io) io:write("[", io:read_line(), "]") end, { max_frame = 8 * 1024 * 1024 })
      local c = big()
      local piece = string.rep("x", 4096)
      local t0 = os.clock()
      for _ = 1, 1024 do c:send(piece) end
      c:send("\n")
      assert.equal(4 * 1024 * 1024 + 2, #c:read())
      assert.is_true(os.clock() - t0 < 2, "quadratic rescanning?")
    end)

    it("reports a frame over max_frame as nil, 'frame too large'", function()
      local p = proto.define(function(io) local _, e = io:read_line() io:write(e) end, { max_frame = 10 })
      assert.equal("frame too large", p():send(string.rep("y", 20)):read())
    end)

    it("passes extra arguments to the protocol function", function()
      local p = proto.define(function(io, greeting) io:write(greeting) end)
      assert.equal("hi", p("hi"):read())
    end)

    it("raises the parser's error from send", function()
      local p = proto.define(function(io) io:read_line() error("parser broke") end)
      local c = p()
      assert.has_error(function() c:send("x\n") end)
    end)
  end)

  describe("over a real stream", function()
    it("proto.attach runs the same protocol on a TCP stream", function()
      run(function()
        local a, b = helpers.pair()
        local t = neap.task(function() return proto.attach(a, lines) end)
        b:write("x\ny\n")
        b:shutdown()
        assert.is_true(t:join { timeout = 2 })
        a:close()   -- attach leaves the stream to its owner
        assert.equal("[x][y]<eof>", b:read_all { timeout = 2 })
        b:close()
      end)
    end)

    it("io:write converts any value alike by hand and over serve(protocol, ...), which passes extra values", function()
      run(function()
        local P = proto.define(function(io, tag)
          local l = io:read_line()
          io:write(tag, ":", l, ";", 42, true, nil)
          io:close()
        end)
        local by_hand = P("T")
        by_hand:send("x\n")
        local expected = by_hand:read()
        assert.equal("T:x;42truenil", expected)
        local srv, port = helpers.server()
        srv:serve(P, "T")
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("x\n")
        assert.equal(expected, c:read_all { timeout = 2 })
        c:close() srv:close()
      end)
    end)

    it("server:serve(protocol) serves it per connection", function()
      run(function()
        local srv, port = helpers.server()
        srv:serve(lines)
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("over tcp\n")
        c:shutdown()
        assert.equal("[over tcp]<eof>", c:read_all { timeout = 2 })
        c:close() srv:close()
      end)
    end)
  end)
end)
