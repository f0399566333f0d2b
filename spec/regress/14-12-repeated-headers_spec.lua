-- Issue 14 (red team): the parser joined a repeated header's values as
-- they came (one lua_concat each), copying the growing string every time:
-- a head of n repeats of one header cost O(n^2). A client's 64 KiB head
-- took 10 ms, a 1 MiB one (max_header raised) 3 s of the event loop.
-- The values are now gathered in a list and joined once.
local core = require "neap.core"

local function parse_time(kind, head, reps)
  local best = math.huge
  for _ = 1, 2 do
    local p, b = core.http_parser(kind), core.buffer()
    b:feed(head)
    local t0 = os.clock()
    local h = assert(p:head(b, 0))
    best = math.min(best, os.clock() - t0)
    if reps then assert.equal(reps * 3 - 2, #h.headers.x) end
  end
  return best
end

describe("regress 14.12: a head of many repeats of one header", function()
  it("costs about as much as a head of as many different headers", function()
    local n = 50000
    local names = {}
    for i = 1, n do names[i] = string.format("X%06d: a\r\n", i) end
    local distinct = parse_time("response", "HTTP/1.1 200 OK\r\n" .. table.concat(names) .. "\r\n")
    local same = parse_time("response", "HTTP/1.1 200 OK\r\n" .. string.rep("X: a\r\n", n) .. "\r\n", n)
    -- linear: same is below distinct (shorter strings); quadratic: ~30x it
    assert.is_true(same < 5 * distinct + 0.01, string.format("repeats %.3f s, distinct %.3f s", same, distinct))
    local req = parse_time("request", "GET / HTTP/1.1\r\n" .. string.rep("X: a\r\n", n) .. "\r\n", n)
    assert.is_true(req < 5 * distinct + 0.01, string.format("request repeats %.3f s, distinct %.3f s", req, distinct))
  end)

  it("still joins with \", \" in order, and keeps set-cookie a list", function()
    local p, b = core.http_parser("request"), core.buffer()
    b:feed("GET / HTTP/1.1\r\nA: 1\r\nB: x\r\na: 2\r\nSet-Cookie: c1\r\nC: only\r\nA: 3\r\n" ..
           "set-cookie: c2\r\nb: y \r\nEmpty:\r\nempty:\r\n\r\n")
    local h = assert(p:head(b))
    assert.same({ a = "1, 2, 3", b = "x, y", c = "only", empty = ", ", ["set-cookie"] = { "c1", "c2" } }, h.headers)
  end)
end)
