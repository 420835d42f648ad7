/* Agreeing on errors, ending a job on every rank, broadcasting big buffers (semaim/dist.h). */
#include <stdio.h>
#include <stdlib.h>
#include "semaim/dist.h"

int dist_agree(MPI_Comm comm, err_t *e) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    int who = e->kind != ERR_NONE ? rank : world, first = world;
    MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == world) return 0;
    MPI_Bcast(e, (int)sizeof *e, MPI_BYTE, first, comm);
    return -1;
}

void dist_finish(int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    exit(code);
}

void dist_agree_or_exit(MPI_Comm comm, const char *prog, err_t *e) {
    if (dist_agree(comm, e) == 0) return;
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) fprintf(stderr, "%s: %s\n", prog, e->msg);
    dist_finish(e->kind);
}

int dist_bcast_floats(MPI_Comm comm, float *buf, long n) {
    const long piece = 1L << 30;
    for (long o = 0; o < n; o += piece) {
        long c = n - o < piece ? n - o : piece;
        int rc = MPI_Bcast(buf + o, (int)c, MPI_FLOAT, 0, comm);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}
