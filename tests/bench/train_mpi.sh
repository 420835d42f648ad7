#!/usr/bin/env bash
# Training throughput of the real job (loader, orders, all-reduce included): preset tiny at
# 224×224, global batch 32, as 1 rank × 2 threads and as 2 ranks × 1 thread on synthetic
# 256×256 shards. Median images/s over the steps after the first.
set -u
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
data=build/bench-data/shards256
if [ ! -f "$data/train/train-00003-of-00004.h5" ]; then
  /usr/bin/python3 tests/tools/make_shards.py "$data" --counts 64,64,64,64 --size 256 || exit 1
fi
for cfg in "1 2 32" "2 1 16"; do
  set -- $cfg
  out=$(mktemp -d)
  OMP_NUM_THREADS=$2 mpirun -np $1 --bind-to none bin/semaim-train --data "$data" --preset tiny --batch $3 --steps 5 \
    --warmup-steps 1 --resume no --out "$out" --log-every 1000 >/dev/null 2>"$out/err" || { cat "$out/err" >&2; exit 1; }
  /usr/bin/python3 - "$out/metrics.jsonl" "$1" "$2" <<'PY'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"event": "step"' in l][1:]
ips = statistics.median(s["images_per_s"] for s in steps)
comm = statistics.median(s["comm_s"] for s in steps)
wait = statistics.median(s["data_wait_s"] for s in steps)
n, t = sys.argv[2], sys.argv[3]
print(f"bench train_job_tiny_{n}rank_x{t}thread_images_per_s: {ips:.3f} images/s")
print(f"bench train_job_tiny_{n}rank_x{t}thread_comm_ms: {1e3*comm:.1f} ms")
print(f"bench train_job_tiny_{n}rank_x{t}thread_data_wait_ms: {1e3*wait:.1f} ms")
PY
  rm -rf "$out"
done
