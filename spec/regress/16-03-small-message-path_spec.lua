-- Issue 16, bars 2-3: the per-message path of streams got cheaper (the
-- stream check of s:write and the reads compares the metatable with the
-- methods' upvalue instead of looking it up in the registry; lines() with
-- no options reads none per line). These keep what must not change: a
-- non-stream still raises the usual error, from a method and from a copy
-- of it, and lines() still honours its options.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("16.3 the small-message path", function()
  helpers.leakcheck()

  it("still rejects what is not a stream", function()
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port))
      local write, read = c.write, c.read
      for _, bad in ipairs { io.stdout, srv, {}, 42 } do
        local ok, err = pcall(write, bad, "x")
        assert.is_false(ok)
        assert.matches("bad argument #1 to '.-' %(neap.stream expected", err)
        ok, err = pcall(read, bad, 1)
        assert.is_false(ok)
        assert.matches("bad argument #1 to '.-' %(neap.stream expected", err)
      end
      local ok, err = pcall(function() return c.write(srv, "x") end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'write' %(neap.stream expected", err)
      -- a method called through a plain function value works as before
      assert.are.equal(c, write(c, "hello\n"))
      local s = assert(srv:accept())
      assert.are.equal("hello", s:read_line())
      s:close() c:close() srv:close()
    end)
  end)

  it("lines() with and without options", function()
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      local c = assert(neap.connect("tcp", "127.0.0.1", port))
      local s = assert(srv:accept())
      c:write("a\r\nb\n")
      local got = {}
      for l in s:lines() do
        got[#got + 1] = l
        if #got == 2 then break end
      end
      assert.are.same({ "a", "b" }, got)
      c:write("c\r\n")
      for l in s:lines { keep = true } do
        assert.are.equal("c\r\n", l)
        break
      end
      local ok, err = pcall(function() for _ in s:lines { timeout = 0.05 } do end end)
      assert.is_false(ok)
      assert.matches("lines: timeout", err)
      s:close() c:close() srv:close()
    end)
  end)
end)
