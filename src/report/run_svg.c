/* The run report's plots (semaim/report.h) on the SVG helpers of report/svg.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report/png.h"
#include "report/svg.h"
#include "semaim/report.h"

const char *const report_plot_names[REPORT_PLOTS] = {"loss.svg", "lr.svg", "grad_norm.svg", "throughput.svg",
                                                     "time_split.svg", "knn.svg"};

#define PLOT_W 900
#define PLOT_H 380
/* at most this many points per curve: beyond it, each bucket of steps is drawn by its extremes
 * (raw curves: the envelope stays visible) or its mean (smoothed ones) */
#define PLOT_POINTS 1600

typedef struct {
    const double *x, *y;
    long n;
    const char *color, *label;
    double width, opacity;
    int envelope, markers;
} curve_t;

/* Fewer points for the picture: per bucket of consecutive points, its min and max (envelope)
 * or its mean. out arrays hold 2·PLOT_POINTS. */
static long thin(const curve_t *c, double *ox, double *oy) {
    if (c->n <= PLOT_POINTS) {
        memcpy(ox, c->x, sizeof(double) * c->n);
        memcpy(oy, c->y, sizeof(double) * c->n);
        return c->n;
    }
    long m = 0, nb = c->envelope ? PLOT_POINTS / 2 : PLOT_POINTS;
    for (long k = 0; k < nb; k++) {
        long a = c->n * k / nb, b = c->n * (k + 1) / nb;
        double lo = INFINITY, hi = -INFINITY, s = 0;
        long ilo = a, ihi = a, cnt = 0;
        for (long i = a; i < b; i++) {
            if (!isfinite(c->y[i])) continue;
            if (c->y[i] < lo) { lo = c->y[i]; ilo = i; }
            if (c->y[i] > hi) { hi = c->y[i]; ihi = i; }
            s += c->y[i];
            cnt++;
        }
        if (!cnt) { ox[m] = c->x[a]; oy[m++] = NAN; continue; }
        if (c->envelope) {
            long first = ilo < ihi ? ilo : ihi, second = ilo < ihi ? ihi : ilo;
            ox[m] = c->x[first]; oy[m++] = c->y[first];
            ox[m] = c->x[second]; oy[m++] = c->y[second];
        } else {
            ox[m] = 0.5 * (c->x[a] + c->x[b - 1]);
            oy[m++] = s / cnt;
        }
    }
    return m;
}

