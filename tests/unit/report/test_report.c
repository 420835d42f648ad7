/* The scaling report on synthetic metrics with known answers: warm-up rule, exact strong and
 * weak efficiencies, repeats and their interval, inferred series, resumed runs; malformed
 * and truncated lines warned about with file and line and skipped; folder errors; the
 * all-reduce fit and the projection formula; the four outputs and the bench index. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/report.h"

static char root[] = "/tmp/semaim-report-XXXXXX";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { printf("cannot write %s\n", path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mkdirs(const char *fmt, ...) {
    char p[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    file_mkdirs(p);
}

static void start_line(FILE *f, int ranks, long gbatch, int threads, const char *job) {
    fprintf(f, "{\"event\": \"run_start\", \"time\": 0, \"ranks\": %d, \"threads\": %d, \"nodes_hint\": \"1\", "
               "\"slurm_job_id\": %s%s%s, \"global_batch\": %ld, \"params\": 1000000, \"gflop_per_image\": 0.5, "
               "\"versions\": {\"mpi\": \"Open MPI v4.1.4\", \"hdf5\": \"1.10.8\", \"openblas\": \"OpenBLAS 0.3.21\"}, "
               "\"settings\": {\"preset\": \"tiny\", \"image\": 32, \"order\": \"semantic\", \"allreduce\": \"ring\"}}\n",
            ranks, threads, job ? "\"" : "", job ? job : "null", job ? "\"" : "", gbatch);
}

static void step_line(FILE *f, int step, double t) {
    fprintf(f, "{\"event\": \"step\", \"step\": %d, \"epoch\": 0, \"loss\": 1, \"lr\": 0.001, \"grad_norm\": 1, "
               "\"images_per_s\": 1, \"step_s\": %.17g, \"data_wait_s\": %.17g, \"compute_s\": %.17g, \"comm_s\": %.17g}\n",
            step, t, 0.125 * t, 0.5 * t, 0.375 * t);
}

/* A run folder: two slow warm-up steps, then 6 x 0.9t, 6 x t, 6 x 1.1t (median exactly t). */
static void make_run(const char *folder, int ranks, long gbatch, double t, const char *job) {
    char p[4096];
    mkdirs("%s/%s", root, folder);
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", root, folder);
    FILE *f = fopen(p, "w");
    start_line(f, ranks, gbatch, 1, job);
    int s = 1;
    step_line(f, s++, 50 * t);
    step_line(f, s++, 40 * t);
    for (int i = 0; i < 18; i++) step_line(f, s++, i < 6 ? 0.9 * t : i < 12 ? t : 1.1 * t);
    fprintf(f, "{\"event\": \"run_end\", \"step\": %d, \"reason\": \"done\"}\n", s - 1);
    fclose(f);
}

static int has_warning(const report_t *R, const char *needle) {
    for (int i = 0; i < R->nwarn; i++) if (strstr(R->warn[i], needle)) return 1;
    return 0;
}

static const report_series_t *find_series(const report_t *R, int kind, long key) {
    for (int s = 0; s < R->nseries; s++)
        if (R->series[s].kind == kind && R->series[s].batch_key == key) return &R->series[s];
    return NULL;
}

static report_t *quiet_report(void) {
    report_opts_t o;
    report_default_opts(&o);
    report_t *R = report_new(&o);
    R->log = NULL;
    return R;
}

static void test_stats(void) {
    test_begin("report_median_and_bootstrap");
    double odd[] = {5, 1, 3}, even[] = {4, 1, 3, 2};
    CHECK(report_median(odd, 3) == 3, "odd median %g", report_median(odd, 3));
    CHECK(report_median(even, 4) == 2.5, "even median %g", report_median(even, 4));
    CHECK(isnan(report_median(odd, 0)), "empty median is NaN");
    double x[101], lo, hi, lo2, hi2;
    for (int i = 0; i < 101; i++) x[i] = 1.0 + 0.01 * ((i * 37) % 101);
    double m = report_median(x, 101);
    report_bootstrap_median(x, 101, 500, 7, &lo, &hi);
    CHECK(lo < m && m < hi && lo >= 1.0 && hi <= 2.0, "interval %g..%g around %g", lo, hi, m);
    report_bootstrap_median(x, 101, 500, 7, &lo2, &hi2);
    CHECK(lo == lo2 && hi == hi2, "same seed, same interval");
    double c[7] = {2, 2, 2, 2, 2, 2, 2};
    report_bootstrap_median(c, 7, 100, 1, &lo, &hi);
    CHECK(lo == 2 && hi == 2, "constant data: %g..%g", lo, hi);
    /* the selection-based median inside the bootstrap agrees with sorting on even counts */
    double e2[4] = {10, 10, 20, 20};
    report_bootstrap_median(e2, 4, 400, 3, &lo, &hi);
    CHECK(lo >= 10 && hi <= 20 && lo < hi, "even-count resamples %g..%g", lo, hi);
    test_end();
}

