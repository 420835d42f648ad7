/* Mixup / CutMix (src/data/mixup.h): mixed images and soft targets exactly as the formula for
 * a given λ and box, the CutMix box and its area correction, the switch and mix probabilities
 * over many batches, the Beta sampler's moments and CDF against the Beta density (integrated
 * numerically here), determinism, config errors, and the soft targets through the soft-target
 * cross-entropy (kernels/ops.h) against the label-smoothed cross-entropy's closed form.
 * Tolerances: 5 standard errors of the number of draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "data/mixup.h"
#include "kernels/ops.h"

/* P(X < q) for X ~ Beta(a, a): with u = x^a the integrand (1 − u^(1/a))^(a−1)/a is smooth. */
static double beta_cdf(double a, double q) {
    const int G = 200000;
    double top = pow(q, a), s = 0;
    for (int i = 0; i < G; i++) {
        double u = (i + 0.5) / G * top;
        s += pow(1 - pow(u, 1 / a), a - 1) / a;
    }
    return s * top / G / exp(2 * lgamma(a) - lgamma(2 * a));
}

static void test_beta(void) {
    test_begin("mixup_beta_sampler");
    const double alphas[] = {0.8, 1.0, 2.5};
    const int N = 200000;
    for (int t = 0; t < 3; t++) {
        double a = alphas[t], s = 0, s2 = 0;
        long below[3] = {0, 0, 0};
        const double q[3] = {0.05, 0.2, 0.5};
        rng_t r = rng_make(1000 + t);
        for (int i = 0; i < N; i++) {
            double x = rng_beta(&r, a, a);
            CHECK(x >= 0 && x <= 1, "draw %g outside [0,1]", x);
            s += x; s2 += x * x;
            for (int k = 0; k < 3; k++) below[k] += x < q[k];
        }
        double m = s / N, v = s2 / N - m * m, var = 1 / (4 * (2 * a + 1));
        CHECK(fabs(m - 0.5) < 5 * sqrt(var / N), "Beta(%g): mean %.5f", a, m);
        /* (X − ½)² ≤ ¼, so Var((X − ½)²) ≤ var/4 */
        CHECK(fabs(v - var) < 5 * sqrt(var / 4 / N), "Beta(%g): variance %.5f, want %.5f", a, v, var);
        for (int k = 0; k < 3; k++) {
            double p = beta_cdf(a, q[k]), f = (double)below[k] / N;
            CHECK(fabs(f - p) < 5 * sqrt(p * (1 - p) / N), "Beta(%g): P(X < %g) %.5f, want %.5f", a, q[k], f, p);
        }
    }
    test_end();
}

static void test_box(void) {
    test_begin("mixup_cutmix_box_and_correction");
    const int H = 32, W = 40;
    int bad = 0, clipped = 0;
    for (int i = 0; i <= 100; i++) {
        double lam = i / 100.0;
        for (int cy = 0; cy < H; cy += 3)
            for (int cx = 0; cx < W; cx += 5) {
                mixup_params p, q;
                mixup_box(&p, H, W, lam, cy, cx, 1);
                mixup_box(&q, H, W, lam, cy, cx, 0);
                /* timm's rand_bbox: half-sides ⌊⌊H·√(1−λ)⌋/2⌋ around the centre, clipped */
                int hh = (int)floor(H * sqrt(1 - lam)) / 2, hw = (int)floor(W * sqrt(1 - lam)) / 2;
                int y0 = cy - hh < 0 ? 0 : cy - hh, y1 = cy + hh > H ? H : cy + hh;
                int x0 = cx - hw < 0 ? 0 : cx - hw, x1 = cx + hw > W ? W : cx + hw;
                bad += p.y0 != y0 || p.y1 != y1 || p.x0 != x0 || p.x1 != x1;
                bad += fabs(p.lam - (1 - (double)(y1 - y0) * (x1 - x0) / (H * W))) > 1e-15 || q.lam != lam;
                /* the correction raises λ exactly when the box is clipped (or rounded down) */
                bad += p.lam < lam - 1e-12 && lam < 1;
                clipped += (cy - hh < 0 || cx + hw > W) && p.lam > lam + 1e-9;
            }
    }
    CHECK(bad == 0, "%d boxes or λ off the formula", bad);
    CHECK(clipped > 100, "only %d clipped boxes raised λ", clipped);
    test_end();
}

static float *random_batch(long n, uint64_t seed) {
    float *x = malloc(sizeof(float) * n);
    rng_t r = rng_make(seed);
    for (long i = 0; i < n; i++) x[i] = (float)(rng_nextd(&r) * 4 - 2);
    return x;
}

