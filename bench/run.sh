#!/bin/bash
# neap's benchmark suite (make bench): neap and its peers side by side, with
# hand-written C on libuv as the ceiling. See bench/README.md.
#
#   bash bench/run.sh                 full run (about 9 minutes), 3 repetitions
#   BENCH_QUICK=1 bash bench/run.sh   smoke run (about 1 minute), 1 repetition
#   BENCH_ONLY=tls bash bench/run.sh  only some benchmarks (a comma-separated
#       list of tcp, kv, idle, spawn, pipe, lines, timers, tls, ws, workers,
#       threads, http, tasks); the tables then go to bench/build/results-only-LIST.txt,
#       not bench/results.txt
#   WORKERS="1 2 4 8" bash bench/run.sh  neap --workers with these counts
#       (default "1 2"); given alone (no BENCH_ONLY), only that benchmark runs
#
# The program under test runs on CPU 0, the load (loadgen, cat) on CPU 1.
# Everything talks to 127.0.0.1 only; every run is bounded by a timeout and
# every process this script starts is stopped when it ends.
# Tables go to stdout and to bench/results.txt (a quick run writes
# bench/build/results-quick.txt instead).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=bench/build
LG=$B/loadgen
NEAP=$ROOT/build/neap
IMPL=bench/impl
LOGS=$B/logs
RAW=$B/raw.tsv
QUICK=0
case ${BENCH_QUICK:-0} in 0|"") ;; *) QUICK=1 ;; esac
ONLY=${BENCH_ONLY:-}
[ -n "${WORKERS:-}" ] && [ -z "$ONLY" ] && ONLY=workers
WORKERS_LIST=${WORKERS:-1 2}
WRK_THREADS=${WRK_THREADS:-$(nproc)}
want() { [ -z "$ONLY" ] || case ",$ONLY," in *",$1,"*) true ;; *) false ;; esac; }

if [ "$QUICK" != 0 ]; then
  REPS=1; TCP_REPS=1; WARM=0.2; SECS=0.5
  SPAWN_N=300; SPAWN_HOLD_N=20; HOLD_MIB=256
  PIPE_SIZES="$((64 << 20))"; LINES_MIB=20
  IDLE_N=2000; IDLE_SETTLE=300
  TIMERS_N=20000; TIMERS_MIN=300; TIMERS_MAX=500
  TASKS_N=20000; TASKS_SECS=5; TASKS_KB=64
  TLS_REPS=1; HS_N=300
  THR_RT=2000; THR_MSGS=20000; THR_MSGS_LUV=2000
  HTTP_REPS=1; HTTP_SECS=2
  RESULTS=$B/results-quick.txt
else
  REPS=3; TCP_REPS=5; WARM=0.3; SECS=1.0
  SPAWN_N=2000; SPAWN_HOLD_N=100; HOLD_MIB=1024
  PIPE_SIZES="200000000 $((1 << 30))"; LINES_MIB=100
  IDLE_N=10000; IDLE_SETTLE=1000
  TIMERS_N=100000; TIMERS_MIN=1000; TIMERS_MAX=1500
  TASKS_N=100000; TASKS_SECS=30; TASKS_KB=64
  TLS_REPS=3; HS_N=2000
  THR_RT=20000; THR_MSGS=500000; THR_MSGS_LUV=20000
  HTTP_REPS=3; HTTP_SECS=5
  RESULTS=bench/results.txt
fi
[ -n "$ONLY" ] && RESULTS=$B/results-only-$(printf '%s' "$ONLY" | tr -c 'a-z0-9\n' -).txt
ECHO_CONNS=50; ECHO_DEPTH=100; CHURN_PAR=50; SPAWN_INFLIGHT=50; HS_PAR=50; HTTP_CONNS=50; KV_CONNS=50; KV_DEPTH=16

say() { printf '%s\n' "$*" >&2; }
note() { printf 'note\t-\t-\t-\t%s\n' "$*" >> "$RAW"; }

# ------------------------------------------------------------ cleanup
SPID=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT TERM

