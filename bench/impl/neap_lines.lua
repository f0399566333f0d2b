-- neap: count the lines of stdin (a pipe) with neap.stdin:lines().
local neap = require "neap"
local t0 = neap.now()
local lines, bytes = 0, 0
for line in neap.stdin:lines() do
  lines = lines + 1
  bytes = bytes + #line
end
local secs = neap.now() - t0
print(string.format("RESULT lines_per_s=%.0f mb_per_s=%.1f lines=%d bytes=%d secs=%.3f",
  lines / secs, (bytes + lines) / secs / 1e6, lines, bytes, secs))