static void test_images(void) {
    test_begin("mixup_images_exact");
    const int C = 3, H = 9, W = 11;
    const long img = (long)C * H * W;
    for (int B = 5; B <= 6; B++) {
        float *orig = random_batch(B * img, (uint64_t)B), *x = malloc(sizeof(float) * B * img);
        float *other = random_batch(B * img, 100 + (uint64_t)B);
        mixup_params p = {1, 0, 0.3, 0, 0, 0, 0};
        mixup_images(x, orig, orig, B, C, H, W, &p);
        const float l = (float)0.3, m = (float)(1 - 0.3);
        int bad = 0;
        for (int i = 0; i < B; i++)
            for (long k = 0; k < img; k++) bad += x[i * img + k] != orig[i * img + k] * l + orig[(B - 1 - i) * img + k] * m;
        CHECK(bad == 0, "B %d: %d mixup values off λx_i + (1−λ)x_(B−1−i)", B, bad);
        /* another rank's batch as the partner: image i mixes with its image B−1−i */
        mixup_images(x, orig, other, B, C, H, W, &p);
        bad = 0;
        for (int i = 0; i < B; i++)
            for (long k = 0; k < img; k++) bad += x[i * img + k] != orig[i * img + k] * l + other[(B - 1 - i) * img + k] * m;
        CHECK(bad == 0, "B %d: %d mixup values off λx_i + (1−λ)partner_(B−1−i)", B, bad);
        p = (mixup_params){1, 1, 0.7, 2, 7, 3, 10};
        for (int two = 0; two < 2; two++) {
            const float *part = two ? other : orig;
            mixup_images(x, orig, part, B, C, H, W, &p);
            bad = 0;
            for (int i = 0; i < B; i++)
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < H; y++)
                        for (int xx = 0; xx < W; xx++) {
                            long k = ((long)c * H + y) * W + xx;
                            int in = y >= 2 && y < 7 && xx >= 3 && xx < 10;
                            bad += x[i * img + k] != (in ? part[(B - 1 - i) * img + k] : orig[i * img + k]);
                        }
            CHECK(bad == 0, "B %d%s: %d cutmix values not from the partner inside / self outside the box", B,
                  two ? " (partner batch)" : "", bad);
        }
        p.mixed = 0;
        mixup_images(x, orig, other, B, C, H, W, &p);
        CHECK(memcmp(x, orig, sizeof(float) * B * img) == 0, "unmixed params changed the batch");
        free(orig); free(x); free(other);
    }
    test_end();
}

static void test_targets_and_loss(void) {
    test_begin("mixup_targets_and_softce");
    enum { B = 6, K = 10 };
    const int32_t y[B] = {1, 7, 3, 1, 9, 0};
    const double s = 0.1;
    float t[B * K], probs[B * K], logits[B * K];
    rng_t r = rng_make(3);
    for (int i = 0; i < B * K; i++) logits[i] = (float)(rng_nextd(&r) * 6 - 3);
    const double lams[] = {1.0, 0.35, 0.0};
    for (int u = 0; u < 3; u++) {
        double lam = lams[u];
        mixup_targets(t, y, y, B, K, lam, s);
        double worst = 0, sum_off = 0;
        for (int i = 0; i < B; i++) {
            double row = 0;
            for (int k = 0; k < K; k++) {
                double a = k == y[i] ? 1 - s + s / K : s / K, b = k == y[B - 1 - i] ? 1 - s + s / K : s / K;
                worst = fmax(worst, fabs(t[i * K + k] - (lam * a + (1 - lam) * b)));
                row += t[i * K + k];
            }
            sum_off = fmax(sum_off, fabs(row - 1));
        }
        CHECK(worst < 1e-7 && sum_off < 1e-6, "λ %g: targets off the formula by %.2g, rows sum to 1 ± %.2g", lam, worst, sum_off);
        /* the loss of soft targets = λ·LS-CE(y_i) + (1−λ)·LS-CE(y_(B−1−i)), each the closed form
         * lse − ((1−s)·x_y + s·mean x) of the label-smoothed cross-entropy */
        double want = 0;
        for (int i = 0; i < B; i++) {
            const float *x = logits + i * K;
            double mx = x[0], z = 0, mean = 0;
            for (int k = 1; k < K; k++) mx = fmax(mx, x[k]);
            for (int k = 0; k < K; k++) { z += exp(x[k] - mx); mean += x[k] / K; }
            double lse = mx + log(z);
            want += lam * (lse - ((1 - s) * x[y[i]] + s * mean)) + (1 - lam) * (lse - ((1 - s) * x[y[B - 1 - i]] + s * mean));
        }
        want /= B;
        double got = softce_forward(probs, logits, t, B, K);
        CHECK(fabs(got - want) < 1e-5 * fabs(want), "λ %g: soft-target CE %.7f, label-smoothed closed form %.7f", lam, got, want);
    }
    test_end();
}

