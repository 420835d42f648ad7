/* The projection beyond this machine: ring all-reduce latency and bandwidth fitted to the ring
 * benchmark, the measured compute time per step, and predicted weak-scaling efficiency at
 * interconnect bandwidths the user names. A model, and labelled as one everywhere it appears. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/report.h"

/* "1KiB", "4MiB", "1GiB", "64B" -> bytes; -1 if it is none of those. */
static double parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0)) return -1;
    if (!strcmp(end, "B")) return v;
    if (!strcmp(end, "KiB")) return v * 1024;
    if (!strcmp(end, "MiB")) return v * 1048576;
    if (!strcmp(end, "GiB")) return v * 1073741824;
    return -1;
}

int report_load_allreduce(report_t *R, const char *bench_json, int ranks_default, err_t *err) {
    report_proj_t *P = &R->proj;
    char *text = NULL;
    size_t n = 0;
    if (file_slurp(bench_json, &text, &n)) {
        err_set(err, ERR_INPUT, "%s: cannot read: %s", bench_json, strerror(errno));
        return -1;
    }
    json_t root;
    err_t je;
    if (json_parse(text, n, &root, &je)) {
        err_set(err, ERR_INPUT, "%s: not JSON (%s)", bench_json, je.msg);
        free(text);
        return -1;
    }
    free(text);
    const json_t *figs = json_get(&root, "figures");
    if (!figs || figs->type != JSON_ARR) {
        err_set(err, ERR_INPUT, "%s: no \"figures\" array (expected a tests/bench.sh record)", bench_json);
        json_free(&root);
        return -1;
    }
    int ranks = ranks_default;
    P->npts = 0;
    for (size_t i = 0; i < figs->n; i++) {
        const json_t *f = &figs->items[i];
        const char *name = json_gets(f, "name"), *unit = json_gets(f, "unit");
        double v;
        if (!name || json_getnum(f, "value", &v) || !isfinite(v)) continue;
        if (!strcmp(name, "allreduce_ranks") && v >= 2 && v <= 1e7 && v == floor(v)) ranks = (int)v;
        const char *pre = "allreduce_ring_busbw_";
        if (strncmp(name, pre, strlen(pre))) continue;
        double bytes = parse_size(name + strlen(pre));
        if (bytes < 0 || !unit || strcmp(unit, "GB/s") || !(v > 0)) {
            report_warn(R, "%s: figure %s (%g %s) is not a bus bandwidth in GB/s of a known size; not used", bench_json,
                        name, v, unit ? unit : "?");
            continue;
        }
        if (P->npts == (int)(sizeof P->bytes / sizeof P->bytes[0])) break;
        P->bytes[P->npts] = bytes;
        P->seconds[P->npts] = v;   /* bandwidth for now: seconds need the rank count */
        P->npts++;
    }
    json_free(&root);
    if (ranks < 2) { err_set(err, ERR_INPUT, "%s: the benchmark needs at least 2 ranks, not %d", bench_json, ranks); return -1; }
    if (P->npts < 2) {
        err_set(err, ERR_INPUT, "%s: %d allreduce_ring_busbw_<size> figures; the fit needs at least 2", bench_json, P->npts);
        return -1;
    }
    /* the benchmark's bus bandwidth is 2(N-1)/N x bytes / time */
    for (int i = 0; i < P->npts; i++) P->seconds[i] = 2.0 * (ranks - 1) / ranks * P->bytes[i] / (P->seconds[i] * 1e9);
    if (report_fit_allreduce(P->bytes, P->seconds, P->npts, ranks, &P->alpha, &P->beta)) {
        err_set(err, ERR_INPUT, "%s: the all-reduce times do not fit latency + bytes/bandwidth with a positive bandwidth",
                 bench_json);
        return -1;
    }
    P->fit_max_rel_err = 0;
    for (int i = 0; i < P->npts; i++) {
        double e = fabs(report_allreduce_time(ranks, P->bytes[i], P->alpha, P->beta) / P->seconds[i] - 1);
        if (e > P->fit_max_rel_err) P->fit_max_rel_err = e;
    }
    P->bench_ranks = ranks;
    snprintf(P->source, sizeof P->source, "%s", bench_json);
    if (P->fit_max_rel_err > 0.5)
        report_warn(R, "%s: the all-reduce times fit latency + bytes/bandwidth poorly (worst point off by %.0f%%): the "
                    "machine was probably busy during the benchmark; the projection inherits that", bench_json,
                    100 * P->fit_max_rel_err);
    return 0;
}

