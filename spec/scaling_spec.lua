-- docs/scaling.md, many machines: an L4 balancer in front of neap
-- processes. nginx's stream proxy, started here with its own configuration
-- in a temporary directory on local ports, spreads connections over two
-- neap workers, each on a port of its own. Skipped, with the reason
-- printed, when nginx or its stream module is not installed (Debian:
-- apt-get install nginx libnginx-mod-stream).
local neap = require "neap"
local helpers = require "helpers"

local function free_port()
  local s = assert(neap.listen("tcp", "127.0.0.1", 0))
  local _, port = s:address()
  s:close()
  return port
end

-- nginx_setup() -> path of nginx, the load_module line it needs | nil, why
local function nginx_setup()
  local out, rc = helpers.sh("command -v nginx || ls /usr/sbin/nginx")
  local nginx = rc == 0 and out:match("^(/%S+)")
  if not nginx then return nil, "nginx is not installed" end
  local v = helpers.sh(nginx .. " -V")
  if v:find("--with-stream=dynamic", 1, true) or not v:find("--with-stream", 1, true) then
    for _, m in ipairs { "/usr/lib/nginx/modules/ngx_stream_module.so", "/usr/lib64/nginx/modules/ngx_stream_module.so" } do
      local f = io.open(m)
      if f then
        f:close()
        return nginx, "load_module " .. m .. ";"
      end
    end
    return nil, "nginx has no stream module (Debian: libnginx-mod-stream)"
  end
  return nginx, ""
end

local BACKEND = [[
local neap = require "neap"
local port = tonumber(arg[neap.worker.id])
local srv = assert(neap.listen("tcp", "127.0.0.1", port))
srv:serve(function(c)
  for line in c:lines() do c:write("worker " .. neap.worker.id .. ": " .. line .. "\n") end
end)
neap.stdout:write("ready " .. neap.worker.id .. "\n")
]]

describe("scaling: nginx's stream proxy in front of neap workers", function()
  local nginx, load = nginx_setup()
  if not nginx then
    io.stderr:write("scaling_spec: skipped: ", load, "\n")
    pending("nginx stream proxy: " .. load)
    return
  end

  it("spreads connections over two neap workers on local ports", function()
    local dir = helpers.tmpdir()
    local script = helpers.tmpfile(BACKEND)
    finally(function()
      os.remove(script)
      os.execute("rm -rf '" .. dir .. "'")
    end)
    helpers.run(function()
      local p1, p2, front = free_port(), free_port(), free_port()
      helpers.write_file(dir .. "/nginx.conf", table.concat({
        load,
        "daemon off;",
        "master_process off;",
        "worker_processes 1;",
        "pid " .. dir .. "/nginx.pid;",
        "error_log " .. dir .. "/error.log warn;",
        "events { worker_connections 256; }",
        "stream {",
        "  upstream neap { server 127.0.0.1:" .. p1 .. "; server 127.0.0.1:" .. p2 .. "; }",
        "  server { listen 127.0.0.1:" .. front .. "; proxy_pass neap; }",
        "}",
      }, "\n") .. "\n")
      local workers = assert(neap.spawn { helpers.NEAP, "--workers", "2", script, tostring(p1), tostring(p2) })
      for _ = 1, 2 do assert.truthy(workers.stdout:read_line { timeout = 15 }:match("^ready %d$")) end
      local ngx = assert(neap.spawn { nginx, "-p", dir, "-e", dir .. "/error.log", "-c", dir .. "/nginx.conf",
                                      stdout = "null" })
      -- nginx is up when its port answers
      local deadline = neap.now() + 15
      local c
      repeat
        c = neap.connect("tcp", "127.0.0.1", front, { timeout = 5 })
        if not c then neap.sleep(0.05) end
      until c or neap.now() > deadline
      assert(c, "nginx did not start: " .. helpers.read_file(dir .. "/error.log"))
      c:close()
      local counts = {}
      for i = 1, 40 do
        c = assert(neap.connect("tcp", "127.0.0.1", front, { timeout = 5 }))
        assert(c:write("hello " .. i .. "\n"))
        local line = assert(c:read_line { timeout = 5 })
        local id = line:match("^worker (%d): hello " .. i .. "$")
        assert(id, line)
        counts[id] = (counts[id] or 0) + 1
        c:close()
      end
      assert.is_true((counts["1"] or 0) > 0 and (counts["2"] or 0) > 0,
                     tostring(counts["1"]) .. " / " .. tostring(counts["2"]))
      ngx:kill("TERM")
      local code, sig = ngx:wait { timeout = 10, kill = "process" }
      assert.is_true(code == 0 or sig == "TERM", tostring(code) .. " " .. tostring(sig))
      ngx:close()
      workers:kill("TERM")
      assert.equal(0, (workers:wait { timeout = 10, kill = "process" }))
      workers:close()
    end, 60)
  end)
end)
