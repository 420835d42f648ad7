#!/usr/bin/env bash
# The cost of the k-NN monitor (semaim-train --monitor-data) against the training it watches,
# both measured in the same run (2 ranks x 1 thread):
#   demo model (32x32, patch 4, width 96, depth 6, global batch 128) at the default sizes
#   (bank 2000, queries 1000): seconds per evaluation, seconds per step, and the share of the
#   time of 500 steps (the default --monitor-every) one evaluation takes;
#   tiny preset at 224 (global batch 16): the same per image from a small bank (192 + 96), and
#   projected to the default sizes (the feature pass is linear in images; k-NN of 3000 images
#   is negligible next to it).
# Prints "bench <name>: <value> <unit>" lines.
set -u
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
train=$PWD/bin/semaim-train
[ -x "$train" ] || { echo "bin/semaim-train not built"; exit 1; }
w=$(mktemp -d "${TMPDIR:-/tmp}/bmon.XXXXXX")
trap 'rm -rf "$w"' EXIT

# medians of the monitor's seconds (points after the first) and of the step seconds (after warm-up)
figures() {
  $PY - "$1" <<'PY'
import json, statistics, sys
L = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
mon = [l["seconds"] for l in L if l["event"] == "monitor"][1:]
steps = [l["step_s"] for l in L if l["event"] == "step"][2:]
b = [l for l in L if l["event"] == "monitor"][0]
print(statistics.median(mon), statistics.median(steps), b["bank"] + b["queries"])
PY
}

$PY tests/tools/make_shards.py "$w/d32" --counts 1000,1000 --size 32 --labels content >/dev/null &&
$PY tests/tools/make_shards.py "$w/d32" --counts 1000 --size 32 --split val --labels content >/dev/null || exit 1
mpirun -np 2 --bind-to none "$train" --data "$w/d32" --out "$w/demo" --image 32 --patch 4 --width 96 --depth 6 --dec-depth 3 \
  --heads 3 --batch 64 --steps 24 --warmup-steps 4 --log-every 1000 --monitor-data "$w/d32" --monitor-every 8 >/dev/null || exit 1
read -r ev st n <<<"$(figures "$w/demo")"
echo "bench monitor_demo32_eval_s: $ev s"
echo "bench monitor_demo32_images: $n images"
echo "bench monitor_demo32_step_s: $st s"
echo "bench monitor_demo32_share_of_500_steps: $($PY -c "print(round(100 * $ev / (500 * $st), 2))") %"

$PY tests/tools/make_shards.py "$w/d224" --counts 96,96 --size 224 >/dev/null &&
$PY tests/tools/make_shards.py "$w/d224" --counts 96 --size 224 --split val >/dev/null || exit 1
mpirun -np 2 --bind-to none "$train" --data "$w/d224" --out "$w/tiny" --preset tiny --batch 8 --steps 6 --warmup-steps 1 \
  --log-every 1000 --monitor-data "$w/d224" --monitor-every 2 --monitor-bank 192 --monitor-queries 96 >/dev/null || exit 1
read -r ev st n <<<"$(figures "$w/tiny")"
per=$($PY -c "print($ev / $n)")
echo "bench monitor_tiny224_s_per_image: $($PY -c "print(round($per, 5))") s"
echo "bench monitor_tiny224_step_s: $st s"
echo "bench monitor_tiny224_eval_s_at_defaults_projected: $($PY -c "print(round(3000 * $per, 1))") s"
echo "bench monitor_tiny224_share_of_500_steps_projected: $($PY -c "print(round(100 * 3000 * $per / (500 * $st), 2))") %"
