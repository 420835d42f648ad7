#!/usr/bin/env bash
# make fuzz: every target of tests/fuzz/ for FUZZ_SECONDS (default 60) under libFuzzer with
# ASan+UBSan (build/fuzz/fuzzers/, built by make fuzz-build), one after the other (two cores,
# shared). Each starts from its kept corpus (build/fuzz/corpus/<target>/), fresh seeds from
# real files (tests/fuzz/seeds.sh) and the regression inputs (tests/fuzz/regress/<target>/).
# A crash, leak, timeout (FUZZ_TIMEOUT s per input, default 10) or memory blow-up leaves its
# input in build/fuzz/artifacts/<target>/; fix it, then copy the input into
# tests/fuzz/regress/<target>/ so make test replays it for good.
# tests/fuzz/<target>.dict, where there is one, gives libFuzzer the format's tokens.
# Per target, one record (executions, seconds, corpus, findings) goes to
# build/reliability/fuzz.jsonl for docs/reliability.md (make reliability-doc).
# Usage: tests/fuzz/run.sh [TARGET...]   (names without fuzz_; default: all)
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
timeout_s=${FUZZ_TIMEOUT:-10}
fz=build/fuzz
rec=build/reliability/fuzz.jsonl
mkdir -p build/reliability "$fz/corpus" "$fz/artifacts" "$fz/logs"
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets+=("${t%.c}"); done
fi
for t in "${targets[@]}"; do
  [ -x "$fz/fuzzers/fuzz_$t" ] || { echo "fuzz: $fz/fuzzers/fuzz_$t is not built (make fuzz-build)" >&2; exit 1; }
done
rm -rf "$fz/seeds"
tests/fuzz/seeds.sh "$fz/seeds" || { echo "fuzz: making the seed corpora failed" >&2; exit 1; }
# the last run's records are replaced target by target
if [ -f "$rec" ]; then
  grep -v -E "\"target\": \"($(IFS='|'; echo "${targets[*]}"))\"" "$rec" >"$rec.new"
  mv -f "$rec.new" "$rec"
fi
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
found=0
printf '%-12s %10s %8s %8s  %s\n' target executions seconds corpus result
for t in "${targets[@]}"; do
  corpus=$fz/corpus/fuzz_$t art=$fz/artifacts/fuzz_$t/ log=$fz/logs/fuzz_$t.log
  mkdir -p "$corpus" "$art" "tests/fuzz/regress/fuzz_$t"
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  t0=$(date +%s)
  "$fz/fuzzers/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout="$timeout_s" -rss_limit_mb=2560 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$art" "$corpus" "$fz/seeds/fuzz_$t" "tests/fuzz/regress/fuzz_$t" >"$log" 2>&1
  rc=$?
  el=$(( $(date +%s) - t0 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  ncorp=$(find "$corpus" -type f | wc -l)
  what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error: [^:]*|fuzz property failed[^:]*|out-of-memory|timeout' "$log" | head -1)
  unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ "$rc" = 0 ]; then res=clean; else res="FOUND ${what:-exit $rc}${unit:+ ($unit)}"; found=1; fi
  printf '%-12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "$el" "$ncorp" "$res"
  printf '{"target": "%s", "seconds": %s, "budget": %s, "executions": %s, "corpus": %s, "result": "%s", "date": "%s"}\n' \
    "$t" "$el" "$secs" "${execs:-0}" "$ncorp" "$(echo "$res" | sed 's/["\\]/ /g')" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$rec"
done
[ $found = 0 ] || echo "fuzz: findings above; logs in $fz/logs, inputs in $fz/artifacts" >&2
exit $found
