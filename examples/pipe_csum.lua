-- A pipeline fed from Lua: 100,000 lines go through gzip, back through
-- gzip -d, and into sha256sum; the checksum must match the known one.
--   neap examples/pipe_csum.lua
-- The bytes move between the stages through OS pipes, not through Lua.
local neap = require "neap"

local EXPECTED = "e8a2d9be2c851246546de4e70abfbb748b62d724a688e1eb8d011174c7b29d80"

local pl = assert(neap.pipeline({ "gzip", "-c" }, { "gzip", "-dc" }, { "sha256sum" }))

-- A writer task feeds the first stage while the main task reads the last.
neap.task(function()
  local batch = {}
  for i = 1, 100000 do
    batch[#batch + 1] = ("line %d: the quick brown fox\n"):format(i)
    if #batch == 1000 then
      assert(pl:write(table.concat(batch)))
      batch = {}
    end
  end
  pl:close()   -- the first stage reads EOF, and so on down the line
end)

local out = assert(pl:read_all { timeout = 30 })
local sum = out:match("^(%x+)")
local status = assert(pl:wait { timeout = 10 })
for i, st in ipairs(status) do
  print(("stage %d (%s): %s"):format(i, table.concat(pl.stages[i].argv, " "),
    st.signal and ("signal " .. st.signal) or ("exit " .. st.code)))
end
print("sha256: " .. tostring(sum))

if sum ~= EXPECTED then
  io.stderr:write("checksum mismatch: expected ", EXPECTED, "\n")
  os.exit(1)
end
for _, st in ipairs(status) do
  if st.code ~= 0 then io.stderr:write("a stage failed\n") os.exit(1) end
end
print("checksum ok")
