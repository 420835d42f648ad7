#!/usr/bin/env bash
# The built-in demo: Fashion-MNIST (Debian's dataset-fashion-mnist) → class folders of JPEGs
# → HDF5 shards → SemAIM pretraining of a small ViT with 2 MPI ranks for a few minutes →
# k-NN evaluation of the pretrained encoder against the same encoder at initialisation.
# Usage: scripts/demo.sh [OUT]   (default build/demo). Re-running resumes/reuses what exists.
# DEMO_STEPS overrides the number of training steps (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/demo}
steps=${DEMO_STEPS:-500}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1   # 2 ranks × 1 thread on a 2-core machine
mkdir -p "$out"
t0=$(date +%s)
echo "== 1/4 Fashion-MNIST → JPEG class folders ($out/jpeg)"
if [ ! -f "$out/jpeg/.done" ]; then
  bin/semaim-prep fmnist --src /usr/share/datasets/fashion-mnist --out "$out/jpeg" --threads 2
  touch "$out/jpeg/.done"
else echo "   (already there)"; fi
echo "== 2/4 JPEG → HDF5 shards, 32×32 ($out/shards)"
bin/semaim-prep convert --src "$out/jpeg" --out "$out/shards" --train-shards 8 --val-shards 2 \
  --store raw --size 32 --val-size 32 --val-resize 32 --threads 2 --progress lines
# k-NN uses the first 10,000 train images as its memory bank and the 10,000 val images as
# queries: features of all 70,000 would take minutes on 2 cores.
if [ ! -f "$out/jpeg-knn/.done" ]; then
  bin/semaim-prep fmnist --src /usr/share/datasets/fashion-mnist --out "$out/jpeg-knn" --limit 10000 --threads 2 >/dev/null
  touch "$out/jpeg-knn/.done"
fi
bin/semaim-prep convert --src "$out/jpeg-knn" --out "$out/shards-knn" --train-shards 2 --val-shards 2 \
  --store raw --size 32 --val-size 32 --val-resize 32 --threads 2 --progress none
echo "== 3/4 pretraining: 2 MPI ranks, ViT 32×32 patch 4, width 96, depth 6, decoder 3, $steps steps"
mpirun -np 2 --bind-to none bin/semaim-train --data "$out/shards" --out "$out/run" \
  --image 32 --patch 4 --width 96 --depth 6 --dec-depth 3 --heads 3 --batch 64 \
  --steps "$steps" --warmup-steps 50 --base-lr 1.5e-4 --ckpt-every 200 --log-every 25
ckpt=$(ls "$out"/run/ckpt-*.bin | tail -n 1)
echo "== 4/4 k-NN (k 20, T 0.07, cls feature): pretrained encoder vs the same encoder at initialisation"
knn() { mpirun -np 2 --bind-to none bin/semaim-eval knn --checkpoint "$ckpt" --data "$out/shards-knn" --out "$out/run" "$@"; }
trained=$(knn) && init=$(knn --at-init)
echo "   pretrained: $trained"
echo "   at init:    $init"
echo
echo "demo finished in $(( $(date +%s) - t0 )) s"
echo "  shards:      $out/shards (manifest.json)"
echo "  run folder:  $out/run: settings.json, metrics.jsonl, eval.jsonl, checkpoints:" $(cd "$out/run" && ls ckpt-*.bin)
echo "  next:        bin/semaim-eval --help (linear probe, fine-tune, export to timm), jobs/README.md (Slurm),"
echo "               bin/semaim-report --runs DIR --name NAME (scaling reports)"
