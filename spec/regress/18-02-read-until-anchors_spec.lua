-- Issue 18.2: read_until(list) kept pointers into the caller's table; a
-- change of the list while the reader waits, then a collection, left it
-- reading freed memory (ASan) or returning the wrong frame.
local neap = require "neap"
local helpers = require "helpers"

describe("regress 18.2: read_until with a list the caller changes", function()
  helpers.leakcheck()
  it("keeps the delimiters it was given for the whole wait", function()
    helpers.run(function()
      local D = string.rep("-", 50) .. "END"
      local p = assert(neap.spawn { "sh", "-c", "sleep 0.2; printf 'abc" .. D .. "rest'" })
      local delims = { D .. "", D .. "2", D .. "3", D .. "4", D .. "5" }   -- more than the inline 4
      local t = neap.task(function() return p.stdout:read_until(delims, { timeout = 5 }) end)
      neap.sleep(0.05)
      for i = 1, #delims do delims[i] = "x" end
      D = nil
      collectgarbage(); collectgarbage()
      for i = 1, 2000 do local _ = string.rep("Q", 53) .. i end
      local ok, data, delim = t:join { timeout = 5 }
      assert.is_true(ok)
      assert.equal("abc", data)
      assert.equal(string.rep("-", 50) .. "END", delim)
      assert.equal("rest", p.stdout:read_all { timeout = 5 })
      p:wait { timeout = 5 }
      p:close()
    end)
  end)
end)