static void test_fit(void) {
    test_begin("report_allreduce_fit_recovers_alpha_beta");
    for (int N = 2; N <= 8; N *= 2) {
        double alpha = 4e-6, beta = 7.5e9, bytes[9], t[9], a, b;
        for (int i = 0; i < 9; i++) {
            bytes[i] = 1024.0 * pow(4, i);
            t[i] = report_allreduce_time(N, bytes[i], alpha, beta);
        }
        CHECK(report_fit_allreduce(bytes, t, 9, N, &a, &b) == 0, "fit N=%d", N);
        CHECK(fabs(a / alpha - 1) < 1e-9 && fabs(b / beta - 1) < 1e-9, "N=%d: alpha %g beta %g", N, a, b);
    }
    double bytes[3] = {1e3, 1e6, 1e9}, t[3], a, b;
    for (int i = 0; i < 3; i++) t[i] = bytes[i] / 2e9;   /* no latency at all */
    CHECK(report_fit_allreduce(bytes, t, 3, 2, &a, &b) == 0 && a < 1e-15 && fabs(b / 2e9 - 1) < 1e-9, "zero latency: %g %g", a, b);
    double tneg[3] = {1e-3, 1e-4, 1e-5};   /* bigger messages faster: no positive bandwidth */
    CHECK(report_fit_allreduce(bytes, tneg, 3, 2, &a, &b) != 0, "decreasing times refused");
    CHECK(report_fit_allreduce(bytes, t, 3, 1, &a, &b) != 0, "one rank refused");
    CHECK(report_allreduce_time(1, 1e9, 1, 1) == 0, "one rank: no all-reduce");
    CHECK(fabs(report_allreduce_time(4, 8e6, 1e-5, 1e9) - (6e-5 + 1.5 * 8e-3)) < 1e-15, "formula at N=4");
    test_end();
}

