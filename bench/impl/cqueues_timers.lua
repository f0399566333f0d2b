-- cqueues: N coroutines, each cqueues.sleep of a random length in [MIN_MS, MAX_MS] ms.
-- lua5.4 cqueues_timers.lua N MIN_MS MAX_MS
local cqueues = require "cqueues"
local n, min_ms, max_ms = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
math.randomseed(1)
local cq = cqueues.new()
local late, last = {}, 0
local t0 = cqueues.monotime()
for _ = 1, n do
  local secs = (min_ms + math.random() * (max_ms - min_ms)) / 1000
  cq:wrap(function()
    local due = cqueues.monotime() + secs
    cqueues.sleep(secs)
    local now = cqueues.monotime()
    late[#late + 1] = (now - due) * 1000
    last = now
  end)
end
local setup = cqueues.monotime() - t0
assert(cq:loop())
table.sort(late)
print(string.format("RESULT total_s=%.3f setup_s=%.3f late_p50_ms=%.2f late_p99_ms=%.2f late_min_ms=%.2f late_max_ms=%.2f fired=%d",
  last - t0, setup, late[#late // 2 + 1], late[math.floor(#late * 0.99) + 1], late[1], late[#late], #late))
