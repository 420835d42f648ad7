/* Augmentation: crop geometry statistics, fallback, determinism, flip, normalisation, and the
 * bicubic resize against direct 2-D references written here from the PIL / torch formulas.
 * The fine-tuning additions: the eval size ratio, the caller-scratch resize, the uint8 crop,
 * and the whole fine-tuning chain against its stages.
 * (tests/t_augment_torch.sh and tests/t_randaug_torch.sh compare against torch itself.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "data/augment.h"
#include "semaim/rng.h"

static double keys(double x, double a) {
    x = fabs(x);
    return x < 1 ? (a + 2) * x * x * x - (a + 3) * x * x + 1 : x < 2 ? a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a : 0;
}

/* 1-D weights of output o over source positions 0..in-1 (dense), per the two formulas. */
static void ref_weights(double *w, int in, int out, int o, int interp) {
    double s = (double)in / out;
    for (int j = 0; j < in; j++) w[j] = 0;
    if (interp == INTERP_TORCH) {
        double src = s * (o + 0.5) - 0.5;
        int i0 = (int)floor(src);
        for (int t = -1; t <= 2; t++) {
            int j = i0 + t;
            w[j < 0 ? 0 : j >= in ? in - 1 : j] += keys(src - (i0 + t), -0.75);
        }
    } else {
        double fs = s > 1 ? s : 1, c = (o + 0.5) * s, tot = 0;
        for (int j = 0; j < in; j++) {
            /* PIL includes pixel j when its centre is within the support (rounded as PIL does) */
            if (j < (int)(c - 2 * fs + 0.5) || j >= (int)(c + 2 * fs + 0.5)) continue;
            w[j] = keys((j + 0.5 - c) / fs, -0.5);
            tot += w[j];
        }
        for (int j = 0; j < in; j++) w[j] /= tot;
    }
}

static double ref_pixel(const uint8_t *img, int W, int y0, int x0, int h, int w, int OH, int OW,
                        int oy, int ox, int c, int interp) {
    double wy[512], wx[512], v = 0;
    ref_weights(wy, h, OH, oy, interp);
    ref_weights(wx, w, OW, ox, interp);
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) v += wy[i] * wx[j] * img[((long)(y0 + i) * W + x0 + j) * 3 + c];
    return v;
}

static uint8_t *random_image(int H, int W, uint64_t seed) {
    uint8_t *p = malloc((size_t)H * W * 3);
    rng_t r = rng_make(seed);
    for (long i = 0; i < (long)H * W * 3; i++) p[i] = (uint8_t)rng_below(&r, 256);
    return p;
}

/* mean_area, frac_small: torchvision's get_params simulated in Python (4e5 draws) gives mean
 * area fraction 0.5399 and P(area < 0.3) = 0.1488 on 256×256; 0.3988 and 0.2673 on 180×320
 * (where no crop with ratio ≤ 4/3 exceeds 240/320 = 0.75 of the area). */
