/* RandomResizedCrop / flip / normalise, the eval transform and the fine-tuning chain; see
 * data/augment.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/augment.h"
#include "semaim/rng.h"

const float aug_mean[3] = {0.485f, 0.456f, 0.406f};
const float aug_std[3] = {0.229f, 0.224f, 0.225f};

void augment_sample_scale(aug_params *p, int H, int W, double scale_min, uint64_t key) {
    rng_t r = rng_make(key);
    const double area = (double)H * W, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    int found = 0;
    for (int attempt = 0; attempt < 10 && !found; attempt++) {
        double target = area * (scale_min + (1.0 - scale_min) * rng_nextd(&r));
        double ratio = exp(lr0 + (lr1 - lr0) * rng_nextd(&r));
        /* rint = round half to even under the default rounding mode, as Python's round() */
        int w = (int)rint(sqrt(target * ratio)), h = (int)rint(sqrt(target / ratio));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            p->y0 = (int)rng_below(&r, (uint64_t)(H - h + 1));
            p->x0 = (int)rng_below(&r, (uint64_t)(W - w + 1));
            p->w = w; p->h = h; found = 1;
        }
    }
    if (!found) {
        double in_ratio = (double)W / H;
        int w = W, h = H;
        if (in_ratio < 3.0 / 4.0) h = (int)rint(w / (3.0 / 4.0));
        else if (in_ratio > 4.0 / 3.0) w = (int)rint(h * (4.0 / 3.0));
        if (h > H) h = H;   /* rounding can overshoot by one; torchvision would crop with padding */
        if (w > W) w = W;
        if (h < 1) h = 1;
        if (w < 1) w = 1;
        p->w = w; p->h = h; p->y0 = (H - h) / 2; p->x0 = (W - w) / 2;
    }
    /* the flip draw follows the crop draws in the same stream (counter 40 on), so it does not
     * depend on how many crop attempts were used */
    r.ctr = 40;
    p->flip = rng_nextd(&r) < 0.5;
}

void augment_sample(aug_params *p, int H, int W, uint64_t key) { augment_sample_scale(p, H, W, 0.2, key); }

