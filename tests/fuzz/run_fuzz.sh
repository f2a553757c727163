#!/usr/bin/env bash
# The fuzz test (ctest fuzz_workload): builds tests/fuzz/standalone with clang (libFuzzer,
# AddressSanitizer, UBSan), writes the seed corpus, runs every seed once, then fuzzes from
# them for a bounded number of inputs and time, with fixed libFuzzer seeds.
#   run_fuzz.sh SOURCE_DIR WORK_DIR SEED_CORPUS_EXE [CMAKE]
# Exits 77 (ctest: skipped, and says why) where clang or libFuzzer is missing.
# Environment: DSA_FUZZ_RUNS (inputs, default 4000), DSA_FUZZ_SECONDS (cap, default 120),
# DSA_FUZZ_CXX / DSA_FUZZ_CC (default clang++ / clang).
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
seed_exe=$3
cmake=${4:-cmake}
runs=${DSA_FUZZ_RUNS:-4000}
seconds=${DSA_FUZZ_SECONDS:-120}
cxx=${DSA_FUZZ_CXX:-clang++}
cc=${DSA_FUZZ_CC:-clang}
mkdir -p "$work"
work=$(cd "$work" && pwd)

skip() {
  echo "SKIPPED: $* (scripts/install-deps.sh installs clang and libclang-rt-14-dev)"
  exit 77
}
command -v "$cxx" >/dev/null || skip "no $cxx"
command -v "$cc" >/dev/null || skip "no $cc"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$work/probe.cpp"
"$cxx" -fsanitize=fuzzer,address,undefined "$work/probe.cpp" -o "$work/probe" \
  >"$work/probe.log" 2>&1 || skip "$cxx cannot link -fsanitize=fuzzer,address,undefined: $(head -c 300 "$work/probe.log")"

echo "== building the fuzz target with $cxx"
"$cmake" -S "$src/tests/fuzz/standalone" -B "$work/build" -DDSA_SOURCE_DIR="$src" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$work/build" -j 2
fuzz="$work/build/workload_fuzz"

rm -rf "$work/seeds" "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts"
"$seed_exe" "$work/seeds"

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:handle_abort=1"
export LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# An input takes milliseconds (its declared sizes are bounded, see workload_fuzz.cpp): one
# that runs 5 s is stuck (so far only ever inside HDF5, in H5Aread of a corrupt global heap).
# libFuzzer exits 77 on some errors (leaks) by default: ctest would take that for "skipped".
common=(-timeout=5 -rss_limit_mb=2048 -error_exitcode=99 -artifact_prefix="$work/artifacts/")

# A crash report is ours unless classify_crash.awk pins it on HDF5 itself.
owner() { awk -v src="$src" -f "$src/tests/fuzz/classify_crash.awk" "$1"; }
report() {  # the log's report, shortened
  grep -a -m1 -E '==ERROR: |ERROR: libFuzzer|deadly signal|runtime error:' "$1" || true
  grep -a -m1 -E '^SUMMARY: ' "$1" || true
}

echo "== every seed once"
if ! "$fuzz" "${common[@]}" "$work"/seeds/*.h5 >"$work/seeds.log" 2>&1; then
  tail -n 60 "$work/seeds.log"
  echo "FAILED: a seed file crashed the workload reader ($(owner "$work/seeds.log")); see above"
  exit 1
fi
echo "$(ls "$work"/seeds/*.h5 | wc -l) seeds: no crash"

# Fuzz with -seed=1 for $runs inputs. HDF5 1.10.8 (Debian 12's) has memory errors and hangs
# on malformed files that no check of ours can prevent, as they happen while HDF5 decodes its
# own metadata; in 32,000 inputs (40 of them reached one): H5Aread of a variable-length string
# attribute (H5HG_read: memcpy with a corrupt length, a loop in H5C_protect, malloc(4 GiB) in
# H5T__conv_vlen), H5Aiterate2 (SEGV in H5A__close, overflow in H5MM_xstrdup), H5Aexists
# (use after free in H5O__msg_iterate_real), H5Fopen (absurd sizes in H5C_protect). Where an
# input reaches one, classify_crash.awk pins it on HDF5, the run stops there, the input is
# kept, and fuzzing goes on with the next seed for the remaining inputs. Every other crash, and
# every message that is not one printable line naming the file, fails the test.
left=$runs
seed=1
hdf5_crashes=0
start=$SECONDS
while ((left > 0 && SECONDS - start < seconds && seed <= 40)); do
  log="$work/fuzz-$seed.log"
  echo "== fuzzing: -seed=$seed -runs=$left"
  status=0
  "$fuzz" "${common[@]}" -seed="$seed" -runs="$left" -max_total_time=$((seconds - (SECONDS - start))) \
    -print_final_stats=1 "$work/corpus" "$work/seeds" >"$log" 2>&1 || status=$?
  done_runs=$(LC_ALL=C sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  grep -a -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
  left=$((left - ${done_runs:-$left}))
  ((status == 0)) && break
  if [[ $(owner "$log") != hdf5 ]]; then
    tail -n 80 "$log"
    echo "FAILED: the fuzz target found a bug (exit $status); the input is in $work/artifacts"
    exit 1
  fi
  hdf5_crashes=$((hdf5_crashes + 1))
  echo "-- a crash inside HDF5 itself, not ours (input kept in $work/artifacts):"
  report "$log" | sed 's/^/   /'
  seed=$((seed + 1))
done
echo "fuzz_workload: passed ($((runs - left)) inputs, $hdf5_crashes crashes inside HDF5, $(ls "$work/corpus" | wc -l) new corpus entries)"
