-- luv: BYTES through a child (cat) and back, every byte compared; the next
-- 64 KiB write starts in the callback of the previous one.
-- lua5.4 luv_pipe.lua BYTES CMD [ARG...]
local uv = require "luv"
local total = math.tointeger(tonumber(arg[1]))
local cmd = { table.unpack(arg, 2) }

local t = {}
for i = 0, 65535 do t[i + 1] = string.char((i * 31 + 7) % 251) end
local block = table.concat(t)
local block2 = block .. block

local t0 = uv.hrtime()
local stdin, stdout = uv.new_pipe(), uv.new_pipe()
local handle
handle = uv.spawn(cmd[1], { args = { table.unpack(cmd, 2) }, stdio = { stdin, stdout, 2 } },
  function() handle:close() end)
assert(handle)
local left = total
local function write_next()
  if left == 0 then stdin:close() return end
  local n = math.min(left, #block)
  left = left - n
  stdin:write(n == #block and block or block:sub(1, n), write_next)
end
write_next()
local got, ok = 0, true
stdout:read_start(function(err, data)
  if err or not data then stdout:close() return end
  local o = got % 65536
  if data ~= block2:sub(o + 1, o + #data) then ok = false end
  got = got + #data
end)
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
ok = ok and got == total
print(string.format("RESULT mb_per_s=%.1f bytes=%d verified=%s secs=%.3f", got / secs / 1e6, got,
  ok and "yes" or "NO", secs))
os.exit(ok and 0 or 1)
