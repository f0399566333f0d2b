-- luv: count the lines of stdin (a pipe): read_start callbacks, lines split
-- with string.find over the buffered bytes.
local uv = require "luv"
local t0 = uv.hrtime()
local lines, bytes = 0, 0
local stdin = uv.new_pipe()
assert(stdin:open(0))
local buf = ""
stdin:read_start(function(err, chunk)
  assert(not err, err)
  if not chunk then
    if #buf > 0 then lines = lines + 1; bytes = bytes + #buf end
    stdin:close()
    return
  end
  buf = buf .. chunk
  local pos = 1
  while true do
    local nl = buf:find("\n", pos, true)
    if not nl then break end
    local line = buf:sub(pos, nl - 1)
    lines = lines + 1
    bytes = bytes + #line
    pos = nl + 1
  end
  buf = buf:sub(pos)
end)
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
print(string.format("RESULT lines_per_s=%.0f mb_per_s=%.1f lines=%d bytes=%d secs=%.3f",
  lines / secs, (bytes + lines) / secs / 1e6, lines, bytes, secs))
