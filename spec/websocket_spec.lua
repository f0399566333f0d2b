-- neap.websocket (RFC 6455): the frame reader on neap.buffer (no I/O), neap
-- against itself, against Node's `ws` package (installed with npm into a
-- temporary folder when node is there) as server and client, curl's
-- upgrade request, and hostile frames written by hand over raw TCP.
local neap = require "neap"
local core = require "neap.core"
local http = require "neap.http"
local helpers = require "helpers"
local T = require "tls_helpers"
local run = helpers.run

local MiB = 1024 * 1024

-- A frame by hand: fin (bool), opcode, payload, mask key (4 bytes or nil),
-- rsv bits, and a length to claim instead of the payload's.
local function frame(fin, op, payload, key, rsv, claim)
  local n = claim or #payload
  local b0 = (fin and 0x80 or 0) | (rsv or 0) | op
  local m = key and 0x80 or 0
  local h
  if n < 126 then h = string.pack("BB", b0, m | n)
  elseif n < 65536 then h = string.pack(">BBI2", b0, m | 126, n)
  else h = string.pack(">BBI8", b0, m | 127, n) end
  if not key then return h .. payload end
  local out = {}
  for i = 1, #payload do
    out[i] = string.char(payload:byte(i) ~ key:byte((i - 1) % 4 + 1))
  end
  return h .. key .. table.concat(out)
end

local KEY = "\1\2\3\4"

-- Reads everything the reader gives for the bytes of 's' fed to a buffer.
local function read_all(r, s)
  local b = core.buffer()
  b:feed(s)
  local out = {}
  while true do
    local kind, a, c = r:read(b)
    out[#out + 1] = { kind, a, c }
    if not kind then break end
  end
  return out
end

-- A neap server whose handler is f(ws, req); returns server, ws:// URL.
local function ws_server(f, wsopts, opts)
  local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
    local ws, err = req:websocket(wsopts)
    if not ws then return end
    f(ws, req)
  end, opts))
  local _, port = srv:address()
  return srv, "ws://127.0.0.1:" .. port .. "/chat", port
end

local function echo(ws)
  while true do
    local d, kind = ws:receive()
    if not d then return end
    ws:send(d, kind)
  end
end

-- A raw TCP client that has done the upgrade by hand; returns the stream.
local function raw_upgrade(port)
  local c = assert(neap.connect("tcp", "127.0.0.1", port, { timeout = 5 }))
  c:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
  local head = assert(c:read_until("\r\n\r\n", { timeout = 5 }))
  assert.matches("^HTTP/1.1 101", head)
  return c
end

-- The close frame the server sent on a raw stream: its code, then whether
-- the connection was closed after it.
local function read_close(c)
  local h = assert(c:read_exactly(2, { timeout = 5 }))
  local b0, b1 = h:byte(1, 2)
  assert.equal(0x88, b0)
  local payload = c:read_exactly(b1 & 0x7F, { timeout = 5 })
  local code = string.unpack(">I2", payload)
  c:shutdown()   -- (the server drops what comes until we close)
  local rest = c:read_all { timeout = 5 }
  return code, rest == "", payload:sub(3)
end

