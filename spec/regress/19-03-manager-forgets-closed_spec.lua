-- Issue 19.3: the manager never forgot closed channels: each connection
-- added with add_sock, read to EOF and closed stayed in m.channels (2,000
-- connections: 4,001 entries), and every next_event walked them all.
local neap = require "neap"
local manager = require "neap.manager"
local helpers = require "helpers"

describe("neap.manager (19.3)", function()
  helpers.leakcheck()
  describe("closed channels", function()
    it("leave m.channels", function()
      helpers.run(function()
        local m = manager.new()
        local srv = assert(m:make_server_sock("tcp", "127.0.0.1", 0))
        local _, port = srv.server:address()
        local most = 0
        for _ = 1, 300 do
          neap.task(function()
            local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
            c:write("hello") c:close()
          end)
          local r
          while true do
            local ch, ev = m:next_event { timeout = 5 }
            assert.is_not.equal("timeout", ev.type)
            if ev.type == "accept" then r = m:add_sock(ev.stream)
            elseif ch == r and ev.status ~= "ok" then
              assert.equal("eof", ev.status)
              r:close()
              break
            end
          end
          most = math.max(most, #m.channels)
        end
        assert.is_true(#m.channels <= 3, #m.channels .. " channels")
        assert.is_true(most <= 5, most .. " channels at most")
        m:close()
        assert.equal(0, #m.channels)
      end)
    end)

    it("a child's death watch leaves m.channels once reported", function()
      helpers.run(function()
        local m = manager.new()
        for _ = 1, 20 do
          local proc = assert(m:make_child_proc { "true", stdin = "null", stdout = "null", stderr = "null" })
          repeat local ch = m:next_event { timeout = 5 } until ch == m.child_channel
          proc.process:close()
        end
        assert.is_true(#m.channels <= 2, #m.channels .. " channels")
        m:close()
      end)
    end)
  end)
end)
