/* A stall watchdog for MPI training loops. MPI has no timeouts: a collective whose peer
 * stopped answering (a dead link, a stopped process, a hung file system) blocks forever and
 * burns the whole allocation. The watchdog is a background thread that ends the job when no
 * step has completed for a set time, after one line on stderr naming the step and the phase
 * it is stuck in, so that the scheduler can requeue the job.
 *
 *   watchdog_start(1800, "semaim-train");      once, after MPI_Init, before the loop
 *   watchdog_phase(step, WATCHDOG_DATA);       at each phase of each step (cheap: two stores)
 *   watchdog_stop();                           after the loop
 *
 * A step counts as completed when watchdog_phase is called with a new step number; phases
 * of the same step do not reset the clock. On a stall the thread prints
 *   PROG: rank R on HOST: no step completed in T s: stuck at step S in PHASE; aborting the job (exit 1)
 * and calls MPI_Abort(MPI_COMM_WORLD, 1) (or _exit(1) when MPI is not initialised, or is
 * already finalised). */
#ifndef SEMAIM_WATCHDOG_H
#define SEMAIM_WATCHDOG_H

typedef enum { WATCHDOG_DATA, WATCHDOG_COMPUTE, WATCHDOG_ALLREDUCE, WATCHDOG_CHECKPOINT, WATCHDOG_EVAL } watchdog_phase_t;

/* Starts the thread; timeout_s 0 leaves the watchdog off (then phase and stop do nothing).
 * 0 on success; -1 when timeout_s is negative or not finite, the watchdog already runs, or the
 * thread cannot be made (the reason is on stderr). prog is copied. */
int watchdog_start(double timeout_s, const char *prog);
/* Records where the caller is. Lock-free and async-signal-safe; a no-op when off. */
void watchdog_phase(long step, watchdog_phase_t phase);
/* Stops and joins the thread (at once, not at its next wake-up). Safe when off or stopped. */
void watchdog_stop(void);
/* "data", "compute", "all-reduce", "checkpoint", "evaluation"; "?" for anything else. */
const char *watchdog_phase_name(watchdog_phase_t phase);
#endif
