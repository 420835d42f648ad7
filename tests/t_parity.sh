#!/usr/bin/env bash
# Parity of the C implementation against the independent PyTorch reference in tests/ref/.
# 1. the reference's own self-checks (finite differences, masks, target, schedule);
# 2. the comparison's self-test: float32 dumps of the reference pass, planted errors fail;
# 3. build/tools/parity_dump (built by `make`, never here) dumps several configs, and
#    compare_parity.py recomputes each in float64 and compares (SPEC §1.2, §2, §3, §4) — in
#    fp32 on every GEMM backend the build has (OpenBLAS; oneDNN unless built GEMM=openblas);
#    the ema configs add the EMA teacher after every step (and with --ema-order each step's
#    order from it).
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

# small random teachers written by PyTorch (tests/ref/teacher_ref.py), 48 wide (not the
# student's 64): a timm ViT, a second one (the lie below), an OpenAI CLIP tower with 40 outputs
for t in "timm|--layout timm --heads 3 --seed 1" "timm_other|--layout timm --heads 3 --seed 5" \
         "clip|--layout clip --heads 2 --out-dim 40 --seed 2"; do
  # shellcheck disable=SC2086
  "$PY" tests/ref/teacher_ref.py write ${t#*|} --image 32 --patch 8 --width 48 --depth 2 --meta-heads \
    --out "$tmp/teacher_${t%%|*}.safetensors" --data "$tmp/teacher_${t%%|*}.data" >/dev/null || rc=1
done

# label | driver flags beyond the common ones (image 32, width 64, heads 2, batch 3, 10 steps)
configs=(
  "raster_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order raster --seed 1"
  "stochastic_p4_d2_q2|--patch 4 --depth 2 --dec-depth 2 --order stochastic --seed 2"
  "semantic_p8_d4_q2|--patch 8 --depth 4 --dec-depth 2 --order semantic --seed 3"
  "semantic_p4_d4_q2|--patch 4 --depth 4 --dec-depth 2 --order semantic --seed 4"
  "similarity_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order similarity --seed 5"
  "center_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order center --seed 6"
  "blurnone_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order raster --seed 7 --blur none"
  "blur5_2_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order semantic --seed 8 --blur 5,2"
  "normpixoff_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 9 --norm-pix off"
  "l1_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order stochastic --seed 10 --loss l1"
  "l1_blur3_off_p4_d2_q2|--patch 4 --depth 2 --dec-depth 2 --order raster --seed 11 --loss l1 --blur 3,0.5 --norm-pix off"
  "gap_semantic_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 12 --order-signal gap"
  "gap_similarity_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order similarity --seed 13 --order-signal gap"
  "self_semantic_p4_d4_q2|--patch 4 --depth 4 --dec-depth 2 --order semantic --seed 14 --order-signal self"
  "self_similarity_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order similarity --seed 15 --order-signal self"
  "ema_raster_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order raster --seed 16 --ema 1"
  "emaorder_semantic_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 17 --ema 2 --ema-order"
  "emaorder_similarity_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order similarity --seed 18 --ema 3 --ema-order --order-signal gap"
  "ematarget_semantic_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 22 --target ema --ema 2"
  "ematarget_emaorder_similarity_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order similarity --seed 23 --target ema --ema 1 --ema-order"
  "inference_semantic_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 16 --target inference"
  "inference_raster_p4_d2_q1|--patch 4 --depth 2 --dec-depth 1 --order raster --seed 17 --target inference"
  "inference_gap_similarity_p8_d4_q2|--patch 8 --depth 4 --dec-depth 2 --order similarity --seed 18 --target inference --order-signal gap"
  "teacher_timm_semantic_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order semantic --seed 19 --target teacher --teacher $tmp/teacher_timm.safetensors"
  "teacher_clip_semantic_p8_d2_q1|--patch 8 --depth 2 --dec-depth 1 --order semantic --seed 20 --target teacher --teacher $tmp/teacher_clip.safetensors"
  "teacher_clip_gap_similarity_p8_d2_q2|--patch 8 --depth 2 --dec-depth 2 --order similarity --seed 21 --target teacher --teacher $tmp/teacher_clip.safetensors --order-signal gap"
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
  while [ $# -ge 1 ]; do
    case $1 in
      --ema-order) exp+=",ema_order=1"; shift; continue ;;
      --ema) exp+=",ema_steps_per_epoch=$2" ;;
      --patch) exp+=",patch=$2" ;; --depth) exp+=",depth=$2" ;; --dec-depth) exp+=",dec_depth=$2" ;;
      --order) exp+=",order=$2" ;; --seed) exp+=",seed=$2" ;; --gemm) exp+=",gemm=$2" ;;
      --blur) if [ "$2" = none ]; then exp+=",blur_k=0"; else exp+=",blur_k=${2%,*},blur_sigma=${2#*,}"; fi ;;
      --norm-pix) exp+=",norm_pix=$([ "$2" = on ] && echo 1 || echo 0)" ;; --loss) exp+=",loss=$2" ;;
      --order-signal) exp+=",signal=$2" ;; --target) exp+=",target=$2" ;; --teacher) exp+=",teacher=$2" ;;
    esac
    shift 2
  done
  args+=(--expect "$exp" "$out")
