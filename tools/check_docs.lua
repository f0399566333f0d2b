-- make check-docs: every public name must have a heading in docs/*.md.
-- Names come from the luaL_Reg method tables of src/*.c (methods of the
-- userdata types) and from the public functions of lua/neap/*.lua and the
-- names the facade (lua/neap/init.lua) gives neap.
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function ls(pattern)
  local out = {}
  local p = io.popen("ls " .. pattern .. " 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local names = {}   -- name -> where it comes from
-- C: the method tables of each metatable (meth) and the stream methods
-- other files export for stream.c (neap__<file>_meth, neap__<file>_stream_meth)
for _, path in ipairs(ls("src/*.c")) do
  local src = read(path)
  local blocks = {}
  for block in src:gmatch("static const luaL_Reg meth%[%] = (%b{})") do blocks[#blocks + 1] = block end
  for block in src:gmatch("const luaL_Reg neap__[%w_]*meth%[%] = (%b{})") do blocks[#blocks + 1] = block end
  for _, block in ipairs(blocks) do
    for name in block:gmatch('{"([%w_]+)",') do
      if not name:match("^_") then names[name] = names[name] or path end
    end
  end
end
-- Lua: public functions and methods
for _, path in ipairs(ls("lua/neap/*.lua")) do
  if path:match("/util%.lua$") then goto next end   -- internal helpers
  for line in io.lines(path) do
    -- a function of a module or a method; in the facade (init.lua), each
    -- neap.<name> = ... it takes from the file that owns it
    local name = line:match("^function [%w_]+[.:]([%w_]+)%s*%(") or line:match("^neap%.([%w_]+)%s*=")
    if name and not name:match("^_") then names[name] = names[name] or path end
  end
  ::next::
end

-- headings of the docs
local headings = {}
for _, path in ipairs(ls("docs/*.md")) do
  for line in io.lines(path) do
    if line:match("^#+ ") then headings[#headings + 1] = line end
  end
end

local missing = {}
for name, where in pairs(names) do
  local found = false
  for _, h in ipairs(headings) do
    if h:find("[%.:]" .. name .. "%f[^%w_]") or h:find("%f[%w_]" .. name .. "%s*%(") then
      found = true
      break
    end
  end
  if not found then missing[#missing + 1] = name .. " (" .. where .. ")" end
end
table.sort(missing)
if #missing > 0 then
  print("check-docs: no heading in docs/ for:")
  for _, m in ipairs(missing) do print("  " .. m) end
  os.exit(1)
end
local n = 0
for _ in pairs(names) do n = n + 1 end
print("check-docs: all " .. n .. " public names have a heading")
