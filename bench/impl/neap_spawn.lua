-- neap: spawn /bin/true N times, INFLIGHT tasks each calling neap.spawn and
-- p:wait(); with HOLD_MIB the host first holds that much Lua data (a table
-- of strings). neap neap_spawn.lua N INFLIGHT [HOLD_MIB]
local neap = require "neap"
local total, inflight, hold_mib = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3] or 0)

local hold = {}
local kib = string.rep("x", 1016)
for i = 1, hold_mib * 1024 do hold[i] = kib .. i end   -- distinct strings of about 1 KiB

local started, done, fails = 0, 0, 0
local t0 = neap.now()
local workers = {}
for w = 1, inflight do
  workers[w] = neap.task(function()
    while started < total do
      started = started + 1
      local p = assert(neap.spawn { "/bin/true" })
      local code = p:wait()
      if code ~= 0 then fails = fails + 1 end
      done = done + 1
    end
  end)
end
for _, t in ipairs(workers) do t:join() end
local secs = neap.now() - t0
print(string.format("RESULT spawns_per_s=%.0f spawns=%d fails=%d secs=%.3f held=%d",
  done / secs, done, fails, secs, #hold))
