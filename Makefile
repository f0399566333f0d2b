# neap: build, test, run. Dependencies are Debian packages (make deps).
CC ?= cc
PKGS = lua5.4 libuv
DEBS = lua5.4 liblua5.4-dev libuv1-dev lua-busted luarocks pkg-config gcc make
LUA ?= lua5.4
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT ?= -O2 -g
CFLAGS_ALL = -std=gnu11 $(OPT) -Wall -Wextra -Werror -fPIC $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm $(LDFLAGS)
B ?= build

CORE = buf err handle sched host stream tcp timer process fs signal udp
LUAFILES = $(wildcard lua/neap/*.lua)
OBJS = $(CORE:%=$(B)/obj/%.o)
HDRS = src/neap.h src/neapi.h src/buf.h

.PHONY: all deps run test test-busted test-c asan valgrind clean bench check-docs

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

$(B)/obj/%.o: src/%.c $(HDRS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(B)/obj/embed.o: $(B)/lua_embed.c $(HDRS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -Isrc -c -o $@ $<

$(B)/obj/host_embed.o: src/host.c $(HDRS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -DNEAP_EMBED_LUA -c -o $@ $<

$(B)/lua_embed.c: $(LUAFILES) tools/embed.lua | $(B)/obj
	$(LUA) tools/embed.lua $@ $(LUAFILES)

LIBOBJS = $(filter-out $(B)/obj/host.o,$(OBJS)) $(B)/obj/host_embed.o $(B)/obj/embed.o

$(B)/libneap.a: $(LIBOBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/neap: src/main.c $(B)/libneap.a
	$(CC) $(CFLAGS_ALL) -o $@ src/main.c $(B)/libneap.a $(LDLIBS_ALL) -Wl,-E

# The C module for a stock lua5.4: require "neap.core" (Lua files from lua/).
$(B)/lib/neap/core.so: $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(shell pkg-config --libs libuv)

$(B)/obj:
	mkdir -p $@

$(B)/test_buf: spec/c/test_buf.c src/buf.c src/buf.h
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ spec/c/test_buf.c src/buf.c

# deps first, then a fresh make that sees the installed pkg-config files
run: deps
	@$(MAKE) --no-print-directory all
	$(B)/neap examples/tour.lua

# The whole suite; the last line is "N passed, M failed".
test: deps
	@$(MAKE) --no-print-directory all $(B)/test_buf
	@sh spec/run.sh $(B)

asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all build-asan/test_buf
	ASAN_OPTIONS=detect_leaks=1 sh spec/run.sh build-asan

clean:
	rm -rf build build-asan
