/* MPI test driver for the gradient all-reduce (semaim/allreduce.h). Run under mpirun with any
 * rank count; every rank runs every case and rank 0 prints one PASS:/FAIL: line per case
 * (a case fails if it failed on any rank). Usage: allreduce_check [--big N] (default 1000000).
 *
 * Inputs depend on rank and index, so a chunk landing in the wrong place, a missed or doubled
 * contribution, or a stale segment shows up as a wrong value. Integer-valued floats make every
 * sum exact, so the ring, MPI_Allreduce and the integer reference must agree bitwise; random
 * floats are checked against the ring's own summation order (replayed here) bitwise and
 * against MPI_Allreduce and a double reference with a tolerance. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "semaim/allreduce.h"
#include "semaim/dist.h"
#include "semaim/rng.h"
#include "check.h"

static int rank_, world_;
/* A case name begins with the rank count, as t_allreduce.sh reports the runs. */
#define case_begin(fmt, ...) test_begin("allreduce np=%d " fmt, world_, ##__VA_ARGS__)
#define case_end() test_end_all()

/* Small integers: any sum of up to a few thousand of them is exact in float. */
static float int_val(int r, long i, long salt) { return (float)(((r + 1) * 7919L + i * 31 + salt * 101) % 1021); }
static float rand_val(int r, long i, long salt) {
    return rng_uniform(rng_key(1234, (uint64_t)r, (uint64_t)salt, 0, 0), (uint64_t)i) * 2.0f - 1.0f;
}
typedef float (*val_fn)(int, long, long);

/* The spec of the ring's order, independent of its code: element i lies in chunk c (the first
 * count%world chunks one longer) and is summed starting at rank c, going up the ring. */
static int chunk_of(long i, long count, int world) {
    long base = count / world, rem = count % world;
    if (i < rem * (base + 1)) return (int)(i / (base + 1));
    return (int)(rem + (i - rem * (base + 1)) / base);
}
static float ring_order_value(val_fn f, long i, long count, long salt, int mean) {
    int c = chunk_of(i, count, world_);
    float acc = f(c, i, salt);
    for (int q = 1; q < world_; q++) acc = f((c + q) % world_, i, salt) + acc;
    return mean && world_ > 1 ? acc * (1.0f / (float)world_) : acc;
}

enum { GUARD = 16 };
static const uint32_t SENTINEL = 0x7fc0dead;
/* A buffer of count floats followed by GUARD sentinel words, to catch writes past the end in
 * the fast build (the ASan build catches them anyway). */
