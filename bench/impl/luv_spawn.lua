-- luv: spawn /bin/true N times, INFLIGHT at once (uv.spawn, exit callback
-- starts the next). lua5.4 luv_spawn.lua N INFLIGHT
local uv = require "luv"
local total, inflight = tonumber(arg[1]), tonumber(arg[2])
local started, done, fails = 0, 0, 0
local function start()
  started = started + 1
  local handle
  handle = uv.spawn("/bin/true", { args = {} }, function(code, signal)
    if code ~= 0 or signal ~= 0 then fails = fails + 1 end
    done = done + 1
    handle:close()
    if started < total then start() end
  end)
  assert(handle)
end
local t0 = uv.hrtime()
for _ = 1, math.min(inflight, total) do start() end
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
print(string.format("RESULT spawns_per_s=%.0f spawns=%d fails=%d secs=%.3f", done / secs, done, fails, secs))
