#!/usr/bin/env bash
# bf16 mixed precision trains like fp32: the demo model (scripts/demo.sh's sizes: image 32,
# patch 4, width 96, depth 6, dec-depth 3, heads 3) on 4000 Fashion-MNIST images, 2 ranks, the
# same seed, once in fp32 and once in bf16 (native where the CPU has AVX512_BF16, else its
# emulation on OpenBLAS: the same numbers), for BF16_STEPS steps (default 500) at BF16_BATCH
# images per rank (default 4: global batch 8, so both runs fit CI's time, ~3-4 minutes here):
# 1. the mean loss over the last 100 steps agrees within 1 %;
# 2. the k-NN top-1 of the two encoders (k 20, cls feature, 2000 train images as the bank,
#    2000 val images as queries) agrees within 1 point;
# 3. both runs learn: the last 100 steps' mean is below half the first 10 steps' mean, and
#    both encoders' k-NN top-1 is above 40 % (10 classes: chance is 10 %).
# Why these bounds: both runs see the same batches in the same order, so what separates their
# loss curves is the rounding of GEMM inputs (2^-8 relative per value) fed back through 500
# AdamW steps. Measured (2026-12-01, this machine, emulated bf16): fp32 0.37273, bf16 0.37150
# (-0.33 %); fp32 on OpenBLAS instead of oneDNN (summation order alone) 0.37273 (< 0.001 %);
# fp32 at 1.3× the learning rate 0.35643 (-4.4 %) — so 1 % separates "trains the same" from
# "trains differently" with room for bf16 on another CPU. The mean falls 8.7 % from the 100
# steps before to the last 100, so the runs compared are still learning; the first 10 steps
# average 0.995, hence the "halved" bound. k-NN top-1: fp32 61.90, bf16 61.60 (2000 queries
# resolve 0.05 points). BF16_CALIBRATE=1 repeats the two control runs and prints their
# deviations (not checked: they justify the bounds; ~2 more minutes). Run time ~2.5-4 min
# here, most of it the two training runs (timings noisy: the machine is shared).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
FM=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
steps=${BF16_STEPS:-500} batch=${BF16_BATCH:-4}
ev=$PWD/bin/semaim-eval train=$PWD/bin/semaim-train prep=$PWD/bin/semaim-prep
for b in "$ev" "$train" "$prep"; do [ -x "$b" ] || { echo "FAIL: bf16_fmnist.binaries ($b not built)"; exit 1; }; done
[ -f "$FM/train-images-idx3-ubyte.gz" ] || { echo "FAIL: bf16_fmnist.fashion_mnist ($FM missing: apt install dataset-fashion-mnist)"; exit 1; }
[ "$steps" -ge 200 ] || { echo "FAIL: bf16_fmnist.steps (BF16_STEPS=$steps: at least 200, the comparison is over the last 100)"; exit 1; }
scratch w tbf16
run() { local np=$1; shift; timeout 900 mpirun -np "$np" "$@"; }
"$prep" fmnist --src "$FM" --out "$w/jpeg" --limit 4000 --threads 2 >/dev/null 2>"$w/prep.err" &&
"$prep" convert --src "$w/jpeg" --out "$w/shards" --train-shards 4 --val-shards 2 --store raw --size 32 --val-size 32 \
  --val-resize 32 --threads 2 --progress none >/dev/null 2>>"$w/prep.err" &&
"$prep" fmnist --src "$FM" --out "$w/jpeg-knn" --limit 2000 --threads 2 >/dev/null 2>>"$w/prep.err" &&
"$prep" convert --src "$w/jpeg-knn" --out "$w/knn" --train-shards 2 --val-shards 2 --store raw --size 32 --val-size 32 \
  --val-resize 32 --threads 2 --progress none >/dev/null 2>>"$w/prep.err" || { bad "bf16_fmnist.prep ($(tail -1 "$w/prep.err"))"; exit 1; }
rm -rf "$w/jpeg" "$w/jpeg-knn"
# base-lr 3.2e-2 is lr 1e-3 at the global batch of 8 (base-lr × 8/256), warmup 50: the loss
# still falls over the last 100 steps, so the comparison is of two runs that are learning
M="--data $w/shards --image 32 --patch 4 --width 96 --depth 6 --dec-depth 3 --heads 3 --batch $batch --steps $steps \
   --warmup-steps 50 --seed 1 --log-every 100000 --ckpt-every 100000"
