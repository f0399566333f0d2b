-- Issue 18.3: a name lookup still on libuv's thread pool when the host was
-- freed: the pool thread then signalled a freed loop (valgrind: invalid
-- read of a block freed by the teardown). Teardown now waits for it.
-- getaddrinfo is made slow (0.7 s for names containing "slow") by an
-- LD_PRELOAD shim that this spec builds.
local helpers = require "helpers"

local dir, shim
local function build_shim()
  if shim then return shim end
  dir = helpers.tmpdir()
  helpers.write_file(dir .. "/shim.c", [[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
int getaddrinfo (const char *node, const char *service,
                 const struct addrinfo *hints, struct addrinfo **res) {
  int (*real) (const char *, const char *, const struct addrinfo *,
               struct addrinfo **) =
    (int (*) (const char *, const char *, const struct addrinfo *,
              struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
  if (node != NULL && strstr(node, "slow") != NULL) {
    usleep(700000);
    node = "127.0.0.1";
  }
  return real(node, service, hints, res);
}
]])
  local out, rc = helpers.sh("cc -shared -fPIC -o " .. dir .. "/shim.so " .. dir .. "/shim.c -ldl")
  assert(rc == 0, out)
  shim = dir .. "/shim.so"
  return shim
end

-- the environment: the shim preloaded (after ASan's runtime under make
-- asan); and valgrind around the program under make valgrind
local function env()
  local pre = os.getenv("NEAP_PRELOAD")
  local e = "LD_PRELOAD='" .. (pre and (pre .. " ") or "") .. build_shim() .. "' "
  if pre then e = e .. "ASAN_OPTIONS=detect_leaks=0 " end
  return e
end
local VG = helpers.VALGRIND_NOLEAK

describe("regress 18.3: a name lookup in flight at teardown", function()
  teardown(function() if dir then os.execute("rm -rf " .. dir) end end)

  it("the binary's main chunk fails while a lookup runs: no invalid access", function()
    local script = helpers.tmpfile([[
      local neap = require "neap"
      neap.task(function() print(neap.resolve("slow.test")) end)
      neap.sleep(0.05)
      error("main fails while a lookup is in flight")
    ]])
    local out, rc = helpers.sh(env() .. VG .. helpers.NEAP .. " " .. script)
    assert.equal(1, rc, out)
    assert.truthy(out:find("main fails while a lookup is in flight", 1, true), out)
    assert.falsy(out:find("Invalid", 1, true), out)
    os.remove(script)
  end)

  it("a stock lua5.4 script ends while a timed-out lookup still runs", function()
    local script = helpers.tmpfile([[
      local neap = require "neap"
      neap.run(function() print("resolve:", neap.resolve("slow.test", { timeout = 0.1 })) end)
    ]])
    local lua = "LUA_CPATH='./" .. helpers.BUILD .. "/lib/?.so' LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' "
    local out, rc = helpers.sh(lua .. env() .. VG .. "lua5.4 " .. script)
    assert.equal(0, rc, out)
    assert.truthy(out:find("resolve:\tnil\ttimeout\ttimeout", 1, true), out)
    assert.falsy(out:find("Invalid", 1, true), out)
    os.remove(script)
  end)
end)
