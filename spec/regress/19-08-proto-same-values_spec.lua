-- Issue 19, item 8: fed by hand, proto's reads returned an extra nil (a
-- line came back as "hi", nil), so io:write(io:read_line()) wrote "hinil"
-- by hand and "hi" over TCP. Both ways must give the same values.
local neap = require "neap"
local proto = require "neap.proto"
local helpers = require "helpers"

local function show(r)
  local t = {}
  for i = 1, r.n do t[i] = type(r[i]) == "string" and string.format("%q", r[i]) or tostring(r[i]) end
  return "(" .. table.concat(t, ",") .. ")"
end

-- every read's results, value for value (their count included)
local P = proto.define(function(io)
  local log = {}
  local function rec(...) log[#log + 1] = show(table.pack(...)) end
  rec(io:read_line())
  rec(io:read_exactly(2))
  rec(io:read_until({ ";" }))
  rec(io:read(3))
  rec(io:read_until(";", { keep = true }))
  rec(io:read_line())        -- over max_frame
  rec(io:read(10))
  rec(io:read_line())
  rec(io:read_exactly(10))   -- short at the end
  rec(io:read_until(";"))    -- the rest, with no delimiter
  rec(io:read_all())
  rec(io:read())
  rec(io:read_line())
  io:write(table.concat(log, " "))
end, { max_frame = 8 })

local input = "hi\nabcd;efgh;0123456789ab\nijk\nxy"

describe("issue 19.8: neap.proto fed by hand and over a stream", function()
  helpers.leakcheck()

  it("io:write(io:read_line()) writes the line alone", function()
    local c = proto.define(function(io) io:write(io:read_line()) end)()
    c:send("hi\n")
    assert.equal("hi", c:read())
  end)

  it("every read returns the same values both ways", function()
    local c = P()
    c:send(input)
    c:send_eof()
    local by_hand = c:read()
    local over = helpers.run(function()
      local a, b = helpers.pair()
      b:write(input)
      b:shutdown()
      proto.attach(a, P)
      a:close()
      local out = b:read_all { timeout = 5 }
      b:close()
      return out
    end)
    assert.equal(over, by_hand)
    assert.matches('^%("hi"%) %("ab"%) %("cd",";"%) ', by_hand)
  end)
end)
