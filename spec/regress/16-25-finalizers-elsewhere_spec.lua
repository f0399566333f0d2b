-- Red team, second pass over 16-22 and 16-24: the same pattern (C state
-- held across a Lua call that runs the collector, whose finalizers may use
-- the same object) in the other readers. Each case runs a finalizer at the
-- first allocation inside the call. Before the fixes: neap.buffer gave line
-- 1 twice and lost line 2; the WebSocket reader, udp recv, t:receive and the
-- HTTP parser read freed memory (ASan heap-use-after-free) or gave the same
-- bytes twice; accept left its server unable to accept (pending -1).
local helpers = require "helpers"

-- arm(action, f, ...): calls f(...) with 'action' run by a finalizer at the
-- first allocation inside f; prints whether it ran; returns pcall's results.
local ARM = [[
local neap = require "neap"
local core = require "neap.core"
local function arm(action, f, ...)
  local fired, armed, ran = 0, false, false
  local mt = { __gc = function()
    fired = fired + 1
    if not armed then return end
    armed, ran = false, true
    local ok, err = pcall(action)
    if not ok then print("inner error", (tostring(err):gsub("^.-:%d+: ", ""))) end
  end }
  collectgarbage("stop") collectgarbage("incremental", 100, 100)
  for _ = 1, 1000 do setmetatable({}, mt) end
  repeat collectgarbage("step", 0) until fired > 0
  armed = true
  collectgarbage("restart")
  local r = table.pack(pcall(f, ...))
  collectgarbage("generational") collectgarbage("incremental")
  print("finalizer ran", ran)
  if not r[1] then r[2] = (tostring(r[2]):gsub("^.-:%d+: ", "")) end
  return table.unpack(r, 1, r.n)
end
]]

local function run(body, extra)
  local path = helpers.tmpfile(ARM .. body)
  -- (the collector's own pace places the finalizer, not make gcstress's)
  local out, rc = helpers.sh("env -u NEAP_GC_STRESS " .. helpers.NEAP .. " " .. path ..
    " " .. (extra or "") .. " 2>&1")
  os.remove(path)
  return out, rc
end

