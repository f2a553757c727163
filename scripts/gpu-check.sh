#!/usr/bin/env bash
# On a GPU machine, with binaries built elsewhere: GPU tests, the job end to end on the CUDA
# backend for every stage (checked against the CPU reference with dsa-verify, and against the
# CPU backend's results), and the kernel benchmarks. Logs and JSON go to OUT_DIR.
# usage: gpu-check.sh BIN_DIR OUT_DIR [bench args...]
set -uo pipefail
bin=$1 out=$2; shift 2
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }
note_fail() { echo "FAILED: $*"; status=1; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

step "GPU tests"
for t in gpu_indexer_tests gpu_attention_tests; do
  "$bin/$t" --gtest_brief=1 2>&1 | tail -n 5 | tee "$out/$t.txt" || note_fail "$t"
done

step "dsa-run --backend cuda on the demo and fib workloads, every stage, verified"
work=$(mktemp -d)
for preset in demo fib-indexer fib-attention; do
  "$bin/dsa-gen" --preset "$preset" --seed 3 --out "$work/$preset.h5" -q || note_fail "dsa-gen $preset"
done
for preset in demo fib-indexer fib-attention; do
  for stage in indexer attention pipeline; do
    [ "$preset" = fib-indexer ] && [ "$stage" != indexer ] && continue
    [ "$preset" = fib-attention ] && [ "$stage" != attention ] && continue
    r="$work/$preset-$stage-cuda.h5"
    "$bin/dsa-run" -w "$work/$preset.h5" -o "$r" -s "$stage" --backend cuda --report "$out/run-$preset-$stage.json" \
      -q >"$out/run-$preset-$stage.txt" 2>&1 || { note_fail "dsa-run $preset $stage"; cat "$out/run-$preset-$stage.txt"; }
    tail -n 2 "$out/run-$preset-$stage.txt"
    "$bin/dsa-verify" -w "$work/$preset.h5" -r "$r" | tail -n 3 || note_fail "dsa-verify $preset $stage"
  done
done

step "dsa-bench"
"$bin/dsa-bench" all --json "$out/bench.json" "$@" 2>&1 | tee "$out/bench.txt" || note_fail "dsa-bench"
"$bin/dsa-bench" all --suite fib --json "$out/bench-fib.json" 2>&1 | tee "$out/bench-fib.txt" || note_fail "dsa-bench fib"

rm -rf "$work"
echo; [ $status -eq 0 ] && echo "gpu-check: all passed" || echo "gpu-check: FAILURES above"
exit $status
