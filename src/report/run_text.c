/* The run report's text files (semaim/report.h): report.md, curves.csv, summary.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "report/text.h"
#include "semaim/report.h"

static void duration(char *out, size_t n, double s) {
    if (!isfinite(s)) snprintf(out, n, "?");
    else if (s >= 3600) snprintf(out, n, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(out, n, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, n, "%.1f s", s);
}

static double median(double *x, long n) {
    long m = 0;
    for (long i = 0; i < n; i++) if (isfinite(x[i])) x[m++] = x[i];
    return report_median(x, m);
}

/* What the last invocation says about the run. */
static void status_text(const report_runlog_t *L, char *out, size_t n) {
    const report_invocation_t *v = &L->inv[L->ninv - 1];
    long last = L->nsteps ? L->steps[L->nsteps - 1].step : v->start_step;
    if (!v->ended)
        snprintf(out, n, "running, or ended without a run_end line (killed?), at step %ld of %ld", last, L->total_steps);
    else if (!strcmp(v->reason, "done"))
        snprintf(out, n, "finished: %ld of %ld steps", last, L->total_steps);
    else if (!strcmp(v->reason, "signal") || !strcmp(v->reason, "max-steps-this-run"))
        snprintf(out, n, "stopped at step %ld of %ld (%s; a checkpoint was written, the run resumes)", last, L->total_steps,
                 v->reason);
    else snprintf(out, n, "failed at step %ld of %ld: %s (exit code %d)", last, L->total_steps, v->reason, v->exit_code);
}

static void row(buf_t *b, const char *key, const char *val) {
    buf_puts(b, "| ");
    report_md_text(b, key);
    buf_puts(b, " | ");
    report_md_text(b, val);
    buf_puts(b, " |\n");
}

/* The smoothed loss column (malloc'd; NULL when out of memory). */
static double *smoothed_loss(const report_runlog_t *L, long window) {
    long n = L->nsteps > 0 ? L->nsteps : 1;
    double *raw = malloc(sizeof(double) * n), *sm = malloc(sizeof(double) * n);
    if (raw && sm) {
        for (long i = 0; i < L->nsteps; i++) raw[i] = L->steps[i].loss;
        report_smooth(raw, L->nsteps, window, sm);
    } else { free(sm); sm = NULL; }
    free(raw);
    return sm;
}

/* The median seconds of the monitor's evaluations and of the steps. */
static void costs(const report_runlog_t *L, double *mon_s, double *step_s) {
    long n = L->nmon > L->nsteps ? L->nmon : L->nsteps;
    double *t = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    *mon_s = *step_s = NAN;
    if (!t) return;
    for (long i = 0; i < L->nmon; i++) t[i] = L->mon[i].seconds;
    *mon_s = median(t, L->nmon);
    for (long i = 0; i < L->nsteps; i++) t[i] = L->steps[i].step_s;
    *step_s = median(t, L->nsteps);
    free(t);
}

