--- neap.post: events an embedding C program posts with neap_post(h, name,
-- ...). A name with a handler (neap.on_post) runs it in a task; the others
-- wait in the inbox (neap.inbox) until a task takes them. Requiring this
-- file sets the core's post handler.
local core = require "neap.core"
local util = require "neap.util"
local argerr, checkopts = util.argerr, util.checkopts
local type, error, pcall = type, error, pcall

local post = {}

local post_handlers, n_handlers, inbox_waiting = {}, 0, 0
local inbox_q = require("neap.queue").new()

local function post_ref()
  core.post_ref(n_handlers > 0 or inbox_waiting > 0)
end

core.set_post_handler(function(name, data)
  local h = post_handlers[name]
  if h then core.task(h, data, name) else inbox_q:put({ name, data }) end
end)

--- neap.on_post(name, fn): fn(data, name) runs in a task for each event an
-- embedding C program posts with neap_post(h, name, ...); fn = nil removes it.
-- While a handler is set, posts keep the loop alive.
function post.on_post(name, fn)
  if type(name) ~= "string" then argerr("on_post", 1, "name must be a string") end
  if fn ~= nil and type(fn) ~= "function" then argerr("on_post", 2, "function or nil expected") end
  if post_handlers[name] and not fn then n_handlers = n_handlers - 1 end
  if not post_handlers[name] and fn then n_handlers = n_handlers + 1 end
  post_handlers[name] = fn
  post_ref()
end

--- neap.inbox({timeout=}) -> name, data of the next post with no on_post
-- handler | nil, "timeout", "timeout"
function post.inbox(opts)
  opts = checkopts("inbox", 1, opts)
  if not core.current() and inbox_q:count() == 0 then
    error("inbox: the inbox is empty and a wait must run inside a task", 2)
  end
  inbox_waiting = inbox_waiting + 1
  post_ref()
  local ok, m, err, code = pcall(inbox_q.get, inbox_q, opts)
  inbox_waiting = inbox_waiting - 1
  post_ref()
  if not ok then error(m, 0) end
  if not m then return nil, err, code end
  return m[1], m[2]
end

return post
