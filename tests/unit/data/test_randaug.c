/* RandAugment (src/data/randaug.h): the statistics of the draws against the definition (op
 * frequencies with replacement, apply rate, the clipped noisy magnitude's mean, spread and
 * clip rate, sign flips, the interpolation choice, the uniform-magnitude variant), argument
 * ranges, determinism, spec parsing and its errors, and op identities. Pixel values of every
 * op are compared with torchvision by tests/t_randaug_torch.sh. Tolerances: 5 standard
 * errors of the number of draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "data/augment.h"
#include "data/randaug.h"
#include "semaim/rng.h"

static double Phi(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
static double phi(double z) { return exp(-0.5 * z * z) / sqrt(2 * M_PI); }

/* Mean and variance of min(X, c) for X ~ N(mu, sd²) (the lower clip at 0 is 18 sd away). */
static void clipped_normal(double mu, double sd, double c, double *mean, double *var) {
    double z = (c - mu) / sd, P = Phi(z), f = phi(z);
    double m1 = mu * P - sd * f + c * (1 - P);
    double m2 = mu * mu * P + sd * sd * (P - z * f) - 2 * mu * sd * f + c * c * (1 - P);
    *mean = m1; *var = m2 - m1 * m1;
}

static void test_draw_statistics(void) {
    test_begin("randaug_draw_statistics");
    randaug_config c = randaug_recipe();
    const int N = 100000;
    const long M = 2L * N;   /* layers */
    long op_count[RA_NUM_OPS] = {0}, applied = 0, negated = 0, clipped = 0, same = 0, bicubic = 0, in_set = 0;
    double sm = 0, sm2 = 0;
    for (int i = 0; i < N; i++) {
        ra_plan p;
        randaug_sample(&p, &c, 224, 224, rng_key(3, RANDAUG_RNG_TAG, 1, (uint64_t)i, 0));
        CHECK(p.n == 2, "plan has %d ops", p.n);
        same += p.layer[0].op == p.layer[1].op;
        for (int l = 0; l < 2; l++) {
            const ra_layer *L = &p.layer[l];
            op_count[L->op]++;
            for (int k = 0; k < RA_SET_SIZE; k++) in_set += randaug_set_op(1, k) == L->op;
            applied += L->apply; negated += L->negate; bicubic += L->interp == RA_BICUBIC;
            clipped += L->magnitude == 10.0;
            sm += L->magnitude; sm2 += L->magnitude * L->magnitude;
            CHECK(L->magnitude >= 0 && L->magnitude <= 10, "magnitude %g outside [0, 10]", L->magnitude);
        }
    }
    CHECK(in_set == M, "%ld of %ld ops outside the inc1 set", M - in_set, M);
    const double e = M / 15.0, sd = sqrt(e * (1 - 1 / 15.0));
    for (int k = 0; k < RA_SET_SIZE; k++) {
        int op = randaug_set_op(1, k);
        CHECK(fabs(op_count[op] - e) < 5 * sd, "%s drawn %ld times, expected %.0f ± %.0f", randaug_op_name(op), op_count[op], e, 5 * sd);
    }
    /* with replacement: the two layers pick the same op with probability 1/15 */
    double ps = 1 / 15.0;
    CHECK(fabs((double)same / N - ps) < 5 * sqrt(ps * (1 - ps) / N), "same op twice in %.4f of images, want %.4f", (double)same / N, ps);
    double half = 5 * sqrt(0.25 / M);
    CHECK(fabs((double)applied / M - 0.5) < half, "applied %.4f, want 0.5", (double)applied / M);
    CHECK(fabs((double)negated / M - 0.5) < half, "negated %.4f, want 0.5", (double)negated / M);
    CHECK(bicubic == M, "recipe interpolation is bicubic: %ld of %ld", bicubic, M);
    double mean, var, m = sm / M, v = sm2 / M - m * m;
    clipped_normal(9, 0.5, 10, &mean, &var);
    /* the variance estimate's standard error: sqrt((μ4 − σ⁴)/M) < σ²·sqrt(2/M) for the clipped normal */
    CHECK(fabs(m - mean) < 5 * sqrt(var / M), "magnitude mean %.5f, want %.5f", m, mean);
    CHECK(fabs(v - var) < 5 * var * sqrt(2.0 / M), "magnitude variance %.5f, want %.5f", v, var);
    double pc = 1 - Phi(2.0);
    CHECK(fabs((double)clipped / M - pc) < 5 * sqrt(pc * (1 - pc) / M), "clipped at 10: %.5f, want %.5f", (double)clipped / M, pc);
    test_end();
}

