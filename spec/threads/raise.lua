-- Raises from a nested function after a wait (the traceback names both).
local neap = require "neap"
local function inner() error("thread failed on purpose") end
local function outer() inner() end
neap.sleep(0.01)
outer()
