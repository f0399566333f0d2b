-- A thread that says it runs, then never waits (only the cancel hook stops it).
local neap = require "neap"
neap.parent:send("started")
local x = 0
while true do x = x + 1 end
