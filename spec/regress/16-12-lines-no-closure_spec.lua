-- Issue 16.6 (idle connections): s:lines() made a C closure per loop (80
-- bytes that every idle connection in "for line in c:lines()" held). With
-- no options it now returns one light C function and the stream as the
-- generic for's state (as pairs gives next, t); called by hand it takes
-- the stream. With options it is a closure as before.
local helpers = require "spec.helpers"
local run, pair = helpers.run, helpers.pair

describe("regress 16.9: s:lines() with no options makes no closure", function()
  helpers.leakcheck()

  it("returns one shared function and the stream; the loop reads every line", function()
    run(function()
      local a, b = pair()
      local c, d = pair()
      local f1, s1 = a:lines()
      local f2, s2 = c:lines()
      assert.equal(f1, f2)
      assert.equal(a, s1)
      assert.equal(c, s2)
      b:write("x\ny\r\nlast")
      b:close()
      assert.equal("x", f1(a))
      local got = {}
      for line in a:lines() do got[#got + 1] = line end
      assert.same({ "y", "last" }, got)
      assert.is_nil(f1(a))   -- at the end: the loop ends
      local ok, err = pcall(f1)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("lines: the iterator takes the stream", 1, true), err)
      a:close() c:close() d:close()
      assert.is_nil(f1(a))   -- closed: the loop ends
    end)
  end)

  it("with options: a closure, as before", function()
    run(function()
      local a, b = pair()
      local it, st = a:lines { keep = true }
      assert.equal("function", type(it))
      assert.is_nil(st)
      b:write("k\n")
      assert.equal("k\n", it())
      b:close()
      assert.is_nil(it())
      a:close()
    end)
  end)
end)
