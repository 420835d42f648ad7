/* The scaling plot as a self-contained SVG: throughput against ranks on log-log axes with each
 * series' ideal line, and an efficiency panel that also carries the projection (a model,
 * dotted). Plain SVG 1.1 elements only, so any browser or rsvg shows it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/report.h"

#define SVG_W 1000
static const char *const series_color[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"};
static const char *const model_color[] = {"#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1b9e77", "#666666"};
static const char *const model_dash[] = {"2,3", "6,3", "8,3,2,3", "1,2", "10,4"};

typedef struct { double x0, x1, y0, y1, lx0, lx1, ly0, ly1; int logy; } axes_t;

static double ax_x(const axes_t *a, double ranks) {
    return a->x0 + (log2(ranks) - a->lx0) / (a->lx1 - a->lx0) * (a->x1 - a->x0);
}
static double ax_y(const axes_t *a, double v) {
    double t = a->logy ? (log10(v) - a->ly0) / (a->ly1 - a->ly0) : (v - a->ly0) / (a->ly1 - a->ly0);
    return a->y1 - t * (a->y1 - a->y0);
}

static void xml_text(buf_t *b, const char *s) {
    char c[2048];
    report_clean_text(s, c, sizeof c);
    for (const char *p = c; *p; p++) {
        if (*p == '&') buf_puts(b, "&amp;");
        else if (*p == '<') buf_puts(b, "&lt;");
        else if (*p == '>') buf_puts(b, "&gt;");
        else if (*p == '"') buf_puts(b, "&quot;");
        else buf_add(b, p, 1);
    }
}

static void text_at(buf_t *b, double x, double y, const char *anchor, int size, const char *style, const char *s) {
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s>", x, y, anchor, size, style);
    xml_text(b, s);
    buf_puts(b, "</text>\n");
}

static void fmt_value(char *out, size_t n, double v) {
    if (v >= 1e6) snprintf(out, n, "%.0fM", v / 1e6);
    else if (v >= 1e4) snprintf(out, n, "%.0fk", v / 1e3);
    else if (v >= 1) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%g", v);
}

/* Frame, grid and tick labels; x ticks at powers of two and at the rank counts measured. */
static void draw_axes(buf_t *b, const axes_t *a, const int *extra_x, int nextra, const char *xlabel, const char *ylabel,
                      const char *title) {
    buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" stroke=\"#444444\"/>\n",
                    a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    int ticks[64], nt = 0;
    for (int k = (int)ceil(a->lx0 - 1e-9); k <= (int)floor(a->lx1 + 1e-9) && nt < 40; k++)
        if (k >= 0 && k < 31) ticks[nt++] = 1 << k;
    for (int i = 0; i < nextra && nt < 64; i++) {
        int dup = 0;
        for (int t = 0; t < nt; t++) dup |= ticks[t] == extra_x[i];
        if (!dup) ticks[nt++] = extra_x[i];
    }
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && ticks[j] < ticks[j - 1]; j--) { int t = ticks[j]; ticks[j] = ticks[j - 1]; ticks[j - 1] = t; }
    double last = -1e9;
    for (int t = 0; t < nt; t++) {
        double x = ax_x(a, ticks[t]);
        if (x < a->x0 - 0.5 || x > a->x1 + 0.5) continue;
        buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", x, a->y0, x, a->y1);
        if (x - last < 22) continue;   /* labels of close rank counts would overlap */
        char s[32];
        snprintf(s, sizeof s, "%d", ticks[t]);
        text_at(b, x, a->y1 + 16, "middle", 12, "", s);
        last = x;
    }
    if (a->logy) {
        int span = (int)ceil(a->ly1) - (int)floor(a->ly0);
        for (int k = (int)floor(a->ly0); k <= (int)ceil(a->ly1); k++)
            for (int m = 1; m <= 5; m++) {
                if (m != 1 && m != 2 && m != 5) continue;
                if (span > 3 && m != 1) continue;
                double v = m * pow(10, k), lv = log10(v);
                if (lv < a->ly0 || lv > a->ly1) continue;
                double y = ax_y(a, v);
                char s[32];
                fmt_value(s, sizeof s, v);
                buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", a->x0, y, a->x1, y);
                text_at(b, a->x0 - 6, y + 4, "end", 12, "", s);
            }
    } else {
        double step = a->ly1 - a->ly0 > 1.6 ? 0.5 : 0.2;
        for (double v = a->ly0; v <= a->ly1 + 1e-9; v += step) {
            double y = ax_y(a, v);
            char s[32];
            snprintf(s, sizeof s, "%.1f", v);
            buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", a->x0, y, a->x1, y);
            text_at(b, a->x0 - 6, y + 4, "end", 12, "", s);
        }
    }
    buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n",
                    a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    text_at(b, 0.5 * (a->x0 + a->x1), a->y1 + 36, "middle", 13, "", xlabel);
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 %.1f %.1f)\">",
                    a->x0 - 52, 0.5 * (a->y0 + a->y1), a->x0 - 52, 0.5 * (a->y0 + a->y1));
    xml_text(b, ylabel);
    buf_puts(b, "</text>\n");
    text_at(b, a->x0, a->y0 - 10, "start", 14, " font-weight=\"bold\"", title);
}

