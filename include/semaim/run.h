/* The run helpers: every stage the two trainers (semaim-train, semaim-finetune) share, one call
 * each, so each program's loop reads top to bottom in its main (llm.c style) and the stages
 * cannot drift apart. A run is one invocation of a trainer on every rank of MPI_COMM_WORLD:
 *
 *   run_init           MPI, rank/world, SIGUSR1/SIGTERM handlers (installed before anything
 *                      else, so a stop request during start-up is honoured at the first step)
 *   run_parse          the option table: --help, bad flags (exit 2)
 *   run_compute        --gemm and --precision: resolved alike on every rank, made the process's
 *                      choice (before the model and its arena are built), written back
 *   run_open_folder    the run folder (rank 0 creates it, all agree)
 *   run_resume         the newest valid step file of the run's kind (or a given one, or none),
 *                      read by rank 0 and broadcast, checked against seed, ranks and batch
 *   run_start          settings.json, metrics.jsonl and its run_start line, the start-up line
 *   run_step_agree     per step: one small reduction of loss, local failures and stop requests
 *   run_check_finite   loss and gradient norm (exit 3)
 *   run_allreduce      the gradient all-reduce: ONE call over the one buffer
 *   run_update         gradient norm, clipping, AdamW at the schedule's lr
 *   run_step_done      the step line in metrics.jsonl and on stdout (slowest rank's times)
 *   run_check_replicas every --check-every steps
 *   run_monitor        the k-NN monitor (pretraining): its metrics line and its part of the step line
 *   run_checkpoint     at the cadence, at the end and on a stop
 *   run_phase          where a step is, for the stall watchdog (--stall-timeout)
 *   run_end            the run_end line; returns the exit code for dist_finish
 * Errors go through the error value (semaim/err.h): the first failing rank's message is
 * printed once by rank 0 and every rank exits with the error's kind. */
#ifndef SEMAIM_RUN_H
#define SEMAIM_RUN_H
#include <stdio.h>
#include <mpi.h>
#include "core/buf.h"
#include "semaim/allreduce.h"
#include "semaim/checkpoint.h"
#include "semaim/err.h"
#include "semaim/loader.h"
#include "semaim/model.h"
#include "semaim/monitor.h"
#include "semaim/optim.h"
#include "semaim/options.h"
#include "semaim/watchdog.h"


typedef struct {
    const char *prog;          /* "semaim-train" */
    int kind;                  /* CKPT_PRETRAIN or CKPT_FINETUNE */
    int rank, world;
    const char *out;           /* run folder */
    option_t *opts; int nopt;  /* the settings, for settings.json and run_start */
    FILE *metrics;             /* rank 0 */
    long metrics_lost;         /* lines the disk did not take (rank 0) */
    buf_t line;                /* the metrics line being built */
    allreduce_t *ar;
    char resumed_from[4200];   /* the step file resumed from ("" for none) */
    char resumed_compute[64];  /* what it was written with, when not this run's compute ("" else) */
    long start_step, step, total_steps, steps_this_run, max_steps_this_run;
    long global_batch, log_every, check_every, ckpt_every;
    int keep;
    double stall_timeout;      /* seconds without a completed step before the watchdog ends the job; 0 = off */
    int exit_code;
    const char *end_reason;
    double t_start;
    int stop;                  /* the ranks agreed to stop after this step */
    int signalled;             /* ... because some rank got SIGUSR1 or SIGTERM */
    long steps_per_epoch;
    char note[160];            /* the monitor's part of the step line ... */
    long note_step;            /* ... measured after this step (-1: none yet) */
    const char *resume_same;   /* options (comma-separated) a resume must have as the resumed run had them */
} run_t;

void run_init(run_t *r, int *argc, char ***argv, const char *prog, int kind);
/* For every MPI program: argv[first..] into the option table; --help prints "usage: " +
 * synopsis and the options (rank 0) and exits 0; a bad flag prints "<prog>: <reason>" once and
 * exits 2. */
void cli_parse_or_exit(const char *prog, option_t *opts, int n, int argc, char **argv, int first, const char *synopsis);
/* cli_parse_or_exit, and the table is the run's settings. */
void run_parse(run_t *r, option_t *opts, int n, int argc, char **argv, int first, const char *synopsis);
/* Agrees on e across ranks; on an error rank 0 prints "<prog>: <message>" and every rank exits
 * with its kind. Returns only when every rank is fine. */
void run_agree(run_t *r, err_t *e);
/* The compute choice from the --gemm / --precision values (dist_compute_setup; a bad or
 * unsupported one ends the run with exit 2), made the process's choice; *gemm and *precision
 * then name what was resolved ("onednn", "bf16"), so settings.json records that. */
