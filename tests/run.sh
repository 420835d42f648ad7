#!/usr/bin/env bash
# The test runner. Runs every unit-test binary (fast build and ASan+UBSan build) and every
# tests/t_*.sh script. A test prints "PASS: name" / "FAIL: name" lines; a command that exits
# non-zero without a FAIL line, or that checks nothing, counts as one failure.
# Usage: tests/run.sh [pattern]   (pattern filters test file names)
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# fast_unwind_on_malloc=0: Open MPI's plugins are dlopen'ed, and only the slow unwinder names
# them, so their exit-time leaks match tests/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0}
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pat=${1:-}
pass=0; fail=0; failed_names=()
logdir=${TEST_LOGS:-build/test-logs}; mkdir -p "$logdir"   # TEST_LOGS: separate concurrent runs
run_one() {   # $1 label, rest: command
  local label=$1; shift
  [ -n "$pat" ] && [[ "$label" != *"$pat"* ]] && return
  local log="$logdir/$(echo "$label" | tr '/ ' '__').log"
  local t0=$(date +%s)
  "$@" >"$log" 2>&1; local rc=$?
  local p f; p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log")
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL: $label exited $rc" >>"$log"; fi
  if [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL: $label checked nothing" >>"$log"; fi
  pass=$((pass + p)); fail=$((fail + f))
  printf '%-44s %4d passed %3d failed  %3ss\n' "$label" "$p" "$f" "$(( $(date +%s) - t0 ))"
  if [ "$f" != 0 ]; then failed_names+=("$label"); grep -E '^FAIL: ' "$log" | head -20 | sed 's/^/    /'; tail -5 "$log" | sed 's/^/    | /'; fi
}
# UNIT_TREES: other build trees whose unit tests to run instead of everything (e.g. the
# GEMM=openblas tree .ci/run builds); their label is the tree's name below build/.
if [ -n "${UNIT_TREES:-}" ]; then
  for tree in $UNIT_TREES; do
    for t in "$tree"/tests/*/test_*; do [ -x "$t" ] && run_one "${tree#build/}/${t#$tree/tests/}" "$t"; done
  done
else
  for t in build/tests/*/test_*; do [ -x "$t" ] && run_one "unit/${t#build/tests/}" "$t"; done
  for t in build/asan/tests/*/test_*; do [ -x "$t" ] && run_one "asan/${t#build/asan/tests/}" "$t"; done
  for t in tests/t_*.sh; do [ -f "$t" ] && run_one "${t#tests/}" bash "$t"; done
fi
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]} (logs in $logdir)"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
