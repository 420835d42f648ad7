/* Antialiased triangle-filter resampling with centre-crop geometry.
 *
 * The filter is the one PIL calls BILINEAR and torch calls bilinear with antialias=True: a
 * triangle of radius 1 output pixel, widened to the input pixel spacing when shrinking, so
 * every input pixel contributes when downscaling (no aliasing) and upscaling is plain linear
 * interpolation. Window bounds and weights follow the PIL/torch formulas exactly so that a
 * torch reference can check us to within rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "prep.h"

enum { BLK = 8 };  /* rows transposed together: 8 pixels x 3 floats = 96 contiguous bytes */

void prep_geometry(int w, int h, int resize, int crop, prep_geom *g) {
    /* Shorter side to `resize`, the longer one truncated like torchvision's Resize(int). */
    if (w <= h) { g->rw = resize; g->rh = (int)((int64_t)resize * h / w); }
    else        { g->rh = resize; g->rw = (int)((int64_t)resize * w / h); }
    g->cw = g->ch = crop;
    g->x0 = (g->rw - crop) / 2;
    g->y0 = (g->rh - crop) / 2;
}

void prep_geometry_cap(int w, int h, int max_side, prep_geom *g) {
    /* The longer side to max_side, the shorter one rounded to nearest (at least 1 pixel), so
     * the aspect ratio changes as little as whole pixels allow; never enlarged. */
    int64_t L = w >= h ? w : h, s = w >= h ? h : w, S = s;
    if (L > max_side) { S = (s * max_side * 2 + L) / (2 * L); L = max_side; }
    if (S < 1) S = 1;
    g->rw = (int)(w >= h ? L : S); g->rh = (int)(w >= h ? S : L);
    g->cw = g->rw; g->ch = g->rh;
    g->x0 = g->y0 = 0;
}

int prep_dct_scale(int w, int h, const prep_geom *g) {
    /* Smallest m/8 whose decoded size still covers the resized size: the DCT-domain
     * reduction then does the coarse shrink, the triangle filter the rest. Only powers of two:
     * libjpeg-turbo's 3/8, 5/8, 6/8 and 7/8 IDCTs are plain C and slower than a full-size
     * SIMD decode (6/8 measured 25% slower than 8/8 on a 500x375 photo). */
    for (int m = 1; m < 8; m *= 2)
        if ((int64_t)w * m >= (int64_t)g->rw * 8 && (int64_t)h * m >= (int64_t)g->rh * 8) return m;
    return 8;
}

void prep_taps_free(prep_taps *t) {
    free(t->start); free(t->len); free(t->w);
    memset(t, 0, sizeof *t);
}

