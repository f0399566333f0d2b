-- A TLS echo server and a client in one script: it makes a self-signed
-- certificate for localhost with the openssl command in a temporary
-- directory, serves, connects, echoes three lines, and exits by itself.
-- Run: neap examples/tls_echo.lua
local neap = require "neap"

if not os.execute("command -v openssl >/dev/null 2>&1") then
  print("tls_echo: the openssl command is missing; skipped")
  return
end

-- a self-signed certificate for localhost (the client trusts it as its CA)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. dir))
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
assert(os.execute("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 " ..
  "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 " ..
  "-keyout " .. key .. " -out " .. cert .. " 2>/dev/null"))

neap.run(function()
  local srv = assert(neap.listen("tls", "127.0.0.1", 0, { cert = cert, key = key }))
  local _, port = srv:address()
  -- each connection in its own task, after its handshake
  srv:serve(function(c)
    for line in c:lines() do c:write("echo: ", line, "\n") end
  end)

  local c = assert(neap.connect("tls", "localhost", port, { ca = cert, timeout = 5 }))
  local info = c:tls()
  print("client: " .. info.version .. ", server is " .. info.peer.subject)
  for _, line in ipairs { "hello", "over", "TLS" } do
    c:write(line, "\n")
    print("client got: " .. c:read_line { timeout = 5 })
  end
  c:close()
  srv:close()
end)

os.remove(cert)
os.remove(key)
os.remove(dir)
