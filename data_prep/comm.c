/* The few collectives the tool needs. MPI is initialised only when a launcher started us, so
 * the tool also runs where no MPI runtime is set up (a login node, a Slurm array task). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <mpi.h>
#include "core/mpi_start.h"
#include "prep.h"

static int launched_by_mpi(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) if (getenv(vars[i])) return 1;
    return 0;
}

void prep_comm_init(prep_comm *c, int *argc, char ***argv) {
    c->rank = 0; c->size = 1; c->mpi = 0;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && !launched_by_mpi()) return;
    if (!inited) {
        /* Only the main thread calls MPI; decoding threads never do. */
        mpi_start(argc, argv);
        c->mpi = 2;   /* we own MPI_Finalize */
    } else c->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
}

void prep_comm_finalize(prep_comm *c) {
    if (c->mpi == 2) MPI_Finalize();
    c->mpi = 0;
}

int prep_comm_any(const prep_comm *c, int flag) {
    if (!c->mpi) return flag != 0;
    int in = flag != 0, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

long prep_comm_sum(const prep_comm *c, long v) {
    if (!c->mpi) return v;
    long out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return out;
}

void prep_comm_barrier(const prep_comm *c) { if (c->mpi) MPI_Barrier(MPI_COMM_WORLD); }

/* MPI counts are ints: move big buffers in pieces. */
enum { PIECE = 1 << 30 };

int prep_comm_bcast(const prep_comm *c, buf_t *b) {
    if (!c->mpi || c->size == 1) return 0;
    unsigned long long n = b->len;
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (c->rank != 0) {
        b->len = 0;
        int fail = buf_reserve(b, (size_t)n) != 0;
        if (prep_comm_any(c, fail)) return -1;
        b->len = (size_t)n;
        b->s[n] = 0;
    } else if (prep_comm_any(c, 0)) return -1;
    for (unsigned long long off = 0; off < n; off += PIECE) {
        int len = (int)(n - off < PIECE ? n - off : PIECE);
        MPI_Bcast(b->s + off, len, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
    return 0;
}

int prep_comm_gather(const prep_comm *c, const buf_t *mine, buf_t *all) {
    if (!c->mpi || c->size == 1) { buf_add(all, mine->s ? mine->s : "", mine->len); return all->oom ? -1 : 0; }
    /* Records are small (a few hundred bytes per shard), so one Gatherv suffices; refuse
     * rather than overflow if they are not. */
    int n = mine->len > INT_MAX / 2 ? -1 : (int)mine->len;
    int *counts = NULL, *displs = NULL, fail = n < 0;
    if (c->rank == 0) {
        counts = calloc((size_t)c->size, sizeof *counts);
        displs = calloc((size_t)c->size, sizeof *displs);
        fail |= !counts || !displs;
    }
    if (prep_comm_any(c, fail)) { free(counts); free(displs); return -1; }
    MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    long long total = 0;
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) { displs[r] = (int)total; total += counts[r]; }
        fail = total > INT_MAX || buf_reserve(all, (size_t)total);
    }
    if (prep_comm_any(c, fail)) { free(counts); free(displs); return -1; }
    MPI_Gatherv(mine->s ? mine->s : "", n, MPI_BYTE, c->rank == 0 ? all->s + all->len : NULL, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (c->rank == 0) { all->len += (size_t)total; all->s[all->len] = 0; }
    free(counts); free(displs);
    return 0;
}