static void test_malformed(void) {
    test_begin("report_malformed_lines_warned_with_file_and_line");
    char p[4096];
    mkdirs("%s/bad", root);
    snprintf(p, sizeof p, "%s/bad/metrics.jsonl", root);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"event\": \"step\", \"step_s\": 1, \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n"); /* 1: before run_start */
    start_line(f, 2, 16, 1, "77");                                                                     /* 2 */
    for (int i = 0; i < 12; i++) step_line(f, i + 1, 0.5);                                            /* 3..14 */
    fprintf(f, "this is not json\n");                                                                  /* 15 */
    fprintf(f, "[1, 2, 3]\n");                                                                         /* 16 */
    fprintf(f, "{\"step_s\": 1}\n");                                                                   /* 17 */
    fprintf(f, "{\"event\": \"step\", \"step_s\": \"fast\", \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n"); /* 18 */
    fprintf(f, "{\"event\": \"step\", \"step_s\": -1, \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n");     /* 19 */
    fprintf(f, "{\"event\": \"step\", \"step_s\": NaN, \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n");    /* 20 */
    fprintf(f, "{\"event\": \"step\", \"step_s\": 1e999, \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n");  /* 21 */
    fprintf(f, "\n");                                                                                   /* 22: blank, ignored */
    fprintf(f, "{\"event\": \"checkpoint\", \"step\": 12}\n");                                         /* 23: fine */
    fprintf(f, "%s", "{\"event\": \"step\", \"step\": 13, \"step_s\": 0.5, \"data_w");               /* 24: cut */
    fclose(f);
    report_t *R = quiet_report();
    err_t err_v = {0}; char *err = err_v.msg;
    int n = report_add_metrics(R, p, "bad", REPORT_ANY, &err_v);
    CHECK(n == 1, "one run added, got %d (%s)", n, err);
    CHECK(R->bad_lines == 9, "9 lines skipped, got %ld", R->bad_lines);
    const int lines[] = {1, 15, 16, 17, 18, 19, 20, 21, 24};
    for (int i = 0; i < 9; i++) {
        char needle[4200];
        snprintf(needle, sizeof needle, "%s:%d: ", p, lines[i]);
        CHECK(has_warning(R, needle), "warning for line %d", lines[i]);
    }
    snprintf(err, sizeof err_v.msg, "%s:24: not JSON (truncated line", p);
    CHECK(has_warning(R, err), "last line reported as truncated");
    CHECK(!has_warning(R, ":22:") && !has_warning(R, ":23:"), "blank and checkpoint lines are not warnings");
    /* 12 step lines, warm-up max(2, ceil(1.2)) = 2 */
    CHECK(R->nruns == 1 && R->runs[0].nsteps == 10 && R->runs[0].step_lines == 12, "steady steps %ld",
          R->nruns ? R->runs[0].nsteps : -1);
    CHECK(R->nruns == 1 && !strcmp(R->runs[0].slurm_jobs, "77") && R->runs[0].batch == 8, "job id and per-rank batch");
    report_free(R);

    /* a run_start the report cannot use: its steps cannot be attributed and are skipped too */
    snprintf(p, sizeof p, "%s/bad/metrics2.jsonl", root);
    write_file(p, "{\"event\": \"run_start\", \"ranks\": 3, \"threads\": 1, \"global_batch\": 16}\n"
                  "{\"event\": \"step\", \"step_s\": 1, \"data_wait_s\": 0, \"compute_s\": 1, \"comm_s\": 0}\n");
    R = quiet_report();
    n = report_add_metrics(R, p, "bad2", REPORT_ANY, &err_v);
    CHECK(n == 0 && R->nruns == 0 && R->bad_lines == 2, "nothing usable: n %d, skipped %ld", n, R->bad_lines);
    CHECK(has_warning(R, ":1: run_start: \"global_batch\" is not a multiple of \"ranks\""), "bad run_start named");
    CHECK(has_warning(R, ":2: step line without a valid run_start"), "orphan step named");
    report_free(R);

    /* binary garbage and an unreadable path: warnings or an error, never a crash */
    snprintf(p, sizeof p, "%s/bad/garbage.jsonl", root);
    f = fopen(p, "w");
    for (int i = 0; i < 3000; i++) fputc((i * 131 + 7) % 256, f);
    fputs("\n{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n", f);
    fclose(f);
    R = quiet_report();
    n = report_add_metrics(R, p, "garbage", REPORT_ANY, &err_v);
    CHECK(n == 0 && R->bad_lines >= 2, "garbage: n %d, skipped %ld", n, R->bad_lines);
    snprintf(p, sizeof p, "%s/bad/missing.jsonl", root);
    CHECK(report_add_metrics(R, p, "missing", REPORT_ANY, &err_v) == -1 && strstr(err, "missing.jsonl: cannot open"),
          "missing file: %s", err);
    report_free(R);
    test_end();
}

