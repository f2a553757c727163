#!/usr/bin/env bash
# On a machine with N >= 2 GPUs, with binaries built elsewhere: the NCCL gather tests, dsa-run
# on 1 and N ranks (results identical, auto's report), and the scaling sweep of every stage
# (batch sizes x rank counts 1..N and auto). Tables, CSV and JSON go to OUT_DIR.
# usage: multi-gpu-check.sh BIN_DIR OUT_DIR [NP] [SIZES]
set -uo pipefail
bin=$1 out=$2 np=${3:-$(nvidia-smi -L | wc -l)} sizes=${4:-32,64,128,256,512,1024,2048,4096,8192}
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }
note_fail() { echo "FAILED: $*"; status=1; }
export NCCL_NVLS_ENABLE=0  # never NVLink multicast on shared machines
mpi=(mpirun --oversubscribe -x NCCL_NVLS_ENABLE)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
work=${WORK_DIR:-$(mktemp -d)}
mkdir -p "$work"

nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$out/gpus.txt"
nvidia-smi topo -m > "$out/topo.txt" 2>&1

step "NCCL gather tests on $np ranks"
"${mpi[@]}" -np "$np" "$bin/mpi_nccl_gather_tests" --gtest_brief=1 2>&1 | tail -n 4 || note_fail "NCCL gather tests"

step "workloads"
# The sweep's pool: 8 decode steps of 1024 requests (8192 rows sharing one KV cache).
[ -f "$work/sweep.h5" ] || "$bin/dsa-gen" --preset decode --rows 1024 --batches 8 --seq-len 4096:6144 --seed 11 \
  --out "$work/sweep.h5" -q || note_fail "dsa-gen sweep"
"$bin/dsa-gen" --preset decode --rows 512 --batches 4 --seq-len 4096:6144 --seed 12 --out "$work/run.h5" -q --force \
  || note_fail "dsa-gen run"
ls -la "$work"

step "dsa-run: 1 rank vs $np ranks (auto, and fixed $np), identical results"
for stage in indexer attention pipeline; do
  "$bin/dsa-run" -w "$work/run.h5" -o "$work/r1-$stage.h5" -s $stage --force --report "$out/run1-$stage.json" -q \
    > "$out/run1-$stage.txt" 2>&1 || note_fail "dsa-run 1 rank $stage"
  "${mpi[@]}" -np "$np" "$bin/dsa-run" -w "$work/run.h5" -o "$work/rN-$stage.h5" -s $stage --force \
    --report "$out/runN-$stage.json" > "$out/runN-$stage.txt" 2>&1 || note_fail "dsa-run $np ranks $stage"
  "${mpi[@]}" -np "$np" "$bin/dsa-run" -w "$work/run.h5" -o "$work/rF-$stage.h5" -s $stage --force --ranks "$np" -q \
    --report "$out/runF-$stage.json" > "$out/runF-$stage.txt" 2>&1 || note_fail "dsa-run --ranks $np $stage"
  cat "$out/runN-$stage.txt"
  "$bin/compare_results" "$work/r1-$stage.h5" "$work/rN-$stage.h5" || note_fail "identical auto $stage"
  "$bin/compare_results" "$work/r1-$stage.h5" "$work/rF-$stage.h5" || note_fail "identical fixed $stage"
done

step "scaling sweep"
for stage in indexer attention pipeline; do
  "${mpi[@]}" -np "$np" "$bin/dsa-bench" scaling -w "$work/sweep.h5" -s $stage --sizes "$sizes" --reps 10 \
    --csv "$out/scaling-$stage.csv" --json "$out/scaling-$stage.json" 2>&1 | tee "$out/scaling-$stage.txt" \
    || note_fail "scaling $stage"
done

echo; [ $status -eq 0 ] && echo "multi-gpu-check: all passed" || echo "multi-gpu-check: FAILURES above"
exit $status
