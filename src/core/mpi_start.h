/* MPI start-up for every program that runs on several ranks (semaim-train, semaim-finetune,
 * semaim-eval, semaim-prep): MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread
 * calls MPI), then a barrier that sends no MPI traffic.
 *
 * Why the barrier: Open MPI 4.1 ends MPI_Init with a PMIx fence that collects no data, and
 * under srun --mpi=pmix (Slurm 22.05, PMIx 4.2) such a fence returns at once: measured with a
 * rank that sleeps 2 s before it, the other ranks waited 0.00 s, with SLURM_PMIX_FENCE_BARRIER
 * or PMIxFenceBarrier set as well. So a rank can leave MPI_Init and send to a peer that is
 * still in its start-up exchange, whose TCP transport then calls a receive handler the PML has
 * not registered yet: SIGSEGV at address 0 in mca_btl_tcp, inside the peer's MPI_Init
 * (backtrace from a core: ompi_mpi_init → opal_progress → libevent → mca_btl_tcp → 0x0).
 * On tests/t_slurm_multinode.sh's three namespace nodes that was 8 of about 145 job starts
 * (0 of 79 with this barrier). A fence that collects data does wait for every rank (measured: it waited
 * out the sleeping rank), and each rank reaches it only after its own MPI_Init has returned,
 * so after it no rank can be inside MPI_Init any more. */
#ifndef SEMAIM_CORE_MPI_START_H
#define SEMAIM_CORE_MPI_START_H

/* MPI_Init_thread(FUNNELED), then, when a PMIx launcher started this process (srun
 * --mpi=pmix, mpirun) and there is more than one rank, the barrier above. A barrier that
 * fails (a launcher whose PMIx server refuses it) is reported on stderr by each rank it fails
 * on, one line, and skipped: the run goes on as it would have without it. Returns
 * MPI_Init_thread's result. */
int mpi_start(int *argc, char ***argv);
/* The barrier alone, after MPI_Init (mpi_start calls it; tests/tools/startup_barrier_check.c
 * times it): 0 when every rank has reached it, 1 when there is nothing to wait for (one rank,
 * or no PMIx launcher), -1 when it failed (reported on stderr). */
int mpi_start_barrier(void);
#endif
