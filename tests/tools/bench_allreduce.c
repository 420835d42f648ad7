/* Bus bandwidth of the ring all-reduce against MPI_Allreduce (tests/bench/allreduce.sh).
 * Usage: mpirun -np N bench_allreduce [--min-bytes B] [--max-bytes B] [--seg FLOATS]
 *                                      [--budget SECONDS] [--trials T] [--suffix S]
 * For each size (powers of 4 from min to max) the two methods take turns: T trials, each a
 * short run (~budget seconds) of in-place sums of one method then the other. The best trial
 * of each counts: the machine is shared, noise only ever slows a trial down, and many short
 * alternating trials give both methods the same chance of a quiet moment. Slow sizes get
 * fewer trials (at least 3) to keep the run short. Time per call is the slowest rank's.
 * Bus bandwidth is 2(N-1)/N x bytes / time, the traffic each rank's link carries in a ring,
 * comparable across rank counts. Prints `bench allreduce_{ring,mpi}_busbw_<size>: <GB/s>`
 * and, from 1 MiB up, `bench allreduce_ring_vs_mpi_<size>: <ratio>`; --suffix S appends _S to
 * every figure name (to tell apart runs under different settings). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "semaim/allreduce.h"

static int rank_;

static void usage_exit(const char *msg, const char *arg) {
    if (rank_ == 0) fprintf(stderr, "bench_allreduce: %s '%s' (usage: bench_allreduce [--min-bytes B] "
                            "[--max-bytes B] [--seg FLOATS] [--budget SECONDS] [--trials T] [--suffix S])\n", msg, arg);
    MPI_Finalize();
    exit(2);
}
static long parse_long(const char *flag, const char *s, long lo, long hi) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s wants an integer in %ld..%ld, got", flag, lo, hi);
        usage_exit(msg, s);
    }
    return v;
}
static double parse_double(const char *flag, const char *s, double lo, double hi) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s wants a number in %g..%g, got", flag, lo, hi);
        usage_exit(msg, s);
    }
    return v;
}

static void size_name(long bytes, char *out, size_t n) {
    if (bytes >= (1L << 20) && bytes % (1L << 20) == 0) snprintf(out, n, "%ldMiB", bytes >> 20);
    else if (bytes >= 1024 && bytes % 1024 == 0) snprintf(out, n, "%ldKiB", bytes >> 10);
    else snprintf(out, n, "%ldB", bytes);
}

/* Seconds for iters calls, the slowest rank's. */
static double time_calls(allreduce_t *ar, float *buf, long count, long iters) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long i = 0; i < iters; i++)
        if (allreduce_sum(ar, buf, count) != MPI_SUCCESS) {
            fprintf(stderr, "bench_allreduce: rank %d: all-reduce of %ld floats failed\n", rank_, count);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return tmax;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    long min_bytes = 1024, max_bytes = 256L << 20, seg = 0, trials = 25;
    double budget = 0.005;
    const char *suffix = "";
    for (int a = 1; a < argc; a++) {
        if (a + 1 >= argc) usage_exit("missing value after", argv[a]);
        if (!strcmp(argv[a], "--min-bytes")) min_bytes = parse_long("--min-bytes", argv[++a], 4, 1L << 34);
        else if (!strcmp(argv[a], "--max-bytes")) max_bytes = parse_long("--max-bytes", argv[++a], 4, 1L << 34);
        else if (!strcmp(argv[a], "--seg")) seg = parse_long("--seg", argv[++a], 0, 1L << 30);
        else if (!strcmp(argv[a], "--budget")) budget = parse_double("--budget", argv[++a], 0.001, 60);
        else if (!strcmp(argv[a], "--trials")) trials = parse_long("--trials", argv[++a], 1, 100);
        else if (!strcmp(argv[a], "--suffix")) {
            suffix = argv[++a];
            if (strlen(suffix) > 32 || strspn(suffix, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(suffix))
                usage_exit("--suffix wants up to 32 of [a-z0-9_], got", suffix);
        }
        else usage_exit("unknown argument", argv[a]);
    }
    if (min_bytes > max_bytes) usage_exit("--min-bytes exceeds --max-bytes", argv[0]);
    long max_count = max_bytes / 4;
    float *buf = malloc((size_t)max_count * sizeof(float));
    allreduce_t *ring = allreduce_create(MPI_COMM_WORLD, max_count, seg, 0);
    allreduce_t *mpi = allreduce_create(MPI_COMM_WORLD, max_count, 0, 1);
    if (!buf || !ring || !mpi) {
        fprintf(stderr, "bench_allreduce: rank %d: cannot allocate for %ld bytes\n", rank_, max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Sums of ones grow to inf after ~128 calls, which costs the same as finite values (no
     * denormals ever appear). */
    for (long i = 0; i < max_count; i++) buf[i] = 1.0f;
    if (rank_ == 0)
        printf("# %d ranks, ring segment %ld floats, best of %ld trials of ~%.3f s per method\n",
               world, allreduce_segment_floats(ring), trials, budget);
    double worst_ratio = 1e30;
    for (long bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        long count = bytes / 4;
        char size[32], name[96];
        size_name(bytes, size, sizeof size);
        snprintf(name, sizeof name, "%s%s%s", size, *suffix ? "_" : "", suffix);
        time_calls(ring, buf, count, 1);   /* warm up: page faults, MPI connections */
        time_calls(mpi, buf, count, 1);
        /* Iterations so one trial of the slower method takes ~budget, and fewer trials where
         * calls are slow so the whole run stays short. time_calls returns the same (slowest
         * rank's) time on every rank, so all ranks agree on the counts. */
        double t_ring = 1e30, t_mpi = 1e30;
        for (int k = 0; k < 2; k++) {
            double a = time_calls(ring, buf, count, 1), b = time_calls(mpi, buf, count, 1);
            if (a < t_ring) t_ring = a;
            if (b < t_mpi) t_mpi = b;
        }
        double t1 = t_ring > t_mpi ? t_ring : t_mpi;
        long iters = (long)(budget / (t1 > 1e-9 ? t1 : 1e-9));
        if (iters < 1) iters = 1;
        if (iters > 20000) iters = 20000;
        long ntrials = (long)(8.0 / (iters * (t_ring + t_mpi)));
        if (ntrials < 3) ntrials = 3;
        if (ntrials > trials) ntrials = trials;
        double best_ring = 1e30, best_mpi = 1e30;
        for (long t = 0; t < ntrials; t++) {
            /* Alternate which goes first, so neither always inherits the other's cache state. */
            int ring_first = t % 2 == 0;
            double tr = 0, tm = 0;
            if (ring_first) tr = time_calls(ring, buf, count, iters) / iters;
            tm = time_calls(mpi, buf, count, iters) / iters;
            if (!ring_first) tr = time_calls(ring, buf, count, iters) / iters;
            if (tr < best_ring) best_ring = tr;
            if (tm < best_mpi) best_mpi = tm;
        }
        double factor = 2.0 * (world - 1) / world * (double)bytes / 1e9;
        double bw_ring = factor / best_ring, bw_mpi = factor / best_mpi;
        if (rank_ == 0) {
            printf("# %-7s %6ld iters x %2ld trials  ring %10.2f us  mpi %10.2f us\n", size, iters, ntrials,
                   best_ring * 1e6, best_mpi * 1e6);
            printf("bench allreduce_ring_busbw_%s: %.3f GB/s\n", name, bw_ring);
            printf("bench allreduce_mpi_busbw_%s: %.3f GB/s\n", name, bw_mpi);
            if (bytes >= (1L << 20)) {
                printf("bench allreduce_ring_vs_mpi_%s: %.3f x\n", name, bw_ring / bw_mpi);
                if (bw_ring / bw_mpi < worst_ratio) worst_ratio = bw_ring / bw_mpi;
            }
            fflush(stdout);
        }
    }
    if (rank_ == 0 && worst_ratio < 1e29)
        printf("bench allreduce_ring_vs_mpi_worst_ge1MiB%s%s: %.3f x\n", *suffix ? "_" : "", suffix, worst_ratio);
    allreduce_free(ring);
    allreduce_free(mpi);
    free(buf);
    MPI_Finalize();
    return 0;
}