static void test_geometry(int H, int W, double mean_area, double frac_small, double max_area, const char *name) {
    test_begin(name);
    const int n = 20000;
    double sum_area = 0, sum_lr = 0, sum_ox = 0, sum_oy = 0, min_a = 2, max_a = 0;
    int nox = 0, noy = 0, flips = 0, lo_bin = 0, hi_bin = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        aug_params p;
        augment_sample(&p, H, W, rng_key(7, AUG_RNG_TAG, 3, (uint64_t)i, 0));
        if (p.x0 < 0 || p.y0 < 0 || p.w < 1 || p.h < 1 || p.x0 + p.w > W || p.y0 + p.h > H) bad++;
        double a = (double)p.w * p.h / ((double)H * W), lr = log((double)p.w / p.h);
        /* w and h are rounded, so area and ratio may leave their ranges by about a pixel */
        double tol = 2.5 / (p.w < p.h ? p.w : p.h);
        if (a < 0.2 * (1 - tol) || a > 1 || fabs(lr) > log(4.0 / 3.0) + tol) bad++;
        sum_area += a; sum_lr += lr;
        if (a < min_a) min_a = a;
        if (a > max_a) max_a = a;
        lo_bin += a < 0.3; hi_bin += a > 0.9;
        if (W > p.w) { sum_ox += (double)p.x0 / (W - p.w); nox++; }
        if (H > p.h) { sum_oy += (double)p.y0 / (H - p.h); noy++; }
        flips += p.flip;
    }
    CHECK(bad == 0, "%d crops out of bounds or out of range", bad);
    CHECK(min_a < 0.205 && max_a > max_area - 0.03 && max_a <= max_area + 1e-9, "area fraction range %.3f..%.3f", min_a, max_a);
    /* 4 standard errors: sd(area) < 0.25, sd(indicator) < 0.5 */
    CHECK(fabs(sum_area / n - mean_area) < 4 * 0.25 / sqrt(n), "mean area fraction %.4f, want %.4f", sum_area / n, mean_area);
    CHECK(fabs((double)lo_bin / n - frac_small) < 4 * 0.5 / sqrt(n), "P(area < 0.3) %.4f, want %.4f", (double)lo_bin / n, frac_small);
    CHECK(max_area < 0.9 || hi_bin > 0, "no area above 0.9");
    if (H == W) CHECK(fabs(sum_lr / n) < 0.006, "mean log ratio %.4f (square image: symmetric)", sum_lr / n);
    CHECK(fabs(sum_ox / nox - 0.5) < 0.02 && fabs(sum_oy / noy - 0.5) < 0.02, "offset means %.3f %.3f",
          sum_ox / nox, sum_oy / noy);
    CHECK(abs(flips - n / 2) < 4 * 71, "flips %d of %d", flips, n);   /* 4 sigma */
    test_end();
}

static void test_fallback(void) {
    test_begin("rrc_fallback_central_crop");
    aug_params p;
    /* no crop of area ≥ 0.2 and ratio ≤ 4/3 fits in 4×200: torchvision falls back to h = H,
     * w = round(h·4/3), centred */
    augment_sample(&p, 4, 200, 99);
    CHECK(p.h == 4 && p.w == 5 && p.y0 == 0 && p.x0 == 97, "wide: %d,%d %dx%d", p.x0, p.y0, p.w, p.h);
    augment_sample(&p, 300, 3, 99);
    CHECK(p.w == 3 && p.h == 4 && p.x0 == 0 && p.y0 == 148, "tall: %d,%d %dx%d", p.x0, p.y0, p.w, p.h);
    test_end();
}

static void test_determinism(void) {
    test_begin("augment_deterministic");
    int H = 48, W = 40, S = 24;
    uint8_t *img = random_image(H, W, 1);
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S);
    int differ = 0;
    for (int i = 0; i < 50; i++) {
        uint64_t k = rng_key(5, AUG_RNG_TAG, 0, (uint64_t)i, 0), k1 = rng_key(5, AUG_RNG_TAG, 1, (uint64_t)i, 0);
        augment_train(a, img, H, W, S, k, INTERP_PIL);
        augment_train(b, img, H, W, S, k, INTERP_PIL);
        CHECK(memcmp(a, b, sizeof(float) * 3 * S * S) == 0, "sample %d not reproducible", i);
        aug_params p, q;
        augment_sample(&p, H, W, k);
        augment_sample(&q, H, W, k1);
        differ += memcmp(&p, &q, sizeof p) != 0;
    }
    CHECK(differ >= 48, "only %d of 50 samples change crop between epochs", differ);
    free(a); free(b); free(img);
    test_end();
}

static void test_flip(void) {
    test_begin("augment_flip_mirrors");
    int H = 30, W = 45, S = 16;
    uint8_t *img = random_image(H, W, 2);
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S);
    aug_params p = {5, 3, 31, 22, 0}, q = p;
    q.flip = 1;
    for (int interp = 0; interp < 2; interp++) {
        augment_apply(a, img, H, W, S, &p, interp);
        augment_apply(b, img, H, W, S, &q, interp);
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) bad += a[(c * S + y) * S + x] != b[(c * S + y) * S + S - 1 - x];
        CHECK(bad == 0, "interp %d: %d values are not mirrored", interp, bad);
        CHECK(memcmp(a, b, sizeof(float) * 3 * S * S) != 0, "flip changed nothing");
    }
    free(a); free(b); free(img);
    test_end();
}