static void test_exact_scaling(void) {
    test_begin("report_exact_strong_and_weak_efficiencies");
    mkdirs("%s/sweep", root);
    /* strong, global batch 64: t = 1, 0.625, 0.4 (three repeats 0.38/0.4/0.42), 0.25 */
    make_run("sweep/strong-np1", 1, 64, 1.0, "101");
    make_run("sweep/strong-np2", 2, 64, 0.625, "102");
    make_run("sweep/strong-np4", 4, 64, 0.4, "104");
    make_run("sweep/strong-np4-r2", 4, 64, 0.38, "204");
    make_run("sweep/strong-np4-r3", 4, 64, 0.42, "304");
    make_run("sweep/strong-np8", 8, 64, 0.25, "108");
    /* weak, 16 per rank: t = 0.5, 0.625, 0.8, 1.0 */
    make_run("sweep/weak-np1", 1, 16, 0.5, NULL);
    make_run("sweep/weak-np2", 2, 32, 0.625, NULL);
    make_run("sweep/weak-np4", 4, 64, 0.8, NULL);
    make_run("sweep/weak-np8", 8, 128, 1.0, NULL);
    char dir[4096];
    err_t err_v = {0}; char *err = err_v.msg;
    snprintf(dir, sizeof dir, "%s/sweep", root);
    report_t *R = quiet_report();
    int n = report_add_folder(R, dir, &err_v);
    CHECK(n == 10, "10 runs, got %d (%s)", n, err);
    report_analyse(R);
    CHECK(R->nseries == 2 && R->nwarn_total == 0, "2 series, %d warnings", R->nwarn_total);
    const report_series_t *S = find_series(R, REPORT_STRONG, 64), *W = find_series(R, REPORT_WEAK, 16);
    CHECK(S && W && !S->inferred && !W->inferred, "named series found");
    if (S && W && S->npoints == 4 && W->npoints == 4) {
        const double es[4] = {1, 0.8, 0.625, 0.5}, ew[4] = {1, 0.8, 0.625, 0.5}, xs[4] = {64, 102.4, 160, 256};
        for (int p = 0; p < 4; p++) {
            const report_point_t *P = &S->points[p], *Q = &W->points[p];
            CHECK(P->ranks == 1 << p && Q->ranks == 1 << p, "ranks order");
            CHECK(fabs(P->efficiency - es[p]) < 1e-12, "strong E(%d) = %.15g, want %g", P->ranks, P->efficiency, es[p]);
            CHECK(fabs(Q->efficiency - ew[p]) < 1e-12, "weak E(%d) = %.15g, want %g", Q->ranks, Q->efficiency, ew[p]);
            CHECK(fabs(P->throughput - xs[p]) < 1e-9, "strong X(%d) = %.15g", P->ranks, P->throughput);
            CHECK(fabs(P->speedup - xs[p] / 64) < 1e-12, "speedup");
            CHECK(fabs(Q->throughput / Q->ranks - 16 / Q->step_s) < 1e-9, "weak per-rank throughput");
            CHECK(fabs(P->compute_s - 0.5 * P->step_s) < 1e-12 && fabs(P->comm_s - 0.375 * P->step_s) < 1e-12 &&
                      fabs(P->wait_s - 0.125 * P->step_s) < 1e-12, "time split of N=%d", P->ranks);
            /* 20 step lines: max(2, ceil(2.0)) = 2 dropped, the slow ones */
            CHECK(P->steps == 18L * P->nruns, "steady steps %ld", P->steps);
        }
        const report_point_t *P4 = &S->points[2];
        CHECK(P4->nruns == 3 && P4->interval == REPORT_IV_REPEATS, "three repeats at N=4");
        CHECK(fabs(P4->lo - 64 / 0.42) < 1e-9 && fabs(P4->hi - 64 / 0.38) < 1e-9, "repeat interval %g..%g", P4->lo, P4->hi);
        const report_point_t *P1 = &S->points[0];
        CHECK(P1->interval == REPORT_IV_BOOTSTRAP && P1->lo <= P1->throughput && P1->throughput <= P1->hi &&
                  P1->lo >= 64 / 1.1 - 1e-9 && P1->hi <= 64 / 0.9 + 1e-9, "bootstrap interval %g..%g", P1->lo, P1->hi);
    }
    /* the outputs carry the same numbers */
    char *csv = report_csv(R), *json = report_json(R), *md = report_markdown(R), *svg = report_svg(R);
    CHECK(csv && strstr(csv, "strong,\"strong, global batch 64\",folder name,4,1,1,64,16,3,54,160,"), "csv row of N=4");
    json_t root_v;
    err_t je = {0};
    const char *why = je.msg;
    CHECK(json && json_parse(json, strlen(json), &root_v, &je) == 0, "json parses: %s", json ? why : "NULL");
    if (json) {
        const json_t *series = json_get(&root_v, "series");
        CHECK(series && series->type == JSON_ARR && series->n == 2, "json series");
        const json_t *pts = series && series->n ? json_get(&series->items[0], "points") : NULL;
        double e = 0;
        CHECK(pts && pts->n == 4 && json_getnum(&pts->items[3], "efficiency", &e) == 0 && e == 0.5, "json E(8) %g", e);
        json_free(&root_v);
    }
    CHECK(md && strstr(md, "## Strong scaling") && strstr(md, "| 4 | 1 | 64 | 16 | 3 | 54 | 160.0 |") &&
              strstr(md, "0.625") && strstr(md, "101") && strstr(md, "OpenBLAS 0.3.21"), "markdown tables");
    CHECK(svg && !strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>") && strstr(svg, "stroke-dasharray=\"6,4\""),
          "svg with ideal lines");
    free(csv); free(json); free(md); free(svg);

    /* all four files, no temporary names left behind */
    snprintf(dir, sizeof dir, "%s/out/rep", root);
    CHECK(report_write_all(R, dir, &err_v) == 0, "write_all: %s", err);
    const char *names[4] = {"scaling.csv", "scaling.json", "scaling.md", "scaling.svg"};
    struct stat st;
    for (int i = 0; i < 4; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK(stat(p, &st) == 0 && st.st_size > 100, "%s written", names[i]);
    }
    DIR *d = opendir(dir);
    int others = 0;
    for (struct dirent *e; d && (e = readdir(d));) others += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    CHECK(others == 0, "%d temporary files left", others);
    report_free(R);
    test_end();
}

