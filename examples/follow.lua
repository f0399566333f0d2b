-- follow.lua: `tail -F` done right. Prints a file, then what is added to
-- it, for as long as it runs. A file that shrinks (truncated) is printed
-- again from its beginning; a file that is replaced (another inode at the
-- path: log rotation, an editor's save) is reopened and printed from its
-- beginning; a file that goes away is waited for.
--
--   neap follow.lua FILE
--
-- It watches the file's directory, which sees the file written, created,
-- renamed and removed, and checks the file at least once a second as well
-- (events can be dropped when the watcher's queue is full).
local neap = require "neap"

local path = arg[1]
if not path then
  io.stderr:write("usage: neap follow.lua FILE\n")
  os.exit(2)
end
local dir, base = path:match("^(.*)/([^/]+)$")
if not dir then dir, base = ".", path end
if dir == "" then dir = "/" end

local w = assert(neap.watch(dir))
local f, ino, pos = nil, nil, 0   -- the open file, its inode, what was printed

local function note(msg)
  io.stderr:write("follow: ", path, ": ", msg, "\n")
end

-- Prints whatever the file has gained since last time.
local function catch_up()
  local st = neap.stat(path)
  if not st then                         -- gone (for now)
    if f then f:close(); f = nil; note("gone; waiting for it") end
    return
  end
  if not f or st.ino ~= ino then         -- first sight, or a new file at the path
    if f then f:close(); note("replaced; following the new file") end
    f = neap.open(path)
    if not f then return end
    ino, pos = f:stat().ino, 0
  elseif st.size < pos then              -- truncated
    note("truncated")
    pos = 0
  end
  f:seek("set", pos)                     -- (also forgets an earlier end of file)
  while true do
    local data = f:read(64 * 1024)
    if not data then break end           -- nil, "eof": all of it for now
    io.write(data)
    pos = pos + #data
  end
  io.flush()
end

catch_up()
while true do
  local ev, err = w:next { timeout = 1 }
  if ev == nil and err ~= "timeout" then error("watch: " .. err) end
  if ev == nil or ev.name == base then catch_up() end
end
