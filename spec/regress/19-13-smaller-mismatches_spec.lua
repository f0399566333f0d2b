-- Issue 19, item 13 (the parts outside neap.manager): io:write after
-- io:close() was dropped by hand; io:write() with no argument or 17 raised
-- over a stream only; docs/udp.md said a full queue stops reading;
-- buf:read(-1) returned data; proto.define took max_frame = -1; `neap -i`
-- exited with status 1 on a line over 1 MiB; docs/stream.md said s:limits()
-- has no write_timeout.
local neap = require "neap"
local proto = require "neap.proto"
local helpers = require "helpers"

describe("issue 19.13", function()
  helpers.leakcheck()

  describe("neap.proto io:write", function()
    local P = proto.define(function(io)
      io:write("a")
      io:close()
      io:write("b")
      return "done"
    end)

    it("keeps what is written after io:close() by hand, and does not raise over a stream", function()
      local c = P()
      assert.equal("ab", c:read())
      assert.is_true(c:closed())
      helpers.run(function()
        local a, b = helpers.pair()
        assert.equal("done", proto.attach(a, P))
        assert.equal("a", b:read_all { timeout = 5 })
        b:close()
      end)
    end)

    it("raises alike with no argument or more than 16, by hand and over a stream", function()
      local seventeen = {}
      for i = 1, 17 do seventeen[i] = "x" end
      local none = proto.define(function(io) io:write() end)
      local many = proto.define(function(io) io:write(table.unpack(seventeen)) end)
      assert.has_error(function() none() end, "bad argument #1 to 'write' (string expected, got no value)")
      assert.has_error(function() many() end, "write: at most 16 strings at once")
      helpers.run(function()
        local a, b = helpers.pair()
        local ok1, e1 = pcall(proto.attach, a, none)
        local ok2, e2 = pcall(proto.attach, a, many)
        a:close() b:close()
        assert.is_false(ok1)
        assert.matches("bad argument #1 to 'write' %(string expected, got no value%)", e1)
        assert.is_false(ok2)
        assert.matches("write: at most 16 strings at once", e2)
      end)
    end)
  end)

  it("proto.define checks max_frame", function()
    assert.has_error(function() proto.define(function() end, { max_frame = -1 }) end,
      "bad argument #2 to 'define' (max_frame must be an integer >= 0)")
    assert.has_error(function() proto.define(function() end, { max_frame = 1.5 }) end,
      "bad argument #2 to 'define' (max_frame must be an integer >= 0)")
    local P = proto.define(function(io) io:write(#io:read_line()) end, { max_frame = 0 })
    assert.equal("2000000", P():send(string.rep("x", 2000000) .. "\n"):read())
  end)

  it("buf:read raises on a size of 0 or less", function()
    local b = neap.buffer()
    b:feed("abc")
    assert.has_error(function() b:read(-1) end, "bad argument #1 to 'read' (size must be positive)")
    assert.has_error(function() b:read(0) end, "bad argument #1 to 'read' (size must be positive)")
    assert.equal("abc", b:read())
  end)

  it("neap -i reads a line over 1 MiB, as lua5.4's prompt does", function()
    local path = helpers.tmpfile("x = '" .. string.rep("a", 2000000) .. "'\nprint(#x)\n1 + 1\n")
    local out, rc = helpers.sh("timeout 20 " .. helpers.NEAP .. " -i < " .. path)
    os.remove(path)
    assert.equal(0, rc, out:sub(-300))
    assert.truthy(out:find("> 2000000\n> 2\n> \n$"), out:sub(-300))
  end)

  it("s:limits() shows write_timeout once set, and docs/stream.md says so", function()
    helpers.run(function()
      local a, b = helpers.pair()
      assert.is_nil(a:limits().write_timeout)
      a:set_limits { write_timeout = 2.5 }
      assert.equal(2.5, a:limits().write_timeout)
      a:close() b:close()
    end)
    local doc = helpers.read_file("docs/stream.md")
    local section = doc:match("### s:limits%(%)(.-)\n###")
    assert.truthy(section and section:find("`write_timeout` (seconds) once one was set", 1, true))
  end)

  it("docs/udp.md says what a full queue does: reading goes on, drops are counted", function()
    local doc = helpers.read_file("docs/udp.md")
    assert.falsy(doc:find("neap stops reading the socket", 1, true))
    assert.truthy(doc:find("neap goes on reading the socket", 1, true))
  end)
end)
