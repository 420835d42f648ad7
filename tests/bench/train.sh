#!/usr/bin/env bash
# Training-step throughput, preset tiny at 224×224, batch 32, 2 threads, environment as it is.
cd "$(dirname "$0")/../.."
make -s build/tools/bench_train >/dev/null || { echo "bench_train: build failed" >&2; exit 1; }
OMP_NUM_THREADS=2 build/tools/bench_train --preset tiny --batch 32 --steps 3