static void test_normalise(void) {
    test_begin("normalise_constant_image");
    int H = 33, W = 41, S = 20;
    const int cv[3] = {37, 128, 250};
    uint8_t *img = malloc((size_t)H * W * 3);
    for (int i = 0; i < H * W; i++) for (int c = 0; c < 3; c++) img[i * 3 + c] = (uint8_t)cv[c];
    float *o = malloc(sizeof(float) * 3 * S * S);
    double maxd = 0;
    for (int i = 0; i < 40; i++)
        for (int interp = 0; interp < 2; interp++) {
            augment_train(o, img, H, W, S, (uint64_t)i * 77 + 1, interp);
            for (int c = 0; c < 3; c++) {
                double want = (cv[c] / 255.0 - aug_mean[c]) / aug_std[c];
                for (int j = 0; j < S * S; j++) maxd = fmax(maxd, fabs(o[c * S * S + j] - want));
            }
        }
    CHECK(maxd < 3e-6, "max deviation %.3g from (c/255-mean)/std", maxd);
    free(o); free(img);
    test_end();
}

static void test_against_ref(int interp, const char *name) {
    test_begin(name);
    int H = 61, W = 57;
    uint8_t *img = random_image(H, W, 3 + interp);
    /* boxes and output sizes: up- and downscaling, non-square, and a crop at the image edge */
    const int cases[][6] = {{0, 0, 57, 61, 24, 24}, {5, 7, 20, 31, 40, 40}, {30, 40, 27, 21, 13, 50},
                            {0, 0, 9, 6, 31, 17}, {50, 3, 7, 58, 19, 19}, {1, 1, 40, 40, 40, 40}};
    double maxd = 0;
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int x0 = cases[t][0], y0 = cases[t][1], w = cases[t][2], h = cases[t][3], OH = cases[t][4], OW = cases[t][5];
        float *o = malloc(sizeof(float) * 3 * OH * OW);
        CHECK(resize_window(o, OH, OW, img, H, W, y0, x0, h, w, OH, OW, 0, 0, interp) == 0, "resize failed");
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++)
                    maxd = fmax(maxd, fabs(o[(c * OH + y) * OW + x] - ref_pixel(img, W, y0, x0, h, w, OH, OW, y, x, c, interp)));
        free(o);
    }
    CHECK(maxd < 2e-3, "max |resize - reference| = %.3g (pixel scale 0..255)", maxd);
    free(img);
    test_end();
}

/* Dense weights of output o for a box of length len starting off pixels into a span of
 * pixels (the fractional boxes of a DCT-scaled decode), from the same two formulas. */
static void ref_weights_box(double *w, double off, double len, int span, int out, int o, int interp) {
    double s = len / out;
    for (int j = 0; j < span; j++) w[j] = 0;
    if (interp == INTERP_TORCH) {
        double src = off + s * (o + 0.5) - 0.5;
        int i0 = (int)floor(src);
        for (int t = -1; t <= 2; t++) {
            int j = i0 + t;
            w[j < 0 ? 0 : j >= span ? span - 1 : j] += keys(src - (i0 + t), -0.75);
        }
    } else {
        double fs = s > 1 ? s : 1, c = off + (o + 0.5) * s, tot = 0;
        for (int j = 0; j < span; j++) {
            if (j < (int)(c - 2 * fs + 0.5) || j >= (int)(c + 2 * fs + 0.5)) continue;
            w[j] = keys((j + 0.5 - c) / fs, -0.5);
            tot += w[j];
        }
        for (int j = 0; j < span; j++) w[j] /= tot;
    }
}

/* resize_box_ws: a whole-number box read from a window buffer (stride, row0, col0) equals
 * resize_window bit for bit; fractional boxes equal the dense reference over the pixels whose
 * centres lie in the box; scratch of exactly augment_scratch_bytes suffices (ASan build). */
