-- neap.manager, ioman's first example: echo standard input line by line
-- until EOF.   printf 'a\nb\n' | neap examples/manager_echo.lua
local manager = require "neap.manager"

local m = manager.new()
local stdin = m:add_read_fd(0)
stdin:set_expected { "\n" }

while true do
  local ch, ev = m:next_event()
  if ch == stdin then
    if ev.data ~= "" then io.write("echo: ", ev.data) end
    if ev.status ~= "ok" then break end
  end
end
print("stdin done")
