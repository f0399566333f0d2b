-- neap: BYTES through a child (cat) and back: one task writes p.stdin while
-- the main task reads p.stdout with read(READ) and compares every byte with
-- what was sent.
-- neap neap_pipe.lua BYTES READ CMD [ARG...]
local neap = require "neap"
local total = math.tointeger(tonumber(arg[1]))
local rsize = math.tointeger(tonumber(arg[2]))
local cmd = { table.unpack(arg, 3) }

local t = {}
for i = 0, 65535 do t[i + 1] = string.char((i * 31 + 7) % 251) end
local block = table.concat(t)
-- a read of up to READ bytes at any offset is one substring of this
local window = block:rep((rsize + 65535) // 65536 + 1)

local t0 = neap.now()
local p = assert(neap.spawn(cmd))
neap.task(function()
  local left = total
  while left > 0 do
    local n = math.min(left, #block)
    assert(p.stdin:write(n == #block and block or block:sub(1, n)))
    left = left - n
  end
  p.stdin:close()
end)
local got, ok = 0, true
while true do
  local data = p.stdout:read(rsize)
  if not data then break end
  local o = got % 65536
  if data ~= window:sub(o + 1, o + #data) then ok = false end
  got = got + #data
end
p:wait()
local secs = neap.now() - t0
ok = ok and got == total
print(string.format("RESULT mb_per_s=%.1f bytes=%d verified=%s secs=%.3f", got / secs / 1e6, got,
  ok and "yes" or "NO", secs))
os.exit(ok and 0 or 1)