static void test_box(int interp, const char *name) {
    test_begin(name);
    int H = 70, W = 66, S = 24;
    uint8_t *img = random_image(H, W, 21 + interp);
    void *ws = malloc(augment_scratch_bytes(H, W, S, interp));
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S);
    int bad = 0;
    /* window buffer: rows 5.., cols 7.. of the image, with 4 bytes of padding per row */
    int row0 = 5, col0 = 7, ww = W - col0;
    size_t stride = (size_t)ww * 3 + 4;
    uint8_t *win = calloc((size_t)(H - row0) * stride, 1);
    for (int y = row0; y < H; y++) memcpy(win + (size_t)(y - row0) * stride, img + ((size_t)y * W + col0) * 3, (size_t)ww * 3);
    const int ib[][4] = {{7, 5, 59, 65}, {10, 20, 30, 31}, {40, 9, 26, 17}, {8, 60, 3, 10}};
    for (int t = 0; t < 4; t++) {
        aug_box box = {ib[t][0], ib[t][1], ib[t][2], ib[t][3]};
        resize_window(a, S, S, img, H, W, ib[t][1], ib[t][0], ib[t][3], ib[t][2], S, S, 0, 0, interp);
        CHECK(resize_box_ws(b, S, S, win, stride, row0, col0, H, W, &box, S, S, 0, 0, interp, ws) == 0, "box %d refused", t);
        bad += memcmp(a, b, sizeof(float) * 3 * S * S) != 0;
    }
    CHECK(!bad, "%d whole-number boxes differ from resize_window", bad);
    const double fb[][4] = {{0.5, 0.25, 40.5, 33.75}, {12.125, 3.5, 9.25, 60.0}, {0, 0, 65.5, 69.75}, {20.75, 30.5, 44.5, 38.25}};
    double maxd = 0, wy[128], wx[128];
    for (int t = 0; t < 4; t++) {
        aug_box box = {fb[t][0], fb[t][1], fb[t][2], fb[t][3]};
        int c0, c1, r0, r1;
        aug_box_pixels(&box, H, W, &c0, &c1, &r0, &r1);
        CHECK(resize_box_ws(b, S, S, img, (size_t)W * 3, 0, 0, H, W, &box, S, S, 0, 0, interp, ws) == 0, "box %d refused", t);
        for (int oy = 0; oy < S; oy++) {
            ref_weights_box(wy, box.y0 - r0, box.h, r1 - r0, S, oy, interp);
            for (int ox = 0; ox < S; ox++) {
                ref_weights_box(wx, box.x0 - c0, box.w, c1 - c0, S, ox, interp);
                for (int c = 0; c < 3; c++) {
                    double v = 0;
                    for (int i = 0; i < r1 - r0; i++)
                        for (int j = 0; j < c1 - c0; j++) v += wy[i] * wx[j] * img[((size_t)(r0 + i) * W + c0 + j) * 3 + c];
                    maxd = fmax(maxd, fabs(b[(c * S + oy) * S + ox] - v));
                }
            }
        }
    }
    CHECK(maxd < 2e-3, "fractional boxes: max |resize - reference| = %.3g", maxd);
    int c0, c1, r0, r1;
    aug_box_pixels(&(aug_box){2.5, 3.25, 10.0, 4.5}, H, W, &c0, &c1, &r0, &r1);
    CHECK(c0 == 2 && c1 == 12 && r0 == 3 && r1 == 8, "pixels of a fractional box: cols %d..%d rows %d..%d", c0, c1, r0, r1);
    aug_box out = {60, 0, 6.5, 10};
    CHECK(resize_box_ws(b, S, S, img, (size_t)W * 3, 0, 0, H, W, &out, S, S, 0, 0, interp, ws) == -1, "box past the edge accepted");
    free(win); free(a); free(b); free(ws); free(img);
    test_end();
}

/* Keys' cubic with a = −0.5 reproduces linear functions (Keys 1981; other a only constants):
 * when upscaling away from the crop border the PIL resampler must return the ramp at the
 * mapped source coordinate. Independent of the weight code. */
