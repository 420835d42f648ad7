#!/usr/bin/env bash
# The fuzz targets (tests/fuzz/fuzz_*.c) without clang: every input that once found a bug
# (tests/fuzz/regress/<target>/) and fresh seeds made from real files (tests/fuzz/seeds.sh)
# go once through each target's replay program, built by the project's compiler, under
# ASan+UBSan (build/asan/replay/) when that tree is built, else build/replay/. A crash, a
# sanitizer report or a failed property fails the target. `make fuzz` is the long search.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tree=build/replay
ls build/asan/replay/fuzz_* >/dev/null 2>&1 && tree=build/asan/replay
scratch w tfuzz
tests/fuzz/seeds.sh "$w/seeds" >"$w/seeds.log" 2>&1 || { bad "fuzz_replay.seeds ($(tail -1 "$w/seeds.log"))"; finish; }
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  if [ ! -x "$tree/$t" ]; then bad "fuzz_replay.$t ($tree/$t not built)"; continue; fi
  inputs=("$w/seeds/$t")
  nreg=0
  if [ -d "tests/fuzz/regress/$t" ]; then inputs+=("tests/fuzz/regress/$t"); nreg=$(find "tests/fuzz/regress/$t" -type f | wc -l); fi
  timeout 600 "$tree/$t" "${inputs[@]}" >"$w/$t.out" 2>"$w/$t.err"
  rc=$?
  n=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$w/$t.out")
  record replay "$t" tree="$tree" inputs="${n:-0}" regressions="$nreg" exit="$rc"
  if [ "$rc" = 0 ] && [ "${n:-0}" -ge 1 ]; then pass "fuzz_replay.$t ($n inputs, $nreg of them regressions, $tree)"
  else bad "fuzz_replay.$t (exit $rc after ${n:-?} inputs)"; grep -m3 -E 'ERROR|runtime error|property|SUMMARY' "$w/$t.err" | sed 's/^/    | /'; fi
done
finish