LR="--base-lr 3.2e-2"
if run 1 "$train" $M $LR --steps 1 --gemm onednn --precision bf16 --out "$w/probe" >/dev/null 2>&1; then
  BF="--gemm onednn --precision bf16"
else BF="--gemm openblas --precision bf16-emulated"; fi
runs=("fp32|--gemm auto --precision fp32 $LR" "bf16|$BF $LR")
if [ "${BF16_CALIBRATE:-0}" = 1 ]; then
  # fp32 on the other backend (the drift of summation order alone) and at 1.3× the lr
  grep -q '^onednn=1' build/gemm.cfg 2>/dev/null && runs+=("other_backend_fp32|--gemm openblas --precision fp32 $LR")
  runs+=("lr130_fp32|--gemm auto --precision fp32 --base-lr 4.16e-2")
fi
for r in "${runs[@]}"; do
  name=${r%%|*} flags=${r#*|}
  t0=$(date +%s)
  run 2 "$train" $M $flags --out "$w/$name" >/dev/null 2>"$w/$name.err" || { bad "bf16_fmnist.train_$name ($(head -1 "$w/$name.err"))"; exit 1; }
  echo "trained $name ($flags): $(( $(date +%s) - t0 )) s"
done
for r in "${runs[@]}"; do
  name=${r%%|*} flags=${r#*|}
  [ "$name" = fp32 ] || [ "$name" = bf16 ] || continue
  flags=${flags% --base-lr*}   # the compute flags only
  run 2 "$ev" knn --checkpoint "$w/$name/ckpt-$(printf %08d "$steps").bin" --data "$w/knn" $flags > "$w/$name.knn" 2>"$w/$name.kerr" ||
    bad "bf16_fmnist.knn_$name ($(head -1 "$w/$name.kerr"))"
done
$PY - "$w" <<'PY'
import json, os, re, sys
w = sys.argv[1]
def losses(n): return [json.loads(l)["loss"] for l in open(f"{w}/{n}/metrics.jsonl") if '"event": "step"' in l]
L = {n: losses(n) for n in ("fp32", "bf16", "other_backend_fp32", "lr130_fp32") if os.path.isdir(f"{w}/{n}")}
mean = {n: sum(v[-100:]) / 100 for n, v in L.items()}
for n, v in L.items():
    print(f"{n}: {len(v)} steps, loss {v[0]:.4f} (first 10: {sum(v[:10]) / 10:.4f}) -> mean of the last 100 {mean[n]:.5f} ({100 * (mean[n] / mean['fp32'] - 1):+.3f} % of fp32)")
fall = (sum(L["fp32"][-200:-100]) / 100 - mean["fp32"]) / mean["fp32"]
print(f"fp32: the mean falls {100 * fall:.2f} % from the 100 steps before to the last 100")
knn = {n: float(re.search(r"top1=([0-9.]+)", open(f"{w}/{n}.knn").read()).group(1)) for n in ("fp32", "bf16")}
print(f"k-NN top-1: fp32 {knn['fp32']:.2f}, bf16 {knn['bf16']:.2f}")
first = {n: sum(v[:10]) / 10 for n, v in L.items()}
json.dump({"mean_last100": mean, "mean_first10": first, "fall": fall, "knn": knn}, open(f"{w}/summary.json", "w"))
PY
if $PY - "$w/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
m = s["mean_last100"]
sys.exit(0 if abs(m["bf16"] / m["fp32"] - 1) < 0.01 else 1)
PY
then pass "bf16_fmnist.loss_mean_of_last_100_steps_within_1_percent"; else bad "bf16_fmnist.loss_mean_of_last_100_steps_within_1_percent"; fi
if $PY - "$w/summary.json" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["knn"]
sys.exit(0 if abs(k["bf16"] - k["fp32"]) <= 1 else 1)
PY
then pass "bf16_fmnist.knn_top1_within_1_point"; else bad "bf16_fmnist.knn_top1_within_1_point"; fi
if $PY - "$w/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok = all(s["mean_last100"][n] < 0.5 * s["mean_first10"][n] and s["knn"][n] > 40 for n in ("fp32", "bf16"))
sys.exit(0 if ok else 1)
PY
then pass "bf16_fmnist.both_runs_learn"; else bad "bf16_fmnist.both_runs_learn (loss not halved or k-NN top-1 not above 40)"; fi
exit $fail
