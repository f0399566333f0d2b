--- neap.task: running tasks to their end and starting them on events.
-- neap.run runs one to its end (from plain Lua, with the loop), neap.first
-- races several; neap.timer and neap.signal start a task at each tick or
-- delivery. The tasks themselves (neap.task, sleep, join, cancel) are the
-- core's (src/sched.c).
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts = util.argerr, util.checkopts
local tpack, tunpack, select, type, error, pcall = table.pack, table.unpack, select, type, error, pcall

local task = {}

--- neap.run(fn, ...) -> fn's results: runs fn as a task and the loop until
-- it is done; re-raises its error with its traceback. Inside a task it
-- runs fn as a task and joins it.
function task.run(fn, ...)
  if type(fn) ~= "function" then argerr("run", 1, "function expected, got " .. type(fn)) end
  local t = core.task(fn, ...)
  t:_quiet()   -- its error is raised here instead
  if core.current() then
    local r = tpack(t:join())
    if r[1] then return tunpack(r, 2, r.n) end
    error(r[2], 0)
  end
  local done = core.run_until(t)
  if not done then
    t:cancel()
    error("neap.run: the task waits for something that can never happen " ..
          "(nothing left to wake it)", 2)
  end
  local err, tb = core.task_error(t)
  if t:status() == "failed" then
    if type(err) == "string" then error(tb or err, 0) end
    error(err, 0)
  end
  local r = tpack(t:join())
  if not r[1] then error(r[2], 0) end
  return tunpack(r, 2, r.n)
end

--- neap.first(f1, f2, ... [, {timeout=}]) -> index, results of the first to
-- finish; the others are cancelled. A function that raises first re-raises.
function task.first(...)
  local n = select("#", ...)
  local fns = { ... }
  local opts = {}
  if n > 0 and type(fns[n]) == "table" then opts = checkopts("first", n, fns[n]); fns[n] = nil; n = n - 1 end
  if n == 0 then argerr("first", 1, "at least one function expected") end
  for i = 1, n do
    if type(fns[i]) ~= "function" then argerr("first", i, "function expected, got " .. type(fns[i])) end
  end
  local me = core.current()
  if not me then error("neap.first: a wait must run inside a task (neap.task or neap.run)", 2) end
  local tasks, winner = {}, nil
  for i = 1, n do
    tasks[i] = core.task(function()
      local r = tpack(pcall(fns[i]))
      if not winner then
        winner = i
        core.wake(me, i, r)
      end
    end)
  end
  local ok, i, r, code = pcall(core.park, opts.timeout, "first")
  for j = 1, n do if j ~= i then tasks[j]:cancel() end end
  if not ok then error(i, 0) end   -- this task was cancelled
  if type(i) ~= "number" then
    winner = winner or 0
    return nil, r, code
  end
  if not r[1] then error(r[2], 0) end
  return i, tunpack(r, 2, r.n)
end

local function signal_task(fn, name) core.task(fn, name) end

--- neap.signal(sig, fn) -> watcher: fn(name) runs in a task at each delivery;
-- watcher:stop(). While a watcher exists, INT and TERM no longer end the binary.
function task.signal(sig, fn)
  util.checksig("signal", 1, sig)
  if type(fn) ~= "function" then argerr("signal", 2, "function expected, got " .. type(fn)) end
  return core.signal(sig, fn, signal_task)
end

local function timer_task(fn, t) core.task(fn, t) end

--- neap.timer(seconds, fn, {every=}) -> timer: fn(timer) runs in a task of its own.
function task.timer(seconds, fn, opts)
  if type(seconds) ~= "number" or not (seconds >= 0) then argerr("timer", 1, "seconds must be a number >= 0") end
  if type(fn) ~= "function" then argerr("timer", 2, "function expected, got " .. type(fn)) end
  opts = checkopts("timer", 3, opts)
  if opts.every ~= nil and (type(opts.every) ~= "number" or not (opts.every > 0)) then
    argerr("timer", 3, "every must be a number > 0")
  end
  return core.timer(seconds, opts.every or 0, fn, timer_task)
end

return task
