-- Burns CPU (never waits) until cancelled, after saying it started.
local neap = require "neap"
neap.parent:send("burning")
local x = 0
while true do x = (x + 1) % 1000003 end
