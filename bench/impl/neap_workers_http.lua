-- neap HTTP hello world for neap --workers N, with reuseport:
-- neap --workers N neap_workers_http.lua PORT
local http = require "neap.http"
assert(http.listen("127.0.0.1", tonumber(arg[1]), function(_, res)
  res:send(200, "hello world\n", { ["content-type"] = "text/plain" })
end, { reuseport = true }))