static float *make_buf(long count, val_fn f, int r, long salt) {
    float *b = malloc((size_t)(count + GUARD) * sizeof(float));
    if (!b) { fprintf(stderr, "allreduce_check: out of memory (%ld floats)\n", count); MPI_Abort(MPI_COMM_WORLD, 2); }
    for (long i = 0; i < count; i++) b[i] = f(r, i, salt);
    for (int g = 0; g < GUARD; g++) memcpy(&b[count + g], &SENTINEL, 4);
    return b;
}
static int guard_ok(const float *b, long count) {
    for (int g = 0; g < GUARD; g++) if (memcmp(&b[count + g], &SENTINEL, 4)) return 0;
    return 1;
}
/* All ranks hold bitwise what rank 0 holds (checked against a broadcast, not the checksum). */
static int same_as_rank0(const float *b, long count) {
    float *r0 = malloc((size_t)(count ? count : 1) * sizeof(float));
    if (!r0) MPI_Abort(MPI_COMM_WORLD, 2);
    if (rank_ == 0) memcpy(r0, b, (size_t)count * sizeof(float));
    for (long o = 0; o < count; o += 1L << 28)
        MPI_Bcast(r0 + o, (int)(count - o < (1L << 28) ? count - o : (1L << 28)), MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = memcmp(r0, b, (size_t)count * sizeof(float)) == 0;
    free(r0);
    return same;
}
static float *mpi_reference(long count, val_fn f, long salt) {
    float *m = make_buf(count, f, rank_, salt);
    if (count) MPI_Allreduce(MPI_IN_PLACE, m, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return m;
}

/* Exact integer sums: ring == integer reference == MPI_Allreduce, bitwise, on every rank. */
static void case_exact_sum(allreduce_t *ar, long count, const char *segname) {
    case_begin("sum exact len=%ld seg=%s", count, segname);
    const long salt = count % 97;
    float *b = make_buf(count, int_val, rank_, salt);
    int rc = allreduce_sum(ar, b, count);
    CHECK(rc == MPI_SUCCESS, "allreduce_sum returned %d", rc);
    long bad = 0, first = -1;
    for (long i = 0; i < count; i++) {
        long want = 0;
        for (int q = 0; q < world_; q++) want += (long)int_val(q, i, salt);
        if (b[i] != (float)want) { if (first < 0) first = i; bad++; }
    }
    CHECK(bad == 0, "%ld of %ld elements differ from the integer sum, first at %ld (%g)", bad, count,
          first, first >= 0 ? b[first] : 0.0);
    float *m = mpi_reference(count, int_val, salt);
    CHECK(memcmp(m, b, (size_t)count * sizeof(float)) == 0, "differs from MPI_Allreduce");
    CHECK(guard_ok(b, count), "wrote past the end of the buffer");
    CHECK(same_as_rank0(b, count), "not bitwise identical to rank 0");
    free(m);
    free(b);
    case_end();
}

/* Random floats, mean: bitwise equal to the ring order replayed, close to MPI_Allreduce/world
 * and to a double reference, identical on all ranks. */
static void case_random_mean(allreduce_t *ar, long count, const char *segname) {
    case_begin("mean random len=%ld seg=%s", count, segname);
    const long salt = 7 + count % 13;
    float *b = make_buf(count, rand_val, rank_, salt);
    int rc = allreduce_mean(ar, b, count);
    CHECK(rc == MPI_SUCCESS, "allreduce_mean returned %d", rc);
    long bad_order = 0, first = -1;
    double max_err = 0;
    for (long i = 0; i < count; i++) {
        if (b[i] != ring_order_value(rand_val, i, count, salt, 1)) { if (first < 0) first = i; bad_order++; }
        double want = 0;
        for (int q = 0; q < world_; q++) want += rand_val(q, i, salt);
        want /= world_;
        double e = fabs(b[i] - want);
        if (e > max_err) max_err = e;
    }
    CHECK(bad_order == 0, "%ld elements differ from the ring's summation order, first at %ld", bad_order, first);
    CHECK(max_err <= 1e-6 * world_, "max error vs double mean %g", max_err);
    float *m = mpi_reference(count, rand_val, salt);
    double max_mpi = 0;
    for (long i = 0; i < count; i++) {
        double e = fabs(b[i] - m[i] * (1.0f / (float)world_));
        if (e > max_mpi) max_mpi = e;
    }
    CHECK(max_mpi <= 1e-6 * world_, "max difference vs MPI_Allreduce mean %g", max_mpi);
    CHECK(guard_ok(b, count), "wrote past the end of the buffer");
    CHECK(same_as_rank0(b, count), "not bitwise identical to rank 0");
    free(m);
    free(b);
    case_end();
}

/* Several calls of different lengths (sum and mean mixed) with no synchronisation between
 * them: a rank may start call k+1 while its neighbour is still in call k. */
static void case_back_to_back(allreduce_t *ar, const char *segname) {
    case_begin("back-to-back calls seg=%s", segname);
    long lens[] = {12345, 1, 0, world_ + 1, 1000, world_ > 1 ? world_ - 1 : 2, 12345, 3 * world_};
    enum { NCALL = sizeof lens / sizeof lens[0] };
    float *b[NCALL];
    for (int k = 0; k < NCALL; k++) b[k] = make_buf(lens[k], k % 2 ? rand_val : int_val, rank_, 100 + k);
    for (int k = 0; k < NCALL; k++) {
        int rc = k % 2 ? allreduce_mean(ar, b[k], lens[k]) : allreduce_sum(ar, b[k], lens[k]);
        CHECK(rc == MPI_SUCCESS, "call %d returned %d", k, rc);
    }
    for (int k = 0; k < NCALL; k++) {
        long bad = 0;
        for (long i = 0; i < lens[k]; i++)
            if (b[k][i] != ring_order_value(k % 2 ? rand_val : int_val, i, lens[k], 100 + k, k % 2)) bad++;
        CHECK(bad == 0, "call %d (len %ld): %ld wrong elements", k, lens[k], bad);
        CHECK(guard_ok(b[k], lens[k]), "call %d wrote past the end", k);
        CHECK(same_as_rank0(b[k], lens[k]), "call %d not identical to rank 0", k);
        free(b[k]);
    }
    case_end();
}

/* use_mpi = 1 routes through MPI_Allreduce: exact sums equal, mean is sum times 1/world. */
static void case_mpi_path(long count) {
    case_begin("use_mpi sum+mean len=%ld", count);
    allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, count, 0, 1);
    CHECK(ar != NULL, "create failed");
    if (ar) {
        float *b = make_buf(count, int_val, rank_, 3);
        CHECK(allreduce_sum(ar, b, count) == MPI_SUCCESS, "sum failed");
        long bad = 0;
        for (long i = 0; i < count; i++) if (b[i] != ring_order_value(int_val, i, count, 3, 0)) bad++;
        CHECK(bad == 0, "%ld wrong sums", bad);
        free(b);
        b = make_buf(count, int_val, rank_, 4);
        CHECK(allreduce_mean(ar, b, count) == MPI_SUCCESS, "mean failed");
        bad = 0;
        for (long i = 0; i < count; i++) if (b[i] != ring_order_value(int_val, i, count, 4, 1)) bad++;
        CHECK(bad == 0, "%ld wrong means", bad);
        CHECK(guard_ok(b, count), "wrote past the end");
        free(b);
        allreduce_free(ar);
    }
    case_end();
}

/* Bad arguments are refused, on every rank, without wrecking the next good call. */
static void case_errors(void) {
    case_begin("argument errors");
    CHECK(allreduce_create(MPI_COMM_WORLD, -1, 0, 0) == NULL, "accepted max_count -1");
    CHECK(allreduce_create(MPI_COMM_WORLD, 10, -5, 0) == NULL, "accepted segment -5");
    CHECK(allreduce_create(MPI_COMM_WORLD, 10, (long)INT_MAX + 1, 0) == NULL, "accepted segment > INT_MAX");
    if (world_ > 1)
        CHECK(allreduce_create(MPI_COMM_WORLD, 1L << 40, 1, 0) == NULL, "accepted 2^40 one-float segments");
    if (world_ > 1) {
        /* Disagreeing ranks: expected to print a diagnostic on stderr. */
        allreduce_t *bad = allreduce_create(MPI_COMM_WORLD, 10, rank_ == world_ - 1 ? 8 : 7, 0);
        CHECK(bad == NULL, "accepted ranks with different segment sizes");
        allreduce_free(bad);
    }
    allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, 100, 7, 0);
    CHECK(ar != NULL, "create failed");
    if (ar) {
        float *b = make_buf(101, int_val, rank_, 9);
        CHECK(allreduce_sum(ar, b, 101) == MPI_ERR_COUNT, "count > max_count not refused");
        CHECK(allreduce_mean(ar, b, -1) == MPI_ERR_COUNT, "negative count not refused");
        CHECK(allreduce_sum(ar, NULL, 5) == MPI_ERR_BUFFER, "NULL buffer not refused");
        CHECK(allreduce_sum(ar, NULL, 0) == MPI_SUCCESS, "NULL buffer with count 0 refused");
        CHECK(allreduce_sum(ar, b, 100) == MPI_SUCCESS, "good call after errors failed");
        long bad = 0;
        for (long i = 0; i < 100; i++) if (b[i] != ring_order_value(int_val, i, 100, 9, 0)) bad++;
        CHECK(bad == 0, "%ld wrong sums after errors", bad);
        CHECK(b[100] == int_val(rank_, 100, 9), "touched the element past count");
        CHECK(guard_ok(b, 101), "wrote past the end");
        free(b);
        allreduce_free(ar);
    }
    allreduce_t *z = allreduce_create(MPI_COMM_WORLD, 0, 0, 0);
    CHECK(z != NULL, "max_count 0 refused");
    if (z) { CHECK(allreduce_mean(z, NULL, 0) == MPI_SUCCESS, "count 0 failed"); allreduce_free(z); }
    case_end();
}

