/* Random erasing (src/data/erasing.h): the erase rate, the box geometry's distribution
 * against the definition (integrated numerically here: area U(0.02, 1/3), log-uniform aspect,
 * rounding, the strict fit test, retries), uniform offsets, the pixel noise's moments, the
 * const/rand modes, that nothing outside the box changes, determinism, and config errors.
 * Tolerances: 5 standard errors of the number of draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "data/erasing.h"
#include "semaim/rng.h"

/* E[h·w/S²], E[log(h/w)²] given acceptance, and the acceptance probability of one attempt,
 * by the midpoint rule on a G×G grid over (area, log aspect). */
static void box_moments(const erase_config *c, int S, double *m_area, double *m_lr2, double *p_acc) {
    const int G = 1500;
    const double la = log(c->min_aspect), lb = log(c->max_aspect);
    double acc = 0, sa = 0, sl = 0;
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            double a = c->min_area + (c->max_area - c->min_area) * (i + 0.5) / G, r = la + (lb - la) * (j + 0.5) / G;
            double t = a * S * S;
            int h = (int)rint(sqrt(t * exp(r))), w = (int)rint(sqrt(t / exp(r)));
            if (w < S && h < S) {
                acc++;
                sa += (double)h * w / ((double)S * S);
                sl += log((double)h / w) * log((double)h / w);
            }
        }
    *m_area = sa / acc; *m_lr2 = sl / acc; *p_acc = acc / ((double)G * G);
}

static void test_geometry(void) {
    test_begin("erasing_geometry");
    erase_config c = erase_recipe();
    const int S = 224, N = 60000;
    long erased = 0, bad = 0;
    double sa = 0, sa2 = 0, sl = 0, sl2 = 0, st = 0, sx = 0, amin = 1, amax = 0;
    long nt = 0, nx = 0;
    for (int i = 0; i < N; i++) {
        erase_box b[1];
        int n = erase_sample(b, &c, S, S, rng_key(8, ERASE_RNG_TAG, 0, (uint64_t)i, 0));
        if (!n) continue;
        erased++;
        bad += n != 1 || b[0].h >= S || b[0].w >= S || b[0].h < 1 || b[0].w < 1 || b[0].top < 0 || b[0].left < 0 ||
               b[0].top + b[0].h > S || b[0].left + b[0].w > S;
        double a = (double)b[0].h * b[0].w / ((double)S * S), lr = log((double)b[0].h / b[0].w);
        sa += a; sa2 += a * a; sl += lr; sl2 += lr * lr;
        amin = a < amin ? a : amin; amax = a > amax ? a : amax;
        if (S > b[0].h) { st += (double)b[0].top / (S - b[0].h); nt++; }
        if (S > b[0].w) { sx += (double)b[0].left / (S - b[0].w); nx++; }
    }
    CHECK(bad == 0, "%ld boxes out of bounds or not fitting strictly", bad);
    /* the range's ends are reached (1.5 % of areas lie within 0.005 of either), up to the
     * rounding of h and w (relative ±0.5/17 at the smallest boxes) */
    CHECK(amin >= 0.02 * (1 - 0.06) && amin < 0.025 && amax > 1 / 3.0 - 0.005 && amax <= 1 / 3.0 * 1.03,
          "areas span %.4f..%.4f, want 0.02..0.3333", amin, amax);
    double m_area, m_lr2, p_acc;
    box_moments(&c, S, &m_area, &m_lr2, &p_acc);
    double p_er = c.prob * (1 - pow(1 - p_acc, 10));
    CHECK(fabs((double)erased / N - p_er) < 5 * sqrt(p_er * (1 - p_er) / N), "erased %.4f of images, want %.4f", (double)erased / N, p_er);
    double n = (double)erased, ma = sa / n, va = sa2 / n - ma * ma, ml = sl / n, vl = sl2 / n - ml * ml;
    /* the midpoint rule over the rounding steps is good to ~1e-4; the draws dominate */
    CHECK(fabs(ma - m_area) < 5 * sqrt(va / n) + 2e-4, "mean area %.5f, want %.5f", ma, m_area);
    CHECK(fabs(ml) < 5 * sqrt(vl / n), "mean log aspect %.4f, want 0 (symmetric on a square image)", ml);
    CHECK(fabs(sl2 / n - m_lr2) < 5 * sqrt(vl * vl * 2 / n) + 2e-3, "E[log² aspect] %.4f, want %.4f", sl2 / n, m_lr2);
    CHECK(fabs(st / nt - 0.5) < 5 * sqrt(1 / 12.0 / nt) && fabs(sx / nx - 0.5) < 5 * sqrt(1 / 12.0 / nx),
          "offset means %.4f %.4f, want 0.5", st / nt, sx / nx);
    test_end();
}

static float *random_chw(int C, int H, int W, uint64_t seed) {
    float *x = malloc(sizeof(float) * C * H * W);
    rng_t r = rng_make(seed);
    for (long i = 0; i < (long)C * H * W; i++) x[i] = 10.0f + (float)rng_nextd(&r);   /* far from N(0,1) noise */
    return x;
}

