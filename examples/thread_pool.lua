-- A pool of 4 long-lived threads hashing files (SHA-256 in plain Lua: a
-- CPU-bound job that would stall a loop), fed from a queue, while the main
-- loop keeps serving: a TCP echo server answers a client every 5 ms during
-- the work, and the example prints how long its slowest answer took.
-- Then the hashes are checked against sha256sum when it is installed.
--
-- One file plays both parts: run by neap it is the main script; each
-- thread runs it again (neap.thread(arg[0])), where neap.parent is set.
--   neap examples/thread_pool.lua [files...]   (no files: it makes some)
local neap = require "neap"

-- ====================================================== SHA-256, plain Lua 5.4

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local M = 0xffffffff

local function rotr(x, n) return ((x >> n) | (x << (32 - n))) & M end

local function sha256(msg)
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 1, 16 do w[i] = string.unpack(">I4", msg, chunk + (i - 1) * 4) end
    for i = 17, 64 do
      local a, b = w[i - 15], w[i - 2]
      local s0 = rotr(a, 7) ~ rotr(a, 18) ~ (a >> 3)
      local s1 = rotr(b, 17) ~ rotr(b, 19) ~ (b >> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 1, 64 do
      local S1 = rotr(e, 6) ~ rotr(e, 11) ~ rotr(e, 25)
      local ch = (e & f) ~ (~e & g)
      local t1 = (h + S1 + ch + K[i] + w[i]) & M
      local S0 = rotr(a, 2) ~ rotr(a, 13) ~ rotr(a, 22)
      local maj = (a & b) ~ (a & c) ~ (b & c)
      local t2 = (S0 + maj) & M
      h, g, f, e, d, c, b, a = g, f, e, (d + t1) & M, c, b, a, (t1 + t2) & M
    end
    h0, h1, h2, h3 = (h0 + a) & M, (h1 + b) & M, (h2 + c) & M, (h3 + d) & M
    h4, h5, h6, h7 = (h4 + e) & M, (h5 + f) & M, (h6 + g) & M, (h7 + h) & M
  end
  return string.format("%08x%08x%08x%08x%08x%08x%08x%08x", h0, h1, h2, h3, h4, h5, h6, h7)
end

-- ====================================================== a worker thread

if neap.parent then
  -- jobs come one at a time: a path, or false to stop; each gets a reply
  while true do
    local path = neap.parent:receive()
    if not path then break end
    local f, err = io.open(path, "rb")
    if f then
      local data = f:read("a")
      f:close()
      neap.parent:send({ path = path, sha256 = sha256(data), size = #data })
    else
      neap.parent:send({ path = path, err = err })
    end
  end
  return
end

-- ====================================================== the main loop

local files, made = { select(1, ...) }, nil
if #files == 0 then   -- 12 files of 16 to 104 KiB of made-up bytes
  made = assert(neap.mkdtemp("/tmp/neap-pool-XXXXXX"))
  for i = 1, 12 do
    local path = made .. "/file" .. i
    local f = assert(io.open(path, "wb"))
    local parts = {}
    for j = 1, (8 + i * 8) * 1024 // 16 do parts[j] = string.format("%015d\n", i * 1000003 + j * 7) end
    f:write(table.concat(parts))
    f:close()
    files[i] = path
  end
end

-- the main loop's own work: an echo server and a client timing its answers
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(function(c) for line in c:lines() do c:write(line, "\n") end end)
local hashing, echoes, slowest = true, 0, 0
local pinger = neap.task(function()
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  while hashing do
    local t0 = neap.now()
    c:write("ping\n")
    assert(c:read_line { timeout = 5 } == "ping")
    slowest = math.max(slowest, neap.now() - t0)
    echoes = echoes + 1
    neap.sleep(0.005)
  end
  c:close()
end)

-- the pool: 4 threads, each fed the next path of the queue once it replies
local queue = neap.queue()
for _, path in ipairs(files) do queue:put(path) end
local results, t0 = {}, neap.now()
local feeders = {}
for i = 1, 4 do
  local t = neap.thread(arg and arg[0] or "thread_pool.lua")
  feeders[i] = neap.task(function()
    while queue:count() > 0 do
      t:send(queue:get())
      local r = assert(t:receive { timeout = 60 })
      r.thread = i
      results[#results + 1] = r
    end
    t:send(false)   -- stop
    assert(t:join { timeout = 60 })
  end)
end
for i = 1, 4 do assert(feeders[i]:join()) end
local elapsed = neap.now() - t0
hashing = false
pinger:join()
srv:close()

table.sort(results, function(a, b) return a.path < b.path end)
local bytes, used = 0, {}
for _, r in ipairs(results) do
  if r.err then print(r.path .. ": " .. r.err) else
    bytes = bytes + r.size
    used[r.thread] = true
    print(string.format("%s  %s (thread %d)", r.sha256, r.path:match("[^/]+$"), r.thread))
  end
end
local nused = 0
for _ in pairs(used) do nused = nused + 1 end
print(string.format("%d files, %d KiB hashed in %.2f s by %d threads; meanwhile the loop " ..
  "answered %d echoes, the slowest in %.1f ms", #results, bytes // 1024, elapsed, nused, echoes, slowest * 1000))

-- check against sha256sum, if it is there
local argv = { "sha256sum" }
for _, r in ipairs(results) do if not r.err then argv[#argv + 1] = r.path end end
argv.stdout = "pipe"
local p = neap.spawn(argv)
if p then
  local out = p:communicate()
  local bad = 0
  for _, r in ipairs(results) do
    if not r.err and not out:find(r.sha256 .. "  " .. r.path, 1, true) then bad = bad + 1 end
  end
  print(bad == 0 and "all hashes match sha256sum" or (bad .. " hashes differ from sha256sum"))
  if bad > 0 then os.exit(1) end
end
if made then
  for _, path in ipairs(files) do os.remove(path) end
  neap.rmdir(made)
end
