-- neap: N parked tasks (each in neap.sleep(3600)) while one task makes a
-- little garbage every 10 ms. Reports how late that task's wake-ups are
-- (its deadlines are fixed: start + k * 10 ms), how late the wake-ups of a
-- probe task that sleeps 1 ms at a time are (a pause of the loop delays
-- it by up to the pause's length, whenever it comes), the Lua heap per
-- parked task, and how many GC cycles ran while measuring. Default
-- settings: the script sets no GC parameter of its own.
-- neap neap_tasks.lua N SECONDS GARBAGE_KB
--
-- Each wake-up also records the process's CPU time (os.clock) since the
-- previous one. The part of a wake-up's lag that the process's own CPU
-- time explains (CPU used since the previous wake-up beyond the time
-- there was until this one was due, plus the own part of a lag inherited
-- from the previous wake-up when this one was already due then) is its
-- "own" lag: the collector's pause, since nothing else runs here. The
-- rest is the machine running something else (other processes on a
-- shared machine): noise.
local neap = require "neap"
local n = tonumber(arg[1]) or 100000
local secs = tonumber(arg[2]) or 30
local garbage_kb = tonumber(arg[3]) or 128

collectgarbage("collect")
local base = collectgarbage("count")
local function parked() neap.sleep(3600) end
for _ = 1, n do neap.task(parked) end
local t0 = neap.now()
while neap.now() - t0 < 1 do neap.sleep(0.05) end   -- every task is parked
collectgarbage("collect")
local heap_per_task = (collectgarbage("count") - base) * 1024 / n

-- a finalizer that makes itself again: runs once per GC cycle
local cycles = 0
local function sentinel()
  setmetatable({}, { __gc = function() cycles = cycles + 1; sentinel() end })
end
sentinel()

-- wake-ups at start + k * period until 'stop'; per wake-up 'work' runs;
-- fills lag[k] and own[k] (ms); preallocated: no growth while measuring
local function measure(period, count, work)
  local lag, own = {}, {}
  for i = 1, count do lag[i] = 0.0; own[i] = 0.0 end
  return lag, own, function(start)
    local cpu_prev, wake_prev, own_prev = os.clock(), start, 0
    for k = 1, count do
      local due = start + k * period
      local d = due - neap.now()
      neap.sleep(d > 0 and d or 0)
      local now, cpu = neap.now(), os.clock()
      local l = (now - due) * 1000
      if l < 0 then l = 0 end
      lag[k] = l
      -- the CPU used since the previous wake-up beyond the time there was
      -- until this one was due; a wake-up due before the previous one
      -- happened inherits that one's lag, and of it the part that was own
      local avail = due - wake_prev
      local o = (cpu - cpu_prev) * 1000 - (avail > 0 and avail or 0) * 1000
      if o < 0 then o = 0 end
      if avail < 0 then o = o + math.min(own_prev, -avail * 1000) end
      o = o < l and o or l
      own[k] = o
      cpu_prev, wake_prev, own_prev = cpu, now, o
      if work then work(k) end
    end
  end
end

local keep = {}   -- the garbage: each tick's tables replace an older tick's
local per_tick = math.max(1, garbage_kb * 1024 // 96)   -- a {j, tostring(j)} is about 96 B
local function garbage(k)
  local g = {}
  for j = 1, per_tick do g[j] = { j, tostring(j) } end
  keep[k % 4] = g
end
local tick_lag, tick_own, tick = measure(0.01, math.floor(secs / 0.01), garbage)
local probe_lag, probe_own, probe = measure(0.001, math.floor(secs / 0.001))
local start = neap.now()
local cycles0 = cycles
local pt = neap.task(probe, start)
tick(start)
pt:join()
local cyc = cycles - cycles0

local function stats(t)
  table.sort(t)
  return t[math.floor(#t * 0.5) + 1], t[math.min(#t, math.floor(#t * 0.99) + 1)], t[#t]
end
local l50, l99, lmax = stats(tick_lag)
local _, o99, omax = stats(tick_own)
local p50, p99, pmax = stats(probe_lag)
local _, po99, pomax = stats(probe_own)
print(string.format("RESULT lag_p50_ms=%.2f lag_p99_ms=%.2f lag_max_ms=%.2f own_p99_ms=%.2f own_max_ms=%.2f " ..
  "probe_p50_ms=%.2f probe_p99_ms=%.2f probe_max_ms=%.2f probe_own_p99_ms=%.2f probe_own_max_ms=%.2f " ..
  "heap_per_task_b=%.0f gc_cycles=%d tasks=%d heap_mib=%.1f",
  l50, l99, lmax, o99, omax, p50, p99, pmax, po99, pomax, heap_per_task, cyc, n, collectgarbage("count") / 1024))
os.exit(0)
