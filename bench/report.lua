-- Turns the raw results of bench/run.sh into one table per benchmark:
--   lua5.4 bench/report.lua RAW_FILE
-- RAW_FILE has one line per run, tab-separated:
--   bench  impl  rep  status  rest
-- status "ok": rest is the program's "key=value ..." line;
-- status "fail" or "skip": rest is the reason.
-- Each cell is the median over the runs that succeeded; "vs C" divides the
-- main column's median by that of the hand-written C program on libuv.

local raw = assert(arg[1], "usage: lua5.4 report.lua RAW_FILE")

-- The implementations, in the order of the tables.
local IMPLS = { "c", "neap", "neap-null", "neap-1m", "neap-on", "lua", "luv", "cqueues", "node", "python", "luahttp" }
local LABEL = {
  c = "C (libuv, by hand)", neap = "neap", ["neap-null"] = "neap, stdio=\"null\"",
  ["neap-1m"] = "neap, read(1 << 20)", ["neap-on"] = "neap, s:on(\"line\")",
  lua = "Lua io.lines",
  luv = "luv (lua5.4)", cqueues = "cqueues (lua5.4)", node = "Node.js", python = "Python asyncio",
  luahttp = "lua-http (cqueues, lua5.3)",
}

-- key, header, format, scale
local function col(key, head, fmt, scale) return { key = key, head = head, fmt = fmt, scale = scale or 1 } end
local ECHO_COLS = { col("msgs_per_s", "lines/s", "%.0f"), col("mb_per_s", "MB/s", "%.1f"),
                    col("p50_us", "p50 ms", "%.2f", 1e-3), col("p99_us", "p99 ms", "%.2f", 1e-3),
                    col("srv_cpu", "srv CPU", "%.0f%%", 100), col("per_cpu_s", "lines/CPU-s", "%.0f") }

local TLS_ECHO_COLS = { col("msgs_per_s", "lines/s", "%.0f"), col("mb_per_s", "MB/s", "%.1f"),
                       col("p50_us", "p50 ms", "%.2f", 1e-3), col("p99_us", "p99 ms", "%.2f", 1e-3),
                       col("srv_cpu", "srv CPU", "%.0f%%", 100), col("per_cpu_s", "lines/CPU-s", "%.0f") }
local HS_COLS = { col("per_cpu_s", "handshakes/CPU-s", "%.0f"), col("hs_per_s", "handshakes/s", "%.0f"),
                  col("srv_cpu", "srv CPU", "%.0f%%", 100), col("p50_us", "p50 ms", "%.2f", 1e-3),
                  col("p99_us", "p99 ms", "%.2f", 1e-3), col("resumed", "resumed", "%.0f") }

local WS_COLS = { col("msgs_per_s", "msgs/s", "%.0f"), col("mb_per_s", "MB/s", "%.1f"),
                 col("p50_us", "p50 ms", "%.2f", 1e-3), col("p99_us", "p99 ms", "%.2f", 1e-3),
                 col("srv_cpu", "srv CPU", "%.0f%%", 100), col("srv_wait", "srv wait", "%.0f%%", 100),
                 col("per_cpu_s", "msgs/CPU-s", "%.0f") }
local HTTP_COLS = { col("rps", "req/s", "%.0f"), col("p50_us", "p50 ms", "%.2f", 1e-3),
                    col("p99_us", "p99 ms", "%.2f", 1e-3), col("srv_cpu", "srv CPU", "%.0f%%", 100),
                    col("per_cpu_s", "req/CPU-s", "%.0f") }

