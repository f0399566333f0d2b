-- Issue 16.6: an idle connection (its reader parked on an empty buffer,
-- its writes flushed) keeps neither its read block nor its list of
-- gathered writes; both are taken again when data comes or a write is
-- made. Reads and writes after each idle spell must be exact, including
-- a batch of writes larger than the list's first size (16) and a read
-- larger than one block.
local neap = require "neap"
local helpers = require "spec.helpers"

describe("an idle connection releases its buffers (16.6)", function()
  helpers.leakcheck()

  it("echoes exactly after every idle spell", function()
    helpers.run(function()
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      srv:serve(function(c) for line in c:lines() do c:write(line .. "\n") end end)
      local c = assert(neap.connect("tcp", "127.0.0.1", port))
      for round = 1, 5 do
        assert(c:write("line " .. round .. "\n"))
        assert.equal("line " .. round, c:read_line())
        neap.sleep(0.02)   -- both sides idle: the server's buffers released
      end
      -- 100 lines in one turn: the server gathers 100 writes
      local parts = {}
      for i = 1, 100 do parts[i] = "x" .. i .. "\n" end
      assert(c:write(table.concat(parts)))
      for i = 1, 100 do assert.equal("x" .. i, c:read_line()) end
      neap.sleep(0.02)
      -- a line longer than one 64 KiB read block, after an idle spell
      local big = string.rep("abcdefgh", 20000)
      assert(c:write(big .. "\n"))
      assert.equal(big, c:read_line())
      c:close()
      neap.sleep(0.1)   -- the server's handler sees the end and closes its side
      srv:close()
    end, 20)
  end)

  it("keeps writing from a task after its reader went idle in between", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local got = {}
      local reader = neap.task(function()
        for line in a:lines() do got[#got + 1] = line end
      end)
      for round = 1, 3 do
        for i = 1, 40 do assert(a:write("r" .. round .. "-" .. i .. "\n")) end
        for i = 1, 40 do assert.equal("r" .. round .. "-" .. i, b:read_line()) end
        assert(b:write("back" .. round .. "\n"))
        neap.sleep(0.02)
      end
      assert.same({ "back1", "back2", "back3" }, got)
      b:close()
      reader:join()
      a:close()
    end, 20)
  end)
end)