/* Keys cubic convolution kernel with parameter a. */
static double cubic(double x, double a) {
    x = fabs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Weights for output indices o0..o0+n-1 of a 1-D resize of a box of length len to out: the box
 * starts off pixels after the first of the span pixels it may read (off and len are whole
 * numbers except for boxes of a DCT-scaled decode); tap window [lo, lo+cnt) inside [0, span)
 * and weights w[i·maxn + k]. */
static void weights(int *lo, int *cnt, float *w, int maxn, double off, double len, int span, int out, int o0, int n,
                    int interp) {
    double scale = len / out;
    for (int i = 0; i < n; i++) {
        int o = o0 + i;
        float *wi = w + (long)i * maxn;
        memset(wi, 0, sizeof(float) * maxn);
        if (interp == INTERP_TORCH) {
            /* torch upsample_bicubic2d: 4 taps around floor(src), indices clamped to the edge */
            double src = off + scale * (o + 0.5) - 0.5, f = floor(src), t = src - f;
            int ix = (int)f, a = ix - 1, b = ix + 2;
            if (a < 0) a = 0;
            if (a > span - 1) a = span - 1;
            if (b < 0) b = 0;
            if (b > span - 1) b = span - 1;
            lo[i] = a; cnt[i] = b - a + 1;
            for (int k = 0; k < 4; k++) {
                int j = ix - 1 + k;
                j = j < 0 ? 0 : j > span - 1 ? span - 1 : j;
                wi[j - a] += (float)cubic(t + 1 - k, -0.75);
            }
        } else {
            /* PIL ImagingResample / torch antialias: support 2·max(scale,1), renormalised */
            double fs = scale > 1 ? scale : 1, support = 2 * fs, center = off + (o + 0.5) * scale;
            int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
            if (xmin < 0) xmin = 0;
            if (xmax > span) xmax = span;
            if (xmax - xmin > maxn) xmax = xmin + maxn;   /* cannot happen; guards the table */
            if (xmax <= xmin) { xmin = xmin < span ? xmin : span - 1; xmax = xmin + 1; }   /* likewise */
            double tw[xmax - xmin], tot = 0;
            for (int x = xmin; x < xmax; x++) { tw[x - xmin] = cubic((x - center + 0.5) / fs, -0.5); tot += tw[x - xmin]; }
            lo[i] = xmin; cnt[i] = xmax - xmin;
            for (int x = 0; x < xmax - xmin; x++) wi[x] = (float)(tot != 0 ? tw[x] / tot : 0);
        }
    }
}

static int max_taps(double in, int out, int interp) {
    if (interp == INTERP_TORCH) return 4;
    double fs = in / out > 1 ? in / out : 1;
    return (int)ceil(4 * fs) + 2;
}

/* Scratch of one resize: x/y tap tables, the horizontally resampled rows, one output row. */
static size_t resize_bytes(int oh, int ow, int h, int w, int OH, int OW, int interp) {
    size_t ints = 2 * (size_t)(ow + oh);
    size_t floats = (size_t)ow * max_taps(w, OW, interp) + (size_t)oh * max_taps(h, OH, interp) +
                    (size_t)h * ow * 3 + (size_t)ow * 3;
    return ints * sizeof(int) + floats * sizeof(float);
}

static int window_bad(int oh, int ow, int OH, int OW, int oy0, int ox0) {
    return oh < 1 || ow < 1 || oy0 < 0 || ox0 < 0 || oy0 + oh > OH || ox0 + ow > OW;
}

int resize_window(float *out, int oh, int ow, const uint8_t *img, int H, int W,
                  int y0, int x0, int h, int w, int OH, int OW, int oy0, int ox0, int interp) {
    if (y0 < 0 || x0 < 0 || h < 1 || w < 1 || y0 + h > H || x0 + w > W || window_bad(oh, ow, OH, OW, oy0, ox0)) return -1;
    void *mem = malloc(resize_bytes(oh, ow, h, w, OH, OW, interp));
    if (!mem) return -1;
    int rc = resize_window_ws(out, oh, ow, img, H, W, y0, x0, h, w, OH, OW, oy0, ox0, interp, mem);
    free(mem);
    return rc;
}

int resize_window_ws(float *out, int oh, int ow, const uint8_t *img, int H, int W, int y0, int x0, int h,
                     int w, int OH, int OW, int oy0, int ox0, int interp, void *scratch) {
    const aug_box b = {x0, y0, w, h};
    return resize_box_ws(out, oh, ow, img, (size_t)W * 3, 0, 0, H, W, &b, OH, OW, oy0, ox0, interp, scratch);
}

void aug_box_pixels(const aug_box *b, int H, int W, int *c0, int *c1, int *r0, int *r1) {
    /* the pixels whose centres lie in the box: exactly the box's own pixels for whole numbers */
    int a = (int)ceil(b->x0 - 0.5), z = (int)ceil(b->x0 + b->w - 0.5);
    int p = (int)ceil(b->y0 - 0.5), q = (int)ceil(b->y0 + b->h - 0.5);
    a = a < 0 ? 0 : a > W - 1 ? W - 1 : a;
    p = p < 0 ? 0 : p > H - 1 ? H - 1 : p;
    z = z > W ? W : z <= a ? a + 1 : z;
    q = q > H ? H : q <= p ? p + 1 : q;
    *c0 = a; *c1 = z; *r0 = p; *r1 = q;
}

int resize_box_ws(float *out, int oh, int ow, const uint8_t *img, size_t stride, int row0, int col0, int H, int W,
                  const aug_box *b, int OH, int OW, int oy0, int ox0, int interp, void *scratch) {
    if (H < 1 || W < 1 || !(b->x0 >= 0 && b->y0 >= 0 && b->w > 0 && b->h > 0 && b->x0 + b->w <= W && b->y0 + b->h <= H) ||
        window_bad(oh, ow, OH, OW, oy0, ox0))
        return -1;
    int c0, c1, p0, p1;
    aug_box_pixels(b, H, W, &c0, &c1, &p0, &p1);
    if (c0 < col0 || p0 < row0) return -1;
    int mx = max_taps(b->w, OW, interp), my = max_taps(b->h, OH, interp);
    char *mem = scratch;
    int *lox = (int *)mem, *nx = lox + ow, *loy = nx + ow, *ny = loy + oh;
    float *wx = (float *)(ny + oh), *wy = wx + (size_t)ow * mx, *tmp = wy + (size_t)oh * my;
    float *acc = tmp + (size_t)(p1 - p0) * ow * 3;
    weights(lox, nx, wx, mx, b->x0 - c0, b->w, c1 - c0, OW, ox0, ow, interp);
    weights(loy, ny, wy, my, b->y0 - p0, b->h, p1 - p0, OH, oy0, oh, interp);
    /* horizontal pass first (as PIL), only over the box rows some output row uses */
    int r0 = loy[0], r1 = loy[oh - 1] + ny[oh - 1];
    for (int r = 0; r < oh; r++) {
        if (loy[r] < r0) r0 = loy[r];
        if (loy[r] + ny[r] > r1) r1 = loy[r] + ny[r];
    }
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = img + (size_t)(p0 - row0 + r) * stride + (size_t)(c0 - col0) * 3;
        float *t = tmp + (size_t)(r - r0) * ow * 3;
        for (int o = 0; o < ow; o++) {
            const float *wk = wx + (size_t)o * mx;
            const uint8_t *px = row + (size_t)lox[o] * 3;
            float s0 = 0, s1 = 0, s2 = 0;
            for (int k = 0; k < nx[o]; k++, px += 3) { s0 += wk[k] * px[0]; s1 += wk[k] * px[1]; s2 += wk[k] * px[2]; }
            t[3 * o] = s0; t[3 * o + 1] = s1; t[3 * o + 2] = s2;
        }
    }
    long plane = (long)oh * ow;
    for (int o = 0; o < oh; o++) {
        const float *wk = wy + (size_t)o * my;
        memset(acc, 0, sizeof(float) * ow * 3);
        for (int k = 0; k < ny[o]; k++) {
            const float *t = tmp + (size_t)(loy[o] + k - r0) * ow * 3;
            float wv = wk[k];
            for (int j = 0; j < ow * 3; j++) acc[j] += wv * t[j];
        }
        float *d0 = out + (long)o * ow, *d1 = d0 + plane, *d2 = d1 + plane;
        for (int j = 0; j < ow; j++) { d0[j] = acc[3 * j]; d1[j] = acc[3 * j + 1]; d2[j] = acc[3 * j + 2]; }
    }
    return 0;
}

