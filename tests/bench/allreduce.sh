#!/usr/bin/env bash
# Ring all-reduce bus bandwidth vs MPI_Allreduce, 2 ranks on this machine (shared-memory
# transport), 1 KiB .. 256 MiB in powers of 4. Prints `bench allreduce_*` lines for
# tests/bench.sh; target: ring within 10% of MPI_Allreduce (ratio >= 0.9) from 1 MiB up.
#
# Open MPI's collectives malloc a block-sized temporary on every call; from ~32 MiB glibc
# serves that with a fresh mmap, and first-touch page faults are expensive here, so with
# default glibc settings MPI_Allreduce is >10x slower at 64 MiB and up. The ring allocates its
# staging once and does not care. The main run therefore keeps glibc from returning big
# blocks to the kernel (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_), i.e. compares against
# MPI_Allreduce at its best; a second short run (figures suffixed _glibc_default) shows the
# large sizes with the defaults a job would get.
# Extra arguments go to the driver (e.g. --seg 65536 to try another segment size).
set -u
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bin=build/tools/bench_allreduce
# `make bench` only builds bin/*, so build the driver here (a no-op when it is current).
make -s "$bin" >&2 || { echo "bench allreduce: cannot build $bin" >&2; exit 1; }
# Two ranks, one per core, each bound so neither migrates mid-measurement.
mpirun -np 2 --bind-to core -x MALLOC_MMAP_THRESHOLD_=4294967296 -x MALLOC_TRIM_THRESHOLD_=68719476736 \
  "$bin" "$@" || exit 1
mpirun -np 2 --bind-to core "$bin" --min-bytes $((64 << 20)) --trials 3 --suffix glibc_default "$@" || exit 1
