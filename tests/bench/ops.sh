#!/usr/bin/env bash
# Layer-kernel benchmark: attention forward/backward per mask mode (B=32, T=197, NH=3, hd=64,
# the tiny preset's encoder attention) and a 1024³ SGEMM for the machine's reference rate.
set -eu
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
make -s build/tools/bench_ops >&2
build/tools/bench_ops 32 197 3 64 10