size_t augment_scratch_bytes(int H, int W, int S, int interp) {
    /* max_taps grows with the source length, so the whole image bounds every crop box */
    return resize_bytes(S, S, H, W, S, S, interp);
}

void augment_normalize(float *chw, int S, int flip) {
    for (int c = 0; c < 3; c++) {
        float sc = 1.0f / (255.0f * aug_std[c]), sh = aug_mean[c] / aug_std[c];
        float *p = chw + (long)c * S * S;
        for (int y = 0; y < S; y++) {
            float *row = p + (long)y * S;
            if (flip)
                for (int a = 0, b = S - 1; a <= b; a++, b--) {
                    float va = row[a], vb = row[b];
                    row[a] = vb * sc - sh; row[b] = va * sc - sh;
                }
            else
                for (int x = 0; x < S; x++) row[x] = row[x] * sc - sh;
        }
    }
}

int augment_apply(float *out, const uint8_t *img, int H, int W, int S, const aug_params *p, int interp) {
    void *mem = malloc(augment_scratch_bytes(H, W, S, interp));
    if (!mem) return -1;
    int rc = augment_apply_ws(out, img, H, W, S, p, interp, mem);
    free(mem);
    return rc;
}

int augment_apply_ws(float *out, const uint8_t *img, int H, int W, int S, const aug_params *p, int interp, void *scratch) {
    if (resize_window_ws(out, S, S, img, H, W, p->y0, p->x0, p->h, p->w, S, S, 0, 0, interp, scratch)) return -1;
    augment_normalize(out, S, p->flip);
    return 0;
}

int augment_train(float *out, const uint8_t *img, int H, int W, int S, uint64_t key, int interp) {
    aug_params p;
    augment_sample(&p, H, W, key);
    return augment_apply(out, img, H, W, S, &p, interp);
}

int augment_eval_resize(int S, int H, int W, double crop_pct) {
    if (S < 1 || !(crop_pct > 0 && crop_pct <= 1)) return -1;
    if (H == S && W == S) return S;
    /* in double, as the authors' int(S / crop_pct) and timm's floor */
    return (int)floor(S / crop_pct);
}

void augment_eval_geometry(int H, int W, int S, int R, int *OH, int *OW, int *oy0, int *ox0) {
    if (W <= H) { *OW = R; *OH = (int)((long)R * H / W); }
    else { *OH = R; *OW = (int)((long)R * W / H); }
    *oy0 = (int)rint((*OH - S) / 2.0); *ox0 = (int)rint((*OW - S) / 2.0);
}

