--- neap.queue: FIFO queues between tasks. q:put parks while the queue is
-- full, q:get while it is empty; both take {timeout=}. A value goes straight
-- to a parked getter, and a parked putter's value takes the place a get
-- frees. Users call neap.queue([size]); this file is its owner.
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts = util.argerr, util.checkopts
local error, pcall, setmetatable = error, pcall, setmetatable

local Queue = {}
Queue.__index = Queue

-- Wait lists of parked getters and putters: a FIFO of entries with head and
-- tail indices. An entry leaves in O(1) when its wait ends early (timeout,
-- cancel): its slot becomes a tombstone (false), skipped at the head and
-- compacted away once tombstones outnumber the live entries.
local function wl_new() return { head = 1, tail = 0, live = 0 } end

local function wl_add(l, e)
  l.tail = l.tail + 1
  l[l.tail] = e
  e.at = l.tail
  l.live = l.live + 1
end

local function wl_trim(l)
  while l.head <= l.tail and l[l.head] == false do l[l.head] = nil; l.head = l.head + 1 end
  while l.tail >= l.head and l[l.tail] == false do l[l.tail] = nil; l.tail = l.tail - 1 end
  if l.head > l.tail then l.head, l.tail = 1, 0 end
end

--- removes and returns the first live entry, or nil
local function wl_pop(l)
  if l.live == 0 then return nil end
  wl_trim(l)
  local e = l[l.head]
  l[l.head] = nil
  l.head = l.head + 1
  l.live = l.live - 1
  e.at = nil
  wl_trim(l)
  return e
end

--- takes entry e out of its list (no-op if it already left)
local function wl_remove(l, e)
  local i = e.at
  if not i or l[i] ~= e then return end
  l[i] = false
  e.at = nil
  l.live = l.live - 1
  wl_trim(l)
  local n = l.tail - l.head + 1
  if n > 2 * l.live + 32 then   -- compact: the tombstones go
    local j = 0
    for k = l.head, l.tail do
      local v = l[k]
      l[k] = nil
      if v then j = j + 1; l[j] = v; v.at = j end
    end
    l.head, l.tail = 1, j
  end
end

--- parks the running task as entry e of list l; e leaves l however the wait ends
local function wl_park(l, e, timeout, fname)
  wl_add(l, e)
  local ok, a, b, c = pcall(core.park, timeout, fname)
  if not ok then wl_remove(l, e); error(a, 0) end   -- cancelled
  if a == nil then wl_remove(l, e) end             -- timeout
  return a, b, c
end

--- neap.queue([size]) -> queue: put parks while size items wait.
local function new(size)
  if size ~= nil and (math.type(size) ~= "integer" or size < 1) then
    argerr("queue", 1, "size must be a positive integer")
  end
  return setmetatable({ size = size or math.huge, items = {}, head = 1, tail = 0,
                        getters = wl_new(), putters = wl_new() }, Queue)
end

function Queue:count() return self.tail - self.head + 1 end

local function q_push(q, v) q.tail = q.tail + 1; q.items[q.tail] = v end
local function q_pop(q)
  local v = q.items[q.head]
  q.items[q.head] = nil
  q.head = q.head + 1
  return v
end

--- q:put(v, {timeout=}) -> true | nil, err, code
function Queue:put(v, opts)
  if v == nil then argerr("put", 1, "value must not be nil") end
  opts = checkopts("put", 2, opts)
  while true do
    local e = wl_pop(self.getters)
    if not e then break end
    if core.wake(e.task, v) then return true end
  end
  if self:count() < self.size then q_push(self, v); return true end
  local me = core.current()
  if not me then error("put: the queue is full and a wait must run inside a task", 2) end
  local ok, err, code = wl_park(self.putters, { task = me, value = v }, opts.timeout, "put")
  if not ok then return nil, err, code end
  return true
end

--- q:get({timeout=}) -> value | nil, err, code
function Queue:get(opts)
  opts = checkopts("get", 1, opts)
  if self:count() > 0 then
    local v = q_pop(self)
    while true do   -- a parked putter's value takes the freed place
      local e = wl_pop(self.putters)
      if not e then break end
      if core.wake(e.task, true) then q_push(self, e.value); break end
    end
    return v
  end
  while true do   -- a size-0 style hand-off
    local e = wl_pop(self.putters)
    if not e then break end
    if core.wake(e.task, true) then return e.value end
  end
  local me = core.current()
  if not me then error("get: the queue is empty and a wait must run inside a task", 2) end
  local v, err, code = wl_park(self.getters, { task = me }, opts.timeout, "get")
  if v == nil then return nil, err, code end
  return v
end

return { new = new, Queue = Queue }
