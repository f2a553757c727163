#!/usr/bin/env bash
# Builds everything and runs the demo: a synthetic workload through the whole pipeline
# (indexer top-2048 into sparse attention) on 4 MPI ranks, then checks that 1 rank gives
# identical results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target dsa-gen dsa-run compare_results
mkdir -p out
build/src/dsa-gen --preset demo --seed 1 --force --out out/demo.h5
scripts/mpirun.sh -np 4 build/src/dsa-run --workload out/demo.h5 --out out/demo-results.h5 \
  --stage pipeline --backend cpu --force --report out/demo-report.json
build/src/dsa-run --workload out/demo.h5 --out out/demo-results-np1.h5 --stage pipeline \
  --backend cpu --force --quiet
build/tests/mpi/compare_results out/demo-results.h5 out/demo-results-np1.h5
