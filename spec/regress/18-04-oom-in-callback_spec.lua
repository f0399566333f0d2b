-- Issues 18.4 and 18.5: out of memory inside a libuv callback aborted the
-- process (an unprotected lua_pushlstring under uv_run), and a file read
-- whose buffer could not grow left its reader parked until a timeout (or
-- the binary exited with 0 halfway through the script).
local helpers = require "helpers"
local asan = os.getenv("NEAP_PRELOAD") ~= nil   -- ASan reserves terabytes: ulimit -v cannot apply

local function limited(kb, cmd)
  return helpers.sh("ulimit -v " .. kb .. "; " .. cmd)
end

local big
local function bigfile()
  if not big then
    big = os.tmpname()
    assert(os.execute("head -c 300000000 /dev/zero > " .. big))
  end
  return big
end

describe("regress 18.4/18.5: out of memory while the loop runs", function()
  teardown(function() if big then os.remove(big) end end)

  it("a 200 MB read_exactly from a pipe returns nil, 'not enough memory', 'ENOMEM'", function()
    if asan then return end
    local script = helpers.tmpfile([[
      local neap = require "neap"
      local p = assert(neap.spawn { "head", "-c", "200000000", "/dev/zero" })
      print("read:", p.stdout:read_exactly(200e6, { timeout = 30 }))
      print("small read still works:", #p.stdout:read(10))
      p:close()
      print("end")
    ]])
    local out, rc = limited(300000, helpers.NEAP .. " " .. script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("read:\tnil\tnot enough memory\tENOMEM", 1, true), out)
    assert.truthy(out:find("small read still works:\t10", 1, true), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
    os.remove(script)
  end)

  for _, kb in ipairs { 300000, 450000 } do
    it("a 300 MB file read_all under ulimit -v " .. kb .. " returns ENOMEM, not a timeout", function()
      if asan then return end
      local script = helpers.tmpfile([[
        local neap = require "neap"
        local f = assert(neap.open("]] .. bigfile() .. [[", "r"))
        print("read_all:", f:read_all { timeout = 60 })
        f:close()
        print("end")
      ]])
      local out, rc = limited(kb, helpers.NEAP .. " " .. script)
      assert.equal(0, rc, out)
      assert.truthy(out:find("read_all:\tnil\tnot enough memory\tENOMEM", 1, true), out)
      assert.truthy(out:find("\nend\n", 1, true), out)
      os.remove(script)
    end)
  end

  it("under a stock lua5.4 the loop stays usable after the failure", function()
    if asan then return end
    local script = helpers.tmpfile([[
      local neap = require "neap"
      print("first:", neap.run(function()
        local f = assert(neap.open("]] .. bigfile() .. [[", "r"))
        local r = table.pack(f:read_all { timeout = 60 })
        f:close()
        return r[1], r[2], r[3]
      end))
      print("again:", neap.run(function() neap.sleep(0.01) return "fine" end))
    ]])
    local out, rc = limited(300000, helpers.LUA54 .. " " .. script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("first:\tnil\tnot enough memory\tENOMEM", 1, true), out)
    assert.truthy(out:find("again:\tfine", 1, true), out)
    os.remove(script)
  end)
end)
