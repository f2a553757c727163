#!/usr/bin/env bash
# mpirun with the flags Open MPI needs when run as root or with more ranks than cores
# (containers, CI, a laptop). On a cluster, call mpirun or srun yourself.
set -euo pipefail
flags=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
exec mpirun "${flags[@]}" "$@"
