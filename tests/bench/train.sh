#!/usr/bin/env bash
# Training-step throughput (tests/tools/bench_train.c), preset tiny at 224×224, batch 32,
# 2 threads, for every compute this build and CPU run natively:
#   fp32 / OpenBLAS, fp32 / oneDNN, bf16 / oneDNN (where the CPU has AVX512_BF16 or AMX; where
#   not, one line says why),
# each with images/s, ms per phase, achieved GFLOP/s, the share of the step outside GEMMs and
# peak RSS, and against the GEMM rate of its own backend and precision measured on the model's
# shapes in the same run (bench_gemm, weighted by how often each shape occurs in a step).
# OpenBLAS runs with the environment as set; when OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set,
# also a row with both unset (labelled openblas_unset: OpenBLAS then picks its kernels from the
# CPU itself). Then preset base at batch 8 (throughput and peak RSS), fp32 and bf16 on the
# default backend, so users of ViT-B see their figure. The feature targets' step rates
# (teacher, ema) are tests/bench/targets.sh's.
# TRAIN_BENCH_STEPS (default 3) timed steps after one warm-up step; TRAIN_BENCH_BASE=0 skips base.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
make -s build/tools/bench_train build/tools/bench_gemm >&2 || { echo "bench train: build failed" >&2; exit 1; }
steps=${TRAIN_BENCH_STEPS:-3}
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}, $OMP_NUM_THREADS threads"

# row LABEL GEMM PRECISION BENCH_GEMM_CONFIG [env arguments...]
row() {
  local label=$1 gemm=$2 prec=$3 ref=$4 out rate achieved
  shift 4
  if ! out=$(env "$@" build/tools/bench_train --preset tiny --batch 32 --steps "$steps" --gemm "$gemm" --precision "$prec" \
               --label "$label" 2>"build/bench-train-$label.err"); then
    echo "# $label not measured: $(tail -1 "build/bench-train-$label.err")"
    return
  fi
  echo "$out"
  echo "$out" >>"$rows"
  rate=$(env "$@" build/tools/bench_gemm --batch 32 --reps 3 --only "$ref" | sed -n "s/^bench gemm_${ref}_weighted_gflops: \([0-9.]*\).*/\1/p")
  achieved=$(echo "$out" | sed -n "s/^bench train_tiny_b32_${label}_gflops: \([0-9.]*\).*/\1/p")
  if [ -n "$rate" ] && [ -n "$achieved" ]; then
    echo "bench train_tiny_b32_${label}_gemm_rate_on_model_shapes: $rate GFLOP/s"
    awk -v a="$achieved" -v r="$rate" -v l="$label" 'BEGIN { printf "bench train_tiny_b32_%s_fraction_of_gemm_rate: %.3f ratio\n", l, a / r }'
  else
    echo "# $label: no GEMM rate from bench_gemm --only $ref"
  fi
}

rows=build/bench-train-rows.txt
: >"$rows"
row openblas_fp32 openblas fp32 openblas_fp32
if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then
  row openblas_unset_fp32 openblas fp32 openblas_fp32 -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
fi
row onednn_fp32 onednn fp32 onednn_fp32
row onednn_bf16 onednn bf16 onednn_bf16

# bf16's memory where native bf16 cannot run: the emulation keeps every buffer a bf16 run has
# (the weights' bf16 copy, the bf16 activations GEMMs read) and adds only fp32 conversion
# scratch, so its peak RSS bounds native bf16's from above (oneDNN's own bf16 buffers aside).
# Its speed means nothing (fp32 GEMMs plus conversions) and is not reported.
if out=$(build/tools/bench_train --preset tiny --batch 32 --steps 1 --gemm openblas --precision bf16-emulated \
           --label bf16_emulated 2>build/bench-train-bf16-emulated.err); then
  echo "$out" | grep '_peak_rss' | sed 's/_peak_rss:/_peak_rss_memory_only:/'
else
  echo "# bf16-emulated memory not measured: $(tail -1 build/bench-train-bf16-emulated.err)"
fi

# PyTorch on the same node, in the same run: tests/tools/bench_torch_ref.py (our PyTorch
# SemAIM of tests/ref, fp32, mask-based full attention as the authors' code, the same threads
# and BLAS) — each row above against it
if pt=$(/usr/bin/python3 tests/tools/bench_torch_ref.py \
          --preset tiny --batch 32 --steps "$steps" --threads "$OMP_NUM_THREADS" 2>build/bench-train-torch.err); then
  echo "$pt"
  ref=$(echo "$pt" | sed -n 's/^bench train_tiny_b32_pytorch_ref_images_per_s: \([0-9.]*\).*/\1/p')
  sed -n 's/^bench train_tiny_b32_\(.*\)_images_per_s: \([0-9.]*\).*/\1 \2/p' "$rows" | while read -r label ips; do
    awk -v a="$ips" -v r="$ref" -v l="$label" 'BEGIN { if (r > 0) printf "bench train_tiny_b32_%s_vs_pytorch_ref: %.2f ratio\n", l, a / r }'
  done
else
  echo "# PyTorch reference not measured: $(tail -1 build/bench-train-torch.err)"
fi

if [ "${TRAIN_BENCH_BASE:-1}" != 0 ]; then
  for prec in fp32 bf16; do
    if out=$(build/tools/bench_train --preset base --batch 8 --steps 2 --gemm auto --precision "$prec" --label "auto_$prec" \
               2>build/bench-train-base.err); then
      echo "$out" | grep -E '_images_per_s|_peak_rss|_outside_gemm|^#'
    else
      echo "# base $prec not measured: $(tail -1 build/bench-train-base.err)"
    fi
  done
fi
