-- neap.dispatcher: a line chat server on asynchat. Every line a client
-- sends goes to every other client. Two clients are run here so the
-- example ends by itself.
local neap = require "neap"
local dispatcher = require "neap.dispatcher"

local members = {}

local function ChatHandler(sock)
  local h = dispatcher.chat({}, sock)
  h:set_terminator("\n")
  members[h] = true
  function h:found_terminator()
    local line = self:_get_data():gsub("\r$", "")
    for other in pairs(members) do
      if other ~= self then other:push(line .. "\n") end
    end
    print("server: " .. line)
  end
  function h:handle_close()
    members[self] = nil
    self:close()
  end
  return h
end

local server = dispatcher.new {
  handle_accepted = function(self, sock) ChatHandler(sock) end,
}
server:create_socket()
server:bind("127.0.0.1", 0)
assert(server:listen(5))
local _, port = server:address()

-- Two clients talk through the server.
local heard = {}
local a = assert(neap.connect("tcp", "127.0.0.1", port))
local b = assert(neap.connect("tcp", "127.0.0.1", port))
neap.sleep(0.05)   -- both have joined
a:write("hello from a\n")
heard[#heard + 1] = b:read_line { timeout = 5 }
b:write("hi a, this is b\n")
heard[#heard + 1] = a:read_line { timeout = 5 }
a:close() b:close()
neap.sleep(0.05)
server:close()
dispatcher.loop { timeout = 2 }
print("b heard: " .. heard[1])
print("a heard: " .. heard[2])
assert(heard[1] == "hello from a" and heard[2] == "hi a, this is b")
