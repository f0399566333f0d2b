-- Issue 14 (red team): the pool kept idle connections that their servers
-- had already closed (CLOSE_WAIT) until a request to the same origin found
-- them: a client talking to many origins ran out of descriptors (EMFILE)
-- with almost all of them held by dead idle connections. A connect that
-- fails with EMFILE or ENFILE now closes the idle connections and tries
-- once more.
local helpers = require "helpers"

-- the server runs in a process of its own (so that only the client runs out)
local server_script = helpers.tmpfile([[
local http = require "neap.http"
local srv = assert(http.listen("0.0.0.0", 0, function(req, res) res:send(200, "ok") end,
                               { keepalive_timeout = 0.05 }))
local _, port = srv:address()
print(port)
io.stdout:flush()
require("neap").sleep(60)   -- (killed when the client is done)
]])

local script = helpers.tmpfile([[
local neap = require "neap"
local http = require "neap.http"
local server = assert(neap.spawn { arg[1], arg[2] })
local port = assert(tonumber(server.stdout:read_line { timeout = 10 }))
local fails = 0
for i = 1, 60 do   -- 60 origins: 127.0.0.1 .. 127.0.0.60
  local r, err = http.get("http://127.0.0." .. i .. ":" .. port .. "/", { timeout = 5 })
  if not r then fails = fails + 1; print("fail", i, err) end
  if i % 20 == 0 then neap.sleep(0.2) end   -- (the server closes the idle ones)
end
print("fails", fails)
http.close_idle()
server:kill()
server:wait()
server:close()
print("end")
]])

describe("regress 14.8: the pool and running out of descriptors", function()
  it("gives the idle connections' descriptors back when a connect gets EMFILE", function()
    local out, rc = helpers.sh("ulimit -n 48; " .. helpers.NEAP .. " " .. script .. " " .. helpers.NEAP .. " " .. server_script .. " </dev/null")
    assert.equal(0, rc, out)
    assert.truthy(out:find("fails\t0\n", 1, true), out)
    assert.truthy(out:find("\nend\n", 1, true), out)
  end)
end)
