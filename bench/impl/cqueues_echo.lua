-- cqueues line echo server (lua5.4 + cqueues, coroutines): lua5.4 cqueues_echo.lua PORT
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local cq = cqueues.new()
local srv = socket.listen("127.0.0.1", tonumber(arg[1]))
cq:wrap(function()
  for con in srv:clients() do
    cq:wrap(function()
      con:setmode("b", "b")
      for line in con:lines() do con:write(line, "\n") end
      con:close()
    end)
  end
end)
assert(cq:loop())
