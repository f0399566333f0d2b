--- neap.repl: the interactive prompt of `neap -i` (and of `neap` on a
-- terminal). Input is read through the event loop (neap.stdin), so servers
-- and timers started at the prompt go on running while it waits. Each
-- chunk runs in the prompt's task, so it can wait (neap.sleep, reads).
local neap = require "neap"

local repl = {}

local function out(...)
  io.stdout:write(...)
  io.stdout:flush()
end

--- repl.run([opts]) -> runs the prompt until end of input, then exits the
-- process (status 1 when the input ends inside an unfinished chunk: that
-- is a syntax error, reported as lua5.4 reports it for a chunk);
-- opts.prompt and opts.prompt2 replace "> " and ">> ".
function repl.run(opts)
  opts = opts or {}
  local prompt, prompt2 = opts.prompt or "> ", opts.prompt2 or ">> "
  rawset(_G, "neap", rawget(_G, "neap") or neap)
  out("neap ", neap.version, " (", _VERSION, ") -- Ctrl-D to exit\n", prompt)
  local pending
  -- lines of any length, as lua5.4's prompt reads them (not max_frame's 1 MiB)
  neap.stdin:set_limits { max_frame = 0 }
  for line in neap.stdin:lines() do
    local src = pending and (pending .. "\n" .. line) or line
    if not pending and src:sub(1, 1) == "=" then src = "return " .. src:sub(2) end
    local chunk, err = load("return " .. src, "=stdin", "t")
    if not chunk then chunk, err = load(src, "=stdin", "t") end
    if not chunk and err:find("<eof>$") then
      pending = src                       -- an incomplete chunk: read on
      out(prompt2)
    else
      pending = nil
      if not chunk then
        out(err, "\n")
      else
        local r = table.pack(xpcall(chunk, debug.traceback))
        if not r[1] then
          out(tostring(r[2]), "\n")
        elseif r.n > 1 then
          local parts = {}
          for i = 2, r.n do parts[#parts + 1] = tostring(r[i]) end
          out(table.concat(parts, "\t"), "\n")
        end
      end
      out(prompt)
    end
  end
  out("\n")
  if pending then   -- "for" and then the end: the chunk can never be finished
    local _, err = load(pending .. "\n", "=stdin", "t")   -- (as lua5.4 - reads it)
    io.stderr:write("neap: ", err, "\n")
    io.stderr:flush()
    os.exit(1, true)
  end
  os.exit(0, true)
end

return repl
