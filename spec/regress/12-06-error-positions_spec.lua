-- Issue 12.6: the Lua layer split into files by concern (task, queue, net,
-- fs, post). Moving a check one call deeper changes the level its error
-- names, so each public function's argument errors must still point at the
-- line that called it, as they did when they all lived in init.lua.
local neap = require "neap"
local helpers = require "spec.helpers"

-- f() must raise 'msg' positioned at this file's line 'line'.
local function raises_here(line, msg, f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert.equal("spec/regress/12-06-error-positions_spec.lua:" .. line .. ": " .. msg, err)
end

local function line() return debug.getinfo(2, "l").currentline + 1 end

describe("argument errors point at the caller's line (12.6)", function()
  helpers.leakcheck()

  it("in neap.listen, neap.connect, neap.resolve and neap.udp (neap.net)", function()
    local l
    l = line() raises_here(l, "bad argument #2 to 'listen' (host must be a string)", function()
      neap.listen("tcp", 42, 0) end)
    l = line() raises_here(l, "bad argument #2 to 'listen' (host contains a NUL byte)", function()
      neap.listen("tcp", "a\0b", 0) end)
    l = line() raises_here(l, "bad argument #3 to 'listen' (port out of range)", function()
      neap.listen("tcp", "127.0.0.1", 70000) end)
    l = line() raises_here(l, "bad argument #3 to 'connect' (number has no integer representation)", function()
      neap.connect("tcp", "127.0.0.1", 1.5) end)
    l = line() raises_here(l, "bad argument #2 to 'connect' (path contains a NUL byte)", function()
      neap.connect("unix", "a\0b") end)
    l = line() raises_here(l, "bad argument #4 to 'listen' (backlog must be an integer >= 1)", function()
      neap.listen("tcp", "127.0.0.1", 0, { backlog = 0 }) end)
    l = line() raises_here(l, "bad argument #2 to 'resolve' (timeout must be a number >= 0)", function()
      neap.resolve("localhost", { timeout = -1 }) end)
    l = line() raises_here(l, "bad argument #1 to 'udp' (port must be an integer from 0 to 65535)", function()
      neap.udp { port = -1 } end)
  end)

  it("in the methods net.lua installs: s:on, server:on, server:serve, u:send, u:connect", function()
    helpers.run(function()
      local a, b = helpers.pair()
      local srv = helpers.server()
      local u = assert(neap.udp {})
      local l
      l = line() raises_here(l, "bad argument #1 to 'on' (\"data\", \"line\", \"close\" or \"error\" expected, got x)", function()
        a:on("x", print) end)
      l = line() raises_here(l, "bad argument #1 to 'on' (\"connection\" expected, got x)", function()
        srv:on("x", print) end)
      l = line() raises_here(l, "bad argument #1 to 'serve' (function or protocol expected, got number)", function()
        srv:serve(1) end)
      l = line() raises_here(l, "bad argument #3 to 'send' (port out of range)", function()
        u:send("x", "127.0.0.1", 70000) end)
      l = line() raises_here(l, "bad argument #1 to 'connect' (string expected, got no value)", function()
        u:connect() end)
      a:close() b:close() srv:close() u:close()
    end)
  end)

  it("in neap.run, neap.first, neap.timer, neap.signal (neap.task), neap.queue, neap.open (neap.fs), neap.on_post and neap.inbox (neap.post)", function()
    local l
    l = line() raises_here(l, "bad argument #1 to 'run' (function expected, got number)", function()
      neap.run(1) end)
    l = line() raises_here(l, "bad argument #2 to 'first' (timeout must be a number >= 0)", function()
      neap.first(print, { timeout = -1 }) end)
    l = line() raises_here(l, "bad argument #3 to 'timer' (every must be a number > 0)", function()
      neap.timer(1, print, { every = 0 }) end)
    l = line() raises_here(l, "bad argument #1 to 'signal' (unknown signal 'BOGUS')", function()
      neap.signal("BOGUS", print) end)
    l = line() raises_here(l, "bad argument #1 to 'queue' (size must be a positive integer)", function()
      neap.queue(0) end)
    l = line() raises_here(l, "bad argument #1 to 'get' (timeout must be a number >= 0)", function()
      neap.queue():get { timeout = -1 } end)
    l = line() raises_here(l, "bad argument #2 to 'open' (bad mode 'q')", function()
      neap.open("/nonexistent", "q") end)
    l = line() raises_here(l, "bad argument #1 to 'on_post' (name must be a string)", function()
      neap.on_post(1) end)
    l = line() raises_here(l, "bad argument #1 to 'inbox' (options table expected, got number; use { timeout = 5 })", function()
      neap.inbox(5) end)
  end)
end)
