#!/usr/bin/env bash
# Interrupt dsa-run in every way a cluster can, resume, and compare with an uninterrupted run.
# usage: kill_resume.sh BUILD_SRC_DIR COMPARE_RESULTS MPIEXEC WORKDIR STAGE
set -u
bin=$1 compare=$2 mpiexec=$3 work=$4 stage=$5
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work" && cd "$work" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$bin/dsa-gen" --preset tiny --seed 11 --force --out w.h5 -q || exit 1
run() {  # run NP OUT [args...]: prints the output, returns dsa-run's status
  local np=$1 out=$2; shift 2
  timeout 120 "$mpiexec" -np "$np" "$bin/dsa-run" --workload w.h5 --out "$out" --stage "$stage" \
    --backend cpu --threads 1 "$@" >"$out.log" 2>&1
  local rc=$?
  cat "$out.log"
  return $rc
}
run 1 ref.h5 --force >/dev/null || { echo "reference run failed"; exit 1; }

# name NP FAULT EXPECTED_RC EXTRA_ARGS...: interrupt, check the status, resume, compare.
scenario() {
  local name=$1 np=$2 fault=$3 want=$4; shift 4
  rm -f "$name.h5"
  echo "--- $name: DSA_TEST_FAULT=$fault on $np ranks"
  DSA_TEST_FAULT=$fault run "$np" "$name.h5" "$@" >/dev/null
  local rc=$?
  if [ "$want" = nonzero ]; then [ $rc -ne 0 ] || fail "$name: interrupted run exited 0"
  else [ $rc -eq "$want" ] || fail "$name: interrupted run exited $rc, expected $want"; fi
  [ -f "$name.h5" ] || { fail "$name: no results file left"; return; }
  if run "$np" "$name.h5" --resume | grep -q "^# resuming: [1-9]"; then :; else
    fail "$name: the resumed run did not continue from completed batches"; cat "$name.h5.log"; fi
  "$compare" ref.h5 "$name.h5" || fail "$name: resumed results differ from an uninterrupted run"
}

# A rank that runs out of host memory while it loads the KV caches: every rank stops at once
# with the one-line reason naming it (no hang, no crash).
rm -f nomem.h5
DSA_TEST_FAULT=nomem:1:-1:kv run 3 nomem.h5 >/dev/null
rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then fail "nomem: exited $rc, expected a failure status"; fi
grep -q "^\[rank 1\] out of host memory" nomem.h5.log || { fail "nomem: no line naming rank 1"; cat nomem.h5.log; }

scenario kill_rank1_compute 3 kill:1:2:compute nonzero
scenario kill_rank0_midwrite 2 kill:0:3:write nonzero
scenario sigterm_rank2 3 term:2:1:compute 3
scenario hang_rank1_timeout 3 hang:1:2:compute nonzero --timeout 3

# Without --resume or --force an existing results file is never touched.
before=$(md5sum ref.h5)
run 1 ref.h5 >/dev/null && fail "an existing results file was overwritten without --force"
grep -q "exists" ref.h5.log || fail "refusal does not say the file exists: $(cat ref.h5.log)"
[ "$(md5sum ref.h5)" = "$before" ] || fail "the refused run changed the existing file"

# --resume on a finished file does nothing and succeeds.
run 2 ref.h5 --resume >/dev/null || fail "--resume of a complete file failed"
"$compare" ref.h5 kill_rank1_compute.h5 >/dev/null || fail "complete file changed by --resume"

echo "$((5 - failures)) passed, $failures failed"
[ $failures -eq 0 ]
