#!/usr/bin/env bash
# Fine-tuning step rate with the paper's whole recipe (RandAugment rand-m9-mstd0.5-inc1 and
# random erasing 0.25 in the loader thread, Mixup 0.8 / CutMix 1.0 on the batch) against the
# same run without it (--randaug none --reprob 0 --mixup 0 --cutmix 0), preset tiny at 224²,
# batch 32, 2 OpenMP threads, one rank, the loader's default one augmentation thread, 256²
# raw shards. The figures come from semaim-finetune's own step lines (metrics.jsonl): median
# step time after BENCH_FT_WARMUP steps, and the data-wait share = Σ data_wait_s / Σ step_s
# (the recipe must keep it under 2 %: augmentation is not the bottleneck). Steps:
# BENCH_FT_STEPS (default 30). Noisy on a shared machine: compare the two in the same run.
set -u
cd "$(dirname "$0")/../.."
ft=bin/semaim-finetune py=/usr/bin/python3
[ -x "$ft" ] || { echo "finetune bench: $ft not built (make build-all)" >&2; exit 1; }
steps=${BENCH_FT_STEPS:-30} warm=${BENCH_FT_WARMUP:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/benchft.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
$py tests/tools/make_shards.py "$work/data" --counts 64,64 --size 256 >/dev/null &&
$py tests/tools/make_shards.py "$work/data" --counts 4 --size 256 --split val --seed 1 >/dev/null &&
$py tests/ref/vit_timm.py write --out "$work/tiny.safetensors" --image 224 --patch 16 --width 192 --depth 12 --heads 3 \
  --classes 10 >/dev/null || { echo "finetune bench: cannot make the data or the weights" >&2; exit 1; }
C="--weights $work/tiny.safetensors --heads 3 --data $work/data --classes 10 --batch 32 --steps $steps --warmup-steps 1
   --eval-every 1000000 --ckpt-every 1000000 --log-every 1000000 --resume no"
for mode in recipe plain; do
  extra=""; [ $mode = plain ] && extra="--randaug none --reprob 0 --mixup 0 --cutmix 0"
  "$ft" $C $extra --out "$work/$mode" >"$work/$mode.out" 2>&1 ||
    { echo "finetune bench: the $mode run failed: $(grep -m1 semaim-finetune: "$work/$mode.out")" >&2; exit 1; }
done
$py - "$work" "$warm" <<'PY'
import json, statistics, sys
work, warm = sys.argv[1], int(sys.argv[2])
res = {}
for mode in ("recipe", "plain"):
    st = [json.loads(l) for l in open(f"{work}/{mode}/metrics.jsonl") if '"event": "step"' in l][warm:]
    if not st:
        sys.exit(f"finetune bench: no steps after {warm} warm-up steps (BENCH_FT_STEPS too small)")
    med = statistics.median(s["step_s"] for s in st)
    share = 100 * sum(s["data_wait_s"] for s in st) / sum(s["step_s"] for s in st)
    res[mode] = 32 / med
    print(f"bench finetune_tiny224_b32_{mode}: {32 / med:.2f} images/s")
    print(f"bench finetune_tiny224_b32_{mode}_data_wait: {share:.3f} %")
print(f"bench finetune_tiny224_b32_recipe_vs_plain: {res['recipe'] / res['plain']:.3f} x")
PY
