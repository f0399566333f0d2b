-- Issue 16 (a note of its read-block change): a descriptor that libuv
-- cannot stream (here an AF_UNIX SOCK_DGRAM socket given with neap.fd) is
-- read by polling (src/fs.c). Each of its reads reserved a fresh 64 KiB
-- buffer with malloc, and the emptied buffer went to the host's block cache,
-- where the next read did not look (valgrind --trace-malloc of the script
-- below: 200 malloc(65536) for 200 messages; none now). It now takes its
-- read buffer from the cache and gives it back there, as streams do: a
-- large block (64 KiB), so that a datagram still fits whole.
local helpers = require "helpers"

local SCRIPT = [[
local neap = require "neap"
local core = require "neap.core"
local s = assert(neap.fd(tonumber(arg[1])))
assert(s:kind() == "poll", s:kind())
local all0, small0 = core._block_count()
for i = 1, 200 do
  local d = assert(s:read(100, { timeout = 5 }))
  assert(s:write("pong:" .. d))
end
local all1, small1 = core._block_count()
print("large blocks", (all1 - small1) - (all0 - small0))
local big = assert(s:read(65536, { timeout = 5 }))
print("datagram", #big, big == string.rep("0123456789", 6000))
s:close()
]]

-- A python3 parent: a SOCK_DGRAM pair, one end passed to the script, 200
-- datagrams sent one at a time, each answer awaited, then one of 60,000
-- bytes.
local PARENT = [[
import socket, subprocess, sys
neap, script = sys.argv[1:3]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
p = subprocess.Popen([neap, script, str(b.fileno())], pass_fds=[b.fileno()],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
b.close()
a.settimeout(5)
ok = 0
for i in range(200):
    a.send(b"msg %d" % i)
    if a.recv(100) == b"pong:msg %d" % i: ok += 1
a.send(b"0123456789" * 6000)   # one datagram of 60,000 bytes
out, _ = p.communicate(timeout=10)
sys.stdout.write(out.decode())
print("answers=%d rc=%d" % (ok, p.returncode))
]]

describe("16-21 polled descriptors", function()
  it("reads into blocks from the host's cache, not a fresh buffer per message; a large datagram stays whole", function()
    local script, parent = helpers.tmpfile(SCRIPT), helpers.tmpfile(PARENT)
    local out, rc = helpers.sh("timeout 30 python3 " .. parent .. " " .. helpers.NEAP .. " " .. script)
    os.remove(script) os.remove(parent)
    assert.equal(0, rc, out)
    assert.matches("answers=200 rc=0", out)
    -- the emptied block the messages were read into is back in the cache
    -- (a fresh 64 KiB buffer per message left none there)
    assert.matches("large blocks\t1\n", out)
    assert.matches("datagram\t60000\ttrue\n", out)
  end)
end)
