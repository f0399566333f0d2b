-- make soak: 2,000 connections echo verified lines for SOAK_SECONDS while
-- child processes are spawned and killed alongside. Fails on any
-- mismatched or lost line, or when resident memory at the end is more than
-- 10% above memory after warm-up, plus 4 MiB: the host keeps one grown read
-- buffer of up to 4 MiB as a cache (src/stream.c SPARE_MAX), which is not a leak. Needs ulimit -n above 4,200.
local neap = require "neap"
package.path = "./spec/?.lua;" .. package.path
local helpers = require "helpers"

local SECONDS = tonumber(os.getenv("SOAK_SECONDS") or "60")
local CONNS = tonumber(os.getenv("SOAK_CONNS") or "2000")

local rss_kb = helpers.rss_kb

local srv, port = helpers.server(function(c)
  for line in c:lines() do c:write(line, "\n") end
end, { backlog = 4096 })

local stop = false
local sent, ok_lines, mismatched, lost, errors = 0, 0, 0, 0, 0
local spawned, killed = 0, 0

local clients = {}
for i = 1, CONNS do
  clients[i] = neap.task(function()
    local c, err = neap.connect("tcp", "127.0.0.1", port, { timeout = 20 })
    if not c then errors = errors + 1 return end
    local seq = 0
    while not stop do
      seq = seq + 1
      local msg = ("%d:%d:%s"):format(i, seq, string.rep(string.char(97 + (i + seq) % 26), (i * 7 + seq) % 200))
      c:write(msg, "\n")
      sent = sent + 1
      local back = c:read_line { timeout = 20 }
      if back == nil then lost = lost + 1 if lost < 4 then io.stderr:write("lost: ", tostring(select(2, c:read_line{timeout=0})), " seq ", seq, " stop ", tostring(stop), "\n") end break
      elseif back ~= msg then mismatched = mismatched + 1
      else ok_lines = ok_lines + 1 end
      if seq % 10 == 0 then neap.sleep(0.01) end
    end
    c:close()
  end)
end

local procs = neap.task(function()
  while not stop do
    local p = neap.spawn { "sleep", "5", stdin = "null", stdout = "null", stderr = "null" }
    if p then
      spawned = spawned + 1
      neap.sleep(0.02)
      p:kill("KILL")
      local _, sig = p:wait { timeout = 5 }
      if sig == "KILL" then killed = killed + 1 end
      p:close()
    end
  end
end)

local warm = SECONDS * 0.25
neap.sleep(warm)
collectgarbage() collectgarbage()
local rss_warm = rss_kb()
local lua_warm = collectgarbage("count")
neap.sleep(SECONDS - warm)
collectgarbage() collectgarbage()
local rss_end = rss_kb()   -- under the same load as the warm-up reading
stop = true
for i = 1, CONNS do clients[i]:join { timeout = 30 } end
procs:join { timeout = 10 }
local lua_end = collectgarbage("count")
io.stderr:write(("lua heap: warm %.0f KiB, end %.0f KiB\n"):format(lua_warm, lua_end))
srv:close()

print(("soak: %d s, %d connections, %d lines sent, %d echoed, %d mismatched, %d lost, %d connect errors"):format(
  SECONDS, CONNS, sent, ok_lines, mismatched, lost, errors))
print(("soak: %d children spawned, %d killed; RSS after warm-up %d KiB, at the end %d KiB (%+.1f%%)"):format(
  spawned, killed, rss_warm, rss_end, (rss_end - rss_warm) * 100 / rss_warm))
local ok = mismatched == 0 and lost == 0 and errors == 0 and killed == spawned
  and rss_end <= rss_warm * 1.10 + 4096 and ok_lines > 0
print(ok and "soak: passed" or "soak: FAILED")
os.exit(ok and 0 or 1)
