-- neap.dispatcher: the classic asyncore HTTP/1.0 GET client, run against a
-- small server this example starts itself.
local neap = require "neap"
local dispatcher = require "neap.dispatcher"

-- The server: one HTTP/1.0 response per connection.
local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
local _, port = srv:address()
srv:serve(function(c)
  local request = c:read_line { timeout = 5 }
  repeat local h = c:read_line { timeout = 5 } until h == "" or h == nil
  local body = "hello from " .. (request or "?") .. "\n"
  c:write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", #body, "\r\n\r\n", body)
end)

-- The client, as in asyncore's documentation.
local HTTPClient = {}
HTTPClient.__index = HTTPClient

function HTTPClient.new(host, path)
  local self = dispatcher.new(setmetatable({}, HTTPClient))
  self:create_socket()
  self:connect(host, port)
  self.buffer = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n"):format(path, host)
  self.received = {}
  return self
end

function HTTPClient:handle_connect() end
function HTTPClient:handle_close()
  self:close()
  local response = table.concat(self.received)
  io.write(response)
end
function HTTPClient:handle_read() self.received[#self.received + 1] = self:recv(8192) end
function HTTPClient:writable() return #self.buffer > 0 end
function HTTPClient:handle_write()
  local sent = self:send(self.buffer)
  self.buffer = self.buffer:sub(sent + 1)
end

local client = HTTPClient.new("127.0.0.1", "/index.html")
dispatcher.loop { timeout = 10 }
srv:close()
local response = table.concat(client.received)
assert(response:match("^HTTP/1.0 200 OK\r\n"), "bad response")
assert(response:find("hello from GET /index.html HTTP/1.0", 1, true))