char *report_run_markdown(const report_t *R, const report_runlog_t *L, const report_orders_t *O, const char *orders_note,
                          const char *orders_source, long window) {
    buf_t b = {0};
    char text[4096], t2[256];
    buf_puts(&b, "# Run report: ");
    report_md_text(&b, L->dir);
    buf_printf(&b, "\n\nMade %s by `semaim-report run` from `", R->created);
    report_md_text(&b, L->dir);
    buf_puts(&b, "/metrics.jsonl`.\n\n| | |\n| --- | --- |\n");
    status_text(L, text, sizeof text);
    row(&b, "status", text);
    row(&b, "kind", L->kind);
    row(&b, "model", L->model);
    if (isfinite(L->gflop_per_image)) {
        snprintf(text, sizeof text, "%.4g GFLOP per image per training step", L->gflop_per_image);
        row(&b, "work", text);
    }
    const report_invocation_t *v = &L->inv[L->ninv - 1];
    snprintf(text, sizeof text, "%d x %d", v->ranks, v->threads);
    row(&b, "ranks x threads", text);
    snprintf(text, sizeof text, "%ld (%ld per rank)", v->global_batch, v->ranks ? v->global_batch / v->ranks : 0);
    row(&b, "global batch", text);
    if (*L->precision) snprintf(text, sizeof text, "%s (GEMM backend %s)", L->precision, *L->gemm ? L->gemm : "?");
    else snprintf(text, sizeof text, "not recorded (runs before it was recorded computed in fp32)");
    row(&b, "precision", text);
    long last = L->nsteps ? L->steps[L->nsteps - 1].step : 0;
    snprintf(text, sizeof text, "%ld of %ld (%.2f epochs of %ld steps)", last, L->total_steps,
             L->steps_per_epoch ? (double)last / L->steps_per_epoch : 0.0, L->steps_per_epoch);
    row(&b, "steps", text);
    if (isfinite(L->peak_lr)) { snprintf(text, sizeof text, "%.4g", L->peak_lr); row(&b, "peak lr", text); }
    int complete;
    double wall = report_runlog_wall(L, &complete);
    duration(t2, sizeof t2, wall);
    snprintf(text, sizeof text, "%s%s over %d invocation%s", complete ? "" : "at least ", t2, L->ninv, L->ninv == 1 ? "" : "s");
    row(&b, "wall time", text);
    int n = 0;
    text[0] = 0;
    for (int i = 1; i < L->ninv && n < (int)sizeof text - 64; i++)
        n += snprintf(text + n, sizeof text - n, "%sstep %ld%s", i > 1 ? ", " : "", L->inv[i].start_step,
                      L->inv[i].restart_count ? " (Slurm requeue)" : "");
    if (L->ninv > 1) {
        char restarts[4200];
        snprintf(restarts, sizeof restarts, "%d: at %s", L->ninv - 1, text);
        row(&b, "restarts", restarts);
    } else row(&b, "restarts", "none");
    if (L->superseded) {
        snprintf(text, sizeof text, "%ld lines of steps done again after a restart (the later ones are kept)", L->superseded);
        row(&b, "repeated steps", text);
    }
    double mon_s, step_s;
    costs(L, &mon_s, &step_s);
    if (isfinite(step_s)) {
        snprintf(text, sizeof text, "%.1f images/s (median step %.3f s)", v->global_batch / step_s, step_s);
        row(&b, "throughput", text);
    }
    char jobs[1024] = "";
    n = 0;
    for (int i = 0; i < L->ninv && n < (int)sizeof jobs - 80; i++)
        if (*L->inv[i].job && !strstr(jobs, L->inv[i].job)) n += snprintf(jobs + n, sizeof jobs - n, "%s%s", n ? ", " : "", L->inv[i].job);
    if (*jobs) row(&b, "Slurm jobs", jobs);
    if (*L->host || *L->cpu) {
        snprintf(text, sizeof text, "%s, %s", L->host, L->cpu);
        row(&b, "host", text);
    }
    if (*L->mpi || *L->hdf5 || *L->openblas) {
        snprintf(text, sizeof text, "%s; HDF5 %s; %s", L->mpi, L->hdf5, L->openblas);
        row(&b, "versions", text);
    }

    double *sm = smoothed_loss(L, window);
    buf_printf(&b, "\n## Loss\n\n![loss: raw and smoothed](loss.svg)\n\n");
    if (L->nsteps && sm)
        buf_printf(&b, "First step %.4f; last step %.4f; smoothed (centred moving average over %ld steps) at the end %.4f.\n",
                   L->steps[0].loss, L->steps[L->nsteps - 1].loss, window, sm[L->nsteps - 1]);
    free(sm);

    buf_puts(&b, "\n## k-NN monitor\n\n");
    if (!L->nmon)
        buf_puts(&b, "No monitor points: the run had no `--monitor-data` (see the README, `semaim-train --monitor-data`).\n");
    else {
        const report_monitor_t *f = &L->mon[0], *e = &L->mon[L->nmon - 1];
        buf_printf(&b, "![k-NN top-1 per readout](knn.svg)\n\nk-NN top-1 (%%) of a bank of the first %ld train images, "
                       "queried with the first %ld val images, with the weights after each step shown. In pretraining the "
                       "cls token attends only to itself, so `cls` is usually the weakest readout for this model family; "
                       "`gap` is the authors' readout for probes and fine-tuning.\n\n| step | epoch |",
                   e->bank, e->queries);
        for (int k = 0; k < FEATSET_KINDS; k++) buf_printf(&b, " %s |", featset_kinds[k]);
        buf_puts(&b, " seconds |\n| ---: | ---: |");
        for (int k = 0; k < FEATSET_KINDS; k++) buf_puts(&b, " ---: |");
        buf_puts(&b, " ---: |\n");
        long every = L->nmon > 24 ? (L->nmon + 23) / 24 : 1;   /* at most ~25 rows: a long run shows a sample */
        for (long i = 0; i < L->nmon; i++) {
            if (i % every && i != L->nmon - 1) continue;
            const report_monitor_t *m = &L->mon[i];
            buf_printf(&b, "| %ld | %.2f |", m->step, m->epoch);
            for (int k = 0; k < FEATSET_KINDS; k++) buf_printf(&b, isfinite(m->top1[k]) ? " %.2f |" : " - |", m->top1[k]);
            buf_printf(&b, " %.2f |\n", m->seconds);
        }
        int best = 0;
        for (int k = 1; k < FEATSET_KINDS; k++) if (e->top1[k] > e->top1[best]) best = k;
        buf_printf(&b, "\nAt step %ld the best readout is `%s` at %.2f %% (%+.2f points since step %ld).", e->step,
                   featset_kinds[best], e->top1[best], e->top1[best] - f->top1[best], f->step);
        long mevery = atol(report_runlog_setting(L, "monitor-every"));
        if (isfinite(mon_s) && isfinite(step_s) && mevery > 0)
            buf_printf(&b, " One evaluation takes %.2f s (median), %.2f %% of the %ld steps between evaluations (median step "
                           "%.3f s).", mon_s, 100 * mon_s / (mevery * step_s), mevery, step_s);
        buf_puts(&b, "\n");
    }

    buf_puts(&b, "\n## Learning rate and gradient norm\n\n![learning rate](lr.svg)\n\n![gradient norm](grad_norm.svg)\n");
    buf_puts(&b, "\n## Throughput and where the time goes\n\n![images per second](throughput.svg)\n\n"
                 "![data, compute and communication seconds per step](time_split.svg)\n");

    buf_puts(&b, "\n## The semantic order\n\n");
    if (!O) {
        buf_puts(&b, "Not drawn: ");
        report_md_text(&b, orders_note ? orders_note : "no checkpoint or no images");
        buf_puts(&b, "\n");
    } else {
        buf_puts(&b, "With the weights of `");
        report_md_text(&b, orders_source);
        buf_printf(&b, "`, %d validation images. Each row: the image with the centre patch the permutation pass chose "
                       "(outlined), the run's order signal (`--order-signal %s`): %s (the centre is its maximum; brightest = "
                       "highest), then the prediction order as a heat map over the "
                       "%dx%d patch grid, first predicted brightest, for the semantic order and, beside it, raster and "
                       "stochastic. The same rows are the PNGs order-K.png.\n\n![the semantic order](orders.svg)\n\n",
                   O->n, target_signal_name(O->signal), report_signal_sentence(O->signal), O->G, O->G);
        buf_printf(&b, "| # | image | label | centre (row, col) | %s at the centre |\n| ---: | ---: | ---: | --- | ---: |\n",
                   report_signal_label(O->signal));
        for (int i = 0; i < O->n; i++)
            buf_printf(&b, "| [%d](order-%d.png) | %lld | %d | (%d, %d) | %.3f |\n", i, i, (long long)O->ids[i], O->labels[i],
                       O->center[i] / O->G, O->center[i] % O->G, O->sim[(long)i * O->L + O->center[i]]);
    }

    buf_puts(&b, "\n## Settings\n\nAs recorded by the newest invocation (`run_start`); `settings.json` holds the same.\n\n"
                 "| setting | value |\n| --- | --- |\n");
    for (int i = 0; i < L->nset; i++) row(&b, L->set_key[i], L->set_val[i]);
    buf_puts(&b, "\n## Invocations\n\n| # | metrics line | from step | to step | end | seconds | Slurm job |\n"
                 "| ---: | ---: | ---: | ---: | --- | ---: | --- |\n");
    for (int i = 0; i < L->ninv; i++) {
        const report_invocation_t *w = &L->inv[i];
        buf_printf(&b, "| %d | %ld | %ld | %ld | ", i, w->line, w->start_step, w->last_step);
        report_md_text(&b, w->ended ? w->reason : "no run_end");
        if (w->ended && isfinite(w->seconds)) buf_printf(&b, " | %.1f | ", w->seconds);
        else buf_printf(&b, " | at least %.1f | ", w->busy_s);
        report_md_text(&b, *w->job ? w->job : "-");
        buf_puts(&b, " |\n");
    }
    if (R->nwarn_total) {
        buf_printf(&b, "\n## Warnings\n\n%d warning%s, %ld line%s skipped:\n\n", R->nwarn_total, R->nwarn_total == 1 ? "" : "s",
                   R->bad_lines, R->bad_lines == 1 ? "" : "s");
        for (int i = 0; i < R->nwarn; i++) {
            buf_puts(&b, "- ");
            report_md_text(&b, R->warn[i]);
            buf_puts(&b, "\n");
        }
    }
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}

