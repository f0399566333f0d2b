--- neap: an event host for Lua 5.4 on libuv.
-- This file says what neap offers, as lua.h does for Lua: each name, in one
-- line, taken from the file that owns it. The C core (neap.core, src/) owns
-- bytes, handles and parking; the Lua files own policy:
--   neap.task     run, first, timer, signal: running tasks and starting them
--   neap.queue    queues between tasks
--   neap.net      streams, servers and sockets: listen, connect, serve, the
--                 accept loop, callbacks (s:on, server:on), UDP
--   neap.fs       open (the file system by path is the core's)
--   neap.process  spawn, pipeline
--   neap.post     posts from an embedding C program: on_post, inbox
--   neap.util     argument checks (internal)
-- Users reach everything through neap.*; the modules above may be required
-- on their own, neap.core never (like eco.internal.*).
local core = require "neap.core"
local task = require "neap.task"
local queue = require "neap.queue"
local net = require "neap.net"   -- also installs s:on, s:off, server:on, server:serve, u:send, u:connect
local fs = require "neap.fs"
local process = require "neap.process"
local post = require "neap.post"

local neap = {}

--- neap.version: the version string of this build (neap.h's NEAP_VERSION)
neap.version = core.version()

-- ============================================================ tasks

--- neap.task([name,] fn, ...) -> task: runs fn(...) as a task.
neap.task = core.task
--- neap.sleep(seconds) -> true (a cancelled task raises "cancelled" here)
neap.sleep = core.sleep
--- neap.now() -> seconds on a monotonic clock
neap.now = core.now
--- neap.current() -> the running task, or nil outside tasks
neap.current = core.current
--- neap.run(fn, ...) -> fn's results: runs fn as a task to its end (from
-- plain Lua, with the loop); re-raises its error with its traceback.
neap.run = task.run
--- neap.first(f1, f2, ... [, {timeout=}]) -> index, results of the first to
-- finish; the others are cancelled.
neap.first = task.first
--- neap.loop([mode]) -> more: runs the loop from plain Lua ("default", "once", "nowait").
neap.loop = core.loop

-- ============================================================ queues

--- neap.queue([size]) -> queue: q:put(v, {timeout=}), q:get{timeout=}, q:count()
neap.queue = queue.new

-- ============================================================ streams

--- neap.fd(n) -> stream: wraps an inherited descriptor; closing the stream closes n.
neap.fd = net.fd
--- neap.stdin, neap.stdout, neap.stderr: streams over descriptors 0, 1, 2,
-- made at first use.
setmetatable(neap, { __index = net.stdio })
--- neap.buffer([max_frame]) -> buffer: the engine's framing with no I/O (see neap.proto)
neap.buffer = core.buffer

-- ============================================================ sockets

--- neap.resolve(host, {timeout=}) -> list of addresses | nil, err, code
neap.resolve = net.resolve
--- neap.listen("tcp", host, port [, {backlog=, reuseport=}]) -> server | nil, err, code
--- neap.listen("unix", path [, {backlog=}]) -> server | nil, err, code
neap.listen = net.listen
--- neap.connect("tcp", host, port [, {timeout=}]) -> stream | nil, err, code
--- neap.connect("unix", path [, {timeout=}]) -> stream | nil, err, code
neap.connect = net.connect
--- neap.udp{host=, port=, reuseaddr=, reuseport=, family="inet6"} -> socket | nil, err, code
neap.udp = net.udp

-- ============================================================ processes

--- neap.spawn{"prog", "arg", ..., stdin=, stdout=, stderr=, env=, cwd=, detached=} -> process | nil, err, code
neap.spawn = process.spawn
--- neap.pipeline({"cat", f}, {"grep", "x"}, ... [, opts]) -> pipeline | nil, err, code
neap.pipeline = process.pipeline
--- neap.signum(sig) -> the number of a signal ("TERM" -> 15)
neap.signum = process.signum
--- neap.pid() -> the id of this process
neap.pid = core.pid

-- ============================================================ files

--- neap.open(path [, mode [, {timeout=}]]) -> file stream | nil, err, code
neap.open = fs.open
--- The file system by path, each on libuv's thread pool while the task
-- waits (docs/fs.md): -> result | nil, err, code
neap.stat = core.stat
neap.lstat = core.lstat
neap.readdir = core.readdir
neap.mkdir = core.mkdir
neap.rmdir = core.rmdir
neap.unlink = core.unlink
neap.rename = core.rename
neap.realpath = core.realpath
neap.chmod = core.chmod
neap.symlink = core.symlink
neap.readlink = core.readlink
neap.mkdtemp = core.mkdtemp
neap.copyfile = core.copyfile
--- neap.watch(path [, opts]) -> watcher | nil, err, code: w:next{timeout=}, w:close()
neap.watch = core.watch

-- ============================================================ timers and signals

--- neap.timer(seconds, fn, {every=}) -> timer: fn(timer) runs in a task of its own.
neap.timer = task.timer
--- neap.signal(sig, fn) -> watcher: fn(name) runs in a task at each delivery.
neap.signal = task.signal
--- neap.wait_signal(sig, {timeout=}) -> name | nil, "timeout", "timeout"
neap.wait_signal = core.wait_signal

-- ============================================================ threads

--- neap.thread(path, ...) -> thread: runs the Lua file at path on a thread
-- with its own Lua state and loop (docs/threads.md); t:send, t:receive, t:join, t:cancel
neap.thread = core.thread
--- neap.parent: in a thread, its side of the messages (send, receive); nil elsewhere
neap.parent = core.parent()

-- ============================================================ posts from C

--- neap.on_post(name, fn): fn(data, name) runs in a task for each post of
-- that name by the embedding C program (neap_post); fn = nil removes it.
neap.on_post = post.on_post
--- neap.inbox({timeout=}) -> name, data of the next post with no handler
neap.inbox = post.inbox

return neap
