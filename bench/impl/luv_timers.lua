-- luv: N one-shot timers of random length in [MIN_MS, MAX_MS] ms.
-- lua5.4 luv_timers.lua N MIN_MS MAX_MS
local uv = require "luv"
local n, min_ms, max_ms = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
math.randomseed(1)
local late, last = {}, 0
local t0 = uv.hrtime()
for _ = 1, n do
  local ms = (min_ms + math.random() * (max_ms - min_ms))
  local due = uv.hrtime() + ms * 1e6
  local t = uv.new_timer()
  t:start(math.floor(ms), 0, function()
    local now = uv.hrtime()
    late[#late + 1] = (now - due) / 1e6
    last = now
    t:close()
  end)
end
local setup = (uv.hrtime() - t0) / 1e9
uv.run()
table.sort(late)
print(string.format("RESULT total_s=%.3f setup_s=%.3f late_p50_ms=%.2f late_p99_ms=%.2f late_min_ms=%.2f late_max_ms=%.2f fired=%d",
  (last - t0) / 1e9, setup, late[#late // 2 + 1], late[math.floor(#late * 0.99) + 1], late[1], late[#late], #late))
