-- Issue 18.11: neap.fd(n) accepted a descriptor neap already held, so two
-- streams shared it; after one closed it, the other wrote into whatever
-- reused descriptor n (an unrelated TCP peer received the bytes). A second
-- neap.fd(n) for a descriptor neap holds returns nil, msg, "EBUSY".
local neap = require "neap"
local helpers = require "spec.helpers"

local function busy(fd)
  local s, err, code = neap.fd(fd)
  if s then s:close() end
  assert.is_nil(s)
  assert.equal("resource busy or locked", err)
  assert.equal("EBUSY", code)
end

describe("neap.fd twice (18.11)", function()
  helpers.leakcheck()

  it("refuses an inherited descriptor it already wrapped, until it is closed", function()
    local path = helpers.tmpfile([[
      local neap = require "neap"
      local a = assert(neap.fd(3))
      print(select(3, neap.fd(3)))
      a:close()
      print(select(3, neap.fd(3)))   -- closed now: nothing to wrap
      local b = assert(neap.fd(4))   -- a regular file
      print(select(3, neap.fd(4)))
      b:close()
    ]])
    local out, rc = helpers.sh("echo hi | " .. helpers.NEAP .. " " .. path .. " 3<&0 4</etc/hostname </dev/null")
    os.remove(path)
    assert.equal(0, rc, out)
    assert.equal("EBUSY\nEBADF\nEBUSY\n", out)
  end)

  it("refuses the descriptors of its own streams: a child's pipe, a file, a TCP connection", function()
    helpers.run(function()
      local p = assert(neap.spawn { "sh", "-c", "read x; echo $x", stdin = "pipe", stdout = "pipe" })
      busy(p.stdin:fileno())
      busy(p.stdout:fileno())
      local path = helpers.tmpfile("data")
      local f = assert(neap.open(path))
      busy(f:fileno())
      local srv, port = helpers.server()
      local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
      local d = assert(srv:accept { timeout = 5 })
      busy(c:fileno())
      busy(d:fileno())
      -- the streams still work
      assert(p.stdin:write("hello\n"))
      assert.equal("hello", p.stdout:read_line { timeout = 5 })
      assert.equal("data", f:read_all { timeout = 5 })
      assert(c:write("x"))
      assert.equal("x", d:read(1, { timeout = 5 }))
      p.stdin:close(); p:wait(); p:close()
      f:close(); c:close(); d:close(); srv:close()
      os.remove(path)
    end)
  end)
end)
