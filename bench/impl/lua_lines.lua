-- plain Lua 5.4: count the lines of stdin (a pipe) with io.lines().
-- Lua has no sub-second wall clock, so date(1) gives the two time stamps.
local function now()
  local f = io.popen("date +%s.%N")
  local t = tonumber(f:read("l"))
  f:close()
  return t
end
local t0 = now()
local lines, bytes = 0, 0
for line in io.lines() do
  lines = lines + 1
  bytes = bytes + #line
end
local secs = now() - t0
print(string.format("RESULT lines_per_s=%.0f mb_per_s=%.1f lines=%d bytes=%d secs=%.3f",
  lines / secs, (bytes + lines) / secs / 1e6, lines, bytes, secs))