static void test_variants(void) {
    test_begin("randaug_variants");
    randaug_config c = randaug_recipe();
    c.interp = RA_RANDOM; c.magnitude_std = 200; c.magnitude = 7; c.prob = 0.3; c.num_ops = 3; c.increasing = 0;
    const int N = 40000;
    long bicubic = 0, applied = 0, inc_ops = 0;
    double sm = 0, sm2 = 0;
    for (int i = 0; i < N; i++) {
        ra_plan p;
        randaug_sample(&p, &c, 50, 60, rng_key(4, RANDAUG_RNG_TAG, 0, (uint64_t)i, 0));
        for (int l = 0; l < 3; l++) {
            bicubic += p.layer[l].interp == RA_BICUBIC; applied += p.layer[l].apply;
            inc_ops += p.layer[l].op >= RA_POSTERIZE_INC;
            sm += p.layer[l].magnitude; sm2 += p.layer[l].magnitude * p.layer[l].magnitude;
        }
    }
    const long M = 3L * N;
    CHECK(fabs((double)bicubic / M - 0.5) < 5 * sqrt(0.25 / M), "random interpolation: bicubic %.4f", (double)bicubic / M);
    CHECK(fabs((double)applied / M - 0.3) < 5 * sqrt(0.21 / M), "p 0.3: applied %.4f", (double)applied / M);
    CHECK(inc_ops == 0, "inc0 drew %ld increasing-set ops", inc_ops);
    /* mstd > 100: uniform on [0, m], mean m/2, variance m²/12 */
    double m = sm / M, v = sm2 / M - m * m;
    CHECK(fabs(m - 3.5) < 5 * sqrt(49 / 12.0 / M), "uniform magnitude mean %.4f, want 3.5", m);
    CHECK(fabs(v - 49 / 12.0) < 5 * sqrt(49.0 * 49 / 180.0 / M), "uniform magnitude variance %.4f, want %.4f", v, 49 / 12.0);
    /* mstd 0: the magnitude is m itself */
    c.magnitude_std = 0; c.magnitude = 9;
    ra_plan p;
    randaug_sample(&p, &c, 50, 60, 77);
    CHECK(p.layer[0].magnitude == 9 && p.layer[2].magnitude == 9, "mstd 0 keeps m: %g", p.layer[0].magnitude);
    test_end();
}

/* Arguments follow the definition's ranges and monotone direction at the recipe's draws. */
static void test_arguments(void) {
    test_begin("randaug_arguments");
    int bad = 0, prev_bits = 4, prev_th = 256, prev_add = 0;
    for (int i = 0; i <= 100; i++) {
        double m = i / 10.0, level = m / 10.0;
        for (int neg = 0; neg < 2; neg++) {
            double s = neg ? -1 : 1;
            bad += fabs(randaug_arg(RA_ROTATE, m, neg, 10, 10) - s * 30 * level) > 1e-12;
            bad += fabs(randaug_arg(RA_SHEAR_X, m, neg, 10, 10) - s * 0.3 * level) > 1e-12;
            bad += fabs(randaug_arg(RA_TRANSLATE_X_REL, m, neg, 30, 200) - s * 0.45 * level * 200) > 1e-9;
            bad += fabs(randaug_arg(RA_TRANSLATE_Y_REL, m, neg, 30, 200) - s * 0.45 * level * 30) > 1e-9;
            double f = randaug_arg(RA_BRIGHTNESS_INC, m, neg, 1, 1);
            bad += f < 0.1 - 1e-12 || f > 1.9 + 1e-12 || (neg ? f > 1 : f < 1);
            bad += fabs(randaug_arg(RA_COLOR, m, neg, 1, 1) - (1.8 * level + 0.1)) > 1e-12;
        }
        /* the integer arguments truncate: within one step of the real value, monotone */
        int bits = (int)randaug_arg(RA_POSTERIZE_INC, m, 0, 1, 1), th = (int)randaug_arg(RA_SOLARIZE_INC, m, 0, 1, 1);
        int add = (int)randaug_arg(RA_SOLARIZE_ADD, m, 0, 1, 1);
        bad += bits > 4 - 4 * level + 1 + 1e-9 || bits < 4 - 4 * level - 1e-9 || bits > prev_bits;
        bad += th > 256 - 256 * level + 1 + 1e-9 || th < 256 - 256 * level - 1e-9 || th > prev_th;
        bad += add > 110 * level + 1e-9 || add < 110 * level - 1 - 1e-9 || add < prev_add;
        bad += randaug_arg(RA_EQUALIZE, m, 1, 5, 5) != 0;
        prev_bits = bits; prev_th = th; prev_add = add;
    }
    CHECK(bad == 0, "%d arguments off the definition", bad);
    CHECK(randaug_arg(RA_POSTERIZE_INC, 0, 0, 1, 1) == 4 && randaug_arg(RA_POSTERIZE_INC, 10, 0, 1, 1) == 0 &&
          randaug_arg(RA_SOLARIZE_INC, 0, 0, 1, 1) == 256 && randaug_arg(RA_SOLARIZE_INC, 10, 0, 1, 1) == 0 &&
          randaug_arg(RA_SOLARIZE_ADD, 10, 0, 1, 1) == 110 && randaug_arg(RA_POSTERIZE, 10, 0, 1, 1) == 4, "end points");
    test_end();
}

