#!/usr/bin/env bash
# Ring all-reduce and replica checksum (src/dist/allreduce.c) under mpirun: the fast build for
# 1..5 ranks (oversubscribed: the machine has 2 cores) and the ASan+UBSan build for 3 ranks.
# The drivers are built by `make units` / `make asan` (tests/tools/allreduce_check.c); a
# missing one is a FAIL, not a skip.
. "$(dirname "$0")/lib.sh"
fast=build/tools/allreduce_check
san=build/asan/tools/allreduce_check
fails=0
scratch work t_allreduce
log=$work/log

# $1 label prefix ("" or "asan "), $2 np, $3 binary. Echoes the driver's PASS/FAIL lines
# (prefixed), its diagnostics, and a FAIL if mpirun fails without the driver saying why.
run() {
  local prefix=$1 np=$2 bin=$3
  # A deadlock must fail the test, not hang the suite.
  timeout 300 mpirun --oversubscribe -np "$np" "$bin" >"$log" 2>&1
  local rc=$?
  grep -E '^(PASS|FAIL): ' "$log" | sed -E "s/^(PASS|FAIL): /\1: ${prefix}/"
  grep -E '^  rank ' "$log"
  local nf; nf=$(grep -c '^FAIL: ' "$log")
  if [ "$rc" != 0 ] || [ "$nf" != 0 ] || ! grep -q '^PASS: ' "$log"; then
    fails=$((fails + 1))
    if [ "$nf" = 0 ]; then
      echo "FAIL: ${prefix}allreduce np=$np: mpirun exited $rc$([ "$rc" = 124 ] && echo ' (timeout: deadlock?)')"
      grep -vE '^(PASS|FAIL): |^allreduce_create: ' "$log" | tail -30 | sed 's/^/    | /'
    fi
  fi
}

if [ ! -x "$fast" ]; then
  echo "FAIL: allreduce driver $fast missing (run: make build/tools/allreduce_check)"; fails=$((fails + 1))
else
  for np in 1 2 3 4 5; do run "" "$np" "$fast"; done
fi

if [ ! -x "$san" ]; then
  echo "FAIL: asan allreduce driver $san missing (run: make asan)"; fails=$((fails + 1))
else
  # Open MPI's plugins have no frame pointers, so their at-exit leaks would show as
  # "<unknown module>" and escape tests/lsan.supp; the slow unwinder names them.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run "asan " 3 "$san"
fi
[ "$fails" = 0 ]