static void test_inferred_and_resumed(void) {
    test_begin("report_inferred_series_and_resumed_runs");
    /* unnamed folders: np1 and np2 share global batch 32 (strong), np1 and np2w share 32 per rank (weak) */
    make_run("mixed/a/np1", 1, 32, 1.0, NULL);
    make_run("mixed/a/np2", 2, 32, 0.625, NULL);
    make_run("mixed/a/np2w", 2, 64, 1.25, NULL);
    make_run("mixed/a/np4-lone", 4, 256, 1.0, NULL);   /* 64 per rank, 256 global: fits no series */
    /* one metrics file: two invocations of one run (a resume) and a later 2-rank run in the same folder */
    char p[4096], dir[4096];
    err_t err_v = {0}; char *err = err_v.msg;
    mkdirs("%s/mixed/resumed", root);
    snprintf(p, sizeof p, "%s/mixed/resumed/metrics.jsonl", root);
    FILE *f = fopen(p, "w");
    start_line(f, 1, 8, 1, "500");
    for (int i = 0; i < 5; i++) step_line(f, i + 1, i < 2 ? 9.0 : 0.5);
    start_line(f, 1, 8, 1, "501");
    for (int i = 0; i < 25; i++) step_line(f, i + 6, i < 3 ? 9.0 : 0.5);   /* 25 lines: ceil(2.5) = 3 warm-up */
    start_line(f, 2, 8, 1, NULL);
    for (int i = 0; i < 4; i++) step_line(f, i + 1, 0.4);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/mixed", root);
    report_t *R = quiet_report();
    int n = report_add_folder(R, dir, &err_v);
    CHECK(n == 6, "6 runs, got %d (%s)", n, err);
    report_analyse(R);
    const report_series_t *S = find_series(R, REPORT_STRONG, 32), *W = find_series(R, REPORT_WEAK, 32);
    CHECK(S && S->inferred && S->npoints == 2 && fabs(S->points[1].efficiency - 0.8) < 1e-12, "inferred strong");
    CHECK(W && W->inferred && W->npoints == 2 && fabs(W->points[1].efficiency - 0.8) < 1e-12, "inferred weak");
    /* the resumed run: steps 3..5 of the first invocation and 4..25 of the second */
    const report_run_t *res = NULL, *res2 = NULL;
    for (int i = 0; i < R->nruns; i++) {
        if (!strcmp(R->runs[i].name, "resumed")) res = &R->runs[i];
        if (!strcmp(R->runs[i].name, "resumed#2")) res2 = &R->runs[i];
    }
    CHECK(res && res->invocations == 2 && res->nsteps == 3 + 22 && res->step_s == 0.5 && !strcmp(res->slurm_jobs, "500,501"),
          "resumed run: %d invocations, %ld steps, jobs %s", res ? res->invocations : -1, res ? res->nsteps : -1L,
          res ? res->slurm_jobs : "?");
    CHECK(res2 && res2->ranks == 2 && res2->nsteps == 2, "second configuration in the same file is its own run");
    /* runs with the same per-rank batch 8 at 1 and 2 ranks but different global batch: np1 resumed (8) and
     * resumed#2 (8 global, 4 per rank) form a strong series */
    CHECK(find_series(R, REPORT_STRONG, 8) != NULL, "strong series from one folder's two configurations");
    int lone = -1;
    for (int i = 0; i < R->nruns; i++) if (!strcmp(R->runs[i].name, "a/np4-lone")) lone = i;
    CHECK(lone >= 0 && R->in_series[lone] == 0, "a run fitting no series stays out of them");
    report_free(R);
    test_end();
}