static void test_linear_ramp(void) {
    test_begin("bicubic_reproduces_linear_ramp");
    int H = 8, W = 100, w = 60, x0 = 20, OW = 97;
    uint8_t *img = malloc((size_t)H * W * 3);
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) for (int c = 0; c < 3; c++) img[(y * W + x) * 3 + c] = (uint8_t)(2 * x + c);
    float *o = malloc(sizeof(float) * 3 * H * OW);
    double maxd = 0;
    {
        resize_window(o, H, OW, img, H, W, 0, x0, H, w, H, OW, 0, 0, INTERP_PIL);
        double s = (double)w / OW;
        for (int ox = 4; ox < OW - 4; ox++) {
            double src = x0 + (ox + 0.5) * s - 0.5;
            for (int c = 0; c < 3; c++) maxd = fmax(maxd, fabs(o[(c * H + 3) * OW + ox] - (2 * src + c)));
        }
    }
    CHECK(maxd < 1e-3, "max deviation from the ramp %.3g", maxd);
    free(o); free(img);
    test_end();
}

static void test_eval(void) {
    test_begin("eval_resize_centre_crop");
    int H = 40, W = 40, S = 32;
    uint8_t *img = random_image(H, W, 9);
    float *o = malloc(sizeof(float) * 3 * 64 * 64);
    /* R = 40 = shorter side: no resampling, exact centre crop at offset 4 */
    double maxd = 0;
    for (int interp = 0; interp < 2; interp++) {
        augment_eval(o, img, H, W, S, 40, interp);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    maxd = fmax(maxd, fabs(o[(c * S + y) * S + x] - (img[((y + 4) * W + x + 4) * 3 + c] / 255.0 - aug_mean[c]) / aug_std[c]));
    }
    CHECK(maxd < 2e-6, "identity centre crop off by %.3g", maxd);
    /* 30×50 with R = 32: virtual 32×53, crop 24 at (4, 14); equals the full resize cut out */
    H = 30; W = 50; S = 24;
    uint8_t *im2 = random_image(H, W, 10);
    float *full = malloc(sizeof(float) * 3 * 32 * 53);
    augment_eval(o, im2, H, W, S, 32, INTERP_PIL);
    resize_window(full, 32, 53, im2, H, W, 0, 0, H, W, 32, 53, 0, 0, INTERP_PIL);
    augment_normalize(full, 0, 0);   /* S = 0: no-op; normalise the cut-out below instead */
    maxd = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double v = (full[(c * 32 + y + 4) * 53 + x + 14] / 255.0 - aug_mean[c]) / aug_std[c];
                maxd = fmax(maxd, fabs(o[(c * S + y) * S + x] - v));
            }
    CHECK(maxd < 1e-5, "windowed eval resize differs from full resize + crop by %.3g", maxd);
    free(full); free(im2); free(o); free(img);
    test_end();
}

/* The eval size: ⌊S/crop_pct⌋ equals data_prep's ⌊S·8/7⌋ at 0.875; S×S shards pass through. */
static void test_eval_resize(void) {
    test_begin("eval_resize_ratio");
    int bad = 0;
    for (int S = 1; S <= 600; S++) {
        bad += augment_eval_resize(S, S + 1, S + 7, AUG_EVAL_CROP_PCT) != (S * 8) / 7;
        bad += augment_eval_resize(S, S, S, AUG_EVAL_CROP_PCT) != S;
        bad += augment_eval_resize(S, 3 * S, 2 * S, 1.0) != S;
        bad += augment_eval_resize(S, S + 1, S, 0.5) != 2 * S;
    }
    CHECK(bad == 0, "%d sizes off", bad);
    CHECK(augment_eval_resize(224, 300, 400, AUG_EVAL_CROP_PCT) == 256, "224 → 256");
    CHECK(augment_eval_resize(224, 300, 400, 0) == -1 && augment_eval_resize(224, 300, 400, 1.5) == -1 &&
          augment_eval_resize(0, 3, 3, 0.875) == -1, "bad ratios accepted");
    test_end();
}

/* resize_window_ws in augment_scratch_bytes equals resize_window for any box (ASan checks the
 * bound); augment_crop_u8 is its rounded, clamped, flipped HWC copy; augment_u8_to_chw is
 * (v/255 − mean)/std. */
