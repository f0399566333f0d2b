-- Runs `hostname` as a child process: prints its output line by line, then
-- its exit status, and checks the name against `uname -n`.
--   neap examples/hostname.lua
local neap = require "neap"

local p = assert(neap.spawn { "hostname" })
local lines = {}
for line in p.stdout:lines { timeout = 10 } do
  print("output: " .. line)
  lines[#lines + 1] = line
end
local err = p.stderr:read_all { timeout = 10 }
if err ~= "" then io.write("error: ", err) end
local code, signal = p:wait { timeout = 10 }
p:close()
print(("exit status: %s"):format(signal and ("signal " .. signal) or tostring(code)))

-- the same name through another program, with communicate()
local u = assert(neap.spawn { "uname", "-n" })
local name, _, ucode = u:communicate(nil, { timeout = 10 })
u:close()
if code ~= 0 or #lines ~= 1 or ucode ~= 0 or lines[1] ~= name:gsub("\n$", "") then
  io.stderr:write("hostname: unexpected result\n")
  os.exit(1)
end
