#!/bin/bash
# One HTTP load run for bench/run.sh: wrk (one thread, keep-alive) against
# URL for SECS seconds with CONNS connections, after WARM seconds of
# warm-up; the server's CPU time comes from /proc/SPID/stat.
#   bash bench/http_load.sh URL SECS CONNS SPID WARM
# Prints "RESULT rps= p50_us= p99_us= srv_cpu= per_cpu_s= requests= timeouts=",
# or "VERIFY FAIL ..." when wrk saw non-2xx answers or socket errors.
set -u
url=$1 secs=$2 conns=$3 spid=$4 warm=$5
ticks() { awk '{ print $14 + $15 }' "/proc/$spid/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
wrk -t1 -c"$conns" -d"${warm}s" "$url" > /dev/null 2>&1
t0=$(ticks); s0=$(date +%s.%N)
out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" 2>&1)
t1=$(ticks); s1=$(date +%s.%N)
echo "$out" >&2
us() {   # "1.23ms" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1e6; else if (u == "m") f = 6e7; else f = 1
    printf "%.0f", n * f }'
}
n=$(echo "$out" | awk '/requests in/ { print $1 }')
rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
errs=$(echo "$out" | sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p')
if [ -z "$n" ] || [ -z "$rps" ] || [ -z "$p99" ]; then echo "VERIFY FAIL no wrk result"; exit 1; fi
if [ -n "$non2xx" ] && [ "$non2xx" != 0 ]; then echo "VERIFY FAIL $non2xx non-2xx answers"; exit 1; fi
set -- ${errs:-0 0 0 0}
if [ "$1" != 0 ] || [ "$2" != 0 ] || [ "$3" != 0 ]; then echo "VERIFY FAIL socket errors: connect $1, read $2, write $3"; exit 1; fi
cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.3f", (b - a) / hz / (s1 - s0) }')
per=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$n" 'BEGIN { c = (b - a) / hz; printf "%.0f", (c > 0 ? n / c : 0) }')
echo "RESULT rps=$rps p50_us=$(us "$p50") p99_us=$(us "$p99") srv_cpu=$cpu per_cpu_s=$per requests=$n timeouts=$4"
