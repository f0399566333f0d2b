-- Issue 19, item 12: neap.dispatcher. d:close() from elsewhere while a
-- handler waited sent "cancelled" to handle_error; a readable() that raised
-- left the dispatcher in the map with its socket open (dispatcher.loop()
-- never returned); push after the peer had gone raised "attempt to use a
-- closed stream"; set_terminator(-3) was accepted and failed later.
local neap = require "neap"
local dispatcher = require "neap.dispatcher"
local helpers = require "helpers"

local function wait_for(pred)
  local deadline = neap.now() + 5
  while not pred() and neap.now() < deadline do neap.sleep(0.005) end
end

describe("issue 19.12: neap.dispatcher", function()
  helpers.leakcheck()

  it("d:close() from elsewhere while a handler waits ends the handler quietly", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local errors, waiting, after = {}, false, false
      local d = dispatcher.new({}, a)
      function d:writable() return false end
      function d:handle_read()
        waiting = true
        neap.sleep(5)
        after = true
      end
      function d:handle_error(err) errors[#errors + 1] = tostring(err) self:close() end
      b:write("x")
      wait_for(function() return waiting end)
      d:close()
      neap.sleep(0.05)
      assert.same({}, errors)
      assert.is_false(after)
      assert.is_nil(dispatcher.map[d])
      b:close()
    end, 10)
  end)

  it("a readable() that raises goes to handle_error, and the dispatcher is closed and removed", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local errors = {}
      local d = dispatcher.new({}, a)
      function d:readable() error("readable broke") end
      function d:writable() return false end
      function d:handle_error(err) errors[#errors + 1] = tostring(err) self:close() end
      dispatcher.loop { timeout = 5 }
      assert.equal(1, #errors)
      assert.matches("readable broke", errors[1])
      assert.is_nil(dispatcher.map[d])
      assert.is_true(a:is_closed())
      b:close()
    end, 10)
  end)

  it("a driver that fails (a handler closed d.sock by hand) closes the dispatcher", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local errors = {}
      local d = dispatcher.new({}, a)
      function d:writable() return false end
      function d:handle_read() self:recv() self.sock:close() end
      function d:handle_error(err) errors[#errors + 1] = tostring(err) end
      b:write("x")
      dispatcher.loop { timeout = 5 }
      assert.is_nil(dispatcher.map[d])
      assert.equal(1, #errors)
      b:close()
    end, 10)
  end)

  it("push and send after the peer has gone do not raise", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local closes = 0
      local c = dispatcher.chat({}, a)
      function c:found_terminator() end
      function c:handle_close() closes = closes + 1 self:close() end
      c:set_terminator("\n")
      b:close()
      wait_for(function() return closes > 0 end)
      assert.equal(1, closes)
      assert.equal(c, c:push("late\n"))
      assert.equal(0, c:send("late\n"))
      assert.is_nil(dispatcher.map[c])
    end, 10)
  end)

  it("set_terminator raises on a negative byte count", function()
    local c = dispatcher.chat({})
    assert.has_error(function() c:set_terminator(-3) end,
      "bad argument #1 to 'set_terminator' (byte count must be >= 0)")
    c:set_terminator(0)
    assert.equal(0, c:get_terminator())
  end)
end)
