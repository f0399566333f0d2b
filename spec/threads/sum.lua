-- Sums from..to (CPU-bound), replies with the sum, returns its own id.
local neap = require "neap"
local id, from, to = ...
local s = 0
for i = from, to do s = s + i end
neap.parent:send({ id = id, sum = s })
return id, "done"
