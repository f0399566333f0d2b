-- Counts the lines of a file that hold a word, with a pipeline:
--   cat FILE | grep -F WORD | wc -l
--   neap examples/pipe_grep.lua [file [word]]
-- With no file it reads its own source; the word defaults to "neap".
-- It prints the count, and checks it against a count made in Lua.
local neap = require "neap"

local file = arg[1] or arg[0]
local word = arg[2] or "neap"

local pl = assert(neap.pipeline({ "cat", file }, { "grep", "-F", "--", word }, { "wc", "-l" }))
local out = assert(pl:read_all { timeout = 30 })
local errs = pl.stages[1].stderr:read_all { timeout = 5 }
local status = assert(pl:wait { timeout = 10 })
for _, p in ipairs(pl.stages) do p:close() end

-- cat must succeed; grep exits 1 when no line matches, 2 on trouble
if status[1].code ~= 0 then
  io.stderr:write("pipe_grep: cat failed: ", errs)
  os.exit(1)
end
if status[2].code ~= 0 and status[2].code ~= 1 then
  io.stderr:write("pipe_grep: grep failed\n")
  os.exit(1)
end
local count = tonumber(out:match("%d+"))
print(count)

-- the same count, made in Lua
local expected = 0
for line in io.lines(file) do
  if line:find(word, 1, true) then expected = expected + 1 end
end
if count ~= expected then
  io.stderr:write(("pipe_grep: the pipeline counted %s, Lua counted %d\n"):format(tostring(count), expected))
  os.exit(1)
end
