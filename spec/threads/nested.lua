-- A thread that starts a thread of its own (which waits forever), then waits.
local neap = require "neap"
local dir = ...
local t = neap.thread(dir .. "/waits.lua")
assert(t:receive { timeout = 10 } == "started")
neap.parent:send("started")
neap.sleep(1000)
