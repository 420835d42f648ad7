/* The metrics schema: one JSON object per line in <run>/metrics.jsonl (trainers) and
 * <out>/eval.jsonl (evaluations). The event and key names below are the schema; the writers
 * (train/run.c, cmd/semaim-eval.c) and semaim-report's reader use these names and nothing
 * else, so they cannot drift apart.
 *
 * metrics.jsonl, in order:
 *   run_start   once per invocation (a resumed or requeued run appends another): kind, time,
 *               ranks, threads, host, cpu, cores, nodes_hint, slurm_job_id, slurm_restart_count,
 *               resumed_from, start_step, global_batch, steps_per_epoch, total_steps, peak_lr,
 *               params, gemm, precision, onednn_isa, resumed_compute (what the step file resumed
 *               from was written with, when that differs from this run's: "openblas fp32"),
 *               versions {mpi, hdf5, openblas, onednn}, settings {the option table}; pretraining
 *               adds gflop_per_image, fine-tuning source, source_step, at_init, classes
 *   step        per optimiser step: step, epoch, loss, lr, grad_norm, images_per_s, step_s and the
 *               slowest rank's data_wait_s, compute_s, comm_s
 *   checkpoint  step, epoch, seconds
 *   eval        (fine-tuning) step, epoch, top1, top5, loss, images, seconds
 *   run_end     step, reason, signal, exit_code, seconds, peak_rss_gib, grad_allreduces
 * eval.jsonl: knn, linprobe, linprobe_epoch and finetune result lines. */
#ifndef SEMAIM_METRICS_H
#define SEMAIM_METRICS_H
#include <stdio.h>

/* the run kinds, in run_start's "kind" (a run_start without one is a pretraining run) */
#define MET_KIND_PRETRAIN "pretrain"
#define MET_KIND_FINETUNE "finetune"

#define MET_EVENT "event"
#define MET_RUN_START "run_start"
#define MET_STEP "step"
#define MET_CHECKPOINT "checkpoint"
#define MET_EVAL "eval"
#define MET_RUN_END "run_end"

/* run_start */
#define MET_KIND "kind"
#define MET_RANKS "ranks"
#define MET_THREADS "threads"
#define MET_NODES_HINT "nodes_hint"
#define MET_SLURM_JOB "slurm_job_id"
#define MET_GLOBAL_BATCH "global_batch"
#define MET_PARAMS "params"
#define MET_GFLOP_PER_IMAGE "gflop_per_image"
#define MET_GEMM "gemm"                   /* the backend: openblas, onednn */
#define MET_PRECISION "precision"         /* fp32, bf16, bf16-emulated */
#define MET_ONEDNN_ISA "onednn_isa"       /* what oneDNN dispatches to here ("none" without it) */
#define MET_RESUMED_COMPUTE "resumed_compute"
#define MET_VERSIONS "versions"
#define MET_SETTINGS "settings"
/* step */
#define MET_STEP_S "step_s"
#define MET_DATA_WAIT_S "data_wait_s"
#define MET_COMPUTE_S "compute_s"
#define MET_COMM_S "comm_s"

struct buf;
/* A line under construction: metrics_begin starts {"event": EVENT, metrics_num/_int/_str/_raw
 * append ", key: value" pairs, metrics_write closes the object and writes it with its newline
 * in one write (so a crash leaves at most one partial last line) and flushes. */
void metrics_begin(struct buf *b, const char *event);
void metrics_num(struct buf *b, const char *key, const char *fmt, double v);   /* fmt: "%.7g" etc. */
void metrics_int(struct buf *b, const char *key, long long v);
void metrics_str(struct buf *b, const char *key, const char *s);                /* NULL: null */
void metrics_raw(struct buf *b, const char *key, const char *json);             /* already JSON */
int metrics_write(struct buf *b, FILE *f);   /* 0, or -1 (the write failed) */
#endif
