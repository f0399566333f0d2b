-- Fetches a page over HTTPS by hand: neap.connect("tls") with ALPN, an
-- HTTP/1.1 request written on the stream, the status line, headers and a
-- Content-Length body read with the stream's framing. The server is a
-- local neap TLS server with a throwaway certificate, so the script needs
-- no network and exits by itself.
-- Run: neap examples/tls_client.lua
local neap = require "neap"

if not os.execute("command -v openssl >/dev/null 2>&1") then
  print("tls_client: the openssl command is missing; skipped")
  return
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. dir))
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
assert(os.execute("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 " ..
  "-subj /CN=localhost -addext subjectAltName=DNS:localhost " ..
  "-keyout " .. key .. " -out " .. cert .. " 2>/dev/null"))

-- a tiny HTTPS server: one response per connection
local function serve(srv)
  srv:serve(function(c)
    local request = c:read_line { timeout = 5 }
    repeat local h = c:read_line { timeout = 5 } until h == "" or h == nil
    local body = "Hello from neap over " .. c:tls().version .. " (" .. tostring(c:tls().alpn) .. ")\n" ..
      "You asked: " .. tostring(request) .. "\n"
    c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", #body,
            "\r\nConnection: close\r\n\r\n", body)
  end)
end

-- GET https://host:port/path -> status, headers, body
local function get(host, port, path, opts)
  local c, err = neap.connect("tls", host, port, opts)
  if not c then return nil, err end
  c:write("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n")
  local status = tonumber(c:read_line { timeout = 5 }:match("^HTTP/1%.%d (%d+)"))
  local headers = {}
  for line in c:lines { timeout = 5 } do
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  local body = c:read_exactly(tonumber(headers["content-length"]), { timeout = 5 })
  c:close()
  return status, headers, body
end

neap.run(function()
  local srv = assert(neap.listen("tls", "127.0.0.1", 0, { cert = cert, key = key, alpn = { "http/1.1" } }))
  local _, port = srv:address()
  serve(srv)
  local status, headers, body = get("localhost", port, "/index.txt", { ca = cert, alpn = { "http/1.1" }, timeout = 5 })
  print("status: " .. status)
  print("content-type: " .. headers["content-type"])
  io.write(body)
  -- without the certificate as CA, verification fails
  print("untrusted: " .. select(2, get("localhost", port, "/", { timeout = 5 })))
  srv:close()
end)

os.remove(cert)
os.remove(key)
os.remove(dir)
