-- cqueues: count the lines of stdin (a pipe) with socket.fdopen(0):lines().
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local cq = cqueues.new()
local lines, bytes, secs = 0, 0, 0
cq:wrap(function()
  local t0 = cqueues.monotime()
  local stdin = socket.fdopen(0)
  stdin:setmode("b", "b")
  for line in stdin:lines() do
    lines = lines + 1
    bytes = bytes + #line
  end
  secs = cqueues.monotime() - t0
end)
assert(cq:loop())
print(string.format("RESULT lines_per_s=%.0f mb_per_s=%.1f lines=%d bytes=%d secs=%.3f",
  lines / secs, (bytes + lines) / secs / 1e6, lines, bytes, secs))
