/* Replica checks: a hash of the exact bits of a rank's parameters, compared across ranks. */
#include <stdlib.h>
#include <string.h>
#include "semaim/dist.h"
#include "semaim/rng.h"

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
/* For a fixed h this is injective in w, and for a fixed w a bijection of h (xor, rotate and an
 * odd multiplier all are), which is what makes single-word differences always visible. */
static inline uint64_t lane_step(uint64_t h, uint64_t w) {
    return rotl64(h ^ w, 31) * 0x9e3779b97f4a7c15ULL;
}

uint64_t params_checksum(const float *p, long n) {
    if (n < 0) n = 0;
    uint64_t h[4];
    for (int l = 0; l < 4; l++) h[l] = mix64((uint64_t)n * 4 + (uint64_t)l);
    long words = n / 2, i = 0;
    const char *b = (const char *)p;
    /* Four independent lanes so the multiplies overlap instead of forming one long chain. */
    for (; i + 4 <= words; i += 4) {
        uint64_t w[4];
        memcpy(w, b + i * 8, sizeof w);
        for (int l = 0; l < 4; l++) h[l] = lane_step(h[l], w[l]);
    }
    for (; i < words; i++) {
        uint64_t w; memcpy(&w, b + i * 8, 8);
        h[i & 3] = lane_step(h[i & 3], w);
    }
    if (n & 1) {
        uint32_t u; memcpy(&u, b + (n - 1) * 4, 4);
        h[i & 3] = lane_step(h[i & 3], u);
    }
    uint64_t f = mix64(h[0]);
    for (int l = 1; l < 4; l++) f = mix64(f ^ h[l]);
    return f;
}

/* Every rank's checksum of p[0..n), in all[world] (malloc'ed, caller frees); NULL on failure. */
static uint64_t *gather_checksums(MPI_Comm comm, const float *p, long n, uint64_t *mine) {
    uint64_t h = params_checksum(p, n);
    if (mine) *mine = h;
    int world;
    if (MPI_Comm_size(comm, &world) != MPI_SUCCESS) return NULL;
    uint64_t *all = malloc((size_t)world * sizeof *all);
    int ok = all != NULL, all_ok = 0;
    /* Agree on allocation first so no rank is left alone in the Allgather. */
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !all_ok ||
        MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm) != MPI_SUCCESS) {
        free(all);
        return NULL;
    }
    return all;
}
static int first_mismatch(const uint64_t *all, int world) {
    for (int q = 1; q < world; q++) if (all[q] != all[0]) return q + 1;
    return 0;
}

int check_replicas_consistent(MPI_Comm comm, const float *p, long n, uint64_t *mine) {
    int world;
    uint64_t *all = gather_checksums(comm, p, n, mine);
    if (!all || MPI_Comm_size(comm, &world) != MPI_SUCCESS) { free(all); return -1; }
    int bad = first_mismatch(all, world);
    free(all);
    return bad;
}

int replicas_verify(MPI_Comm comm, const float *p, long n, long step, err_t *err) {
    int world;
    if (MPI_Comm_size(comm, &world) != MPI_SUCCESS) return -1;
    uint64_t *all = gather_checksums(comm, p, n, NULL);
    if (!all) {
        err_set(err, ERR_RUNTIME, "replica check at step %ld: gathering parameter checksums failed", step);
        return -1;
    }
    int bad = first_mismatch(all, world);
    if (bad)
        err_set(err, ERR_RUNTIME, "replica check at step %ld: rank %d's parameters differ from rank 0's "
                "(checksum %016llx vs %016llx over %ld floats): ranks no longer hold the same model",
                step, bad - 1, (unsigned long long)all[bad - 1], (unsigned long long)all[0], n);
    free(all);
    return bad;
}
