-- neap: N tasks, each neap.sleep of a random length in [MIN_MS, MAX_MS] ms;
-- reports how late each woke (p50, p99, max) and the total time.
-- neap neap_timers.lua N MIN_MS MAX_MS
local neap = require "neap"
local n, min_ms, max_ms = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
math.randomseed(1)
local late, last = {}, 0
local t0 = neap.now()
for _ = 1, n do
  local secs = (min_ms + math.random() * (max_ms - min_ms)) / 1000
  neap.task(function()
    local due = neap.now() + secs
    neap.sleep(secs)
    local now = neap.now()
    late[#late + 1] = (now - due) * 1000
    last = now
  end)
end
local setup = neap.now() - t0
while #late < n do neap.sleep(0.05) end
table.sort(late)
print(string.format("RESULT total_s=%.3f setup_s=%.3f late_p50_ms=%.2f late_p99_ms=%.2f late_min_ms=%.2f late_max_ms=%.2f fired=%d",
  last - t0, setup, late[#late // 2 + 1], late[math.floor(#late * 0.99) + 1], late[1], late[#late], #late))
