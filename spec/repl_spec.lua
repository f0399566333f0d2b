-- The prompt of `neap -i`, driven through a pipe.
local helpers = require "helpers"
local sh, NEAP = helpers.sh, helpers.NEAP

local function repl(input)
  local path = helpers.tmpfile(input)
  local out, rc = sh("timeout 10 " .. NEAP .. " -i < " .. path)
  os.remove(path)
  return out, rc
end

describe("neap -i", function()
  it("prints the values of expressions and exits at end of input", function()
    local out, rc = repl("1 + 1\n'a' .. 'b'\nreturn 1, nil, 3\n")
    assert.equal(0, rc)
    assert.truthy(out:find("> 2\n> ab\n> 1\tnil\t3\n> \n$"), out)
  end)

  it("continues an incomplete chunk on the next lines", function()
    local out = repl("function twice(x)\n  return 2 * x\nend\ntwice(21)\n")
    assert.truthy(out:find(">> >> > 42\n", 1, true), out)
  end)

  it("reports an unfinished chunk at the end of input as a syntax error and exits 1 (15.4)", function()
    local out, rc = repl("x = 1\nfor\n")
    assert.equal(1, rc, out)
    -- as `lua5.4 -` reports the chunk "for\n": "stdin:2: <name> expected near <eof>"
    assert.truthy(out:find("neap: stdin:2: <name> expected near <eof>\n", 1, true), out)
    out, rc = repl("function f()\n  return 1\n")
    assert.equal(1, rc, out)
    assert.truthy(out:find("neap: stdin:3: 'end' expected (to close 'function' at line 1) near <eof>\n", 1, true), out)
    -- a finished chunk at the end is fine
    out, rc = repl("for i = 1, 2 do\nend\n")
    assert.equal(0, rc, out)
  end)

  it("reports errors and goes on", function()
    local out = repl("error('nope')\n1 + \n\n3\n")
    assert.truthy(out:find("stdin:1: nope", 1, true), out)
    assert.truthy(out:find("3\n> \n$"), out)
  end)

  it("can wait: a server started at the prompt serves while the prompt waits", function()
    local out = repl(table.concat({
      "srv = neap.listen('tcp', '127.0.0.1', 0)",
      "srv:serve(function(c) c:write('served\\n') end)",
      "port = select(2, srv:address())",
      "c = neap.connect('tcp', '127.0.0.1', port)",
      "c:read_line{timeout=2}",
      "neap.sleep(0.01) return 'waited'", "" }, "\n"))
    assert.truthy(out:find("> served\n", 1, true), out)
    assert.truthy(out:find("> waited\n", 1, true), out)
  end)
end)