static void test_uint8_path(void) {
    test_begin("crop_u8_and_scratch");
    const int H = 47, W = 71, S = 24;
    uint8_t *img = random_image(H, W, 12), *u8 = malloc((size_t)S * S * 3);
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S), *c = malloc(sizeof(float) * 3 * S * S);
    int bad = 0, badu = 0;
    for (int interp = 0; interp < 2; interp++) {
        size_t nb = augment_scratch_bytes(H, W, S, interp);
        void *ws = malloc(nb);
        for (int i = 0; i < 60; i++) {
            aug_params p;
            augment_sample_scale(&p, H, W, 0.01, rng_key(1, AUG_RNG_TAG, 0, (uint64_t)i, 0));
            if (i == 0) { p.x0 = 0; p.y0 = 0; p.w = W; p.h = H; }
            if (i == 1) { p.x0 = W - 1; p.y0 = H - 1; p.w = 1; p.h = 1; }
            resize_window(a, S, S, img, H, W, p.y0, p.x0, p.h, p.w, S, S, 0, 0, interp);
            resize_window_ws(b, S, S, img, H, W, p.y0, p.x0, p.h, p.w, S, S, 0, 0, interp, ws);
            bad += memcmp(a, b, sizeof(float) * 3 * S * S) != 0;
            augment_crop_u8(u8, c, img, H, W, S, &p, interp, ws);
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int ch = 0; ch < 3; ch++) {
                        double v = a[(ch * S + y) * S + (p.flip ? S - 1 - x : x)];
                        v = v < 0 ? 0 : v > 255 ? 255 : floor(v + 0.5);
                        badu += u8[(y * S + x) * 3 + ch] != v;
                    }
        }
        free(ws);
    }
    CHECK(bad == 0 && badu == 0, "%d resizes differ with caller scratch, %d uint8 values off", bad, badu);
    augment_u8_to_chw(a, u8, S);
    double maxd = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < S * S; i++) maxd = fmax(maxd, fabs(a[ch * S * S + i] - (u8[3 * i + ch] / 255.0 - aug_mean[ch]) / aug_std[ch]));
    CHECK(maxd < 3e-6, "u8_to_chw off by %.3g", maxd);
    /* scale 0.2 is the pretraining sampler; 0.08 reaches below 0.2 */
    const int NS = 20000;
    int same = 0, small = 0;
    for (int i = 0; i < NS; i++) {
        aug_params p, q;
        augment_sample(&p, 256, 256, (uint64_t)i);
        augment_sample_scale(&q, 256, 256, 0.2, (uint64_t)i);
        same += memcmp(&p, &q, sizeof p) == 0;
        augment_sample_scale(&q, 256, 256, 0.08, (uint64_t)i);
        small += (double)q.w * q.h / (256.0 * 256) < 0.19;
        bad += (double)q.w * q.h / (256.0 * 256) < 0.08 * 0.95;
    }
    CHECK(same == NS && bad == 0, "scale 0.2 differs from augment_sample in %d of %d; %d below 0.08", NS - same, NS, bad);
    /* On a square image an attempt (a ~ U(0.08,1), log r ~ U(±L), L = log 4/3) fits iff
     * a ≤ e^(−|log r|), with probability p = ((1 − e^(−L))/L − 0.08)/0.92; small areas always
     * fit, so P(area < 0.19) = (0.11/0.92)/p (the all-10-fail fallback, (1−p)^10 ≈ 4e-9, aside) */
    const double L = log(4.0 / 3.0), pacc = ((1 - exp(-L)) / L - 0.08) / 0.92, want = 0.11 / 0.92 / pacc;
    CHECK(fabs((double)small / NS - want) < 5 * sqrt(want * (1 - want) / NS), "scale 0.08: %.4f below 0.19, want %.4f", (double)small / NS, want);
    free(img); free(u8); free(a); free(b); free(c);
    test_end();
}

/* The fine-tuning chain is the stages in order with the documented keys, deterministic in
 * (seed, epoch, id), and its work memory is enough (ASan). */