void run_compute(run_t *r, const char **gemm, const char **precision);
void run_open_folder(run_t *r, const char *out);
/* resume: "auto" (the newest step file of the run's kind in the folder that verifies), "no",
 * or a path. Rank 0 reads; every rank then holds the same params, moments, EMA weights (when
 * w has them; the EMA's shadow is built afterwards, ema.h) and *st (and the bf16 copy of
 * params, in bf16 runs). A file written with another seed (named seed_flag),
 * rank count or batch is refused (exit 2), and so is one whose run folder's settings.json
 * (written by the run that wrote the file) differs from this run's table in an option of
 * r->resume_same (a folder without it: a note, not checked). One written with another
 * precision or GEMM backend is resumed (the weights and moments are f32 whatever the
 * precision), with a note on stdout and resumed_compute in run_start: the continuation is
 * then not bit-identical to a run that kept its compute. Returns 1 if resumed. */
int run_resume(run_t *r, const char *resume, const ckpt_model_t *id, params_t *w, ckpt_state_t *st,
               const char *seed_flag);
/* Writes settings.json, opens metrics.jsonl and writes run_start with the common fields and
 * `extra` (", \"key\": value" pairs, may be NULL); prints `banner` (rank 0). Also creates the
 * gradient all-reduce for w (one buffer, one call per step) and starts the stall watchdog
 * (r->stall_timeout). */
void run_start(run_t *r, const params_t *w, long steps_per_epoch, double peak_lr, int use_mpi_allreduce,
               long segment, const char *extra, const char *banner);
/* One small reduction per step: the loss sum, local failures (local->kind != ERR_NONE) and
 * stop requests (signals, the step limit of this invocation). On a failure anywhere the first
 * failing rank's error reaches rank 0, which prints it, and the function returns -1 (the run
 * ends with that kind); else the mean loss is in *mean_loss and r->stop says whether to stop
 * after this step. */
int run_step_agree(run_t *r, double loss, err_t *local, double *mean_loss);
/* -1 (and the run ends with exit 3) when x is NaN or infinite; what: "loss", "gradient norm". */
int run_check_finite(run_t *r, const char *what, double x);
/* Averages w->grads over ranks (one call). -1 (and the run ends with exit 1) on an MPI error. */
int run_allreduce(run_t *r, params_t *w);
/* After the all-reduce: the gradient norm (-1, and the run ends with exit 3, when it is not
 * finite), clipping and AdamW at the schedule's lr for this step. */
int run_update(run_t *r, params_t *w, const optim_cfg_t *oc, double *lr, double *gnorm);
typedef struct { double data, compute, comm, step; } run_times_t;
/* The step is done: the step line (metrics.jsonl; stdout every log_every steps) and the
 * run state a step file records (step, and the loader's position for the next batch). */
void run_step_done(run_t *r, loader *ld, ckpt_state_t *st, int epoch, double loss, double lr, double gnorm,
                   const run_times_t *t);
/* Every check_every steps: -1 (and the run ends with exit 1) if the replicas differ. */
int run_check_replicas(run_t *r, const params_t *w);
/* Writes a step file when one is due (cadence, last step, stop), after checking the run
 * folder has room for it plus a margin. One due at the cadence that fails (disk full, I/O
 * error) or does not fit is a logged skip: a warning, a checkpoint_skipped metrics line, and
 * training goes on to retry at the next interval. The last one (end of training, or a stop)
 * is always attempted; -1 (exit 1) when it fails. */
int run_checkpoint(run_t *r, const ckpt_model_t *id, const params_t *w, const ckpt_state_t *st);
/* Is an evaluation of the monitor due after `step` steps (every > 0: at 0 for a run that
 * starts from scratch, at every multiple of every, and at the last step)? A resumed run
 * continues the curve at the next multiple: its checkpoint's step was evaluated before the
 * checkpoint was written. */
int run_monitor_due(const run_t *r, long every, long step);
/* Collective: the monitor's evaluation of the weights after `step` steps — r->step (before the
 * loop, no step in flight: printed at once) or r->step + 1 (after run_update, before
 * run_step_done: printed as part of that step line) — as a `monitor` line in metrics.jsonl.
 * -1 (the run ends with the error's kind) when it fails on any rank. */
int run_monitor(run_t *r, monitor_t *mon, model_t *m, long step);
/* Marks what the run is doing now, for the stall watchdog (train/watchdog.h): a phase of the
 * next step (data, compute, all-reduce) or of the step just done (checkpoint, evaluation). */
void run_phase(run_t *r, watchdog_phase_t phase);
/* Writes a metrics line of its own event with extra pairs (rank 0). */
void run_event(run_t *r, const char *event, const char *pairs);
/* The run_end line; closes everything; returns the exit code. */
int run_end(run_t *r);
#endif
