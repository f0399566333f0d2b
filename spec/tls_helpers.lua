-- Shared by the TLS specs: certificates made at test time (spec/c/mkcerts.sh
-- into a temporary directory, removed afterwards; no key is committed), a
-- TLS pair, external peers (openssl, curl, node) and a TCP relay that can
-- hold, join, cut or replace what passes through it.
local neap = require "neap"
local helpers = require "helpers"

local T = {}

--- T.have(cmd) -> true when the command is on the PATH
function T.have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

--- T.certs() -> dir: every certificate of spec/c/mkcerts.sh, made now
function T.certs()
  local d = helpers.tmpdir()
  local out, rc = helpers.sh("sh spec/c/mkcerts.sh " .. d)
  assert(rc == 0, "mkcerts.sh failed: " .. out)
  return d
end

--- T.rmcerts(dir): removes what T.certs made
function T.rmcerts(d)
  if d and d:match("^/tmp/") then os.execute("rm -rf '" .. d .. "'") end
end

--- T.server_opts(d [, extra]) -> opts of neap.listen("tls") with the server certificate
function T.server_opts(d, extra)
  local o = { cert = d .. "/server.pem", key = d .. "/server.key" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- T.pair(d [, sopts [, copts]]) -> server-side stream, client stream: a TLS
-- pair on 127.0.0.1 (inside a task)
function T.pair(d, sopts, copts)
  local srv = assert(neap.listen("tls", "127.0.0.1", 0, T.server_opts(d, sopts)))
  local _, port = srv:address()
  local accepted
  local t = neap.task(function() accepted = assert(srv:accept { timeout = 10 }) end)
  local o = { ca = d .. "/ca.pem", timeout = 10 }
  for k, v in pairs(copts or {}) do o[k] = v end
  local c = assert(neap.connect("tls", "127.0.0.1", port, o))
  assert(t:join { timeout = 10 })
  srv:close()
  return accepted, c
end

--- T.spawn_port(argv, pattern) -> process, port: starts a server and reads
-- its output (stdout and stderr together) until pattern captures the port
function T.spawn_port(argv, pattern)
  local p = assert(neap.spawn { "sh", "-c", 'exec "$@" 2>&1', "sh", table.unpack(argv) })
  local seen = {}
  while true do
    local l = p.stdout:read_line { timeout = 10 }
    if not l then
      p:kill() p:wait() p:close()
      error("server did not start: " .. table.concat(seen, "\n"))
    end
    seen[#seen + 1] = l
    local port = l:match(pattern)
    if port then return p, tonumber(port) end
  end
end

--- T.stop(p): ends a server started by T.spawn_port
function T.stop(p)
  p:kill()
  p:wait { timeout = 5 }
  p:close()
end

--- T.run(argv [, input] [, timeout]) -> output (stdout and stderr), exit code:
-- a client program, without blocking the loop
function T.run(argv, input, timeout)
  local p = assert(neap.spawn { "sh", "-c", 'exec "$@" 2>&1', "sh", table.unpack(argv) })
  local out, _, code = p:communicate(input or "", { timeout = timeout or 20 })
  p:close()
  return out, code
end

--- T.relay(port, f) -> relay port, relay server: each connection to the
-- relay is joined to 127.0.0.1:port; f(client, upstream) moves the bytes
-- (default: both ways as they come)
function T.pump(from, to)
  while true do
    local d = from:read(65536)
    if not d then break end
    if not to:write(d) then break end
  end
  to:shutdown()
end

function T.relay(port, f)
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
  local _, rport = srv:address()
  srv:serve(function(c)
    local up = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
    if f then f(c, up)
    else
      local t = neap.task(T.pump, up, c)
      T.pump(c, up)
      t:join { timeout = 30 }
    end
    c:close() up:close()
  end)
  return rport, srv
end

--- T.rss_kb() -> the host's resident memory in KiB
function T.rss_kb()
  local f = io.open("/proc/" .. neap.pid() .. "/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

return T