static void test_folder_errors(void) {
    test_begin("report_folder_errors");
    char dir[4096], p[4200];
    err_t err_v = {0}; char *err = err_v.msg;
    report_t *R = quiet_report();
    snprintf(dir, sizeof dir, "%s/nonexistent", root);
    CHECK(report_add_folder(R, dir, &err_v) < 0 && strstr(err, "No such file"), "missing: %s", err);
    mkdirs("%s/empty", root);
    snprintf(dir, sizeof dir, "%s/empty", root);
    CHECK(report_add_folder(R, dir, &err_v) < 0 && strstr(err, "empty"), "empty: %s", err);
    mkdirs("%s/nometrics/strong-np2", root);
    snprintf(p, sizeof p, "%s/nometrics/strong-np2/settings.json", root);
    write_file(p, "{}\n");
    snprintf(dir, sizeof dir, "%s/nometrics", root);
    CHECK(report_add_folder(R, dir, &err_v) < 0 && strstr(err, "no metrics.jsonl"), "no metrics: %s", err);
    CHECK(has_warning(R, "strong-np2: run folder without metrics.jsonl"), "the folder is named");
    snprintf(p, sizeof p, "%s/nometrics/strong-np2/settings.json", root);
    CHECK(report_add_folder(R, p, &err_v) < 0 && strstr(err, "not a folder"), "a file: %s", err);
    /* metrics that hold only warm-up */
    mkdirs("%s/short/run", root);
    snprintf(p, sizeof p, "%s/short/run/metrics.jsonl", root);
    FILE *f = fopen(p, "w");
    start_line(f, 1, 8, 1, NULL);
    step_line(f, 1, 1.0);
    step_line(f, 2, 1.0);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/short", root);
    CHECK(report_add_folder(R, dir, &err_v) < 0 && strstr(err, "steady-state"), "only warm-up: %s", err);
    CHECK(has_warning(R, "has no steady-state steps (2 step lines"), "warm-up-only run named");
    report_free(R);

    /* a folder of symbolic links to runs elsewhere, and a link back to itself */
    mkdirs("%s/links", root);
    char target[4200];
    snprintf(p, sizeof p, "%s/links/strong-np1", root);
    snprintf(target, sizeof target, "%s/sweep/strong-np1", root);
    CHECK(symlink(target, p) == 0, "symlink");
    snprintf(p, sizeof p, "%s/links/strong-np2", root);
    snprintf(target, sizeof target, "%s/sweep/strong-np2", root);
    CHECK(symlink(target, p) == 0, "symlink");
    snprintf(p, sizeof p, "%s/links/loop", root);
    CHECK(symlink(".", p) == 0, "symlink loop");
    snprintf(dir, sizeof dir, "%s/links", root);
    R = quiet_report();
    CHECK(report_add_folder(R, dir, &err_v) == 2, "linked runs: %s", err);
    report_analyse(R);
    CHECK(R->nseries == 1 && R->series[0].npoints == 2 && fabs(R->series[0].points[1].efficiency - 0.8) < 1e-12,
          "linked runs form their series");
    report_free(R);
    test_end();
}

