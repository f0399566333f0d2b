#!/bin/sh
# bench/wrk.sh PORT THREADS CONNS WARMUP SECS: wrk's GET / against
# 127.0.0.1:PORT (a warm-up run first, not counted; both rounded up to whole
# seconds, as wrk takes them), its output turned into
# one RESULT line for bench/run.sh: reqs_per_s, p50_us, p99_us, errors.
# Any socket error or non-2xx answer is printed as VERIFY FAIL.
port=$1 threads=$2 conns=$3 warm=$4 secs=$5 sup=${6:-}
# the CPU time (ticks) of the supervisor's children, the workers: with SUP
# (the supervisor's pid), srv_cpu (CPUs the workers used) and per_cpu_s
# (requests per second of the workers' CPU time) are added to the RESULT
ticks() {
  [ -n "$sup" ] || { echo 0; return; }
  t=0
  for k in $(cat "/proc/$sup/task/$sup/children" 2>/dev/null); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$k/stat" 2>/dev/null || echo 0)))
  done
  echo $t
}
url=http://127.0.0.1:$port/
whole() { awk "BEGIN { s = int($1); if (s < $1) s++; if (s < 1) s = 1; print s }"; }   # wrk takes whole seconds
warm=$(whole "$warm") secs=$(whole "$secs")
wrk -t"$threads" -c"$conns" -d"${warm}s" "$url" > /dev/null 2>&1
t0=$(ticks)
out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$url" 2>&1) || { echo "$out" >&2; exit 1; }
t1=$(ticks)
echo "$out" >&2
echo "$out" | awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v secs="$secs" -v sup="$sup" '
  function us(v) {   # wrk prints 812.00us, 1.23ms, 1.01s
    if (v ~ /us$/) return v + 0
    if (v ~ /ms$/) return (v + 0) * 1000
    if (v ~ /m$/) return (v + 0) * 60e6
    if (v ~ /s$/) return (v + 0) * 1e6
    return v + 0
  }
  /Requests\/sec:/ { rps = $2 }
  /^ +50%/ { p50 = us($2) }
  /^ +99%/ { p99 = us($2) }
  /Socket errors:/ { errs = 1; detail = $0 }
  /Non-2xx or 3xx responses:/ { errs = 1; detail = $0 }
  END {
    if (errs) print "VERIFY FAIL " detail
    printf "RESULT reqs_per_s=%s p50_us=%.0f p99_us=%.0f", rps, p50, p99
    if (sup != "" && ticks > 0)
      printf " srv_cpu=%.3f per_cpu_s=%.0f", ticks / hz / secs, rps * secs / (ticks / hz)
    printf "\n"
  }'
