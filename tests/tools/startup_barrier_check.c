/* Is mpi_start's barrier a barrier under this launcher? Rank 1 sleeps SLEEP seconds after
 * MPI_Init, then every rank times mpi_start_barrier() and, for comparison, a PMIx fence that
 * collects no data (the kind that ends Open MPI 4.1's MPI_Init). Prints one line per rank:
 *   rank R barrier B waited W s nocollect waited N s
 * (B: mpi_start_barrier's result). t_slurm_multinode.sh runs it on three nodes and checks
 * that the other ranks waited out the sleeper. Usage: startup_barrier_check [SLEEP] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <mpi.h>
#include <pmix.h>
#include "core/clock.h"
#include "core/mpi_start.h"

int main(int argc, char **argv) {
    double pause = argc > 1 ? atof(argv[1]) : 2.0;
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 1) usleep((useconds_t)(pause * 1e6));
    double t0 = clock_now();
    int b = mpi_start_barrier();
    double t1 = clock_now();
    /* the same pause again before a fence that collects nothing */
    if (rank == 1) usleep((useconds_t)(pause * 1e6));
    double t2 = clock_now(), t3 = t2;
    pmix_proc_t me;
    if (getenv("PMIX_NAMESPACE") && PMIx_Init(&me, NULL, 0) == PMIX_SUCCESS) {
        PMIx_Fence(NULL, 0, NULL, 0);
        t3 = clock_now();
        PMIx_Finalize(NULL, 0);
    }
    printf("rank %d barrier %d waited %.2f s nocollect waited %.2f s\n", rank, b, t1 - t0, t3 - t2);
    fflush(stdout);
    /* the no-collect fence may have let the sleeper behind: wait for it before finalizing */
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
