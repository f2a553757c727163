#!/usr/bin/env bash
# Builds everything and runs every test (unit, MPI through mpirun, GPU tests that skip
# visibly without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
ctest --preset release -j "$(nproc)" "$@"
