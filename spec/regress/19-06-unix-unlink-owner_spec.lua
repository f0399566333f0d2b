-- Issue 19.6: closing a Unix server removed its socket file even when the
-- path now belonged to another server (the old file removed, a new server
-- bound there): the new server became unreachable. A server removes the
-- file at close only while it is still the one it bound (device and inode).
local neap = require "neap"
local helpers = require "spec.helpers"

local function tmppath()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function exists(p)   -- (io.open cannot open a socket)
  return os.rename(p, p) == true
end

describe("Unix server socket files (19.6)", function()
  helpers.leakcheck()

  it("closing an old server leaves the file of the server that took its path", function()
    helpers.run(function()
      local p = tmppath()
      local old = assert(neap.listen("unix", p))
      os.remove(p)
      local new = assert(neap.listen("unix", p))
      old:close()
      assert.is_true(exists(p))
      local c = assert(neap.connect("unix", p, { timeout = 5 }))
      local s = assert(new:accept { timeout = 5 })
      c:write("hi")
      assert.equal("hi", s:read(2, { timeout = 5 }))
      c:close(); s:close()
      new:close()
      assert.is_false(exists(p))   -- its own file goes with it
    end)
  end)

  it("leaves a file put in place of its socket, and removes its own", function()
    helpers.run(function()
      local p = tmppath()
      local srv = assert(neap.listen("unix", p))
      os.remove(p)
      local f = assert(io.open(p, "w")); f:write("not a socket"); f:close()
      srv:close()
      assert.is_true(exists(p))
      os.remove(p)
      srv = assert(neap.listen("unix", p))
      assert.is_true(exists(p))
      srv:close()
      assert.is_false(exists(p))
    end)
  end)

  it("a listen refused on a live path removes nothing; a stale file is taken over", function()
    helpers.run(function()
      local p = tmppath()
      local srv = assert(neap.listen("unix", p))
      local s2, _, code = neap.listen("unix", p)
      assert.is_nil(s2)
      assert.equal("EADDRINUSE", code)
      assert.is_true(exists(p))
      assert(neap.connect("unix", p, { timeout = 5 })):close()
      srv:close()
      assert.is_false(exists(p))
      -- a server that died without closing leaves a stale file
      local out, rc = helpers.neap("-e 'assert(require(\"neap\").listen(\"unix\", \"" .. p .. "\")); os.exit(0)'")
      assert.equal(0, rc, out)
      assert.is_true(exists(p))
      srv = assert(neap.listen("unix", p))
      assert(neap.connect("unix", p, { timeout = 5 })):close()
      srv:close()
      assert.is_false(exists(p))
    end)
  end)
end)
