/* Reading one run folder for the run report (semaim/report.h): every invocation's lines as one
 * continuous run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report/lines.h"
#include "semaim/metrics.h"
#include "semaim/report.h"

static int grow(void **a, long *cap, long need, size_t size) {
    if (need <= *cap) return 0;
    long c = *cap ? 2 * *cap : 256;
    while (c < need) c *= 2;
    void *g = realloc(*a, (size_t)c * size);
    if (!g) return -1;
    *a = g;
    *cap = c;
    return 0;
}

/* A number, or NaN when the line does not carry one (metrics lines write null for NaN). */
static double num_or_nan(const json_t *o, const char *key) {
    double v;
    return report_get_num(o, key, &v) ? NAN : v;
}

static void text_of(const json_t *o, const char *key, char *out, size_t n) { json_text(json_get(o, key), out, n); }

static void free_settings(report_runlog_t *L) {
    for (int i = 0; i < L->nset; i++) { free(L->set_key[i]); free(L->set_val[i]); }
    free(L->set_key);
    free(L->set_val);
    L->set_key = L->set_val = NULL;
    L->nset = 0;
}

static const char *on_start(report_runlog_t *L, const json_t *o, long ln) {
    long icap = L->invcap;
    if (grow((void **)&L->inv, &icap, L->ninv + 1, sizeof *L->inv)) return report_line_oom;
    L->invcap = (int)icap;
    report_invocation_t *v = &L->inv[L->ninv++];
    memset(v, 0, sizeof *v);
    v->line = ln;
    long x;
    v->start_step = report_get_int(o, MET_START_STEP, 0, 1L << 50, &x) ? 0 : x;
    v->last_step = v->start_step;
    v->time = report_get_num(o, MET_TIME, &v->time) ? 0 : v->time;
    v->ranks = report_get_int(o, MET_RANKS, 1, 1L << 30, &x) ? 0 : (int)x;
    v->threads = report_get_int(o, MET_THREADS, 1, 1L << 30, &x) ? 0 : (int)x;
    v->restart_count = report_get_int(o, MET_RESTART_COUNT, 0, 1L << 30, &x) ? 0 : (int)x;
    v->global_batch = report_get_int(o, MET_GLOBAL_BATCH, 1, 1L << 50, &x) ? 0 : x;
    text_of(o, MET_SLURM_JOB, v->job, sizeof v->job);
    text_of(o, MET_RESUMED_FROM, v->resumed_from, sizeof v->resumed_from);
    /* the header describes the newest invocation */
    const char *kind = json_gets(o, MET_KIND);
    snprintf(L->kind, sizeof L->kind, "%s", kind ? kind : MET_KIND_PRETRAIN);   /* older lines: pretraining */
    L->params = report_get_int(o, MET_PARAMS, 0, 1L << 50, &x) ? 0 : x;
    L->total_steps = report_get_int(o, MET_TOTAL_STEPS, 0, 1L << 50, &x) ? 0 : x;
    L->steps_per_epoch = report_get_int(o, MET_STEPS_PER_EPOCH, 0, 1L << 50, &x) ? 0 : x;
    L->gflop_per_image = num_or_nan(o, MET_GFLOP_PER_IMAGE);
    L->peak_lr = num_or_nan(o, MET_PEAK_LR);
    text_of(o, MET_GEMM, L->gemm, sizeof L->gemm);
    text_of(o, MET_PRECISION, L->precision, sizeof L->precision);
    text_of(o, MET_HOST, L->host, sizeof L->host);
    text_of(o, MET_CPU, L->cpu, sizeof L->cpu);
    const json_t *ver = json_get(o, MET_VERSIONS), *set = json_get(o, MET_SETTINGS);
    json_text(json_get(ver, "mpi"), L->mpi, sizeof L->mpi);
    json_text(json_get(ver, "hdf5"), L->hdf5, sizeof L->hdf5);
    json_text(json_get(ver, "openblas"), L->openblas, sizeof L->openblas);
    report_model_text(set, L->params, L->model, sizeof L->model);
    free_settings(L);
    if (set && set->type == JSON_OBJ && set->n) {
        L->set_key = calloc(set->n, sizeof *L->set_key);
        L->set_val = calloc(set->n, sizeof *L->set_val);
        if (!L->set_key || !L->set_val) return report_line_oom;
        for (size_t i = 0; i < set->n; i++) {
            char val[1024];
            json_text(&set->items[i], val, sizeof val);
            if (set->items[i].type == JSON_NULL) snprintf(val, sizeof val, "-");
            L->set_key[L->nset] = strdup(set->keys[i]);
            L->set_val[L->nset] = strdup(val);
            if (!L->set_key[L->nset] || !L->set_val[L->nset]) { L->nset++; return report_line_oom; }
            L->nset++;
        }
    }
    return NULL;
}

typedef struct { report_runlog_t *L; } run_ctx_t;

