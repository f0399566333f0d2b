-- Issue 18.14: an embedder that closes every handle of its loop with
-- uv_walk before neap_free hit libuv's assertion
-- "uv_close: !uv__is_closing(handle)". neap_free now finishes the closes
-- that the embedder began (spec/c/embed_walk.c).
local helpers = require "helpers"

describe("regress 18.14: uv_walk closing neap's handles before neap_free", function()
  it("tears down cleanly with servers, streams, children, timers and signals open", function()
    local script = helpers.tmpfile([[
      local neap = require "neap"
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      srv:serve(function(c) for l in c:lines() do c:write(l, "\n") end end)
      local c = assert(neap.connect("tcp", "127.0.0.1", port))
      c:write("hi\n"); print("echo:", c:read_line { timeout = 2 })
      local p = neap.spawn { "sleep", "5" }
      local u = neap.udp { host = "127.0.0.1", port = 0 }
      neap.timer(10, function() end)
      neap.signal("USR1", function() end)
      neap.task(function() neap.sleep(100) end)
      neap.task(function() c:read_line() end)
      print("set up")
      stop()
    ]])
    local vg = helpers.VALGRIND
    local out, rc = helpers.sh(vg .. "./" .. helpers.BUILD .. "/embed_walk " .. script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("echo:\thi", 1, true), out)
    assert.truthy(out:find("closed: yes", 1, true), out)
    os.remove(script)
  end)
end)