static void test_projection(void) {
    test_begin("report_projection_formula");
    make_run("proj/weak-np1", 1, 16, 0.4, NULL);
    make_run("proj/weak-np2", 2, 32, 0.5, NULL);
    char p[4096], dir[4096];
    err_t err_v = {0}; char *err = err_v.msg;
    /* a bench record as tests/bench.sh writes it: alpha 5 us, beta 8 GB/s measured on 2 ranks */
    snprintf(p, sizeof p, "%s/bench-allreduce.json", root);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"bench\": \"allreduce\", \"figures\": [");
    const char *names[] = {"1KiB", "16KiB", "256KiB", "4MiB", "64MiB"};
    for (int i = 0; i < 5; i++) {
        double bytes = 1024.0 * pow(16, i), t = report_allreduce_time(2, bytes, 5e-6, 8e9);
        fprintf(f, "{\"name\": \"allreduce_ring_busbw_%s\", \"value\": %.17g, \"unit\": \"GB/s\"}, ", names[i], bytes / t / 1e9);
        fprintf(f, "{\"name\": \"allreduce_mpi_busbw_%s\", \"value\": 1, \"unit\": \"GB/s\"}, ", names[i]);
    }
    fprintf(f, "{\"name\": \"allreduce_ring_vs_mpi_worst_ge1MiB\", \"value\": 0.95, \"unit\": \"x\"}]}\n");
    fclose(f);
    snprintf(dir, sizeof dir, "%s/proj", root);
    report_t *R = quiet_report();
    CHECK(report_add_folder(R, dir, &err_v) == 2, "runs: %s", err);
    report_analyse(R);
    CHECK(report_load_allreduce(R, p, 2, &err_v) == 0, "load: %s", err);
    CHECK(fabs(R->proj.alpha / 5e-6 - 1) < 1e-6 && fabs(R->proj.beta / 8e9 - 1) < 1e-6 && R->proj.npts == 5,
          "fit alpha %g beta %g from %d points", R->proj.alpha, R->proj.beta, R->proj.npts);
    double bw[2] = {10, 100};
    CHECK(report_project(R, bw, 2, 8, 1024, -1, NULL, &err_v) == 0, "project: %s", err);
    const report_proj_t *J = &R->proj;
    CHECK(J->have && J->nranks == 8 && J->ranks[0] == 8 && J->ranks[7] == 1024, "ranks 8..1024");
    /* t_c = 0.5 x 0.4 s (the weak baseline's compute), bytes = 4e6 */
    CHECK(fabs(J->t_compute - 0.2) < 1e-12 && J->grad_bytes == 4e6 && J->batch == 16, "reference t_c %g", J->t_compute);
    double t8 = 14 * J->alpha + 1.75 * 4e6 / 1.25e9;   /* 10 Gb/s = 1.25e9 bytes/s */
    CHECK(fabs(J->eff[0][0] - 0.2 / (0.2 + t8)) < 1e-12, "E(8) at 10 Gb/s = %.12g", J->eff[0][0]);
    double t1024 = 2046 * J->alpha + 2.0 * 1023 / 1024 * 4e6 / 12.5e9;
    CHECK(fabs(J->eff[1][7] - 0.2 / (0.2 + t1024)) < 1e-12, "E(1024) at 100 Gb/s");
    CHECK(fabs(J->tput[1][7] - 1024 * 16 / (0.2 + t1024)) < 1e-6, "projected throughput");
    CHECK(J->eff[0][7] < J->eff[0][0] && J->eff[0][0] < J->eff[1][0], "efficiency falls with ranks, rises with bandwidth");
    CHECK(report_project(R, bw, 2, 8, 64, 20e-6, "weak-np2", &err_v) == 0 && J->latency == 20e-6 &&
              J->nranks == 4 && fabs(J->t_compute - 0.25) < 1e-12, "latency and reference given");
    char *md = report_markdown(R), *svg = report_svg(R);
    CHECK(md && strstr(md, "a model, not a measurement") && strstr(md, "T_ar(N) = 2(N-1)*alpha + 2(N-1)/N * bytes/beta"),
          "markdown states the model and its formula");
    CHECK(svg && strstr(svg, "model: 10 Gb/s"), "svg labels the model");
    free(md); free(svg);
    CHECK(report_project(R, bw, 2, 8, 64, -1, "nope", &err_v) != 0 && strstr(err, "nope"), "unknown reference");
    /* bench records the fit cannot use */
    snprintf(p, sizeof p, "%s/bench-bad.json", root);
    write_file(p, "{\"bench\": \"allreduce\", \"figures\": [{\"name\": \"allreduce_ring_busbw_1KiB\", \"value\": 1, \"unit\": \"GB/s\"}]}");
    CHECK(report_load_allreduce(R, p, 2, &err_v) != 0 && strstr(err, "at least 2"), "one point: %s", err);
    write_file(p, "{\"bench\": \"allreduce\", \"figures\": 3");
    CHECK(report_load_allreduce(R, p, 2, &err_v) != 0 && strstr(err, "not JSON"), "cut record: %s", err);
    report_free(R);
    test_end();
}