describe("16-25 finalizers inside other readers", function()
  it("neap.buffer: a finalizer's read takes the line, the outer read raises", function()
    local out, rc = run([[
local b = neap.buffer()
b:feed("line 1\nline 2\nline 3\n")
local inner
print("outer", arm(function() inner = b:read_line() end, b.read_line, b))
print("inner", inner)
print("next", b:read_line())
]])
    assert.equal(0, rc, out)
    assert.equal("finalizer ran\ttrue\nouter\tfalse\tread: the buffer was read meanwhile " ..
      "(by a finalizer?); its bytes went to that read\ninner\tline 1\nnext\tline 2\n", out)
  end)

  it("WebSocket reader: a finalizer that feeds its buffer or reads it", function()
    local out, rc = run([[
local function frame(op, data) local h, d = core.ws_encode(op, data, false, true) return h .. (d or "") end
local b, r = neap.buffer(), core.ws_reader(false, 1 << 20)
b:feed(frame(2, "first") .. frame(2, "second") .. frame(2, "third"))
print("outer", arm(function() b:feed(("z"):rep(1 << 20)) end, r.read, r, b))
b = neap.buffer()
b:feed(frame(2, "first") .. frame(2, "second"))
print("outer", arm(function() print("inner", r:read(b)) end, r.read, r, b))
print("next", r:read(b))
]])
    assert.equal(0, rc, out)
    assert.equal("finalizer ran\ttrue\nouter\ttrue\tbinary\tfirst\n" ..
      "inner\tbinary\tfirst\nfinalizer ran\ttrue\nouter\tfalse\tread: the source was read " ..
      "meanwhile (by a finalizer?); its bytes went to that read\nnext\tbinary\tsecond\n", out)
  end)

  it("udp recv: a finalizer's recv takes the datagram, the outer recv raises", function()
    local out, rc = run([[
neap.run(function()
  local u = assert(neap.udp { host = "127.0.0.1", port = 0 })
  local v = assert(neap.udp { host = "127.0.0.1", port = 0 })
  local _, port = u:address()
  assert(not u:recv { timeout = 0 })   -- (receiving starts at the first recv)
  for i = 1, 3 do assert(v:send("dgram " .. i, "127.0.0.1", port)) end
  neap.sleep(0.1)
  print("outer", arm(function() print("inner", (u:recv { timeout = 0 })) end, u.recv, u))
  print("next", (u:recv { timeout = 1 }))
  print("next", (u:recv { timeout = 1 }))
  u:close() v:close()
end)
]])
    assert.equal(0, rc, out)
    assert.equal("inner\tdgram 1\nfinalizer ran\ttrue\nouter\tfalse\trecv: the socket was " ..
      "read meanwhile (by a finalizer?); its datagram went to that read\n" ..
      "next\tdgram 2\nnext\tdgram 3\n", out)
  end)

  it("t:receive: the outer receive and a finalizer's each get a message, none twice", function()
    local child = helpers.tmpfile([[
local neap = require "neap"
neap.run(function()
  for i = 1, 4 do neap.parent:send({ i = i, s = ("msg " .. i):rep(10) }) end
  neap.parent:receive { timeout = 5 }
end)
]])
    local out, rc = run([[
neap.run(function()
  local t = neap.thread(arg[1])
  local got = { t:receive { timeout = 5 }.i }
  neap.sleep(0.3)   -- the rest are queued
  got[#got + 1] = t:receive { timeout = 1 }.i
  local ok, v = arm(function() got[#got + 1] = t:receive { timeout = 0 }.i end, t.receive, t)
  got[#got + 1] = ok and v.i
  table.sort(got)
  print("got", table.concat(got, " "))
  t:send("bye") t:join { timeout = 5 }
end)
]], child)
    os.remove(child)
    assert.equal(0, rc, out)
    assert.equal("finalizer ran\ttrue\ngot\t1 2 3 4\n", out)
  end)

  it("accept: a finalizer's accept takes the connection, the server still accepts", function()
    local out, rc = run([[
neap.run(function()
  local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
  local port = select(2, srv:address())
  local c1 = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  local c2 = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  neap.sleep(0.1)
  local inner
  local ok, s = arm(function() inner = srv:accept { timeout = 0 } end, srv.accept, srv, { timeout = 1 })
  print("inner", inner ~= nil)
  local n = (s and 1 or 0) + (inner and 1 or 0)
  for _ = 1, 2 - n do assert(srv:accept { timeout = 1 }) end
  local c3 = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  print("c3", srv:accept { timeout = 2 } ~= nil)
  srv:close()
end)
]])
    assert.equal(0, rc, out)
    assert.equal("finalizer ran\ttrue\ninner\ttrue\nc3\ttrue\n", out)
  end)

  it("core.spawn takes only strings in args (a number's string was left to the collector)", function()
    local core = require "neap.core"
    local ok, err = pcall(core.spawn, { file = "/bin/echo", args = { "echo", 42 }, stdio = {} })
    assert.is_false(ok)
    assert.matches("spawn: args%[2%] must be a string", err)
  end)

  it("HTTP parser: a finalizer that uses the parser is refused, one that feeds the buffer is harmless", function()
    local out, rc = run([[
local b, p = neap.buffer(), core.http_parser("request")
local req = "GET /a HTTP/1.1\r\nHost: x\r\nX-A: " .. ("a"):rep(100) .. "\r\nX-B: b\r\n\r\n"
b:feed(req .. "GET /second HTTP/1.1\r\nHost: y\r\n\r\n")
local ok, h = arm(function() p:head(b) end, p.head, p, b)
print("outer", ok, h.target, h.headers.host, h.headers["x-b"])
print("next", p:head(b).target)
b, p = neap.buffer(), core.http_parser("request")
b:feed(req .. req)
ok, h = arm(function() b:feed(("z"):rep(1 << 20)) end, p.head, p, b)
print("outer", ok, h.headers["x-b"], #h.headers["x-a"])
b, p = neap.buffer(), core.http_parser("request")
b:feed("POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n")
assert(p:head(b))
b:feed("0123456789ABCDEFGHIJ")
local ok2, d = arm(function() p:body(b, 10) end, p.body, p, b, 10)
print("body", ok2, d, p:body(b, 10))
]])
    assert.equal(0, rc, out)
    assert.equal(table.concat({
      "inner error\thead: the parser is in use (by a finalizer?)",
      "finalizer ran\ttrue",
      "outer\ttrue\t/a\tx\tb",
      "next\t/second",
      "finalizer ran\ttrue",
      "outer\ttrue\tb\t100",
      "inner error\tbody: the parser is in use (by a finalizer?)",
      "finalizer ran\ttrue",
      "body\ttrue\t0123456789\tABCDEFGHIJ\ttrue", "" }, "\n"), out)
  end)
end)