int augment_eval(float *out, const uint8_t *img, int H, int W, int S, int R, int interp) {
    void *mem = malloc(augment_scratch_bytes(H, W, S, interp));
    if (!mem) return -1;
    int rc = augment_eval_ws(out, img, H, W, S, R, interp, mem);
    free(mem);
    return rc;
}

int augment_eval_ws(float *out, const uint8_t *img, int H, int W, int S, int R, int interp, void *scratch) {
    int OH, OW, oy0, ox0;
    augment_eval_geometry(H, W, S, R, &OH, &OW, &oy0, &ox0);
    if (resize_window_ws(out, S, S, img, H, W, 0, 0, H, W, OH, OW, oy0, ox0, interp, scratch)) return -1;
    augment_normalize(out, S, 0);
    return 0;
}

/* The float crop tmp [3,S,S] (0..255, bicubic overshoot) → uint8 HWC, mirrored if flip: PIL's
 * images are uint8, so RandAugment sees the rounded, clamped crop. */
static void crop_to_u8(uint8_t *out, const float *tmp, int S, int flip) {
    const long plane = (long)S * S;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const long src = (long)y * S + (flip ? S - 1 - x : x);
            uint8_t *o = out + ((long)y * S + x) * 3;
            for (int c = 0; c < 3; c++) {
                float v = tmp[c * plane + src];
                o[c] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5f));
            }
        }
}

int augment_crop_u8(uint8_t *out, float *tmp, const uint8_t *img, int H, int W, int S, const aug_params *p,
                    int interp, void *scratch) {
    if (resize_window_ws(tmp, S, S, img, H, W, p->y0, p->x0, p->h, p->w, S, S, 0, 0, interp, scratch)) return -1;
    crop_to_u8(out, tmp, S, p->flip);
    return 0;
}

void augment_u8_to_chw(float *out, const uint8_t *hwc, int S) {
    const long plane = (long)S * S;
    for (long i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) out[c * plane + i] = hwc[3 * i + c];
    augment_normalize(out, S, 0);
}

aug_recipe augment_recipe_finetune(void) {
    aug_recipe r = {0.08, INTERP_PIL, randaug_recipe(), erase_recipe()};
    return r;
}

const char *augment_recipe_check(const aug_recipe *r, char *err, size_t errlen) {
    if (!(r->scale_min > 0 && r->scale_min <= 1)) {
        snprintf(err, errlen, "augment: crop scale %g outside (0, 1]", r->scale_min);
        return err;
    }
    if (r->interp != INTERP_PIL && r->interp != INTERP_TORCH) {
        snprintf(err, errlen, "augment: unknown interpolation %d", r->interp);
        return err;
    }
    const char *e = randaug_check(&r->ra, err, errlen);
    return e ? e : erase_check(&r->re, err, errlen);
}

size_t augment_finetune_work_bytes(int H, int W, int S, int interp) {
    return augment_scratch_bytes(H, W, S, interp) + augment_finish_work_bytes(S);
}

size_t augment_finish_work_bytes(int S) { return 2 * (size_t)S * S * 3; }

void augment_finetune_finish(float *out, int S, int flip, const aug_recipe *r, uint64_t seed, int epoch, int64_t id,
                             void *work) {
    const uint64_t e = (uint64_t)epoch, g = (uint64_t)id;
    uint8_t *u8 = work, *ra_scratch = u8 + (size_t)S * S * 3;
    crop_to_u8(u8, out, S, flip);
    randaug_image(u8, S, S, &r->ra, rng_key(seed, RANDAUG_RNG_TAG, e, g, 0), ra_scratch);
    augment_u8_to_chw(out, u8, S);
    erase_image(out, 3, S, S, &r->re, rng_key(seed, ERASE_RNG_TAG, e, g, 0));
}

int augment_finetune(float *out, const uint8_t *img, int H, int W, int S, const aug_recipe *r, uint64_t seed,
                     int epoch, int64_t id, void *work) {
    aug_params p;
    augment_sample_scale(&p, H, W, r->scale_min, rng_key(seed, AUG_RNG_TAG, (uint64_t)epoch, (uint64_t)id, 0));
    /* out doubles as the float buffer of the crop before it holds the result */
    if (resize_window_ws(out, S, S, img, H, W, p.y0, p.x0, p.h, p.w, S, S, 0, 0, r->interp, work)) return -1;
    augment_finetune_finish(out, S, p.flip, r, seed, epoch, id, (uint8_t *)work + augment_scratch_bytes(H, W, S, r->interp));
    return 0;
}