static void flip_bit(float *p, long i, int bit) {
    uint32_t u; memcpy(&u, &p[i], 4); u ^= 1u << bit; memcpy(&p[i], &u, 4);
}

static void case_checksum(void) {
    case_begin("params_checksum detects single-bit changes");
    const long n = 1001;
    float *p = make_buf(n, rand_val, 0, 55);
    uint64_t h = params_checksum(p, n);
    CHECK(params_checksum(p, n) == h, "not deterministic");
    /* Same bytes at a different (4-byte, not 8-byte aligned) address: same hash. */
    float *q = malloc((size_t)(n + 1) * sizeof(float));
    if (!q) MPI_Abort(MPI_COMM_WORLD, 2);
    memcpy(q + 1, p, (size_t)n * sizeof(float));
    CHECK(params_checksum(q + 1, n) == h, "depends on alignment");
    free(q);
    long at[] = {0, 1, 2, 3, 4, 7, 8, 500, 997, 998, 999, 1000};
    int missed = 0;
    for (unsigned a = 0; a < sizeof at / sizeof at[0]; a++)
        for (int bit = 0; bit < 32; bit++) {
            flip_bit(p, at[a], bit);
            if (params_checksum(p, n) == h) missed++;
            flip_bit(p, at[a], bit);
        }
    CHECK(missed == 0, "%d single-bit flips not detected", missed);
    CHECK(params_checksum(p, n) == h, "restoring the bits did not restore the hash");
    CHECK(params_checksum(p, n - 1) != h, "length not part of the hash");
    float z[2] = {0.0f, 0.0f}, nz[2] = {-0.0f, 0.0f};
    CHECK(params_checksum(z, 2) != params_checksum(nz, 2), "+0 and -0 hash the same");
    CHECK(params_checksum(z, 1) != params_checksum(z, 2) && params_checksum(z, 0) != params_checksum(z, 1),
          "zero buffers of different lengths hash the same");
    /* Swapping two words must matter (a plain xor/sum of words would miss it). */
    float s[8] = {1, 2, 3, 4, 5, 6, 7, 8}, t[8] = {3, 4, 1, 2, 5, 6, 7, 8};
    CHECK(params_checksum(s, 8) != params_checksum(t, 8), "word order not part of the hash");
    free(p);
    case_end();
}

