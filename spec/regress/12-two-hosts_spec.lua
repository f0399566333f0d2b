-- Issue 12, part 2: the live-children list and its reference count were
-- process-wide, so a host with no child left kept its SIGCHLD watcher
-- referenced while another host on the same thread had one, and its
-- neap_run never returned (spec/c/two_hosts.c).
local helpers = require "helpers"

describe("regress 12: two hosts on one thread", function()
  it("each host reaps its own children; freeing one leaves the other working", function()
    local vg = helpers.VALGRIND
    local out, rc = helpers.sh(vg .. "./" .. helpers.BUILD .. "/two_hosts")
    assert.equal(0, rc, out)
    assert.truthy(out:find("\nok\n", 1, true), out)
  end)
end)
