-- neap: messages between the main thread and a neap.thread.
--   neap neap_thread.lua N_ROUNDTRIPS N_STREAM
-- Round trips: the main thread sends a small message (an integer), the
-- thread sends it back; each round trip is timed. Stream: the thread sends
-- N_STREAM small messages (integers) as fast as it can, the main
-- thread receives them all, in order. This file is also the thread's.
local neap = require "neap"

if neap.parent then
  local n_rt, n_stream = ...
  for _ = 0, n_rt do neap.parent:send(neap.parent:receive()) end
  assert(neap.parent:receive() == "stream")
  for i = 1, n_stream do neap.parent:send(i) end
  return
end

local n_rt, n_stream = tonumber(arg[1]), tonumber(arg[2])
local t0 = neap.now()
local t = neap.thread(arg[0], n_rt, n_stream)
local rt = {}
assert(t:send(0))
assert(t:receive() == 0)   -- the thread is up
local start_s = neap.now() - t0
local a = neap.now()
for i = 1, n_rt do
  local s = neap.now()
  t:send(i)
  local v = t:receive()
  rt[i] = neap.now() - s
  if v ~= i then print("VERIFY FAIL round trip " .. i .. " got " .. tostring(v)) os.exit(1) end
end
local rt_s = neap.now() - a
table.sort(rt)
t:send("stream")
a = neap.now()
for i = 1, n_stream do
  local v = t:receive()
  if v ~= i then print("VERIFY FAIL stream " .. i .. " got " .. tostring(v)) os.exit(1) end
end
local stream_s = neap.now() - a
assert(t:join())
print(string.format("RESULT rt_per_s=%.0f rt_p50_us=%.1f rt_p99_us=%.1f msgs_per_s=%.0f start_ms=%.2f roundtrips=%d msgs=%d",
  n_rt / rt_s, rt[#rt // 2 + 1] * 1e6, rt[math.floor(#rt * 0.99) + 1] * 1e6, n_stream / stream_s,
  start_s * 1e3, n_rt, n_stream))
