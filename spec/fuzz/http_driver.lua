-- The driver of spec/fuzz/fuzz_http.c (and of spec/http_fuzz_spec.lua): the
-- server's parser path of neap.http (src/http.c's head, body and finish over
-- a buffer, driven as lua/neap/http.lua drives them) run over one input fed
-- whole, a byte at a time, in pieces whose sizes come from the input and,
-- for a short input, in two pieces cut at every byte boundary. Every way of
-- feeding must give the same requests (heads and decoded bodies) and end the
-- same way; garbage must end in an error (the server's 400 or 431), never in
-- a crash. Returns a function(data) that raises on a difference.
local core = require "neap.core"

local MAX_HEADER = 1024   -- small, so that fuzzed heads reach it

local function show_head(h)
  local names = {}
  for k in pairs(h.headers) do names[#names + 1] = k end
  table.sort(names)
  local out = { h.method, h.target, h.version, tostring(h.keep_alive), tostring(h.upgrade),
                h.body, tostring(h.length), tostring(h.size) }
  for _, k in ipairs(names) do
    local v = h.headers[k]
    if type(v) == "table" then v = "[" .. table.concat(v, "|") .. "]" end
    out[#out + 1] = k .. "=" .. v
  end
  return table.concat(out, " ")
end

-- Feeds the pieces that next() returns (nil at the end) as the server does:
-- a head, then its body in pieces of at most 'bodyn' bytes, until an error,
-- a request that closes the connection (no keep-alive, an upgrade) or the
-- end of the input. Returns the transcript and how it ended.
local function serve(next, bodyn)
  local p, b = core.http_parser("request"), core.buffer()
  local out, state, body = {}, "head", nil
  local function step()
    while true do
      if state == "head" then
        local h, err, code = p:head(b, MAX_HEADER)
        if not h then
          if code == "more" then return "more" end
          assert(code == "EPROTO" or code == "E2BIG", "head: unexpected code " .. tostring(code))
          assert(type(err) == "string" and #err > 0, "head: no reason")
          return "error"
        end
        out[#out + 1] = show_head(h)
        if h.body ~= "none" and h.body ~= "length" and h.body ~= "chunked" then
          error("a request with body " .. tostring(h.body))
        end
        local last = not h.keep_alive or h.upgrade
        if h.body == "none" then
          if last then return "closed" end
        else
          state, body = last and "lastbody" or "body", {}
        end
      else
        local d, done, code = p:body(b, bodyn)
        if not d then
          assert(code == "EPROTO", "body: unexpected code " .. tostring(code))
          return "error"
        end
        body[#body + 1] = d
        if done then
          out[#out + 1] = "body " .. #table.concat(body) .. " " .. table.concat(body)
          if state == "lastbody" then return "closed" end
          state = "head"
        elseif d == "" then
          return "more"
        end
      end
    end
  end
  local ended = "more"
  while true do
    local piece = next()
    if piece == nil then break end
    b:feed(piece)
    ended = step()
    if ended ~= "more" then break end
  end
  if ended == "more" then
    -- the end of the input: what the server has is a partial request or none
    local ok, err, code = p:finish()
    ended = ok and "end" or ("end-error " .. tostring(code))
    if not ok then assert(code == "EPROTO", "finish: unexpected code " .. tostring(code)) end
  end
  return table.concat(out, "\n"), ended
end

local function pieces(list)
  local i = 0
  return function() i = i + 1 return list[i] end
end

local function check(data, what, out, ended, out0, ended0)
  if out ~= out0 or ended ~= ended0 then
    error(string.format("fed %s, the result differs from fed whole:\n%q %s\nwhole:\n%q %s\ninput: %q",
      what, out, ended, out0, ended0, data), 0)
  end
end

return function(data)
  local bodyn = 1 + (#data > 0 and data:byte(1) or 0) % 7 * 9
  local out0, ended0 = serve(pieces { data }, 65536)
  -- a byte at a time
  local i = 0
  local out, ended = serve(function()
    i = i + 1
    if i <= #data then return data:sub(i, i) end
  end, bodyn)
  check(data, "a byte at a time", out, ended, out0, ended0)
  -- pieces of sizes taken from the input
  local j = 1
  out, ended = serve(function()
    if j > #data then return nil end
    local n = 1 + data:byte(j) % 31
    local s = data:sub(j, j + n - 1)
    j = j + n
    return s
  end, bodyn)
  check(data, "in pieces", out, ended, out0, ended0)
  -- two pieces cut at every byte boundary
  if #data <= 300 then
    for cut = 1, #data - 1 do
      out, ended = serve(pieces { data:sub(1, cut), data:sub(cut + 1) }, 65536)
      check(data, "cut at " .. cut, out, ended, out0, ended0)
    end
  end
  return out0, ended0
end
