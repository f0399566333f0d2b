-- Issue 16, red team of Lua's allocator (16-16). A lua_newstate that runs
-- out of memory part way frees what it had made through the host's
-- allocator before it returns NULL: the small blocks among them went into
-- the host's lists, and neap_new then freed the host without emptying them
-- (up to 51 blocks lost per failed neap_new: a neap.thread started when
-- memory is short, an embedder retrying). spec/c/lua_alloc_oom.c fails each
-- allocation of neap_new in turn and counts the blocks left behind.
local helpers = require "helpers"

describe("16-18 Lua's allocator, red team", function()
  it("a neap_new whose lua_newstate runs out of memory gives back every block", function()
    local out, rc = helpers.sh("./" .. helpers.BUILD .. "/lua_alloc_oom")
    assert.equal(0, rc, out)
    assert.truthy(out:find(" 0 leaked", 1, true), out)
  end)
end)
