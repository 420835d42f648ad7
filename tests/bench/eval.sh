#!/usr/bin/env bash
# Evaluation throughput: encoder features (forward only) per second for the tiny preset at 224
# and the demo model at 32, on 1 and 2 ranks; k-NN search speed (query x bank pairs per
# second) on synthetic 192-wide features. Prints "bench <name>: <value> <unit>" lines.
set -u
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
PY=/usr/bin/python3
ev=$PWD/bin/semaim-eval
[ -x "$ev" ] || { echo "bin/semaim-eval not built"; exit 1; }
w=$(mktemp -d "${TMPDIR:-/tmp}/beval.XXXXXX")
trap 'rm -rf "$w"' EXIT

# one rank per core with one thread each, or one rank with both threads
run() { local np=$1; shift; if [ "$np" = 1 ]; then OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$ev" "$@"
        else OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun -np "$np" --bind-to none "$ev" "$@"; fi; }
rate() { sed -n 's/.*s (\([0-9.]*\) img\/s).*/\1/p' "$1"; }

# checkpoints of the two models (import of a generated file: no training needed)
$PY - "$w" <<'PY'
import sys; sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_io, semaim_ref, torch
for name, cfg in (("tiny", dict(image=224, patch=16, width=192, depth=12, dec_depth=12, heads=3)),
                  ("demo", dict(image=32, patch=4, width=96, depth=6, dec_depth=3, heads=3))):
    p = semaim_ref.init_params(cfg, torch.Generator().manual_seed(0), torch.float32)
    meta = {"semaim_config": ",".join(f"{k}={v}" for k, v in cfg.items())}
    safetensors_io.write(f"{sys.argv[1]}/{name}.safetensors", {k: v.numpy() for k, v in p.items()}, meta)
PY
$PY tests/tools/make_shards.py "$w/d224" --counts 96,96 --size 224 --split val
$PY tests/tools/make_shards.py "$w/d32" --counts 2000,2000 --size 32 --split val

for np in 1 2; do
  run $np features --weights "$w/tiny.safetensors" --data "$w/d224" --out "$w/t.h5" --batch 32 > "$w/t$np.out" || exit 1
  echo "bench features_tiny224_np${np}: $(rate "$w/t$np.out") img/s"
  run $np features --weights "$w/demo.safetensors" --data "$w/d32" --out "$w/d.h5" --batch 128 > "$w/d$np.out" || exit 1
  echo "bench features_demo32_np${np}: $(rate "$w/d$np.out") img/s"
done
# tiny at 224 forward: 12 blocks x 197 tokens x (12*192^2 + 2*197*192) multiply-adds + the embedding
echo "bench features_tiny224_gflop_per_image: $($PY -c 'D=192;T=197;print(round(2*(12*T*(12*D*D+2*T*D)+196*768*D)/1e9,3))') GFLOP"

# k-NN: 40000 bank x 10000 queries x 192 dims
$PY - "$w" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
for name, n in (("train", 40000), ("val", 10000)):
    y = rng.integers(0, 100, n).astype(np.int32)
    x = (rng.normal(size=(100, 192))[y] + 2 * rng.normal(size=(n, 192))).astype(np.float32)
    with h5py.File(f"{sys.argv[1]}/{name}.h5", "w") as f:
        f["cls"], f["mean"], f["labels"] = x, x, y
        f.attrs["format"] = np.bytes_("semaim features"); f.attrs["format_version"] = 1; f.attrs["num_classes"] = 100
PY
for np in 1 2; do
  run $np knn --train-features "$w/train.h5" --val-features "$w/val.h5" --out "$w/k$np" > "$w/k$np.out" || exit 1
  s=$($PY -c "import json; r=json.loads(open('$w/k$np/eval.jsonl').readline()); print(r['knn_s'])")
  echo "bench knn_40k_bank_10k_queries_np${np}: $s s"
  echo "bench knn_pairs_per_s_np${np}: $($PY -c "print(round(4e8 / $s / 1e6, 1))") M/s"
done