static const char *on_line(void *arg, const json_t *o, const char *ev, long ln) {
    report_runlog_t *L = ((run_ctx_t *)arg)->L;
    if (!strcmp(ev, MET_RUN_START)) return on_start(L, o, ln);
    int is_step = !strcmp(ev, MET_STEP), is_mon = !strcmp(ev, MET_MONITOR);
    if (!is_step && !is_mon && strcmp(ev, MET_CHECKPOINT) && strcmp(ev, MET_RUN_END)) return NULL;   /* not for this report */
    if (L->ninv == 0) return is_step ? "step line without a run_start before it" : NULL;
    report_invocation_t *v = &L->inv[L->ninv - 1];
    if (!strcmp(ev, MET_RUN_END)) {
        long x;
        v->ended = 1;
        text_of(o, MET_REASON, v->reason, sizeof v->reason);
        v->exit_code = report_get_int(o, MET_EXIT_CODE, -1000, 1000, &x) ? 0 : (int)x;
        v->seconds = num_or_nan(o, MET_SECONDS);
        v->peak_rss_gib = num_or_nan(o, MET_PEAK_RSS_GIB);
        return NULL;
    }
    double sec = num_or_nan(o, is_step ? MET_STEP_S : MET_SECONDS);
    if (isfinite(sec) && sec > 0) v->busy_s += sec;
    if (!is_step && !is_mon) return NULL;   /* a checkpoint counts its seconds only */
    long step;
    if (report_get_int(o, MET_STEP, 0, 1L << 50, &step)) return is_step ? "step line without an integer \"step\"" :
                                                                     "monitor line without an integer \"step\"";
    if (step > v->last_step) v->last_step = step;
    if (is_step) {
        /* a later line for this step or an earlier one: the run went back to a checkpoint */
        while (L->nsteps > 0 && L->steps[L->nsteps - 1].step >= step) { L->nsteps--; L->superseded++; }
        if (grow((void **)&L->steps, &L->stepcap, L->nsteps + 1, sizeof *L->steps)) return report_line_oom;
        report_step_line_t *s = &L->steps[L->nsteps++];
        s->step = step;
        s->epoch = num_or_nan(o, MET_EPOCH);
        s->loss = num_or_nan(o, MET_LOSS);
        s->lr = num_or_nan(o, MET_LR);
        s->grad_norm = num_or_nan(o, MET_GRAD_NORM);
        s->images_per_s = num_or_nan(o, MET_IMAGES_PER_S);
        s->step_s = sec;
        s->data_s = num_or_nan(o, MET_DATA_WAIT_S);
        s->compute_s = num_or_nan(o, MET_COMPUTE_S);
        s->comm_s = num_or_nan(o, MET_COMM_S);
        return NULL;
    }
    while (L->nmon > 0 && L->mon[L->nmon - 1].step >= step) { L->nmon--; L->superseded++; }
    if (grow((void **)&L->mon, &L->moncap, L->nmon + 1, sizeof *L->mon)) return report_line_oom;
    report_monitor_t *m = &L->mon[L->nmon++];
    long x;
    m->step = step;
    m->epoch = num_or_nan(o, MET_EPOCH);
    m->bank = report_get_int(o, MET_MON_BANK, 0, 1L << 50, &x) ? 0 : x;
    m->queries = report_get_int(o, MET_MON_QUERIES, 0, 1L << 50, &x) ? 0 : x;
    m->seconds = sec;
    for (int k = 0; k < FEATSET_KINDS; k++) {
        char key[64];
        snprintf(key, sizeof key, MET_MON_TOP1 "%s", featset_kinds[k]);
        m->top1[k] = num_or_nan(o, key);
        snprintf(key, sizeof key, MET_MON_TOP5 "%s", featset_kinds[k]);
        m->top5[k] = num_or_nan(o, key);
    }
    return NULL;
}

int report_runlog_read(report_t *R, const char *dir, report_runlog_t *L, err_t *err) {
    memset(L, 0, sizeof *L);
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (!(L->dir = strdup(dir))) return err_set(err, ERR_RUNTIME, "out of memory");
    run_ctx_t c = {L};
    if (report_read_lines(R, path, on_line, &c, err)) { report_runlog_free(L); return -1; }
    if (L->ninv == 0) {
        report_runlog_free(L);
        return err_set(err, ERR_INPUT, "%s: no run_start line (not a semaim-train run folder, or it never started)", path);
    }
    return 0;
}

void report_runlog_free(report_runlog_t *L) {
    free_settings(L);
    free(L->dir); free(L->inv); free(L->steps); free(L->mon);
    memset(L, 0, sizeof *L);
}

const char *report_runlog_setting(const report_runlog_t *L, const char *key) {
    for (int i = L->nset - 1; i >= 0; i--)
        if (!strcmp(L->set_key[i], key)) return L->set_val[i];
    return "";
}

double report_runlog_wall(const report_runlog_t *L, int *complete) {
    double t = 0;
    *complete = 1;
    for (int i = 0; i < L->ninv; i++) {
        const report_invocation_t *v = &L->inv[i];
        if (v->ended && isfinite(v->seconds)) t += v->seconds;
        else { t += v->busy_s; *complete = 0; }
    }
    return t;
}

void report_smooth(const double *x, long n, long window, double *out) {
    long h = window > 1 ? window / 2 : 0;
    /* running sums over the finite values, so any window costs the same */
    double s = 0;
    long c = 0, lo = 0, hi = -1;   /* the window [lo, hi] now summed */
    for (long i = 0; i < n; i++) {
        long a = i - h < 0 ? 0 : i - h, b = i + h >= n ? n - 1 : i + h;
        while (hi < b) { hi++; if (isfinite(x[hi])) { s += x[hi]; c++; } }
        while (lo < a) { if (isfinite(x[lo])) { s -= x[lo]; c--; } lo++; }
        out[i] = c ? s / c : NAN;
    }
}

long report_smooth_window(long n) {
    long w = n / 50;
    if (w < 1) w = 1;
    return w % 2 ? w : w + 1;
}