static void case_replicas(void) {
    case_begin("check_replicas_consistent finds the differing rank");
    const long n = 4097;
    float *p = make_buf(n, rand_val, 0, 66);   /* the same on every rank */
    uint64_t mine = 0;
    int r = check_replicas_consistent(MPI_COMM_WORLD, p, n, &mine);
    CHECK(r == 0, "identical replicas reported as differing (%d)", r);
    CHECK(mine == params_checksum(p, n), "*mine is not params_checksum");
    if (rank_ == world_ - 1) flip_bit(p, 777, 3);
    r = check_replicas_consistent(MPI_COMM_WORLD, p, n, NULL);
    CHECK(r == (world_ > 1 ? world_ : 0), "one bit flipped on rank %d: got %d", world_ - 1, r);
    if (rank_ == world_ - 1) flip_bit(p, 777, 3);
    if (world_ > 3 && (rank_ == 1 || rank_ == 3)) flip_bit(p, n - 1, 0);
    r = check_replicas_consistent(MPI_COMM_WORLD, p, n, NULL);
    CHECK(r == (world_ > 3 ? 2 : 0), "flipped on ranks 1 and 3: got %d", r);
    if (world_ > 3 && (rank_ == 1 || rank_ == 3)) flip_bit(p, n - 1, 0);
    /* A different parameter count on one rank is a mismatch too. */
    r = check_replicas_consistent(MPI_COMM_WORLD, p, rank_ == world_ - 1 ? n - 1 : n, NULL);
    CHECK(r == (world_ > 1 ? world_ : 0), "different lengths: got %d", r);
    /* The trainers' wrapper: same verdict, and the error names the step and the rank. */
    err_t e = {0};
    CHECK(replicas_verify(MPI_COMM_WORLD, p, n, 10, &e) == 0 && e.kind == ERR_NONE, "replicas_verify flagged identical replicas");
    if (rank_ == world_ - 1) flip_bit(p, 0, 31);
    r = replicas_verify(MPI_COMM_WORLD, p, n, 20, &e);
    CHECK(r == (world_ > 1 ? world_ : 0), "replicas_verify with a sign flipped on rank %d: got %d", world_ - 1, r);
    if (world_ > 1) {
        char want[64];
        snprintf(want, sizeof want, "at step 20: rank %d's parameters differ", world_ - 1);
        CHECK(e.kind == ERR_RUNTIME && strstr(e.msg, want), "replicas_verify message: %s", e.msg);
    }
    free(p);
    case_end();
}

