-- examples/follow.lua (tail -F with neap.watch and neap.stat), issue 15 part 1.
local neap = require "neap"
local helpers = require "helpers"

describe("examples/follow.lua", function()
  helpers.leakcheck()

  it("follows a file through appends, a truncation, a replacement and a removal", function()
    local d = helpers.tmpdir()
    local path = d .. "/log"
    helpers.write_file(path, "one\n")
    local ok, err = pcall(helpers.run, function()
      local p = assert(neap.spawn { helpers.NEAP, "examples/follow.lua", path,
                                    stdin = "null", stdout = "pipe", stderr = "pipe" })
      local function line() return p.stdout:read_line { timeout = 10 } end
      local function append(s) local f = io.open(path, "a") f:write(s) f:close() end
      assert.equal("one", line())
      append("two\n")
      assert.equal("two", line())
      append("three, ") append("still three\n")
      assert.equal("three, still three", line())
      helpers.write_file(path, "four\n")                  -- truncated: shorter than before
      assert.equal("four", line())
      helpers.write_file(d .. "/new", "five\nsix\n")
      os.rename(d .. "/new", path)                        -- replaced: another inode
      assert.equal("five", line())
      assert.equal("six", line())
      os.remove(path)                                     -- removed, then back
      neap.sleep(0.2)
      helpers.write_file(path, "seven\n")
      assert.equal("seven", line())
      p:kill("TERM")
      p:wait { timeout = 10 }
      local notes = p.stderr:read_all { timeout = 5 }
      assert.truthy(notes:find(path .. ": truncated\n", 1, true), notes)
      assert.truthy(notes:find(path .. ": replaced; following the new file\n", 1, true), notes)
      assert.truthy(notes:find(path .. ": gone; waiting for it\n", 1, true), notes)
      p.stdout:close() p.stderr:close()
    end, 60)
    os.execute("rm -rf " .. d)
    assert(ok, err)
  end)

  it("without a file tells how to use it", function()
    local out, rc = helpers.sh(helpers.NEAP .. " examples/follow.lua")
    assert.equal(2, rc)
    assert.equal("usage: neap follow.lua FILE\n", out)
  end)
end)
