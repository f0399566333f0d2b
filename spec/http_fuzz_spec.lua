-- The HTTP fuzz target's driver (spec/fuzz/http_driver.lua, also run by
-- make fuzz) over its seed corpus and some random bytes: the server's parser
-- path gives the same requests whatever the split; garbage ends in an error.
local helpers = require "spec.helpers"

local drive = dofile("spec/fuzz/http_driver.lua")

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("the HTTP fuzz driver", function()
  helpers.leakcheck()

  it("gives the same requests whole and split for each seed of the corpus", function()
    local seen = {}
    for _, name in ipairs { "get", "pipelined", "chunked", "length", "expect", "upgrade", "close" } do
      local out, ended = drive(slurp("spec/fuzz/corpus_http/" .. name))
      assert.is_true(#out > 0, name)
      assert.is_not.equal("error", ended, name)
      seen[name] = out
    end
    assert.equal("GET / 1.1 true false none nil 27 host=h\nGET /2 1.1 true false none nil 28 host=h\n" ..
                 "GET /3 1.0 false false none nil 19", seen.pipelined)
    assert.truthy(seen.chunked:find("body 19 abc0123456789abcdef", 1, true))
    assert.truthy(seen.close:find("GET / 1.1 false", 1, true))
    assert.falsy(seen.close:find("/after", 1, true))   -- nothing after Connection: close
  end)

  it("ends in an error for malformed and smuggling requests", function()
    for _, name in ipairs { "smuggle_te_cl", "smuggle_two_cl", "folding", "bad", "chunk_overflow" } do
      local _, ended = drive(slurp("spec/fuzz/corpus_http/" .. name))
      assert.equal("error", ended, name)
    end
    local _, ended = drive("GET / HTTP/1.1\r\nX: " .. ("y"):rep(2000) .. "\r\n\r\n")
    assert.equal("error", ended)   -- over the driver's max_header: 431
  end)

  it("never fails on random bytes", function()
    local seed = 14
    local function rnd(n)   -- a small LCG: the same bytes on every run
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local prefix = "GET / HTTP/1.1\r\n"
    for _ = 1, 60 do
      local t = {}
      for i = 1, rnd(120) do t[i] = string.char(rnd(256)) end
      drive(table.concat(t))
      drive(prefix .. table.concat(t))
    end
  end)
end)