static void test_fill(void) {
    test_begin("erasing_fill_modes");
    const int C = 3, H = 64, W = 64;
    erase_config c = erase_recipe();
    c.prob = 1;
    float *src = random_chw(C, H, W, 1), *x = malloc(sizeof(float) * C * H * W);
    double s = 0, s2 = 0, slag = 0;
    long npix = 0, nlag = 0, outside_changed = 0, inside_kept = 0;
    for (int i = 0; i < 300; i++) {
        uint64_t key = rng_key(2, ERASE_RNG_TAG, 1, (uint64_t)i, 0);
        memcpy(x, src, sizeof(float) * C * H * W);
        erase_box b[1];
        int n = erase_sample(b, &c, H, W, key);
        CHECK(erase_image(x, C, H, W, &c, key) == n, "erase_image and erase_sample disagree");
        if (!n) continue;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    long k = ((long)ch * H + y) * W + xx;
                    int in = y >= b[0].top && y < b[0].top + b[0].h && xx >= b[0].left && xx < b[0].left + b[0].w;
                    if (!in) { outside_changed += x[k] != src[k]; continue; }
                    inside_kept += x[k] == src[k];
                    s += x[k]; s2 += (double)x[k] * x[k]; npix++;
                    if (xx + 1 < b[0].left + b[0].w) { slag += (double)x[k] * x[k + 1]; nlag++; }
                }
    }
    CHECK(outside_changed == 0 && inside_kept == 0, "%ld values outside the boxes changed, %ld inside kept", outside_changed, inside_kept);
    double m = s / npix, v = s2 / npix - m * m, rho = slag / nlag;
    CHECK(fabs(m) < 5 / sqrt((double)npix) && fabs(v - 1) < 5 * sqrt(2.0 / npix) && fabs(rho) < 5 / sqrt((double)nlag),
          "pixel noise mean %.4f var %.4f lag-1 %.4f over %ld values, want N(0,1) i.i.d.", m, v, rho, npix);
    /* const: zeros; rand: one value per channel */
    for (int mode = ERASE_CONST; mode <= ERASE_RAND; mode++) {
        c.mode = mode;
        memcpy(x, src, sizeof(float) * C * H * W);
        erase_box b[1];
        erase_sample(b, &c, H, W, 99);
        CHECK(erase_image(x, C, H, W, &c, 99) == 1, "mode %d: nothing erased", mode);
        int bad = 0;
        for (int ch = 0; ch < C; ch++) {
            float v0 = x[((long)ch * H + b[0].top) * W + b[0].left];
            bad += mode == ERASE_CONST ? v0 != 0 : (v0 == 0 || v0 == src[((long)ch * H + b[0].top) * W + b[0].left]);
            for (int y = b[0].top; y < b[0].top + b[0].h; y++)
                for (int xx = b[0].left; xx < b[0].left + b[0].w; xx++) bad += x[((long)ch * H + y) * W + xx] != v0;
        }
        CHECK(bad == 0, "mode %d: %d values break the mode", mode, bad);
    }
    /* prob 0: nothing; count 3: 1..3 boxes, each fitting */
    c = erase_recipe(); c.prob = 0;
    memcpy(x, src, sizeof(float) * C * H * W);
    CHECK(erase_image(x, C, H, W, &c, 5) == 0 && memcmp(x, src, sizeof(float) * C * H * W) == 0, "prob 0 erased");
    c.prob = 1; c.max_count = 3;
    int seen[4] = {0};
    for (int i = 0; i < 3000; i++) {
        erase_box b[3];
        int n = erase_sample(b, &c, H, W, (uint64_t)i);
        seen[n]++;
    }
    CHECK(seen[1] > 800 && seen[2] > 800 && seen[3] > 800, "count 3: %d/%d/%d images with 1/2/3 boxes", seen[1], seen[2], seen[3]);
    free(src); free(x);
    test_end();
}

static void test_determinism_and_errors(void) {
    test_begin("erasing_deterministic_and_errors");
    erase_config c = erase_recipe();
    c.prob = 1;
    const int C = 3, H = 40, W = 50;
    float *a = random_chw(C, H, W, 3), *b = random_chw(C, H, W, 3);
    erase_image(a, C, H, W, &c, 1234);
    erase_image(b, C, H, W, &c, 1234);
    CHECK(memcmp(a, b, sizeof(float) * C * H * W) == 0, "same key, different erasing");
    char err[200];
    CHECK(erase_check(&c, err, sizeof err) == NULL, "recipe refused: %s", err);
    erase_config bad[7];
    for (int k = 0; k < 7; k++) bad[k] = erase_recipe();
    bad[0].prob = 1.25; bad[1].prob = -0.5; bad[2].min_area = 0; bad[3].max_area = 1.5; bad[4].min_aspect = -1;
    bad[5].max_count = 0; bad[6].mode = 9;
    for (int k = 0; k < 7; k++) {
        const char *e = erase_check(&bad[k], err, sizeof err);
        CHECK(e && !strchr(e, '\n') && strncmp(e, "erasing: ", 9) == 0, "bad config %d accepted or message '%s'", k, e ? e : "");
    }
    CHECK(erase_mode_from_name("pixel") == ERASE_PIXEL && erase_mode_from_name("rand") == ERASE_RAND &&
          erase_mode_from_name("const") == ERASE_CONST && erase_mode_from_name("zero") == -1, "mode names");
    free(a); free(b);
    test_end();
}

int main(void) {
    test_geometry();
    test_fill();
    test_determinism_and_errors();
    return test_exit();
}