local BENCHES = {
  { id = "echo64", title = "1a. TCP line echo, pipelined: 50 connections x 100 lines in flight, 64-byte lines",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "echo64d16", title = "1a'. TCP line echo, pipelined: 50 connections x 16 lines in flight, 64-byte lines",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "echo4k", title = "1b. TCP line echo, pipelined: 50 connections x 100 lines in flight, 4 KiB lines (bound by the kernel's loopback copies)",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "echo4k10", title = "1b'. TCP line echo, pipelined: 10 connections x 8 lines in flight, 4 KiB lines",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "kv", title = "14. Key-value requests, pipelined: 50 connections x 16 in flight, SET and GET alternating (replies of 3 and 11 bytes)",
    cols = { col("msgs_per_s", "requests/s", "%.0f"), col("p50_us", "p50 ms", "%.2f", 1e-3),
             col("p99_us", "p99 ms", "%.2f", 1e-3), col("srv_cpu", "srv CPU", "%.0f%%", 100),
             col("per_cpu_s", "requests/CPU-s", "%.0f") },
    main = "msgs_per_s", higher = true, vs_node = true },
  { id = "rr1", title = "2a. TCP request/response: 1 connection, 1 line (64 B) in flight",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "rr100", title = "2b. TCP request/response: 100 connections, 1 line (64 B) in flight each",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true },
  { id = "churn", title = "3. Connection churn: connect, one 64-byte line echoed, close (50 clients at once)",
    cols = { col("conns_per_s", "conns/s", "%.0f"), col("p50_us", "p50 ms", "%.2f", 1e-3),
             col("p99_us", "p99 ms", "%.2f", 1e-3) }, main = "conns_per_s", higher = true },
  { id = "spawn", title = "4a. Child processes: /bin/true, 50 in flight",
    cols = { col("spawns_per_s", "spawns/s", "%.0f"), col("spawns", "spawns", "%.0f") },
    main = "spawns_per_s", higher = true },
  { id = "spawn1g", title = "4b. Child processes from a parent holding much memory (size in the notes): /bin/true, 50 in flight",
    cols = { col("spawns_per_s", "spawns/s", "%.1f"), col("spawns", "spawns", "%.0f") },
    main = "spawns_per_s", higher = true, base = "spawn", base_head = "vs 4a" },
  { id = "pipe200", title = "5'. Pipe throughput: 200 MB through `cat` and back, every byte checked (neap's reader: read(65536) or read(1 << 20))",
    cols = { col("mb_per_s", "MB/s", "%.1f"), col("bytes", "MiB", "%.0f", 1 / 1048576), col("secs", "s", "%.2f") },
    main = "mb_per_s", higher = true },
  { id = "pipe", title = "5. Pipe throughput: bytes through `cat` and back, every byte checked (neap's reader: read(65536) or read(1 << 20))",
    cols = { col("mb_per_s", "MB/s", "%.1f"), col("bytes", "MiB", "%.0f", 1 / 1048576), col("secs", "s", "%.2f") },
    main = "mb_per_s", higher = true },
  { id = "lines", title = "6. Line framing: mixed-length lines from a pipe (stdin), counted",
    cols = { col("lines_per_s", "lines/s", "%.0f"), col("mb_per_s", "MB/s", "%.1f"), col("secs", "s", "%.2f") },
    main = "lines_per_s", higher = true },
  { id = "idle", title = "7. Idle connections: server RSS growth per connection, each parked on a line read",
    cols = { col("bytes_per_conn", "bytes/conn", "%.0f"), col("rss_before_mib", "RSS before MiB", "%.1f"),
             col("rss_after_mib", "RSS after MiB", "%.1f"), col("conns", "conns", "%.0f") },
    main = "bytes_per_conn", higher = false },
  { id = "tlsecho4k", title = "9a. TLS line echo, pipelined: 50 connections x 100 lines in flight, 4 KiB lines",
    cols = TLS_ECHO_COLS, main = "msgs_per_s", higher = true, vs_node = true },
  { id = "tlsecho64", title = "9b. TLS line echo, pipelined: 50 connections x 100 lines in flight, 64-byte lines",
    cols = TLS_ECHO_COLS, main = "msgs_per_s", higher = true, vs_node = true },
  { id = "tlshs", title = "9c. TLS handshakes, new sessions: connect, full handshake, one 64-byte line echoed, close (50 at once)",
    cols = HS_COLS, main = "per_cpu_s", higher = true, vs_node = true },
  { id = "tlsresume", title = "9d. TLS handshakes, resumed sessions (session tickets): the same, every connection resuming one session",
    cols = HS_COLS, main = "per_cpu_s", higher = true, vs_node = true },
  { id = "wsecho64", title = "10a. WebSocket echo: 50 connections x 100 text messages in flight, 64 bytes (Node.js: the ws package)",
    cols = WS_COLS, main = "msgs_per_s", higher = true, vs_node = true },
  { id = "wsecho16k", title = "10b. WebSocket echo: 50 connections x 10 text messages in flight, 16 KiB (Node.js: the ws package)",
    cols = WS_COLS, main = "msgs_per_s", higher = true, vs_node = true },
  { id = "wecho", title = "11a. neap --workers N, TCP request/response: 100 connections, 1 line (64 B) in flight each (one loadgen thread)",
    cols = ECHO_COLS, main = "msgs_per_s", higher = true, workers = true },
  { id = "whttp", title = "11b. neap --workers N, HTTP hello world: wrk, 100 connections, GET /",
    cols = { col("reqs_per_s", "requests/s", "%.0f"), col("p50_us", "p50 ms", "%.2f", 1e-3),
             col("p99_us", "p99 ms", "%.2f", 1e-3), col("srv_cpu", "srv CPUs", "%.2f"),
             col("per_cpu_s", "requests/CPU-s", "%.0f") }, main = "reqs_per_s", higher = true, workers = true },
  { id = "threads", title = "12. Threads: messages between the main thread and one thread with its own Lua state and loop (neap.thread; luv's uv.new_thread with an async handle each way)",
    cols = { col("rt_per_s", "round trips/s", "%.0f"), col("rt_p50_us", "rt p50 us", "%.1f"),
             col("rt_p99_us", "rt p99 us", "%.1f"), col("msgs_per_s", "msgs/s one way", "%.0f"),
             col("start_ms", "start ms", "%.2f") },
    main = "rt_per_s", higher = true, vs_luv = true },
  { id = "http_hello", title = "13a. HTTP hello world: wrk, 50 keep-alive connections",
    cols = HTTP_COLS, main = "rps", higher = true, vs_node = true, also = "per_cpu_s" },
  { id = "http_json", title = "13b. HTTP, a 4 KiB JSON-ish response: wrk, 50 keep-alive connections",
    cols = HTTP_COLS, main = "rps", higher = true, vs_node = true, also = "per_cpu_s" },
  { id = "http_file", title = "13c. HTTP, a 1 MiB file read from disk on every request: wrk, 50 keep-alive connections",
    cols = HTTP_COLS, main = "rps", higher = true, vs_node = true, also = "per_cpu_s" },
  { id = "https_hello", title = "13d. HTTPS hello world (TLS 1.3): wrk, 50 keep-alive connections",
    cols = HTTP_COLS, main = "rps", higher = true, vs_node = true, also = "per_cpu_s" },
  { id = "timers", title = "8. Timers: concurrent sleeps of random length; lateness of each wake-up",
    cols = { col("total_s", "total s", "%.3f"), col("setup_s", "setup s", "%.3f"),
             col("late_p50_ms", "late p50 ms", "%.2f"), col("late_p99_ms", "late p99 ms", "%.2f"),
             col("late_min_ms", "late min ms", "%.2f"), col("late_max_ms", "late max ms", "%.2f") },
    main = "total_s", higher = false },
  { id = "tasks", title = "15. Parked tasks (neap.sleep(3600)) while one task makes garbage every 10 ms: wake-up lag",
    cols = { col("lag_p50_ms", "lag p50 ms", "%.2f"), col("lag_p99_ms", "lag p99 ms", "%.2f"),
             col("lag_max_ms", "lag max ms", "%.2f"), col("own_max_ms", "own max ms", "%.2f"),
             col("probe_p99_ms", "1 ms probe p99", "%.2f"), col("probe_max_ms", "probe max", "%.2f"),
             col("probe_own_max_ms", "probe own max", "%.2f"), col("heap_per_task_b", "heap B/task", "%.0f"),
             col("gc_cycles", "gc cycles", "%.0f") },
    main = "lag_p99_ms", higher = false },
}

