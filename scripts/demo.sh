#!/usr/bin/env bash
# The built-in demo: Fashion-MNIST (Debian's dataset-fashion-mnist) → class folders of JPEGs
# → HDF5 shards → SemAIM pretraining of a small ViT with 2 MPI ranks for a few minutes.
# Usage: scripts/demo.sh [OUT]   (default build/demo). Re-running resumes/reuses what exists.
# DEMO_STEPS overrides the number of training steps (default 600).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/demo}
steps=${DEMO_STEPS:-600}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1   # 2 ranks × 1 thread on a 2-core machine
mkdir -p "$out"
t0=$(date +%s)
echo "== 1/3 Fashion-MNIST → JPEG class folders ($out/jpeg)"
if [ ! -f "$out/jpeg/.done" ]; then
  bin/semaim-prep fmnist --src /usr/share/datasets/fashion-mnist --out "$out/jpeg" --threads 2
  touch "$out/jpeg/.done"
else echo "   (already there)"; fi
echo "== 2/3 JPEG → HDF5 shards, 32×32 ($out/shards)"
bin/semaim-prep convert --src "$out/jpeg" --out "$out/shards" --train-shards 8 --val-shards 2 \
  --size 32 --val-size 32 --val-resize 32 --threads 2 --progress lines
echo "== 3/3 pretraining: 2 MPI ranks, ViT 32×32 patch 4, width 96, depth 6, decoder 3, $steps steps"
mpirun -np 2 --bind-to none bin/semaim-train --data "$out/shards" --out "$out/run" \
  --image 32 --patch 4 --width 96 --depth 6 --dec-depth 3 --heads 3 --batch 64 \
  --steps "$steps" --warmup-steps 50 --base-lr 1.5e-4 --ckpt-every 200 --log-every 25
echo
echo "demo finished in $(( $(date +%s) - t0 )) s"
echo "  shards:      $out/shards (manifest.json)"
echo "  run folder:  $out/run (settings.json, metrics.jsonl, checkpoints:" $(cd "$out/run" && ls ckpt-*.bin) ")"
echo "  evaluation (k-NN) and scaling reports come with semaim-eval and semaim-report (not built yet)"
