-- A line chat server: each line a client sends goes to every other client.
-- The first line a client sends is its name.
--
-- A task per client reads its lines; one broadcaster task writes every
-- message to every member. A client may vanish at any time (mid-line, or
-- with a reset): its reader then closes its stream, maybe while the
-- broadcaster is writing to it. That write returns nil, "closed", "ECLOSED"
-- (an I/O outcome, not an error), and the broadcast goes on. A line cut off
-- by the client's going is dropped.
--
--   neap examples/chat.lua PORT   serves on 127.0.0.1:PORT until stopped
--   neap examples/chat.lua        runs three clients through it and exits
local neap = require "neap"

local members = {}               -- stream -> name
local outbox = neap.queue(1000)  -- { from = stream, text = line }

local function post(from, text) outbox:put { from = from, text = text } end

-- The broadcaster: a slow client holds it up for at most write_timeout.
local broadcaster = neap.task(function()
  while true do
    local msg = outbox:get()
    local targets = {}   -- (a write may park; members may change meanwhile)
    for s in pairs(members) do
      if s ~= msg.from then targets[#targets + 1] = s end
    end
    for _, s in ipairs(targets) do
      local ok, _, code = s:write(msg.text, "\n")
      -- "ECLOSED": its reader closed it; anything else (a reset, a
      -- timeout): close it here, which ends its reader
      if not ok and code ~= "ECLOSED" then s:close() end
    end
  end
end)

local function client(c)
  c:set_limits { write_timeout = 5 }
  local name = c:read_line { timeout = 30 }
  if not name or name == "" then return end   -- (serve closes c)
  members[c] = name
  post(c, name .. " joined")
  while true do
    local line = c:read_line { keep = true }
    if not line then break end                      -- the end, a reset, or closed
    if line:sub(-1) ~= "\n" then break end         -- cut off mid-line: dropped
    post(c, name .. ": " .. line:gsub("\r?\n$", ""))
  end
  members[c] = nil
  c:close()   -- the broadcaster may be writing to c right now: it gets "ECLOSED"
  post(nil, name .. " left")
end

local port = tonumber(arg[1])
local srv = assert(neap.listen("tcp", "127.0.0.1", port or 0))
srv:serve(client)
if port then
  print("chat on 127.0.0.1:" .. select(2, srv:address()))
  return
end

-- The demonstration: alice listens, bob talks, carol vanishes mid-line.
local _, p = srv:address()
local function join(name)
  local c = assert(neap.connect("tcp", "127.0.0.1", p, { timeout = 5 }))
  assert(c:write(name, "\n"))
  return c
end
local alice = join("alice")
local function hear() return assert(alice:read_line { timeout = 5 }) end
local bob = join("bob")
print("alice heard: " .. hear())   --> bob joined
local carol = join("carol")
print("alice heard: " .. hear())   --> carol joined
carol:write("half a li")
carol:close()
print("alice heard: " .. hear())   --> carol left
bob:write("hi alice\n")
print("alice heard: " .. hear())   --> bob: hi alice
alice:close()
bob:close()
srv:close()
broadcaster:cancel()