describe("neap.websocket", function()
  helpers.leakcheck()

  describe("the frame reader (neap.buffer, no I/O)", function()
    it("computes the RFC 6455 accept key and checks UTF-8 strictly", function()
      assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", core.ws_accept("dGhlIHNhbXBsZSBub25jZQ=="))
      assert.equal(24, #core.ws_key())
      assert.is_true(core.ws_utf8("plain ascii, then h\u{e9}llo \u{1F600} \u{10FFFF}"))
      for _, bad in ipairs { "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "abc\xFF",
                             "12345678\x80", "\xF0\x8F\xBF\xBF" } do
        assert.is_false(core.ws_utf8(bad), string.format("%q", bad))
      end
    end)

    it("gives the same messages whatever the split (every byte boundary)", function()
      local stream = frame(true, 1, "hello", KEY) .. frame(false, 2, "ab", KEY) ..
                     frame(true, 9, "pi", KEY) .. frame(false, 0, "cd", KEY) ..
                     frame(true, 0, string.rep("x", 300), KEY) .. frame(true, 8, "\3\232bye", KEY)
      for cut = 0, #stream do
        local r, b = core.ws_reader(true, 1000), core.buffer()
        b:feed(stream:sub(1, cut))
        local got = {}
        local fed = false
        while true do
          local kind, a, c = r:read(b)
          if kind then
            got[#got + 1] = kind .. ":" .. tostring(a) .. (c and ":" .. c or "")
          elseif a == "more" then
            if fed then break end
            fed = true
            b:feed(stream:sub(cut + 1))
          else
            error(a)
          end
        end
        assert.same({ "text:hello", "ping:pi", "binary:abcd" .. string.rep("x", 300), "close:1000:bye" }, got,
                    "cut at " .. cut)
      end
    end)

    it("takes empty fragments, first or last (fuzz_ws found a null pointer offset)", function()
      assert.same({ "text", "ok" }, read_all(core.ws_reader(true, 1000),
                                            frame(false, 1, "", KEY) .. frame(true, 0, "ok", KEY))[1])
      assert.same({ "binary", "" }, read_all(core.ws_reader(false, 1000),
                                           frame(false, 2, "") .. frame(false, 0, "") .. frame(true, 0, ""))[1])
    end)

    it("says how many bytes a frame needs before its payload is there", function()
      local r = core.ws_reader(false, 100 * 1000)
      local b = core.buffer()
      b:feed(frame(true, 2, string.rep("z", 70000)):sub(1, 100))
      assert.same({ nil, "more", 70010 }, { r:read(b) })
    end)

    it("encodes frames of every length form, masked or not", function()
      for _, n in ipairs { 0, 125, 126, 65535, 65536 } do
        local data = string.rep("q", n)
        local h, p = core.ws_encode(2, data, false)
        assert.equal(frame(true, 2, data), h .. p)
        local m = core.ws_encode(1, data, true)
        local r = core.ws_reader(true, 1 << 20)
        assert.same({ { "text", data } }, { (function()
          local b = core.buffer()
          b:feed(m)
          return { r:read(b) }
        end)() })
      end
    end)

    it("survives random bytes and random cuts of valid frames (never a crash, always an answer)", function()
      math.randomseed(14)
      for round = 1, 1000 do
        local r, b = core.ws_reader(round % 2 == 0, 300), core.buffer()
        local bytes = {}
        if round % 3 == 0 then   -- valid frames with random bytes flipped
          local f = frame(round % 5 ~= 0, math.random(0, 10), string.rep("z", math.random(0, 200)), KEY)
          for i = 1, #f do bytes[i] = f:byte(i) end
          for _ = 1, math.random(1, 3) do
            local i = math.random(1, #bytes)
            bytes[i] = math.random(0, 255)
          end
        else
          for i = 1, math.random(0, 64) do bytes[i] = math.random(0, 255) end
        end
        b:feed(string.char(table.unpack(bytes)))
        for _ = 1, 100 do
          local kind, a, c = r:read(b)
          if not kind then
            assert.truthy(a == "more" and math.type(c) == "integer" or
                          (type(a) == "string" and (c == 1002 or c == 1007 or c == 1009)), tostring(a))
            break
          end
        end
      end
    end)

    it("names each violation and its close code", function()
      local function first_error(masked, bytes, max)
        local out = read_all(core.ws_reader(masked, max or 1000), bytes)
        local last = out[#out]
        return last[2], last[3]
      end
      local cases = {
        { "unmasked frame from a client", 1002, true, frame(true, 1, "hi") },
        { "masked frame from a server", 1002, false, frame(true, 1, "hi", KEY) },
        { "reserved bits set", 1002, true, frame(true, 1, "hi", KEY, 0x40) },
        { "unknown opcode", 1002, true, frame(true, 3, "hi", KEY) },
        { "unknown opcode", 1002, true, frame(true, 11, "", KEY) },
        { "control frame over 125 bytes", 1002, true, frame(true, 9, string.rep("p", 126), KEY) },
        { "fragmented control frame", 1002, true, frame(false, 9, "p", KEY) },
        { "continuation frame with no message", 1002, true, frame(true, 0, "x", KEY) },
        { "new message inside a fragmented one", 1002, true, frame(false, 1, "a", KEY) .. frame(true, 1, "b", KEY) },
        { "text is not valid UTF-8", 1007, true, frame(true, 1, "a\xFFb", KEY) },
        { "text is not valid UTF-8", 1007, true, frame(false, 1, "\xE2\x82", KEY) .. frame(true, 0, "\x28", KEY) },
        { "message too large", 1009, true, frame(true, 2, "", KEY, 0, 1001) },   -- the header alone
        { "message too large", 1009, true, frame(false, 2, string.rep("a", 600), KEY) ..
                                           frame(true, 0, string.rep("b", 600), KEY) },
        { "close frame of one byte", 1002, true, frame(true, 8, "\3", KEY) },
        { "invalid close code", 1002, true, frame(true, 8, "\3\237", KEY) },   -- 1005
        { "close reason is not valid UTF-8", 1007, true, frame(true, 8, "\3\232\xFF", KEY) },
      }
      for _, case in ipairs(cases) do
        local msg, code = first_error(case[3], case[4])
        assert.equal(case[1], msg)
        assert.equal(case[2], code, case[1])
      end
      -- a fragmented text message whose pieces split a character is fine
      local out = read_all(core.ws_reader(true, 1000),
                           frame(false, 1, "\xE2\x82", KEY) .. frame(true, 0, "\xAC", KEY))
      assert.same({ "text", "\u{20AC}" }, out[1])
    end)
  end)

  describe("neap with neap", function()
    it("echoes text and binary, answers pings, and does the closing handshake", function()
      run(function()
        local got_close
        local srv, url = ws_server(function(ws)
          while true do
            local d, kind, code, reason = ws:receive()
            if not d then got_close = { kind, code, reason } return end
            ws:send(d, kind)
          end
        end)
        local ws = assert(http.websocket(url, { timeout = 5 }))
        assert(ws:send("h\u{e9}llo"))
        assert.same({ "h\u{e9}llo", "text" }, { ws:receive { timeout = 5 } })
        local bin = string.rep("\0\1\255", 100000)
        assert(ws:send(bin, "binary"))
        local d, kind = ws:receive { timeout = 5 }
        assert.equal("binary", kind)
        assert.is_true(d == bin)
        assert(ws:ping("are you there"))
        assert(ws:send("after ping"))
        assert.same({ "after ping", "text" }, { ws:receive { timeout = 5 } })
        assert.is_true(ws:close(4000, "done"))
        assert.same({ nil, "closed", 4000, "" }, { ws:receive() })   -- (the echo: the code alone)
        assert.is_true(ws:is_closed())
        assert.same({ nil, "closed", "ECLOSED" }, { ws:send("late") })
        neap.sleep(0.1)
        assert.same({ "closed", 4000, "done" }, got_close)
        srv:close()
      end)
    end)

    it("returns timeout from receive and goes on afterwards", function()
      run(function()
        local srv, url = ws_server(function(ws)
          neap.sleep(0.3)
          ws:send("late")
          echo(ws)
        end)
        local ws = assert(http.websocket(url))
        assert.same({ nil, "timeout", "timeout" }, { ws:receive { timeout = 0.05 } })
        assert.same({ "late", "text" }, { ws:receive { timeout = 5 } })
        ws:close()
        srv:close()
      end)
    end)

    it("closes with 1000 when the handler returns; the server's close is seen by the client", function()
      run(function()
        local srv, url = ws_server(function(ws) ws:send("bye now") end)
        local ws = assert(http.websocket(url))
        assert.same({ "bye now", "text" }, { ws:receive { timeout = 5 } })
        assert.same({ nil, "closed", 1000, "" }, { ws:receive { timeout = 5 } })
        srv:close()
      end)
    end)

    it("close() from one task while another is in receive() completes the handshake", function()
      run(function()
        local srv, url = ws_server(echo)
        local ws = assert(http.websocket(url))
        local res
        local t = neap.task(function() res = { ws:receive { timeout = 5 } } end)
        neap.sleep(0.05)
        assert.is_true(ws:close(1001))
        t:join { timeout = 5 }
        assert.same({ nil, "closed", 1001 }, { res[1], res[2], res[3] })
        srv:close()
      end)
    end)

    it("close() gives up after close_timeout when the peer never answers", function()
      run(function()
        local done = false
        local srv, port = helpers.server(function(c)
          c:read_until("\r\n\r\n", { timeout = 5 })
          c:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
          c:read_all { timeout = 5 }   -- (never answers the close frame)
          done = true
        end)
        -- (a client whose key we know: the accept check must pass)
        local real_key = core.ws_key
        core.ws_key = function() return "dGhlIHNhbXBsZSBub25jZQ==" end
        local ws, err = http.websocket("ws://127.0.0.1:" .. port .. "/", { close_timeout = 0.2 })
        core.ws_key = real_key
        assert(ws, err)
        local t0 = neap.now()
        assert.same({ nil, "timeout", "timeout" }, { ws:close() })
        assert.truthy(neap.now() - t0 < 1.5)
        assert.same({ nil, "closed", 1006, "" }, { ws:receive() })
        while not done do neap.sleep(0.01) end
        srv:close()
      end)
    end)

    it("refuses a bad upgrade with 400 (426 for a wrong version), and req:websocket says why", function()
      run(function()
        local whys = {}
        local srv = assert(http.listen("127.0.0.1", 0, function(req, res)
          local ws, why = req:websocket()
          assert.is_nil(ws)
          whys[#whys + 1] = why
        end))
        local _, port = srv:address()
        local function ask(headers)
          local c = assert(neap.connect("tcp", "127.0.0.1", port))
          c:write("GET / HTTP/1.1\r\nHost: x\r\n" .. headers .. "\r\n")
          local out = c:read_all { timeout = 5 }
          c:close()
          return out:match("^HTTP/1.1 (%d+)")
        end
        assert.equal("400", ask(""))
        assert.equal("400", ask("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"))
        assert.equal("426", ask("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n" ..
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
        assert.same({ "no Upgrade: websocket header", "bad Sec-WebSocket-Key", "unsupported Sec-WebSocket-Version" },
                    whys)
        srv:close()
      end)
    end)

    it("the client reports a refused or broken handshake", function()
      run(function()
        local srv = assert(http.listen("127.0.0.1", 0, function(req, res) res:send(404, "no\n") end))
        local _, port = srv:address()
        assert.same({ nil, "upgrade refused: 404 Not Found", "EPROTO" },
                    { http.websocket("ws://127.0.0.1:" .. port .. "/") })
        srv:close()
        local raw, rport = helpers.server(function(c)
          c:read_until("\r\n\r\n", { timeout = 5 })
          c:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
                  "Sec-WebSocket-Accept: wrong=\r\n\r\n")
        end)
        assert.same({ nil, "bad handshake: wrong Sec-WebSocket-Accept", "EPROTO" },
                    { http.websocket("ws://127.0.0.1:" .. rport .. "/") })
        raw:close()
        assert.equal("ECONNREFUSED", select(3, http.websocket("ws://127.0.0.1:1/")))
      end)
    end)

    it("picks a subprotocol the client offered", function()
      run(function()
        local srv, url = ws_server(function(ws) ws:send(ws.protocol or "none") end, { protocols = { "b", "c" } })
        local ws = assert(http.websocket(url, { protocols = { "a", "c" } }))
        assert.equal("c", ws.protocol)
        assert.same({ "c", "text" }, { ws:receive { timeout = 5 } })
        ws:close()
        srv:close()
      end)
    end)

    it("raises on misuse, naming the function and argument", function()
      run(function()
        local srv, url = ws_server(echo)
        local ws = assert(http.websocket(url))
        assert.has_error(function() ws:send("\xFF") end,
          "bad argument #1 to 'send' (text is not valid UTF-8 (send it as \"binary\"))")
        assert.has_error(function() ws:send("x", "blob") end,
          "bad argument #2 to 'send' (\"text\" or \"binary\" expected, got blob)")
        assert.has_error(function() ws:ping(string.rep("p", 126)) end, "bad argument #1 to 'ping' (at most 125 bytes)")
        assert.has_error(function() ws:close(1005) end,
          "bad argument #1 to 'close' (close code must be 1000-1003, 1007-1014 or 3000-4999)")
        assert.has_error(function() http.websocket("http://x/") end,
          "bad argument #1 to 'websocket' (ws:// or wss:// URL expected, got \"http://x/\")")
        assert.has_error(function() http.websocket(url, { max_message = -1 }) end,
          "bad argument #2 to 'websocket' (max_message must be an integer >= 0)")
        ws:close()
        srv:close()
      end)
    end)

    it("wss: a websocket over TLS", function()
      local d = T.certs()
      run(function()
        local srv, url = ws_server(echo, nil, { tls = T.server_opts(d) })
        url = url:gsub("^ws://127%.0%.0%.1", "wss://localhost")
        local ws = assert(http.websocket(url, { tls = { ca = d .. "/ca.pem" } }))
        assert(ws:send(string.rep("s", 100000)))
        assert.equal(string.rep("s", 100000), (ws:receive { timeout = 5 }))
        assert.is_true(ws:close())
        local _, err = http.websocket(url)   -- verification is on by default
        assert.matches("certificate verify failed", err)
        neap.sleep(0.1)   -- (the server's side of the failed handshake closes)
        srv:close()
      end)
      T.rmcerts(d)
    end)
  end)

  describe("hostile frames over raw TCP", function()
    local function hostile(bytes, opts)
      local result
      run(function()
        local srv, _, port = ws_server(function(ws)
          result = { ws:receive { timeout = 5 } }
        end, opts)
        local c = raw_upgrade(port)
        c:write(bytes)
        local code, closed, reason = read_close(c)
        c:close()
        neap.sleep(0.05)
        srv:close()
        result.sent = code
        result.closed = closed
        result.reason = reason
      end)
      return result
    end

    it("an unmasked client frame: close 1002", function()
      local r = hostile(frame(true, 1, "hello"))
      assert.same({ nil, "closed", 1002, "unmasked frame from a client" }, { r[1], r[2], r[3], r[4] })
      assert.equal(1002, r.sent)
      assert.equal("unmasked frame from a client", r.reason)
      assert.is_true(r.closed)
    end)

    it("invalid UTF-8 in a text frame: close 1007", function()
      local r = hostile(frame(true, 1, "ok\xC3\x28", KEY))
      assert.equal(1007, r[3])
      assert.equal(1007, r.sent)
      assert.is_true(r.closed)
    end)

    it("a frame over max_message: close 1009 from its header alone", function()
      local r = hostile(frame(true, 2, "", KEY, 0, 20 * MiB))
      assert.equal(1009, r[3])
      assert.equal(1009, r.sent)
      r = hostile(frame(true, 2, string.rep("a", 101), KEY), { max_message = 100 })
      assert.equal(1009, r.sent)
    end)

    it("a bad opcode, a long ping, a fragmented ping: close 1002", function()
      assert.equal(1002, hostile(frame(true, 5, "x", KEY)).sent)
      assert.equal(1002, hostile(frame(true, 9, string.rep("p", 200), KEY)).sent)
      assert.equal(1002, hostile(frame(false, 9, "p", KEY)).sent)
    end)

    it("a masked frame from a server: the client closes with 1002", function()
      run(function()
        local srv, port = helpers.server(function(c)
          c:read_until("\r\n\r\n", { timeout = 5 })
          c:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", frame(true, 1, "masked", KEY))
          c:read_all { timeout = 5 }
        end)
        local real_key = core.ws_key
        core.ws_key = function() return "dGhlIHNhbXBsZSBub25jZQ==" end
        local ws = http.websocket("ws://127.0.0.1:" .. port .. "/")
        core.ws_key = real_key
        assert.same({ nil, "closed", 1002, "masked frame from a server" }, { ws:receive { timeout = 5 } })
        srv:close()
      end)
    end)
  end)

  describe("curl's upgrade request", function()
    local it_curl = T.have("curl") and it or pending
    it_curl("gets 101 with the right Sec-WebSocket-Accept", function()
      run(function()
        local srv, _, port = ws_server(function(ws) ws:close(1000) end, { close_timeout = 0.5 })
        local out = T.run({ "curl", "-s", "-i", "--http1.1", "--max-time", "5",
          "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
          "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
          "http://127.0.0.1:" .. port .. "/" })
        assert.matches("^HTTP/1.1 101 Switching Protocols\r\n", out)
        assert.truthy(out:find("\r\nSec%-WebSocket%-Accept: s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=\r\n"), out)
        assert.truthy(out:find("\r\n\r\n\x88\x02\x03\xE8", 1, true), "the close frame follows the head")
        srv:close()
      end)
    end)
  end)

  describe("against Node's ws package", function()
    local dir
    local have_node = T.have("node") and T.have("npm")
    if have_node then
      dir = helpers.tmpdir()
      local out, rc = helpers.sh("npm install --silent --no-audit --no-fund --prefix " .. dir .. " ws")
      if rc ~= 0 then
        io.stderr:write("websocket_spec: npm install ws failed; the Node tests are pending\n", out)
        have_node = false
      end
    end
    local it_node = have_node and it or pending
    lazy_teardown(function() if dir then os.execute("rm -rf " .. dir) end end)

    local function node_script(src)
      local path = dir .. "/s" .. math.random(1, 1e9) .. ".js"
      helpers.write_file(path, src)
      return path
    end

    it_node("neap's client against a ws server: text, binary, fragments, 16 MiB, ping, close codes", function()
      run(function()
        local js = node_script([[
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 }, () => {
  console.log('PORT ' + wss.address().port);
});
wss.on('connection', (ws) => {
  ws.on('ping', (d) => console.log('ping ' + d.toString()));
  ws.on('message', (d, isBinary) => {
    const s = isBinary ? null : d.toString();
    if (s === 'frag') {
      ws.send('ab', { fin: false }); ws.ping('mid'); ws.send('cd', { fin: false }); ws.send('ef', { fin: true });
    } else if (s === 'big') {
      ws.send(Buffer.alloc(16 * 1024 * 1024, 7));
    } else if (s === 'toobig') {
      ws.send(Buffer.alloc(16 * 1024 * 1024 + 1, 7));
    } else if (s === 'close') {
      ws.close(4001, 'node says bye');
    } else {
      ws.send(d, { binary: isBinary });
    }
  });
  ws.on('close', (code, reason) => console.log('close ' + code + ' ' + reason.toString()));
});
]])
        local p, port = T.spawn_port({ "node", js }, "^PORT (%d+)$")
        local url = "ws://127.0.0.1:" .. port .. "/"
        local ws = assert(http.websocket(url, { timeout = 10 }))
        ws:send("h\u{e9}llo")
        assert.same({ "h\u{e9}llo", "text" }, { ws:receive { timeout = 10 } })
        ws:send("\0\1\2\255", "binary")
        assert.same({ "\0\1\2\255", "binary" }, { ws:receive { timeout = 10 } })
        ws:send("frag")
        assert.same({ "abcdef", "text" }, { ws:receive { timeout = 10 } })
        ws:send("big")
        local d, kind = ws:receive { timeout = 30 }
        assert.equal("binary", kind)
        assert.equal(16 * MiB, #d)
        assert.is_true(d == string.rep("\7", 16 * MiB))
        d = nil
        local big = string.rep("x", 3 * MiB)   -- a large masked message the other way
        ws:send(big)
        assert.is_true((ws:receive { timeout = 30 }) == big)
        ws:ping("hi node")
        ws:send("toobig")
        assert.same({ nil, "closed", 1009, "message too large" }, { ws:receive { timeout = 30 } })
        -- a second connection: the server closes with its own code
        ws = assert(http.websocket(url, { timeout = 10 }))
        ws:send("close")
        assert.same({ nil, "closed", 4001, "node says bye" }, { ws:receive { timeout = 10 } })
        -- a third: neap closes with a code and reason
        ws = assert(http.websocket(url, { timeout = 10 }))
        assert.is_true(ws:close(4002, "neap says bye"))
        neap.sleep(0.2)
        p:kill()
        p:wait { timeout = 5 }
        local out = p.stdout:read_all { timeout = 5 } or ""
        p:close()
        assert.truthy(out:find("ping hi node", 1, true), out)
        assert.truthy(out:find("close 1009 ", 1, true), out)
        assert.truthy(out:find("close 4001 \n", 1, true), out)   -- (its code, echoed by neap)
        assert.truthy(out:find("close 4002 neap says bye", 1, true), out)
      end, 90)
    end)

    it_node("a ws client against neap's server: text, binary, fragments, 16 MiB, pong, close codes", function()
      run(function()
        local closes = {}
        local srv, url = ws_server(function(ws)
          while true do
            local d, kind, code, reason = ws:receive()
            if not d then closes[#closes + 1] = code .. " " .. tostring(reason) return end
            ws:send(d, kind)
          end
        end)
        local js = node_script([[
const WebSocket = require('ws');
const url = process.argv[2];
const out = (s) => console.log(s);
const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
const steps = [
  () => ws.send('h\u00e9llo'),
  () => ws.send(Buffer.from([0, 1, 2, 255])),
  () => { ws.send('ab', { fin: false }); ws.send('cd', { fin: false }); ws.send('ef', { fin: true }); },
  () => ws.send(Buffer.alloc(16 * 1024 * 1024, 9)),
  () => ws.ping('hi neap'),
  () => ws.send(Buffer.alloc(16 * 1024 * 1024 + 1, 9)),
];
let i = 0;
const next = () => { if (i < steps.length) steps[i++](); };
ws.on('open', next);
ws.on('message', (d, isBinary) => {
  if (d.length > 1000) out('msg ' + (isBinary ? 'binary' : 'text') + ' len ' + d.length + ' ' + d.every((b) => b === 9));
  else out('msg ' + (isBinary ? 'binary ' + d.toString('hex') : 'text ' + d.toString()));
  next();
});
ws.on('pong', (d) => { out('pong ' + d.toString()); next(); });
ws.on('close', (code, reason) => {
  out('close ' + code + ' ' + reason.toString());
  const ws2 = new WebSocket(url);
  ws2.on('open', () => ws2.close(4003, 'node leaves'));
  ws2.on('close', (c2) => { out('close2 ' + c2); process.exit(0); });
});
ws.on('error', (e) => out('error ' + e.message));
]])
        local out, code = T.run({ "node", js, url }, nil, 60)
        assert.equal(0, code, out)
        assert.equal(table.concat({
          "msg text h\u{e9}llo", "msg binary 000102ff", "msg text abcdef",
          "msg binary len 16777216 true", "pong hi neap", "close 1009 message too large",
          "close2 4003", "" }, "\n"), out)
        neap.sleep(0.1)
        table.sort(closes)
        assert.same({ "1009 message too large", "4003 node leaves" }, closes)
        srv:close()
      end, 90)
    end)
  end)

  describe("examples/ws_chat.lua with a real browser (headless Chromium)", function()
    -- Debian's chromium; installed here when absent (as root), as make deps does
    local have = T.have("chromium")
    if not have and T.have("apt-get") and helpers.sh("id -u") == "0\n" then
      helpers.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
      have = T.have("chromium")
    end
    local it_chromium = have and it or pending

    it_chromium("the page's WebSocket talks to a neap client through the server", function()
      run(function()
        local chat, port = T.spawn_port({ helpers.NEAP, "examples/ws_chat.lua", "0" }, "^listening on (%d+)$")
        local base = "http://127.0.0.1:" .. port
        local me = assert(http.websocket("ws://127.0.0.1:" .. port .. "/ws?name=neap", { timeout = 10 }))
        local profile = helpers.tmpdir()
        local browser = assert(neap.spawn { "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" .. profile,
          base .. "/?name=browser&echo", stdout = "null", stderr = "null" })
        local heard = {}
        local function hear()
          local m, err = me:receive { timeout = 45 }
          assert(m, "no message from the browser: " .. tostring(err))
          heard[#heard + 1] = m
          return m
        end
        local ok, err = pcall(function()
          assert.equal("browser joined", hear())
          assert.equal("browser: ready", hear())
          me:send("hello from neap \u{2713}")
          assert.equal("browser: echo neap: hello from neap \u{2713}", hear())
          me:send(string.rep("long ", 2000))
          assert.equal("browser: echo neap: " .. string.rep("long ", 2000), hear())
        end)
        browser:kill()
        browser:wait { timeout = 10 }
        browser:close()
        os.execute("rm -rf " .. profile)
        if ok then assert.equal("browser left", hear()) end
        me:close()
        T.stop(chat)
        assert(ok, err)
      end, 90)
    end)
  end)
end)
