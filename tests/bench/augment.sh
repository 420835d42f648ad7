#!/usr/bin/env bash
# Fine-tuning augmentation throughput, one thread (a loader worker's view): RandAugment +
# erasing of a 224² image, the whole fine-tuning chain from 256², each op alone, and Mixup of
# a batch of 32. Compare images/s with a fine-tuning step's images/s per loader thread.
set -eu
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
make -s build/tools/bench_randaug >&2
build/tools/bench_randaug "${BENCH_AUGMENT_IMAGES:-400}"
