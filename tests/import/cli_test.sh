#!/bin/sh
# dsa-import's command line: usage: cli_test.sh /path/to/dsa-import /path/to/make_fib_dataset
set -u
IMP="$1"
MAKE="$2"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
. "$(dirname "$0")/../cli_checks.sh"
"$MAKE" "$DIR/fib" || { echo "FAIL make_fib_dataset"; exit 1; }
IDX=dsa_topk_indexer_fp8_h64_d128_topk2048_ps64
ATT=dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64

"$IMP" --help > "$DIR/help" 2>&1; check help 0 $?
grep -q -- "--definition" "$DIR/help" && grep -q "$IDX" "$DIR/help" || { echo "FAIL help"; fails=$((fails + 1)); }

"$IMP" --definition "$IDX" --out "$DIR/w.h5" 2> "$DIR/err"; check no-dataset 2 $?; one_line no-dataset "$DIR/err"
"$IMP" --dataset "$DIR/fib" --out "$DIR/w.h5" 2> "$DIR/err"; check no-definition 2 $?; one_line no-definition "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" 2> "$DIR/err"; check no-out 2 $?; one_line no-out "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" --bogus 2> "$DIR/err"; check unknown-option 2 $?; one_line unknown-option "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" --seed -3 2> "$DIR/err"; check bad-seed 2 $?; one_line bad-seed "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" --sm-scale 0.1x 2> "$DIR/err"; check bad-sm-scale 2 $?; one_line bad-sm-scale "$DIR/err"
"$IMP" --dataset "$DIR/nowhere" --definition "$IDX" --out "$DIR/w.h5" 2> "$DIR/err"; check missing-dataset 2 $?; one_line missing-dataset "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition gemm_n128 --out "$DIR/w.h5" 2> "$DIR/err"; check unknown-definition 2 $?; one_line unknown-definition "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$ATT" --pipeline --out "$DIR/w.h5" 2> "$DIR/err"; check pipeline-attention 2 $?; one_line pipeline-attention "$DIR/err"

# A malformed safetensors blob: refused with its reason, exit 2, no file.
BLOB=$(ls "$DIR"/fib/blob/workloads/dsa_paged/$IDX/*.safetensors | head -1)
cp "$BLOB" "$DIR/blob.bak"
head -c 20 "$DIR/blob.bak" > "$BLOB"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" 2> "$DIR/err"; check truncated-blob 2 $?; one_line truncated-blob "$DIR/err"
grep -q "header length .* runs past the end of the file" "$DIR/err" || { echo "FAIL truncated-blob reason:"; cat "$DIR/err"; fails=$((fails + 1)); }
cp "$DIR/blob.bak" "$BLOB"
[ -e "$DIR/w.h5" ] && { echo "FAIL a file was left after bad input"; fails=$((fails + 1)); }

"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" --seed 5 > "$DIR/out" 2> "$DIR/err"; check indexer 0 $?
grep -q "3 workloads -> 3 batches, 6 rows, 40 KV pages" "$DIR/out" || { echo "FAIL summary:"; cat "$DIR/out" "$DIR/err"; fails=$((fails + 1)); }
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" 2> "$DIR/err"; check exists 2 $?; one_line exists "$DIR/err"
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/w.h5" --seed 5 --force -q > "$DIR/out" 2>&1; check force 0 $?
[ -s "$DIR/out" ] && { echo "FAIL -q printed:"; cat "$DIR/out"; fails=$((fails + 1)); }
"$IMP" --dataset "$DIR/fib" --definition "$IDX" --out "$DIR/x.h5" --seed 5 --threads 1 -q > /dev/null 2>&1; check threads 0 $?
cmp -s "$DIR/w.h5" "$DIR/x.h5" || { echo "FAIL same seed, different bytes"; fails=$((fails + 1)); }
"$IMP" --dataset "$DIR/fib" --definition "$ATT" --out "$DIR/a.h5" --limit 2 > "$DIR/out" 2>&1; check attention-limit 0 $?
grep -q "2 workloads -> 2 batches, 4 rows" "$DIR/out" || { echo "FAIL limit summary:"; cat "$DIR/out"; fails=$((fails + 1)); }
ls "$DIR" | grep -q tmp- && { echo "FAIL temporary file left"; fails=$((fails + 1)); }

[ "$fails" = 0 ] && echo "all passed"
exit "$fails"
