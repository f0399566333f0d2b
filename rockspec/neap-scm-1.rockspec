rockspec_format = "3.0"
package = "neap"
version = "scm-1"
source = {
   url = "git+file:///neap",
}
description = {
   summary = "An event host for Lua 5.4 on libuv",
   detailed = [[
      Tasks whose waits read top to bottom (local line = sock:read_line()),
      TCP, UDP and Unix sockets, child processes and pipelines, files, timers
      and signals on one libuv event loop. Installs the module (neap.core and
      the Lua files of neap) and the neap binary.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   LIBUV = {
      header = "uv.h",
      library = "uv",
   },
   OPENSSL = {
      header = "openssl/ssl.h",
      library = "ssl",
   },
}
build = {
   type = "make",
   build_target = "rock",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA = "$(LUA)",
   },
   install_target = "rock-install",
   install_variables = {
      INST_BINDIR = "$(BINDIR)",
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
   },
}
test_dependencies = {
   "busted",
}
test = {
   type = "busted",
}
