#!/usr/bin/env bash
# GEMM rates on the model's own shapes (preset tiny 224², batch 32, 2 threads), weighted by how
# often each shape occurs in a training step: OpenBLAS fp32, oneDNN fp32 and, where the CPU has
# AVX512_BF16, oneDNN bf16 — the reference rates for the training-step benchmark.
# OpenBLAS runs with the environment as set, then with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# unset (labelled openblas_unset): OpenBLAS then picks its kernels from the CPU itself.
set -eu
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
make -s build/tools/bench_gemm >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
build/tools/bench_gemm --batch 32 --reps 5
if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/tools/bench_gemm --batch 32 --reps 5 --only openblas_fp32 |
    sed 's/^bench gemm_openblas_fp32_/bench gemm_openblas_unset_fp32_/'
fi
