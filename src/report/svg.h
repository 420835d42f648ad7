/* The SVG helpers of the report room: self-contained SVG 1.1 (plain elements only, so any
 * browser and rsvg-convert show it), axes with ticks and grid, text made safe, polylines.
 * Used by the scaling plot (scaling_svg.c) and the run report's plots (run_svg.c). */
#ifndef SEMAIM_REPORT_SVG_H
#define SEMAIM_REPORT_SVG_H
#include <stddef.h>
#include "core/buf.h"

/* A plot box in pixels and the data range it shows: lx0..lx1 in data units, or in log2 units
 * for a log x axis (rank counts); ly0..ly1 in data units, or log10 units for a log y axis. */
typedef struct { double x0, x1, y0, y1, lx0, lx1, ly0, ly1; int logx, logy; } svg_axes_t;

double svg_x(const svg_axes_t *a, double v);
double svg_y(const svg_axes_t *a, double v);
/* The header (width × height, white background) and the end of a document. */
void svg_begin(buf_t *b, int width, int height);
void svg_end(buf_t *b);
/* Text for an element's content or attribute (report_clean_text, then &<>" escaped). */
void svg_escape(buf_t *b, const char *s);
/* <text> at (x, y); anchor start|middle|end; style: extra attributes (" fill=..."), or "". */
void svg_text(buf_t *b, double x, double y, const char *anchor, int size, const char *style, const char *s);
/* svg_text broken at spaces into lines of at most max_chars, line_h apart; returns the lines. */
int svg_text_wrapped(buf_t *b, double x, double y, int size, const char *style, const char *s, int max_chars, double line_h);
/* 1.2M, 35k, 12, 0.5: short tick labels. */
void svg_fmt_value(char *out, size_t n, double v);
/* Up to max "nice" values (1, 2 or 5 times a power of ten apart) covering lo..hi; the count. */
int svg_nice_ticks(double lo, double hi, double *ticks, int max);
/* Frame, grid and tick labels, axis labels and title. x ticks: powers of two and extra_x
 * (the measured rank counts) on a log axis, nice values on a linear one; y ticks: 1-2-5 per
 * decade on a log axis, nice values on a linear one. */
void svg_draw_axes(buf_t *b, const svg_axes_t *a, const double *extra_x, int nextra, const char *xlabel,
                   const char *ylabel, const char *title);
/* A clip path of the plot box, for curves that may leave it. */
void svg_clip(buf_t *b, const svg_axes_t *a, const char *id);
/* The points (x[i], y[i]) as a polyline; attrs: its stroke attributes (" stroke=... "); points
 * that are not finite (or not positive on a log axis) break the line. */
void svg_polyline(buf_t *b, const svg_axes_t *a, const double *x, const double *y, long n, const char *attrs);
#endif
