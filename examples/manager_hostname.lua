-- neap.manager, ioman's second example: run `hostname`, report its output
-- and its death.
local manager = require "neap.manager"

local m = manager.new()
local proc = assert(m:make_child_proc { "hostname" })
proc.r_channels[1]:set_expected { "\n" }

local open = 2   -- stdout and stderr
local dead = false
while open > 0 or not dead do
  local ch, ev = m:next_event { timeout = 10 }
  if ev.type == "timeout" then error("hostname did not finish") end
  if ch == proc.r_channels[1] or ch == proc.r_channels[2] then
    if ev.data ~= "" then io.write(ch == proc.r_channels[1] and "output: " or "error: ", ev.data) end
    if ev.status ~= "ok" then open = open - 1 end
  elseif ch == m.child_channel then
    for _, p in ipairs(ev.processes) do
      print(("process %d exited: code %s, signal %s"):format(p.pid, tostring(p.code), tostring(p.signal)))
    end
    dead = true
  end
end
