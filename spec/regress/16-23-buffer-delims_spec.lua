-- Red team: neap.buffer keeps read_until's delimiters for a scan to resume,
-- as pointers into strings that its user value's table anchors. A script
-- that took that table away (debug.setuservalue) let the collector free
-- them, and the next read_until compared against freed memory (ASan:
-- heap-use-after-free in same_delims). The pointers are now checked against
-- the table first; without it nothing is kept and the scan starts over.
local neap = require "neap"

describe("16-23 a buffer's kept delimiters", function()
  it("taken away from its user value are not used", function()
    local b = neap.buffer()
    b:feed("abc")
    local q = ("Q"):rep(100) .. os.time()
    assert.same({ nil, "more", "more" }, { b:read_until(q) })
    q = nil
    debug.setuservalue(b, nil, 1)
    collectgarbage() collectgarbage()
    assert.same({ nil, "more", "more" }, { b:read_until(("R"):rep(100) .. os.time()) })
    b:feed("xyzSEP")
    assert.same({ "abcxyz", "SEP" }, { b:read_until("SEP") })
  end)

  it("replaced in its user value's table are not used", function()
    local b = neap.buffer()
    b:feed("one;two")
    assert.same({ "one", ";" }, { b:read_until(";") })
    local t = debug.getuservalue(b, 1)
    t[1] = "#"   -- another string where the kept one was
    collectgarbage() collectgarbage()
    b:feed("#three;")
    assert.same({ "two#three", ";" }, { b:read_until(";") })
  end)
end)