int report_project(report_t *R, const double *gbit, int nbw, int nmin, int nmax, double latency_s,
                   const char *ref_name, err_t *err) {
    report_proj_t *P = &R->proj;
    P->have = 0;
    if (!(P->beta > 0)) { err_set(err, ERR_INPUT, "no all-reduce fit (no benchmark read)"); return -1; }
    if (nbw < 1 || nbw > 16) { err_set(err, ERR_INPUT, "1 to 16 bandwidths, not %d", nbw); return -1; }
    if (nmin < 2 || nmax < nmin) { err_set(err, ERR_INPUT, "projected ranks %d..%d: need 2 <= min <= max", nmin, nmax); return -1; }
    int ref = -1;
    if (ref_name) {
        for (int i = 0; i < R->nruns && ref < 0; i++) if (!strcmp(R->runs[i].name, ref_name)) ref = i;
        if (ref < 0) { err_set(err, ERR_INPUT, "--project-from '%s': no run of that name", ref_name); return -1; }
    } else {
        /* the baseline of the first weak series measures exactly what the model scales */
        for (int s = 0; s < R->nseries && ref < 0; s++)
            if (R->series[s].kind == REPORT_WEAK) ref = R->series[s].points[0].runs[0];
        for (int i = 0; i < R->nruns; i++) if (ref < 0 || R->runs[i].ranks < R->runs[ref].ranks) ref = i;
    }
    if (ref < 0) { err_set(err, ERR_INPUT, "no runs to take the compute time from"); return -1; }
    const report_run_t *r = &R->runs[ref];
    if (r->params <= 0) { err_set(err, ERR_INPUT, "%s: its run_start has no \"params\" count", r->name); return -1; }
    if (!(r->compute_s > 0)) { err_set(err, ERR_INPUT, "%s: median compute time is 0", r->name); return -1; }
    P->ref_run = ref;
    P->t_compute = r->compute_s;
    P->batch = r->batch;
    P->grad_bytes = 4.0 * r->params;
    P->latency_given = latency_s >= 0;
    P->latency = latency_s >= 0 ? latency_s : P->alpha;
    P->nbw = nbw;
    P->nranks = 0;
    for (long N = 1; N <= nmax && P->nranks < 32; N *= 2)
        if (N >= nmin) P->ranks[P->nranks++] = (int)N;
    if (P->nranks == 0) { err_set(err, ERR_INPUT, "no power of two in %d..%d", nmin, nmax); return -1; }
    for (int b = 0; b <= nbw; b++) {
        double beta = b < nbw ? gbit[b] * 1e9 / 8 : P->beta;
        if (b < nbw) {
            if (!(gbit[b] > 0) || !isfinite(gbit[b])) { err_set(err, ERR_INPUT, "bandwidth %g Gb/s is not positive", gbit[b]); return -1; }
            P->gbit[b] = gbit[b];
        }
        for (int k = 0; k < P->nranks; k++) {
            int N = P->ranks[k];
            double t = report_allreduce_time(N, P->grad_bytes, P->latency, beta);
            P->t_ar[b][k] = t;
            P->eff[b][k] = P->t_compute / (P->t_compute + t);
            P->tput[b][k] = (double)N * P->batch / (P->t_compute + t);
        }
    }
    P->have = 1;
    return 0;
}
