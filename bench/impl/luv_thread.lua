-- luv: messages between the main thread and a uv.new_thread, through the
-- async handles luv offers for it (an async on each side; async:send(v)).
--   lua5.4 luv_thread.lua N_ROUNDTRIPS N_STREAM
-- Round trips: as neap_thread.lua. Stream: luv's async keeps one value per
-- handle (a send made before the receiving callback ran replaces the one
-- before: five quick sends arrive as one callback), so a stream cannot go
-- through it without loss: each message waits for the receiver's ack
-- (one in flight), which is the most luv's async handles carry in order.
-- Every value sent is a number: luv 1.44's async:send passes a string as a
-- pointer into the sender's Lua state and drops its reference as soon as
-- uv_async_send returns, so the receiver can read freed memory (a stream
-- of strings here received an empty string in one run of three, and a
-- string naming the kind of message made runs hang).
local uv = require "luv"
local n_rt, n_stream = tonumber(arg[1]), tonumber(arg[2])
local t0 = uv.hrtime()
local to_thread
local rt, i, sent_at, phase, a = {}, 0, 0, "start", 0
local start_s, rt_s, stream_s
local from_thread
local async_mt
local function send(...)   -- (put the metatable back once luv has stripped it)
  if not debug.getmetatable(to_thread) then debug.setmetatable(to_thread, async_mt) end
  to_thread:send(...)
end
from_thread = uv.new_async(function(kind, v, th_async)
  if kind == 0 then
    -- luv strips the metatable of a handle it hands over once the callback
    -- returns (so that its __gc cannot close it from this thread): keep
    -- the metatable, put it back, and strip it again at the end
    to_thread, async_mt = th_async, debug.getmetatable(th_async)
    start_s = (uv.hrtime() - t0) / 1e9
    phase = "rt"
    a = uv.hrtime()
    i = 1
    sent_at = uv.hrtime()
    send(1, 1)
  elseif phase == "rt" then
    rt[i] = (uv.hrtime() - sent_at) / 1e9
    if v ~= i then print("VERIFY FAIL round trip " .. i .. " got " .. tostring(v)) os.exit(1) end
    if i == n_rt then
      rt_s = (uv.hrtime() - a) / 1e9
      phase = "stream"
      i = 0
      a = uv.hrtime()
      send(2, 1)
    else
      i = i + 1
      sent_at = uv.hrtime()
      send(1, i)
    end
  else   -- stream: the thread sent message i; ack it
    i = i + 1
    if v ~= i then print("VERIFY FAIL stream " .. i .. " got " .. tostring(v)) os.exit(1) end
    if i == n_stream then
      stream_s = (uv.hrtime() - a) / 1e9
      send(3, 0)
      debug.setmetatable(to_thread, nil)
      from_thread:close()
    else
      send(2, i + 1)
    end
  end
end)
local th = uv.new_thread(function(back)
  local uv = require "luv"
  local mine
  mine = uv.new_async(function(kind, v)
    if kind == 1 then back:send(1, v)
    elseif kind == 2 then back:send(2, v)
    else mine:close() end
  end)
  back:send(0, 0, mine)
  uv.run()
end, from_thread)
uv.run()
th:join()
table.sort(rt)
print(string.format("RESULT rt_per_s=%.0f rt_p50_us=%.1f rt_p99_us=%.1f msgs_per_s=%.0f start_ms=%.2f roundtrips=%d msgs=%d",
  n_rt / rt_s, rt[#rt // 2 + 1] * 1e6, rt[math.floor(#rt * 0.99) + 1] * 1e6, n_stream / stream_s,
  start_s * 1e3, n_rt, n_stream))
