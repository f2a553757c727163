#!/usr/bin/env bash
# dsa-bench calibrate writes a curve that dsa-run --calibration plans from (results identical
# to one rank), a bad calibration file is refused with its name, and the scaling sweep covers
# every size x rank count + auto with bit-identical results, as a table, CSV and JSON. Results
# read and written through HDF5 alone (--io-threads 0) are the same as through raw rows.
# usage: calibration_scaling.sh BIN_DIR COMPARE_RESULTS MPIEXEC WORK_DIR
set -euo pipefail
bin=$1 compare=$2 mpiexec=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$bin/dsa-gen" --preset tiny --seed 8 --out w.h5 -q
"$bin/dsa-bench" calibrate -w w.h5 -o cal.json --backend cpu --budget 0.3 | tee calibrate.txt
python3 - <<'PY' || fail "calibration file"
import json
d = json.load(open("cal.json"))
for s in ("indexer", "attention", "pipeline"):
    c = d["stages"][s]
    assert len(c["rows"]) == len(c["work"]) == len(c["seconds"]) >= 1, s
    assert all(t > 0 for t in c["seconds"]), s
print("cal.json: 3 stages")
PY

"$bin/dsa-run" -w w.h5 -o one.h5 -s pipeline --backend cpu -q --io-threads 3 | tee one.txt
grep -q "file I/O: 3 thread(s) per rank, every row read and written directly" one.txt || fail "raw rows not in use"
"$bin/dsa-run" -w w.h5 -o hdf5.h5 -s pipeline --backend cpu -q --io-threads 0 | tee hdf5.txt
grep -q "file I/O: 0 thread(s) per rank; through HDF5" hdf5.txt || fail "--io-threads 0 still reads rows directly"
"$compare" one.h5 hdf5.h5
"$mpiexec" -np 3 "$bin/dsa-run" -w w.h5 -o cal3.h5 -s pipeline --backend cpu --threads 1 -q \
  --calibration cal.json --report cal3.json | tee run.txt
grep -q "rank choice: auto, compute costs cal.json" run.txt || fail "the header does not name the calibration file"
"$compare" one.h5 cal3.h5
python3 - <<'PY' || fail "report"
import json
d = json.load(open("cal3.json"))
assert "cal.json" in d["cost_model"], d["cost_model"]
for b in d["batches"]:
    assert b["predicted_seconds"] > 0 and b["compute_seconds"] > 0, b
print("report: predicted and measured seconds per batch")
PY

echo '{"stages": {}}' > empty.json
set +e
msg=$("$bin/dsa-run" -w w.h5 -o bad.h5 -s indexer --backend cpu --ranks auto --calibration empty.json 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 0 ]; then
  # One rank: nothing to choose, the file is not read. With two it must be refused.
  msg=$("$mpiexec" -np 2 "$bin/dsa-run" -w w.h5 -o bad2.h5 -s indexer --backend cpu --calibration empty.json 2>&1 >/dev/null)
  rc=$?
fi
set -e
[ "$rc" -eq 1 ] || fail "a calibration file without the stage: exit $rc"
echo "$msg" | grep -q "empty.json: no calibration for stage indexer" || fail "message: $msg"

"$mpiexec" -np 3 "$bin/dsa-bench" scaling -w w.h5 -s pipeline --backend cpu --sizes 1,2,4,8,1000 --reps 1 \
  --calibration cal.json --csv s.csv --json s.json | tee scaling.txt
python3 - <<'PY' || fail "scaling table"
import csv, json
rows = list(csv.DictReader(open("s.csv")))
# 1000 rows is above the workload's and skipped; each size has fixed counts up to min(size, 3) and auto.
want = {(b, k) for b in (1, 2, 4, 8) for k in range(1, min(b, 3) + 1)}
got = {(int(r["rows"]), int(r["ranks"])) for r in rows if r["policy"] == "fixed"}
assert got == want, (got, want)
assert sorted(int(r["rows"]) for r in rows if r["policy"] == "auto") == [1, 2, 4, 8]
assert all(r["identical"] == "yes" for r in rows)
d = json.load(open("s.json"))
assert d["identical"] and len(d["cases"]) == len(rows) and d["ranks"] == 3
print(f"scaling: {len(rows)} cases, identical")
PY
echo "calibration_scaling: ok"
