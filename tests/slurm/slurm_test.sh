#!/usr/bin/env bash
# The sbatch scripts in jobs/slurm/, on a real Slurm: a one-node cluster on localhost
# (scripts/slurm-local-cluster.sh, installing Debian's Slurm and munge if missing), CPU backend,
# tiny workloads. Checks:
#   1. dsa-run.sbatch launched by srun --mpi=pmix (2 ranks) and by mpirun (4 ranks): the job
#      completes, its results are identical to a direct 1-rank run and pass dsa-verify, its
#      report says what ran;
#   2. the time-limit path: USR1 to the batch shell (what --signal=B:USR1@120 sends) mid-run ->
#      dsa-run exits 3 -> the script requeues the job -> it resumes and completes, results
#      identical; scancel (SIGTERM) mid-run is not requeued, and resubmitting finishes the file;
#   3. scaling-study.sh at 1, 2 and 4 ranks: one report per run, and scripts/dsa-report's table.
# Exit status: 0 passed, 1 failed, 77 skipped (Slurm cannot be installed or started here: the
# message says why).
#
# usage: slurm_test.sh SOURCE_DIR BIN_DIR COMPARE_RESULTS WORKDIR
set -u
src=$1 bin=$2 compare=$3 work=$4
skip() { echo "SKIPPED: $*"; exit 77; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
t_start=$(date +%s)
elapsed() { echo "$(($(date +%s) - t_start)) s"; }

# A run killed by ctest's timeout had no chance to stop its daemons: stop them now.
[ -d "$work/cluster" ] && "$src/scripts/slurm-local-cluster.sh" stop "$work/cluster"
rm -rf "$work" && mkdir -p "$work" || exit 1
work=$(cd "$work" && pwd)
cluster=$work/cluster
cleanup() {
  "$src/scripts/slurm-local-cluster.sh" stop "$cluster"
}
trap cleanup EXIT

# --- The cluster. -------------------------------------------------------------------------------
"$src/scripts/slurm-local-cluster.sh" start "$cluster" --cpus 4 --gpus 4 --install >"$work/cluster.log" 2>&1
rc=$?
cat "$work/cluster.log"
case $rc in
  0) ;;
  4) skip "$(grep -m1 'cannot run Slurm' "$work/cluster.log" | sed 's/^slurm-local-cluster.sh: //')" ;;
  *) echo "FAIL: the local cluster did not start"; tail -n 20 "$cluster"/log/*.log; exit 1 ;;
esac
export SLURM_CONF=$cluster/slurm.conf
export DSA_RUN=$bin/dsa-run
sbatch_script=$src/jobs/slurm/dsa-run.sbatch
cd "$work" || exit 1
echo "--- cluster up after $(elapsed); srun --mpi=list: $(srun --mpi=list 2>&1 | grep -v 'MPI plugin' | xargs)"

# Waits (at most SECONDS) until job ID has left the queue; then prints its final state.
wait_job() {
  local id=$1 limit=$2 t=0
  while [ -n "$(squeue -h -j "$id" -o %i 2>/dev/null)" ]; do
    sleep 1; t=$((t + 1))
    ((t < limit)) || { echo "TIMEOUT"; scancel "$id"; return; }
  done
  scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2
}
# Waits (at most 60 s) until FILE holds a line starting with TEXT.
wait_line() {
  local file=$1 text=$2
  for _ in $(seq 600); do grep -q "^$text" "$file" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
show_log() { echo "    --- $1"; sed 's/^/    /' "$1"; }
# check_run NAME STATE REFERENCE: the job's state, the results against a direct run, dsa-verify.
check_run() {
  local name=$1 state=$2 ref=$3
  [ "$state" = COMPLETED ] || { fail "$name: job ended $state"; show_log "$name.out"; return 1; }
  "$compare" "$ref" "$name.h5" || { fail "$name: results differ from a direct 1-rank run"; return 1; }
  "$bin/dsa-verify" --workload "$(workload_of "$ref")" --results "$name.h5" >"$name.verify" 2>&1 ||
    { fail "$name: dsa-verify rejects the results"; cat "$name.verify"; return 1; }
  echo "ok: $name ($(elapsed))"
}
workload_of() { case $1 in long*) echo long.h5 ;; *) echo tiny.h5 ;; esac; }
# json FILE EXPR: a value from a report (Python reads it; the project ships no jq).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- Workloads and direct references. ---------------------------------------------------------
"$bin/dsa-gen" --preset tiny --seed 5 --force -q --out tiny.h5 || exit 1
# Long enough (40 batches, a few seconds) for a signal to land mid-run.
"$bin/dsa-gen" --preset demo --batches 40 --seed 2 --force -q --out long.h5 || exit 1
"$bin/dsa-run" --workload tiny.h5 --out tiny-ref.h5 --stage pipeline --backend cpu --threads 1 -q --force || exit 1
"$bin/dsa-run" --workload long.h5 --out long-ref.h5 --stage pipeline --backend cpu --threads 1 -q --force || exit 1
echo "--- workloads and references after $(elapsed)"

# --- 1. Both launchers. ---------------------------------------------------------------------------
common=(--cpus-per-task=1)
if srun --mpi=list 2>&1 | grep -qw pmix; then
  id=$(sbatch --parsable "${common[@]}" --ntasks-per-node=2 --gpus-per-node=2 -o srun2.out \
         "$sbatch_script" tiny.h5 srun2.h5 pipeline --backend cpu --threads 1)
  state=$(wait_job "$id" 120)
  if check_run srun2 "$state" tiny-ref.h5; then
    grep -q "launcher srun" srun2.out || fail "srun2: the default launcher was not srun although Slurm has pmix"
    [ "$(json srun2.json 'd["ranks"], d["stage"], d["backend"], d["summary"]["rows"], d["summary"]["batches_done"]')" = \
      "2 pipeline cpu 10 5" ] || fail "srun2: report says $(json srun2.json 'd["ranks"], d["stage"], d["backend"], d["summary"]')"
    grep -q "GPUs per node 2" srun2.out || fail "srun2: the job was not given its 2 GPUs"
  fi
else
  echo "note: this Slurm has no PMIx plugin (srun --mpi=list); the srun launcher is not tested"
fi

id=$(DSA_LAUNCHER=mpirun sbatch --parsable "${common[@]}" --ntasks-per-node=4 --gpus-per-node=4 -o mpirun4.out \
       "$sbatch_script" tiny.h5 mpirun4.h5 pipeline --backend cpu --threads 1)
state=$(wait_job "$id" 120)
if check_run mpirun4 "$state" tiny-ref.h5; then
  grep -q "launcher mpirun" mpirun4.out || fail "mpirun4: launcher not mpirun"
  [ "$(json mpirun4.json 'd["ranks"], len(d["batches"])')" = "4 5" ] || fail "mpirun4: report $(cat mpirun4.json)"
fi

# --- 2. Time-limit warning -> exit 3 -> requeue -> resume; scancel -> no requeue. -----------
id=$(sbatch --parsable "${common[@]}" --ntasks-per-node=2 --gpus-per-node=2 -o requeue.out \
       "$sbatch_script" long.h5 requeue.h5 pipeline --backend cpu --threads 1)
if wait_line requeue.out "batch 2/"; then
  # What --signal=B:USR1@120 does 120 s before the time limit.
  scancel --signal=USR1 --batch "$id"
  state=$(wait_job "$id" 150)
  if check_run requeue "$state" long-ref.h5; then
    restarts=$(scontrol show job "$id" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
    [ "$restarts" = 1 ] || fail "requeue: Slurm counts $restarts restarts, expected 1"
    grep -q "got SIGUSR1" requeue.out || fail "requeue: the batch shell did not report the signal"
    grep -q "^stopped on SIGUSR1 after batch" requeue.out || fail "requeue: dsa-run did not stop on USR1"
    grep -q "requeueing job $id" requeue.out || fail "requeue: the script did not requeue"
    grep -q "attempt 2:" requeue.out && grep -q "^# resuming: [1-9]" requeue.out ||
      fail "requeue: the second attempt did not resume"
    # The attempts' reports add up to the workload.
    rows=$(($(json requeue.json 'd["summary"]["rows"]') + $(json requeue.restart1.json 'd["summary"]["rows"]')))
    [ "$rows" = "$(json requeue.restart1.json 'd["workload_shape"]["rows"]')" ] ||
      fail "requeue: the two attempts' reports hold $rows rows"
  else
    show_log requeue.out
  fi
else
  fail "requeue: no progress line within 60 s"; show_log requeue.out
fi

id=$(sbatch --parsable "${common[@]}" --ntasks-per-node=2 --gpus-per-node=2 -o cancel.out \
       "$sbatch_script" long.h5 cancel.h5 pipeline --backend cpu --threads 1)
if wait_line cancel.out "batch 2/"; then
  scancel "$id"
  state=$(wait_job "$id" 60)
  [ "$state" = CANCELLED ] || fail "cancel: job ended $state, expected CANCELLED"
  restarts=$(scontrol show job "$id" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
  [ "$restarts" = 0 ] || fail "cancel: a cancelled job was requeued"
  # The same command again finishes the file.
  id=$(sbatch --parsable "${common[@]}" --ntasks-per-node=2 --gpus-per-node=2 -o cancel-again.out \
         "$sbatch_script" long.h5 cancel.h5 pipeline --backend cpu --threads 1)
  state=$(wait_job "$id" 120)
  if [ "$state" = COMPLETED ] && "$compare" long-ref.h5 cancel.h5; then
    echo "ok: cancel and resubmit ($(elapsed))"
  else
    fail "cancel: resubmitting did not complete identical results ($state)"; show_log cancel-again.out
  fi
else
  fail "cancel: no progress line within 60 s"; show_log cancel.out
fi

# --- 3. A scaling study, and its table. ---------------------------------------------------------
plot=--no-plot
{ python3 -c 'import matplotlib' || /usr/bin/python3 -c 'import matplotlib'; } 2>/dev/null && plot=""
if "$src/jobs/slurm/scaling-study.sh" $plot --cpu --tasks-per-node "1 2 4" --sbatch "--cpus-per-task=1" \
     --out study --wait --poll 1 tiny.h5 indexer -- --threads 1 >study.log 2>&1; then
  n=$(ls study/reports/*.json 2>/dev/null | wc -l)
  [ "$n" = 3 ] || fail "study: $n reports, expected 3"
  [ "$(cut -d, -f5 study/scaling.csv | tail -n +2 | xargs)" = "1 2 4" ] ||
    fail "study: scaling.csv does not list ranks 1 2 4: $(cat study/scaling.csv)"
  grep -q "^| indexer | cpu | tiny.h5 | all | 4 |" study/scaling.md || fail "study: scaling.md lacks the 4-rank row"
  if [ -z "$plot" ]; then
    [ -s study/scaling.png ] || fail "study: no plot"
  else
    echo "note: matplotlib not found: the study's plot is not checked"
  fi
  echo "ok: scaling study ($(elapsed))"
else
  fail "study: scaling-study.sh failed"; cat study.log; ls study/logs 2>/dev/null
fi

echo "--- $(elapsed) in all; $failures failure(s)"
if ((failures)); then
  echo "--- slurmctld.log (tail)"; tail -n 15 "$cluster/log/slurmctld.log"
  echo "--- slurmd.log (tail)"; tail -n 15 "$cluster/log/slurmd.log"
fi
((failures == 0))