static void test_finetune_chain(void) {
    test_begin("finetune_chain");
    const int H = 64, W = 80, S = 32;
    uint8_t *img = random_image(H, W, 13), *u8 = malloc((size_t)S * S * 3), *rs = malloc((size_t)S * S * 3);
    aug_recipe r = augment_recipe_finetune();
    char err[200];
    CHECK(augment_recipe_check(&r, err, sizeof err) == NULL, "recipe refused: %s", err);
    r.re.prob = 1;   /* erase every image, so that stage is always exercised */
    void *work = malloc(augment_finetune_work_bytes(H, W, S, r.interp)), *ws = malloc(augment_scratch_bytes(H, W, S, r.interp));
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S), *tmp = malloc(sizeof(float) * 3 * S * S);
    int bad = 0, differ = 0;
    for (int i = 0; i < 30; i++) {
        augment_finetune(a, img, H, W, S, &r, 5, 2, 1000 + i, work);
        aug_params p;
        augment_sample_scale(&p, H, W, 0.08, rng_key(5, AUG_RNG_TAG, 2, 1000 + (uint64_t)i, 0));
        augment_crop_u8(u8, tmp, img, H, W, S, &p, r.interp, ws);
        randaug_image(u8, S, S, &r.ra, rng_key(5, RANDAUG_RNG_TAG, 2, 1000 + (uint64_t)i, 0), rs);
        augment_u8_to_chw(b, u8, S);
        erase_image(b, 3, S, S, &r.re, rng_key(5, ERASE_RNG_TAG, 2, 1000 + (uint64_t)i, 0));
        bad += memcmp(a, b, sizeof(float) * 3 * S * S) != 0;
        augment_finetune(b, img, H, W, S, &r, 5, 3, 1000 + i, work);
        differ += memcmp(a, b, sizeof(float) * 3 * S * S) != 0;
    }
    CHECK(bad == 0, "%d of 30 images differ from the stages run by hand", bad);
    CHECK(differ == 30, "only %d of 30 images change with the epoch", differ);
    /* a batch on 2 worker threads (one work buffer each) equals the batch on one */
    enum { NB = 8 };
    const long img_f = 3L * S * S;
    float *b1 = malloc(sizeof(float) * NB * img_f), *b2 = malloc(sizeof(float) * NB * img_f);
    void *w2[2] = {work, ws};
    ws = realloc(ws, augment_finetune_work_bytes(H, W, S, r.interp));
    w2[1] = ws;
    for (int i = 0; i < NB; i++) augment_finetune(b1 + i * img_f, img, H, W, S, &r, 7, 0, i, work);
    #pragma omp parallel for num_threads(2) schedule(dynamic, 1)
    for (int i = 0; i < NB; i++) augment_finetune(b2 + i * img_f, img, H, W, S, &r, 7, 0, i, w2[omp_get_thread_num() & 1]);
    CHECK(memcmp(b1, b2, sizeof(float) * NB * img_f) == 0, "2 threads give other images");
    free(b1); free(b2);
    r.scale_min = 0;
    CHECK(augment_recipe_check(&r, err, sizeof err) != NULL, "scale 0 accepted");
    r = augment_recipe_finetune(); r.ra.prob = 2;
    CHECK(augment_recipe_check(&r, err, sizeof err) != NULL && strncmp(err, "randaug: ", 9) == 0, "randaug p 2 accepted");
    r = augment_recipe_finetune(); r.re.prob = -1;
    CHECK(augment_recipe_check(&r, err, sizeof err) != NULL && strncmp(err, "erasing: ", 9) == 0, "erasing p -1 accepted");
    free(img); free(u8); free(rs); free(work); free(ws); free(a); free(b); free(tmp);
    test_end();
}

int main(void) {
    test_geometry(256, 256, 0.5399, 0.1488, 1.0, "rrc_geometry_square");
    test_geometry(180, 320, 0.3988, 0.2673, 0.75, "rrc_geometry_wide");
    test_fallback();
    test_determinism();
    test_flip();
    test_normalise();
    test_against_ref(INTERP_PIL, "bicubic_pil_vs_2d_reference");
    test_against_ref(INTERP_TORCH, "bicubic_torch_vs_2d_reference");
    test_linear_ramp();
    test_eval();
    test_eval_resize();
    test_box(INTERP_PIL, "box_resize_pil");
    test_box(INTERP_TORCH, "box_resize_torch");
    test_uint8_path();
    test_finetune_chain();
    return test_exit();
}
