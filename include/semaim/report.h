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
#include "core/buf.h"
#include "core/crc.h"
#include "semaim/err.h"
#include "semaim/featfile.h"
#include "semaim/model.h"
#include "semaim/orders.h"

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

/* ---- The run report (semaim-report run DIR): one run folder's metrics.jsonl read as one
 * continuous run, however often it was resumed or requeued. A line for a step (or a monitor
 * point) supersedes every line kept for that step or a later one: a requeued job that resumed
 * from an older checkpoint repeats steps, and the newer lines are the run's. Lines that are
 * not JSON (the cut last line of a run that is still writing, or was killed) are warned about
 * and skipped, like every unusable line. */
typedef struct {
    long step;
    double epoch, loss, lr, grad_norm, images_per_s, step_s, data_s, compute_s, comm_s;
} report_step_line_t;
typedef struct {
    long step, bank, queries;
    double epoch, top1[FEATSET_KINDS], top5[FEATSET_KINDS], seconds;   /* per readout of featset_kinds */
} report_monitor_t;
typedef struct {
    long line, start_step, last_step;          /* its run_start's line; the last step it logged */
    double time;                               /* unix time of its start (0 if not recorded) */
    int ranks, threads, restart_count;
    long global_batch;
    char job[64], resumed_from[512];
    int ended;                                 /* a run_end line follows */
    char reason[64];
    int exit_code;
    double seconds, peak_rss_gib;              /* from run_end */
    double busy_s;                             /* its step, monitor and checkpoint seconds */
} report_invocation_t;
typedef struct {
    char *dir;
    report_invocation_t *inv;
    int ninv, invcap;
    report_step_line_t *steps;                 /* by increasing step */
    long nsteps, stepcap;
    report_monitor_t *mon;                     /* by increasing step */
    long nmon, moncap;
    long superseded;                           /* step and monitor lines a later one replaced */
    /* from the last run_start */
    char kind[32], model[512], gemm[32], precision[32], host[256], cpu[256], mpi[512], hdf5[64], openblas[512];
    long params, total_steps, steps_per_epoch;
    double gflop_per_image, peak_lr;
    char **set_key, **set_val;                 /* its settings, in file order */
    int nset;
} report_runlog_t;

/* Reads DIR/metrics.jsonl (warnings go through R). 0, or -1 with err: no such file, no
 * run_start line (ERR_INPUT), out of memory (ERR_RUNTIME). */
int report_runlog_read(report_t *R, const char *dir, report_runlog_t *L, err_t *err);
void report_runlog_free(report_runlog_t *L);
/* The value of setting key in the last run_start ("" if absent). */
const char *report_runlog_setting(const report_runlog_t *L, const char *key);
/* Wall time: run_end's seconds of each invocation, or its busy seconds where it has no
 * run_end (a lower bound); *complete says whether every invocation had one. */
double report_runlog_wall(const report_runlog_t *L, int *complete);
/* Centred moving average of x[0..n) over `window` points (clipped at the ends; odd windows
 * centre exactly), NaNs left out of the sums. */
void report_smooth(const double *x, long n, long window, double *out);
/* The smoothing window of the report for n points: max(1, n/50), odd. */
long report_smooth_window(long n);

/* ---- The semantic order, drawn: for the first n images of a split (eval transform), with a
 * model's weights, the permutation pass's signal (encoder_order_signal: the model's
 * m->tgt.signal, for a run's checkpoint the run's), the centre patch it picks and the prediction orders compute_order gives (semantic, raster,
 * stochastic; the order noise of the run's seed, epoch 0). No MPI. */
enum { REPORT_ORDERS = 3 };
extern const order_t report_order_kinds[REPORT_ORDERS];   /* semantic, raster, stochastic */
/* What a signal is called in captions ("cls similarity", "mean-token similarity", "cls attention")
 * and what it is, as a sentence's object. */
const char *report_signal_label(int signal);
const char *report_signal_sentence(int signal);
typedef struct {
    int n, S, P, G, L;
    int64_t *ids;
    int32_t *labels;
    uint8_t *rgb;          /* [n][S][S][3]: the model's input images, back in 8 bits */
    float *sim;            /* [n][L], the signal */
    int signal;            /* SIGNAL_* */
    int *center;           /* [n] */
    int *ranks;            /* [REPORT_ORDERS][n][L], 0 = predicted first */
} report_orders_t;
int report_orders_compute(report_orders_t *O, model_t *m, uint64_t seed, const char *data, const char *split, int n,
                          err_t *err);
void report_orders_free(report_orders_t *O);
/* Geometry of a picture: panels of S·zoom pixels (zoom makes them at least 128 wide), `gap`
 * white pixels apart; panel k starts at x = k·(panel + gap). */
void report_orders_layout(const report_orders_t *O, int *zoom, int *panel, int *gap);
enum { REPORT_PANEL_IMAGE = 0, REPORT_PANEL_SIM = 1, REPORT_PANEL_ORDER0 = 2, REPORT_PANELS = 5 };
/* The picture of image i (malloc'd RGB, *w × *h): the image and the cls-similarity map (most
 * similar brightest), both with the centre patch outlined, then each order as a heat map over
 * the patch grid, first predicted brightest: patch p of order k has the colour
 * report_heat_rgb(1 − rank/(L−1)). */
uint8_t *report_orders_picture(const report_orders_t *O, int i, int *w, int *h);
/* That picture as a PNG file's bytes appended to out; 0, or -1 (out of memory). */
int report_orders_png(const report_orders_t *O, int i, buf_t *out);
/* The heat colour map, t in [0, 1], black (0) through purple, red and orange to pale yellow
 * (1): luminance grows with t. */
void report_heat_rgb(double t, uint8_t rgb[3]);

/* The run report's plots, each a self-contained SVG (NULL when out of memory): curves over
 * steps with every restart of the run marked, smoothed with report_smooth over `window`
 * steps where the raw curve is noisy. */
enum { REPORT_PLOT_LOSS, REPORT_PLOT_LR, REPORT_PLOT_GRAD_NORM, REPORT_PLOT_THROUGHPUT, REPORT_PLOT_TIME_SPLIT,
       REPORT_PLOT_KNN, REPORT_PLOTS };
extern const char *const report_plot_names[REPORT_PLOTS];   /* file names: "loss.svg", ... */
char *report_run_plot(const report_runlog_t *L, int plot, long window);
/* The pictures of the orders as one SVG: a row per image (the picture's PNG embedded), column
 * titles and a caption per image. NULL when out of memory. */
char *report_orders_svg(const report_orders_t *O);

/* The run report's text files (NULL when out of memory): report.md (the header table, the
 * plots, the monitor's points and cost, the pictures or orders_note saying why there are none,
 * every setting, the warnings), curves.csv (every kept step with the smoothed loss) and
 * summary.json (the numbers, for scripts). O may be NULL. */
char *report_run_markdown(const report_t *R, const report_runlog_t *L, const report_orders_t *O, const char *orders_note,
                          const char *orders_source, long window);
char *report_run_csv(const report_runlog_t *L, long window);
char *report_run_json(const report_t *R, const report_runlog_t *L, const report_orders_t *O, const char *orders_note,
                      const char *orders_source, long window);

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
