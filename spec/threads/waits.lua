-- A thread that says it runs, then waits for a message that never comes.
local neap = require "neap"
neap.parent:send("started")
return neap.parent:receive()
