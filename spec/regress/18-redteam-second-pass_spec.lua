-- Issue 18, "afterwards, run your own red-team pass": what the second pass
-- over the same families found (each failed before its fix):
-- a stream closed by user code that a read runs (a __gc during the read's
-- own allocation, an options table's __index) was freed under the read;
-- a nested read from an options __index replaced the parked read's
-- delimiters; a refused queue wait named the internal "park"; descriptor
-- numbers past C's int wrapped (2^32 + 2 was stderr); joining a task that
-- returns about a million values aborted the process.
local neap = require "neap"
local helpers = require "helpers"

local function script(src, ...)
  local path = helpers.tmpfile(src)
  local out, rc = helpers.neap(path .. " " .. table.concat({ ... }, " "))
  os.remove(path)
  return out, rc
end

describe("regress 18 (second red-team pass)", function()
  for _, kind in ipairs { "file", "child" } do
    it("a __gc that closes a " .. kind .. " stream inside its own read leaves the read sound", function()
      local out, rc = script([[
        local neap = require "neap"
        local s
        local armed, fired = false, false
        local mt = { __gc = function() if armed and not fired then fired = true; s:close() end end }
        -- (when the finalizer runs depends on the collector: rounds until it
        -- has run inside a read)
        for _ = 1, 20 do
          if arg[1] == "file" then
            local path = os.tmpname()
            local f = assert(io.open(path, "w")); for i = 1, 30000 do f:write("line", i, "\n") end; f:close()
            s = assert(neap.open(path, "r")); os.remove(path)
            s:read_line(); neap.sleep(0.05)
          else
            local p = assert(neap.spawn { "sh", "-c", "seq 1 30000" })
            p:wait(); neap.sleep(0.1); s = p.stdout
          end
          collectgarbage("incremental", 1, 100, 1)
          while true do
            for _ = 1, 20 do setmetatable({}, mt) end
            armed = true
            local ok, l = pcall(s.read_line, s)
            armed = false
            if not ok or not l then break end
          end
          s:close()
          if fired then break end
        end
        print("survived", fired)
      ]], kind)
      assert.equal(0, rc, out)
      assert.truthy(out:find("survived\ttrue", 1, true), out)
    end)
  end

  it("an options __index that closes the stream: the read returns nil, 'closed', 'ECLOSED'", function()
    helpers.run(function()
      local path = helpers.tmpfile("hello\nworld\n")
      local f = assert(neap.open(path, "r"))
      os.remove(path)
      local opts = setmetatable({}, { __index = function() f:close() return nil end })
      local a, b, c = f:read_line(opts)
      assert.same({ nil, "closed", "ECLOSED" }, { a, b, c })
    end)
  end)

  it("a read nested in an options __index does not replace the outer read's delimiters", function()
    helpers.run(function()
      local p = assert(neap.spawn { "sh", "-c", "sleep 0.2; printf 'aaaa'; sleep 0.1; printf 'XYZ-END-rest'" })
      local s = p.stdout
      local opts = setmetatable({}, { __index = function(_, k)
        if k == "timeout" then
          s:read_until(string.rep("Q", 40) .. tostring(math.random()), { timeout = 0 })
          return 5
        end
      end })
      local t = neap.task(function() return s:read_until({ "-END-" }, opts) end)
      for _ = 1, 6 do
        neap.sleep(0.05); collectgarbage()
        local junk = {} for j = 1, 1000 do junk[j] = string.rep("Z", 45) .. j end
      end
      local ok, data, delim = t:join { timeout = 5 }
      assert.is_true(ok)
      assert.equal("aaaaXYZ", data)
      assert.equal("-END-", delim)
      p:close()
    end)
  end)

  it("q:put where the task cannot wait names put and leaves no waiter behind", function()
    helpers.run(function()
      local q = neap.queue(1)
      assert(q:put("full"))
      local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) q:put("x") return a < b end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("put: cannot wait here", 1, true), err)
      assert.equal("full", q:get { timeout = 1 })
      assert.same({ nil, "timeout", "timeout" }, { q:get { timeout = 0.05 } })
    end)
  end)

  it("a descriptor number past C's int is a bad descriptor, not a wrapped one", function()
    helpers.run(function()
      local big = (1 << 32) + 2
      local s, err, code = neap.fd(big)
      assert.is_nil(s)
      assert.equal("EBADF", code, err)
      local p, perr, pcode = neap.spawn { "echo", "x", stdout = big }
      assert.is_nil(p)
      assert.equal("EBADF", pcode, perr)
    end)
  end)

  it("joining a task that returns a million values gives an error, not an abort", function()
    local out, rc = script([[
      local neap = require "neap"
      local t = neap.task(function()
        neap.sleep(0.05)
        local big = {}
        for i = 1, 999970 do big[i] = i end
        return table.unpack(big)
      end)
      local function deep(n) if n == 0 then return select("#", t:join()) end return (deep(n - 1)) end
      local j = neap.task(function() return pcall(deep, 10) end)
      print("joiner:", j:join())
    ]])
    assert.equal(0, rc, out)
    assert.truthy(out:find("joiner:\ttrue\ttrue\t3", 1, true), out)
  end)
end)