/* What training does: each rank has its own gradient, averages it, applies the same update;
 * the replicas must stay bitwise identical step after step. */
static void case_training_steps(long count) {
    case_begin("replicas identical after 5 mean+update steps len=%ld", count);
    allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, count, 1000, 0);
    CHECK(ar != NULL, "create failed");
    float *w = make_buf(count, rand_val, 0, 77), *g = make_buf(count, rand_val, rank_, 0);
    for (int step = 0; ar && step < 5; step++) {
        for (long i = 0; i < count; i++) g[i] = rand_val(rank_, i, 200 + step) * (1.0f + w[i]);
        CHECK(allreduce_mean(ar, g, count) == MPI_SUCCESS, "step %d: mean failed", step);
        for (long i = 0; i < count; i++) w[i] -= 0.1f * g[i];
        int r = check_replicas_consistent(MPI_COMM_WORLD, w, count, NULL);
        CHECK(r == 0, "step %d: rank %d differs", step, r - 1);
    }
    free(w); free(g);
    allreduce_free(ar);
    case_end();
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    test_mpi_rank(rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    long big = 1000000;
    for (int a = 1; a < argc; a++) {
        char *end = NULL;
        if (!strcmp(argv[a], "--big") && a + 1 < argc) {
            errno = 0;
            big = strtol(argv[++a], &end, 10);
            if (errno || *end || big < 1 || big > 100000000) {
                if (rank_ == 0) fprintf(stderr, "allreduce_check: --big: want an integer in 1..1e8, got '%s'\n", argv[a]);
                MPI_Finalize();
                return 2;
            }
        } else {
            if (rank_ == 0) fprintf(stderr, "allreduce_check: unknown argument '%s' (usage: allreduce_check [--big N])\n", argv[a]);
            MPI_Finalize();
            return 2;
        }
    }
    const int P = world_;
    long small_lens[] = {0, 1, P > 1 ? P - 1 : 2, P, P + 1, 2 * P + 3, 14L * P, 12345};
    const int nsmall = sizeof small_lens / sizeof small_lens[0];
    /* Segment sizes: the default (larger than every chunk here), 7 (many segments, last one
     * short, and exact multiples at len 14*world) and 1. */
    struct { long seg; const char *name; } segs[] = {{0, "default"}, {7, "7"}, {1, "1"}};
    for (int s = 0; s < 3; s++) {
        allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, big, segs[s].seg, 0);
        if (!ar) { if (rank_ == 0) printf("FAIL: allreduce np=%d create seg=%s\n", P, segs[s].name); check_failures_++; continue; }
        for (int l = 0; l < nsmall; l++) {
            int dup = 0;
            for (int e = 0; e < l; e++) dup |= small_lens[e] == small_lens[l];
            if (dup) continue;
            case_exact_sum(ar, small_lens[l], segs[s].name);
            case_random_mean(ar, small_lens[l], segs[s].name);
        }
        case_back_to_back(ar, segs[s].name);
        allreduce_free(ar);
    }
    /* The large length with the default segment and with a small one that does not divide it. */
    long big_segs[] = {0, 999};
    for (int s = 0; s < 2; s++) {
        allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, big, big_segs[s], 0);
        char name[32];
        snprintf(name, sizeof name, "%s", big_segs[s] ? "999" : "default");
        if (!ar) { if (rank_ == 0) printf("FAIL: allreduce np=%d create seg=%s\n", P, name); check_failures_++; continue; }
        case_exact_sum(ar, big, name);
        case_random_mean(ar, big, name);
        allreduce_free(ar);
    }
    /* Segments smaller than the MPI eager limit and just above it, on a mid-size buffer. */
    {
        allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, 300001, 3000, 0);
        if (ar) { case_exact_sum(ar, 300001, "3000"); allreduce_free(ar); }
        else { if (rank_ == 0) printf("FAIL: allreduce np=%d create seg=3000\n", P); check_failures_++; }
    }
    case_mpi_path(12345);
    case_errors();
    case_checksum();
    case_replicas();
    case_training_steps(100003);
    MPI_Finalize();
    return test_exit();
}
