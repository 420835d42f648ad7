#!/usr/bin/env bash
# Ring all-reduce bus bandwidth vs MPI_Allreduce, 2 ranks on this machine (shared-memory
# transport), 1 KiB .. 256 MiB in powers of 4. Prints `bench allreduce_*` lines for
# tests/bench.sh; target: ring within 10% of MPI_Allreduce (ratio >= 0.9) from 1 MiB up.
# Extra arguments go to the driver (e.g. --seg 16384 to try another segment size).
set -u
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bin=build/tools/bench_allreduce
# `make bench` only builds bin/*, so build the driver here (a no-op when it is current).
make -s "$bin" >&2 || { echo "bench_allreduce: cannot build $bin" >&2; exit 1; }
# Two ranks, one per core, each bound so neither migrates mid-measurement.
exec mpirun -np 2 --bind-to core "$bin" "$@"
