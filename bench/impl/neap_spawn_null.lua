-- neap: as neap_spawn.lua, with the child's stdio on /dev/null instead of
-- the default pipes (what the C program does). neap neap_spawn_null.lua N INFLIGHT
local neap = require "neap"
local total, inflight = tonumber(arg[1]), tonumber(arg[2])

local started, done, fails = 0, 0, 0
local t0 = neap.now()
local workers = {}
for w = 1, inflight do
  workers[w] = neap.task(function()
    while started < total do
      started = started + 1
      local p = assert(neap.spawn { "/bin/true", stdin = "null", stdout = "null", stderr = "null" })
      local code = p:wait()
      if code ~= 0 then fails = fails + 1 end
      done = done + 1
    end
  end)
end
for _, t in ipairs(workers) do t:join() end
local secs = neap.now() - t0
print(string.format("RESULT spawns_per_s=%.0f spawns=%d fails=%d secs=%.3f", done / secs, done, fails, secs))
