/* The SVG helpers of the report room (report/svg.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "report/svg.h"
#include "semaim/report.h"

double svg_x(const svg_axes_t *a, double v) {
    double u = a->logx ? log2(v) : v;
    return a->x0 + (u - a->lx0) / (a->lx1 - a->lx0) * (a->x1 - a->x0);
}

double svg_y(const svg_axes_t *a, double v) {
    double t = a->logy ? (log10(v) - a->ly0) / (a->ly1 - a->ly0) : (v - a->ly0) / (a->ly1 - a->ly0);
    return a->y1 - t * (a->y1 - a->y0);
}

void svg_begin(buf_t *b, int width, int height) {
    buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                  "xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\" "
                  "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
               width, height, width, height);
    buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
}

void svg_end(buf_t *b) { buf_puts(b, "</svg>\n"); }

void svg_escape(buf_t *b, const char *s) {
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

void svg_text(buf_t *b, double x, double y, const char *anchor, int size, const char *style, const char *s) {
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s>", x, y, anchor, size, style);
    svg_escape(b, s);
    buf_puts(b, "</text>\n");
}

int svg_text_wrapped(buf_t *b, double x, double y, int size, const char *style, const char *s, int max_chars, double line_h) {
    int lines = 0;
    size_t n = strlen(s);
    char line[2048];
    for (size_t i = 0; i < n;) {
        size_t len = n - i, cut = len;
        if ((int)len > max_chars) {   /* the last space that keeps the line short enough, else a hard cut */
            cut = (size_t)max_chars;
            while (cut > 0 && s[i + cut] != ' ') cut--;
            if (cut == 0) cut = (size_t)max_chars;
        }
        if (cut >= sizeof line) cut = sizeof line - 1;
        memcpy(line, s + i, cut);
        line[cut] = 0;
        svg_text(b, x, y + lines * line_h, "start", size, style, line);
        lines++;
        i += cut;
        while (i < n && s[i] == ' ') i++;
    }
    return lines;
}

void svg_fmt_value(char *out, size_t n, double v) {
    double m = fabs(v);
    if (m >= 1e6) snprintf(out, n, "%.0fM", v / 1e6);
    else if (m >= 1e4) snprintf(out, n, "%.0fk", v / 1e3);
    else if (m >= 1 || v == 0) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%g", v);
}

int svg_nice_ticks(double lo, double hi, double *ticks, int max) {
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || max < 2) return 0;
    double p = pow(10, floor(log10((hi - lo) / max))), step = p;
    static const double mult[] = {1, 2, 5, 10, 20, 50};
    for (int i = 0; i < 6; i++) {
        step = mult[i] * p;
        if ((hi - lo) / step <= max - 1) break;
    }
    int n = 0;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step && n < max; v += step)
        ticks[n++] = fabs(v) < 1e-12 * step ? 0 : v;
    return n;
}

/* A linear tick's label: as many decimals as its step needs. */
static void tick_label(char *out, size_t n, double v, double step) {
    if (step >= 1) svg_fmt_value(out, n, v);
    else snprintf(out, n, "%.*f", (int)ceil(-log10(step) - 1e-9), v);
}

void svg_draw_axes(buf_t *b, const svg_axes_t *a, const double *extra_x, int nextra, const char *xlabel,
                   const char *ylabel, const char *title) {
    buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" stroke=\"#444444\"/>\n",
               a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    double ticks[96];
    int nt = 0;
    if (a->logx) {
        for (int k = (int)ceil(a->lx0 - 1e-9); k <= (int)floor(a->lx1 + 1e-9) && nt < 40; k++)
            if (k >= 0 && k < 31) ticks[nt++] = 1 << k;
    } else nt = svg_nice_ticks(a->lx0, a->lx1, ticks, 8);
    int nbase = nt;
    for (int i = 0; i < nextra && nt < 96; i++) {
        int dup = 0;
        for (int t = 0; t < nt; t++) dup |= ticks[t] == extra_x[i];
        if (!dup) ticks[nt++] = extra_x[i];
    }
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && ticks[j] < ticks[j - 1]; j--) { double t = ticks[j]; ticks[j] = ticks[j - 1]; ticks[j - 1] = t; }
    double xstep = !a->logx && nbase > 1 ? ticks[1] - ticks[0] : 1, last = -1e9;
    for (int t = 0; t < nt; t++) {
        double x = svg_x(a, ticks[t]);
        if (x < a->x0 - 0.5 || x > a->x1 + 0.5) continue;
        buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", x, a->y0, x, a->y1);
        if (x - last < 22) continue;   /* labels of close ticks would overlap */
        char s[32];
        if (a->logx) snprintf(s, sizeof s, "%d", (int)ticks[t]);
        else tick_label(s, sizeof s, ticks[t], xstep);
        svg_text(b, x, a->y1 + 16, "middle", 12, "", s);
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
                double y = svg_y(a, v);
                char s[32];
                svg_fmt_value(s, sizeof s, v);
                buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", a->x0, y, a->x1, y);
                svg_text(b, a->x0 - 6, y + 4, "end", 12, "", s);
            }
    } else {
        double yt[16];
        int ny = svg_nice_ticks(a->ly0, a->ly1, yt, 10);
        for (int t = 0; t < ny; t++) {
            double y = svg_y(a, yt[t]);
            char s[32];
            tick_label(s, sizeof s, yt[t], ny > 1 ? yt[1] - yt[0] : 1);
            buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", a->x0, y, a->x1, y);
            svg_text(b, a->x0 - 6, y + 4, "end", 12, "", s);
        }
    }
    buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n",
               a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    svg_text(b, 0.5 * (a->x0 + a->x1), a->y1 + 36, "middle", 13, "", xlabel);
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 %.1f %.1f)\">",
               a->x0 - 52, 0.5 * (a->y0 + a->y1), a->x0 - 52, 0.5 * (a->y0 + a->y1));
    svg_escape(b, ylabel);
    buf_puts(b, "</text>\n");
    svg_text(b, a->x0, a->y0 - 10, "start", 14, " font-weight=\"bold\"", title);
}

void svg_clip(buf_t *b, const svg_axes_t *a, const char *id) {
    buf_printf(b, "<clipPath id=\"%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", id, a->x0,
               a->y0, a->x1 - a->x0, a->y1 - a->y0);
}

void svg_polyline(buf_t *b, const svg_axes_t *a, const double *x, const double *y, long n, const char *attrs) {
    int open = 0;
    for (long i = 0; i < n; i++) {
        int ok = isfinite(x[i]) && isfinite(y[i]) && (!a->logy || y[i] > 0) && (!a->logx || x[i] > 0);
        if (!ok) {
            if (open) buf_puts(b, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open) buf_printf(b, "<polyline fill=\"none\"%s points=\"", attrs);
        open = 1;
        buf_printf(b, "%.1f,%.1f ", svg_x(a, x[i]), svg_y(a, y[i]));
    }
    if (open) buf_puts(b, "\"/>\n");
}