done
done
if [ ${#args[@]} -gt 0 ]; then
  "$PY" tests/ref/compare_parity.py "${args[@]}" || rc=1
fi

# The comparison applies the dump's objective: told the L1 dump was L2 (or the blur-less one
# blurred), the reference's loss must disagree; told a gap or self dump used another signal,
# its signal values must; told the inference dump was a pixel one, its head does not fit; told
# the timm teacher dump had another teacher (same sizes, other weights), its order signal must
# disagree.
for wrong in "l1_p8_d2_q2_openblas|loss|l2" "blurnone_p8_d2_q2_openblas|blur_k|9" "normpixoff_p8_d2_q2_openblas|norm_pix|1" \
             "gap_semantic_p8_d2_q2_openblas|signal|cls" "self_semantic_p4_d4_q2_openblas|signal|gap" \
             "emaorder_semantic_p8_d2_q2_openblas|ema_steps_per_epoch|1" \
             "inference_semantic_p8_d2_q2_openblas|target|pixel" "ematarget_semantic_p8_d2_q2_openblas|target|inference" \
             "teacher_timm_semantic_p8_d2_q2_openblas|teacher|$tmp/teacher_timm_other.safetensors"; do
  d=${wrong%%|*}; kv=${wrong#*|}; key=${kv%%|*}; val=${kv#*|}
  [ -d "$tmp/$d" ] || continue
  cp -r "$tmp/$d" "$tmp/$d.lie"
  "$PY" - "$tmp/$d.lie/config.json" "$key" "$val" <<'PY'
import json, sys
p, k, v = sys.argv[1:]
c = json.load(open(p))
c[k] = v if k in ("loss", "signal", "target", "teacher") else int(v)
if k == "blur_k":
    c["blur_sigma"] = 1.0
json.dump(c, open(p, "w"))
PY
  want=step0.loss; [ "$key" = signal ] && want=signal.$val; [ "$key" = ema_steps_per_epoch ] && want=ema.decay
  [ "$key" = teacher ] && want=signal.cls
  [ "$key" = target ] && want=load   # a pixel model's head is P·P·3 wide: the dump's D-wide one does not fit
  [ "$key$val" = targetinference ] && want=traj.loss   # the live weights' tokens are not the EMA's
  if "$PY" tests/ref/compare_parity.py "$tmp/$d.lie" 2>&1 | grep -q "^FAIL: parity\[$d.lie\].$want"; then
    echo "PASS: parity.objective_is_applied[$key=$val on $d]"
  else
    echo "FAIL: parity.objective_is_applied[$key=$val on $d] (a dump with another $key still matched)"; rc=1
  fi
done
# An EMA that missed its last update (step 8's copied over step 9's) must fail the EMA check.
d=emaorder_semantic_p8_d2_q2_openblas
if [ -d "$tmp/$d" ]; then
  cp -r "$tmp/$d" "$tmp/$d.stale"
  cp "$tmp/$d.stale/step-8.safetensors" "$tmp/$d.stale/step-9.safetensors"
  if "$PY" tests/ref/compare_parity.py "$tmp/$d.stale" 2>&1 | grep -q "^FAIL: parity\[$d.stale\].ema.steps"; then
    echo "PASS: parity.ema_update_is_checked[a skipped last update on $d]"
  else
    echo "FAIL: parity.ema_update_is_checked[a skipped last update on $d still matched]"; rc=1
  fi
fi
exit $rc
