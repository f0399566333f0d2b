--- neap.process: child processes and pipelines (neap.spawn, neap.pipeline).
-- The C core spawns (libuv, argv lists, never a shell) and owns the pipes;
-- this file owns the options (stdio choices, env), communicate's pumping,
-- and pipelines built from OS pipes so the data never passes through Lua.
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts, checksig, mode_flags = util.argerr, util.checkopts, util.checksig, util.mode_flags
local tpack, tunpack = table.pack, table.unpack

local M = {}
local drain_to


local Process = {}
Process.__index = Process


local stdio_names = { [0] = "stdin", "stdout", "stderr" }

-- Turns one stdio option into the core's form; files opened here are
-- listed in 'opened' to be closed after the spawn.
local function stdio_spec(fname, i, v, opened)
  if v == nil or v == "pipe" then
    local s, err, code = core.new_pipe(i ~= 0)
    if not s then return nil, err, code end
    return { kind = "pipe", stream = s }
  elseif v == "inherit" then return { kind = "fd", fd = i }
  elseif v == "null" then return { kind = "ignore" }
  elseif math.type(v) == "integer" then return { kind = "fd", fd = v }
  elseif getmetatable(v) == core.stream_meta then return { kind = "stream", stream = v }
  elseif type(v) == "table" and type(v.file) == "string" then
    local fd, err, code = core.open_fd(v.file, mode_flags(fname, 1, v.mode or (i == 0 and "r" or "w")))
    if not fd then return nil, v.file .. ": " .. err, code end
    opened[#opened + 1] = fd
    return { kind = "fd", fd = fd }
  end
  argerr(fname, 1, stdio_names[i] .. " must be \"pipe\", \"inherit\", \"null\", an fd, a stream or {file=}")
end

local function build_env(fname, env, lvl, argn)
  if env == nil then return nil end
  if type(env) ~= "table" then argerr(fname, argn or 1, "env must be a table", lvl) end
  local vars = {}
  if env.inherit then vars = core.environ() end
  for k, v in pairs(env) do
    if k ~= "inherit" then
      if type(k) ~= "string" then argerr(fname, argn or 1, "env names must be strings", lvl) end
      vars[k] = tostring(v)
      if (k .. vars[k]):find("\0", 1, true) then argerr(fname, argn or 1, "env." .. k .. " contains a NUL byte", lvl) end
    end
  end
  local list = {}
  for k, v in pairs(vars) do list[#list + 1] = k .. "=" .. v end
  table.sort(list)
  return list
end

-- Checks a spawn spec (raising on a bad one) before anything is opened;
-- returns argv's length and the environment list.
local function check(fname, spec, over, lvl, argn)
  if type(spec) ~= "table" then argerr(fname, argn or 1, "table expected, got " .. type(spec), lvl) end
  local n = #spec
  if n < 1 then argerr(fname, argn or 1, "the program to run is missing: {\"prog\", \"arg\", ...}", lvl) end
  for i = 1, n do
    if type(spec[i]) ~= "string" then argerr(fname, argn or 1, "argv[" .. i .. "] must be a string", lvl) end
    if spec[i]:find("\0", 1, true) then argerr(fname, argn or 1, "argv[" .. i .. "] contains a NUL byte", lvl) end
  end
  if spec.cwd ~= nil and (type(spec.cwd) ~= "string" or spec.cwd:find("\0", 1, true)) then
    argerr(fname, argn or 1, "cwd must be a string (with no NUL byte)", lvl)
  end
  for i = 0, 2 do
    local v = over and over[i]
    if v == nil then v = spec[stdio_names[i]] end
    if not (v == nil or v == "pipe" or v == "inherit" or v == "null" or math.type(v) == "integer"
            or getmetatable(v) == core.stream_meta or (type(v) == "table" and type(v.file) == "string")) then
      argerr(fname, argn or 1, stdio_names[i] .. " must be \"pipe\", \"inherit\", \"null\", an fd, a stream or {file=}", lvl)
    end
    if type(v) == "table" and v.file then util.nonul(fname, argn or 1, v.file, stdio_names[i] .. ".file", lvl + 1) end
  end
  return n, build_env(fname, spec.env, lvl + 1, argn)
end

-- The normalised spawn; stdio overrides (for pipelines) as a table {[0]=,[1]=,[2]=}.
-- A program that cannot start is named in the message after 'what'
-- ("spawn prog: no such file or directory", as Node.js says it).
local function spawn(fname, spec, over, what)
  local n, env = check(fname, spec, over, 4)   -- 4: the user's call (M.spawn tail-calls)
  local opened, stdio = {}, {}
  local function cleanup()
    for _, fd in ipairs(opened) do core.close_fd(fd) end
    for i = 1, 3 do
      if stdio[i] and stdio[i].kind == "pipe" then stdio[i].stream:close() end
    end
  end
  for i = 0, 2 do
    local v = over and over[i]
    if v == nil then v = spec[stdio_names[i]] end
    local sp, err, code = stdio_spec(fname, i, v, opened)
    if not sp then cleanup() return nil, err, code end
    stdio[i + 1] = sp
  end
  local h, pid, code = core.spawn { file = spec[1], args = { table.unpack(spec, 1, n) }, env = env,
                                    cwd = spec.cwd, detached = spec.detached, stdio = stdio }
  if not h then cleanup() return nil, (what or "spawn " .. spec[1]) .. ": " .. pid, code end
  for _, fd in ipairs(opened) do core.close_fd(fd) end
  for i = 1, 3 do   -- a stream handed to a child is the child's now
    if stdio[i].kind == "stream" then stdio[i].stream:close() end
  end
  local p = setmetatable({ pid = pid, _h = h, argv = { table.unpack(spec, 1, n) } }, Process)
  for i = 0, 2 do
    if stdio[i + 1].kind == "pipe" then p[stdio_names[i]] = stdio[i + 1].stream end
  end
  return p
end

--- neap.spawn{"prog", "arg", ..., stdin=, stdout=, stderr=, env=, cwd=, detached=}
-- -> process | nil, err, code
function M.spawn(spec) return spawn("spawn", spec) end

-- The drain belongs to the process, not to one wait: it is on while any
-- task waits (p._waits counts them), so one wait ending (a timeout, a
-- cancel) leaves the others' child free to write.
local function drain_pipes(p, d)
  local n = (p._waits or 0) + d
  p._waits = n
  if n == (d > 0 and 1 or 0) then   -- the first wait starts, the last ends
    for _, k in ipairs { "stdout", "stderr" } do
      local s = p[k]
      if s and not s:is_closed() then s:_drain(d > 0) end
    end
  end
end

-- The 'kill' option of wait and communicate: nil, "process" or "group".
local function checkkill(fname, i, opts)
  if opts ~= nil and type(opts) ~= "table" then util.notopts(fname, i, opts, 5) end
  local k = opts and opts.kill
  if k ~= nil and k ~= "process" and k ~= "group" then
    argerr(fname, i, "kill must be \"process\" or \"group\"", 4)
  end
  return k
end

-- Ends what a timed-out wait leaves: the child ("process") or the group it
-- leads ("group"; a child that leads none is killed alone).
local function kill_for(p, how, sig)
  if how == "group" and p._h:kill(sig, { group = true }) then return end
  p._h:kill(sig)
end

--- p:wait{timeout=, kill=} -> code, signal | nil, "timeout", "timeout"
-- While it waits, the child's output pipes are read even if no task reads
-- them, so a child cannot block on a full pipe; the output stays readable.
-- With kill ("process" or "group"), a timeout also ends the child (or its
-- group) with KILL and reaps it.
function Process:wait(opts)
  local how = checkkill("wait", 2, opts)
  drain_pipes(self, 1)
  local r = tpack(pcall(self._h.wait, self._h, opts))
  drain_pipes(self, -1)
  if not r[1] then error(r[2], 0) end
  if how and r[2] == nil and r[3] == "timeout" then
    kill_for(self, how, "KILL")
    self._h:wait()
    if self.stdin then self.stdin:close() end
    return nil, "timeout", "timeout"
  end
  if r[2] ~= nil or r[3] ~= "timeout" then   -- gone: nobody reads its stdin now
    if self.stdin then self.stdin:close() end
  end
  return tunpack(r, 2, r.n)
end

--- p:kill([sig] [, {group = true}]) -> true | nil, err, code
-- With group, the signal goes to the process group the child leads
-- (detached = true), grandchildren included.
function Process:kill(sig, opts)
  if sig ~= nil then checksig("kill", 2, sig) end
  if opts ~= nil and type(opts) ~= "table" then argerr("kill", 3, "options table expected, got " .. type(opts)) end
  return self._h:kill(sig, opts)
end

--- p:status() -> "running" | "exited" | "signalled"
function Process:status() return self._h:status() end

--- p:unref() -> p: a running child no longer keeps the loop alive (Node's
-- subprocess.unref()); p:ref() -> p undoes it.
function Process:unref() self._h:unref() return self end
function Process:ref() self._h:ref() return self end

--- p:close(): closes the process's pipes; a running child goes on and is reaped
function Process:close()
  for _, k in ipairs { "stdin", "stdout", "stderr" } do
    if self[k] then self[k]:close() end
  end
  self._h:close()
end
Process.__close = Process.close

-- Reads 's' to its end. The bytes wait in the stream's buffer until the
-- end comes, so a drain cancelled before it (its owner was cancelled, or
-- timed out) takes nothing away: the output stays readable.
local function drain(s) return s:read_all() or "" end

-- What 's' holds now, taken without waiting ("" for none).
local function buffered(s)
  local n = s and not s:is_closed() and s:buffered() or 0
  return n > 0 and s:read(n, { timeout = 0 }) or ""
end

-- Pumps 'input' (a string, a stream or an fd) into 'dst', then closes dst.
local function feed(dst, input)
  if type(input) == "string" then
    dst:write(input)
  elseif getmetatable(input) == core.stream_meta then
    drain_to(input, dst)
  elseif math.type(input) == "integer" then
    local s = core.wrap_fd(core.dup_fd(input))
    drain_to(s, dst)
    s:close()
  end
  dst:close()
end

function drain_to(src, dst)   -- (declared above)
  while true do
    local d = src:read(65536)
    if not d then return end
    if not dst:write(d) then return end
  end
end

-- The shared body of communicate for a process and a pipeline.
local function communicate(fname, stdin, stdout, stderr, input, opts, wait, kill)
  if input ~= nil and type(input) ~= "string" and math.type(input) ~= "integer"
     and getmetatable(input) ~= core.stream_meta then
    argerr(fname, 1, "input must be a string, a stream or an fd")
  end
  opts = checkopts(fname, 2, opts)
  local how = checkkill(fname, 2, opts) or "process"
  if not core.current() then   -- before any reader starts: nothing is lost
    error(fname .. ": a wait must run inside a task (neap.task or neap.run)", 2)
  end
  local deadline = opts.timeout and core.now() + opts.timeout
  local tasks, dout, derr = {}, nil, nil
  -- the helpers end with this call, whichever way it ends (a cancel, an
  -- error): no drain is left reading a stream the script reads next
  local _ <close> = setmetatable({}, { __close = function()
    for _, t in ipairs(tasks) do t:cancel() end
  end })
  if stdout then dout = core.task(drain, stdout) tasks[#tasks + 1] = dout end
  if stderr then derr = core.task(drain, stderr) tasks[#tasks + 1] = derr end
  if stdin then
    if input ~= nil then tasks[#tasks + 1] = core.task(feed, stdin, input)
    else stdin:close() end
  end
  local timed_out = false
  for _, t in ipairs(tasks) do
    local left = deadline and math.max(0, deadline - core.now())
    local ok, _, code = t:join { timeout = left }
    if not ok and code == "timeout" then timed_out = true break end
  end
  local r
  if not timed_out then
    local left = deadline and math.max(0, deadline - core.now())
    r = tpack(wait({ timeout = left }))
    if r[1] == nil and r[2] == "timeout" then timed_out = true end
  end
  if timed_out then
    kill("KILL", how)
    for _, t in ipairs(tasks) do t:cancel() end
    wait({ timeout = 5 })
    return buffered(stdout), buffered(stderr), nil, "timeout"
  end
  local function result(t)
    if not t then return "" end
    local _, d = t:join()
    return d or ""
  end
  return result(dout), result(derr), tunpack(r, 1, r.n)
end

--- p:communicate([input] [, {timeout=, kill=}]) -> out, err, code, signal
-- input (a string, a stream or an fd) is written while stdout and stderr are
-- drained; on timeout the child (kill = "group": its group) is killed:
-- out, err, nil, "timeout".
function Process:communicate(input, opts)
  return communicate("communicate", self.stdin, self.stdout, self.stderr, input, opts,
    function(o) return self._h:wait(o) end, function(sig, how) kill_for(self, how, sig) end)
end

-- ============================================================ pipelines

local Pipeline = {}
Pipeline.__index = Pipeline

--- neap.pipeline({"cat", f}, {"grep", "x"}, ..., [opts]) -> pipeline | nil, err, code
-- The stages are joined by OS pipes: the data never passes through Lua.
function M.pipeline(...)
  local specs = { ... }
  local opts = {}
  if #specs > 0 and type(specs[#specs]) == "table" and specs[#specs][1] == nil then opts = table.remove(specs) end
  if #specs < 1 then argerr("pipeline", 1, "at least one stage expected") end
  local n = #specs
  for i, sp in ipairs(specs) do   -- every stage is checked before any starts
    if type(sp) ~= "table" then argerr("pipeline", i, "table expected, got " .. type(sp)) end
    check("pipeline", sp, { [0] = (i == 1) and (sp.stdin or opts.stdin) or 0,
                            [1] = (i == n) and (sp.stdout or opts.stdout) or 1,
                            [2] = sp.stderr or opts.stderr }, 4, i)
  end
  local fds = {}
  for i = 1, n - 1 do
    local r, w, code = core.os_pipe()
    if not r then
      for _, fd in ipairs(fds) do core.close_fd(fd) end
      return nil, w, code
    end
    fds[#fds + 1] = r; fds[#fds + 1] = w
  end
  local stages = {}
  for i = 1, n do
    local over = {}
    over[0] = (i == 1) and (specs[i].stdin or opts.stdin) or fds[2 * (i - 1) - 1]
    over[1] = (i == n) and (specs[i].stdout or opts.stdout) or fds[2 * i]
    over[2] = specs[i].stderr or opts.stderr
    local p, err, code = spawn("pipeline", specs[i], over,
                               "pipeline stage " .. i .. " (" .. specs[i][1] .. ")")
    if not p then
      for _, q in ipairs(stages) do q:kill("KILL") q:close() end
      for _, fd in ipairs(fds) do core.close_fd(fd) end
      return nil, err, code
    end
    stages[i] = p
  end
  for _, fd in ipairs(fds) do core.close_fd(fd) end
  return setmetatable({ stages = stages, stdin = stages[1].stdin, stdout = stages[n].stdout,
                        stderr = stages[n].stderr }, Pipeline)
end

local function pl_stream(pl, k, fname)
  local s = pl[k]
  if not s then error(fname .. ": the pipeline's " .. k .. " is not a pipe", 3) end
  return s
end

--- pl:write(...) -> pl | nil, err, code: to the first stage's stdin
function Pipeline:write(...)
  local ok, err, code = pl_stream(self, "stdin", "write"):write(...)
  if not ok then return nil, err, code end
  return self
end
--- pl:close(): closes the first stage's stdin (it reads EOF)
function Pipeline:close() if self.stdin then self.stdin:close() end end
function Pipeline:flush(opts) return pl_stream(self, "stdin", "flush"):flush(opts) end
function Pipeline:read(...) return pl_stream(self, "stdout", "read"):read(...) end
function Pipeline:read_line(...) return pl_stream(self, "stdout", "read_line"):read_line(...) end
function Pipeline:read_exactly(...) return pl_stream(self, "stdout", "read_exactly"):read_exactly(...) end
function Pipeline:read_until(...) return pl_stream(self, "stdout", "read_until"):read_until(...) end
function Pipeline:read_all(...) return pl_stream(self, "stdout", "read_all"):read_all(...) end
function Pipeline:lines(...) return pl_stream(self, "stdout", "lines"):lines(...) end
function Pipeline:read_stderr(...) return pl_stream(self, "stderr", "read_stderr"):read(...) end
function Pipeline:read_line_stderr(...) return pl_stream(self, "stderr", "read_line_stderr"):read_line(...) end

--- pl:wait{timeout=} -> { {code=, signal=}, ... } one per stage | nil, "timeout", "timeout"
function Pipeline:wait(opts)
  opts = checkopts("wait", 1, opts)
  local deadline = opts.timeout and core.now() + opts.timeout
  local res = {}
  for i, p in ipairs(self.stages) do
    local left = deadline and math.max(0, deadline - core.now())
    local code, sig, c3 = p:wait { timeout = left }
    if code == nil and sig == "timeout" then return nil, sig, c3 end
    res[i] = { code = code, signal = sig }
  end
  return res
end

--- pl:kill([sig] [, {group = true}]): signals every stage still running;
-- with group, the group of every stage that leads one (detached stages)
function Pipeline:kill(sig, opts)
  if sig ~= nil then checksig("kill", 2, sig) end
  if opts ~= nil and type(opts) ~= "table" then argerr("kill", 3, "options table expected, got " .. type(opts)) end
  local group = opts and opts.group
  for _, p in ipairs(self.stages) do
    if group then p._h:kill(sig, opts) elseif p:status() == "running" then p._h:kill(sig) end
  end
  return true
end

--- pl:communicate([input] [, {timeout=}]) -> out, err, code, signal (of the last stage)
function Pipeline:communicate(input, opts)
  return communicate("communicate", self.stdin, self.stdout, self.stderr, input, opts,
    function(o)
      local r, e, c = self:wait(o)
      if not r then return nil, e, c end
      return r[#r].code, r[#r].signal
    end, function(sig, how)
      for _, p in ipairs(self.stages) do
        if p:status() == "running" or how == "group" then kill_for(p, how, sig) end
      end
    end)
end


--- neap.signum(name) -> the number of a signal ("TERM" -> 15)
function M.signum(name)
  local n = checksig("signum", 1, name)   -- (not a tail call: the error names our caller)
  return n
end

return M