int prep_taps_build(prep_taps *t, int n_out, int offset, double scale, int n_in) {
    double support = scale >= 1.0 ? scale : 1.0, inv = scale >= 1.0 ? 1.0 / scale : 1.0;
    int kmax = (int)ceil(support) * 2 + 1;
    if (n_out > t->cap_out || kmax > t->cap_k) {
        prep_taps_free(t);
        t->start = malloc(sizeof(int) * (size_t)n_out);
        t->len = malloc(sizeof(int) * (size_t)n_out);
        t->w = malloc(sizeof(float) * (size_t)n_out * (size_t)kmax);
        if (!t->start || !t->len || !t->w) { prep_taps_free(t); return -1; }
        t->cap_out = n_out; t->cap_k = kmax;
    }
    t->n = n_out; t->k = kmax;
    for (int j = 0; j < n_out; j++) {
        double center = (offset + j + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        if (hi - lo > kmax) hi = lo + kmax;
        if (hi <= lo) { lo = lo < n_in ? lo : n_in - 1; hi = lo + 1; }  /* cannot happen; stay in bounds */
        int len = hi - lo;
        float *w = t->w + (size_t)j * kmax;
        double tot = 0;
        for (int k = 0; k < len; k++) {
            double x = fabs((lo + k - center + 0.5) * inv);
            tot += x < 1.0 ? 1.0 - x : 0.0;
        }
        for (int k = 0; k < kmax; k++) {
            double x = fabs((lo + k - center + 0.5) * inv);
            w[k] = k >= len ? 0.0f : tot > 0 ? (float)((x < 1.0 ? 1.0 - x : 0.0) / tot) : 1.0f / len;
        }
        t->start[j] = lo; t->len[j] = len;
    }
    return 0;
}

int prep_resample_plan(prep_resampler *r, const prep_geom *g, double ext_w, double ext_h, int dw, int dh) {
    /* The decoded image is dw x dh pixels, of which ext_w x ext_h is real picture: DCT
     * scaling rounds the size up to whole pixels, and the scale must use the true extent. */
    if (prep_taps_build(&r->tx, g->cw, g->x0, ext_w / g->rw, dw) || prep_taps_build(&r->ty, g->ch, g->y0, ext_h / g->rh, dh)) return -1;
    r->cx0 = dw; r->cx1 = 0; r->cy0 = dh; r->cy1 = 0;
    for (int j = 0; j < g->cw; j++) {
        if (r->tx.start[j] < r->cx0) r->cx0 = r->tx.start[j];
        if (r->tx.start[j] + r->tx.len[j] > r->cx1) r->cx1 = r->tx.start[j] + r->tx.len[j];
    }
    for (int i = 0; i < g->ch; i++) {
        if (r->ty.start[i] < r->cy0) r->cy0 = r->ty.start[i];
        if (r->ty.start[i] + r->ty.len[i] > r->cy1) r->cy1 = r->ty.start[i] + r->ty.len[i];
    }
    int nw = (r->cx1 - r->cx0) * 3, rows3 = g->ch * 3;
    size_t need = (size_t)BLK * (nw > rows3 ? nw : rows3) + (size_t)(r->cx1 - r->cx0) * rows3;
    if (need > r->cap) {
        free(r->tmp);
        r->tmp = malloc(need * sizeof(float));
        if (!r->tmp) { r->cap = 0; return -1; }
        r->cap = need;
    }
    return 0;
}

void prep_resample_run(prep_resampler *r, const uint8_t *src, size_t stride, int col0, int row0, uint8_t *out) {
    /* src points at decoded pixel (col0, row0) and must cover the planned window; out is
     * ch rows of cw RGB pixels (the planned output).
     * Both passes run as "weighted sums of whole rows", which vectorise: the vertical pass
     * over source rows, the horizontal one over the columns of a transposed buffer. Rows
     * are transposed in blocks of BLK so that each store fills a run of cache lines. */
    int ch = r->ty.n, cw = r->tx.n, cx0 = r->cx0, ncol = r->cx1 - r->cx0, nw = ncol * 3, rows3 = ch * 3;
    int wmax = nw > rows3 ? nw : rows3;
    float *restrict blk = r->tmp, *restrict tr = r->tmp + (size_t)BLK * wmax;   /* tr[x][i*3+c] */
    for (int i0 = 0; i0 < ch; i0 += BLK) {
        int nb = ch - i0 < BLK ? ch - i0 : BLK;
        for (int b = 0; b < nb; b++) {
            int i = i0 + b;
            float *restrict row = blk + (size_t)b * wmax;
            const float *w = r->ty.w + (size_t)i * r->ty.k;
            int len = r->ty.len[i];
            const uint8_t *restrict s0 = src + (size_t)(r->ty.start[i] - row0) * stride + (size_t)(cx0 - col0) * 3;
            float w0 = w[0];
            for (int x = 0; x < nw; x++) row[x] = w0 * s0[x];
            for (int k = 1; k < len; k++) {
                const uint8_t *restrict s = s0 + (size_t)k * stride;
                float wk = w[k];
                for (int x = 0; x < nw; x++) row[x] += wk * s[x];
            }
        }
        for (int x = 0; x < ncol; x++) {
            float *t = tr + (size_t)x * rows3 + i0 * 3;
            for (int b = 0; b < nb; b++)
                for (int c = 0; c < 3; c++) t[3 * b + c] = blk[(size_t)b * wmax + 3 * x + c];
        }
    }
    for (int j0 = 0; j0 < cw; j0 += BLK) {
        int nb = cw - j0 < BLK ? cw - j0 : BLK;
        for (int b = 0; b < nb; b++) {
            int j = j0 + b;
            float *restrict row = blk + (size_t)b * wmax;
            const float *w = r->tx.w + (size_t)j * r->tx.k;
            int len = r->tx.len[j];
            const float *restrict s0 = tr + (size_t)(r->tx.start[j] - cx0) * rows3;
            float w0 = w[0];
            for (int x = 0; x < rows3; x++) row[x] = w0 * s0[x];
            for (int k = 1; k < len; k++) {
                const float *restrict s = s0 + (size_t)k * rows3;
                float wk = w[k];
                for (int x = 0; x < rows3; x++) row[x] += wk * s[x];
            }
            for (int x = 0; x < rows3; x++) row[x] = row[x] < 0 ? 0 : row[x] > 255 ? 255 : row[x] + 0.5f;
        }
        for (int i = 0; i < ch; i++) {
            uint8_t *o = out + (size_t)i * cw * 3 + j0 * 3;
            for (int b = 0; b < nb; b++)
                for (int c = 0; c < 3; c++) o[3 * b + c] = (uint8_t)blk[(size_t)b * wmax + 3 * i + c];
        }
    }
}

void prep_resampler_free(prep_resampler *r) {
    prep_taps_free(&r->tx); prep_taps_free(&r->ty);
    free(r->tmp);
    memset(r, 0, sizeof *r);
}
