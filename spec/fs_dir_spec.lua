-- The file system by path (neap.stat, readdir, mkdir, ...) and file
-- watches (neap.watch), issue 15 part 1. Each test works in a temporary
-- directory of its own.
local neap = require "neap"
local helpers = require "helpers"
local run, sh, NEAP, tmpdir = helpers.run, helpers.sh, helpers.NEAP, helpers.tmpdir
local write_file, read_file = helpers.write_file, helpers.read_file

local function rmrf(d) os.execute("rm -rf '" .. d .. "'") end
local function octal(s) return tonumber(s, 8) end

-- Runs 'body(dir)' as a task with a fresh temporary directory.
local function in_tmp(body)
  local d = tmpdir()
  local ok, err = pcall(run, function() body(d) end)
  rmrf(d)
  assert(ok, err)
end

-- Checks a failure: nil, a message naming 'path', and the code.
local function fails(code, path, v, msg, c)
  assert.is_nil(v)
  assert.equal(code, c, msg)
  assert.truthy(msg:find(path, 1, true), msg)
end

describe("neap file system", function()
  helpers.leakcheck()

  describe("neap.stat() and neap.lstat()", function()
    it("return the type, size, mode, owners, links, inode, device and times", function()
      in_tmp(function(d)
        write_file(d .. "/f", "hello")
        os.execute("chmod 640 " .. d .. "/f")
        local st = assert(neap.stat(d .. "/f"))
        assert.equal("file", st.type)
        assert.equal(5, st.size)
        assert.equal(octal("640"), st.mode)
        assert.equal(1, st.nlink)
        for _, k in ipairs { "uid", "gid", "ino", "dev" } do
          assert.is_true(math.type(st[k]) == "integer", k)
        end
        for _, k in ipairs { "atime", "mtime", "ctime" } do
          assert.equal("float", math.type(st[k]), k)
          assert.truthy(math.abs(st[k] - os.time()) < 3600, k)
        end
        assert.equal("directory", neap.stat(d).type)
        assert.equal("char", neap.stat("/dev/null").type)
        os.execute("mkfifo " .. d .. "/p && ln -s f " .. d .. "/l")
        assert.equal("fifo", neap.stat(d .. "/p").type)
        assert.equal("file", neap.stat(d .. "/l").type)
        assert.equal("link", neap.lstat(d .. "/l").type)
        assert.equal(st.ino, neap.stat(d .. "/l").ino)
      end)
    end)

    it("return nil, a message with the path, and the code on failure", function()
      in_tmp(function(d)
        local v, msg, code = neap.stat(d .. "/none")
        assert.equal(d .. "/none: no such file or directory", msg)
        fails("ENOENT", d, v, msg, code)
        write_file(d .. "/f", "")
        fails("ENOTDIR", d .. "/f/x", neap.lstat(d .. "/f/x"))
        os.execute("ln -s l2 " .. d .. "/l1 && ln -s l1 " .. d .. "/l2")
        fails("ELOOP", d .. "/l1", neap.stat(d .. "/l1"))
      end)
    end)

    it("s:stat() tells about an open stream's file", function()
      in_tmp(function(d)
        local f = assert(neap.open(d .. "/f", "w"))
        f:write("12345678")
        assert(f:flush())
        local st = assert(f:stat())
        assert.equal("file", st.type)
        assert.equal(8, st.size)
        assert.equal(neap.stat(d .. "/f").ino, st.ino)
        f:close()
        assert.has_error(function() f:stat() end, "attempt to use a closed stream")
      end)
    end)

    it("check their arguments", function()
      assert.has_error(function() neap.stat() end, "bad argument #1 to 'stat' (path must be a string, got no value)")
      assert.has_error(function() neap.lstat(1) end, "bad argument #1 to 'lstat' (path must be a string, got number)")
      assert.has_error(function() neap.stat("/tmp\0x") end, "bad argument #1 to 'stat' (path contains a NUL byte)")
    end)

    it("raise outside a task", function()
      local out, rc = sh(helpers.LUA54 .. [[ -e '
        local neap = require "neap"
        print(pcall(neap.stat, "/"))
        print(pcall(neap.mkdir, "/x", { parents = true }))
        local s = neap.open("/dev/null")
        print(pcall(s.stat, s))']])
      assert.equal(0, rc, out)
      assert.equal("false\tstat: a wait must run inside a task (neap.task or neap.run)\n" ..
                   "false\tmkdir: a wait must run inside a task (neap.task or neap.run)\n" ..
                   "false\tstat: a wait must run inside a task (neap.task or neap.run)\n", out)
    end)
  end)

  describe("neap.readdir()", function()
    it("lists names and types, without . and ..", function()
      in_tmp(function(d)
        write_file(d .. "/b", "")
        os.execute("mkdir " .. d .. "/a && ln -s b " .. d .. "/c")
        local list = assert(neap.readdir(d))
        table.sort(list, function(x, y) return x.name < y.name end)
        assert.same({ { name = "a", type = "directory" }, { name = "b", type = "file" },
                      { name = "c", type = "link" } }, list)
        assert.same({}, neap.readdir(d .. "/a"))
      end)
    end)

    it("fails with ENOENT and ENOTDIR", function()
      in_tmp(function(d)
        fails("ENOENT", d .. "/x", neap.readdir(d .. "/x"))
        write_file(d .. "/f", "")
        fails("ENOTDIR", d .. "/f", neap.readdir(d .. "/f"))
      end)
    end)
  end)

  describe("neap.mkdir()", function()
    it("makes a directory with a mode (less the umask)", function()
      in_tmp(function(d)
        assert.is_true(neap.mkdir(d .. "/a"))
        assert.equal("directory", neap.stat(d .. "/a").type)
        assert.is_true(neap.mkdir(d .. "/b", { mode = octal("700") }))
        assert.equal(octal("700"), neap.stat(d .. "/b").mode)
        fails("EEXIST", d .. "/a", neap.mkdir(d .. "/a"))
        fails("ENOENT", d .. "/x/y", neap.mkdir(d .. "/x/y"))
      end)
    end)

    it("with parents = true makes the missing parents; existing directories are fine", function()
      in_tmp(function(d)
        assert.is_true(neap.mkdir(d .. "/a/b/c/", { parents = true, mode = octal("750") }))
        assert.equal(octal("750"), neap.stat(d .. "/a/b").mode)
        assert.equal("directory", neap.stat(d .. "/a/b/c").type)
        assert.is_true(neap.mkdir(d .. "/a/b/c", { parents = true }))
        assert.is_true(neap.mkdir(d .. "//a//b/d", { parents = true }))
        assert.is_true(neap.mkdir(d, { parents = true }))
        write_file(d .. "/f", "")
        local v, msg, code = neap.mkdir(d .. "/f", { parents = true })
        fails("EEXIST", d .. "/f", v, msg, code)
        v, msg, code = neap.mkdir(d .. "/f/g/h", { parents = true })
        fails("ENOTDIR", d .. "/f/g", v, msg, code)
      end)
    end)

    it("checks its arguments", function()
      assert.has_error(function() neap.mkdir("/x", 7) end, "bad argument #2 to 'mkdir' (options table expected, got number)")
      assert.has_error(function() neap.mkdir("/x", { mode = "755" }) end,
        "bad argument #2 to 'mkdir' (mode must be an integer from 0 to 0xFFF (octal 7777))")
      assert.has_error(function() neap.mkdir("/x", { mode = 0x1000 }) end,
        "bad argument #2 to 'mkdir' (mode must be an integer from 0 to 0xFFF (octal 7777))")
    end)
  end)

  describe("neap.rmdir(), neap.unlink() and neap.rename()", function()
    it("remove and rename, with ENOTEMPTY, ENOENT, ENOTDIR and EISDIR", function()
      in_tmp(function(d)
        os.execute("mkdir -p " .. d .. "/a/b")
        write_file(d .. "/f", "x")
        fails("ENOTEMPTY", d .. "/a", neap.rmdir(d .. "/a"))
        assert.is_true(neap.rmdir(d .. "/a/b"))
        fails("ENOENT", d .. "/a/b", neap.rmdir(d .. "/a/b"))
        fails("ENOTDIR", d .. "/f", neap.rmdir(d .. "/f"))
        fails("EISDIR", d .. "/a", neap.unlink(d .. "/a"))
        assert.is_true(neap.rename(d .. "/f", d .. "/a/g"))
        assert.equal("x", read_file(d .. "/a/g"))
        local v, msg, code = neap.rename(d .. "/f", d .. "/h")
        assert.equal(d .. "/f -> " .. d .. "/h: no such file or directory", msg)
        fails("ENOENT", d, v, msg, code)
        assert.is_true(neap.unlink(d .. "/a/g"))
        fails("ENOENT", d .. "/a/g", neap.unlink(d .. "/a/g"))
        assert.has_error(function() neap.rename(d) end, "bad argument #2 to 'rename' (path must be a string, got no value)")
      end)
    end)
  end)

  describe("neap.realpath(), neap.symlink() and neap.readlink()", function()
    it("make and read links and resolve paths", function()
      in_tmp(function(d)
        local real = neap.realpath(d)
        write_file(d .. "/f", "")
        assert.is_true(neap.symlink("f", d .. "/l"))
        assert.equal("f", neap.readlink(d .. "/l"))
        assert.equal(real .. "/f", neap.realpath(d .. "/./l"))
        fails("EEXIST", d .. "/l", neap.symlink("g", d .. "/l"))
        fails("EINVAL", d .. "/f", neap.readlink(d .. "/f"))
        fails("ENOENT", d .. "/none", neap.realpath(d .. "/none"))
        assert.has_error(function() neap.symlink(nil, "x") end, "bad argument #1 to 'symlink' (target must be a string, got nil)")
      end)
    end)
  end)

  describe("neap.chmod()", function()
    it("sets the permission bits", function()
      in_tmp(function(d)
        write_file(d .. "/f", "")
        assert.is_true(neap.chmod(d .. "/f", octal("604")))
        assert.equal(octal("604"), neap.stat(d .. "/f").mode)
        fails("ENOENT", d .. "/g", neap.chmod(d .. "/g", 0))
        assert.has_error(function() neap.chmod(d .. "/f") end,
          "bad argument #2 to 'chmod' (mode must be an integer from 0 to 0xFFF (octal 7777))")
        assert.has_error(function() neap.chmod(d .. "/f", 1.5) end,
          "bad argument #2 to 'chmod' (mode must be an integer from 0 to 0xFFF (octal 7777))")
      end)
    end)
  end)

  describe("neap.mkdtemp() and neap.copyfile()", function()
    it("make a new directory named prefix and six characters", function()
      in_tmp(function(d)
        local a = assert(neap.mkdtemp(d .. "/t-"))
        local b = assert(neap.mkdtemp(d .. "/t-"))
        assert.truthy(a:match("^" .. d:gsub("%p", "%%%0") .. "/t%-[%w]+$") and #a == #d + 9, a)
        assert.are_not.equal(a, b)
        assert.equal("directory", neap.stat(a).type)
        assert.equal(octal("700"), neap.stat(a).mode)
        fails("ENOENT", d .. "/none/t-", neap.mkdtemp(d .. "/none/t-"))
      end)
    end)

    it("copy a file", function()
      in_tmp(function(d)
        write_file(d .. "/f", ("x"):rep(100000))
        assert.is_true(neap.copyfile(d .. "/f", d .. "/g"))
        assert.equal(("x"):rep(100000), read_file(d .. "/g"))
        local v, msg, code = neap.copyfile(d .. "/none", d .. "/h")
        assert.equal(d .. "/none -> " .. d .. "/h: no such file or directory", msg)
        fails("ENOENT", d, v, msg, code)
      end)
    end)
  end)

  describe("permissions", function()
    it("give EACCES to a user without the right", function()
      if sh("id -u") ~= "0\n" then
        pending("needs root to drop privileges to nobody")
        return
      end
      local d = tmpdir()   -- root's, mode 0700: nobody may not look inside
      os.execute("chmod 711 " .. d .. " && mkdir -m 700 " .. d .. "/priv && mkdir -m 755 " .. d .. "/ro && touch " .. d .. "/ro/f")
      local script = helpers.tmpfile([[
local neap = require "neap"
local d = arg[1]
local function show(...) print(select(3, ...)) end
show(neap.stat(d .. "/priv/x"))
show(neap.readdir(d .. "/priv"))
show(neap.mkdir(d .. "/priv/y"))
show(neap.mkdir(d .. "/ro/y"))
show(neap.mkdir(d .. "/ro/y/z", { parents = true }))
show(neap.unlink(d .. "/ro/f"))
show(neap.rename(d .. "/ro/f", d .. "/ro/g"))
show(neap.chmod(d .. "/ro/f", 511))
show(neap.copyfile(d .. "/ro/f", d .. "/ro/g"))
show(neap.mkdtemp(d .. "/ro/t-"))
local v, msg = neap.stat(d .. "/priv/x")
print(msg)
]])
      os.execute("chmod 644 " .. script)
      local out, rc = sh("setpriv --reuid=nobody --regid=nogroup --clear-groups " .. NEAP .. " " .. script .. " " .. d)
      rmrf(d)
      os.remove(script)
      assert.equal(0, rc, out)
      assert.equal("EACCES\nEACCES\nEACCES\nEACCES\nEACCES\nEACCES\nEACCES\nEPERM\nEACCES\nEACCES\n" ..
                   d .. "/priv/x: permission denied\n", out)
    end)
  end)

  describe("requests in flight", function()
    -- Fills libuv's thread pool (4 threads) with opens of FIFOs that block
    -- until their other end opens; returns the tasks (cancel them to release).
    local function block_pool(d)
      local tasks = {}
      for i = 1, 4 do
        os.execute("mkfifo " .. d .. "/fifo" .. i)
        tasks[i] = neap.task(function() return neap.open(d .. "/fifo" .. i) end)
      end
      neap.sleep(0.05)
      return tasks
    end

    it("a task cancelled while parked in a stat wakes with the cancellation; the request ends alone", function()
      in_tmp(function(d)
        local blockers = block_pool(d)
        local got
        local t = neap.task(function() got = neap.stat(d) end)
        neap.sleep(0.05)
        assert.equal("parked", t:status())
        assert.is_true(t:cancel())
        local ok, err, code = t:join { timeout = 5 }
        assert.same({ nil, "cancelled", "cancelled" }, { ok, err, code })
        for _, b in ipairs(blockers) do b:cancel() end
        neap.sleep(0.2)   -- the stat runs now; its result goes nowhere
        assert.is_nil(got)
        assert.equal("directory", neap.stat(d).type)
      end)
    end)

    it("a task that is already cancelled raises at once, and its request wakes nobody", function()
      -- (the stale request once resumed the finished task: "cannot resume dead coroutine")
      local out, rc = sh(NEAP .. [[ -e '
        local neap = require "neap"
        local after
        local t = neap.task(function()
          neap.current():cancel()
          after = select(2, pcall(neap.readdir, "/"))
          return neap.stat("/")
        end)
        print(t:join())
        neap.sleep(0.2)
        print(after, t:status())']])
      assert.equal(0, rc, out)
      assert.equal("nil\tcancelled\tcancelled\ncancelled\tcancelled\n", out)
    end)

    it("the host waits for them when it is torn down", function()
      local out, rc = sh(helpers.LUA54 .. [[ -e '
        local neap = require "neap"
        neap.run(function()
          for i = 1, 20 do neap.task(function() neap.stat("/") neap.readdir("/") end) end
          neap.sleep(0)
        end)
        print("done")']])
      assert.equal(0, rc, out)
      assert.equal("done\n", out)
    end)
  end)
end)

describe("neap.watch()", function()
  helpers.leakcheck()

  -- Takes events until 'n' have come or none comes for a second.
  local function take(w, n)
    local list = {}
    while #list < n do
      local e, err = w:next { timeout = 2 }
      if not e then assert.equal("timeout", err) break end
      local s = (e.name or "?") .. ":" .. e.change
      if list[#list] ~= s then list[#list + 1] = s end
    end
    return list
  end

  it("sees a create, a write, a rename and a delete in a directory", function()
    in_tmp(function(d)
      local w = assert(neap.watch(d))
      write_file(d .. "/a.txt", "")
      assert.same({ "a.txt:rename" }, take(w, 1))
      local f = io.open(d .. "/a.txt", "a") f:write("more") f:close()
      assert.same({ "a.txt:change" }, take(w, 1))
      os.rename(d .. "/a.txt", d .. "/b.txt")
      assert.same({ "a.txt:rename", "b.txt:rename" }, take(w, 2))
      os.remove(d .. "/b.txt")
      assert.same({ "b.txt:rename" }, take(w, 1))
      assert.same({ nil, "timeout", "timeout" }, { w:next { timeout = 0.1 } })
      assert.is_true(w:close())
    end)
  end)

  it("gives a removed watched file as a rename", function()
    in_tmp(function(d)
      write_file(d .. "/f", "")
      local w = assert(neap.watch(d .. "/f"))
      os.remove(d .. "/f")
      local seen = table.concat(take(w, 3), " ")
      assert.truthy(seen:find("f:rename", 1, true), seen)
      w:close()
    end)
  end)

  it("queues events while no task waits, at most 1024; the rest are counted", function()
    in_tmp(function(d)
      local w = assert(neap.watch(d))
      for i = 1, 1100 do io.open(d .. "/f" .. i, "w"):close() end
      neap.sleep(0.3)
      local n = 0
      while w:next { timeout = 0.5 } do n = n + 1 end
      assert.equal(1024, n)
      assert.equal(76, w:dropped())
      w:close()
    end)
  end)

  it("returns nil, \"closed\", \"ECLOSED\" to a waiter when closed, and after", function()
    in_tmp(function(d)
      local w = assert(neap.watch(d))
      local t = neap.task(function() return w:next() end)
      neap.sleep(0.05)
      w:close()
      assert.same({ true, nil, "closed", "ECLOSED" }, { t:join { timeout = 5 } })
      assert.same({ nil, "closed", "ECLOSED" }, { w:next() })
      assert.is_true(w:close())
      assert.has_error(function() w:dropped() end, "attempt to use a closed watcher")
    end)
  end)

  it("raises for a second waiter, outside a task and for recursive watches", function()
    in_tmp(function(d)
      local w = assert(neap.watch(d))
      local t = neap.task(function() return w:next { timeout = 5 } end)
      neap.sleep(0.05)
      assert.has_error(function() w:next() end, "next: another task is already waiting on this watcher")
      t:cancel()
      w:close()
      assert.has_error(function() neap.watch(d, { recursive = true }) end,
        "bad argument #2 to 'watch' (recursive watches are not supported on Linux)")
      assert.has_error(function() neap.watch() end, "bad argument #1 to 'watch' (path must be a string, got no value)")
      fails("ENOENT", d .. "/none", neap.watch(d .. "/none"))
    end)
    local out, rc = sh(helpers.LUA54 .. [[ -e '
      local neap = require "neap"
      local w = assert(neap.watch("/tmp"))
      print(pcall(w.next, w))']])
    assert.equal(0, rc, out)
    assert.equal("false\tnext: a wait must run inside a task (neap.task or neap.run)\n", out)
  end)

  it("is closed when collected", function()
    local before = require("neap.core")._handle_count()
    local function make() local w = neap.watch("/tmp") assert(w) end
    make()
    assert.equal(before + 1, require("neap.core")._handle_count())
    collectgarbage() collectgarbage()
    assert.equal(before, require("neap.core")._handle_count())
  end)

  it("keeps the binary alive only while a task waits on it", function()
    local d = tmpdir()
    local out, rc = sh("timeout 10 " .. NEAP .. " -e 'local neap = require \"neap\"; local w = neap.watch(\"" .. d .. "\"); print(\"idle\")'")
    assert.equal(0, rc, out)
    assert.equal("idle\n", out)
    out, rc = sh("(sleep 0.3; touch " .. d .. "/new) & timeout 10 " .. NEAP ..
                 " -e 'local neap = require \"neap\"; local w = neap.watch(\"" .. d .. "\"); " ..
                 "neap.task(function() print(w:next().name) end)'")
    rmrf(d)
    assert.equal(0, rc, out)
    assert.equal("new\n", out)
  end)
end)