# ------------------------------------------------------------ setup
sh bench/deps.sh || say "bench: deps.sh failed; going on with what is installed"
mkdir -p "$B" "$LOGS"
rm -f "$LOGS"/*.log
: > "$RAW"

UV_FLAGS=$(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv)
SSL_FLAGS=$(pkg-config --cflags --libs openssl 2>/dev/null || echo -lssl -lcrypto)
for prog in loadgen wsload c_echo c_kv c_spawn c_pipe c_lines c_timers c_tls_echo; do
  if ! cc -O2 -Wall -Wextra -o "$B/$prog" "bench/$prog.c" $UV_FLAGS $SSL_FLAGS; then
    say "bench: cannot build bench/$prog.c"; exit 1
  fi
done
[ -x "$NEAP" ] || { say "bench: $NEAP is missing: run make first"; exit 1; }
# A copy of the binary, so that a rebuild of build/ during the run (make in
# the same tree) cannot mix two builds in one table. It embeds its Lua files.
cp "$NEAP" "$B/neap" || exit 1
NEAP=$ROOT/$B/neap

ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE_N + 200)) ]; then
  note "open files limited to $NOFILE (hard limit): idle test uses $((NOFILE - 200)) connections instead of $IDLE_N"
  IDLE_N=$((NOFILE - 200))
fi

if [ "$(nproc)" -ge 2 ]; then
  PIN0="taskset -c 0"; PIN1="taskset -c 1"
else
  PIN0=""; PIN1=""
  note "only one CPU: nothing pinned, server and load share it"
fi

# Which implementations can run; a missing peer is skipped with the reason.
declare -A WHY
deps_reason() {   # the reason deps.sh gave for a package, if any
  grep "^$1 " "$B/deps.txt" 2>/dev/null | grep -v " ok$" | cut -d' ' -f2- | head -1
}
lua5.4 -e 'require "luv"' 2>/dev/null ||
  WHY[luv]="luv for Lua 5.4 not loadable ($(deps_reason lua-luv || true))"
lua5.4 -e 'require "cqueues"' 2>/dev/null ||
  WHY[cqueues]="cqueues for Lua 5.4 not loadable ($(deps_reason lua-cqueues || true))"
command -v node >/dev/null 2>&1 || WHY[node]="no node on PATH ($(deps_reason nodejs || true))"
python3 -c 'import asyncio' 2>/dev/null || WHY[python]="no python3 with asyncio ($(deps_reason python3 || true))"
command -v lua5.4 >/dev/null 2>&1 || { WHY[lua]="no lua5.4"; WHY[luv]="no lua5.4"; WHY[cqueues]="no lua5.4"; }

ver() { "$@" 2>/dev/null | head -1; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
note "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(uname -sr)"
[ "$ONLY" = workers ] || note "pinning: program under test on CPU 0, load generator and cat on CPU 1"
note "repetitions: $TCP_REPS per cell for 1-3 (short runs, noisier), $TLS_REPS for 9, $REPS for the others; medians shown$( [ "$QUICK" != 0 ] && echo ' (BENCH_QUICK: smoke run, small sizes, not for conclusions)')"
REV=$(git rev-parse --short HEAD 2>/dev/null)
[ -n "$REV" ] && [ -n "$(git status --porcelain -- src lua Makefile 2>/dev/null)" ] && REV="$REV + uncommitted changes in src/ or lua/"
[ -n "$ONLY" ] && note "BENCH_ONLY=$ONLY: only these benchmarks ran"
note "versions: neap $($NEAP -e 'print(require("neap").version)' 2>/dev/null) (build/neap of $(date -u -r build/neap '+%H:%M UTC'), tree at ${REV:-?}), libuv $(pkg-config --modversion libuv 2>/dev/null), $(ver lua5.4 -v | cut -d' ' -f1-2)"
[ -z "${WHY[luv]:-}" ] && note "luv $(lua5.4 -e 'print(require("luv").version_string())' 2>/dev/null) (Debian lua-luv, its Lua 5.4 build)"
[ -z "${WHY[cqueues]:-}" ] && note "cqueues $(lua5.4 -e 'print(require("cqueues").VERSION)' 2>/dev/null) (Debian lua-cqueues, its Lua 5.4 build)"
[ -z "${WHY[node]:-}" ] && note "Node.js $(node --version)$(want tls && node -p '", its OpenSSL " + process.versions.openssl' 2>/dev/null)"
want http && command -v wrk >/dev/null 2>&1 && note "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)$(command -v lua5.3 >/dev/null 2>&1 && printf ', lua-http %s on %s' "$(dpkg-query -W -f='${Version}' lua-http 2>/dev/null)" "$(lua5.3 -v 2>&1 | cut -d' ' -f1-2)")"
want tls && note "OpenSSL $(pkg-config --modversion openssl 2>/dev/null) (C programs and neap: $(openssl version 2>/dev/null | cut -d' ' -f1-2))"
[ -z "${WHY[python]:-}" ] && note "$(python3 --version 2>&1) asyncio (default event loop)"

# ------------------------------------------------------------ running one thing

# record BENCH IMPL REP STATUS TEXT
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$RAW"; }

# value KEY "RESULT k=v ..." -> v
value() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

# run BENCH IMPL REP SECONDS CHECK CMD... : runs CMD under a timeout, records
# its RESULT line, or why it failed. CHECK is a function given the RESULT
# line; it prints a reason when the result is wrong.
run() {
  local bench=$1 impl=$2 rep=$3 secs=$4 check=$5
  shift 5
  local out err rc res why
  out=$(mktemp) err=$(mktemp)
  timeout -k 3 "$secs" "$@" > "$out" 2> "$err"
  rc=$?
  { echo "== $bench $impl rep $rep: $*"; cat "$err"; } >> "$LOGS/$bench.log"
  res=$(grep '^RESULT ' "$out" | tail -1)
  if [ $rc = 124 ] || [ $rc = 137 ]; then why="timed out after ${secs}s"
  elif grep -q '^VERIFY FAIL' "$out"; then why=$(grep -m1 '^VERIFY FAIL' "$out")
  elif [ -z "$res" ]; then why="exit $rc, no result: $(grep -v '^\s*$' "$err" | head -1 | cut -c1-160)"
  elif [ $rc != 0 ]; then why="exit $rc: $(head -1 "$err" | cut -c1-160)"
  else why=$($check "$res")
  fi
  rm -f "$out" "$err"
  if [ -z "$why" ]; then
    record "$bench" "$impl" "$rep" ok "${res#RESULT }"
    printf '  %-8s %-10s %s\n' "$bench" "$impl" "${res#RESULT }" >&2
  else
    record "$bench" "$impl" "$rep" fail "$why"
    printf '  %-8s %-10s FAILED: %s\n' "$bench" "$impl" "$why" >&2
  fi
}

check_none() { :; }
check_spawn() { [ "$(value spawns "$1")" = "$EXPECT" ] && [ "$(value fails "$1")" = 0 ] ||
  echo "expected $EXPECT spawns and no failure: $1"; }
check_pipe() { [ "$(value verified "$1")" = yes ] && [ "$(value bytes "$1")" = "$PIPE_BYTES" ] ||
  echo "bytes differ from what was sent: $1"; }
check_lines() { [ "$(value lines "$1")" = "$EXP_LINES" ] && [ "$(value bytes "$1")" = "$EXP_BYTES" ] ||
  echo "expected lines=$EXP_LINES bytes=$EXP_BYTES: $1"; }
check_idle() { [ "$(value conns "$1")" = "$IDLE_N" ] && [ "$(value echoed_end "$1")" = "$IDLE_N" ] ||
  echo "expected $IDLE_N connections, each echoing a line at the end: $1"; }
check_timers() { [ "$(value fired "$1")" = "$TIMERS_N" ] || echo "expected $TIMERS_N wake-ups: $1"; }

skip_all() {   # skip_all BENCH IMPL REASON: one skip row
  record "$1" "$2" 0 skip "$3"
}

# ------------------------------------------------------------ servers

PORT=21000
server_cmd() {
  case $1 in
    c) echo "$B/c_echo" ;;
    neap) echo "$NEAP $IMPL/neap_echo.lua" ;;
    neap-on) echo "$NEAP $IMPL/neap_echo_on.lua" ;;
    luv) echo "lua5.4 $IMPL/luv_echo.lua" ;;
    cqueues) echo "lua5.4 $IMPL/cqueues_echo.lua" ;;
    node) echo "node $IMPL/node_echo.js" ;;
    python) echo "python3 $IMPL/py_echo.py" ;;
    c-tls) echo "$B/c_tls_echo" ;;
    neap-tls) echo "$NEAP $IMPL/neap_tls_echo.lua" ;;
    node-tls) echo "node $IMPL/node_tls_echo.js" ;;
    neap-ws) echo "$NEAP $IMPL/neap_ws_echo.lua" ;;
    node-ws) echo "env NODE_PATH=$ROOT/$B/npm/node_modules node $IMPL/node_ws_echo.js" ;;
    c-kv) echo "$B/c_kv" ;;
    neap-kv) echo "$NEAP $IMPL/neap_kv.lua" ;;
    luv-kv) echo "lua5.4 $IMPL/luv_kv.lua" ;;
    node-kv) echo "node $IMPL/node_kv.js" ;;
  esac
}

# start_server IMPL [ARG...]: on a fresh port, pinned to CPU 0, given PORT
# and the ARGs; sets SPID and PORT
start_server() {
  PORT=$((PORT + 1))
  while "$LG" wait "$PORT" 0 >/dev/null 2>&1; do PORT=$((PORT + 1)); done   # taken by someone else
  echo "== server $1 on port $PORT" >> "$LOGS/server-$1.log"
  # shellcheck disable=SC2046
  $PIN0 $(server_cmd "$1") "$PORT" "${@:2}" >> "$LOGS/server-$1.log" 2>&1 &
  SPID=$!
  if ! "$LG" wait "$PORT" 10 2>/dev/null; then
    stop_server
    return 1
  fi
}

stop_server() {
  [ -n "$SPID" ] || return 0
  kill "$SPID" 2>/dev/null
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SPID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}

server_alive() { [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; }

SERVERS="c neap luv cqueues node python"
T_LOAD=$(awk "BEGIN { print int($WARM + $SECS + 40) }")

# ------------------------------------------------------------ 1-3: TCP
if want tcp; then
say "bench: TCP echo, request/response, churn ($TCP_REPS x)"
for impl in $SERVERS; do
  if [ -n "${WHY[$impl]:-}" ]; then
    for b in echo64 echo64d16 echo4k echo4k10 rr1 rr100 churn idle; do skip_all "$b" "$impl" "${WHY[$impl]}"; done
  fi
done
for rep in $(seq 1 "$TCP_REPS"); do
  for impl in $SERVERS; do
    [ -n "${WHY[$impl]:-}" ] && continue
    if ! start_server "$impl"; then
      for b in echo64 echo64d16 echo4k echo4k10 rr1 rr100 churn; do record "$b" "$impl" "$rep" fail "server did not start (see $LOGS/server-$impl.log)"; done
      continue
    fi
    for spec in "echo64 echo $ECHO_CONNS $ECHO_DEPTH 64" "echo64d16 echo $ECHO_CONNS 16 64" \
                "echo4k echo $ECHO_CONNS $ECHO_DEPTH 4096" "echo4k10 echo 10 8 4096" \
                "rr1 echo 1 1 64" "rr100 echo 100 1 64" "churn churn $CHURN_PAR 64"; do
      set -- $spec
      b=$1; mode=$2; shift 2
      if ! server_alive; then record "$b" "$impl" "$rep" fail "server died (see $LOGS/server-$impl.log)"; continue; fi
      pid=""; [ "$mode" = echo ] && pid=$SPID   # (the server's CPU time: lines per CPU-s)
      run "$b" "$impl" "$rep" "$T_LOAD" check_none $PIN1 "$LG" "$mode" "$PORT" "$@" "$WARM" "$SECS" $pid
    done
    stop_server
  done
done
fi

# ------------------------------------------------------------ 14: key-value
if want kv; then
say "bench: key-value requests ($TCP_REPS x)"
KV_SERVERS="c neap luv node"
for impl in luv node; do [ -n "${WHY[$impl]:-}" ] && skip_all kv "$impl" "${WHY[$impl]}"; done
note "14: key-value server, $KV_CONNS connections x $KV_DEPTH requests in flight: SET of a 10-digit value and GET of it alternate (replies of 3 and 11 bytes), 1,000 keys per connection; each server answers with one write per reply (C: all replies of a read in one write, the ceiling)"
for rep in $(seq 1 "$TCP_REPS"); do
  for impl in $KV_SERVERS; do
    [ -n "${WHY[$impl]:-}" ] && continue
    if ! start_server "$impl-kv"; then record kv "$impl" "$rep" fail "server did not start (see $LOGS/server-$impl-kv.log)"; continue; fi
    run kv "$impl" "$rep" "$T_LOAD" check_none $PIN1 "$LG" kv "$PORT" "$KV_CONNS" "$KV_DEPTH" "$WARM" "$SECS" "$SPID"
    stop_server
  done
done
fi

# ------------------------------------------------------------ 7: idle connections
if want idle; then
say "bench: idle connections ($IDLE_N, $REPS x)"
for rep in $(seq 1 "$REPS"); do
  for impl in $SERVERS neap-on; do
    [ -n "${WHY[$impl]:-}" ] && continue
    if ! start_server "$impl"; then record idle "$impl" "$rep" fail "server did not start"; continue; fi
    run idle "$impl" "$rep" 120 check_idle $PIN1 "$LG" idle "$PORT" "$IDLE_N" "$SPID" "$IDLE_SETTLE"
    stop_server
  done
done
fi

# ------------------------------------------------------------ 4: spawn
if want spawn; then
say "bench: spawn ($SPAWN_N x /bin/true, $REPS x)"
for impl in cqueues; do skip_all spawn "$impl" "cqueues has no child-process API"; done
for impl in luv node python; do [ -n "${WHY[$impl]:-}" ] && skip_all spawn "$impl" "${WHY[$impl]}"; done
EXPECT=$SPAWN_N
for rep in $(seq 1 "$REPS"); do
  run spawn c "$rep" 120 check_spawn $PIN0 "$B/c_spawn" "$SPAWN_N" "$SPAWN_INFLIGHT"
  run spawn neap "$rep" 120 check_spawn $PIN0 "$NEAP" "$IMPL/neap_spawn.lua" "$SPAWN_N" "$SPAWN_INFLIGHT"
  run spawn neap-null "$rep" 120 check_spawn $PIN0 "$NEAP" "$IMPL/neap_spawn_null.lua" "$SPAWN_N" "$SPAWN_INFLIGHT"
  [ -z "${WHY[luv]:-}" ] && run spawn luv "$rep" 120 check_spawn $PIN0 lua5.4 "$IMPL/luv_spawn.lua" "$SPAWN_N" "$SPAWN_INFLIGHT"
  [ -z "${WHY[node]:-}" ] && run spawn node "$rep" 120 check_spawn $PIN0 node "$IMPL/node_spawn.js" "$SPAWN_N" "$SPAWN_INFLIGHT"
  [ -z "${WHY[python]:-}" ] && run spawn python "$rep" 120 check_spawn $PIN0 python3 "$IMPL/py_spawn.py" "$SPAWN_N" "$SPAWN_INFLIGHT"
done

say "bench: spawn from a parent holding $HOLD_MIB MiB ($SPAWN_HOLD_N x, $REPS x)"
EXPECT=$SPAWN_HOLD_N
note "4b: $SPAWN_HOLD_N spawns (not $SPAWN_N: each costs far more); C holds $HOLD_MIB MiB of touched malloc memory, neap a Lua table of $((HOLD_MIB * 1024)) distinct strings of ~1 KiB, built before the clock starts"
for rep in $(seq 1 "$REPS"); do
  run spawn1g c "$rep" 180 check_spawn $PIN0 "$B/c_spawn" "$SPAWN_HOLD_N" "$SPAWN_INFLIGHT" "$HOLD_MIB"
  run spawn1g neap "$rep" 180 check_spawn $PIN0 "$NEAP" "$IMPL/neap_spawn.lua" "$SPAWN_HOLD_N" "$SPAWN_INFLIGHT" "$HOLD_MIB"
done
fi

# ------------------------------------------------------------ 5: pipe
if want pipe; then
for PIPE_BYTES in $PIPE_SIZES; do
pb=pipe; [ "$PIPE_BYTES" = 200000000 ] && pb=pipe200
say "bench: pipe throughput ($((PIPE_BYTES >> 20)) MiB through cat, $REPS x)"
skip_all $pb cqueues "cqueues has no child-process API"
for impl in luv node python; do [ -n "${WHY[$impl]:-}" ] && skip_all $pb "$impl" "${WHY[$impl]}"; done
CAT="$PIN1 cat"
for rep in $(seq 1 "$REPS"); do
  run $pb c "$rep" 120 check_pipe $PIN0 "$B/c_pipe" "$PIPE_BYTES" $CAT
  run $pb neap "$rep" 120 check_pipe $PIN0 "$NEAP" "$IMPL/neap_pipe.lua" "$PIPE_BYTES" 65536 $CAT
  run $pb neap-1m "$rep" 120 check_pipe $PIN0 "$NEAP" "$IMPL/neap_pipe.lua" "$PIPE_BYTES" 1048576 $CAT
  [ -z "${WHY[luv]:-}" ] && run $pb luv "$rep" 120 check_pipe $PIN0 lua5.4 "$IMPL/luv_pipe.lua" "$PIPE_BYTES" $CAT
  [ -z "${WHY[node]:-}" ] && run $pb node "$rep" 120 check_pipe $PIN0 node "$IMPL/node_pipe.js" "$PIPE_BYTES" $CAT
  [ -z "${WHY[python]:-}" ] && run $pb python "$rep" 120 check_pipe $PIN0 python3 "$IMPL/py_pipe.py" "$PIPE_BYTES" $CAT
done
done
fi

# ------------------------------------------------------------ 6: line framing
if want lines; then
say "bench: line framing ($LINES_MIB MiB of lines on stdin, $REPS x)"
LINES_FILE=$B/lines-$LINES_MIB.txt
counts=$("$LG" genlines "$LINES_FILE" "$LINES_MIB" 1) || { say "bench: cannot write $LINES_FILE"; exit 1; }
EXP_LINES=$(value lines "$counts"); EXP_BYTES=$(value bytes "$counts")
note "6: $LINES_MIB MiB, $EXP_LINES lines (70% of 0-80 bytes, 25% of 80-400, 5% of 400-4000), fed by cat on CPU 1 through a pipe on stdin"
for impl in luv cqueues node python; do [ -n "${WHY[$impl]:-}" ] && skip_all lines "$impl" "${WHY[$impl]}"; done
# lines_run IMPL REP CMD...: CMD reads the file from a pipe on its stdin
lines_run() {
  local impl=$1 rep=$2; shift 2
  run lines "$impl" "$rep" 60 check_lines "$@" < <($PIN1 cat "$LINES_FILE")
}
for rep in $(seq 1 "$REPS"); do
  lines_run c "$rep" $PIN0 "$B/c_lines"
  lines_run neap "$rep" $PIN0 "$NEAP" "$IMPL/neap_lines.lua"
  lines_run lua "$rep" $PIN0 lua5.4 "$IMPL/lua_lines.lua"
  [ -z "${WHY[luv]:-}" ] && lines_run luv "$rep" $PIN0 lua5.4 "$IMPL/luv_lines.lua"
  [ -z "${WHY[cqueues]:-}" ] && lines_run cqueues "$rep" $PIN0 lua5.4 "$IMPL/cqueues_lines.lua"
  [ -z "${WHY[node]:-}" ] && lines_run node "$rep" $PIN0 node "$IMPL/node_lines.js"
  [ -z "${WHY[python]:-}" ] && lines_run python "$rep" $PIN0 python3 "$IMPL/py_lines.py"
done
rm -f "$LINES_FILE"
fi

# ------------------------------------------------------------ 8: timers
if want timers; then
say "bench: timers ($TIMERS_N sleeps of $TIMERS_MIN-$TIMERS_MAX ms, $REPS x)"
note "8: $TIMERS_N sleeps at once, each of a random length in [$TIMERS_MIN, $TIMERS_MAX] ms; lateness = wake-up time - (time of the call + length); negative = woke early"
for impl in luv cqueues node python; do [ -n "${WHY[$impl]:-}" ] && skip_all timers "$impl" "${WHY[$impl]}"; done
for rep in $(seq 1 "$REPS"); do
  run timers c "$rep" 60 check_timers $PIN0 "$B/c_timers" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
  run timers neap "$rep" 60 check_timers $PIN0 "$NEAP" "$IMPL/neap_timers.lua" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
  [ -z "${WHY[luv]:-}" ] && run timers luv "$rep" 60 check_timers $PIN0 lua5.4 "$IMPL/luv_timers.lua" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
  [ -z "${WHY[cqueues]:-}" ] && run timers cqueues "$rep" 60 check_timers $PIN0 lua5.4 "$IMPL/cqueues_timers.lua" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
  [ -z "${WHY[node]:-}" ] && run timers node "$rep" 60 check_timers $PIN0 node "$IMPL/node_timers.js" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
  [ -z "${WHY[python]:-}" ] && run timers python "$rep" 60 check_timers $PIN0 python3 "$IMPL/py_timers.py" "$TIMERS_N" "$TIMERS_MIN" "$TIMERS_MAX"
done
fi

# ------------------------------------------------------------ 12: threads
check_threads() { [ "$(value roundtrips "$1")" = "$THR_RT" ] && [ "$(value msgs "$1")" = "$EXPECT" ] ||
  echo "expected $THR_RT round trips and $EXPECT messages: $1"; }
if want threads; then
say "bench: threads ($THR_RT round trips, $THR_MSGS messages one way; $REPS x)"
note "12: two threads, so nothing is pinned (both CPUs). Round trip: the main thread sends an integer, the thread sends it back, $THR_RT times, each timed. msgs/s one way: the thread sends integers as fast as it can and the main thread takes them in order ($THR_MSGS for neap); luv's async handle keeps one value (a send before the callback ran replaces the last), so its stream waits for an ack per message ($THR_MSGS_LUV), one in flight: its msgs/s is a round trip rate. luv's messages are numbers only: its async:send hands a string over by a pointer into the sender's state that it stops holding at once (strings arrived empty; see bench/impl/luv_thread.lua). start ms: neap.thread or uv.new_thread until the first reply"
[ -n "${WHY[luv]:-}" ] && skip_all threads luv "${WHY[luv]}"
for rep in $(seq 1 "$REPS"); do
  EXPECT=$THR_MSGS
  run threads neap "$rep" 120 check_threads "$NEAP" "$IMPL/neap_thread.lua" "$THR_RT" "$THR_MSGS"
  EXPECT=$THR_MSGS_LUV
  [ -z "${WHY[luv]:-}" ] && run threads luv "$rep" 120 check_threads lua5.4 "$IMPL/luv_thread.lua" "$THR_RT" "$THR_MSGS_LUV"
done
fi

# ------------------------------------------------------------ 15: parked tasks
check_tasks() { [ "$(value tasks "$1")" = "$TASKS_N" ] || echo "expected $TASKS_N tasks: $1"; }
if want tasks; then
say "bench: $TASKS_N parked tasks, a tick making garbage every 10 ms ($REPS x ${TASKS_SECS}s)"
note "15: $TASKS_N tasks parked in neap.sleep(3600); one task wakes every 10 ms (fixed deadlines) and makes $TASKS_KB KB of short-lived tables; a probe task wakes every 1 ms. lag = how late a wake-up was; own = the part of it the process's own CPU time explains (the collector), the rest is the machine running other work; gc cycles = complete GC cycles during the ${TASKS_SECS}s measured"
for rep in $(seq 1 "$REPS"); do
  run tasks neap "$rep" $((TASKS_SECS + 120)) check_tasks $PIN0 "$NEAP" "$IMPL/neap_tasks.lua" "$TASKS_N" "$TASKS_SECS" "$TASKS_KB"
done
fi

# ------------------------------------------------------------ 9: TLS
# The certificates are made here (no key is committed): a P-256 CA and a
# P-256 server certificate for 127.0.0.1 signed by it.
make_certs() {
  local d=$1
  rm -rf "$d" && mkdir -p "$d" || return 1
  (
    cd "$d" || exit 1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key &&
    openssl req -x509 -new -key ca.key -subj "/CN=neap bench CA" -days 2 -out ca.pem \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key &&
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 2 -extfile server.ext -out server.pem
  ) > "$LOGS/certs.log" 2>&1
}
check_hs() { [ "$(value handshakes "$1")" = "$HS_N" ] && [ "$(value resumed "$1")" = "$EXPECT" ] ||
  echo "expected $HS_N handshakes, $EXPECT of them resumed: $1"; }

if want tls; then
say "bench: TLS echo and handshakes ($TLS_REPS x)"
TLS_BENCHES="tlsecho4k tlsecho64 tlshs tlsresume"
TLS_DIR=$B/tls
TLS_SERVERS="c neap node"
note "9: TLS as OpenSSL negotiates it by default (TLS 1.3, X25519, TLS_AES_256_GCM_SHA384) with a P-256 ECDSA server certificate made at bench time; loadgen does not verify it (the cost would fall on its CPU). srv CPU: the share of one CPU the server used during the measurement, per CPU-s: lines or handshakes per second of the server's CPU time (/proc), which shows the server's cost when the load generator (also doing TLS, on one CPU) is the slower side. Handshakes: $HS_N connections, $HS_PAR at once, each connect + handshake + one 64-byte line echoed + close_notify; one untimed connection first, whose session the resumed runs reuse (session tickets)"
if ! command -v openssl >/dev/null 2>&1 || ! make_certs "$TLS_DIR"; then
  for impl in $TLS_SERVERS; do for b in $TLS_BENCHES; do skip_all "$b" "$impl" "cannot make certificates (see $LOGS/certs.log)"; done; done
  TLS_SERVERS=""
fi
[ -n "${WHY[node]:-}" ] && for b in $TLS_BENCHES; do skip_all "$b" node "${WHY[node]}"; done
for rep in $(seq 1 "$TLS_REPS"); do
  for impl in $TLS_SERVERS; do
    [ -n "${WHY[$impl]:-}" ] && continue
    if ! start_server "$impl-tls" "$TLS_DIR/server.pem" "$TLS_DIR/server.key"; then
      for b in $TLS_BENCHES; do record "$b" "$impl" "$rep" fail "server did not start (see $LOGS/server-$impl-tls.log)"; done
      continue
    fi
    for spec in "tlsecho4k tlsecho $ECHO_CONNS $ECHO_DEPTH 4096 $WARM $SECS" "tlsecho64 tlsecho $ECHO_CONNS $ECHO_DEPTH 64 $WARM $SECS" \
                "tlshs handshakes $HS_N $HS_PAR 64 0" "tlsresume handshakes $HS_N $HS_PAR 64 1"; do
      set -- $spec
      b=$1; mode=$2; shift 2
      if ! server_alive; then record "$b" "$impl" "$rep" fail "server died (see $LOGS/server-$impl-tls.log)"; continue; fi
      check=check_none
      case $b in tlshs) check=check_hs; EXPECT=0 ;; tlsresume) check=check_hs; EXPECT=$HS_N ;; esac
      run "$b" "$impl" "$rep" 120 $check $PIN1 "$LG" "$mode" "$PORT" "$@" "$SPID"
    done
    stop_server
  done
done
fi

# ------------------------------------------------------------ 10: WebSocket
if want ws; then
say "bench: WebSocket echo ($REPS x)"
WS_BENCHES="wsecho64 wsecho16k"
WS_SERVERS="neap node"
note "10: WebSocket echo (RFC 6455): bench/wsload upgrades each connection, then keeps text messages in flight, each one masked frame (a nonzero key), every echo checked byte for byte; 64 B: $ECHO_CONNS connections x $ECHO_DEPTH messages, 16 KiB: $ECHO_CONNS x 10. neap: neap.http + req:websocket, the receive/send loop of docs/http.md; Node.js: the ws package (npm, with its native bufferutil for masking, as ws recommends). No C ceiling. srv CPU and msgs/CPU-s as in 9"
if [ -z "${WHY[node]:-}" ]; then
  [ -r "$B/npm/node_modules/ws/package.json" ] || WHY[node-ws]="the ws package is not installed in $B/npm ($(deps_reason node-ws || true))"
  [ -z "${WHY[node-ws]:-}" ] && note "ws $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$B/npm/node_modules/ws/package.json" | head -1) for Node.js (npm), bufferutil $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$B/npm/node_modules/bufferutil/package.json" 2>/dev/null | head -1)"
else
  WHY[node-ws]=${WHY[node]}
fi
[ -n "${WHY[node-ws]:-}" ] && for b in $WS_BENCHES; do skip_all "$b" node "${WHY[node-ws]}"; done
for rep in $(seq 1 "$REPS"); do
  for impl in $WS_SERVERS; do
    [ -n "${WHY[$impl-ws]:-}" ] && continue
    if ! start_server "$impl-ws"; then
      for b in $WS_BENCHES; do record "$b" "$impl" "$rep" fail "server did not start (see $LOGS/server-$impl-ws.log)"; done
      continue
    fi
    for spec in "wsecho64 $ECHO_CONNS $ECHO_DEPTH 64" "wsecho16k $ECHO_CONNS 10 16384"; do
      set -- $spec
      b=$1; shift
      if ! server_alive; then record "$b" "$impl" "$rep" fail "server died (see $LOGS/server-$impl-ws.log)"; continue; fi
      run "$b" "$impl" "$rep" 120 check_none $PIN1 "$B/wsload" "$PORT" "$@" "$WARM" "$SECS" "$SPID"
    done
    stop_server
  done
done
fi

# ------------------------------------------------------------ 11: workers
# neap --workers N on one reuseport port; nothing pinned: the workers and
# the load generator share every CPU (on a 2-CPU machine they compete).
start_workers() {   # start_workers N SCRIPT: sets SPID (the supervisor) and PORT
  PORT=$((PORT + 1))
  while "$LG" wait "$PORT" 0 >/dev/null 2>&1; do PORT=$((PORT + 1)); done
  echo "== neap --workers $1 $2 on port $PORT" >> "$LOGS/server-workers.log"
  "$NEAP" --workers "$1" "$2" "$PORT" >> "$LOGS/server-workers.log" 2>&1 &
  SPID=$!
  if ! "$LG" wait "$PORT" 10 2>/dev/null; then stop_server; return 1; fi
  local i   # every worker listening: the supervisor has N children and they have had a moment
  for i in $(seq 1 50); do
    [ "$(wc -w < "/proc/$SPID/task/$SPID/children" 2>/dev/null)" = "$1" ] && break
    sleep 0.1
  done
  sleep 0.5
}
if want workers; then
say "bench: neap --workers ($WORKERS_LIST): line echo and HTTP hello ($TCP_REPS x)"
note "11: neap --workers N on one port with reuseport (bench/impl/neap_workers_echo.lua, neap_workers_http.lua); NOT pinned: the N workers and the load generator share all $(nproc) CPUs. 11a: loadgen (one thread), 100 connections x 1 line of 64 B in flight. 11b: wrk -t$WRK_THREADS -c100 GET / -> 12-byte body (bench/wrk.sh; $WARM s warm-up); srv CPU: the CPUs the workers used together (from /proc), per CPU-s: requests per second of the workers' CPU time. vs 1 worker: median / the median with --workers 1"
command -v wrk >/dev/null 2>&1 || skip_all whttp w1 "wrk is not installed (make deps)"
for rep in $(seq 1 "$TCP_REPS"); do
  for w in $WORKERS_LIST; do
    if start_workers "$w" "$IMPL/neap_workers_echo.lua"; then
      run wecho "w$w" "$rep" "$T_LOAD" check_none "$LG" echo "$PORT" 100 1 64 "$WARM" "$SECS"
      stop_server
    else
      record wecho "w$w" "$rep" fail "server did not start (see $LOGS/server-workers.log)"
    fi
    command -v wrk >/dev/null 2>&1 || continue
    if start_workers "$w" "$IMPL/neap_workers_http.lua"; then
      run whttp "w$w" "$rep" "$T_LOAD" check_none sh bench/wrk.sh "$PORT" "$WRK_THREADS" 100 "$WARM" "$SECS" "$SPID"
      stop_server
    else
      record whttp "w$w" "$rep" fail "server did not start (see $LOGS/server-workers.log)"
    fi
  done
done
fi

# ------------------------------------------------------------ 13: HTTP
# wrk (one thread, keep-alive, on CPU 1) against each server on CPU 0:
# hello world, a 4 KiB JSON-ish body, a 1 MiB file read from disk on every
# request, and hello world over https (certificates as for 9).
HTTP_BENCHES="http_hello http_json http_file https_hello"
http_cmd() {   # IMPL PORT FILE [CERT KEY]
  local impl=$1; shift
  case $impl in
    neap) echo "$NEAP $IMPL/neap_http.lua $*" ;;
    node) echo "node $IMPL/node_http.js $*" ;;
    luahttp) echo "env LUA_PATH=/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua;/usr/share/lua/5.2/?.lua;/usr/share/lua/5.2/?/init.lua;; lua5.3 $IMPL/luahttp_http.lua $*" ;;
  esac
}
# start_http IMPL SCHEME [CERT KEY]: like start_server, for the HTTP servers
start_http() {
  local impl=$1 scheme=$2; shift 2
  PORT=$((PORT + 1))
  while "$LG" wait "$PORT" 0 >/dev/null 2>&1; do PORT=$((PORT + 1)); done
  echo "== server $impl ($scheme) on port $PORT" >> "$LOGS/server-http-$impl.log"
  # shellcheck disable=SC2046
  $PIN0 $(http_cmd "$impl" "$PORT" "$HTTP_FILE" "$@") >> "$LOGS/server-http-$impl.log" 2>&1 &
  SPID=$!
  if ! "$LG" wait "$PORT" 10 2>/dev/null; then stop_server; return 1; fi
}
# check_http_answers SCHEME: one request per path, each answer checked; prints why not
check_http_answers() {
  local base="$1://127.0.0.1:$PORT" got
  got=$(curl -sk --max-time 10 "$base/") || { echo "GET / failed"; return; }
  [ "$got" = "Hello, World!" ] || { echo "GET / answered '$got'"; return; }
  [ "$1" = https ] && return
  got=$(curl -sk --max-time 10 "$base/json" | wc -c)
  [ "$got" = 4096 ] || { echo "GET /json gave $got bytes, not 4096"; return; }
  got=$(curl -sk --max-time 20 "$base/file" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$HTTP_SUM" ] || { echo "GET /file: the bytes differ from the file"; return; }
}

if want http; then
say "bench: HTTP, wrk keep-alive ($HTTP_REPS x)"
HTTP_FILE=$ROOT/$B/http-1m.bin
head -c 1048576 /dev/urandom > "$HTTP_FILE"
HTTP_SUM=$(sha256sum "$HTTP_FILE" | cut -d' ' -f1)
HTTP_DIR=$B/tls
[ -f "$HTTP_DIR/server.pem" ] || make_certs "$HTTP_DIR" || HTTP_DIR=""
HTTP_SERVERS="neap node luahttp"
command -v wrk >/dev/null 2>&1 || { for impl in $HTTP_SERVERS; do for b in $HTTP_BENCHES; do skip_all "$b" "$impl" "wrk is not installed"; done; done; HTTP_SERVERS=""; }
[ -n "${WHY[node]:-}" ] && for b in $HTTP_BENCHES; do skip_all "$b" node "${WHY[node]}"; done
if ! command -v lua5.3 >/dev/null 2>&1 || ! LUA_PATH='/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua;/usr/share/lua/5.2/?.lua;/usr/share/lua/5.2/?/init.lua;;' lua5.3 -e 'require "http.server"' 2>/dev/null; then
  WHY[luahttp]="lua-http not loadable (Debian's lua-http and lua5.3: it has no Lua 5.4 build)"
  for b in $HTTP_BENCHES; do skip_all "$b" luahttp "${WHY[luahttp]}"; done
fi
command -v luvit >/dev/null 2>&1 || note "13: no luvit on this machine (not packaged by Debian): lua-http is the Lua peer"
note "13: wrk -t1 -c$HTTP_CONNS -d${HTTP_SECS}s --latency (after ${WARM}s of warm-up), keep-alive; every server's answers checked with curl first (body, size, the file's sha256). srv CPU: the share of one CPU the server used; req/CPU-s: requests per second of the server's CPU time, the server's capacity when wrk (one thread on the other CPU) is the slower side. The JSON body is made once at start (the bench is about HTTP, not JSON encoding); the file is read from disk on every request (neap.open, fs.createReadStream, io.open)"
for rep in $(seq 1 "$HTTP_REPS"); do
  for impl in $HTTP_SERVERS; do
    [ -n "${WHY[$impl]:-}" ] && continue
    for scheme in http https; do
      if [ "$scheme" = https ]; then
        list=https_hello
        if [ -z "$HTTP_DIR" ]; then record https_hello "$impl" "$rep" fail "cannot make certificates"; continue; fi
        start_http "$impl" https "$HTTP_DIR/server.pem" "$HTTP_DIR/server.key" ||
          { record https_hello "$impl" "$rep" fail "server did not start (see $LOGS/server-http-$impl.log)"; continue; }
      else
        list="http_hello http_json http_file"
        start_http "$impl" http ||
          { for b in $list; do record "$b" "$impl" "$rep" fail "server did not start (see $LOGS/server-http-$impl.log)"; done; continue; }
      fi
      why=$(check_http_answers "$scheme")
      if [ -n "$why" ]; then
        for b in $list; do record "$b" "$impl" "$rep" fail "wrong answer: $why"; done
        stop_server; continue
      fi
      for b in $list; do
        case $b in http_json) path=/json ;; http_file) path=/file ;; *) path=/ ;; esac
        if ! server_alive; then record "$b" "$impl" "$rep" fail "server died (see $LOGS/server-http-$impl.log)"; continue; fi
        run "$b" "$impl" "$rep" $((HTTP_SECS + 60)) check_none $PIN1 bash bench/http_load.sh \
          "$scheme://127.0.0.1:$PORT$path" "$HTTP_SECS" "$HTTP_CONNS" "$SPID" "$WARM"
      done
      stop_server
    done
  done
done
rm -f "$HTTP_FILE"
fi

# ------------------------------------------------------------ report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
note "load average (1, 5, 15 min) before the run: $LOAD_BEFORE; after: $LOAD_AFTER. This run adds about 1-2; more means other processes shared the CPUs and the numbers are noisier (see the spread column)"
{
  echo "neap benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')$( [ "$QUICK" != 0 ] && echo ' (BENCH_QUICK smoke run)')"
  lua5.4 bench/report.lua "$RAW"
} > "$RESULTS.tmp" && mv "$RESULTS.tmp" "$RESULTS"
cat "$RESULTS"
echo
echo "bench: tables written to $RESULTS; raw results in $RAW, logs in $LOGS/"
if grep -q $'\tfail\t' "$RAW"; then
  echo "bench: some runs FAILED (see the tables)"
  exit 1
fi
