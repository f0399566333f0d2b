-- Issue 16, bars 3 and 4: a 64-byte echoed line makes and frees two Lua
-- strings, a key-value request three to five small objects, and Lua frees
-- them in bursts (a collection step sweeps hundreds) while it allocates
-- them one at a time; glibc's per-thread cache keeps 7 blocks of a size, so
-- most of them went through its arenas (about 600 of the 2,900 instructions
-- of an echoed line). The state the neap binary (and neap_new) makes now
-- allocates through the host: a freed block of at most 256 bytes waits in a
-- list of its size class, up to a bound, for the next allocation of that
-- class. The lists are emptied when the host goes idle and at teardown.
-- Under AddressSanitizer (make asan) nothing is kept: the bound is 0.
local helpers = require "helpers"

local function script(body)
  local path = helpers.tmpfile("local neap = require 'neap'\nlocal core = require 'neap.core'\n" .. body)
  local out, rc = helpers.sh(helpers.NEAP .. " " .. path .. " 2>&1")
  os.remove(path)
  return out, rc
end

describe("16-16 Lua's allocator", function()
  it("small blocks a collection frees are reused, within the bound (a fresh process)", function()
    local out, rc = script([[
local cached0, hits0, misses0, cap = core._lalloc()
assert(cap >= 0 and cached0 <= cap)
local t = {}
for i = 1, 20000 do t[i] = "a string of some length " .. i end
t = nil
collectgarbage()
local cached1 = core._lalloc()
assert(cached1 <= cap, "over the bound")
if cap > 0 then assert(cached1 > 0, "nothing kept") end
local u = {}
for i = 1, 20000 do u[i] = "another string, this long " .. i end
local cached2, hits2, misses2 = core._lalloc()
if cap > 0 then
  assert(hits2 - hits0 >= 10000, "few blocks reused: " .. (hits2 - hits0))
  assert(cached2 < cached1, "the lists did not shrink")
else
  assert(hits2 == hits0 and cached2 == 0)
end
assert(misses2 > misses0)
for i = 1, 20000 do assert(u[i] == "another string, this long " .. i) end
print("ok")
]])
    assert.equal(0, rc, out)
    assert.equal("ok\n", out)
  end)

  it("keeps every byte through resizes across the size classes and the 256-byte edge", function()
    local out, rc = script([[
math.randomseed(16)
local live = {}
for round = 1, 200 do
  -- tables grow through every class and past 256 bytes, then shrink by rehash
  local t = {}
  local n = math.random(1, 80)
  for i = 1, n do t[i] = i * round end
  for i = n, 1, -1 do if i % 3 ~= 0 then t[i] = nil end end
  t.key = round
  for k in pairs(t) do if k ~= "key" then t[k] = nil end end
  t.more1, t.more2 = 1, 2
  collectgarbage("step")
  assert(t.key == round and t.more1 == 1 and t.more2 == 2)
  local parts = {}
  for i = 1, math.random(1, 40) do parts[i] = string.rep(string.char(65 + i % 26), math.random(0, 300)) end
  local s = table.concat(parts)
  live[#live + 1] = { s = s, n = #s, sum = select(2, s:gsub("A", "")) }
  if #live > 50 then table.remove(live, 1) end
end
for _, v in ipairs(live) do
  assert(#v.s == v.n and select(2, v.s:gsub("A", "")) == v.sum)
end
collectgarbage()
print("ok")
]])
    assert.equal(0, rc, out)
    assert.equal("ok\n", out)
  end)

  it("the idle collection empties the lists (a fresh process)", function()
    local out, rc = script([[
local t = {}
for i = 1, 20000 do t[i] = {i} end
t = nil
collectgarbage()
local busy = core._lalloc()
neap.sleep(0.8)   -- no task runs: the idle collection comes after 250-500 ms
local idle = core._lalloc()
-- (0, but for what the wake-up itself frees: under NEAP_GC_STRESS, make
-- gcstress, a full collection at the switch back to this task puts the
-- sleep's own garbage, about 80 B, in the lists; without the give-back
-- the lists stay near their bound)
print(select(4, core._lalloc()) == 0 or busy > 65536, idle <= 1024 and "emptied" or idle,
  select(4, core._gc_mode()) >= 1)
]])
    assert.equal(0, rc, out)
    assert.equal("true\temptied\ttrue\n", out)
  end)

  it("keeps no block while the collector is incremental (thousands of tasks), and again after (a fresh process)", function()
    local out, rc = script([[
local cap = select(4, core._lalloc())
local function garbage()
  local t = {}
  for i = 1, 5000 do t[i] = "some garbage " .. i end
  t = nil
  collectgarbage("step", 0)
  collectgarbage()
end
local ts = {}
for i = 1, 4100 do ts[i] = neap.task(function() neap.sleep(30) end) end
neap.sleep(0.05)   -- a loop turn: the host switches to the incremental pace
local mode = core._gc_mode()
garbage()
local during = core._lalloc()
for i = 1, #ts do ts[i]:cancel() end
ts = nil
neap.sleep(0.1)
collectgarbage()
neap.sleep(1.2)    -- back to generational: 1 s after the switch, few tasks
local mode2 = core._gc_mode()
garbage()
local after = core._lalloc()
print(mode, during, mode2, cap == 0 or after > 0)
]])
    assert.equal(0, rc, out)
    assert.equal("incremental\t0\tgenerational\ttrue\n", out)
  end)

  it("warnings stay off until '@on', as under the stand-alone lua", function()
    local out, rc = script([[
warn("hidden")
warn("@on")
warn("first ", "in two parts")
warn("second")
warn("@off")
warn("hidden too")
]])
    assert.equal(0, rc, out)
    assert.equal("Lua warning: first in two parts\nLua warning: second\n", out)
  end)

  it("is the neap binary's only: under a stock lua5.4 _lalloc gives nil", function()
    local out = helpers.sh(helpers.LUA54 .. [[ -e 'local c = require "neap.core"; require "neap"; io.write(tostring(c._lalloc()))' 2>&1]])
    assert.equal("nil", out)
  end)
end)