static uint8_t *random_image(int H, int W, uint64_t seed) {
    uint8_t *p = malloc((size_t)H * W * 3);
    rng_t r = rng_make(seed);
    for (long i = 0; i < (long)H * W * 3; i++) p[i] = (uint8_t)rng_below(&r, 256);
    return p;
}

static void test_determinism(void) {
    test_begin("randaug_deterministic");
    const int H = 40, W = 36;
    randaug_config c = randaug_recipe();
    c.prob = 1;   /* every drawn op runs */
    uint8_t *src = random_image(H, W, 5), *a = malloc((size_t)H * W * 3), *b = malloc((size_t)H * W * 3),
            *s = malloc((size_t)H * W * 3);
    int differ = 0, changed = 0;
    for (int i = 0; i < 40; i++) {
        memcpy(a, src, (size_t)H * W * 3); memcpy(b, src, (size_t)H * W * 3);
        randaug_image(a, H, W, &c, rng_key(9, RANDAUG_RNG_TAG, 2, (uint64_t)i, 0), s);
        randaug_image(b, H, W, &c, rng_key(9, RANDAUG_RNG_TAG, 2, (uint64_t)i, 0), s);
        CHECK(memcmp(a, b, (size_t)H * W * 3) == 0, "sample %d not reproducible", i);
        changed += memcmp(a, src, (size_t)H * W * 3) != 0;
        ra_plan p, q;
        randaug_sample(&p, &c, H, W, rng_key(9, RANDAUG_RNG_TAG, 2, (uint64_t)i, 0));
        randaug_sample(&q, &c, H, W, rng_key(9, RANDAUG_RNG_TAG, 3, (uint64_t)i, 0));
        differ += memcmp(&p, &q, sizeof p) != 0;
    }
    CHECK(differ >= 39, "only %d of 40 samples change ops between epochs", differ);
    CHECK(changed >= 35, "only %d of 40 images changed", changed);
    randaug_config off = c;
    off.num_ops = 0;
    memcpy(a, src, (size_t)H * W * 3);
    randaug_image(a, H, W, &off, 1, s);
    CHECK(memcmp(a, src, (size_t)H * W * 3) == 0, "n = 0 changed the image");
    free(src); free(a); free(b); free(s);
    test_end();
}

/* Neutral arguments leave the image as it is; Invert twice is the identity. */
static void test_identities(void) {
    test_begin("randaug_op_identities");
    const int H = 23, W = 31;
    const uint8_t fill[3] = {124, 116, 104};
    uint8_t *src = random_image(H, W, 6), *a = malloc((size_t)H * W * 3), *s = malloc((size_t)H * W * 3);
    const struct { int op; double arg; } id[] = {
        {RA_ROTATE, 0}, {RA_ROTATE, 360}, {RA_ROTATE, -720}, {RA_SHEAR_X, 0}, {RA_SHEAR_Y, 0},
        {RA_TRANSLATE_X_REL, 0}, {RA_TRANSLATE_Y_REL, 0}, {RA_POSTERIZE_INC, 8}, {RA_SOLARIZE_INC, 256},
        {RA_SOLARIZE_ADD, 0}, {RA_COLOR_INC, 1}, {RA_CONTRAST_INC, 1}, {RA_BRIGHTNESS_INC, 1}, {RA_SHARPNESS_INC, 1},
    };
    for (unsigned t = 0; t < sizeof id / sizeof id[0]; t++)
        for (int interp = 0; interp < 2; interp++) {
            memcpy(a, src, (size_t)H * W * 3);
            randaug_op(a, H, W, id[t].op, id[t].arg, interp, fill, s);
            CHECK(memcmp(a, src, (size_t)H * W * 3) == 0, "%s(%g) interp %d is not the identity", randaug_op_name(id[t].op), id[t].arg, interp);
        }
    memcpy(a, src, (size_t)H * W * 3);
    randaug_op(a, H, W, RA_INVERT, 0, 0, fill, s);
    CHECK(a[0] == 255 - src[0], "invert");
    randaug_op(a, H, W, RA_INVERT, 0, 0, fill, s);
    CHECK(memcmp(a, src, (size_t)H * W * 3) == 0, "invert twice");
    /* a translation by the whole width leaves only fill */
    memcpy(a, src, (size_t)H * W * 3);
    randaug_op(a, H, W, RA_TRANSLATE_X_REL, W, RA_BICUBIC, fill, s);
    int nf = 0;
    for (long i = 0; i < (long)H * W; i++) nf += a[3 * i] != fill[0] || a[3 * i + 1] != fill[1] || a[3 * i + 2] != fill[2];
    CHECK(nf == 0, "%d pixels not filled after shifting the image out", nf);
    free(src); free(a); free(s);
    test_end();
}

