-- Issue 14, item 4a: libneap exported llhttp's names as they are
-- (llhttp_execute, llhttp_init, ...), so a program that links its own
-- llhttp beside libneap.a failed with "multiple definition". The build
-- renames them with a neap_ prefix now (Makefile: objcopy --redefine-syms).
local helpers = require "helpers"

local LIB = helpers.BUILD .. "/libneap.a"

describe("regress 14.4a: llhttp's names in libneap", function()
  it("are all prefixed with neap_ in libneap.a and core.so", function()
    for _, cmd in ipairs { "nm -g --defined-only " .. LIB,
                           "nm -D --defined-only " .. helpers.BUILD .. "/lib/neap/core.so" } do
      local out, rc = helpers.sh(cmd)
      assert.equal(0, rc, out)
      assert.truthy(out:find(" T neap_llhttp_execute\n", 1, true), cmd)
      for name in out:gmatch(" [A-Za-z] ([%w_]+)\n") do
        assert.truthy(name:find("^neap") or name:find("^luaopen_"), cmd .. ": " .. name)
      end
    end
  end)

  it("do not clash with an embedder's own llhttp_execute", function()
    local san = helpers.BUILD == "build" and "" or " -fsanitize=address,undefined"
    local src = helpers.tmpfile([[
#include <neap.h>
int llhttp_execute (void *p, const char *data, unsigned long len) {   /* the embedder's */
  (void)p; (void)data; (void)len;
  return 42;
}
int main (void) {
  neap_host *h = neap_new(NULL);
  int r = luaL_dostring(neap_lua(h), "return require('neap.core').http_parser() ~= nil") == 0;
  neap_free(h);
  return r && llhttp_execute(0, 0, 0) == 42 ? 0 : 1;
}
]])
    os.rename(src, src .. ".c")
    local exe = src .. ".exe"
    local out, rc = helpers.sh("cc -Isrc $(pkg-config --cflags lua5.4 libuv)" .. san .. " -include lauxlib.h -o " .. exe ..
      " " .. src .. ".c " .. LIB .. " $(pkg-config --libs lua5.4 libuv openssl) -lm" .. san)
    os.remove(src .. ".c")
    assert.equal(0, rc, out)
    out, rc = helpers.sh("ASAN_OPTIONS=detect_leaks=0 " .. exe)
    os.remove(exe)
    assert.equal(0, rc, out)
  end)
end)
