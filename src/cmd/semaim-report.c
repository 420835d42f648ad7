/* semaim-report: scaling reports from the metrics of training runs, and results/README.md from
 * the benchmark records.
 *
 *   semaim-report --runs DIR --name NAME [--results results] [options]
 *       reads every metrics.jsonl under DIR and writes results/NAME/scaling.{csv,json,md,svg}
 *   semaim-report bench [--results results] [--out results/README.md]
 *       lists the figures of results/bench-*.json with their command, machine and date
 *   semaim-report run RUN [--out RUN/report] [--images 6] [--data SHARDS] [--checkpoint FILE]
 *       the report of one run folder: RUN/report/report.md, its plots and the semantic order drawn
 *
 * Exit codes: 0 written (warnings about skipped lines go to stderr), 1 cannot write the
 * output, 2 bad input (flags, no runs, an explicitly named benchmark file that cannot be used). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "semaim/checkpoint.h"
#include "semaim/options.h"
#include "semaim/report.h"

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "semaim-report: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* A report name becomes a folder under results/: one path component, nothing hidden. */
static int valid_name(const char *s) {
    if (!s || !*s || *s == '.' || strlen(s) > 200) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-+", *p)))
            return 0;
    return 1;
}

/* "10,25,100" -> values; returns the count or -1. */
static int parse_list(const char *s, double *v, int max) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !isfinite(x) || !(x > 0) || n == max) return -1;
        v[n++] = x;
        p = end;
        if (*p == ',') { p++; if (!*p) return -1; }
        else if (*p) return -1;
    }
    return n;
}

static int cmd_bench(int argc, char **argv) {
    const char *results = "results", *out = NULL;
    option_t opts[] = {
        {"results", OPT_STRING, &results, "folder of bench-*.json records", 0, 0, 0},
        {"out", OPT_STRING, &out, "the index to write; default RESULTS/README.md", 0, 0, 0},
    };
    err_t e = {0};
    const char *err = e.msg;
    int rc = options_parse(opts, 2, argc, argv, 2, &e);
    if (rc == 1) {
        printf("usage: semaim-report bench [--results DIR] [--out FILE]\n"
               "Writes RESULTS/README.md: every RESULTS/bench-*.json record (written by `make bench`) with its\n"
               "command, machine, date and figures, and the scaling reports under RESULTS.\noptions:\n");
        options_usage(stdout, opts, 2);
        return 0;
    }
    if (rc) return fail(2, "%s", err);
    char path[4200];
    if (!out) { snprintf(path, sizeof path, "%s/README.md", results); out = path; }
    int n = report_bench_readme(results, out, stderr, &e);
    if (n < 0) return fail(e.kind, "%s", err);
    printf("semaim-report: %s lists %d benchmark record%s\n", out, n, n == 1 ? "" : "s");
    return 0;
}

/* The model and images of the order pictures. An explicit --checkpoint or --data that does
 * not work is bad input (exit 2); the defaults that do not work leave the pictures out with a
 * note saying why. Returns 0 (O filled, or note set) or an exit code. */
static int load_orders(const char *dir, const char *ckpt, const char *data, const report_runlog_t *L, const char *split,
                       int images, report_orders_t *O, int *have, char *note, size_t nn, char *source, size_t ns) {
    *have = 0;
    model_t m;
    ckpt_state_t st;
    err_t e = {0};
    if (ckpt) {
        if (ckpt_load_model(ckpt, &m, &st, &e)) return fail(e.kind, "--checkpoint: %s", e.msg);
        snprintf(source, ns, "%s", ckpt);
    } else {
        int got = ckpt_load_model_latest(dir, &m, &st, source, ns, &e);
        if (got <= 0) {
            snprintf(note, nn, "%s", got == 0 ? "the run folder has no checkpoint yet" : e.msg);
            return 0;
        }
    }
    /* the images: --data, else the run's own shards, else its monitor's */
    const char *cand[2] = {data ? data : report_runlog_setting(L, "data"), data ? NULL : report_runlog_setting(L, "monitor-data")};
    int rc = 0;
    for (int i = 0; i < 2 && !*have; i++) {
        if (!cand[i] || !*cand[i] || !strcmp(cand[i], "-")) continue;
        if (report_orders_compute(O, &m, st.seed, cand[i], split, images, &e) == 0) *have = 1;
        else if (data) rc = fail(e.kind, "--data: %s", e.msg);
        else snprintf(note, nn, "no %s images: %.*s", split, (int)(nn > 40 ? nn - 40 : 0), e.msg);
    }
    if (!*have && !*note) snprintf(note, nn, "the run records no shards folder; pass --data SHARDS");
    model_free(&m);
    return rc;
}