/* One chart: the curves over steps, restarts marked, a legend, notes under it. */
static char *chart(const report_runlog_t *L, const char *title, const char *ylabel, const curve_t *cv, int nc, int logy,
                   int y_from_zero, const char *note) {
    buf_t b = {0};
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < nc; k++)
        for (long i = 0; i < cv[k].n; i++) {
            double y = cv[k].y[i];
            if (!isfinite(y) || (logy && !(y > 0))) continue;
            xmin = fmin(xmin, cv[k].x[i]); xmax = fmax(xmax, cv[k].x[i]);
            ymin = fmin(ymin, y); ymax = fmax(ymax, y);
        }
    int have = isfinite(xmin);
    if (!have) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
    if (xmax <= xmin) { xmin -= 1; xmax += 1; }
    if (y_from_zero && !logy && ymin > 0) ymin = 0;
    svg_axes_t A = {90, PLOT_W - 30, 56, PLOT_H - 74, xmin, xmax, 0, 0, 0, logy};
    if (logy) {
        A.ly0 = log10(ymin) - 0.05; A.ly1 = log10(ymax) + 0.05;
        if (A.ly1 - A.ly0 < 0.3) { double m = 0.5 * (A.ly0 + A.ly1); A.ly0 = m - 0.15; A.ly1 = m + 0.15; }
    } else {
        double pad = ymax > ymin ? 0.05 * (ymax - ymin) : fabs(ymax) > 0 ? 0.05 * fabs(ymax) : 1;
        A.ly0 = ymin - (y_from_zero && ymin == 0 ? 0 : pad);
        A.ly1 = ymax + pad;
    }
    int height = PLOT_H + (note && strlen(note) > 140 ? 14 : 0);
    svg_begin(&b, PLOT_W, height);
    char text[1024];
    svg_draw_axes(&b, &A, NULL, 0, "step", ylabel, title);
    svg_clip(&b, &A, "plot");
    /* restarts: where each later invocation took up the run */
    for (int i = 1; i < L->ninv; i++) {
        double x = svg_x(&A, (double)L->inv[i].start_step);
        if (x < A.x0 - 0.5 || x > A.x1 + 0.5) continue;
        buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999999\" stroke-dasharray=\"4,3\"/>\n",
                   x, A.y0, x, A.y1);
        if (L->ninv <= 12) {
            snprintf(text, sizeof text, "restart %d", i);
            buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#777777\" transform=\"rotate(-90 %.1f %.1f)\" "
                           "text-anchor=\"end\">", x - 3, A.y0 + 4, x - 3, A.y0 + 4);
            svg_escape(&b, text);
            buf_puts(&b, "</text>\n");
        }
    }
    double *tx = malloc(sizeof(double) * 2 * PLOT_POINTS), *ty = malloc(sizeof(double) * 2 * PLOT_POINTS);
    if (!tx || !ty) { free(tx); free(ty); buf_free(&b); return NULL; }
    for (int k = 0; k < nc; k++) {
        long m = thin(&cv[k], tx, ty);
        char attrs[256];
        snprintf(attrs, sizeof attrs, " clip-path=\"url(#plot)\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\"",
                 cv[k].color, cv[k].width, cv[k].opacity);
        svg_polyline(&b, &A, tx, ty, m, attrs);
        if (cv[k].markers)
            for (long i = 0; i < m; i++)
                if (isfinite(ty[i]))
                    buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", svg_x(&A, tx[i]), svg_y(&A, ty[i]),
                               cv[k].color);
    }
    free(tx);
    free(ty);
    if (!have) svg_text(&b, 0.5 * (A.x0 + A.x1), 0.5 * (A.y0 + A.y1), "middle", 13, " fill=\"#555555\"", "no data in this run");
    /* legend: one row above the plot, right-aligned, one entry per labelled curve */
    double lx = A.x1;
    for (int k = nc - 1; k >= 0; k--) {
        if (!cv[k].label) continue;
        lx -= 34 + 6.5 * (double)strlen(cv[k].label) + 14;
        buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\" "
                       "stroke-opacity=\"%.2f\"/>\n", lx, A.y0 - 14, lx + 24, A.y0 - 14, cv[k].color, cv[k].width > 1.5 ? cv[k].width : 2,
                   cv[k].opacity > 0.5 ? cv[k].opacity : 0.6);
        svg_text(&b, lx + 30, A.y0 - 10, "start", 11, "", cv[k].label);
    }
    if (note) svg_text_wrapped(&b, 20, PLOT_H - 16, 11, " fill=\"#444444\"", note, 140, 14);
    svg_text(&b, PLOT_W - 30, 18, "end", 11, " fill=\"#777777\"", L->dir);
    svg_end(&b);
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}

/* Column of the step lines as an array (NaN where absent). */
static double *column(const report_runlog_t *L, size_t offset) {
    double *v = malloc(sizeof(double) * (size_t)(L->nsteps > 0 ? L->nsteps : 1));
    if (v)
        for (long i = 0; i < L->nsteps; i++) v[i] = *(const double *)((const char *)&L->steps[i] + offset);
    return v;
}

/* Does a positive series span more than two decades (a log axis then shows it better)? */
static int wants_log(const double *y, long n) {
    double lo = INFINITY, hi = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(y[i]) && y[i] > 0) { lo = fmin(lo, y[i]); hi = fmax(hi, y[i]); }
    for (long i = 0; i < n; i++) if (isfinite(y[i]) && y[i] <= 0) return 0;
    return hi > 0 && hi / lo > 100;
}