static void test_sampling(void) {
    test_begin("mixup_switch_and_mix_probability");
    mixup_config c = mixup_recipe();
    const int N = 40000, H = 224, W = 224;
    long cut = 0, mixed = 0, bad = 0;
    double sl = 0, sl2 = 0;
    long nm = 0;
    for (int i = 0; i < N; i++) {
        mixup_params p;
        mixup_sample(&p, &c, H, W, rng_key(11, MIXUP_RNG_TAG, (uint64_t)i, 0, 0));
        mixed += p.mixed; cut += p.cutmix;
        if (p.cutmix) {
            bad += p.y0 < 0 || p.y1 > H || p.x0 < 0 || p.x1 > W || p.y0 > p.y1 || p.x0 > p.x1;
            bad += fabs(p.lam - (1 - (double)(p.y1 - p.y0) * (p.x1 - p.x0) / (H * W))) > 1e-12;
        } else { sl += p.lam; sl2 += p.lam * p.lam; nm++; }
    }
    CHECK(bad == 0, "%ld cutmix boxes out of bounds or λ not their area", bad);
    CHECK(mixed == N, "prob 1: %ld of %d batches mixed", mixed, N);
    CHECK(fabs((double)cut / N - 0.5) < 5 * sqrt(0.25 / N), "switch 0.5: cutmix in %.4f of batches", (double)cut / N);
    double m = sl / nm, v = sl2 / nm - m * m, var = 1 / (4 * (2 * 0.8 + 1));
    CHECK(fabs(m - 0.5) < 5 * sqrt(var / nm) && fabs(v - var) < 5 * sqrt(var / 4 / nm), "mixup λ mean %.4f var %.4f, want Beta(0.8)", m, v);
    /* prob 0.3; one alpha off; the same key, the same draws */
    c.prob = 0.3;
    mixed = 0;
    for (int i = 0; i < N; i++) {
        mixup_params p;
        mixup_sample(&p, &c, H, W, rng_key(12, MIXUP_RNG_TAG, (uint64_t)i, 0, 0));
        mixed += p.mixed;
        if (!p.mixed) bad += p.lam != 1.0 || p.cutmix;
    }
    CHECK(fabs((double)mixed / N - 0.3) < 5 * sqrt(0.21 / N) && bad == 0, "prob 0.3: mixed %.4f", (double)mixed / N);
    c = mixup_recipe(); c.cutmix_alpha = 0;
    long cm = 0;
    for (int i = 0; i < 2000; i++) { mixup_params p; mixup_sample(&p, &c, H, W, (uint64_t)i); cm += p.cutmix; }
    c = mixup_recipe(); c.mixup_alpha = 0;
    long cc = 0;
    for (int i = 0; i < 2000; i++) { mixup_params p; mixup_sample(&p, &c, H, W, (uint64_t)i); cc += p.cutmix; }
    CHECK(cm == 0 && cc == 2000, "mixup only: %ld cutmix; cutmix only: %ld of 2000", cm, cc);
    c = mixup_recipe();
    mixup_params a, b, d;
    mixup_sample(&a, &c, H, W, rng_key(1, MIXUP_RNG_TAG, 5, 0, 0));
    mixup_sample(&b, &c, H, W, rng_key(1, MIXUP_RNG_TAG, 5, 0, 0));
    mixup_sample(&d, &c, H, W, rng_key(1, MIXUP_RNG_TAG, 6, 0, 0));
    CHECK(memcmp(&a, &b, sizeof a) == 0 && memcmp(&a, &d, sizeof a) != 0, "draws not a function of the step key");
    test_end();
}

static void test_errors(void) {
    test_begin("mixup_config_errors");
    char err[200];
    mixup_config c = mixup_recipe();
    CHECK(mixup_check(&c, 32, err, sizeof err) == NULL && mixup_active(&c), "recipe refused: %s", err);
    mixup_config bad[7];
    int batch[7] = {32, 32, 32, 32, 32, 7, 32};
    for (int k = 0; k < 7; k++) bad[k] = mixup_recipe();
    bad[0].mixup_alpha = -0.8; bad[1].cutmix_alpha = NAN; bad[2].prob = 1.5; bad[3].switch_prob = -0.1;
    bad[4].smoothing = 1.0; bad[6].prob = -1;
    for (int k = 0; k < 7; k++) {
        const char *e = mixup_check(&bad[k], batch[k], err, sizeof err);
        CHECK(e && !strchr(e, '\n') && strncmp(e, "mixup: ", 7) == 0, "bad config %d accepted or message '%s'", k, e ? e : "");
    }
    c.mixup_alpha = 0; c.cutmix_alpha = 0;
    CHECK(!mixup_active(&c) && mixup_check(&c, 7, err, sizeof err) == NULL, "off config with an odd batch refused");
    test_end();
}

int main(void) {
    test_beta();
    test_box();
    test_images();
    test_targets_and_loss();
    test_sampling();
    test_errors();
    return test_exit();
}
