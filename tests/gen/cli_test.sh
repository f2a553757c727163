#!/bin/sh
# dsa-gen's command line: usage: cli_test.sh /path/to/dsa-gen
set -u
GEN="$1"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
. "$(dirname "$0")/../cli_checks.sh"

"$GEN" --help > "$DIR/help" 2>&1; check help 0 $?
for p in tiny demo fib-indexer fib-attention decode; do
  grep -q "^  $p\$" "$DIR/help" || { echo "FAIL help does not list preset $p"; fails=$((fails + 1)); }
done

"$GEN" --out "$DIR/w.h5" --preset nope 2> "$DIR/err"; check unknown-preset 2 $?; one_line unknown-preset "$DIR/err"
"$GEN" --out "$DIR/w.h5" --preset tiny --rows 0 2> "$DIR/err"; check zero-rows 2 $?; one_line zero-rows "$DIR/err"
"$GEN" --out "$DIR/w.h5" --preset tiny --seq-len 9:3 2> "$DIR/err"; check bad-seq-len 2 $?; one_line bad-seq-len "$DIR/err"
"$GEN" --out "$DIR/w.h5" --preset tiny --seed -4 2> "$DIR/err"; check bad-seed 2 $?; one_line bad-seed "$DIR/err"
"$GEN" --out "$DIR/w.h5" --preset tiny --bogus 2> "$DIR/err"; check unknown-option 2 $?; one_line unknown-option "$DIR/err"
"$GEN" --preset tiny 2> "$DIR/err"; check no-out 2 $?; one_line no-out "$DIR/err"
[ -e "$DIR/w.h5" ] && { echo "FAIL a file was left after bad input"; fails=$((fails + 1)); }

"$GEN" --out "$DIR/w.h5" --preset tiny --seed 5 > "$DIR/out" 2> "$DIR/err"; check tiny 0 $?
grep -q "10 rows in 5 batches" "$DIR/out" || { echo "FAIL summary:"; cat "$DIR/out"; fails=$((fails + 1)); }
"$GEN" --out "$DIR/w.h5" --preset tiny 2> "$DIR/err"; check exists 2 $?; one_line exists "$DIR/err"
"$GEN" --out "$DIR/w.h5" --preset tiny --seed 5 --force > /dev/null 2>&1; check force 0 $?
sleep 1.1  # past a second boundary, so that stored modification times would show
"$GEN" --out "$DIR/x.h5" --preset tiny --seed 5 --threads 1 -q > /dev/null 2>&1; check threads 0 $?
cmp -s "$DIR/w.h5" "$DIR/x.h5" || { echo "FAIL same seed, different bytes"; fails=$((fails + 1)); }
ls "$DIR" | grep -q tmp- && { echo "FAIL temporary file left"; fails=$((fails + 1)); }

[ "$fails" = 0 ] && echo "all passed"
exit "$fails"