char *report_run_plot(const report_runlog_t *L, int plot, long window) {
    long n = L->nsteps;
    double *x = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double *c[4] = {NULL}, *s[4] = {NULL};
    char *out = NULL, note[512];
    if (!x) return NULL;
    for (long i = 0; i < n; i++) x[i] = (double)L->steps[i].step;
    snprintf(note, sizeof note, "Smoothed: centred moving average over %ld steps. Dashed lines: restarts (a resumed or "
             "requeued invocation took up the run at that step).", window);
    if (plot == REPORT_PLOT_KNN) {
        static const char *const color[FEATSET_KINDS] = {"#0072b2", "#d55e00", "#009e73"};
        long m = L->nmon;
        double *mx = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1)), *my[FEATSET_KINDS];
        curve_t cv[FEATSET_KINDS];
        int ok = mx != NULL;
        for (int k = 0; k < FEATSET_KINDS; k++) ok &= (my[k] = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1))) != NULL;
        char label[FEATSET_KINDS][96];
        for (int k = 0; ok && k < FEATSET_KINDS; k++) {
            for (long i = 0; i < m; i++) { mx[i] = (double)L->mon[i].step; my[k][i] = L->mon[i].top1[k]; }
            snprintf(label[k], sizeof label[k], "%s%s", featset_kinds[k],
                     k == 0 ? " (cls token)" : k == 1 ? " (mean normed patch)" : " (global pool)");
            cv[k] = (curve_t){mx, my[k], m, color[k], label[k], 2, 1, 0, 1};
        }
        if (ok) {
            snprintf(note, sizeof note, "k-NN top-1 (k %d, T 0.07) of a fixed bank of %ld train and %ld val images, with the "
                     "weights after each step shown; chance is 100 / classes.", 20, m ? L->mon[m - 1].bank : 0L,
                     m ? L->mon[m - 1].queries : 0L);
            out = chart(L, "k-NN monitor: top-1 per readout", "top-1 (%)", cv, FEATSET_KINDS, 0, 0, note);
        }
        free(mx);
        for (int k = 0; k < FEATSET_KINDS; k++) free(my[k]);
        free(x);
        return out;
    }
    static const size_t off[] = {offsetof(report_step_line_t, loss), offsetof(report_step_line_t, lr),
                                 offsetof(report_step_line_t, grad_norm), offsetof(report_step_line_t, images_per_s)};
    if (plot == REPORT_PLOT_TIME_SPLIT) {
        static const size_t toff[4] = {offsetof(report_step_line_t, step_s), offsetof(report_step_line_t, compute_s),
                                       offsetof(report_step_line_t, comm_s), offsetof(report_step_line_t, data_s)};
        static const char *const color[4] = {"#333333", "#0072b2", "#d55e00", "#009e73"};
        static const char *const label[4] = {"step (total)", "compute", "communication", "waiting for data"};
        curve_t cv[4];
        int ok = 1;
        double sum[4] = {0};
        for (int k = 0; k < 4; k++) {
            ok &= (c[k] = column(L, toff[k])) != NULL && (s[k] = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1))) != NULL;
            if (!ok) break;
            report_smooth(c[k], n, window, s[k]);
            for (long i = 0; i < n; i++) sum[k] += isfinite(c[k][i]) ? c[k][i] : 0;
            cv[k] = (curve_t){x, s[k], n, color[k], label[k], k == 0 ? 2.5 : 2, 1, 0, 0};
        }
        if (ok) {
            double tot = sum[0] > 0 ? sum[0] : 1;
            snprintf(note, sizeof note, "Seconds per step (the slowest rank's), smoothed over %ld steps; of all step time: "
                     "compute %.1f%%, communication %.1f%%, waiting for data %.1f%%. Dashed: restarts.", window,
                     100 * sum[1] / tot, 100 * sum[2] / tot, 100 * sum[3] / tot);
            out = chart(L, "Where a step's time goes", "seconds per step", cv, 4, 0, 1, note);
        }
    } else {
        static const char *const title[] = {"Training loss", "Learning rate", "Gradient norm (before clipping)",
                                            "Throughput"};
        static const char *const ylabel[] = {"loss", "lr", "global gradient norm", "images/s"};
        int ok = (c[0] = column(L, off[plot])) != NULL && (s[0] = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1))) != NULL;
        if (ok) {
            report_smooth(c[0], n, window, s[0]);
            curve_t cv[2] = {{x, c[0], n, "#0072b2", "raw", 1, 0.35, 1, 0}, {x, s[0], n, "#0072b2", "smoothed", 2.2, 1, 0, 0}};
            int logy = plot == REPORT_PLOT_GRAD_NORM && wants_log(c[0], n);
            if (plot == REPORT_PLOT_LR)
                out = chart(L, title[plot], ylabel[plot], (curve_t[]){{x, c[0], n, "#0072b2", NULL, 2, 1, 0, 0}}, 1, 0, 1,
                            "The schedule: linear warmup, then half-cycle cosine. Dashed lines: restarts.");
            else
                out = chart(L, title[plot], ylabel[plot], cv, 2, logy, plot == REPORT_PLOT_THROUGHPUT, note);
        }
    }
    for (int k = 0; k < 4; k++) { free(c[k]); free(s[k]); }
    free(x);
    return out;
}

