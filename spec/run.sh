#!/bin/sh
# Runs the busted specs with the neap binary as the interpreter and the C
# unit tests; prints the sum as the last line: "N passed, M failed".
B=${1:-build}
export NEAP_BUILD="$B"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$B/neap" /usr/bin/busted ${BUSTED_ARGS:-spec} 2>&1 </dev/null | tee "$out"
sum=$(grep -E '^[0-9]+ success' "$out" | tail -n 1)
bp=$(echo "$sum" | sed -n 's/^\([0-9]*\) success.*/\1/p')
bf=$(echo "$sum" | sed -n 's/.* \([0-9]*\) failure.*/\1/p')
be=$(echo "$sum" | sed -n 's/.* \([0-9]*\) error.*/\1/p')
if [ -z "$bp" ]; then bp=0; bf=1; be=0; echo "busted did not report (crash?)"; fi
"$B/test_buf" > "$out" 2>&1
cat "$out"
cp=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$out" | tail -n 1)
cf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$out" | tail -n 1)
if [ -z "$cp" ]; then cp=0; cf=1; echo "test_buf did not report (crash?)"; fi
passed=$((bp + cp))
failed=$((bf + be + cf))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