char *report_run_csv(const report_runlog_t *L, long window) {
    buf_t b = {0};
    double *sm = smoothed_loss(L, window);
    if (!sm) return NULL;
    buf_puts(&b, "step,epoch,loss,loss_smoothed,lr,grad_norm,images_per_s,step_s,data_wait_s,compute_s,comm_s\n");
    for (long i = 0; i < L->nsteps; i++) {
        const report_step_line_t *s = &L->steps[i];
        buf_printf(&b, "%ld", s->step);
        const double v[10] = {s->epoch, s->loss, sm[i], s->lr, s->grad_norm, s->images_per_s, s->step_s, s->data_s,
                              s->compute_s, s->comm_s};
        for (int k = 0; k < 10; k++) { buf_add(&b, ",", 1); if (isfinite(v[k])) report_num(&b, v[k]); }
        buf_add(&b, "\n", 1);
    }
    free(sm);
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}

char *report_run_json(const report_t *R, const report_runlog_t *L, const report_orders_t *O, const char *orders_note,
                      const char *orders_source, long window) {
    buf_t b = {0};
    char text[1024];
    double *sm = smoothed_loss(L, window);
    if (!sm) return NULL;
    buf_puts(&b, "{");
    report_jkey(&b, "dir"); json_str(&b, L->dir);
    buf_puts(&b, ", "); report_jkey(&b, "created"); json_str(&b, R->created);
    status_text(L, text, sizeof text);
    buf_puts(&b, ", "); report_jkey(&b, "status"); json_str(&b, text);
    buf_puts(&b, ", "); report_jkey(&b, "kind"); json_str(&b, L->kind);
    buf_puts(&b, ", "); report_jkey(&b, "model"); json_str(&b, L->model);
    buf_printf(&b, ", \"params\": %ld, \"total_steps\": %ld, \"steps_per_epoch\": %ld", L->params, L->total_steps,
               L->steps_per_epoch);
    buf_puts(&b, ", "); report_jkey(&b, "precision"); json_str(&b, L->precision);
    buf_printf(&b, ", \"step_lines\": %ld, \"first_step\": %ld, \"last_step\": %ld, \"superseded_lines\": %ld", L->nsteps,
               L->nsteps ? L->steps[0].step : -1, L->nsteps ? L->steps[L->nsteps - 1].step : -1, L->superseded);
    buf_printf(&b, ", \"bad_lines\": %ld, \"warnings\": %d, \"smooth_window\": %ld", R->bad_lines, R->nwarn_total, window);
    int complete;
    double wall = report_runlog_wall(L, &complete);
    buf_puts(&b, ", \"wall_s\": "); report_num(&b, wall);
    buf_printf(&b, ", \"wall_complete\": %s", complete ? "true" : "false");
    buf_puts(&b, ", \"restarts\": [");
    for (int i = 1; i < L->ninv; i++) buf_printf(&b, "%s%ld", i > 1 ? ", " : "", L->inv[i].start_step);
    buf_puts(&b, "], \"invocations\": [");
    for (int i = 0; i < L->ninv; i++) {
        const report_invocation_t *v = &L->inv[i];
        buf_printf(&b, "%s{\"line\": %ld, \"start_step\": %ld, \"last_step\": %ld, \"ranks\": %d, \"threads\": %d, "
                       "\"global_batch\": %ld, \"ended\": %s, \"reason\": ", i ? ", " : "", v->line, v->start_step, v->last_step,
                   v->ranks, v->threads, v->global_batch, v->ended ? "true" : "false");
        if (v->ended) json_str(&b, v->reason); else buf_puts(&b, "null");
        buf_puts(&b, ", \"seconds\": "); report_num(&b, v->ended ? v->seconds : NAN);
        buf_puts(&b, ", \"busy_s\": "); report_num(&b, v->busy_s);
        buf_puts(&b, "}");
    }
    buf_puts(&b, "], \"loss\": {\"first\": ");
    report_num(&b, L->nsteps ? L->steps[0].loss : NAN);
    buf_puts(&b, ", \"last\": ");
    report_num(&b, L->nsteps ? L->steps[L->nsteps - 1].loss : NAN);
    buf_puts(&b, ", \"last_smoothed\": ");
    report_num(&b, L->nsteps ? sm[L->nsteps - 1] : NAN);
    buf_puts(&b, "}, \"monitor\": [");
    for (long i = 0; i < L->nmon; i++) {
        const report_monitor_t *m = &L->mon[i];
        buf_printf(&b, "%s{\"step\": %ld, \"bank\": %ld, \"queries\": %ld", i ? ", " : "", m->step, m->bank, m->queries);
        for (int k = 0; k < FEATSET_KINDS; k++) { buf_printf(&b, ", \"%s\": ", featset_kinds[k]); report_num(&b, m->top1[k]); }
        buf_puts(&b, ", \"seconds\": "); report_num(&b, m->seconds);
        buf_puts(&b, "}");
    }
    buf_puts(&b, "], \"orders\": ");
    if (!O) {
        buf_puts(&b, "null, \"orders_note\": ");
        json_str(&b, orders_note ? orders_note : "");
    } else {
        buf_puts(&b, "{\"source\": ");
        json_str(&b, orders_source);
        buf_printf(&b, ", \"image\": %d, \"patch\": %d, \"grid\": %d, \"signal\": \"%s\", \"images\": [", O->S, O->P, O->G,
                   target_signal_name(O->signal));
        for (int i = 0; i < O->n; i++) {
            buf_printf(&b, "%s{\"id\": %lld, \"label\": %d, \"center\": %d, \"sim\": [", i ? ", " : "", (long long)O->ids[i],
                       O->labels[i], O->center[i]);
            for (int p = 0; p < O->L; p++) { if (p) buf_puts(&b, ", "); report_num(&b, O->sim[(long)i * O->L + p]); }
            for (int k = 0; k < REPORT_ORDERS; k++) {
                buf_printf(&b, "], \"%s\": [", order_name(report_order_kinds[k]));
                for (int p = 0; p < O->L; p++) buf_printf(&b, "%s%d", p ? ", " : "", O->ranks[((long)k * O->n + i) * O->L + p]);
            }
            buf_puts(&b, "]}");
        }
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "}\n");
    free(sm);
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}
