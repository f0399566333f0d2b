-- Issue 19.5: with set_expected, a connection reset was reported as a
-- clean "eof" carrying the unterminated rest; with no framing the same
-- channel reported the error. The reset reaches the consumer either way:
-- the data first, then the error event.
local neap = require "neap"
local manager = require "neap.manager"
local helpers = require "helpers"

-- A peer that sends 'data' and closes without reading what it was sent:
-- the kernel answers the close with a reset (RST).
local function reset_after(data, expected)
  local m = manager.new()
  local a, b = helpers.pair()
  local rch = m:add_sock(a)
  if expected then rch:set_expected(expected) end
  m:next_event { timeout = 0 }   -- the channel's task starts: it reads a
  a:write("unread by the peer") a:flush()
  neap.sleep(0.05)
  b:write(data) b:flush()
  neap.sleep(0.1)
  b:close()
  local evs = {}
  repeat
    local ch, ev = m:next_event { timeout = 5 }
    assert.is_not.equal("timeout", ev.type)
    if ch == rch then evs[#evs + 1] = ev end
  until ch == rch and ev.status ~= "ok"
  m:close()
  return evs
end

describe("neap.manager (19.5)", function()
  helpers.leakcheck()
  for _, case in ipairs { { "a list of delimiters", { "\n" } }, { "{} (all at the end)", {} }, { "no framing" } } do
    it("a reset reaches the consumer with " .. case[1] .. ": the data, then the error", function()
      helpers.run(function()
        local evs = reset_after("line\npartial", case[2])
        local data = {}
        for i = 1, #evs - 1 do
          assert.equal("ok", evs[i].status)
          data[#data + 1] = evs[i].data
        end
        assert.equal("line\npartial", table.concat(data))
        local last = evs[#evs]
        assert.equal("error", last.status)
        assert.equal("ECONNRESET", last.code)
        assert.equal("", last.data)
      end)
    end)
  end
end)
