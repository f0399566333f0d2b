-- Issue 19, item 9: neap.buffer:read_until kept its resumable scan keyed by
-- the delimiter table's address. A new table at the same address (after the
-- first was collected), or the same table with other contents, resumed the
-- old scan and missed a delimiter already buffered (nil, "more").
local neap = require "neap"

describe("issue 19.9: neap.buffer:read_until", function()
  it("scans again when the same table holds other delimiters", function()
    local b = neap.buffer()
    b:feed("abc=def")
    local d = { ";" }
    assert.same({ nil, "more", "more" }, { b:read_until(d) })
    d[1] = "="
    assert.same({ "abc", "=" }, { b:read_until(d) })
  end)

  it("scans again for a new table at a collected table's address", function()
    -- each round: a scan for ";" with a table that is then collected, and a
    -- new table for "=" that the allocator is likely to put at the same
    -- address (it does with glibc's malloc; not under ASan's quarantine)
    local b = neap.buffer()
    local function scan_semicolon()
      local d = { ";" }
      return select(2, b:read_until(d))
    end
    local missed = 0
    for _ = 1, 50 do
      b:feed("ab=")
      collectgarbage()
      local more = scan_semicolon()
      collectgarbage()
      local d = { "=" }
      local data, delim = b:read_until(d)
      if more ~= "more" or data ~= "ab" or delim ~= "=" then
        missed = missed + 1
        b:read()   -- start the next round on an empty buffer
      end
    end
    assert.equal(0, missed)
  end)

  it("still resumes a scan for equal delimiters in a new table", function()
    local b = neap.buffer()
    b:feed("abc")
    assert.equal("more", select(2, b:read_until({ "=", ";" })))
    b:feed("d;e")
    assert.same({ "abcd", ";" }, { b:read_until({ "=", ";" }) })
  end)

  it("keeps its delimiters when a bad call is refused", function()
    local b = neap.buffer()
    b:feed("abc")
    local d = { ";" }
    assert.equal("more", select(2, b:read_until(d)))
    assert.has_error(function() b:read_until({ ";", 7 }) end)
    assert.has_error(function() b:read_until({ "" }) end)
    b:feed(";")
    assert.same({ "abc", ";" }, { b:read_until(d) })
  end)
end)
