-- Runs every file in examples/ (each exits by itself, or is driven here).
local neap = require "neap"
local helpers = require "helpers"
local sh, NEAP = helpers.sh, helpers.NEAP

-- Examples that need a partner or arguments are driven by their own test below.
local driven = {
  ["echo_server.lua"] = true, ["echo_client.lua"] = true, ["chat.lua"] = true,
  ["follow.lua"] = true,   -- follows a file until killed: spec/follow_spec.lua
}

describe("examples", function()
  it("examples/tour.lua runs and exits by itself", function()
    local out, rc = sh("timeout 10 " .. NEAP .. " examples/tour.lua </dev/null")
    assert.equal(0, rc, out)
    assert.truthy(out:find("client got: HELLO\nclient got: FROM\nclient got: NEAP\n", 1, true), out)
    assert.truthy(out:find("join: nil, timeout", 1, true))
    assert.truthy(out:find("slow task: cancelled", 1, true))
  end)

  it("echo_server.lua and echo_client.lua talk to each other", function()
    helpers.run(function()
      -- the server runs as a child; its first line tells the port
      local fifo = os.tmpname()
      os.remove(fifo)
      local srv_out = helpers.tmpfile("")
      os.execute(NEAP .. " examples/echo_server.lua 0 >" .. srv_out .. " 2>&1 & echo $! >" .. fifo)
      local f = io.open(fifo) local pid = f:read("l") f:close()
      local port
      for _ = 1, 200 do
        f = io.open(srv_out) local l = f:read("l") f:close()
        port = l and l:match("listening on (%d+)")
        if port then break end
        neap.sleep(0.01)
      end
      assert.truthy(port, "server did not start")
      local out, rc = sh(NEAP .. " examples/echo_client.lua " .. port .. " one 'two words' three")
      os.execute("kill " .. pid)
      os.remove(fifo) os.remove(srv_out)
      assert.equal(0, rc, out)
      assert.equal("one\ntwo words\nthree\n", out)
    end)
  end)

  it("chat.lua broadcasts, and survives a client that vanishes mid-line", function()
    local out, rc = sh("timeout 30 " .. NEAP .. " examples/chat.lua </dev/null")
    assert.equal(0, rc, out)
    assert.equal("alice heard: bob joined\nalice heard: carol joined\n" ..
                 "alice heard: carol left\nalice heard: bob: hi alice\n", out)
  end)

  it("pipe_csum.lua checks the sha256 of its pipeline's output", function()
    local out, rc = sh("timeout 60 " .. NEAP .. " examples/pipe_csum.lua </dev/null")
    assert.equal(0, rc, out)
    assert.truthy(out:find("stage 3 (sha256sum): exit 0\n", 1, true), out)
    assert.truthy(out:find("checksum ok\n", 1, true), out)
  end)

  it("pipe_grep.lua counts the matching lines of its own source or of a file argument", function()
    local out, rc = sh("timeout 60 " .. NEAP .. " examples/pipe_grep.lua </dev/null")
    assert.equal(0, rc, out)
    local n = 0
    for line in io.lines("examples/pipe_grep.lua") do
      if line:find("neap", 1, true) then n = n + 1 end
    end
    assert.equal(n .. "\n", out)
    local path = helpers.tmpfile("apple\nbanana\napple pie\ncherry\n")
    out, rc = sh("timeout 60 " .. NEAP .. " examples/pipe_grep.lua " .. path .. " apple </dev/null")
    assert.equal(0, rc, out)
    assert.equal("2\n", out)
    out, rc = sh("timeout 60 " .. NEAP .. " examples/pipe_grep.lua " .. path .. " kiwi </dev/null")
    assert.equal(0, rc, out)
    assert.equal("0\n", out)
    os.remove(path)
    out, rc = sh("timeout 60 " .. NEAP .. " examples/pipe_grep.lua /nonexistent/neap/file </dev/null")
    assert.equal(1, rc, out)
  end)

  it("hostname.lua prints the output of hostname and its exit status", function()
    local out, rc = sh("timeout 60 " .. NEAP .. " examples/hostname.lua </dev/null")
    assert.equal(0, rc, out)
    local name = sh("uname -n")
    assert.equal("output: " .. name .. "exit status: 0\n", out)
  end)

  it("tls_echo.lua and tls_client.lua talk TLS to a local server of their own", function()
    local out, rc = sh("timeout 30 " .. NEAP .. " examples/tls_echo.lua </dev/null")
    assert.equal(0, rc, out)
    if not out:find("skipped", 1, true) then
      assert.matches("^client: TLSv1%.3, server is CN=localhost\nclient got: echo: hello\n" ..
                     "client got: echo: over\nclient got: echo: TLS\n$", out)
    end
    out, rc = sh("timeout 30 " .. NEAP .. " examples/tls_client.lua </dev/null")
    assert.equal(0, rc, out)
    if not out:find("skipped", 1, true) then
      assert.truthy(out:find("status: 200\n", 1, true), out)
      assert.truthy(out:find("You asked: GET /index.txt HTTP/1.1\n", 1, true), out)
      assert.truthy(out:find("untrusted: certificate verify failed: self-signed certificate\n", 1, true), out)
    end
  end)

  it("http_files.lua serves files, HEAD and ranges, and refuses paths out of its root", function()
    local out, rc = sh("timeout 60 " .. NEAP .. " examples/http_files.lua </dev/null")
    assert.equal(0, rc, out)
    for _, want in ipairs {
      "GET /http_files.lua\t200\ttext/plain; charset=utf-8\tsame bytes\n", "HEAD\t200\tlength ok\n",
      "Range bytes=3-12\t206\tbytes 3-12/", "GET /../etc/passwd\t403\n", "GET /%2e%2e/etc/passwd\t403\n",
      "GET /no/such/file\t404\n" } do
      assert.truthy(out:find(want, 1, true), want .. " in " .. out)
    end
  end)

  it("every other example runs and exits 0", function()
    local ls = io.popen("ls examples/*.lua")
    for path in ls:lines() do
      local name = path:match("([^/]+)$")
      if not driven[name] and name ~= "tour.lua" then
        local out, rc = sh("cd examples && timeout 60 ../" .. NEAP:gsub("^%./", "") .. " " .. name .. " </dev/null")
        assert.equal(0, rc, name .. ": " .. out)
      end
    end
    ls:close()
  end)
end)