static void test_bench_readme(void) {
    test_begin("report_bench_readme_lists_records");
    char dir[4096], p[4200];
    err_t err_v = {0}; char *err = err_v.msg;
    mkdirs("%s/results/myreport", root);
    snprintf(dir, sizeof dir, "%s/results", root);
    snprintf(p, sizeof p, "%s/bench-train.json", dir);
    write_file(p, "{\"bench\": \"train\", \"command\": \"make bench (tests/bench/train.sh)\", \"machine\": \"2 cores, Test CPU\", "
                  "\"date\": \"2030-01-02T03:04:05Z\", \"env\": {\"OPENBLAS_CORETYPE\": \"Haswell\"}, \"figures\": ["
                  "{\"name\": \"train_tiny_images_per_s\", \"value\": 12.5, \"unit\": \"images/s\"}, {\"name\": \"bad\"}]}\n");
    snprintf(p, sizeof p, "%s/bench-allreduce.json", dir);
    write_file(p, "{\"bench\": \"allreduce\", \"command\": \"make bench (tests/bench/allreduce.sh)\", \"machine\": \"m2\", "
                  "\"date\": \"2030-01-03T00:00:00Z\", \"figures\": [{\"name\": \"allreduce_ring_busbw_1MiB\", \"value\": 3.25, "
                  "\"unit\": \"GB/s\"}]}\n");
    snprintf(p, sizeof p, "%s/bench-broken.json", dir);
    write_file(p, "{\"bench\": \"broken\", \"figu");
    snprintf(p, sizeof p, "%s/myreport/scaling.json", dir);
    write_file(p, "{\"created\": \"2030-01-04T00:00:00Z\", \"runs\": [1, 2], \"series\": [1]}\n");
    snprintf(p, sizeof p, "%s/README.md", dir);
    FILE *log = tmpfile();
    int n = report_bench_readme(dir, p, log, &err_v);
    CHECK(n == 2, "2 records listed, got %d (%s)", n, err);
    char *text = NULL;
    size_t len = 0;
    CHECK(file_slurp(p, &text, &len) == 0, "README written");
    if (text) {
        CHECK(strstr(text, "`train_tiny_images_per_s` | 12.5 | images/s |") && strstr(text, "2 cores, Test CPU") &&
                  strstr(text, "2030-01-02T03:04:05Z") && strstr(text, "`make bench (tests/bench/train.sh)`"),
              "figure with command, machine and date");
        CHECK(strstr(text, "`allreduce_ring_busbw_1MiB` | 3.25 | GB/s |"), "second record");
        CHECK(strstr(text, "## Records skipped") && strstr(text, "bench-broken.json") && strstr(text, "not JSON"),
              "the broken record is named");
        CHECK(strstr(text, "[myreport](myreport/scaling.md): made 2030-01-04T00:00:00Z, 2 runs, 1 series"), "scaling report linked");
        CHECK(strstr(text, "1 figure without a name or a finite value left out"), "bad figure counted");
        CHECK(strstr(text, "[allreduce](#bench-allreduce)") && strstr(text, "### bench: allreduce"), "index anchors");
    }
    free(text);
    char logtext[2048] = "";
    rewind(log);
    size_t got = fread(logtext, 1, sizeof logtext - 1, log);
    logtext[got] = 0;
    fclose(log);
    CHECK(strstr(logtext, "bench-broken.json: not JSON"), "the log names the broken file: %s", logtext);
    snprintf(p, sizeof p, "%s/nowhere", root);
    CHECK(report_bench_readme(p, "/dev/null", NULL, &err_v) < 0 && strstr(err, "nowhere"), "missing results: %s", err);
    test_end();
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    test_stats();
    test_fit();
    test_malformed();
    test_exact_scaling();
    test_inferred_and_resumed();
    test_folder_errors();
    test_projection();
    test_bench_readme();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) printf("could not remove %s\n", root);
    return test_exit();
}