char *report_orders_svg(const report_orders_t *O) {
    int z, panel, gap, w, h;
    report_orders_layout(O, &z, &panel, &gap);
    int strip = REPORT_PANELS * panel + (REPORT_PANELS - 1) * gap, left = 20, top = 70, row = panel + 34;
    int width = strip + 2 * left, height = top + O->n * row + 56;
    buf_t b = {0};
    svg_begin(&b, width, height);
    svg_text(&b, left, 26, "start", 16, " font-weight=\"bold\"", "The semantic order");
    const char *const col[REPORT_PANELS] = {"image (centre outlined)", report_signal_label(O->signal), "semantic order",
                                            "raster order", "stochastic order"};
    for (int k = 0; k < REPORT_PANELS; k++)
        svg_text(&b, left + k * (panel + gap) + 0.5 * panel, top - 10, "middle", panel >= 160 ? 12 : 10, "", col[k]);
    for (int i = 0; i < O->n; i++) {
        buf_t png = {0};
        if (report_orders_png(O, i, &png)) { buf_free(&png); buf_free(&b); return NULL; }
        w = strip;
        h = panel;
        double y = top + (double)i * row;
        buf_printf(&b, "<image x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" xlink:href=\"data:image/png;base64,", left, y, w, h);
        base64_append(&b, (const uint8_t *)png.s, png.len);
        buf_puts(&b, "\"/>\n");
        buf_free(&png);
        char cap[256];
        int c = O->center[i];
        snprintf(cap, sizeof cap, "val image %lld, label %d: centre patch (row %d, col %d) of %dx%d, %s %.3f",
                 (long long)O->ids[i], O->labels[i], c / O->G, c % O->G, O->G, O->G, report_signal_label(O->signal),
                 O->sim[(long)i * O->L + c]);
        svg_text(&b, left, y + h + 16, "start", 11, " fill=\"#444444\"", cap);
    }
    svg_text_wrapped(&b, left, height - 30, 11, " fill=\"#444444\"",
                     "Heat maps: first predicted (or most similar to the cls token) brightest. The semantic order starts at "
                     "the patch most like the cls token and grows in rings; raster goes row by row; stochastic is random.",
                     strip / 6, 14);
    svg_end(&b);
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}
