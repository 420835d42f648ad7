/* MPI start-up and the PMIx barrier after it (mpi_start.h says why). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <mpi.h>
#include <pmix.h>
#include "core/mpi_start.h"

/* 0, or the PMIx status of the step that failed (its name in *what). */
static pmix_status_t collecting_fence(const char **what) {
    pmix_proc_t me;
    /* PMIx_Init and PMIx_Finalize are reference-counted: Open MPI's own session stays up */
    pmix_status_t rc = PMIx_Init(&me, NULL, 0);
    if (rc != PMIX_SUCCESS) { *what = "PMIx_Init"; return rc; }
    bool collect = true;
    pmix_info_t info;
    PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
    rc = PMIx_Fence(NULL, 0, &info, 1);
    PMIX_INFO_DESTRUCT(&info);
    if (rc != PMIX_SUCCESS) *what = "PMIx_Fence";
    PMIx_Finalize(NULL, 0);
    return rc;
}

int mpi_start_barrier(void) {
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world < 2 || !getenv("PMIX_NAMESPACE")) return 1;
    const char *what = "";
    pmix_status_t prc = collecting_fence(&what);
    if (prc == PMIX_SUCCESS) return 0;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "warning: rank %d: the start-up barrier after MPI_Init failed (%s: %s); going on without it\n", rank,
            what, PMIx_Error_string(prc));
    return -1;
}

int mpi_start(int *argc, char ***argv) {
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc == MPI_SUCCESS) mpi_start_barrier();
    return rc;
}
