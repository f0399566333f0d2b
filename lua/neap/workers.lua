--- neap.workers: the supervisor of `neap --workers N script.lua` (internal;
-- src/main.c runs it, docs/binary.md and docs/scaling.md describe it).
-- It starts N copies of the neap binary running the script, each with
-- NEAP_WORKER=<id>/<count>/<supervisor pid> in its environment (main.c turns
-- it into neap.worker and removes it), restarts a worker that dies (with a
-- back-off when it dies young), passes TERM and INT on to every worker, and
-- returns when all have ended. It holds no socket and runs no user code.
local neap = require "neap"

local workers = {}

local YOUNG = 1.0       -- a worker that dies sooner than this after its start is "young"
local FIRST_DELAY = 0.1 -- the back-off after the first young death, doubled after each next
local MAX_DELAY = 1.0   -- ... up to this: a crash loop restarts at most once a second

local function log(...)
  -- one write: stderr is unbuffered, and a line written in pieces can be
  -- split by a worker's output to the same descriptor
  io.stderr:write("neap: " .. table.concat({ ... }) .. "\n")
end

local function describe_end(code, sig)
  if code then return "exited with status " .. code end
  return "was killed by signal " .. tostring(sig)
end

--- workers.supervise{exe=, argv={...}, count=} -> exit status: argv is the
-- worker's command line after the program (the script, its arguments and
-- the options other than --workers).
function workers.supervise(c)
  local count, me = c.count, neap.pid()
  local live = {}          -- id -> process of the running worker
  local stopping = nil     -- the signal passed on, once TERM or INT came
  local clean = true       -- every worker's last end was clean
  local stopped = neap.queue()
  local slots = {}

  local function stop(name)
    -- The first TERM or INT is passed on; a second one (the workers did not
    -- stop) kills them, so the supervisor always ends.
    local sig = name
    if stopping then sig = "KILL" else stopping = name end
    for _, p in pairs(live) do p:kill(sig) end
    for _, s in pairs(slots) do
      if s.sleeping then s.task:cancel() end   -- a restart not yet made is not made
    end
  end
  local watchers = {
    neap.signal("TERM", function(name) stop(name) end),
    neap.signal("INT", function(name) stop(name) end),
  }

  -- One task per worker id: start it, wait for its end, restart it.
  local function slot(id)
    local s = slots[id]
    local young, last_clean = 0, true
    while not stopping do
      local argv = { c.exe, table.unpack(c.argv) }
      argv.stdin, argv.stdout, argv.stderr = "inherit", "inherit", "inherit"
      argv.env = { inherit = true, NEAP_WORKER = id .. "/" .. count .. "/" .. me }
      local started = neap.now()
      local p, err = neap.spawn(argv)
      local code, sig, what
      if p then
        live[id] = p
        if stopping then p:kill(stopping) end   -- TERM came while it started
        code, sig = p:wait()
        live[id] = nil
        what = "(pid " .. p.pid .. ") " .. describe_end(code, sig)
        p:close()
      else
        code, what = 127, "could not start: " .. tostring(err)
      end
      local cleanend = code == 0 or (stopping ~= nil and sig == stopping)
      last_clean = cleanend
      if stopping or (p and code == 0) then
        if not stopping or not cleanend then log("worker ", id, " ", what) end
        break                    -- stopped, or its script ended by itself: not restarted
      end
      if neap.now() - started < YOUNG then young = young + 1 else young = 0 end
      local delay = young > 0 and math.min(MAX_DELAY, FIRST_DELAY * 2 ^ (young - 1)) or 0
      log("worker ", id, " ", what,
          delay > 0 and string.format("; restarting in %.1f s", delay) or "; restarting")
      if delay > 0 then
        s.sleeping = true
        local ok = pcall(neap.sleep, delay)
        s.sleeping = false
        if not ok then break end  -- cancelled by stop()
      end
    end
    if not last_clean then clean = false end
    stopped:put(id)
  end

  for id = 1, count do
    slots[id] = {}
    slots[id].task = neap.task("worker " .. id, slot, id)
  end
  for _ = 1, count do stopped:get() end
  for _, w in ipairs(watchers) do w:stop() end
  return clean and 0 or 1
end

return workers