-- runs[bench][impl] = { ok = { {key=value}, ... }, fail = { reason, ... }, skip = reason }
local runs, notes = {}, {}
for line in io.lines(raw) do
  local bench, impl, _, status, rest = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
  if bench == "note" then
    notes[#notes + 1] = rest
  elseif bench then
    runs[bench] = runs[bench] or {}
    local r = runs[bench][impl] or { ok = {}, fail = {} }
    runs[bench][impl] = r
    if status == "ok" then
      local kv = {}
      for k, v in rest:gmatch("([%w_]+)=(%S+)") do kv[k] = tonumber(v) or v end
      r.ok[#r.ok + 1] = kv
    elseif status == "skip" then
      r.skip = rest
    else
      r.fail[#r.fail + 1] = rest
    end
  end
end

local function median(list)
  table.sort(list)
  local n = #list
  if n == 0 then return nil end
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

local function values(r, key)
  local v = {}
  for _, kv in ipairs(r.ok) do if type(kv[key]) == "number" then v[#v + 1] = kv[key] end end
  return v
end

local function pad(s, w, left)
  s = tostring(s)
  local n = utf8.len(s) or #s
  if n >= w then return s end
  return left and s .. string.rep(" ", w - n) or string.rep(" ", w - n) .. s
end

local out = {}
local function emit(s) out[#out + 1] = s end

for _, b in ipairs(BENCHES) do
  local br = runs[b.id]
  if br then
    emit("")
    emit(b.title)
    local head = { "implementation" }
    for _, c in ipairs(b.cols) do head[#head + 1] = c.head end
    head[#head + 1] = b.workers and "vs 1 worker" or "vs C"
    if b.vs_node then head[#head + 1] = "vs Node" end
    if b.vs_luv then head[#head + 1] = "vs luv" end
    if b.also then head[#head + 1] = "CPU vs Node" end
    if b.base then head[#head + 1] = b.base_head end
    head[#head + 1] = "runs"
    head[#head + 1] = "spread"
    local rows = { head }
    local cmed
    if br.c and #br.c.ok > 0 then cmed = median(values(br.c, b.main)) end
    local impls = IMPLS
    if b.workers then   -- columns w1, w2, ...: neap --workers N, compared with N = 1
      impls = {}
      for impl in pairs(br) do impls[#impls + 1] = impl end
      table.sort(impls, function(x, y) return tonumber(x:match("%d+")) < tonumber(y:match("%d+")) end)
      cmed = br.w1 and #br.w1.ok > 0 and median(values(br.w1, b.main)) or nil
    end
    local nmed
    if br.node and #br.node.ok > 0 then nmed = median(values(br.node, b.main)) end
    local lmed
    if br.luv and #br.luv.ok > 0 then lmed = median(values(br.luv, b.main)) end
    local nmed, named
    if br.node and #br.node.ok > 0 then nmed = median(values(br.node, b.main)) end
    if b.also and br.node and #br.node.ok > 0 then named = median(values(br.node, b.also)) end
    local extra = {}
    for _, impl in ipairs(impls) do
      local r = br[impl]
      if r then
        local row = { LABEL[impl] or (b.workers and impl:gsub("^w(%d+)$", "neap --workers %1")) or impl }
        if r.skip then
          extra[#extra + 1] = string.format("  %s: skipped: %s", LABEL[impl] or impl, r.skip)
        elseif #r.ok == 0 then
          extra[#extra + 1] = string.format("  %s: FAILED: %s", LABEL[impl] or impl, r.fail[1] or "?")
        else
          for _, c in ipairs(b.cols) do
            local m = median(values(r, c.key))
            row[#row + 1] = m and string.format(c.fmt, m * c.scale) or "-"
          end
          local m = median(values(r, b.main))
          row[#row + 1] = (m and cmed and cmed ~= 0) and string.format("%.2fx", m / cmed) or "-"
          if b.vs_node then
            row[#row + 1] = (m and nmed and nmed ~= 0) and string.format("%.2fx", m / nmed) or "-"
          end
          if b.vs_luv then
            row[#row + 1] = (m and lmed and lmed ~= 0) and string.format("%.2fx", m / lmed) or "-"
          end
          if b.also then
            local a = median(values(r, b.also))
            row[#row + 1] = (a and named and named ~= 0) and string.format("%.2fx", a / named) or "-"
          end
          if b.base then
            local base = runs[b.base] and runs[b.base][impl]
            local bm = base and #base.ok > 0 and median(values(base, b.main))
            row[#row + 1] = (m and bm and bm ~= 0) and string.format("%.3fx", m / bm) or "-"
          end
          row[#row + 1] = string.format("%d/%d", #r.ok, #r.ok + #r.fail)
          local v = values(r, b.main)
          table.sort(v)
          row[#row + 1] = (#v > 1 and m ~= 0) and string.format("%.0f%%", (v[#v] - v[1]) / math.abs(m) * 100) or "-"
          rows[#rows + 1] = row
          if #r.fail > 0 then
            extra[#extra + 1] = string.format("  %s: %d run(s) failed: %s", LABEL[impl] or impl, #r.fail, r.fail[1])
          end
        end
      end
    end
    local widths = {}
    for _, row in ipairs(rows) do
      for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell) end
    end
    for ri, row in ipairs(rows) do
      local cells = {}
      for i = 1, #head do cells[i] = pad(row[i] or "", widths[i], i == 1) end
      emit("  " .. table.concat(cells, "  "))
      if ri == 1 then
        local rule = {}
        for i = 1, #head do rule[i] = string.rep("-", widths[i]) end
        emit("  " .. table.concat(rule, "  "))
      end
    end
    emit(string.format("  %s: median %s / %s median (%s is better); spread: (max - min) / median of %s",
      b.workers and "vs 1 worker" or "vs C", b.cols[1].head, b.workers and "--workers 1's" or "C's",
      b.higher and "higher" or "lower", b.cols[1].head))
    if b.vs_node then emit(string.format("  vs Node: median %s / Node's median", b.cols[1].head)) end
    if b.vs_luv then emit(string.format("  vs luv: median %s / luv's median", b.cols[1].head)) end
    if b.also then emit("  CPU vs Node: median req/CPU-s / Node's median (the server's capacity per CPU)") end
    if b.base then
      emit(string.format("  %s: median %s here / the same implementation's median in %s", b.base_head,
        b.cols[1].head, b.base_head:sub(4)))
    end
    for _, e in ipairs(extra) do emit(e) end
  end
end
if #notes > 0 then
  emit("")
  emit("Notes")
  for _, n in ipairs(notes) do emit("  - " .. n) end
end
print(table.concat(out, "\n"))
