-- Pipelines of child processes joined by OS pipes: neap.pipeline (issue #5).
local neap = require "neap"
local helpers = require "helpers"
local fd_count, children, not_above = helpers.fd_count, helpers.children, helpers.not_above
local run = helpers.run




-- Closes every stage's streams (the pipeline's own are among them).
local function close(pl)
  for _, p in ipairs(pl.stages) do p:close() end
end

describe("neap.pipeline", function()
  helpers.leakcheck()

  it("checks every stage before starting any: a bad later stage leaves no child and no descriptor", function()
    run(function()
      local kids, fds = children(), fd_count()
      local ok, err = pcall(neap.pipeline, { "cat" }, { "echo", 5 })
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #2 to 'pipeline' (argv[2] must be a string)", 1, true), err)
      ok, err = pcall(neap.pipeline, { "cat" }, { "cat" }, { "true", env = 5 })
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #3 to 'pipeline' (env must be a table)", 1, true), err)
      ok, err = pcall(neap.spawn, { "printf", "a\0b" })
      assert.is_false(ok)
      assert.truthy(err:find("argv[2] contains a NUL byte", 1, true), err)
      assert.equal(kids, children())
      assert.equal(fds, fd_count())
    end)
  end)

  describe("reading the last stage", function()
    it("cat file | grep x | wc -l counts the lines with an x", function()
      run(function()
        local lines, expected = {}, 0
        for i = 1, 5000 do
          local l = (i % 7 == 0) and ("line x " .. i) or ("line " .. i)
          if l:find("x", 1, true) then expected = expected + 1 end
          lines[i] = l
        end
        local path = helpers.tmpfile(table.concat(lines, "\n") .. "\n")
        local pl = assert(neap.pipeline({ "cat", path }, { "grep", "x" }, { "wc", "-l" }))
        assert.equal(3, #pl.stages)
        assert.equal(tostring(expected), pl:read_all { timeout = 10 }:match("%d+"))
        local r = pl:wait { timeout = 10 }
        assert.same({ { code = 0 }, { code = 0 }, { code = 0 } }, r)
        close(pl)
        os.remove(path)
      end)
    end)

    it("read, read_line, read_exactly and lines read the last stdout", function()
      run(function()
        local pl = assert(neap.pipeline({ "printf", "one\ntwo\nthree\nfour\nfive\n" }, { "cat" }))
        assert.equal("one", pl:read_line { timeout = 5 })
        assert.equal("tw", pl:read_exactly(2, { timeout = 5 }))
        assert.same({ "o\n", "thr" }, { pl:read_until("thr", { timeout = 5 }) })
        assert.equal("ee", pl:read_line { timeout = 5 })
        local rest = {}
        for l in pl:lines() do rest[#rest + 1] = l end
        assert.same({ "four", "five" }, rest)
        assert.same({ nil, "eof", "eof" }, { pl:read(10, { timeout = 5 }) })
        pl:wait()
        close(pl)
      end)
    end)
  end)

  describe("feeding the first stage", function()
    it("pl:write returns the pipeline, and a stdio that is not a pipe raises clearly", function()
      run(function()
        local pl = assert(neap.pipeline({ "cat" }, { "cat" }))
        assert.equal(pl, pl:write("x\n"))
        pl:close()
        assert.equal("x\n", pl:read_all { timeout = 5 })
        pl:wait { timeout = 5 }
        local quiet = assert(neap.pipeline({ "true" }, { stdout = "null" }))
        assert.has_error(function() quiet:read_line() end, "read_line: the pipeline's stdout is not a pipe")
        quiet:wait { timeout = 5 }
        for _, st in ipairs(pl.stages) do st:close() end
        for _, st in ipairs(quiet.stages) do st:close() end
      end)
    end)

    it("pl:write and pl:close feed the first stdin; lines come out of the last", function()
      run(function()
        local pl = assert(neap.pipeline({ "cat" }, { "tr", "a-z", "A-Z" }, { "sed", "s/^/> /" }))
        local reader = neap.task(function()
          local got = {}
          for l in pl:lines { timeout = 5 } do got[#got + 1] = l end
          return got
        end)
        for i = 1, 100 do assert(pl:write("line ", i, "\n")) end
        pl:close()
        local ok, got = reader:join { timeout = 10 }
        assert.is_true(ok)
        assert.equal(100, #got)
        assert.equal("> LINE 1", got[1])
        assert.equal("> LINE 100", got[100])
        assert.same({ { code = 0 }, { code = 0 }, { code = 0 } }, pl:wait { timeout = 5 })
        close(pl)
      end)
    end)

    it("moves 100 MB through three stages and the last stage's count is right #load", function()
      run(function()
        -- 1 MiB of lines, 1 in 5 holding an x
        local lines, per_chunk, size = {}, 0, 0
        local i = 0
        while size < 1024 * 1024 - 64 do
          i = i + 1
          local l = (i % 5 == 0) and string.format("%09d x\n", i) or string.format("%09d -\n", i)
          if i % 5 == 0 then per_chunk = per_chunk + 1 end
          lines[i] = l
          size = size + #l
        end
        local chunk = table.concat(lines)
        local rounds = math.ceil(100 * 1024 * 1024 / #chunk)
        local pl = assert(neap.pipeline({ "cat" }, { "grep", "x" }, { "wc", "-l" }))
        local writer = neap.task(function()
          for _ = 1, rounds do assert(pl:write(chunk)) end
          pl:close()
        end)
        local out = pl:read_all { timeout = 100 }
        assert.is_true((writer:join { timeout = 10 }))
        assert.equal(tostring(per_chunk * rounds), out:match("%d+"))
        assert.same({ { code = 0 }, { code = 0 }, { code = 0 } }, pl:wait { timeout = 10 })
        close(pl)
      end, 120)
    end)
  end)

  describe("stderr", function()
    it("read_stderr and read_line_stderr read the last stage's; stages[i].stderr each stage's", function()
      run(function()
        local pl = assert(neap.pipeline(
          { "sh", "-c", "echo first-err >&2; echo data" },
          { "sh", "-c", "echo middle-err >&2; cat" },
          { "sh", "-c", "echo last-err-1 >&2; echo last-err-2 >&2; cat" }))
        assert.equal("last-err-1", pl:read_line_stderr { timeout = 5 })
        assert.equal("last-err-2\n", pl:read_stderr(100, { timeout = 5 }))
        assert.equal("first-err\n", pl.stages[1].stderr:read_all { timeout = 5 })
        assert.equal("middle-err\n", pl.stages[2].stderr:read_all { timeout = 5 })
        assert.equal("data\n", pl:read_all { timeout = 5 })
        pl:wait { timeout = 5 }
        close(pl)
      end)
    end)
  end)

  describe(":wait()", function()
    it("returns one {code=, signal=} per stage, in order", function()
      run(function()
        local pl = assert(neap.pipeline(
          { "sh", "-c", "cat; exit 3" },
          { "sh", "-c", "cat >/dev/null; kill -TERM $$" },
          { "sh", "-c", "cat; exit 5" }))
        pl:close()
        assert.same({ { code = 3 }, { signal = "TERM" }, { code = 5 } }, pl:wait { timeout = 5 })
        close(pl)
      end)
    end)

    it("a stage whose reader exits early dies of PIPE", function()
      run(function()
        local pl = assert(neap.pipeline({ "yes" }, { "head", "-n", "2" }))
        assert.equal("y\ny\n", pl:read_all { timeout = 5 })
        assert.same({ { signal = "PIPE" }, { code = 0 } }, pl:wait { timeout = 5 })
        close(pl)
      end)
    end)

    it("times out with nil, 'timeout', 'timeout' while a stage runs", function()
      run(function()
        local pl = assert(neap.pipeline({ "sleep", "10" }, { "cat" }))
        assert.same({ nil, "timeout", "timeout" }, { pl:wait { timeout = 0.1 } })
        pl:kill("KILL")
        local r = pl:wait { timeout = 5 }
        assert.equal("KILL", r[1].signal)
        close(pl)
      end)
    end)

    it("returns the same list again once all stages are gone", function()
      run(function()
        local pl = assert(neap.pipeline({ "true" }, { "sh", "-c", "cat; exit 2" }))
        pl:close()
        local r1 = pl:wait { timeout = 5 }
        assert.same({ { code = 0 }, { code = 2 } }, r1)
        assert.same(r1, pl:wait { timeout = 0 })
        close(pl)
      end)
    end)
  end)

  describe(":communicate()", function()
    it("feeds the input and returns out, err, code and signal of the last stage", function()
      run(function()
        local pl = assert(neap.pipeline({ "tr", "a-z", "A-Z" }, { "sh", "-c", "rev; echo end >&2; exit 4" }))
        assert.same({ "OLLEH\nDLROW\n", "end\n", 4, nil },
          { pl:communicate("hello\nworld\n", { timeout = 5 }) })
        close(pl)
      end)
    end)

    it("on timeout kills the stages and returns out, err, nil, 'timeout'", function()
      run(function()
        local pl = assert(neap.pipeline({ "sh", "-c", "echo early; exec sleep 30" }, { "cat" }))
        local out, err, code, sig = pl:communicate(nil, { timeout = 0.5 })
        assert.equal("early\n", out)
        assert.equal("", err)
        assert.is_nil(code)
        assert.equal("timeout", sig)
        local r = pl:wait { timeout = 5 }
        assert.equal("KILL", r[1].signal)
        close(pl)
      end)
    end)
  end)

  describe("options", function()
    it("a last table with no program is the options: stdout = {file=} for the last stage", function()
      run(function()
        local path = os.tmpname()
        local pl = assert(neap.pipeline({ "echo", "to a file" }, { "tr", "a-z", "A-Z" },
                                        { stdout = { file = path } }))
        assert.equal(2, #pl.stages)
        assert.is_nil(pl.stdout)
        assert.same({ { code = 0 }, { code = 0 } }, pl:wait { timeout = 5 })
        local f = io.open(path) local s = f:read("a") f:close()
        assert.equal("TO A FILE\n", s)
        close(pl)
        os.remove(path)
      end)
    end)
  end)

  describe("a stage that cannot start #novalgrind", function()
    it("returns nil, message, 'ENOENT' and leaves no child or descriptor behind", function()
      run(function()
        neap.spawn({ "true" }):wait()
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        local fds, kids = fd_count(), children()
        local pl, err, code = neap.pipeline({ "sleep", "10" }, { "cat" }, { "neap-no-such-program" })
        assert.is_nil(pl)
        assert.equal("string", type(err))
        assert.equal("ENOENT", code)
        local deadline = neap.now() + 5
        while children() > kids and neap.now() < deadline do neap.sleep(0.02) end
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        -- the stages that had started are killed and reaped: no zombie stays
        local now, msg = children(), nil
        if now ~= kids then
          local ps = io.popen("ps -o pid=,stat=,args= --ppid " .. neap.pid())
          msg = "children left: " .. ps:read("a")
          ps:close()
        end
        assert(now <= kids, msg)
        not_above(fds, fd_count(), "descriptor(s)")
      end)
    end)
  end)

  describe("descriptors", function()
    it("200 pipelines of three stages leave the descriptor count where it was #load", function()
      run(function()
        neap.pipeline({ "true" }, { "true" }):wait()
        collectgarbage() collectgarbage()
        neap.sleep(0.05)
        local fds, kids = fd_count(), children()
        for i = 1, 200 do
          local pl = assert(neap.pipeline({ "echo", tostring(i) }, { "cat" }, { "cat" }))
          assert.equal(tostring(i), pl:read_line { timeout = 5 })
          pl:wait { timeout = 5 }
        end
        collectgarbage() collectgarbage()
        neap.sleep(0.1)
        not_above(fds, fd_count(), "descriptor(s)")
        not_above(kids, children(), "child(ren)")
      end, 60)
    end)
  end)
end)
