# neap: build, test, run. Dependencies are Debian packages (make deps).
CC ?= cc
PKGS = lua5.4 libuv openssl
DEBS = lua5.4 liblua5.4-dev libuv1-dev libssl-dev openssl lua-busted luarocks pkg-config gcc make clang valgrind node-llhttp wrk curl chromium
LUA ?= lua5.4
# busted's script, run by neap (Debian's starts Lua 5.1): from PATH, or BUSTED=...
BUSTED ?= $(shell command -v busted 2>/dev/null || echo /usr/bin/busted)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT ?= -O2 -g
CFLAGS_ALL = -std=gnu11 $(OPT) -Wall -Wextra -Werror -fPIC $(PKG_CFLAGS) -isystem $(LLHTTP_INC) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm $(LDFLAGS)
B ?= build

CORE = buf auxlib handle sched host stream stream_write tcp timer process fs fsops watch signal udp bufobj tls tlsstream http thread ws
LUAFILES = $(wildcard lua/neap/*.lua)
# llhttp (neap.http's parser): the generated C sources and header of Debian's
# node-llhttp, compiled from where the package installed them (not copied here)
LLHTTP_C ?= $(shell dpkg -L node-llhttp 2>/dev/null | grep '/llhttp\.c$$' | head -n 1)
LLHTTP_DIR ?= $(if $(LLHTTP_C),$(patsubst %/,%,$(dir $(LLHTTP_C))),/usr/share/llhttp)
LLHTTP_H ?= $(shell dpkg -L node-llhttp 2>/dev/null | grep '/llhttp\.h$$' | head -n 1)
LLHTTP_INC ?= $(if $(LLHTTP_H),$(patsubst %/,%,$(dir $(LLHTTP_H))),/usr/share/include/llhttp)
LLHTTP = llhttp api http
LLHTTP_SRCS = $(LLHTTP:%=$(LLHTTP_DIR)/%.c)
LLHTTP_SYMS = $(B)/llhttp/names.txt
OBJCOPY ?= objcopy
NM ?= nm
OBJS = $(CORE:%=$(B)/obj/%.o) $(LLHTTP:%=$(B)/obj/llhttp_%.o)

.PHONY: all deps run test asan valgrind gcstress fuzz soak clean bench check-docs install uninstall rock rock-install

# The version is neap.h's NEAP_VERSION, the one place it is written.
VERSION := $(shell sed -n 's/^#define NEAP_VERSION "\(.*\)"/\1/p' src/neap.h)
SOMAJOR = 0
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
INCDIR = $(PREFIX)/include
LUADIR = $(PREFIX)/share/lua/5.4
CMODDIR = $(PREFIX)/lib/lua/5.4
MANDIR = $(PREFIX)/share/man/man1
PCDIR = $(LIBDIR)/pkgconfig

all: $(B)/neap $(B)/libneap.a $(B)/lib/neap/core.so

# Installs whichever Debian packages are missing (nothing when all are there).
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# -MMD: each object also depends on the headers it includes (build/obj/*.d).
# Each gets llhttp's names with the neap_ prefix (see below).
$(B)/obj/%.o: src/%.c $(LLHTTP_SYMS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<
	$(OBJCOPY) --redefine-syms=$(LLHTTP_SYMS) $@

# llhttp's own sources: not ours, so no -Werror/-Wextra (they have unused
# parameters). Every global name they define is renamed with a neap_ prefix
# (llhttp_execute -> neap_llhttp_execute) in them and in our objects, so that
# a program linking libneap beside its own llhttp has no clash.
$(B)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(OPT) -fPIC -w -I$(LLHTTP_INC) $(CFLAGS) -c -o $@ $<

$(LLHTTP_SYMS): $(LLHTTP:%=$(B)/llhttp/%.o)
	$(NM) -g --defined-only $^ | awk 'NF == 3 { print $$3, "neap_" $$3 }' | sort -u > $@.tmp && mv $@.tmp $@

$(B)/obj/llhttp_%.o: $(B)/llhttp/%.o $(LLHTTP_SYMS) | $(B)/obj
	$(OBJCOPY) --redefine-syms=$(LLHTTP_SYMS) $< $@

$(B)/obj/embed.o: $(B)/lua_embed.c | $(B)/obj
	$(CC) $(CFLAGS_ALL) -MMD -MP -Isrc -c -o $@ $<

$(B)/obj/host_embed.o: src/host.c | $(B)/obj
	$(CC) $(CFLAGS_ALL) -MMD -MP -DNEAP_EMBED_LUA -c -o $@ $<

-include $(wildcard $(B)/obj/*.d)

$(B)/lua_embed.c: $(LUAFILES) tools/embed.lua | $(B)/obj
	$(LUA) tools/embed.lua $@ $(LUAFILES)

LIBOBJS = $(filter-out $(B)/obj/host.o,$(OBJS)) $(B)/obj/host_embed.o $(B)/obj/embed.o

$(B)/libneap.a: $(LIBOBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libneap.so.$(VERSION): $(LIBOBJS)
	$(CC) -shared -Wl,-soname,libneap.so.$(SOMAJOR) -o $@ $^ $(LDLIBS_ALL)

# neap.pc is written by install itself, so it always names the PREFIX it is
# installed under (a file in $(B) would keep the PREFIX of an earlier install).
PC_LINES = 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
  'Name: neap' 'Description: An event host for Lua 5.4 on libuv' 'Version: $(VERSION)' \
  'Requires: lua5.4 libuv' 'Requires.private: openssl' 'Libs: -L$${libdir} -lneap' 'Cflags: -I$${includedir}'

$(B)/neap: src/main.c src/workers.c src/workers.h $(B)/libneap.a
	$(CC) $(CFLAGS_ALL) -o $@ src/main.c src/workers.c $(B)/libneap.a $(LDLIBS_ALL) -Wl,-E

# The C module for a stock lua5.4: require "neap.core" (Lua files from lua/).
$(B)/lib/neap/core.so: $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(shell pkg-config --libs libuv openssl) $(LDFLAGS)

$(B)/obj:
	mkdir -p $@

$(B)/test_buf: spec/c/test_buf.c spec/c/test.h src/buf.c src/buf.h
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ spec/c/test_buf.c src/buf.c

# The TLS engine alone (it makes its certificates with spec/c/mkcerts.sh).
$(B)/test_tls: spec/c/test_tls.c spec/c/test.h src/tls.c src/tls.h src/buf.c src/buf.h | $(B)/obj
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ spec/c/test_tls.c src/tls.c src/buf.c \
	  $(shell pkg-config --libs openssl) $(LDFLAGS)

# deps first, then a fresh make that sees the installed pkg-config files
run: deps
	@$(MAKE) --no-print-directory all
	$(B)/neap examples/tour.lua

# The whole suite; the last line is "N passed, M failed".
test: deps
	@$(MAKE) --no-print-directory all $(B)/test_buf $(B)/test_tls $(B)/embed $(CPROGS:%=$(B)/%)
	@sh spec/run.sh $(B)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer (any
# report fails the run); lua5.4 gets the ASan runtime preloaded.
SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: deps
	@$(MAKE) --no-print-directory B=build-asan OPT="-O1 -g $(SAN)" LDFLAGS="$(SAN)" \
	  all build-asan/test_buf build-asan/test_tls build-asan/embed $(CPROGS:%=build-asan/%)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 NEAP_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  sh spec/run.sh build-asan

# Installs exactly what uninstall removes.
INSTALLED = $(BINDIR)/neap $(LIBDIR)/libneap.a $(LIBDIR)/libneap.so.$(VERSION) \
  $(LIBDIR)/libneap.so.$(SOMAJOR) $(LIBDIR)/libneap.so $(INCDIR)/neap.h $(PCDIR)/neap.pc \
  $(CMODDIR)/neap/core.so $(LUAFILES:lua/%=$(LUADIR)/%) $(MANDIR)/neap.1

install: all $(B)/libneap.so.$(VERSION)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) \
	  $(DESTDIR)$(CMODDIR)/neap $(DESTDIR)$(LUADIR)/neap $(DESTDIR)$(MANDIR)
	install -m 755 $(B)/neap $(DESTDIR)$(BINDIR)/neap
	install -m 644 $(B)/libneap.a $(DESTDIR)$(LIBDIR)/libneap.a
	install -m 755 $(B)/libneap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libneap.so.$(VERSION)
	ln -sf libneap.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libneap.so.$(SOMAJOR)
	ln -sf libneap.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libneap.so
	install -m 644 src/neap.h $(DESTDIR)$(INCDIR)/neap.h
	printf '%s\n' $(PC_LINES) > $(DESTDIR)$(PCDIR)/neap.pc && chmod 644 $(DESTDIR)$(PCDIR)/neap.pc
	install -m 755 $(B)/lib/neap/core.so $(DESTDIR)$(CMODDIR)/neap/core.so
	install -m 644 $(LUAFILES) $(DESTDIR)$(LUADIR)/neap/
	install -m 644 docs/neap.1 $(DESTDIR)$(MANDIR)/neap.1

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(CMODDIR)/neap $(DESTDIR)$(LUADIR)/neap 2>/dev/null

# LuaRocks (rockspec/neap-scm-1.rockspec, build.type "make") calls these two.
rock: all

rock-install: rock
	install -d $(INST_BINDIR) $(INST_LIBDIR)/neap $(INST_LUADIR)/neap
	install -m 755 $(B)/neap $(INST_BINDIR)/neap
	install -m 755 $(B)/lib/neap/core.so $(INST_LIBDIR)/neap/core.so
	install -m 644 $(LUAFILES) $(INST_LUADIR)/neap/

$(B)/embed: examples/embed/embed.c $(B)/libneap.a
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ examples/embed/embed.c $(B)/libneap.a $(LDLIBS_ALL)

# C programs on the embedding API that specs run (spec/regress/): an embedder
# closing every handle with uv_walk before neap_free; two hosts on one thread;
# hosts freed while their neap.threads run (spec/thread_spec.lua).
# lua_alloc_oom: neap_new with each allocation in turn failing (spec 16-18).
CPROGS = embed_walk two_hosts threads_exit lua_alloc_oom
LDWRAP_lua_alloc_oom = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
$(CPROGS:%=$(B)/%): $(B)/%: spec/c/%.c $(B)/libneap.a
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(B)/libneap.a $(LDWRAP_$*) $(LDLIBS_ALL)

# Sockets, processes and embedding under valgrind memcheck: no definite or
# indirect leak, no invalid access. --fair-sched=yes: valgrind runs one
# thread at a time, and by default a thread that never blocks (the specs'
# busy.lua) keeps the lock for long stretches, so its neighbours missed
# their 10 s waits (threads_exit's alarm, CI of 2026-12-05); with a ticket
# lock threads_exit takes 2 s every time instead of 5-24 s.
VG = valgrind -q --fair-sched=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --error-exitcode=99 --trace-children=no --suppressions=spec/valgrind.supp
VALGRIND_SPECS ?= spec/stream_spec.lua spec/tcp_spec.lua spec/callbacks_spec.lua spec/proto_spec.lua \
  spec/unix_spec.lua spec/udp_spec.lua spec/process_spec.lua spec/pipeline_spec.lua spec/regress spec/fs_dir_spec.lua spec/follow_spec.lua \
  spec/tls_spec.lua spec/tls_peers_spec.lua spec/tls_hostile_spec.lua \
  spec/http_spec.lua spec/thread_spec.lua spec/websocket_spec.lua
# Two busted tags leave specs out (write them at the end of a describe or it
# name): #load, the load tests (thousands of connections or children, many
# MB), left to make test and make asan, since valgrind is slow to fork and
# gcstress makes them quadratic; #novalgrind, a program that cannot start,
# which valgrind does not report (it runs posix_spawn's CLONE_VFORK as a
# plain fork): those cases run in make test and make asan.
valgrind: deps
	@$(MAKE) --no-print-directory all $(B)/embed $(B)/test_tls $(CPROGS:%=$(B)/%)
	NEAP_VALGRIND=1 $(VG) $(B)/neap $(BUSTED) --exclude-tags=load,novalgrind $(VALGRIND_SPECS)
	$(VG) $(B)/embed examples/embed/script.lua
	$(VG) $(B)/test_tls
	$(HG) $(B)/neap $(BUSTED) --exclude-tags=load,novalgrind spec/thread_spec.lua
	$(HG) $(B)/threads_exit spec/threads
	@echo "valgrind: clean"

# helgrind (data races, lock order) over neap.thread: about 30 s, so part of
# the valgrind target; spec/helgrind.supp says what libuv's signals need.
HG = valgrind -q --fair-sched=yes --tool=helgrind --error-exitcode=98 --suppressions=spec/helgrind.supp

# Socket and process specs with a full garbage collection at every task switch.
# The load specs (#load: thousands of live objects) are left out: a full
# collection per switch makes them quadratic, and they test load, not GC safety.
gcstress: deps
	@$(MAKE) --no-print-directory all
	NEAP_GC_STRESS=1 $(B)/neap $(BUSTED) --exclude-tags=load spec/stream_spec.lua spec/tcp_spec.lua spec/callbacks_spec.lua \
	  spec/manager_spec.lua $(wildcard spec/process_spec.lua spec/pipeline_spec.lua) spec/regress \
	  spec/tls_spec.lua spec/tls_peers_spec.lua spec/tls_hostile_spec.lua spec/websocket_spec.lua

# Every public name (luaL_Reg methods, lua/neap functions) has a heading in docs/.
check-docs:
	$(LUA) tools/check_docs.lua

# The soak test: SOAK_SECONDS of 2,000 echoing connections and child churn.
SOAK_SECONDS ?= 60
soak: deps
	@$(MAKE) --no-print-directory all
	ulimit -n 16384 && SOAK_SECONDS=$(SOAK_SECONDS) $(B)/neap spec/soak.lua

# libFuzzer targets (clang): the buffer's framing against a reference,
# neap.proto with the HTTP parser example, a server-side TLS engine fed
# random bytes, the WebSocket frame reader fed whole and in pieces, and
# neap.http's server parser path fed whole and split
# (spec/fuzz/http_driver.lua). FUZZ_SECONDS each (CI: 40).
FUZZ_SECONDS ?= 60
FZ = -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SRCS = $(CORE:%=src/%.c)
fuzz: deps
	@mkdir -p build-fuzz/corpus_buf build-fuzz/corpus_proto build-fuzz/corpus_tls build-fuzz/corpus_ws build-fuzz/corpus_http
	clang -std=gnu11 $(FZ) -fsanitize=fuzzer -Isrc spec/fuzz/fuzz_buf.c src/buf.c -o build-fuzz/fuzz_buf
	clang -std=gnu11 $(FZ) -fsanitize=fuzzer -Isrc $(PKG_CFLAGS) -isystem $(LLHTTP_INC) spec/fuzz/fuzz_proto.c $(FUZZ_SRCS) $(LLHTTP_SRCS) \
	  -o build-fuzz/fuzz_proto $(PKG_LIBS) -lm
	clang -std=gnu11 $(FZ) -fsanitize=fuzzer -Isrc $(PKG_CFLAGS) spec/fuzz/fuzz_tls.c src/tls.c src/buf.c \
	  -o build-fuzz/fuzz_tls $(shell pkg-config --libs openssl)
	clang -std=gnu11 $(FZ) -fsanitize=fuzzer -Isrc $(PKG_CFLAGS) -isystem $(LLHTTP_INC) spec/fuzz/fuzz_ws.c $(FUZZ_SRCS) $(LLHTTP_SRCS) \
	  -o build-fuzz/fuzz_ws $(PKG_LIBS) -lm
	clang -std=gnu11 $(FZ) -fsanitize=fuzzer -Isrc $(PKG_CFLAGS) -isystem $(LLHTTP_INC) spec/fuzz/fuzz_http.c $(FUZZ_SRCS) $(LLHTTP_SRCS) \
	  -o build-fuzz/fuzz_http $(PKG_LIBS) -lm
	cp spec/fuzz/corpus_buf/* build-fuzz/corpus_buf/
	cp spec/fuzz/corpus_proto/* build-fuzz/corpus_proto/
	cp spec/fuzz/corpus_tls/* build-fuzz/corpus_tls/
	cp spec/fuzz/corpus_ws/* build-fuzz/corpus_ws/
	cp spec/fuzz/corpus_http/* build-fuzz/corpus_http/
	build-fuzz/fuzz_buf -max_total_time=$(FUZZ_SECONDS) -seed=1 -artifact_prefix=build-fuzz/ \
	  build-fuzz/corpus_buf spec/fuzz/regress_buf > build-fuzz/buf.log 2>&1 \
	  || { tail -n 40 build-fuzz/buf.log; exit 1; }
	@tail -n 1 build-fuzz/buf.log
	ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -seed=1 \
	  -max_len=4096 -artifact_prefix=build-fuzz/ build-fuzz/corpus_proto spec/fuzz/regress_proto \
	  > build-fuzz/proto.log 2>&1 || { tail -n 40 build-fuzz/proto.log; exit 1; }
	@tail -n 1 build-fuzz/proto.log
	build-fuzz/fuzz_tls -max_total_time=$(FUZZ_SECONDS) -seed=1 -max_len=8192 -artifact_prefix=build-fuzz/ \
	  build-fuzz/corpus_tls > build-fuzz/tls.log 2>&1 || { tail -n 40 build-fuzz/tls.log; exit 1; }
	@tail -n 1 build-fuzz/tls.log
	ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz_ws -max_total_time=$(FUZZ_SECONDS) -seed=1 -max_len=4096 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus_ws spec/fuzz/regress_ws > build-fuzz/ws.log 2>&1 || { tail -n 40 build-fuzz/ws.log; exit 1; }
	@tail -n 1 build-fuzz/ws.log
	ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz_http -max_total_time=$(FUZZ_SECONDS) -seed=1 \
	  -max_len=2048 -artifact_prefix=build-fuzz/ build-fuzz/corpus_http \
	  > build-fuzz/http.log 2>&1 || { tail -n 40 build-fuzz/http.log; exit 1; }
	@tail -n 1 build-fuzz/http.log
	@echo "fuzz: no crash"

clean:
	rm -rf build build-asan build-fuzz

# Benchmarks against peers and a C ceiling (bench/README.md); BENCH_QUICK=1 for a smoke run.
bench: all
	bash bench/run.sh
