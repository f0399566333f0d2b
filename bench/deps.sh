#!/bin/sh
# Installs what the benchmarks need from Debian packages: a C compiler,
# libuv and OpenSSL for the C programs, the openssl command (certificates),
# lua5.4 with the peers luv and cqueues, Node.js (and its ws package, from
# npm) and Python 3, and for HTTP wrk, curl, lua5.3 and lua-http. Only
# missing packages are installed; 'apt-get update' runs
# once, before the first install. A package that cannot be installed is
# reported and its benchmarks are skipped by run.sh (never faked).
# Writes bench/build/deps.txt: one line per package, "name ok|missing why".
set -u
cd "$(dirname "$0")"
mkdir -p build
out=build/deps.txt
: > "$out"
updated=0
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
install() {
  pkg=$1
  if have "$pkg"; then echo "$pkg ok" >> "$out"; return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "$pkg missing (not root: apt-get install $pkg by hand)" >> "$out"; return 1
  fi
  if [ $updated = 0 ]; then
    echo "bench/deps.sh: apt-get update" >&2
    apt-get update -qq >/dev/null 2>&1 || echo "bench/deps.sh: apt-get update failed" >&2
    updated=1
  fi
  echo "bench/deps.sh: installing $pkg" >&2
  if msg=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" 2>&1 >/dev/null); then
    echo "$pkg ok" >> "$out"
  else
    why=$(printf '%s' "$msg" | grep -E '^E:' | head -1)
    echo "$pkg missing (apt-get install failed: ${why:-unknown error})" >> "$out"
    return 1
  fi
}
# Tools the runner itself needs.
for p in gcc make pkg-config libuv1-dev libssl-dev openssl lua5.4 liblua5.4-dev util-linux procps wrk; do install "$p"; done
# Peers. Node.js may come from another source than Debian: a working 'node'
# on PATH is taken as it is.
install lua-luv
install lua-cqueues
if command -v node >/dev/null 2>&1; then echo "nodejs ok" >> "$out"; else install nodejs; fi
if command -v python3 >/dev/null 2>&1; then echo "python3 ok" >> "$out"; else install python3; fi
# Node's ws package (the WebSocket peer) and its native bufferutil, from npm
# into build/npm (NODE_PATH for node_ws_echo.js)
if [ -r build/npm/node_modules/ws/package.json ]; then echo "node-ws ok" >> "$out"
elif command -v npm >/dev/null 2>&1 && npm install --silent --no-audit --no-fund --prefix build/npm ws bufferutil >/dev/null 2>&1; then
  echo "node-ws ok" >> "$out"
else
  echo "node-ws missing (npm install ws failed or no npm)" >> "$out"
fi
# HTTP (13): wrk as the load, curl to check the answers, and lua-http as the
# Lua peer (Debian ships it for Lua 5.1-5.3 only: it runs on lua5.3).
for p in wrk curl lua5.3 lua-http; do install "$p"; done
exit 0
