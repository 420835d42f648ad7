/* Scaling reports from the metrics of semaim-train runs (bin/semaim-report), and the index of
 * benchmark records in results/README.md.
 *
 * A run is what one metrics.jsonl holds for one configuration: its run_start lines (one per
 * invocation; a resumed run appends) and step lines. Warm-up: of each invocation's step lines
 * the first max(warmup_min, ceil(warmup_frac x n)) are dropped (start-up, page faults, the
 * first all-reduce connecting); the rest are the steady state. Per run, the medians of the
 * steady-state step, data-wait, compute and communication seconds (each already the slowest
 * rank's) describe it, and throughput = global batch / median step seconds.
 *
 * Runs are grouped into series: strong (same global batch, growing ranks) and weak (same
 * per-rank batch), either from the folder name (a path component starting with "strong" or
 * "weak") or, for other names, inferred from the batches. Runs of one series with the same
 * rank count are repeats: the point's step time is the median of the repeats' medians, and
 * the throughput interval is [min, max] over the repeats; a lone run gets a percentile
 * bootstrap 95% interval of its median instead. Against the series' smallest rank count N0:
 * strong E(N) = X(N) / ((N/N0) X(N0)), weak E(N) = t(N0) / t(N); speedup = X(N) / X(N0).
 *
 * The projection is a model, not a measurement: ring all-reduce time
 * T_ar(N) = 2(N-1) alpha + 2(N-1)/N x bytes / beta with alpha fitted to the ring benchmark
 * (results/bench-allreduce.json) and beta the interconnect bandwidth asked for; predicted
 * weak-scaling efficiency E(N) = t_c / (t_c + T_ar(N)) where t_c is the measured compute
 * seconds per step of the reference run and bytes = 4 x parameters (fp32 gradients, one
 * all-reduce per step after the backward pass, as semaim-train does). */
#ifndef SEMAIM_REPORT_H
#define SEMAIM_REPORT_H
#include <stdint.h>
#include <stdio.h>
#include "core/crc.h"
#include "semaim/err.h"

enum { REPORT_ANY = 0, REPORT_STRONG = 1, REPORT_WEAK = 2 };
enum { REPORT_IV_NONE = 0, REPORT_IV_REPEATS = 1, REPORT_IV_BOOTSTRAP = 2 };

typedef struct {
    int warmup_min;        /* steps always dropped at the start of an invocation (2) */
    double warmup_frac;    /* ... or this fraction of its steps, whichever is more (0.1) */
    int bootstrap;         /* resamples for a lone run's interval (1000); 0 = no interval */
    uint64_t seed;         /* of the bootstrap, so reports are reproducible */
} report_opts_t;

typedef struct { double step_s, wait_s, compute_s, comm_s; } report_step_t;

typedef struct {
    char *path;            /* the metrics.jsonl */
    char *name;            /* run folder relative to the folder of runs; "#k" for a file's k-th config */
    int kind_hint;         /* from the folder name, REPORT_ANY if it says nothing */
    int ranks, threads;
    long global_batch, batch;          /* batch: per rank */
    long params;
    double gflop_per_image;
    char *config;          /* what runs of one series share (model, threads, order, all-reduce) */
    char *model;           /* the same, for people */
    char *nodes;           /* nodes_hint values seen, comma-separated */
    char *slurm_jobs;      /* Slurm job ids seen, comma-separated ("" outside Slurm) */
    char *version_mpi, *version_hdf5, *version_openblas;
    int invocations;       /* run_start lines */
    long step_lines;       /* step lines accepted, warm-up included */
    report_step_t *steps;  /* the steady-state steps */
    long nsteps, cap;
    double step_s, wait_s, compute_s, comm_s, throughput;   /* medians; set by report_analyse */
} report_run_t;

typedef struct {
    int ranks, nruns;
    int *runs;             /* indices into report_t.runs */
    long steps;            /* steady-state steps over the repeats */
    double step_s, wait_s, compute_s, comm_s;
    double throughput, lo, hi;         /* images/s and its interval */
    int interval;          /* REPORT_IV_* */
    double speedup, efficiency;
} report_point_t;

typedef struct {
    int kind;              /* REPORT_STRONG or REPORT_WEAK */
    int inferred;          /* 1: from the batches, 0: from folder names */
    long batch_key;        /* global batch (strong) or per-rank batch (weak) */
    int run0;              /* a run of the series, for its config and model text */
    int npoints;
    report_point_t *points;   /* by increasing ranks; points[0] is N0 */
} report_series_t;

