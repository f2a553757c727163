#!/usr/bin/env bash
# On a machine with N >= 2 GPUs, with binaries built elsewhere: the NCCL gather tests, the CUDA
# backend tests, dsa-run on 1 and N ranks (results identical, auto's report), and the scaling
# sweep of every stage (batch sizes x rank counts 1..N and auto), then the large sizes again with
# the gather not streamed (DSA_STREAM_GATHER=0), for comparison. Tables, CSV and JSON go to OUT_DIR.
# usage: multi-gpu-check.sh BIN_DIR OUT_DIR [NP] [SIZES]
# BIN_DIR holds dsa-run, dsa-bench, dsa-gen, compare_results, mpi_nccl_gather_tests, job_tests.
set -uo pipefail
bin=$1 out=$2 np=${3:-$(nvidia-smi -L | wc -l)} sizes=${4:-32,64,128,256,512,1024,2048,4096,8192}
mkdir -p "$out"
status=0
start=$SECONDS
step() { echo; echo "=== [$((SECONDS - start)) s] $*"; }
note_fail() { echo "FAILED: $*"; status=1; }
export NCCL_NVLS_ENABLE=0  # never NVLink multicast on shared machines
mpi=(mpirun --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE)  # ranks use several cores (I/O threads)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
work=${WORK_DIR:-$(mktemp -d)}
mkdir -p "$work"

nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$out/gpus.txt"
nvidia-smi topo -m > "$out/topo.txt" 2>&1

step "NCCL gather tests on $np ranks"
"${mpi[@]}" -np "$np" "$bin/mpi_nccl_gather_tests" --gtest_brief=1 2>&1 | tail -n 4 || note_fail "NCCL gather tests"
if [ -x "$bin/job_tests" ]; then
  step "CUDA backend tests (pieces, pipeline = indexer + attention, rows independent of the call)"
  "$bin/job_tests" --gtest_brief=1 --gtest_filter='Backends/*' 2>&1 | tail -n 3 || note_fail "backend tests"
fi

step "workload"
# 8 decode steps of 1024 requests (8192 rows sharing one KV cache of 7.1 GB).
[ -f "$work/sweep.h5" ] || "$bin/dsa-gen" --preset decode --rows 1024 --batches 8 --seq-len 4096:6144 --seed 11 \
  --out "$work/sweep.h5" -q || note_fail "dsa-gen sweep"

step "dsa-run: 1 rank vs $np ranks (auto; 1024-row batches, so slices of several pieces), identical results"
for stage in indexer attention pipeline; do
  "$bin/dsa-run" -w "$work/sweep.h5" -o "$work/r1-$stage.h5" -s $stage --force --report "$out/run1-$stage.json" -q \
    > "$out/run1-$stage.txt" 2>&1 || note_fail "dsa-run 1 rank $stage"
  "${mpi[@]}" -np "$np" "$bin/dsa-run" -w "$work/sweep.h5" -o "$work/rN-$stage.h5" -s $stage --force \
    --report "$out/runN-$stage.json" > "$out/runN-$stage.txt" 2>&1 || note_fail "dsa-run $np ranks $stage"
  grep -E "^# (gather|rank choice)|^done" "$out/runN-$stage.txt"
  "$bin/compare_results" "$work/r1-$stage.h5" "$work/rN-$stage.h5" || note_fail "identical $stage"
done

step "scaling sweep"
for stage in indexer attention pipeline; do
  "${mpi[@]}" -np "$np" "$bin/dsa-bench" scaling -w "$work/sweep.h5" -s $stage --sizes "$sizes" --reps 10 \
    --csv "$out/scaling-$stage.csv" --json "$out/scaling-$stage.json" 2>&1 | tee "$out/scaling-$stage.txt" \
    || note_fail "scaling $stage"
done

step "scaling sweep, gather not streamed (DSA_STREAM_GATHER=0), large sizes"
for stage in indexer attention pipeline; do
  "${mpi[@]}" -np "$np" -x DSA_STREAM_GATHER=0 "$bin/dsa-bench" scaling -w "$work/sweep.h5" -s $stage \
    --sizes 2048,4096,8192 --reps 10 --csv "$out/unstreamed-$stage.csv" 2>&1 | tee "$out/unstreamed-$stage.txt" \
    | grep -v "^ *auto:" || note_fail "scaling unstreamed $stage"
done

echo; [ $status -eq 0 ] && echo "multi-gpu-check: all passed [$((SECONDS - start)) s]" || echo "multi-gpu-check: FAILURES above"
exit $status
