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
 *   checkpoint_skipped  a due checkpoint not written, training goes on: step, reason ("low
 *               disk space": free_bytes < need_bytes; "write failed": error), the next
 *               interval tries again
 *   eval        (fine-tuning) step, epoch, top1, top5, loss, images, seconds
 *   monitor     (pretraining with --monitor-data) the k-NN monitor of the weights after `step`
 *               steps (0: at initialisation, before the first step): step, epoch, bank,
 *               queries, k, temperature, classes, and per readout R of featset_kinds (cls,
 *               mean, gap) knn_top1_R and knn_top5_R in percent; seconds (features_s + knn_s)
 *   run_end     step, reason, signal, exit_code, seconds, peak_rss_gib, grad_allreduces,
 *               metrics_lines_lost (lines the disk refused)
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
#define MET_CHECKPOINT_SKIPPED "checkpoint_skipped"
#define MET_EVAL "eval"
#define MET_MONITOR "monitor"
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
/* checkpoint_skipped, run_end */
#define MET_REASON "reason"
#define MET_LINES_LOST "metrics_lines_lost"
#define MET_TIME "time"
#define MET_START_STEP "start_step"
#define MET_TOTAL_STEPS "total_steps"
#define MET_STEPS_PER_EPOCH "steps_per_epoch"
#define MET_PEAK_LR "peak_lr"
#define MET_RESUMED_FROM "resumed_from"
#define MET_RESTART_COUNT "slurm_restart_count"
#define MET_HOST "host"
#define MET_CPU "cpu"
/* step */
#define MET_EPOCH "epoch"
#define MET_LOSS "loss"
#define MET_LR "lr"
#define MET_GRAD_NORM "grad_norm"
#define MET_IMAGES_PER_S "images_per_s"
#define MET_STEP_S "step_s"
#define MET_DATA_WAIT_S "data_wait_s"
#define MET_COMPUTE_S "compute_s"
#define MET_COMM_S "comm_s"
/* monitor (and step) */
#define MET_MON_BANK "bank"
#define MET_MON_QUERIES "queries"
#define MET_MON_K "k"
#define MET_MON_TEMPERATURE "temperature"
#define MET_MON_CLASSES "classes"
#define MET_MON_TOP1 "knn_top1_"   /* + readout name */
#define MET_MON_TOP5 "knn_top5_"
#define MET_SECONDS "seconds"
#define MET_FEATURES_S "features_s"
#define MET_KNN_S "knn_s"
/* run_end */
#define MET_EXIT_CODE "exit_code"
#define MET_PEAK_RSS_GIB "peak_rss_gib"

struct buf;
/* A line under construction: metrics_begin starts {"event": EVENT, metrics_num/_int/_str/_raw
 * append ", key: value" pairs, metrics_write closes the object and appends it with its newline
 * in one write(2) (so a crash leaves at most one partial last line); when the write fails
 * (disk full) the part written is cut off again and it returns -1 with errno: whole lines or
 * none. The file must be opened for appending and written only through metrics_write. */
void metrics_begin(struct buf *b, const char *event);
void metrics_num(struct buf *b, const char *key, const char *fmt, double v);   /* fmt: "%.7g" etc. */
void metrics_int(struct buf *b, const char *key, long long v);
void metrics_str(struct buf *b, const char *key, const char *s);                /* NULL: null */
void metrics_raw(struct buf *b, const char *key, const char *json);             /* already JSON */
int metrics_write(struct buf *b, FILE *f);   /* 0, or -1 (the write failed) */
#endif