static int cmd_run(int argc, char **argv) {
    const char *out = NULL, *data = NULL, *ckpt = NULL, *split = "val";
    int images = 6;
    long smooth = 0;
    option_t opts[] = {
        {"out", OPT_STRING, &out, "report folder; default RUN/report", 0, 0, 0},
        {"images", OPT_INT, &images, "validation images drawn with their orders; 0 = none", 0, 64, 0},
        {"data", OPT_STRING, &data, "shards of those images; default the run's --data, then its --monitor-data", 0, 0, 0},
        {"split", OPT_STRING, &split, "split of those images", 0, 0, 0},
        {"checkpoint", OPT_STRING, &ckpt, "weights of the pictures; default the run's newest checkpoint that verifies", 0, 0, 0},
        {"smooth", OPT_LONG, &smooth, "steps of the moving average of noisy curves; 0 = max(1, steps/50)", 0, 1e12, 0},
    };
    int nopt = sizeof opts / sizeof opts[0];
    err_t e = {0};
    const char *err = e.msg;
    int rc = options_parse(opts, nopt, argc, argv, 3, &e);
    if (rc == 1 || (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))) {
        printf("usage: semaim-report run RUN [--out DIR] [--images 6] [--data SHARDS] [--checkpoint FILE] [--smooth N]\n"
               "The report of one training run folder (semaim-train --out), finished, stopped or still going, however\n"
               "often it was requeued: RUN/report/report.md with SVG plots of the loss (raw and smoothed), lr,\n"
               "gradient norm, images/s, the data/compute/communication split and the k-NN monitor, a header table\n"
               "of the run, and pictures of the semantic order of a few validation images with the newest\n"
               "checkpoint; curves.csv and summary.json for scripts.\n"
               "Exit codes: 0 written, 1 cannot write, 2 bad input.\noptions:\n");
        options_usage(stdout, opts, nopt);
        return 0;
    }
    if (argc < 3 || argv[2][0] == '-') return fail(2, "run: give the run folder first (semaim-report run RUN [options])");
    if (rc) return fail(2, "%s", err);
    const char *dir = argv[2];
    char outdir[4200];
    snprintf(outdir, sizeof outdir, "%s", out ? out : "");
    if (!out) snprintf(outdir, sizeof outdir, "%s/report", dir);
    report_t *R = report_new(NULL);
    if (!R) return fail(1, "out of memory");
    R->log = stderr;
    report_runlog_t L;
    if (report_runlog_read(R, dir, &L, &e)) { report_free(R); return fail(e.kind, "%s", err); }
    long window = smooth > 0 ? smooth : report_smooth_window(L.nsteps);
    report_orders_t O = {0};
    int have = 0;
    char note[ERR_MSG_MAX + 64] = "", source[4200] = "";
    if (images > 0) {
        rc = load_orders(dir, ckpt, data, &L, split, images, &O, &have, note, sizeof note, source, sizeof source);
        if (rc) { report_runlog_free(&L); report_free(R); return rc; }
    } else snprintf(note, sizeof note, "--images 0");
    if (!have && images > 0) report_warn(R, "semantic-order pictures not drawn: %s", note);

    /* every file of the report, written at once */
    enum { MAXF = REPORT_PLOTS + 4 + 64 };
    const char *names[MAXF];
    char pngname[64][32];
    span_t dat[MAXF];
    buf_t png[64] = {{0}};
    int nf = 0;
    char *text[REPORT_PLOTS + 4] = {NULL};
    for (int p = 0; p < REPORT_PLOTS; p++) { names[nf] = report_plot_names[p]; text[nf++] = report_run_plot(&L, p, window); }
    names[nf] = "curves.csv"; text[nf++] = report_run_csv(&L, window);
    names[nf] = "summary.json"; text[nf++] = report_run_json(R, &L, have ? &O : NULL, note, source, window);
    if (have) { names[nf] = "orders.svg"; text[nf++] = report_orders_svg(&O); }
    names[nf] = "report.md"; text[nf++] = report_run_markdown(R, &L, have ? &O : NULL, note, source, window);
    for (int i = 0; i < nf; i++) dat[i] = (span_t){text[i], text[i] ? strlen(text[i]) : 0};
    int ntext = nf;
    for (int i = 0; have && i < O.n; i++) {
        snprintf(pngname[i], sizeof pngname[i], "order-%d.png", i);
        names[nf] = pngname[i];
        dat[nf++] = report_orders_png(&O, i, &png[i]) == 0 ? (span_t){png[i].s, png[i].len} : (span_t){NULL, 0};
    }
    rc = report_write_files(outdir, names, dat, nf, &e) ? e.kind : 0;
    if (!rc)
        for (int i = have ? O.n : 0; i < 64; i++) {   /* pictures of an earlier report with more images */
            char p[4300];
            snprintf(p, sizeof p, "%s/order-%d.png", outdir, i);
            unlink(p);
            if (i == 0 && !have) { snprintf(p, sizeof p, "%s/orders.svg", outdir); unlink(p); }
        }
    if (rc) fail(rc, "%s", err);
    else printf("semaim-report: run %s: %ld steps (%ld..%ld), %d restart%s, %ld monitor point%s, %d order picture%s, %ld line%s "
                "skipped -> %s/report.md\n", dir, L.nsteps, L.nsteps ? L.steps[0].step : 0, L.nsteps ? L.steps[L.nsteps - 1].step : 0,
                L.ninv - 1, L.ninv == 2 ? "" : "s", L.nmon, L.nmon == 1 ? "" : "s", have ? O.n : 0, have && O.n == 1 ? "" : "s",
                R->bad_lines, R->bad_lines == 1 ? "" : "s", outdir);
    for (int i = 0; i < ntext; i++) free(text[i]);
    for (int i = 0; i < 64; i++) buf_free(&png[i]);
    report_orders_free(&O);
    report_runlog_free(&L);
    report_free(R);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bench")) return cmd_bench(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "run")) return cmd_run(argc, argv);
    const char *runs = NULL, *name = NULL, *results = "results", *allreduce = NULL, *bandwidths = "10,25,100",
               *from = NULL;
    int ar_ranks = 2, pmin = 8, pmax = 1024, wmin = 2, boot = 1000;
    double latency_us = -1, wfrac = 0.1;
    long seed = 0x5ca1e;
    option_t opts[] = {
        {"runs", OPT_STRING, &runs, "folder of run folders (semaim-train --out folders, e.g. a scaling sweep) [required]", 0, 0, 0},
        {"name", OPT_STRING, &name, "report name: writes RESULTS/NAME/scaling.{csv,json,md,svg} [required]", 0, 0, 0},
        {"results", OPT_STRING, &results, "results folder", 0, 0, 0},
        {"warmup-min", OPT_INT, &wmin, "steps dropped at the start of every invocation, at least", 0, 1000000, 0},
        {"warmup-frac", OPT_DOUBLE, &wfrac, "... or this fraction of its steps, whichever is more", 0, 0.9, 0},
        {"bootstrap", OPT_INT, &boot, "resamples for a lone run's 95% interval; 0 = none", 0, 100000, 0},
        {"seed", OPT_LONG, &seed, "seed of the bootstrap", 0, 9.2e18, 0},
        {"allreduce", OPT_STRING, &allreduce,
         "ring all-reduce benchmark record for the projection; default RESULTS/bench-allreduce.json if present", 0, 0, 0},
        {"allreduce-ranks", OPT_INT, &ar_ranks, "ranks of that benchmark when the record does not say", 2, 10000000, 0},
        {"bandwidths", OPT_STRING, &bandwidths, "interconnect bandwidths to project for, Gb/s, comma-separated", 0, 0, 0},
        {"latency-us", OPT_DOUBLE, &latency_us, "all-reduce step latency alpha in microseconds; -1 = fitted", -1, 1e6, 0},
        {"project-min", OPT_INT, &pmin, "smallest projected rank count (powers of two from here)", 2, 1 << 24, 0},
        {"project-max", OPT_INT, &pmax, "largest projected rank count", 2, 1 << 24, 0},
        {"project-from", OPT_STRING, &from, "run whose compute time the projection uses; default the first weak series' "
                                            "baseline, else the run with the fewest ranks", 0, 0, 0},
    };
    int nopt = sizeof opts / sizeof opts[0];
    err_t e = {0};
    const char *err = e.msg;
    int rc = options_parse(opts, nopt, argc, argv, 1, &e);
    if (rc == 1) {
        printf("usage: semaim-report --runs DIR --name NAME [options]\n"
               "       semaim-report bench [--results DIR] [--out FILE]\n"
               "       semaim-report run RUN [options]   (the report of one run: semaim-report run --help)\n"
               "Scaling report from the metrics.jsonl of semaim-train runs: throughput (global batch / median\n"
               "steady-state step time), per-rank throughput, the time split, strong and weak scaling efficiency,\n"
               "a plot, and a projection to larger rank counts (a model) from the ring all-reduce benchmark.\n"
               "Folders named strong* / weak* form those series; other runs are grouped by their batches.\n"
               "Exit codes: 0 written, 1 cannot write, 2 bad input.\noptions:\n");
        options_usage(stdout, opts, nopt);
        return 0;
    }
    if (rc) return fail(2, "%s", err);
    if (!runs) return fail(2, "--runs is required (a folder of run folders)");
    if (!name) return fail(2, "--name is required (the report's folder under %s)", results);
    if (!valid_name(name)) return fail(2, "--name '%s': use letters, digits and . _ - + (not starting with a dot)", name);
    double gbit[16];
    int nbw = parse_list(bandwidths, gbit, 16);
    if (nbw < 1) return fail(2, "--bandwidths '%s': want 1 to 16 positive numbers (Gb/s) separated by commas", bandwidths);
    if (pmax < pmin) return fail(2, "--project-max is below --project-min");

    report_opts_t o;
    report_default_opts(&o);
    o.warmup_min = wmin;
    o.warmup_frac = wfrac;
    o.bootstrap = boot;
    o.seed = (uint64_t)seed;
    report_t *R = report_new(&o);
    if (!R) return fail(1, "out of memory");
    R->log = stderr;
    snprintf(R->name, sizeof R->name, "%s", name);
    size_t used = 0;
    for (int i = 0; i < argc && used + 2 < sizeof R->command; i++) {
        const char *a = i == 0 ? "bin/semaim-report" : argv[i];
        used += (size_t)snprintf(R->command + used, sizeof R->command - used, "%s%s", i ? " " : "", a);
    }
    if (report_add_folder(R, runs, &e) < 0) { report_free(R); return fail(e.kind, "%s", err); }
    report_analyse(R);

    char bench[4200];
    if (allreduce) snprintf(bench, sizeof bench, "%s", allreduce);
    else snprintf(bench, sizeof bench, "%s/bench-allreduce.json", results);
    struct stat st;
    if (!allreduce && stat(bench, &st)) {
        snprintf(R->proj.note, sizeof R->proj.note, "no ring all-reduce benchmark at %.300s (make bench, or "
                 "tests/bench.sh allreduce, writes it; or pass --allreduce FILE)", bench);
    } else if (report_load_allreduce(R, bench, ar_ranks, &e)) {
        if (allreduce) { report_free(R); return fail(e.kind, "%s", err); }
        report_warn(R, "projection not made: %s", err);
        snprintf(R->proj.note, sizeof R->proj.note, "%.400s", err);
    } else if (report_project(R, gbit, nbw, pmin, pmax, latency_us >= 0 ? latency_us * 1e-6 : -1, from, &e)) {
        if (from) { report_free(R); return fail(e.kind, "%s", err); }
        report_warn(R, "projection not made: %s", err);
        snprintf(R->proj.note, sizeof R->proj.note, "%.400s", err);
    }

    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", results, name);
    if (report_write_all(R, dir, &e)) { report_free(R); return fail(e.kind, "%s", err); }
    printf("semaim-report: %d run%s, %d series, %ld line%s skipped -> %s/scaling.{csv,json,md,svg}\n", R->nruns,
           R->nruns == 1 ? "" : "s", R->nseries, R->bad_lines, R->bad_lines == 1 ? "" : "s", dir);
    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        char label[256];
        report_series_label(R, s, label, sizeof label);
        printf("  %s:", label);
        for (int p = 0; p < S->npoints; p++)
            printf("  N=%d %.1f img/s E=%.3f", S->points[p].ranks, S->points[p].throughput, S->points[p].efficiency);
        printf("\n");
    }
    if (R->proj.have) {
        const report_proj_t *J = &R->proj;
        printf("  projection (model): alpha %.2f us, beta %.3g GB/s, t_c %.1f ms; E(%d) =", 1e6 * J->latency, J->beta / 1e9,
               1e3 * J->t_compute, J->ranks[J->nranks - 1]);
        for (int w = 0; w < J->nbw; w++) printf(" %.1f%% at %g Gb/s%s", 100 * J->eff[w][J->nranks - 1], J->gbit[w], w + 1 < J->nbw ? "," : "");
        printf("\n");
    } else printf("  projection: not made (%s)\n", R->proj.note);
    report_free(R);
    return 0;
}
