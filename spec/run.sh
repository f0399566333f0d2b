#!/bin/sh
# Runs the busted specs with the neap binary as the interpreter and the C
# unit tests; prints the sum as the last line: "N passed, M failed".
B=${1:-build}
export NEAP_BUILD="$B"
export NEAP_SRC="${NEAP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"   # (test_tls runs spec/c/mkcerts.sh)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$B/neap" "${BUSTED:-$(command -v busted || echo /usr/bin/busted)}" ${BUSTED_ARGS:-spec} 2>&1 </dev/null | tee "$out"
sum=$(grep -E '^[0-9]+ success' "$out" | tail -n 1)
bp=$(echo "$sum" | sed -n 's/^\([0-9]*\) success.*/\1/p')
bf=$(echo "$sum" | sed -n 's/.* \([0-9]*\) failure.*/\1/p')
be=$(echo "$sum" | sed -n 's/.* \([0-9]*\) error.*/\1/p')
if [ -z "$bp" ]; then bp=0; bf=1; be=0; echo "busted did not report (crash?)"; fi
cp=0; cf=0
for t in test_buf test_tls; do
  "$B/$t" > "$out" 2>&1
  cat "$out"
  p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$out" | tail -n 1)
  f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$out" | tail -n 1)
  if [ -z "$p" ]; then p=0; f=1; echo "$t did not report (crash?)"; fi
  cp=$((cp + p)); cf=$((cf + f))
done
passed=$((bp + cp))
failed=$((bf + be + cf))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
