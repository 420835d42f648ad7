#!/usr/bin/env bash
# Parity of the C implementation against the independent PyTorch reference in tests/ref/.
# 1. the reference's own self-checks (finite differences, masks, target, schedule);
# 2. the comparison's self-test: float32 dumps of the reference pass, planted errors fail;
# 3. build/tools/parity_dump (built by `make`, never here) dumps several configs, and
#    compare_parity.py recomputes each in float64 and compares (SPEC §1.2, §2, §3, §4) — in
#    fp32 on every GEMM backend the build has (OpenBLAS; oneDNN unless built GEMM=openblas).
# PARITY_DUMP=path overrides the driver (e.g. the ASan build, or make_fake_dump.py), and
# PARITY_GEMM the backends (default: openblas, and onednn when build/gemm.cfg says it is in).
. "$(dirname "$0")/lib.sh"
driver=${PARITY_DUMP:-build/tools/parity_dump}
scratch tmp parity
rc=0

"$PY" tests/ref/semaim_ref.py || rc=1
"$PY" tests/ref/make_fake_dump.py --selftest || rc=1

if [ ! -x "$driver" ]; then
  echo "FAIL: parity.driver ($driver missing or not executable; make tools builds build/tools/parity_dump)"
  exit 1
fi

# label | driver flags beyond the common ones (image 32, width 64, heads 2, batch 3, 10 steps)
configs=(
  "raster_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order raster --seed 1"
  "stochastic_p4_d2_q2|--patch 4 --depth 2 --dec-depth 2 --order stochastic --seed 2"
  "semantic_p8_d4_q2|--patch 8 --depth 4 --dec-depth 2 --order semantic --seed 3"
  "semantic_p4_d4_q2|--patch 4 --depth 4 --dec-depth 2 --order semantic --seed 4"
  "similarity_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order similarity --seed 5"
  "center_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order center --seed 6"
)
common="--image 32 --width 64 --heads 2 --batch 3 --steps 10 --lr 1e-3 --warmup 3 --clip 0.5"
backends=${PARITY_GEMM:-openblas$(grep -q '^onednn=1' build/gemm.cfg 2>/dev/null && echo ' onednn')}
args=()
for gemm in $backends; do
for c in "${configs[@]}"; do
  label=${c%%|*}_$gemm; flags="${c#*|} --gemm $gemm"
  out=$tmp/$label
  mkdir -p "$out"
  # shellcheck disable=SC2086  # flags are word lists on purpose
  timeout 300 "$driver" $common $flags --out "$out" >"$tmp/$label.log" 2>&1
  st=$?
  if [ $st != 0 ]; then
    echo "FAIL: parity[$label].driver (exit $st: $driver $common $flags --out DIR)"
    tail -5 "$tmp/$label.log" | sed 's/^/    | /'
    rc=1
    continue
  fi
  # What config.json must then say: catches a flag the driver ignores.
  set -- $flags
  exp="image=32,width=64,heads=2,batch=3,steps=10,lr=0.001,warmup_iters=3,clip=0.5"
  while [ $# -ge 2 ]; do
    case $1 in
      --patch) exp+=",patch=$2" ;; --depth) exp+=",depth=$2" ;; --dec-depth) exp+=",dec_depth=$2" ;;
      --order) exp+=",order=$2" ;; --seed) exp+=",seed=$2" ;; --gemm) exp+=",gemm=$2" ;;
    esac
    shift 2
  done
  args+=(--expect "$exp" "$out")
done
done
if [ ${#args[@]} -gt 0 ]; then
  "$PY" tests/ref/compare_parity.py "${args[@]}" || rc=1
fi
exit $rc
