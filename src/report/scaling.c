/* From runs to scaling series: per-run medians, grouping into strong and weak series, repeats
 * into points, and speedup and efficiency against each series' smallest rank count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/report.h"

static double run_median(const report_run_t *r, int field, double *tmp) {
    for (long i = 0; i < r->nsteps; i++) {
        const report_step_t *s = &r->steps[i];
        tmp[i] = field == 0 ? s->step_s : field == 1 ? s->wait_s : field == 2 ? s->compute_s : s->comm_s;
    }
    return report_median(tmp, r->nsteps);
}

static int series_find_or_add(report_t *R, int kind, int inferred, const report_run_t *r, int run) {
    long key = kind == REPORT_STRONG ? r->global_batch : r->batch;
    for (int s = 0; s < R->nseries; s++) {
        report_series_t *S = &R->series[s];
        if (S->kind == kind && S->inferred == inferred && S->batch_key == key &&
            !strcmp(R->runs[S->run0].config, r->config))
            return s;
    }
    report_series_t *g = realloc(R->series, (size_t)(R->nseries + 1) * sizeof *g);
    if (!g) return -1;
    R->series = g;
    report_series_t *S = &R->series[R->nseries];
    memset(S, 0, sizeof *S);
    S->kind = kind;
    S->inferred = inferred;
    S->batch_key = key;
    S->run0 = run;
    return R->nseries++;
}

static int point_add(report_series_t *S, const report_run_t *runs, int run) {
    int ranks = runs[run].ranks, p;
    for (p = 0; p < S->npoints && S->points[p].ranks != ranks; p++) {}
    if (p == S->npoints) {
        report_point_t *g = realloc(S->points, (size_t)(S->npoints + 1) * sizeof *g);
        if (!g) return -1;
        S->points = g;
        memset(&S->points[p], 0, sizeof S->points[p]);
        S->points[p].ranks = ranks;
        S->npoints++;
    }
    report_point_t *P = &S->points[p];
    int *g = realloc(P->runs, (size_t)(P->nruns + 1) * sizeof *g);
    if (!g) return -1;
    P->runs = g;
    P->runs[P->nruns++] = run;
    return 0;
}

static int cmp_point(const void *a, const void *b) {
    const report_point_t *x = a, *y = b;
    return (x->ranks > y->ranks) - (x->ranks < y->ranks);
}

static void point_stats(report_t *R, report_point_t *P, long global_batch) {
    double a[4][P->nruns > 0 ? P->nruns : 1];
    P->steps = 0;
    double xlo = INFINITY, xhi = 0;
    for (int i = 0; i < P->nruns; i++) {
        const report_run_t *r = &R->runs[P->runs[i]];
        a[0][i] = r->step_s; a[1][i] = r->wait_s; a[2][i] = r->compute_s; a[3][i] = r->comm_s;
        P->steps += r->nsteps;
        if (r->throughput < xlo) xlo = r->throughput;
        if (r->throughput > xhi) xhi = r->throughput;
    }
    P->step_s = report_median(a[0], P->nruns);
    P->wait_s = report_median(a[1], P->nruns);
    P->compute_s = report_median(a[2], P->nruns);
    P->comm_s = report_median(a[3], P->nruns);
    P->throughput = global_batch / P->step_s;
    if (P->nruns >= 2) {
        P->interval = REPORT_IV_REPEATS;
        P->lo = xlo;
        P->hi = xhi;
        return;
    }
    const report_run_t *r = &R->runs[P->runs[0]];
    P->lo = P->hi = P->throughput;
    P->interval = REPORT_IV_NONE;
    if (R->opt.bootstrap >= 2 && r->nsteps >= 2) {
        double *t = malloc((size_t)r->nsteps * sizeof *t), tlo, thi;
        if (!t) return;
        for (long i = 0; i < r->nsteps; i++) t[i] = r->steps[i].step_s;
        report_bootstrap_median(t, r->nsteps, R->opt.bootstrap, R->opt.seed, &tlo, &thi);
        free(t);
        P->lo = global_batch / thi;
        P->hi = global_batch / tlo;
        P->interval = REPORT_IV_BOOTSTRAP;
    }
}

void report_analyse(report_t *R) {
    long maxn = 1;
    for (int i = 0; i < R->nruns; i++) if (R->runs[i].nsteps > maxn) maxn = R->runs[i].nsteps;
    double *tmp = malloc((size_t)maxn * sizeof *tmp);
    if (!tmp) { report_warn(R, "out of memory for the medians"); return; }
    for (int i = 0; i < R->nruns; i++) {
        report_run_t *r = &R->runs[i];
        r->step_s = run_median(r, 0, tmp);
        r->wait_s = run_median(r, 1, tmp);
        r->compute_s = run_median(r, 2, tmp);
        r->comm_s = run_median(r, 3, tmp);
        r->throughput = r->global_batch / r->step_s;
    }
    free(tmp);

    /* Named runs make their series whatever they hold; unnamed runs are offered to both kinds
     * and a series is kept only where it spans two rank counts or more. */
    for (int pass = 0; pass < 2; pass++)
        for (int kind = REPORT_STRONG; kind <= REPORT_WEAK; kind++)
            for (int i = 0; i < R->nruns; i++) {
                const report_run_t *r = &R->runs[i];
                int inferred = r->kind_hint == REPORT_ANY;
                if (inferred != pass || (!inferred && r->kind_hint != kind)) continue;
                int s = series_find_or_add(R, kind, inferred, r, i);
                if (s < 0 || point_add(&R->series[s], R->runs, i)) { report_warn(R, "out of memory for the series"); return; }
            }
    int kept = 0;
    for (int s = 0; s < R->nseries; s++) {
        report_series_t *S = &R->series[s];
        if (S->inferred && S->npoints < 2) {
            for (int p = 0; p < S->npoints; p++) free(S->points[p].runs);
            free(S->points);
            continue;
        }
        R->series[kept++] = *S;
    }
    R->nseries = kept;
    /* strong before weak, each in order of first appearance */
    for (int a = 1; a < R->nseries; a++)
        for (int b = a; b > 0 && R->series[b].kind < R->series[b - 1].kind; b--) {
            report_series_t t = R->series[b]; R->series[b] = R->series[b - 1]; R->series[b - 1] = t;
        }

    free(R->in_series);
    R->in_series = calloc((size_t)(R->nruns > 0 ? R->nruns : 1), sizeof *R->in_series);
    for (int s = 0; s < R->nseries; s++) {
        report_series_t *S = &R->series[s];
        qsort(S->points, (size_t)S->npoints, sizeof *S->points, cmp_point);
        long gb = S->kind == REPORT_STRONG ? S->batch_key : 0;
        for (int p = 0; p < S->npoints; p++) {
            report_point_t *P = &S->points[p];
            point_stats(R, P, gb ? gb : S->batch_key * P->ranks);
            if (R->in_series) for (int k = 0; k < P->nruns; k++) R->in_series[P->runs[k]]++;
        }
        const report_point_t *P0 = &S->points[0];
        for (int p = 0; p < S->npoints; p++) {
            report_point_t *P = &S->points[p];
            P->speedup = P->throughput / P0->throughput;
            P->efficiency = S->kind == REPORT_STRONG ? P->throughput / ((double)P->ranks / P0->ranks * P0->throughput)
                                                     : P0->step_s / P->step_s;
        }
        if (S->npoints < 2)
            report_warn(R, "%s series (%s %ld, %s) has runs at %d ranks only: no scaling to show",
                        S->kind == REPORT_STRONG ? "strong" : "weak", S->kind == REPORT_STRONG ? "global batch" : "batch per rank",
                        S->batch_key, R->runs[S->run0].model, P0->ranks);
    }
}