static void test_parse(void) {
    test_begin("randaug_parse");
    char err[256];
    randaug_config c;
    CHECK(randaug_parse(&c, "rand-m9-mstd0.5-inc1", err, sizeof err) == NULL, "recipe spec refused: %s", err);
    randaug_config r = randaug_recipe();
    CHECK(c.num_ops == r.num_ops && c.magnitude == r.magnitude && c.magnitude_std == r.magnitude_std &&
          c.magnitude_max == r.magnitude_max && c.prob == r.prob && c.increasing == r.increasing &&
          c.interp == r.interp && memcmp(c.fill, r.fill, 3) == 0, "rand-m9-mstd0.5-inc1 differs from randaug_recipe()");
    CHECK(r.num_ops == 2 && r.magnitude == 9 && r.magnitude_std == 0.5 && r.prob == 0.5 && r.increasing &&
          r.interp == RA_BICUBIC && r.magnitude_max == 10, "the recipe's values");
    for (int k = 0; k < 3; k++) CHECK(fabs(r.fill[k] - 255.0 * aug_mean[k]) <= 0.5, "fill %d is not round(255·mean)", r.fill[k]);
    CHECK(randaug_parse(&c, "rand", err, sizeof err) == NULL && c.num_ops == 2 && c.magnitude == 10 &&
          c.magnitude_std == 0 && c.increasing == 0 && c.magnitude_max == 10, "timm's defaults");
    CHECK(randaug_parse(&c, "rand-n3-m5-mmax12-mstd101-inc0", err, sizeof err) == NULL && c.num_ops == 3 &&
          c.magnitude == 5 && c.magnitude_max == 12 && c.magnitude_std == 101 && !c.increasing, "all keys: %s", err);
    CHECK(randaug_parse(&c, "none", err, sizeof err) == NULL && c.num_ops == 0, "none");
    CHECK(randaug_parse(&c, "", err, sizeof err) == NULL && c.num_ops == 0, "empty");
    const char *bad[] = {"rand-m9-mstd0.5-inc2", "rand-x9", "rand-m", "rand-m9.5", "rand--m9", "rand-m9-", "foo-m9",
                         "rand-w0", "rand-n17", "augmix-m5", "rand-mstd-1", "-rand", "randm9", "rand-m9x",
                         "rand-mstdnan", "rand-inc"};
    for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *e = randaug_parse(&c, bad[k], err, sizeof err);
        CHECK(e && *e && !strchr(e, '\n') && strncmp(e, "randaug: ", 9) == 0, "'%s' accepted or bad message '%s'", bad[k], e ? e : "");
    }
    r.prob = 1.5;
    CHECK(randaug_check(&r, err, sizeof err) != NULL, "p 1.5 accepted");
    r.prob = -0.1;
    CHECK(randaug_check(&r, err, sizeof err) != NULL, "p -0.1 accepted");
    r = randaug_recipe(); r.interp = 7;
    CHECK(randaug_check(&r, err, sizeof err) != NULL, "interpolation 7 accepted");
    CHECK(randaug_op_from_name("SolarizeIncreasing") == RA_SOLARIZE_INC && randaug_op_from_name("Cutout") == -1 &&
          randaug_op_from_name(NULL) == -1, "op names");
    for (int k = 0; k < RA_NUM_OPS; k++) CHECK(randaug_op_from_name(randaug_op_name(k)) == k, "name of op %d", k);
    test_end();
}

int main(void) {
    test_draw_statistics();
    test_variants();
    test_arguments();
    test_determinism();
    test_identities();
    test_parse();
    return test_exit();
}
