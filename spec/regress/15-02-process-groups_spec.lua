-- Issue 15.2: a detached child leads its own process group, and
-- p:kill(sig, {group = true}), pl:kill(sig, {group = true}) and the
-- kill = "group" option of wait and communicate end the whole group, so a
-- shell's own children do not outlive it. A spawn that fails names the
-- program (and a pipeline the stage).
local neap = require "neap"
local helpers = require "spec.helpers"

-- A shell that leaves a grandchild: returns the process and the grandchild's pid.
local function family(extra)
  local spec = { "sh", "-c", "sleep 100 & echo $!; wait", detached = true, stderr = "null" }
  for k, v in pairs(extra or {}) do spec[k] = v end
  local p = assert(neap.spawn(spec))
  local gpid = assert(tonumber(p.stdout:read_line { timeout = 5 }))
  return p, gpid
end

-- Whether 'pid' is still running (a zombie left to an init that does not reap is not).
local function alive(pid)
  local st = helpers.proc_state(pid)
  return st ~= nil and st ~= "Z"
end

local function gone(pid)
  local deadline = neap.now() + 5
  while alive(pid) and neap.now() < deadline do neap.sleep(0.02) end
  return not alive(pid)
end

describe("process groups (15.2)", function()
  helpers.leakcheck()

  describe("p:kill(sig, { group = true })", function()
    it("stops a detached child together with its grandchildren", function()
      helpers.run(function()
        local p, gpid = family()
        assert.is_true(alive(gpid))
        assert.is_true(p:kill("TERM", { group = true }))
        assert.same({ nil, "TERM" }, { p:wait { timeout = 5 } })
        assert.is_true(gone(gpid))
        p:close()
      end)
    end)

    it("reaches what the child left running after the child itself has exited", function()
      helpers.run(function()
        local p = assert(neap.spawn { "sh", "-c", "sleep 100 & echo $!", detached = true, stderr = "null" })
        local gpid = assert(tonumber(p.stdout:read_line { timeout = 5 }))
        assert.same({ 0, nil }, { p:wait { timeout = 5 } })
        assert.same({ nil, "no such process", "ESRCH" }, { p:kill("TERM") })
        assert.is_true(p:kill("TERM", { group = true }))
        assert.is_true(gone(gpid))
        p:close()
      end)
    end)

    it("returns nil, 'no such process', 'ESRCH' for a child that leads no group", function()
      helpers.run(function()
        local p = assert(neap.spawn { "sleep", "100", stdin = "null", stdout = "null", stderr = "null" })
        assert.same({ nil, "no such process", "ESRCH" }, { p:kill("TERM", { group = true }) })
        assert.equal("running", p:status())
        assert.is_true(p:kill("KILL"))
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
        p:close()
      end)
    end)

    it("raises for options that are not a table", function()
      helpers.run(function()
        local p = assert(neap.spawn { "sleep", "100", stdin = "null", stdout = "null", stderr = "null" })
        local ok, err = pcall(function() p:kill("TERM", true) end)
        assert.is_false(ok)
        assert.truthy(err:find("bad argument #3 to 'kill' (options table expected, got boolean)", 1, true), err)
        p:kill("KILL")
        p:wait { timeout = 5 }
        p:close()
      end)
    end)
  end)

  describe("pl:kill(sig, { group = true })", function()
    it("signals the group of every detached stage", function()
      helpers.run(function()
        local pl = assert(neap.pipeline(
          { "sh", "-c", "sleep 100 & echo $!; wait", detached = true },
          { "sh", "-c", "sleep 100 & echo $!; cat", detached = true }, { stderr = "null" }))
        local g2 = assert(tonumber(pl:read_line { timeout = 5 }))
        local g1 = assert(tonumber(pl:read_line { timeout = 5 }))
        assert.is_true(pl:kill("TERM", { group = true }))
        local st = assert(pl:wait { timeout = 5 })
        assert.equal("TERM", st[1].signal)
        assert.is_true(gone(g1))
        assert.is_true(gone(g2))
        for _, p in ipairs(pl.stages) do p:close() end
      end)
    end)
  end)

  describe("kill = \"group\"", function()
    it("p:communicate ends the group when it times out", function()
      helpers.run(function()
        local p, gpid = family()
        local out, err, code, sig = p:communicate(nil, { timeout = 0.2, kill = "group" })
        assert.same({ "", "", nil, "timeout" }, { out, err, code, sig })
        assert.same({ nil, "KILL" }, { p:wait { timeout = 5 } })
        assert.is_true(gone(gpid))
        p:close()
      end)
    end)

    it("p:wait ends the group when it times out; without kill the child goes on", function()
      helpers.run(function()
        local p, gpid = family()
        assert.same({ nil, "timeout", "timeout" }, { p:wait { timeout = 0.1 } })
        assert.equal("running", p:status())
        assert.same({ nil, "timeout", "timeout" }, { p:wait { timeout = 0.1, kill = "group" } })
        assert.equal("signalled", p:status())
        assert.is_true(gone(gpid))
        p:close()
      end)
    end)

    it("p:wait with kill = \"process\" ends the child alone", function()
      helpers.run(function()
        local p, gpid = family()
        assert.same({ nil, "timeout", "timeout" }, { p:wait { timeout = 0.1, kill = "process" } })
        assert.same({ nil, "KILL" }, { p:wait() })
        assert.is_true(alive(gpid))
        assert.is_true(p:kill("KILL", { group = true }))
        assert.is_true(gone(gpid))
        p:close()
      end)
    end)

    it("pl:communicate ends each detached stage's group when it times out", function()
      helpers.run(function()
        local pl = assert(neap.pipeline(
          { "sh", "-c", "sleep 100 & echo $!; wait", detached = true },
          { "sh", "-c", "read x; echo $x; sleep 100 & echo $!; wait", detached = true }, { stderr = "null" }))
        local g1 = assert(tonumber(pl:read_line { timeout = 5 }))
        local g2 = assert(tonumber(pl:read_line { timeout = 5 }))
        local _, _, code, sig = pl:communicate(nil, { timeout = 0.2, kill = "group" })
        assert.same({ nil, "timeout" }, { code, sig })
        assert.is_true(gone(g1))
        assert.is_true(gone(g2))
        for _, p in ipairs(pl.stages) do p:close() end
      end)
    end)

    it("any other value raises", function()
      helpers.run(function()
        local p = assert(neap.spawn { "true" })
        local ok, err = pcall(function() p:wait { kill = "all" } end)
        assert.is_false(ok)
        assert.truthy(err:find("bad argument #2 to 'wait' (kill must be \"process\" or \"group\")", 1, true), err)
        ok, err = pcall(function() p:communicate(nil, { kill = true }) end)
        assert.is_false(ok)
        assert.truthy(err:find("bad argument #2 to 'communicate' (kill must be", 1, true), err)
        p:wait()
        p:close()
      end)
    end)
  end)

  describe("a program that cannot start #novalgrind", function()
    it("is named in the message: 'spawn <prog>: ...'", function()
      helpers.run(function()
        assert.same({ nil, "spawn neap-no-such-program: no such file or directory", "ENOENT" },
                    { neap.spawn { "neap-no-such-program" } })
      end)
    end)

    it("is named with its stage in a pipeline", function()
      helpers.run(function()
        assert.same({ nil, "pipeline stage 2 (neap-no-such-program): no such file or directory", "ENOENT" },
                    { neap.pipeline({ "true" }, { "neap-no-such-program" }) })
      end)
    end)
  end)
end)
