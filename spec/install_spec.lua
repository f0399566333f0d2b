-- The other front doors, used the way their users use them: make install
-- into a DESTDIR and a C program built with pkg-config; LuaRocks into a
-- temporary tree, then the installed module from a stock lua5.4 and the
-- installed binary.
local helpers = require "helpers"
local sh = helpers.sh

local function tmpdir()
  local out = sh("mktemp -d")
  return (out:gsub("%s+$", ""))
end

local prog = [[
#include <stdio.h>
#include <neap.h>
int main (void) {
  neap_host *h = neap_new(NULL);
  if (neap_dostring(h, "local neap = require 'neap'; neap.sleep(0.01); print('from C: ' .. neap.version)", "=t") != 0) return 1;
  int st = neap_run(h);
  neap_free(h);
  return st;
}
]]

describe("make install", function()
  it("installs the binary, the libraries, the header, neap.pc, the module and the man page; uninstall removes exactly that", function()
    local d = tmpdir()
    local out, rc = sh("make -s install DESTDIR=" .. d .. " PREFIX=/usr/local")
    assert.equal(0, rc, out)
    local p = d .. "/usr/local"
    for _, f in ipairs { "bin/neap", "lib/libneap.a", "lib/libneap.so", "lib/libneap.so.0",
                         "include/neap.h", "lib/pkgconfig/neap.pc", "lib/lua/5.4/neap/core.so",
                         "share/lua/5.4/neap/init.lua", "share/man/man1/neap.1" } do
      assert.equal(0, select(2, sh("test -e " .. p .. "/" .. f)), f .. " missing")
    end
    out = sh("readelf -d " .. p .. "/lib/libneap.so.0 | grep SONAME")
    assert.truthy(out:find("libneap.so.0", 1, true), out)
    -- a C program built against it with pkg-config
    local c = d .. "/prog.c"
    local f = io.open(c, "w") f:write(prog) f:close()
    -- neap.pc names the final prefix: point a copy at the DESTDIR tree
    sh("mkdir -p " .. d .. "/pc && sed 's|^prefix=.*|prefix=" .. p .. "|' " .. p .. "/lib/pkgconfig/neap.pc > " .. d .. "/pc/neap.pc")
    out, rc = sh("cc -o " .. d .. "/prog " .. c .. " $(PKG_CONFIG_PATH=" .. d .. "/pc pkg-config --cflags --libs neap)")
    assert.equal(0, rc, out)
    out, rc = sh("LD_LIBRARY_PATH=" .. p .. "/lib " .. d .. "/prog")
    assert.equal(0, rc, out)
    assert.equal("from C: 0.1.0\n", out)
    -- uninstall leaves no file behind
    out, rc = sh("make -s uninstall DESTDIR=" .. d .. " PREFIX=/usr/local && find " .. p .. " -type f -o -type l")
    assert.equal(0, rc, out)
    assert.equal("", out)
    sh("rm -rf " .. d)
  end)
end)

describe("make install into a prefix outside the loader's path (15.4)", function()
  it("installs a neap.pc that names the prefix it was installed under, also after another prefix", function()
    local d = tmpdir()
    local out, rc = sh("make -s install PREFIX=" .. d .. "/a && make -s install PREFIX=" .. d .. "/b")
    assert.equal(0, rc, out)
    for _, p in ipairs { "a", "b" } do
      local f = assert(io.open(d .. "/" .. p .. "/lib/pkgconfig/neap.pc"))
      assert.equal("prefix=" .. d .. "/" .. p, f:read("l"))
      f:close()
    end
    -- a program built against the second prefix with pkg-config alone
    local c = d .. "/prog.c"
    local f = io.open(c, "w") f:write(prog) f:close()
    local pc = "PKG_CONFIG_PATH=" .. d .. "/b/lib/pkgconfig pkg-config"
    out, rc = sh("cc -o " .. d .. "/prog " .. c .. " $(" .. pc .. " --cflags --libs neap)" ..
                 " -Wl,-rpath,$(" .. pc .. " --variable=libdir neap)")
    assert.equal(0, rc, out)
    out = sh("ldd " .. d .. "/prog | grep libneap")
    assert.truthy(out:find(d .. "/b/lib/libneap.so.0", 1, true), out)
    out, rc = sh(d .. "/prog")
    assert.equal(0, rc, out)
    assert.equal("from C: 0.1.0\n", out)
    sh("rm -rf " .. d)
  end)

  it("the commands of docs/embedding.md run as they are", function()
    local f = assert(io.open("docs/embedding.md"))
    local doc = f:read("a")
    f:close()
    local block = doc:match("### A prefix outside the loader's path.-```sh\n(.-)```")
    assert.truthy(block, "no command block in docs/embedding.md")
    local script = block:gsub("\n%s+", " "):gsub("\\ ", " "):gsub("%$ ", "")
    local d = tmpdir()
    local path = d .. "/run.sh"
    f = io.open(path, "w") f:write("set -e\n", script) f:close()
    -- $HOME is the temporary folder; the programs are built there too
    local out, rc = sh("HOME=" .. d .. " sh " .. path)
    assert.equal(0, rc, out)
    local _, n = out:gsub("C: loop closed: yes", "")
    assert.equal(2, n, out)
    sh("rm -rf " .. d .. " embed embed2")
  end)
end)

describe("the LuaRocks rockspec", function()
  it("passes luarocks lint", function()
    local out, rc = sh("luarocks --lua-version=5.4 lint rockspec/neap-scm-1.rockspec")
    assert.equal(0, rc, out)
  end)

  it("builds offline into a tree; lua5.4 then uses the module and the binary runs", function()
    local d = tmpdir()
    local out, rc = sh("luarocks --lua-version=5.4 make rockspec/neap-scm-1.rockspec --tree " .. d)
    assert.equal(0, rc, out)
    local script = d .. "/use.lua"
    local f = io.open(script, "w")
    f:write([[
      local neap = require "neap"
      assert(package.searchpath("neap.core", package.cpath):find("]] .. d .. [[", 1, true))
      local srv = assert(neap.listen("tcp", "127.0.0.1", 0))
      local _, port = srv:address()
      srv:serve(function(c) for l in c:lines() do c:write(l:upper(), "\n") end end)
      print(neap.run(function()
        local c = assert(neap.connect("tcp", "127.0.0.1", port))
        c:write("installed\n")
        return c:read_line { timeout = 2 }
      end))
    ]])
    f:close()
    out, rc = sh("cd " .. d .. " && eval \"$(luarocks --lua-version=5.4 --tree " .. d .. " path)\" && lua5.4 " .. script)
    assert.equal(0, rc, out)
    assert.equal("INSTALLED\n", out)
    out, rc = sh("cd / && " .. d .. "/bin/neap -e 'print(require(\"neap\").version)'")
    assert.equal(0, rc, out)
    assert.equal("0.1.0\n", out)
    sh("rm -rf " .. d)
  end)
end)
