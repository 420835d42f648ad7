/* The scaling plot as a self-contained SVG (helpers: report/svg.h): throughput against ranks on log-log axes with each
 * series' ideal line, and an efficiency panel that also carries the projection (a model,
 * dotted). Plain SVG 1.1 elements only, so any browser or rsvg shows it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "report/svg.h"
#include "semaim/report.h"

#define SVG_W 1000
static const char *const series_color[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"};
static const char *const model_color[] = {"#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1b9e77", "#666666"};
static const char *const model_dash[] = {"2,3", "6,3", "8,3,2,3", "1,2", "10,4"};

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
    double extra[64];
    int nextra = 0;
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
    svg_axes_t A = {80, 460, 90, 370, 0, 0, 0, 0, 1, 1};
    A.lx0 = log2(nmin) - 0.35;
    A.lx1 = log2(nmax) + 0.35;
    if (nmin == nmax) { A.lx0 -= 0.65; A.lx1 += 0.65; }
    A.ly0 = log10(vmin) - 0.12;
    A.ly1 = log10(vmax) + 0.12;
    if (A.ly1 - A.ly0 < 0.7) { double m = 0.5 * (A.ly0 + A.ly1); A.ly0 = m - 0.35; A.ly1 = m + 0.35; }
    int emaxr = J->have && J->ranks[J->nranks - 1] > nmax ? J->ranks[J->nranks - 1] : nmax;
    svg_axes_t E = {590, 970, 90, 370, 0, 0, 0, 0, 1, 0};
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
    svg_begin(&b, SVG_W, height);
    char title[512];
    snprintf(title, sizeof title, "Scaling report: %s", R->name);
    svg_text(&b, 20, 30, "start", 18, " font-weight=\"bold\"", title);
    snprintf(title, sizeof title, "%d runs, %d series, made %s", R->nruns, R->nseries, R->created);
    svg_text(&b, 20, 50, "start", 12, " fill=\"#555555\"", title);

    svg_draw_axes(&b, &A, extra, nextra, "ranks (MPI processes)", "images/s (steady state)", "Throughput, log-log");
    svg_draw_axes(&b, &E, extra, nextra, "ranks (MPI processes)", "efficiency",
              J->have ? "Efficiency (measured) and projection (model)" : "Efficiency");
    buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\" stroke-dasharray=\"5,4\"/>\n",
                    E.x0, svg_y(&E, 1), E.x1, svg_y(&E, 1));
    buf_printf(&b, "<clipPath id=\"clipE\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n",
                    E.x0, E.y0, E.x1 - E.x0, E.y1 - E.y0);

    /* runs outside every series, so nothing measured is hidden */
    for (int i = 0; i < R->nruns; i++)
        if (!R->in_series || !R->in_series[i])
            marker(&b, REPORT_ANY, svg_x(&A, R->runs[i].ranks), svg_y(&A, R->runs[i].throughput), "#777777");

    /* the projection under the measurements */
    if (J->have)
        for (int w = 0; w <= J->nbw; w++) {
            const char *c = model_color[w < J->nbw ? w % 5 : 5];
            buf_printf(&b, "<polyline clip-path=\"url(#clipE)\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                                "stroke-dasharray=\"%s\" points=\"", c, model_dash[w % 5]);
            for (int k = 0; k < J->nranks; k++)
                buf_printf(&b, "%.1f,%.1f ", svg_x(&E, J->ranks[k]), svg_y(&E, J->eff[w][k]));
            buf_puts(&b, "\"/>\n");
        }

    for (int s = 0; s < R->nseries; s++) {
        const report_series_t *S = &R->series[s];
        const char *c = series_color[s % 7];
        const report_point_t *P0 = &S->points[0], *PL = &S->points[S->npoints - 1];
        if (S->npoints > 1)
            buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                                "stroke-dasharray=\"6,4\" opacity=\"0.8\"/>\n",
                            svg_x(&A, P0->ranks), svg_y(&A, P0->throughput), svg_x(&A, PL->ranks),
                            svg_y(&A, P0->throughput * PL->ranks / P0->ranks), c);
        buf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int p = 0; p < S->npoints; p++)
            buf_printf(&b, "%.1f,%.1f ", svg_x(&A, S->points[p].ranks), svg_y(&A, S->points[p].throughput));
        buf_puts(&b, "\"/>\n");
        buf_printf(&b, "<polyline clip-path=\"url(#clipE)\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int p = 0; p < S->npoints; p++)
            buf_printf(&b, "%.1f,%.1f ", svg_x(&E, S->points[p].ranks), svg_y(&E, S->points[p].efficiency));
        buf_puts(&b, "\"/>\n");
        for (int p = 0; p < S->npoints; p++) {
            const report_point_t *P = &S->points[p];
            double x = svg_x(&A, P->ranks);
            if (P->interval != REPORT_IV_NONE && P->hi > P->lo) {
                double ylo = svg_y(&A, P->lo), yhi = svg_y(&A, P->hi);
                buf_printf(&b, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                                    "fill=\"none\"/>\n", x, ylo, yhi, x - 4, ylo, x + 4, x - 4, yhi, x + 4, c);
            }
            marker(&b, S->kind, x, svg_y(&A, P->throughput), c);
            double ye = svg_y(&E, P->efficiency > E.ly1 ? E.ly1 : P->efficiency);
            marker(&b, S->kind, svg_x(&E, P->ranks), ye, c);
        }
    }
    if (R->nseries == 0) {
        svg_text(&b, 0.5 * (E.x0 + E.x1), 0.5 * (E.y0 + E.y1), "middle", 13, " fill=\"#555555\"",
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
        svg_text(&b, x + 34, y, "start", 12, "", text);
    }
    if (outside) {
        double y = ly + 18 * R->nseries;
        marker(&b, REPORT_ANY, 80 + 13, y - 4, "#777777");
        svg_text(&b, 80 + 34, y, "start", 12, "", "run outside any series");
    }
    for (int w = 0; w < right; w++) {
        double x = 590, y = ly + 18 * w;
        char text[200];
        if (w < J->nbw) snprintf(text, sizeof text, "model: %g Gb/s interconnect (projection)", J->gbit[w]);
        else snprintf(text, sizeof text, "model: this machine's ring, %.3g GB/s (projection)", J->beta / 1e9);
        buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" "
                            "stroke-dasharray=\"%s\"/>\n", x, y - 4, x + 26, y - 4, model_color[w < J->nbw ? w % 5 : 5],
                        model_dash[w % 5]);
        svg_text(&b, x + 34, y, "start", 12, "", text);
    }
    const char *style = " fill=\"#444444\"";
    svg_text(&b, 20, fy, "start", 11, style,
            "Throughput X = global batch / median step time (the slowest rank's), warm-up steps dropped; bars: min-max over "
            "repeats, or a bootstrap 95% interval for a lone run.");
    svg_text(&b, 20, fy + 15, "start", 11, style,
            "Efficiency: strong X(N) / ((N/N0) X(N0)), weak t(N0) / t(N), with N0 the series' smallest rank count.");
    if (J->have) {
        char note[512];
        svg_text(&b, 20, fy + 30, "start", 11, style,
                "Projection, a model and not a measurement: E(N) = t_c / (t_c + T_ar(N)), T_ar(N) = 2(N\u2212" "1) \u03b1 + "
                "2(N\u2212" "1)/N \u00b7 bytes / \u03b2, fixed batch per rank.");
        snprintf(note, sizeof note, "\u03b1 = %.2f \u00b5s (%s), t_c = %.1f ms (run %s, %ld images per rank), bytes = %.1f MB of "
                 "fp32 gradients, \u03b2 = the bandwidth of each curve.", 1e6 * J->latency, J->latency_given ? "given" : "fitted",
                 1e3 * J->t_compute, R->runs[J->ref_run].name, J->batch, J->grad_bytes / 1e6);
        svg_text(&b, 20, fy + 45, "start", 11, style, note);
    }
    svg_end(&b);
    if (b.oom) { buf_free(&b); return NULL; }
    return b.s;
}
