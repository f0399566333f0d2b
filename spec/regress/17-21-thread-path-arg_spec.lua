local neap = require "neap"

describe("neap.thread's path argument", function()
  it("raises naming 'thread' for a missing or non-string path", function()
    local ok, err = pcall(neap.thread)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'thread' (string expected, got no value)", err, 1, true)
    ok, err = pcall(neap.thread, nil)
    assert.matches("bad argument #1 to 'thread' (string expected, got nil)", err, 1, true)
    ok, err = pcall(neap.thread, 42)      -- a number is not a path
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'thread' (string expected, got number)", err, 1, true)
  end)
end)
