#!/usr/bin/env bash
# The cost of a feature target: training-step throughput (tests/tools/bench_train.c) at preset
# tiny, 224×224, batch 32, 2 threads, the default backend, fp32, with
#   pixel    the pixel target (the reference of this run),
#   teacher  a same-size timm ViT teacher (width 192, depth 12, heads 3, patch 16; random weights
#            written by tests/ref/teacher_ref.py), whose forward runs inside each step,
#   ema      the EMA of the weights as the teacher (--target ema: the EMA's encoder pass gives
#            the targets, the live weights' pass the order, the EMA update runs after AdamW),
# each as images/s, and each feature row against the pixel row measured in the same run as a
# ratio. Short on purpose (TARGET_BENCH_STEPS, default 2 timed steps after a warm-up): the
# machine is shared, so the figures are noisy; the ratio is what to read.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
make -s build/tools/bench_train >&2 || { echo "bench targets: build failed" >&2; exit 1; }
steps=${TARGET_BENCH_STEPS:-2}
teacher=build/bench-targets-timm-tiny.safetensors
if [ ! -f "$teacher" ]; then
  /usr/bin/python3 tests/ref/teacher_ref.py write --layout timm --image 224 --patch 16 --width 192 --depth 12 --heads 3 \
    --meta-heads --batch 1 --out "$teacher.tmp" --data build/bench-targets-timm-tiny.data >/dev/null 2>build/bench-targets.err &&
    mv "$teacher.tmp" "$teacher" || { echo "# teacher not written: $(tail -1 build/bench-targets.err)"; exit 0; }
fi

# row LABEL bench_train-arguments...: its throughput, permutation-phase and memory lines
row() {
  local label=$1 out
  shift
  if ! out=$(build/tools/bench_train --preset tiny --batch 32 --steps "$steps" --label "$label" "$@" 2>"build/bench-targets-$label.err"); then
    echo "# $label not measured: $(tail -1 "build/bench-targets-$label.err")"
    return
  fi
  echo "$out" | grep -E '_images_per_s|_ms_permutation|_peak_rss|^#'
}
pix=$(row pixel --target pixel)
echo "$pix"
tea=$(row timm_teacher --target teacher --teacher "$teacher")
echo "$tea"
ema=$(row ema --target ema)
echo "$ema"
ips() { echo "$1" | sed -n 's/^bench train_tiny_b32_.*_images_per_s: \([0-9.]*\).*/\1/p'; }
p=$(ips "$pix")
for x in "timm_teacher:$tea" "ema:$ema"; do
  t=$(ips "${x#*:}")
  if [ -n "$p" ] && [ -n "$t" ]; then
    awk -v t="$t" -v p="$p" -v l="${x%%:*}" 'BEGIN { if (p > 0) printf "bench train_tiny_b32_%s_vs_pixel: %.3f ratio\n", l, t / p }'
  fi
done