typedef struct {
    int have;              /* 0: no projection (note says why) */
    char note[512];
    char source[1024];     /* the benchmark file */
    int bench_ranks;
    int npts;
    double bytes[64], seconds[64];     /* the benchmark points the fit used */
    double alpha, beta;    /* fitted latency (s) and bandwidth (bytes/s) */
    double fit_max_rel_err;
    double latency;        /* alpha used for the projection (fitted unless overridden) */
    int latency_given;
    double t_compute;      /* s per step of the reference run */
    long batch;            /* its per-rank batch */
    double grad_bytes;     /* bytes all-reduced per step */
    int ref_run;
    int nbw;
    double gbit[16];       /* asked bandwidths in Gb/s; row nbw is beta as measured */
    int nranks;
    int ranks[32];
    double eff[17][32], tput[17][32], t_ar[17][32];
} report_proj_t;

typedef struct {
    report_opts_t opt;
    FILE *log;             /* warnings are also printed here as they happen (may be NULL) */
    report_run_t *runs;
    int nruns, runs_cap;
    report_series_t *series;
    int nseries;
    char **warn;           /* the first warnings, kept for the report */
    int nwarn, nwarn_total, warn_cap;
    long bad_lines;        /* metrics lines skipped */
    int *in_series;        /* per run: how many series use it (after report_analyse) */
    report_proj_t proj;
    char name[256];
    char created[32];      /* UTC time the report was made */
    char runs_dir[1024];
    char command[2048];    /* how the report was made, for the record */
} report_t;

void report_default_opts(report_opts_t *o);
report_t *report_new(const report_opts_t *o);
void report_free(report_t *R);
void report_warn(report_t *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads one metrics.jsonl. Lines that are not JSON objects, are truncated or lack the fields
 * a report needs are warned about with file and line and skipped. Returns the number of runs
 * with steady-state steps it added, or -1 (err says why) if the file cannot be read. */
int report_add_metrics(report_t *R, const char *path, const char *name, int kind_hint, err_t *err);
/* Adds every metrics.jsonl under dir (recursively; hidden folders skipped, symbolic links to
 * folders followed once); run folders without metrics are warned about. Returns the number of runs
 * added, or -1 with err: not a folder, empty, no metrics, no usable steps. */
int report_add_folder(report_t *R, const char *dir, err_t *err);
/* Per-run medians, series, points, speedup and efficiency. */
void report_analyse(report_t *R);

/* Reads the ring all-reduce figures ("allreduce_ring_busbw_<size>" in GB/s; the rank count from
 * "allreduce_ranks" if present, else ranks_default) and fits alpha and beta. */
int report_load_allreduce(report_t *R, const char *bench_json, int ranks_default, err_t *err);
/* Fills R->proj for powers of two from nmin to nmax ranks and the given bandwidths (Gb/s);
 * latency_s < 0 means the fitted alpha. Needs report_analyse and report_load_allreduce. */
int report_project(report_t *R, const double *gbit, int nbw, int nmin, int nmax, double latency_s,
                   const char *ref_name, err_t *err);

/* The four outputs as NUL-terminated malloc'd text (NULL when out of memory). */
char *report_csv(const report_t *R);
char *report_json(const report_t *R);
char *report_markdown(const report_t *R);
char *report_svg(const report_t *R);
/* Writes dir/scaling.{csv,json,md,svg} with report_write_files. */
int report_write_all(const report_t *R, const char *dir, err_t *err);
/* Writes the n files dir/names[i] (dir made if need be): all to temporary names first, renamed
 * over the old ones only when every one is complete (core/files.h). A NULL data[i].p means
 * making that file ran out of memory. 0, or -1 with err (ERR_RUNTIME). */
int report_write_files(const char *dir, const char *const *names, const span_t *data, int n, err_t *err);

/* results/README.md from results/bench-*.json: each record's figures with its command, machine
 * and date, and links to the scaling reports under results/. Bad records are warned about on
 * log and listed as skipped. Returns the number of records listed, or -1 with err. */
int report_bench_readme(const char *results_dir, const char *out_path, FILE *log, err_t *err);

/* Shared by the writers: a series' name ("strong, global batch 64"), and text made safe for
 * tables and SVG (control characters and bytes that are not UTF-8 become '?'). */
void report_series_label(const report_t *R, int s, char *out, size_t n);
void report_clean_text(const char *s, char *out, size_t n);

/* Statistics, exposed for the tests. */
double report_median(const double *x, long n);   /* mean of the middle two for even n; NAN for n 0 */
void report_bootstrap_median(const double *x, long n, int resamples, uint64_t seed, double *lo, double *hi);
/* Least squares in relative error of t = 2(N-1) alpha + 2(N-1)/N bytes / beta; alpha >= 0.
 * Returns 0, or -1 if the points do not determine a positive bandwidth. */
int report_fit_allreduce(const double *bytes, const double *seconds, int n, int ranks, double *alpha, double *beta);
double report_allreduce_time(int ranks, double bytes, double alpha, double beta);
#endif
