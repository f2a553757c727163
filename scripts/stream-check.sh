#!/usr/bin/env bash
# On one GPU, with binaries built elsewhere: the decode trace of issue 5 (1024 requests x 16
# steps, seq_len ~8K, one shared KV cache) through dsa-run --stage pipeline, with the file in
# the page cache; prints the wall time of the batches against the sum of their kernel times.
# usage: stream-check.sh BIN_DIR OUT_DIR [dsa-gen options...]
# RUN_ARGS (environment): more dsa-run options, e.g. "--io-threads 1"; NAME: the outputs' name.
set -uo pipefail
bin=$1 out=$2; shift 2
mkdir -p "$out"
work=${WORK_DIR:-$(mktemp -d)}
w="$work/decode.h5"
[ -f "$w" ] || "$bin/dsa-gen" --preset decode --seed 5 --out "$w" "$@" || exit 1
cat "$w" > /dev/null  # into the page cache
name=${NAME:-decode-pipeline}
# shellcheck disable=SC2086
"$bin/dsa-run" -w "$w" -o "$work/decode-results.h5" -s pipeline --force --report "$out/$name.json" ${RUN_ARGS:-} \
  2>&1 | tee "$out/$name.txt" || exit 1
python3 - "$out/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
b = d["batches"]
wall = sum(x["seconds"] for x in b)
kern = sum(x["split"]["index"] + x["split"]["attend"] for x in b)
parts = ["read", "upload", "index", "attend", "download", "other", "gather", "write", "idle"]
split = sum(sum(x["split"][p] for p in parts) for x in b)
print(f"batches: {len(b)}, wall {wall*1e3:.1f} ms, kernels {kern*1e3:.1f} ms, ratio {wall/kern:.2f}x (target <= 1.25x)")
print(f"split adds up to {split*1e3:.1f} ms = {100*split/wall:.1f}% of the wall time (target within 5%)")
for p in parts:
    print(f"  {p:9s} {sum(x['split'][p] for x in b)*1e3:9.1f} ms")
print(f"  background: read {d['summary']['background_read_seconds']*1e3:.1f} ms, write {d['summary']['background_write_seconds']*1e3:.1f} ms")
PY