static void marker(buf_t *b, int kind, double x, double y, const char *color) {
    if (kind == REPORT_WEAK)
        buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\" stroke=\"#ffffff\"/>\n", x - 4, y - 4, color);
    else if (kind == REPORT_STRONG)
        buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#ffffff\"/>\n", x, y, color);
    else
        buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n", x, y, color);
}

char *report_svg(const report_t *R) {
    buf_t b = {0};
    const report_proj_t *J = &R->proj;
    int nmin = 1 << 30, nmax = 0;
    double vmin = INFINITY, vmax = 0, emax = 1.0;
    int extra[64], nextra = 0;
    for (int i = 0; i < R->nruns; i++) {
        const report_run_t *r = &R->runs[i];
        if (r->ranks < nmin) nmin = r->ranks;
        if (r->ranks > nmax) nmax = r->ranks;
        if (r->throughput < vmin) vmin = r->throughput;
        if (r->throughput > vmax) vmax = r->throughput;
        int dup = 0;
        for (int k = 0; k < nextra; k++) dup |= extra[k] == r->ranks;
        if (!dup && nextra < 64) extra[nextra++] = r->ranks;
    }
    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        const report_point_t *P0 = &S->points[0], *PL = &S->points[S->npoints - 1];
        double ideal = P0->throughput * PL->ranks / P0->ranks;
        if (ideal > vmax) vmax = ideal;
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            if (P->lo < vmin) vmin = P->lo;
            if (P->hi > vmax) vmax = P->hi;
            if (P->efficiency > emax && isfinite(P->efficiency)) emax = P->efficiency;
        }
    }
    if (nmax == 0) { nmin = nmax = 1; vmin = vmax = 1; }
    if (!(vmin > 0) || !isfinite(vmin)) vmin = vmax > 0 ? vmax : 1;
    axes_t A = {80, 460, 90, 370, 0, 0, 0, 0, 1};
    A.lx0 = log2(nmin) - 0.35;
    A.lx1 = log2(nmax) + 0.35;
    if (nmin == nmax) { A.lx0 -= 0.65; A.lx1 += 0.65; }
    A.ly0 = log10(vmin) - 0.12;
    A.ly1 = log10(vmax) + 0.12;
    if (A.ly1 - A.ly0 < 0.7) { double m = 0.5 * (A.ly0 + A.ly1); A.ly0 = m - 0.35; A.ly1 = m + 0.35; }
    int emaxr = J->have && J->ranks[J->nranks - 1] > nmax ? J->ranks[J->nranks - 1] : nmax;
    axes_t E = {590, 970, 90, 370, 0, 0, 0, 0, 0};
    E.lx0 = log2(nmin) - 0.35;
    E.lx1 = log2(emaxr) + 0.35;
    if (nmin == emaxr) { E.lx0 -= 0.65; E.lx1 += 0.65; }
    E.ly0 = 0;
    E.ly1 = emax <= 1.0 ? 1.1 : ceil(emax * 1.05 * 10) / 10;
    if (E.ly1 > 4) E.ly1 = 4;   /* a wild point is clipped at the top rather than flattening the rest */

    /* legend: series on the left, the model's curves on the right; notes under it */
    int outside = 0;
    for (int i = 0; i < R->nruns; i++) outside += !R->in_series || !R->in_series[i];
    int left = R->nseries + (outside > 0), right = J->have ? J->nbw + 1 : 0;
    double ly = 440, fy = ly + 18 * (left > right ? left : right) + 8;
    int height = (int)(fy + 15 * (J->have ? 4 : 2) + 10);
    buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
                    SVG_W, height, SVG_W, height);
    buf_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, height);
    char title[512];
    snprintf(title, sizeof title, "Scaling report: %s", R->name);
    text_at(&b, 20, 30, "start", 18, " font-weight=\"bold\"", title);
    snprintf(title, sizeof title, "%d runs, %d series, made %s", R->nruns, R->nseries, R->created);
    text_at(&b, 20, 50, "start", 12, " fill=\"#555555\"", title);

    draw_axes(&b, &A, extra, nextra, "ranks (MPI processes)", "images/s (steady state)", "Throughput, log-log");
    draw_axes(&b, &E, extra, nextra, "ranks (MPI processes)", "efficiency",
              J->have ? "Efficiency (measured) and projection (model)" : "Efficiency");
    buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\" stroke-dasharray=\"5,4\"/>\n",
                    E.x0, ax_y(&E, 1), E.x1, ax_y(&E, 1));
    buf_printf(&b, "<clipPath id=\"clipE\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n",
                    E.x0, E.y0, E.x1 - E.x0, E.y1 - E.y0);

    /* runs outside every series, so nothing measured is hidden */
    for (int i = 0; i < R->nruns; i++)
        if (!R->in_series || !R->in_series[i])
            marker(&b, REPORT_ANY, ax_x(&A, R->runs[i].ranks), ax_y(&A, R->runs[i].throughput), "#777777");

    /* the projection under the measurements */
    if (J->have)
        for (int w = 0; w <= J->nbw; w++) {
            const char *c = model_color[w < J->nbw ? w % 5 : 5];
            buf_printf(&b, "<polyline clip-path=\"url(#clipE)\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                                "stroke-dasharray=\"%s\" points=\"", c, model_dash[w % 5]);
            for (int k = 0; k < J->nranks; k++)
                buf_printf(&b, "%.1f,%.1f ", ax_x(&E, J->ranks[k]), ax_y(&E, J->eff[w][k]));
            buf_puts(&b, "\"/>\n");
        }

    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        const char *c = series_color[s % 7];
        const report_point_t *P0 = &S->points[0], *PL = &S->points[S->npoints - 1];
        if (S->npoints > 1)
            buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                                "stroke-dasharray=\"6,4\" opacity=\"0.8\"/>\n",
                            ax_x(&A, P0->ranks), ax_y(&A, P0->throughput), ax_x(&A, PL->ranks),
                            ax_y(&A, P0->throughput * PL->ranks / P0->ranks), c);
        buf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int p = 0; p < S->npoints; p++)
            buf_printf(&b, "%.1f,%.1f ", ax_x(&A, S->points[p].ranks), ax_y(&A, S->points[p].throughput));
        buf_puts(&b, "\"/>\n");
        buf_printf(&b, "<polyline clip-path=\"url(#clipE)\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int p = 0; p < S->npoints; p++)
            buf_printf(&b, "%.1f,%.1f ", ax_x(&E, S->points[p].ranks), ax_y(&E, S->points[p].efficiency));
        buf_puts(&b, "\"/>\n");
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            double x = ax_x(&A, P->ranks);
            if (P->interval != REPORT_IV_NONE && P->hi > P->lo) {
                double ylo = ax_y(&A, P->lo), yhi = ax_y(&A, P->hi);
                buf_printf(&b, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                                    "fill=\"none\"/>\n", x, ylo, yhi, x - 4, ylo, x + 4, x - 4, yhi, x + 4, c);
            }
            marker(&b, S->kind, x, ax_y(&A, P->throughput), c);
            double ye = ax_y(&E, P->efficiency > E.ly1 ? E.ly1 : P->efficiency);
            marker(&b, S->kind, ax_x(&E, P->ranks), ye, c);
        }
    }
    if (R->nseries == 0) {
        text_at(&b, 0.5 * (E.x0 + E.x1), 0.5 * (E.y0 + E.y1), "middle", 13, " fill=\"#555555\"",
                "no scaling series: see scaling.md");
    }

    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        double x = 80, y = ly + 18 * s;
        char label[256], text[400];
        report_series_label(R, s, label, sizeof label);
        snprintf(text, sizeof text, "%s: measured (dashed: ideal)", label);
        buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", x, y - 4,
                        x + 26, y - 4, series_color[s % 7]);
        marker(&b, S->kind, x + 13, y - 4, series_color[s % 7]);
        text_at(&b, x + 34, y, "start", 12, "", text);
    }
    if (outside) {
        double y = ly + 18 * R->nseries;
        marker(&b, REPORT_ANY, 80 + 13, y - 4, "#777777");
        text_at(&b, 80 + 34, y, "start", 12, "", "run outside any series");
    }
    for (int w = 0; w < right; w++) {
        double x = 590, y = ly + 18 * w;
        char text[200];
        if (w < J->nbw) snprintf(text, sizeof text, "model: %g Gb/s interconnect (projection)", J->gbit[w]);
        else snprintf(text, sizeof text, "model: this machine's ring, %.3g GB/s (projection)", J->beta / 1e9);
        buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" "
                            "stroke-dasharray=\"%s\"/>\n", x, y - 4, x + 26, y - 4, model_color[w < J->nbw ? w % 5 : 5],
                        model_dash[w % 5]);
        text_at(&b, x + 34, y, "start", 12, "", text);
    }
    const char *style = " fill=\"#444444\"";
    text_at(&b, 20, fy, "start", 11, style,
            "Throughput X = global batch / median step time (the slowest rank's), warm-up steps dropped; bars: min-max over "
            "repeats, or a bootstrap 95% interval for a lone run.");
    text_at(&b, 20, fy + 15, "start", 11, style,
            "Efficiency: strong X(N) / ((N/N0) X(N0)), weak t(N0) / t(N), with N0 the series' smallest rank count.");
    if (J->have) {
        char note[512];
        text_at(&b, 20, fy + 30, "start", 11, style,
                "Projection, a model and not a measurement: E(N) = t_c / (t_c + T_ar(N)), T_ar(N) = 2(N\u2212" "1) \u03b1 + "
                "2(N\u2212" "1)/N \u00b7 bytes / \u03b2, fixed batch per rank.");
        snprintf(note, sizeof note, "\u03b1 = %.2f \u00b5s (%s), t_c = %.1f ms (run %s, %ld images per rank), bytes = %.1f MB of "
                 "fp32 gradients, \u03b2 = the bandwidth of each curve.", 1e6 * J->latency, J->latency_given ? "given" : "fitted",
                 1e3 * J->t_compute, R->runs[J->ref_run].name, J->batch, J->grad_bytes / 1e6);
        text_at(&b, 20, fy + 45, "start", 11, style, note);
    }
    buf_puts(&b, "</svg>\n");
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}
