-- neap.http: a static file server. Files under a root folder are streamed
-- with neap.open (never read whole), with a content type from the
-- extension, HEAD, and single byte ranges (Range: bytes=a-b). Nothing
-- outside the root is served: ".." in a path is refused (403), and so is a
-- path whose symbolic links lead out of the root.
--   neap examples/http_files.lua 8080 [root]   serves root (default: this folder) until Ctrl-C
--   neap examples/http_files.lua               serves this folder on a free port, asks itself, and exits
local neap = require "neap"
local http = require "neap.http"

local TYPES = {
  html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
  txt = "text/plain; charset=utf-8", md = "text/markdown; charset=utf-8",
  lua = "text/plain; charset=utf-8", c = "text/plain; charset=utf-8", h = "text/plain; charset=utf-8",
  css = "text/css", js = "text/javascript", json = "application/json", xml = "application/xml",
  svg = "image/svg+xml", png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg",
  gif = "image/gif", webp = "image/webp", ico = "image/x-icon", pdf = "application/pdf",
  wasm = "application/wasm", gz = "application/gzip", zip = "application/zip",
}

local function content_type(path)
  local ext = path:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()] or "application/octet-stream"
end

-- "/a%20b/c" -> "/a b/c"; nil for a path that may not be served
local function decode(path)
  path = path:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  if path:find("%z") or path:sub(1, 1) ~= "/" then return nil, 400 end
  for seg in path:gmatch("[^/\\]+") do
    if seg == ".." then return nil, 403 end
  end
  return path
end

-- Range: bytes=a-b | a- | -n  ->  first, last (0-based, inclusive); nil: the
-- whole file; false: not satisfiable
local function range(h, size)
  if not h then return nil end
  local a, b = h:match("^bytes=(%d*)%-(%d*)$")
  if not a or (a == "" and b == "") then return nil end   -- several ranges, or junk: the whole file
  local first, last
  if a == "" then first, last = math.max(size - tonumber(b), 0), size - 1
  else first, last = tonumber(a), b ~= "" and math.min(tonumber(b), size - 1) or size - 1 end
  if first > last or first >= size then return false end
  return first, last
end

local function files(root)
  root = assert(neap.realpath(root))
  return function(req, res)
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return res:send(405, "method not allowed\n", { Allow = "GET, HEAD" })
    end
    local path, status = decode(req.path)
    if not path then return res:send(status, status == 403 and "forbidden\n" or "bad request\n") end
    if path:sub(-1) == "/" then path = path .. "index.html" end
    local full = neap.realpath(root .. path)
    if not full then return res:send(404, "not found\n") end
    if full ~= root and full:sub(1, #root + 1) ~= root .. "/" then
      return res:send(403, "forbidden\n")   -- a symbolic link out of the root
    end
    local st = neap.stat(full)
    if not st or st.type ~= "file" then return res:send(404, "not found\n") end
    local f = neap.open(full, "r")
    if not f then return res:send(403, "forbidden\n") end
    local first, last = range(req.headers.range, st.size)
    local headers = { ["Content-Type"] = content_type(full), ["Accept-Ranges"] = "bytes",
                      ["Last-Modified"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(st.mtime)) }
    if first == false then
      f:close()
      headers["Content-Range"] = "bytes */" .. st.size
      return res:send(416, "range not satisfiable\n", headers)
    end
    local left = st.size
    if first then
      headers["Content-Range"] = string.format("bytes %d-%d/%d", first, last, st.size)
      left = last - first + 1
      f:seek("set", first)
    end
    headers["Content-Length"] = left
    res:start(first and 206 or 200, headers)
    if req.method == "GET" then
      while left > 0 do
        local data = f:read(math.min(left, 65536))
        if not data then break end
        left = left - #data
        if not res:write(data) then break end   -- the client went
      end
    end
    f:close()
    res:finish()
  end
end

local port = tonumber(arg and arg[1]) or 0
local root = arg and arg[2] or (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$")) or "."
local srv = assert(http.listen("127.0.0.1", port, files(root)))
local _, bound = srv:address()
print("listening on " .. bound .. ", serving " .. neap.realpath(root))

if port == 0 then
  -- one connection by hand (keep-alive): a file, HEAD, a range, and the refusals
  local me = (arg and arg[0] or "http_files.lua"):match("([^/]*)$")
  local c = assert(neap.connect("tcp", "127.0.0.1", bound))
  local function ask(method, path, extra)
    c:write(method, " ", path, " HTTP/1.1\r\nHost: localhost\r\n", extra or "", "\r\n")
    local status = c:read_line { timeout = 5 }
    local h = {}
    for line in function() return c:read_line { timeout = 5 } end do
      if line == "" then break end
      local k, v = line:match("^([^:]+):%s*(.*)$")
      h[k:lower()] = v
    end
    local body = ""
    if method ~= "HEAD" then body = c:read_exactly(tonumber(h["content-length"]), { timeout = 5 }) end
    return status:match(" (%d+)"), h, body
  end
  local mine = io.open(root .. "/" .. me, "rb"):read("a")
  local s, h, body = ask("GET", "/" .. me)
  print("GET /" .. me, s, h["content-type"], body == mine and "same bytes" or "DIFFERENT")
  s, h = ask("HEAD", "/" .. me)
  print("HEAD", s, h["content-length"] == tostring(#mine) and "length ok" or "length WRONG")
  s, h, body = ask("GET", "/" .. me, "Range: bytes=3-12\r\n")
  print("Range bytes=3-12", s, h["content-range"], body == mine:sub(4, 13) and "same bytes" or "DIFFERENT")
  print("GET /../etc/passwd", (ask("GET", "/../etc/passwd")))
  print("GET /%2e%2e/etc/passwd", (ask("GET", "/%2e%2e/etc/passwd")))
  print("GET /no/such/file", (ask("GET", "/no/such/file")))
  c:close()
  srv:close()
end
