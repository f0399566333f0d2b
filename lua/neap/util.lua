--- neap.util: argument checks shared by neap's Lua modules (internal).
local util = {}

--- util.argerr(fname, i, msg [, level]): raises "bad argument #i to 'fname' (msg)"
-- at the caller of the public function (level 3 by default).
function util.argerr(fname, i, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), level or 3)
end

--- util.notopts(fname, i, v [, level]): raises "options table expected, got
-- <type>"; for a number, says how to give it as a timeout (one rule: a bare
-- number is never a timeout).
function util.notopts(fname, i, v, level)
  local msg = "options table expected, got " .. type(v)
  if type(v) == "number" then msg = msg .. "; use { timeout = " .. tostring(v) .. " }" end
  util.argerr(fname, i, msg, level or 4)
end

--- util.checkopts(fname, i, opts) -> opts or {}: a table whose timeout, if
-- any, is a number >= 0; raises at the public function's caller.
function util.checkopts(fname, i, opts)
  if opts ~= nil and type(opts) ~= "table" then util.notopts(fname, i, opts, 5) end
  local t = opts and opts.timeout
  if t ~= nil and (type(t) ~= "number" or not (t >= 0)) then
    util.argerr(fname, i, "timeout must be a number >= 0", 4)
  end
  return opts or {}
end

--- util.nonul(fname, i, s, what [, level]) -> s: a path or host name goes to
-- the system as a C string, where a NUL byte would cut it short; raises
-- "bad argument #i to 'fname' (<what> contains a NUL byte)". level as argerr's
-- (4 by default: the caller of the public function that calls this).
function util.nonul(fname, i, s, what, level)
  if s:find("\0", 1, true) then util.argerr(fname, i, what .. " contains a NUL byte", level or 4) end
  return s
end

--- util.check_port(fname, i, port [, level]) -> port as an integer: ports are
-- integers from 0 to 65535; raises "number expected, got <type>",
-- "number has no integer representation" or "port out of range".
function util.check_port(fname, i, port, level)
  level = level or 4
  if type(port) ~= "number" then
    util.argerr(fname, i, "number expected, got " .. (port == nil and "no value" or type(port)), level)
  end
  local n = math.tointeger(port)
  if not n then util.argerr(fname, i, "number has no integer representation", level) end
  if n < 0 or n > 65535 then util.argerr(fname, i, "port out of range", level) end
  return n
end

--- util.checksig(fname, i, sig) -> the number of signal 'sig' (a name or a
-- number); raises at the caller of the public function on a bad one.
function util.checksig(fname, i, sig)
  local n, why = require("neap.core").signal_number(sig)
  if not n then util.argerr(fname, i, why, 4) end
  return n
end

local O = require("neap.core").O   -- libuv's UV_FS_O_* values (src/fs.c)
local open_flags = {
  r = O.RDONLY, w = O.WRONLY | O.CREAT | O.TRUNC, a = O.WRONLY | O.CREAT | O.APPEND,
  ["r+"] = O.RDWR, ["w+"] = O.RDWR | O.CREAT | O.TRUNC, ["a+"] = O.RDWR | O.CREAT | O.APPEND,
}

--- util.mode_flags(fname, i, mode) -> open(2) flags for an io.open mode ("b" ignored)
function util.mode_flags(fname, i, mode)
  local m = (mode or "r"):gsub("b", "")
  local f = open_flags[m]
  if not f then util.argerr(fname, i, "bad mode '" .. tostring(mode) .. "'", 4) end
  return f
end

--- util.errtext(err) -> the text of an error value for a report: its
-- tostring, or "(error object is a X value)" when its __tostring raises
-- (a report must not fail where the error did not)
function util.errtext(err)
  local ok, msg = pcall(tostring, err)
  if ok and type(msg) == "string" then return msg end
  return "(error object is a " .. type(err) .. " value)"
end

return util
