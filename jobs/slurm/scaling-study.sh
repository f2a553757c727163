#!/usr/bin/env bash
# A scaling study: submits the same workload and stage through dsa-run.sbatch at several node
# counts, ranks per node and --ranks values, one job per combination, and collects one JSON
# report per run in one folder; with --wait it waits for them and writes the table and plot
# (scripts/dsa-report).
#
#   jobs/slurm/scaling-study.sh [options] WORKLOAD.h5 STAGE [-- dsa-run options]
#
#   --nodes LIST           node counts, e.g. "1 2 4 8" (default "1")
#   --tasks-per-node LIST  ranks per node, e.g. "1 2 4 8" (default "4"); each run asks for as
#                          many GPUs per node (one rank per GPU)
#   --ranks LIST           dsa-run --ranks values: all (every launched rank works on every
#                          batch; the default, what a scaling study measures), auto (the cost
#                          model chooses) or numbers (skipped where above the ranks launched)
#   --stages LIST          several stages in one study, instead of STAGE (e.g. "indexer pipeline")
#   --cpu                  CPU backend: asks for no GPUs and passes --backend cpu
#   --sbatch "OPTIONS"     more sbatch options for every run (--partition, --account, --time,
#                          --cpus-per-task, ...)
#   --out DIR              the study's folder (default scaling-YYYYmmdd-HHMMSS): reports/ (one
#                          JSON per run), results/ (results files: delete them afterwards if
#                          large), logs/ (one Slurm log per run), jobs.txt (run -> job id)
#   --parallel             let the runs overlap; by default they run one at a time (sbatch
#                          --dependency=singleton under one job name), so that no run shares
#                          nodes, or file-system bandwidth, with another and skews the timings
#   --wait                 wait for every run, then write DIR/scaling.{csv,md,png}
#   --poll SECONDS         how often --wait looks at the queue (default 30)
#   --no-plot              --wait writes the CSV and Markdown tables only (no matplotlib)
#
# A run whose report is already in DIR/reports is not submitted again: rerunning the same
# command completes an interrupted study.
#
# Example (4 GPUs per node, 1 to 8 nodes, plus one node at 1 and 2 GPUs):
#   jobs/slurm/scaling-study.sh --nodes "1 2 4 8" --sbatch "--partition=gpu --time=1:00:00" \
#     --out study-decode decode.h5 pipeline
#   jobs/slurm/scaling-study.sh --tasks-per-node "1 2" --out study-decode decode.h5 pipeline
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

nodes_list="1" tpn_list="4" ranks_list="all" stages="" cpu=0 sbatch_extra="" out="" parallel=0
wait_all=0 poll=30 report_flags=()
die() { echo "scaling-study.sh: $*" >&2; exit 2; }
while (($#)); do
  case $1 in
    --nodes) nodes_list=$2; shift 2 ;;
    --tasks-per-node) tpn_list=$2; shift 2 ;;
    --ranks) ranks_list=$2; shift 2 ;;
    --stages) stages=$2; shift 2 ;;
    --cpu) cpu=1; shift ;;
    --sbatch) sbatch_extra=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --parallel) parallel=1; shift ;;
    --wait) wait_all=1; shift ;;
    --poll) poll=$2; shift 2 ;;
    --no-plot) report_flags=(--no-plot); shift ;;
    -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
    --) break ;;
    -*) die "unknown option $1 (--help lists them)" ;;
    *) break ;;
  esac
done
(($# >= 1)) && [ "$1" != -- ] || die "usage: scaling-study.sh [options] WORKLOAD.h5 STAGE [-- dsa-run options]"
workload=$1; shift
if [ -z "$stages" ]; then
  (($# >= 1)) && [ "$1" != -- ] || die "no STAGE (indexer, attention or pipeline) and no --stages"
  stages=$1; shift
fi
[ "${1:-}" = -- ] && shift
extra=("$@")
((cpu)) && extra=(--backend cpu "${extra[@]}")
[ -f "$workload" ] || die "no workload $workload"
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"

out=${out:-scaling-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/reports" "$out/results" "$out/logs" || exit 1
out=$(cd "$out" && pwd)
workload=$(cd "$(dirname "$workload")" && pwd)/$(basename "$workload")
name=dsa-study-$(basename "$out")
[ -n "$sbatch_extra" ] && read -r -a sbatch_opts <<<"$sbatch_extra" || sbatch_opts=()

jobs=()
for stage in $stages; do
  for n in $nodes_list; do
    for tpn in $tpn_list; do
      total=$((n * tpn))
      for r in $ranks_list; do
        case $r in
          all) ranks_arg=$total ;;
          auto) ranks_arg=auto ;;
          *) ranks_arg=$r; ((r <= total)) || continue ;;
        esac
        run=$stage-n${n}x$tpn-r$r
        if [ -f "$out/reports/$run.json" ]; then
          echo "$run: report already there, not submitted"
          continue
        fi
        gpus=$tpn
        ((cpu)) && gpus=0
        args=(--job-name="$name" --nodes="$n" --ntasks-per-node="$tpn" --gpus-per-node="$gpus"
              --output="$out/logs/$run-%j.out")
        ((parallel)) || args+=(--dependency=singleton)
        id=$(DSA_REPORT=$out/reports/$run.json sbatch --parsable "${args[@]}" "${sbatch_opts[@]}" \
               "$here/dsa-run.sbatch" "$workload" "$out/results/$run.h5" "$stage" --ranks "$ranks_arg" \
               "${extra[@]}") || die "sbatch refused $run"
        id=${id%%;*}
        echo "$run $id" | tee -a "$out/jobs.txt"
        jobs+=("$id")
      done
    done
  done
done
echo "scaling-study.sh: ${#jobs[@]} run(s) submitted; reports in $out/reports"
((wait_all)) || exit 0

if ((${#jobs[@]})); then
  ids=$(IFS=,; echo "${jobs[*]}")
  while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do sleep "$poll"; done
fi
missing=0
while read -r run id; do
  [ -f "$out/reports/$run.json" ] || { echo "scaling-study.sh: $run (job $id) left no report: see $out/logs/$run-$id.out"; missing=$((missing + 1)); }
done <"$out/jobs.txt"
"$here/../../scripts/dsa-report" "${report_flags[@]}" --out "$out/scaling" "$out/reports" || exit 1
((missing == 0))
