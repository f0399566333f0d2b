-- neap.websocket: a chat server that serves its own page. Each browser (or
-- any WebSocket client) that connects to /ws gets what the others say.
--   neap examples/ws_chat.lua 8080   serves until Ctrl-C: open http://localhost:8080/ in a few tabs
--   neap examples/ws_chat.lua        self-test: serves on a free port, two neap clients chat, exits
-- The page's /?name=you picks a name; /?echo (a test mode, used by the
-- spec's headless Chromium) makes the page send back whatever it receives.
local neap = require "neap"
local http = require "neap.http"

local PAGE = [[<!doctype html>
<html><head><meta charset="utf-8"><title>neap chat</title>
<style>body { font: 15px sans-serif; margin: 2em } #log { list-style: none; padding: 0 }</style>
</head><body>
<h1>neap chat</h1>
<ul id="log"></ul>
<form id="f"><input id="msg" autocomplete="off" autofocus> <button>send</button></form>
<script>
const params = new URLSearchParams(location.search);
const echo = params.has('echo');
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + location.search);
const log = document.getElementById('log');
function show(text) { const li = document.createElement('li'); li.textContent = text; log.appendChild(li); }
ws.onopen = () => { show('connected'); if (echo) ws.send('ready'); };
ws.onmessage = (e) => { show(e.data); if (echo) ws.send('echo ' + e.data); };
ws.onclose = (e) => show('closed (' + e.code + ')');
document.getElementById('f').onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById('msg');
  if (m.value && ws.readyState === WebSocket.OPEN) { ws.send(m.value); show('me: ' + m.value); m.value = ''; }
};
</script></body></html>
]]

local clients = {}   -- ws -> name
local count = 0

-- Sends text to every client but 'from' (each send may wait for a slow one).
local function broadcast(from, text)
  for ws in pairs(clients) do
    if ws ~= from then ws:send(text) end
  end
end

local function handler(req, res)
  if req.path == "/" then
    return res:send(200, PAGE, { ["Content-Type"] = "text/html; charset=utf-8" })
  elseif req.path ~= "/ws" then
    return res:send(404, "not found\n", { ["Content-Type"] = "text/plain" })
  end
  local ws = req:websocket { max_message = 64 * 1024 }
  if not ws then return end   -- (a 400 was sent)
  count = count + 1
  local name = (req.query or ""):match("name=([%w_]+)") or ("user" .. count)
  clients[ws] = name
  broadcast(ws, name .. " joined")
  while true do
    local text, kind = ws:receive()
    if not text then break end
    if kind == "text" then broadcast(ws, name .. ": " .. text) end
  end
  clients[ws] = nil
  broadcast(ws, name .. " left")
end

local port = tonumber(arg and arg[1])
local srv = assert(http.listen("127.0.0.1", port or 0, handler))
local _, bound = srv:address()
print("listening on " .. bound)
io.stdout:flush()

if not port then
  -- the self-test: alice and bob chat through the server
  local url = "ws://127.0.0.1:" .. bound .. "/ws?name="
  local alice = assert(http.websocket(url .. "alice"))
  local bob = assert(http.websocket(url .. "bob"))
  print("alice heard: " .. assert(alice:receive { timeout = 5 }))   --> bob joined
  bob:send("hi alice")
  print("alice heard: " .. assert(alice:receive { timeout = 5 }))   --> bob: hi alice
  alice:send("hi bob")
  print("bob heard: " .. assert(bob:receive { timeout = 5 }))       --> alice: hi bob
  bob:close()
  print("alice heard: " .. assert(alice:receive { timeout = 5 }))   --> bob left
  alice:close()
  -- and the page is there
  local c = assert(neap.connect("tcp", "127.0.0.1", bound))
  c:write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  local reply = c:read_all { timeout = 5 }
  c:close()
  print("page: " .. reply:match("^[^\r]*") .. (reply:find("new WebSocket", 1, true) and ", with its script" or ""))
  srv:close()
end
